import pytest
from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application
from django.core.checks import run_checks
from django.test import override_settings
from django.urls import path, re_path

from django_liverooms import checks
from django_liverooms.consumers import NotFoundConsumer
from django_liverooms.routing import websocket_include

MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def redis_layer(**host):
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:6379/0", **host}]},
        }
    }


def ids(errors):
    return sorted(e.id for e in errors)


def all_ids():
    # W120 (runserver is not daphne's) fires under DEBUG = True in the test
    # project, which has no runserver (and installing daphne here would
    # register daphne's own check for the rest of the run); tested below.
    return ids(
        e for e in run_checks() if e.id.startswith("liverooms.") and e.id != "liverooms.W120"
    )


@override_settings(CHANNEL_LAYERS=MEMORY, DEBUG=True)
def test_a_good_configuration_passes():
    assert all_ids() == []


@override_settings(LIVEROOMS=["not", "a", "dict"])
def test_liverooms_must_be_a_dict():
    [error] = checks.check_settings()
    assert error.id == "liverooms.E001" and error.hint


@override_settings(LIVEROOMS={"HISTORY_LIMT": 5})
def test_unknown_keys_warn():
    [warning] = checks.check_settings()
    assert warning.id == "liverooms.W001" and "HISTORY_LIMIT" in warning.hint


@override_settings(LIVEROOMS={"PERSISTENCE": "sometimes"})
def test_persistence_mode():
    assert ids(checks.check_settings()) == ["liverooms.E002"]


@override_settings(LIVEROOMS={"POLICY": "nowhere.Policy"})
def test_policy_must_import():
    assert ids(checks.check_settings()) == ["liverooms.E003"]


def test_channels_must_be_installed(settings):
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "channels"]
    [error] = checks.check_channels()
    assert error.id == "liverooms.E010" and "INSTALLED_APPS" in error.hint


@pytest.mark.parametrize("layers", [{}, None, {"other": MEMORY["default"]}])
def test_a_channel_layer_is_needed(settings, layers):
    settings.CHANNEL_LAYERS = layers
    assert ids(checks.check_channels()) == ["liverooms.E011"]


@override_settings(CHANNEL_LAYERS=MEMORY, DEBUG=False)
def test_in_memory_layer_outside_debug_warns():
    [warning] = checks.check_channels()
    assert warning.id == "liverooms.W010"


@override_settings(CHANNEL_LAYERS=MEMORY, DEBUG=True)
def test_in_memory_layer_in_debug_is_fine():
    assert checks.check_channels() == []


@override_settings(CHANNEL_LAYERS=redis_layer())
def test_redis_py_default_pool_and_timeout_are_errors():
    errors = checks.check_channels()
    assert ids(errors) == ["liverooms.E013", "liverooms.E014"]
    assert all(e.hint for e in errors)


@override_settings(CHANNEL_LAYERS=redis_layer(max_connections=10000, socket_timeout=30))
def test_a_big_pool_and_long_timeout_pass():
    assert checks.check_channels() == []


@override_settings(CHANNEL_LAYERS=redis_layer(max_connections=10000, socket_timeout=None))
def test_no_socket_timeout_passes():
    assert checks.check_channels() == []


def test_pool_settings_in_the_url_are_understood(settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0?max_connections=50&socket_timeout=30"]},
        }
    }
    assert ids(checks.check_channels()) == ["liverooms.E013"]


def test_invalid_hosts(settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": "redis://x"},
        }
    }
    assert ids(checks.check_channels()) == ["liverooms.E012"]


@override_settings(CHANNEL_LAYERS=MEMORY, DEBUG=True, LIVEROOMS={"CHANNEL_LAYER": "live"})
def test_the_configured_alias_is_checked():
    assert ids(checks.check_channels()) == ["liverooms.E011"]


@pytest.mark.parametrize(
    ("presence", "expected"),
    [
        ({"PRESENCE_TTL": 0}, ["liverooms.E050"]),
        ({"PRESENCE_INTERVAL": "1"}, ["liverooms.E050"]),
        ({"PRESENCE_HEARTBEAT": 30}, ["liverooms.E051"]),
        ({"PRESENCE_TTL": 15}, ["liverooms.W050"]),
        ({"PRESENCE_TTL": 2, "PRESENCE_HEARTBEAT": 0.5}, []),
        ({"PRESENCE_USERS_MAX": -1}, ["liverooms.E052"]),
    ],
)
def test_presence_settings(presence, expected):
    with override_settings(CHANNEL_LAYERS=MEMORY, DEBUG=True, LIVEROOMS=presence):
        assert all_ids() == expected


