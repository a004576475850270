import pytest
from django.core.checks import run_checks
from django.test import override_settings

from django_liverooms import checks

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
    return ids(e for e in run_checks() if e.id.startswith("liverooms."))


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