def sentinel_layer(**host):
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"sentinels": [("127.0.0.1", 26379)], **host}], "prefix": "p"},
        }
    }


def test_presence_follows_a_sentinel_layer_and_needs_its_master_name():
    with override_settings(CHANNEL_LAYERS=sentinel_layer(master_name="m")):
        assert ids(checks.check_presence()) == []
        assert ids(checks.check_scale_out()) == []
    with override_settings(CHANNEL_LAYERS=sentinel_layer()):
        assert ids(checks.check_presence()) == ["liverooms.W051"]
        assert ids(checks.check_scale_out()) == ["liverooms.E081"]
    with override_settings(
        CHANNEL_LAYERS=sentinel_layer(), LIVEROOMS={"PRESENCE_REDIS_URL": "redis://x/0"}
    ):
        assert "liverooms.W051" not in ids(checks.check_presence())


def test_a_sentinel_host_with_an_address_ignores_the_sentinels():
    layer = sentinel_layer(master_name="m", address="redis://127.0.0.1:6379/0")
    with override_settings(CHANNEL_LAYERS=layer):
        errors = checks.check_scale_out()
    assert ids(errors) == ["liverooms.E083"]
    assert "failover is never followed" in errors[0].msg


def test_worker_mode_on_a_sharded_layer_is_warned_about():
    sharded = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://a:6379/0", "redis://b:6379/0"]},
        }
    }
    with override_settings(CHANNEL_LAYERS=sharded, LIVEROOMS={"PERSISTENCE": "worker"}):
        assert ids(checks.check_scale_out()) == ["liverooms.W084"]
    with override_settings(CHANNEL_LAYERS=sharded):
        assert ids(checks.check_scale_out()) == []


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"HEALTH_INTERVAL": -1}, ["liverooms.E080"]),
        ({"HEALTH_INTERVAL": "10"}, ["liverooms.E080"]),
        ({"HEALTH_INTERVAL": 0, "PRESENCE_REDIS_URL": "rediss://r:6380/1"}, []),
        ({"PRESENCE_REDIS_URL": "127.0.0.1:6379"}, ["liverooms.E082"]),
    ],
)
def test_scale_out_settings(settings, expected):
    with override_settings(CHANNEL_LAYERS=MEMORY, LIVEROOMS=settings):
        errors = checks.check_scale_out()
    assert ids(errors) == expected
    assert all(e.hint for e in errors)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"SEND_RATE": (0, 10)}, ["liverooms.E004"]),
        ({"FRAME_RATE": "100/10s"}, ["liverooms.E004"]),
        ({"ABUSE_LIMIT": (10, -1), "TYPING_RATE": (1, 2, 3)}, ["liverooms.E004"] * 2),
        ({"MAX_CONNECTIONS_PER_USER": 0}, ["liverooms.E005"]),
        ({"MAX_MUTE_MINUTES": None}, ["liverooms.E005"]),
        ({"SEND_RATE": None, "USER_SEND_RATE": (5, 0.5), "MAX_CONNECTIONS_PER_USER": None}, []),
    ],
)
def test_limits_are_checked(settings, expected):
    with override_settings(LIVEROOMS=settings):
        errors = checks.check_settings()
    assert ids(errors) == expected
    assert all(e.hint for e in errors)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"SSE_KEEPALIVE": 0}, ["liverooms.E060"]),
        ({"SSE_KEEPALIVE": "15"}, ["liverooms.E060"]),
        ({"SSE_KEEPALIVE": float("nan")}, ["liverooms.E060"]),
        ({"SSE_RETRY": 1.5}, ["liverooms.E061"]),
        ({"SSE_RETRY": -1, "SSE_KEEPALIVE": None}, ["liverooms.E060", "liverooms.E061"]),
        ({"SSE_RETRY": 0, "SSE_KEEPALIVE": 0.5}, []),
    ],
)
def test_sse_settings_are_checked(settings, expected):
    with override_settings(LIVEROOMS=settings):
        errors = checks.check_sse()
    assert ids(errors) == expected
    assert all(e.hint for e in errors)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"SEND_QUEUE_BYTES": 100}, ["liverooms.E070"]),
        ({"SEND_QUEUE_BYTES": 2.5e6}, ["liverooms.E070"]),
        ({"SEND_TIMEOUT": 0}, ["liverooms.E071"]),
        ({"SEND_TIMEOUT": float("inf")}, ["liverooms.E071"]),
        ({"SEND_QUEUE_BYTES": 65536, "SEND_TIMEOUT": 2}, []),
    ],
)
def test_output_bounds_are_checked(settings, expected):
    with override_settings(LIVEROOMS=settings):
        errors = checks.check_output_bounds()
    assert ids(errors) == expected
    assert all(e.hint for e in errors)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"WRITE_WINDOW": -0.1}, ["liverooms.E072"]),
        ({"WRITE_WINDOW": "2ms"}, ["liverooms.E072"]),
        ({"WRITE_BATCH": 0}, ["liverooms.E073"]),
        ({"WRITE_BATCH": True}, ["liverooms.E073"]),
        ({"WRITE_WINDOW": 0, "WRITE_BATCH": 1}, []),
    ],
)
def test_group_commit_settings_are_checked(settings, expected):
    with override_settings(LIVEROOMS=settings):
        errors = checks.check_group_commit()
    assert ids(errors) == expected
    assert all(e.hint for e in errors)


# -- wiring: daphne, asgi.py, urls.py, worker mode (W120-W124) --------------


@pytest.mark.parametrize(
    ("apps", "installed"),
    [
        (["daphne", "django.contrib.staticfiles", "channels"], True),
        (["daphne.apps.DaphneConfig", "channels"], True),
        (["django.contrib.staticfiles", "channels"], False),
        (["daphnext", "channels"], False),
    ],
)
def test_daphne_is_found_in_installed_apps(apps, installed):
    # Its order after staticfiles is daphne's own check (daphne.E001).
    assert checks.daphne_installed(apps) is installed


def test_without_daphne_runserver_is_warned_about_in_debug_only(settings):
    settings.DEBUG = True
    [warning] = checks.check_runserver_serves_websockets()  # the test project has no daphne
    assert warning.id == "liverooms.W120" and "SILENCED_SYSTEM_CHECKS" in warning.hint
    settings.DEBUG = False  # a production server, not runserver
    assert checks.check_runserver_serves_websockets() == []
    settings.DEBUG = True
    del settings.ASGI_APPLICATION  # nothing to serve
    assert checks.check_runserver_serves_websockets() == []


async def http_app(scope, receive, send):  # an unknown ASGI callable
    raise NotImplementedError


routed_at_ws = ProtocolTypeRouter(
    {
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter([websocket_include("ws/")]))
        )
    }
)


class WholeAppMiddleware:  # e.g. an error reporter's, around the ProtocolTypeRouter
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


routed_inside_app_middleware = WholeAppMiddleware(routed_at_ws)
routed_under_a_capture = ProtocolTypeRouter(
    {"websocket": URLRouter([path("<slug:site>/", URLRouter([websocket_include("live/")]))])}
)
routed_nothing_of_ours = ProtocolTypeRouter(
    {"http": http_app, "websocket": URLRouter([path("ws/other/", NotFoundConsumer.as_asgi())])}
)
no_websocket_at_all = ProtocolTypeRouter({"http": http_app})
django_only = get_asgi_application()  # a new project's asgi.py, untouched
routed_behind_unknown_middleware = ProtocolTypeRouter({"websocket": http_app})
routed_by_re_path = ProtocolTypeRouter(
    {"websocket": URLRouter([re_path(r"^w(s)?/", URLRouter([websocket_include("")]))])}
)


def asgi_check(app_name, prefix="/ws/"):
    with override_settings(
        ASGI_APPLICATION=f"tests.test_checks.{app_name}", LIVEROOMS={"WEBSOCKET_PREFIX": prefix}
    ):
        return checks.check_asgi_routes()


@pytest.mark.parametrize(
    ("app_name", "prefix", "expected"),
    [
        ("routed_at_ws", "/ws/", []),
        ("routed_at_ws", "ws://other.example/ws/", []),  # another host: not ours to judge
        ("routed_at_ws", "/live/", ["liverooms.W122"]),
        ("routed_inside_app_middleware", "/ws/", []),
        ("routed_inside_app_middleware", "/live/", ["liverooms.W122"]),
        ("routed_under_a_capture", "/acme/live/", []),
        ("routed_under_a_capture", "/ws/", ["liverooms.W122"]),
        ("routed_nothing_of_ours", "/ws/", ["liverooms.W121"]),
        ("no_websocket_at_all", "/ws/", ["liverooms.W121"]),
        ("django_only", "/ws/", ["liverooms.W121"]),
        ("routed_behind_unknown_middleware", "/ws/", []),  # cannot see inside: silent
        ("routed_by_re_path", "/nowhere/", []),  # a regex mount: cannot compare
        ("does_not_exist", "/ws/", []),  # import errors are the server's to report
    ],
)
def test_asgi_routes(app_name, prefix, expected):
    errors = asgi_check(app_name, prefix)
    assert ids(errors) == expected
    assert all(e.hint for e in errors)


def test_the_prefix_warning_names_the_mount():
    [warning] = asgi_check("routed_at_ws", "/live/")
    assert "'/ws/'" in warning.msg and "WEBSOCKET_PREFIX'] = '/ws/'" in warning.hint


def test_the_test_projects_asgi_application_is_understood():
    # tests/asgi.py mounts the include three times, once under a capture.
    assert checks._liverooms_mounts(__import__("tests.asgi").asgi.application) == [
        "ws/",
        "ws/",
        "other/",
        "other/",
        "<slug:site>/live/",
        "<slug:site>/live/",
    ]
    assert checks.check_asgi_routes() == []


def test_http_urls_must_be_included():
    from django.urls import include

    assert checks.check_http_urls() == []  # tests/urls.py includes them
    # ROOT_URLCONF may be any object with the patterns (a tuple, hashable for the cache).
    with override_settings(ROOT_URLCONF=(path("admin/", http_app),)):
        [warning] = checks.check_http_urls()
    assert warning.id == "liverooms.W123" and "include(" in warning.hint
    nested = (path("site/", include([path("live/", include("django_liverooms.urls"))])),)
    with override_settings(ROOT_URLCONF=nested):
        assert checks.check_http_urls() == []


@pytest.mark.parametrize(
    ("layers", "persistence", "expected"),
    [
        (MEMORY, "worker", ["liverooms.W124"]),
        (MEMORY, "inline", []),
        (redis_layer(max_connections=10000, socket_timeout=30), "worker", []),
    ],
)
def test_worker_mode_needs_a_shared_layer(layers, persistence, expected):
    with override_settings(CHANNEL_LAYERS=layers, LIVEROOMS={"PERSISTENCE": persistence}):
        errors = checks.check_worker_layer()
    assert ids(errors) == expected
    assert all(e.hint for e in errors)


@pytest.mark.parametrize(
    ("host", "address"),
    [
        (("10.0.0.5", 6379), "redis://10.0.0.5:6379"),
        ("redis://10.0.0.5:6379/1", "redis://10.0.0.5:6379/1"),
    ],
)
def test_pool_hints_show_the_dict_form_for_tuple_and_url_hosts(settings, host, address):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [host]},
        }
    }
    errors = checks.check_channels()
    assert ids(errors) == ["liverooms.E013", "liverooms.E014"]
    for error in errors:
        assert "host dict" not in error.hint  # there is none to set it in
        assert f'{{"address": "{address}", "max_connections": 10000, "socket_timeout": 30}}' in (
            error.hint
        )


def test_pool_hints_for_a_dict_host_say_where_the_key_goes():
    with override_settings(CHANNEL_LAYERS=redis_layer()):
        hints = [e.hint for e in checks.check_channels()]
    assert hints == [
        'Set "max_connections": 10000 (or more) in the host dict.',
        'Set "socket_timeout": 30 (or more) in the host dict.',
    ]


@pytest.mark.parametrize(
    ("config", "expected"), [("english", []), ("", ["liverooms.E170"]), (3, ["liverooms.E170"])]
)
def test_search_config_must_be_a_name(config, expected):
    with override_settings(LIVEROOMS={"SEARCH_CONFIG": config}):
        assert ids(checks.check_search_config()) == expected


@pytest.mark.postgres
@pytest.mark.django_db
def test_search_config_must_exist_on_postgresql():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("run the suite with DATABASE_URL=postgres://... for this test")
    assert ids(checks.check_search_config_exists(databases=["default"])) == []
    with override_settings(LIVEROOMS={"SEARCH_CONFIG": "klingon"}):
        assert ids(checks.check_search_config_exists(databases=["default"])) == ["liverooms.E171"]
        assert ids(checks.check_search_config_exists(databases=None)) == []  # no --database
