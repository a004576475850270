"""System checks: ``liverooms.E0xx`` errors and ``liverooms.W0xx`` warnings (``W12x``: the
project's wiring of INSTALLED_APPS, asgi.py and urls.py)."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.utils.module_loading import import_string

from .conf import DEFAULTS, conf
from .ratelimit import Rate

REDIS_LAYERS = {
    "channels_redis.core.RedisChannelLayer",
    "channels_redis.pubsub.RedisPubSubChannelLayer",
}
IN_MEMORY_LAYER = "channels.layers.InMemoryChannelLayer"
# channels-redis holds a pooled connection per concurrent operation; below
# this many, a busy process fails with "Too many connections".
MIN_MAX_CONNECTIONS = 1000
# RedisChannelLayer blocks on Redis for up to 5 s per receive (brpop_timeout);
# a socket timeout at or below that turns an idle wait into an error.
MIN_SOCKET_TIMEOUT = 10


@register(Tags.compatibility)
def check_settings(**kwargs: Any) -> list[Any]:
    errors: list[Any] = []
    if not isinstance(conf.raw, dict):
        return [
            Error(
                "LIVEROOMS must be a dict.",
                hint="Set LIVEROOMS = {...} with keys from the documented defaults.",
                id="liverooms.E001",
            )
        ]
    for key in sorted(set(conf.raw) - set(DEFAULTS)):
        errors.append(
            Warning(
                f"LIVEROOMS has an unknown key {key!r}.",
                hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
                id="liverooms.W001",
            )
        )
    if conf.PERSISTENCE not in ("inline", "worker"):
        errors.append(
            Error(
                f"LIVEROOMS['PERSISTENCE'] is {conf.PERSISTENCE!r}.",
                hint='Use "inline" (the default) or "worker".',
                id="liverooms.E002",
            )
        )
    if conf.FANOUT not in ("process", "consumer"):
        errors.append(
            Error(
                f"LIVEROOMS['FANOUT'] is {conf.FANOUT!r}.",
                hint='Use "process" (the default) or "consumer".',
                id="liverooms.E006",
            )
        )
    try:
        import_string(conf.POLICY)
    except ImportError as exc:
        errors.append(
            Error(
                f"LIVEROOMS['POLICY'] {conf.POLICY!r} cannot be imported: {exc}",
                hint="Give the dotted path of a class such as django_liverooms.policy.DefaultPolicy.",
                id="liverooms.E003",
            )
        )
    for key in ("FRAME_RATE", "SEND_RATE", "USER_SEND_RATE", "TYPING_RATE", "ABUSE_LIMIT"):
        try:
            Rate.parse(getattr(conf, key))
        except ValueError as exc:
            errors.append(
                Error(
                    f"LIVEROOMS[{key!r}] is not a rate: {exc}.",
                    hint="Give (count, seconds), e.g. (10, 10) for 10 per 10 seconds, or None.",
                    id="liverooms.E004",
                )
            )
    for key in ("MAX_CONNECTIONS_PER_USER", "MAX_MUTE_MINUTES"):
        value = getattr(conf, key)
        if value is None and key == "MAX_CONNECTIONS_PER_USER":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            errors.append(
                Error(
                    f"LIVEROOMS[{key!r}] is {value!r}.",
                    hint="Give a positive integer"
                    + (" or None." if key == "MAX_CONNECTIONS_PER_USER" else "."),
                    id="liverooms.E005",
                )
            )
    return errors


@register(Tags.compatibility)
def check_channels(**kwargs: Any) -> list[Any]:
    if not apps.is_installed("channels"):
        return [
            Error(
                "django_liverooms needs Channels, which is not in INSTALLED_APPS.",
                hint='Add "channels" to INSTALLED_APPS (and "daphne" first, for runserver).',
                id="liverooms.E010",
            )
        ]
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    alias = conf.CHANNEL_LAYER
    if alias not in layers:
        return [
            Error(
                f"No channel layer {alias!r} in CHANNEL_LAYERS; nothing can be broadcast.",
                hint=(
                    'Configure CHANNEL_LAYERS["default"]: channels_redis.core.RedisChannelLayer '
                    "in production, channels.layers.InMemoryChannelLayer in development."
                ),
                id="liverooms.E011",
            )
        ]
    layer = layers[alias]
    backend = layer.get("BACKEND", "")
    if backend == IN_MEMORY_LAYER and not settings.DEBUG:
        return [
            Warning(
                "The in-memory channel layer is in use with DEBUG off.",
                hint=(
                    "It reaches only the consumers of one process: saves from another "
                    "process (a worker, manage.py shell) are never broadcast. Use "
                    "channels_redis.core.RedisChannelLayer in production."
                ),
                id="liverooms.W010",
            )
        ]
    if backend in REDIS_LAYERS:
        return check_redis_hosts(alias, layer.get("CONFIG", {}).get("hosts"))
    return []


def _socket_timeout(pool: Any) -> Any:
    """The read timeout of the pool's connections, redis-py's default included
    (5 s in redis-py 8, None before). Building a connection does no I/O."""
    if "socket_timeout" in pool.connection_kwargs:
        return pool.connection_kwargs["socket_timeout"]
    try:
        return pool.connection_class(**pool.connection_kwargs).socket_timeout
    except Exception:
        return None


def check_redis_hosts(alias: str, hosts: Any) -> list[Any]:
    """Check each host's pool as channels-redis will build it (no I/O)."""
    try:
        from channels_redis.utils import create_pool, decode_hosts

        decoded = decode_hosts(hosts)
        pools = [(host, create_pool(host)) for host in decoded]
    except Exception as exc:
        return [
            Error(
                f"CHANNEL_LAYERS[{alias!r}] hosts are not valid: {exc}",
                hint='Give a list of URLs or dicts, e.g. [{"address": "redis://127.0.0.1:6379/0"}].',
                id="liverooms.E012",
            )
        ]
    errors: list[Any] = []
    written = list(hosts) if hosts else [None] * len(pools)  # as in settings, for the hints
    for entry, (host, pool) in zip(written, pools, strict=True):
        name = host.get("address") or host.get("master_name") or host.get("host")
        max_connections = getattr(pool, "max_connections", None)
        if max_connections is not None and max_connections < MIN_MAX_CONNECTIONS:
            errors.append(
                Error(
                    f"Redis host {name!r} of channel layer {alias!r} allows only "
                    f"{max_connections} pooled connections; past about that many "
                    "sockets per process, connects fail with 'Too many connections'.",
                    hint=_pool_hint(entry, host, f'"max_connections": {MIN_MAX_CONNECTIONS * 10}'),
                    id="liverooms.E013",
                )
            )
        timeout = _socket_timeout(pool)
        if timeout is not None and timeout < MIN_SOCKET_TIMEOUT:
            errors.append(
                Error(
                    f"Redis host {name!r} of channel layer {alias!r} times reads out "
                    f"after {timeout} s, while channels-redis blocks for 5 s waiting "
                    "for messages; idle consumers then fail.",
                    hint=_pool_hint(entry, host, '"socket_timeout": 30'),
                    id="liverooms.E014",
                )
            )
    return errors


def _pool_hint(entry: Any, host: dict[str, Any], setting: str) -> str:
    """Where to put a pool setting: in the host dict, or in the dict that replaces
    a URL string or (host, port) tuple, which cannot carry it."""
    if isinstance(entry, dict):
        return f"Set {setting} (or more) in the host dict."
    if "address" in host:
        address = host["address"]
    else:  # a (host, port) tuple
        address = f"redis://{host.get('host')}:{host.get('port')}"
    example = (
        f'{{"address": "{address}", "max_connections": {MIN_MAX_CONNECTIONS * 10}, '
        '"socket_timeout": 30}'
    )
    written = "the default host" if entry is None else f"the host {entry!r}"
    return f"Set {setting} (or more): write {written} in the dict form, {example}."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@register(Tags.compatibility)
def check_presence(**kwargs: Any) -> list[Any]:
    if not isinstance(conf.raw, dict):
        return []  # reported by liverooms.E001
    errors: list[Any] = []
    timings = ("PRESENCE_TTL", "PRESENCE_HEARTBEAT", "PRESENCE_INTERVAL")
    bad = [
        name for name in timings if not _is_number(getattr(conf, name)) or getattr(conf, name) <= 0
    ]
    for name in bad:
        errors.append(
            Error(
                f"LIVEROOMS[{name!r}] is {getattr(conf, name)!r}; it must be a positive number of seconds.",
                hint=f"The default is {DEFAULTS[name]}.",
                id="liverooms.E050",
            )
        )
    if not bad and conf.PRESENCE_HEARTBEAT >= conf.PRESENCE_TTL:
        errors.append(
            Error(
                f"LIVEROOMS['PRESENCE_HEARTBEAT'] ({conf.PRESENCE_HEARTBEAT} s) is not under "
                f"PRESENCE_TTL ({conf.PRESENCE_TTL} s): connections would expire between heartbeats.",
                hint="Keep PRESENCE_TTL at two heartbeats or more (defaults: 30 and 10).",
                id="liverooms.E051",
            )
        )
    elif not bad and conf.PRESENCE_TTL < 2 * conf.PRESENCE_HEARTBEAT:
        errors.append(
            Warning(
                f"LIVEROOMS['PRESENCE_TTL'] ({conf.PRESENCE_TTL} s) is under two heartbeats "
                f"({conf.PRESENCE_HEARTBEAT} s each): one late heartbeat makes users leave and rejoin.",
                hint="Keep PRESENCE_TTL at two heartbeats or more (defaults: 30 and 10).",
                id="liverooms.W050",
            )
        )
    users_max = conf.PRESENCE_USERS_MAX
    if not isinstance(users_max, int) or isinstance(users_max, bool) or users_max < 0:
        errors.append(
            Error(
                f"LIVEROOMS['PRESENCE_USERS_MAX'] is {users_max!r}.",
                hint="Give the number of users a presence frame lists (0 for none; default 50).",
                id="liverooms.E052",
            )
        )
    if conf.PRESENCE:
        from .presence import redis_location

        try:
            redis_location()
        except ValueError as exc:
            errors.append(
                Warning(
                    f"Presence cannot find its Redis: {exc}.",
                    hint="Set LIVEROOMS['PRESENCE_REDIS_URL']; until then presence counts "
                    "this process's connections only.",
                    id="liverooms.W051",
                )
            )
    return errors


@register(Tags.compatibility)
def check_layer_faults(**kwargs: Any) -> list[Any]:
    if not isinstance(conf.raw, dict):
        return []  # E001
    errors: list[Any] = []
    rules = (
        ("LAYER_TIMEOUT", "greater than 0", "liverooms.E030"),
        ("LAYER_CHECK_INTERVAL", "0 or more", "liverooms.E031"),
        ("WORKER_ACK_TIMEOUT", "0 or more", "liverooms.E032"),
    )
    for key, low, error_id in rules:
        value = getattr(conf, key)
        if not _is_number(value) or value < 0 or (key == "LAYER_TIMEOUT" and value == 0):
            errors.append(
                Error(
                    f"LIVEROOMS[{key!r}] is {value!r}.",
                    hint=f"Use a number of seconds {low} (default {DEFAULTS[key]}).",
                    id=error_id,
                )
            )
    return errors


@register(Tags.compatibility)
def check_sse(**kwargs: Any) -> list[Any]:
    if not isinstance(conf.raw, dict):
        return []  # E001
    errors: list[Any] = []
    keepalive = conf.SSE_KEEPALIVE
    if not _is_number(keepalive) or not 0 < keepalive < float("inf"):
        errors.append(
            Error(
                f"LIVEROOMS['SSE_KEEPALIVE'] is {keepalive!r}.",
                hint="Use a positive number of seconds between keep-alive comments "
                f"(default {DEFAULTS['SSE_KEEPALIVE']}).",
                id="liverooms.E060",
            )
        )
    retry = conf.SSE_RETRY
    if not isinstance(retry, int) or isinstance(retry, bool) or retry < 0:
        errors.append(
            Error(
                f"LIVEROOMS['SSE_RETRY'] is {retry!r}.",
                hint="Use a whole number of milliseconds, 0 or more "
                f"(default {DEFAULTS['SSE_RETRY']}).",
                id="liverooms.E061",
            )
        )
    return errors


@register(Tags.compatibility)
def check_output_bounds(**kwargs: Any) -> list[Any]:
    """The bounds that close a socket which does not keep up (outbox.py)."""
    if not isinstance(conf.raw, dict):
        return []  # E001
    errors: list[Any] = []
    queue_bytes = conf.SEND_QUEUE_BYTES
    if isinstance(queue_bytes, bool) or not isinstance(queue_bytes, int) or queue_bytes < 1024:
        errors.append(
            Error(
                f"LIVEROOMS['SEND_QUEUE_BYTES'] is {queue_bytes!r}.",
                hint="Use a whole number of bytes, at least 1024 and above MAX_FRAME_BYTES "
                f"(default {DEFAULTS['SEND_QUEUE_BYTES']}).",
                id="liverooms.E070",
            )
        )
    timeout = conf.SEND_TIMEOUT
    if not _is_number(timeout) or not 0 < timeout < float("inf"):
        errors.append(
            Error(
                f"LIVEROOMS['SEND_TIMEOUT'] is {timeout!r}.",
                hint="Use a positive number of seconds a send to one socket may wait "
                f"(default {DEFAULTS['SEND_TIMEOUT']}).",
                id="liverooms.E071",
            )
        )
    return errors


@register(Tags.compatibility)
def check_group_commit(**kwargs: Any) -> list[Any]:
    """The group-commit writer's window and batch size (writer.py)."""
    if not isinstance(conf.raw, dict):
        return []  # E001
    errors: list[Any] = []
    window = conf.WRITE_WINDOW
    if not _is_number(window) or not 0 <= window <= 1:
        errors.append(
            Error(
                f"LIVEROOMS['WRITE_WINDOW'] is {window!r}.",
                hint="Use a number of seconds from 0 to 1 that a chat message may wait for "
                f"others to be stored with (default {DEFAULTS['WRITE_WINDOW']}).",
                id="liverooms.E072",
            )
        )
    batch = conf.WRITE_BATCH
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        errors.append(
            Error(
                f"LIVEROOMS['WRITE_BATCH'] is {batch!r}.",
                hint="Use a positive whole number of messages per transaction "
                f"(default {DEFAULTS['WRITE_BATCH']}).",
                id="liverooms.E073",
            )
        )
    return errors


@register(Tags.compatibility)
def check_websocket_prefix(**kwargs: Any) -> list[Any]:
    if not isinstance(conf.raw, dict):
        return []  # E001
    prefix = conf.WEBSOCKET_PREFIX
    if (
        isinstance(prefix, str)
        and prefix.endswith("/")
        and (prefix.startswith("/") or prefix.startswith(("ws://", "wss://")))
    ):
        return []
    return [
        Error(
            f"LIVEROOMS['WEBSOCKET_PREFIX'] is {prefix!r}.",
            hint=(
                "Use the path under which asgi.py mounts websocket_include(), with "
                'a leading and a trailing slash ("/ws/" for websocket_include("ws/")), '
                "or a ws:// or wss:// URL ending in a slash."
            ),
            id="liverooms.E065",
        )
    ]


REDIS_URL_SCHEMES = ("redis://", "rediss://", "unix://")


@register(Tags.compatibility)
def check_scale_out(**kwargs: Any) -> list[Any]:
    """Settings that would misbehave quietly once there are several processes or hosts."""
    if not isinstance(conf.raw, dict):
        return []  # E001
    errors: list[Any] = []
    interval = conf.HEALTH_INTERVAL
    if not _is_number(interval) or interval < 0:
        errors.append(
            Error(
                f"LIVEROOMS['HEALTH_INTERVAL'] is {interval!r}.",
                hint=f"Use a number of seconds, 0 or more (default {DEFAULTS['HEALTH_INTERVAL']}).",
                id="liverooms.E080",
            )
        )
    url = conf.PRESENCE_REDIS_URL
    if url is not None and not (isinstance(url, str) and url.startswith(REDIS_URL_SCHEMES)):
        errors.append(
            Error(
                f"LIVEROOMS['PRESENCE_REDIS_URL'] is {url!r}, not a Redis URL; every "
                "presence call would fail (and only be logged).",
                hint="Give redis://host:port/db, rediss://... or unix://..., or None.",
                id="liverooms.E082",
            )
        )
    layer = (getattr(settings, "CHANNEL_LAYERS", None) or {}).get(conf.CHANNEL_LAYER, {})
    if layer.get("BACKEND") not in REDIS_LAYERS:
        return errors
    hosts = (layer.get("CONFIG") or {}).get("hosts")
    if not isinstance(hosts, (list, tuple)):
        return errors  # E012
    if len(hosts) > 1 and conf.PERSISTENCE == "worker":
        errors.append(
            Warning(
                f"Worker mode on a sharded channel layer ({len(hosts)} hosts): channels-redis "
                "sends to PERSIST_CHANNEL on each host in turn but a worker waits on one host "
                "at a time, so a message can sit unread until WORKER_ACK_TIMEOUT or expiry.",
                hint="Give the layer one Redis host (scale Redis up, or run a separate layer "
                'alias), or use PERSISTENCE = "inline".',
                id="liverooms.W084",
            )
        )
    for host in hosts:
        if not isinstance(host, dict):
            continue
        if "sentinels" in host and "master_name" not in host:
            errors.append(
                Error(
                    f"A host of channel layer {conf.CHANNEL_LAYER!r} lists Sentinels but no "
                    "master_name; channels-redis then does not use the Sentinels at all.",
                    hint='Add "master_name": the name the Sentinels monitor the master under.',
                    id="liverooms.E081",
                )
            )
        if "master_name" in host and "address" in host:
            errors.append(
                Error(
                    f"A host of channel layer {conf.CHANNEL_LAYER!r} has both an address and "
                    f"a master_name ({host['master_name']!r}); channels-redis connects to the "
                    "address and ignores the Sentinels, so a failover is never followed.",
                    hint='Remove "address" from a Sentinel host: give "sentinels" and "master_name".',
                    id="liverooms.E083",
                )
            )
    return errors


# -- Wiring: the project's INSTALLED_APPS, asgi.py and urls.py (liverooms.W120-W124) --
#
# Mistakes a newcomer makes that otherwise only show as a widget stuck on
# "Connecting…" or quietly on SSE. Each is a Warning (silence it with
# SILENCED_SYSTEM_CHECKS) and says nothing when it cannot decide.


@register(Tags.compatibility)
def check_runserver_serves_websockets(**kwargs: Any) -> list[Any]:
    """W120: with DEBUG (i.e. runserver), daphne must be installed to serve the sockets."""
    if not settings.DEBUG or not getattr(settings, "ASGI_APPLICATION", None):
        return []  # no runserver in production; no ASGI app, nothing to serve
    if daphne_installed(list(settings.INSTALLED_APPS)):
        return []  # (listed after staticfiles: daphne's own check, daphne.E001)
    return [
        Warning(
            '"daphne" is not in INSTALLED_APPS, so `manage.py runserver` is Django\'s WSGI '
            "server: it serves no WebSockets, and the live blog widget falls back to "
            "Server-Sent Events while the chat widget never connects.",
            hint='Put "daphne" first in INSTALLED_APPS (pip install daphne). If you never '
            'use runserver, silence this with SILENCED_SYSTEM_CHECKS = ["liverooms.W120"].',
            id="liverooms.W120",
        )
    ]


def daphne_installed(installed: list[str]) -> bool:
    # "daphne", or its AppConfig's dotted path.
    return any(entry == "daphne" or entry.startswith("daphne.apps.") for entry in installed)


class _Undecided(Exception):
    """The ASGI application holds something the walk does not know."""


def _liverooms_mounts(application: Any) -> list[str | None]:
    """The URLRouter prefixes under which ``application`` routes our consumers.

    Walks ProtocolTypeRouter's "websocket" entry, middleware (``.inner``,
    ``.application``) and URLRouters; a prefix is None where a ``re_path``
    makes it unknowable. Raises _Undecided on an object it cannot look into.
    """
    return _mounts_in(application, "", depth=0)


def _mounts_in(app: Any, prefix: str | None, depth: int) -> list[str | None]:
    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.core.handlers.asgi import ASGIHandler
    from django.urls import URLPattern
    from django.urls.resolvers import RoutePattern

    from .consumers import ChatConsumer, LiveBlogConsumer

    if depth > 50:
        raise _Undecided  # a cycle, or something stranger than a stack of middleware
    if isinstance(app, ProtocolTypeRouter):
        websocket = app.application_mapping.get("websocket")
        return [] if websocket is None else _mounts_in(websocket, prefix, depth + 1)
    if isinstance(app, ASGIHandler):
        return []  # Django's HTTP handler (a new project's asgi.py): no WebSockets
    consumer = getattr(app, "consumer_class", None)
    if isinstance(consumer, type):
        return [prefix] if issubclass(consumer, (ChatConsumer, LiveBlogConsumer)) else []
    if isinstance(app, URLRouter):
        mounts: list[str | None] = []
        for route in app.routes:
            if not isinstance(route, URLPattern):
                raise _Undecided
            if getattr(route.callback, "consumer_class", None) is not None:
                # A consumer's own route: the mount is this router's prefix.
                mounts += _mounts_in(route.callback, prefix, depth + 1)
                continue
            pattern = route.pattern
            inner = (
                prefix + pattern._route
                if prefix is not None and isinstance(pattern, RoutePattern)
                else None
            )
            mounts += _mounts_in(route.callback, inner, depth + 1)
        return mounts
    for attribute in ("inner", "application", "app"):  # middleware of Channels, Django, ASGI
        wrapped = getattr(app, attribute, None)
        if wrapped is not None and callable(wrapped):
            return _mounts_in(wrapped, prefix, depth + 1)
    raise _Undecided


def _prefix_matches(mount: str, websocket_prefix: str) -> bool:
    """Whether the path prefix WEBSOCKET_PREFIX lands on the mount ("ws/", "<slug:site>/live/")."""
    from django.urls.resolvers import RoutePattern

    match = RoutePattern(mount, is_endpoint=False).match(websocket_prefix.lstrip("/"))
    return match is not None and match[0] == ""


@register(Tags.compatibility)
def check_asgi_routes(**kwargs: Any) -> list[Any]:
    """W121: asgi.py routes no consumer of ours; W122: WEBSOCKET_PREFIX is not where it does."""
    dotted = getattr(settings, "ASGI_APPLICATION", None)
    if not isinstance(dotted, str) or not isinstance(conf.raw, dict):
        return []
    try:
        application = import_string(dotted)
        mounts = _liverooms_mounts(application)
    except Exception:
        return []  # cannot import it, or cannot see inside it: no opinion
    if not mounts:
        return [
            Warning(
                f"ASGI_APPLICATION {dotted!r} does not route the chat and live blog "
                "consumers: every WebSocket to them fails.",
                hint='Mount them in asgi.py: URLRouter([websocket_include("ws/")]) under '
                '"websocket" in the ProtocolTypeRouter (README, installation step 5).',
                id="liverooms.W121",
            )
        ]
    prefix = conf.WEBSOCKET_PREFIX
    if not isinstance(prefix, str) or not prefix.startswith("/") or None in mounts:
        return []  # E065, another host's URL, or a re_path mount: cannot compare
    if any(_prefix_matches(mount, prefix) for mount in mounts):
        return []
    where = ", ".join(repr("/" + mount) for mount in mounts)
    return [
        Warning(
            f"LIVEROOMS['WEBSOCKET_PREFIX'] is {prefix!r}, but {dotted} mounts "
            f"websocket_include() at {where}: the widgets connect to a path nothing serves.",
            hint=f"Set LIVEROOMS['WEBSOCKET_PREFIX'] = {'/' + mounts[0]!r}, or mount "
            f"websocket_include({prefix.lstrip('/')!r}) in asgi.py.",
            id="liverooms.W122",
        )
    ]


@register(Tags.urls)
def check_http_urls(**kwargs: Any) -> list[Any]:
    """W123: ROOT_URLCONF does not include django_liverooms.urls."""
    from django.urls import get_resolver

    try:
        patterns = get_resolver().url_patterns
    except Exception:
        return []  # Django's own checks report a broken URLconf
    if _includes_our_views(patterns, depth=0):
        return []
    return [
        Warning(
            "ROOT_URLCONF does not include django_liverooms.urls: the widgets get no "
            "history paging and the live blog no Server-Sent Events fallback, and "
            "reverse('liverooms:...') fails.",
            hint='Add path("live/", include("django_liverooms.urls")) to urlpatterns '
            "(README, installation step 6).",
            id="liverooms.W123",
        )
    ]


def _includes_our_views(patterns: Any, depth: int) -> bool:
    from django.urls import URLPattern, URLResolver

    if depth > 20:
        return False
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            if pattern.lookup_str.startswith("django_liverooms.views."):
                return True
        elif isinstance(pattern, URLResolver):
            try:
                if _includes_our_views(pattern.url_patterns, depth + 1):
                    return True
            except Exception:
                continue
    return False


@register(Tags.compatibility)
def check_worker_layer(**kwargs: Any) -> list[Any]:
    """W124: worker mode on the in-memory layer (W010 covers it with DEBUG off only)."""
    if not isinstance(conf.raw, dict) or conf.PERSISTENCE != "worker":
        return []
    layer = (getattr(settings, "CHANNEL_LAYERS", None) or {}).get(conf.CHANNEL_LAYER, {})
    if layer.get("BACKEND") != IN_MEMORY_LAYER:
        return []
    return [
        Warning(
            'PERSISTENCE = "worker" on the in-memory channel layer: `manage.py runworker` '
            "is another process, which the in-memory layer cannot reach, so no message "
            "is ever stored (senders get `unavailable` after WORKER_ACK_TIMEOUT).",
            hint='Use channels_redis.core.RedisChannelLayer, or PERSISTENCE = "inline".',
            id="liverooms.W124",
        )
    ]


# Issue 13: sessions, caps by client address, the HTTP history bound (E100-E104).


@register(Tags.compatibility)
def check_sessions_and_caps(**kwargs: Any) -> list[Any]:
    if not isinstance(conf.raw, dict):
        return []  # E001
    from .ratelimit import parse_proxies

    errors: list[Any] = []
    interval = conf.SESSION_CHECK_INTERVAL
    if not _is_number(interval) or not 0 <= interval < float("inf"):
        errors.append(
            Error(
                f"LIVEROOMS['SESSION_CHECK_INTERVAL'] is {interval!r}.",
                hint="Use the seconds between checks of signed-in readers' sessions, or 0 for "
                f"none (default {DEFAULTS['SESSION_CHECK_INTERVAL']}).",
                id="liverooms.E100",
            )
        )
    try:
        parse_proxies(conf.TRUSTED_PROXIES)
    except ValueError as exc:
        errors.append(
            Error(
                f"LIVEROOMS['TRUSTED_PROXIES'] is not a list of proxies: {exc}.",
                hint="Give the IP addresses or networks of your reverse proxies, e.g. "
                '["127.0.0.1", "10.0.0.0/8"], or [] to take the peer as the client.',
                id="liverooms.E101",
            )
        )
    for key, error_id in (
        ("MAX_CONNECTIONS_PER_ADDRESS", "liverooms.E102"),
        ("HTTP_HISTORY_CONCURRENCY", "liverooms.E103"),
    ):
        value = getattr(conf, key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            errors.append(
                Error(
                    f"LIVEROOMS[{key!r}] is {value!r}.",
                    hint=f"Use a positive integer, or None for no limit (default {DEFAULTS[key]}).",
                    id=error_id,
                )
            )
    try:
        Rate.parse(conf.HTTP_HISTORY_RATE)
    except ValueError as exc:
        errors.append(
            Error(
                f"LIVEROOMS['HTTP_HISTORY_RATE'] is not a rate: {exc}.",
                hint="Give (count, seconds), e.g. (30, 10), or None (the default).",
                id="liverooms.E104",
            )
        )
    return errors


@register(Tags.compatibility)
def check_liveblog_publishing(**kwargs: Any) -> list[Any]:
    """Issue 14's settings (docs/liveblog.md): ``liverooms.E140``-``E159``."""
    errors: list[Any] = []
    page_url = conf.LIVEBLOG_PAGE_URL
    if page_url is not None:
        try:
            ok = isinstance(page_url, str) and "{slug}" in page_url
            ok = ok and bool(page_url.format(slug="s"))
        except (KeyError, IndexError, ValueError):
            ok = False
        if not ok:
            errors.append(
                Error(
                    f"LIVEROOMS['LIVEBLOG_PAGE_URL'] is {page_url!r}.",
                    hint='Give a path or URL with "{slug}" and no other braces, '
                    'e.g. "/liveblog/{slug}/", or None (the default).',
                    id="liverooms.E140",
                )
            )
    return errors + _reaction_errors()


def _reaction_errors() -> list[Any]:
    from .protocol import EMOJI_MAX_LENGTH

    errors: list[Any] = []
    emojis = conf.REACTIONS
    if emojis is not None and (
        isinstance(emojis, str)
        or not isinstance(emojis, (list, tuple))
        or not all(isinstance(e, str) and 0 < len(e) <= EMOJI_MAX_LENGTH for e in emojis)
    ):
        errors.append(
            Error(
                f"LIVEROOMS['REACTIONS'] is {emojis!r}.",
                hint=f"Give a list of emoji (strings of 1 to {EMOJI_MAX_LENGTH} characters), "
                "or [] to turn reactions off.",
                id="liverooms.E141",
            )
        )
    try:
        Rate.parse(conf.REACTION_RATE)
    except ValueError as exc:
        errors.append(
            Error(
                f"LIVEROOMS['REACTION_RATE'] is not a rate: {exc}.",
                hint="Give (count, seconds), e.g. (5, 10), or None for no limit.",
                id="liverooms.E142",
            )
        )
    interval = conf.REACTION_INTERVAL
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0:
        errors.append(
            Error(
                f"LIVEROOMS['REACTION_INTERVAL'] is {interval!r}.",
                hint="Give a positive number of seconds (default 1.0).",
                id="liverooms.E143",
            )
        )
    return errors + _media_errors()


def _media_errors() -> list[Any]:
    from .embeds import provider_errors

    errors: list[Any] = []
    problems = provider_errors(conf.EMBED_PROVIDERS)
    if problems:
        errors.append(
            Error(
                f"LIVEROOMS['EMBED_PROVIDERS'] is not valid: {'; '.join(problems)}.",
                hint='Give {"name": {"pattern": r"https://example\\.com/v/(?P<id>[0-9]+)", '
                '"player": "https://example.com/embed/{id}"}}, or {"name": None} to remove '
                "a built-in provider.",
                id="liverooms.E144",
            )
        )
    size = conf.ENTRY_IMAGE_MAX_BYTES
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        errors.append(
            Error(
                f"LIVEROOMS['ENTRY_IMAGE_MAX_BYTES'] is {size!r}.",
                hint="Give a positive number of bytes (default 5 MiB).",
                id="liverooms.E145",
            )
        )
    return errors


# Issue 16: chat as a product (E170-E179).


@register(Tags.compatibility)
def check_search_config(**kwargs: Any) -> list[Any]:
    config = conf.SEARCH_CONFIG
    if isinstance(config, str) and config:
        return []
    return [
        Error(
            f"LIVEROOMS['SEARCH_CONFIG'] is {config!r}.",
            hint='Give the name of a PostgreSQL text search configuration, e.g. "simple" '
            '(the default) or "english".',
            id="liverooms.E170",
        )
    ]


@register(Tags.database)
def check_search_config_exists(databases: Any = None, **kwargs: Any) -> list[Any]:
    """On PostgreSQL (with ``check --database``, and before ``migrate``)."""
    from django.db import DatabaseError, connections, router

    from .models import Message

    config = conf.SEARCH_CONFIG
    alias = router.db_for_read(Message)
    if not databases or alias not in databases or not isinstance(config, str) or not config:
        return []
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_ts_config WHERE cfgname = %s", [config])
            found = cursor.fetchone() is not None
    except DatabaseError:
        return []  # the database does not answer: Django's own checks say so
    if found:
        return []
    return [
        Error(
            f"LIVEROOMS['SEARCH_CONFIG'] is {config!r}, which database {alias!r} does not have.",
            hint="SELECT cfgname FROM pg_ts_config lists the text search configurations.",
            id="liverooms.E171",
        )
    ]


@register(Tags.compatibility)
def check_read_state(**kwargs: Any) -> list[Any]:
    """Read markers and unread counts (unread.py)."""
    if not isinstance(conf.raw, dict):
        return []  # E001
    errors: list[Any] = []
    interval = conf.READ_INTERVAL
    if not _is_number(interval) or not 0 <= interval < float("inf"):
        errors.append(
            Error(
                f"LIVEROOMS['READ_INTERVAL'] is {interval!r}.",
                hint="Use a number of seconds, 0 or more, between two writes of a socket's "
                f"read marker (default {DEFAULTS['READ_INTERVAL']}).",
                id="liverooms.E175",
            )
        )
    window = conf.UNREAD_WINDOW
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        errors.append(
            Error(
                f"LIVEROOMS['UNREAD_WINDOW'] is {window!r}.",
                hint="Use a positive whole number of a room's latest events that unread counts "
                f"look at (default {DEFAULTS['UNREAD_WINDOW']}).",
                id="liverooms.E176",
            )
        )
    return errors


@register(Tags.compatibility)
def check_attachments(**kwargs: Any) -> list[Any]:
    """Chat attachments (attachments.py): ``liverooms.E180``-``E189``."""
    from .attachments import KNOWN_TYPES

    if not isinstance(conf.raw, dict):
        return []  # E001
    errors: list[Any] = []
    size = conf.ATTACHMENT_MAX_BYTES
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        errors.append(
            Error(
                f"LIVEROOMS['ATTACHMENT_MAX_BYTES'] is {size!r}.",
                hint="Give a positive number of bytes (default 10 MiB).",
                id="liverooms.E180",
            )
        )
    types = conf.ATTACHMENT_TYPES
    if (
        isinstance(types, str)
        or not isinstance(types, (list, tuple))
        or not all(t in KNOWN_TYPES for t in types)
    ):
        errors.append(
            Error(
                f"LIVEROOMS['ATTACHMENT_TYPES'] is {types!r}.",
                hint=f"Give a list of content types among {', '.join(KNOWN_TYPES)} "
                "(the types the server recognises from a file's bytes), or [] to refuse uploads.",
                id="liverooms.E181",
            )
        )
    try:
        Rate.parse(conf.ATTACHMENT_RATE)
    except ValueError as exc:
        errors.append(
            Error(
                f"LIVEROOMS['ATTACHMENT_RATE'] is not a rate: {exc}.",
                hint="Give (count, seconds), e.g. (10, 60) for 10 uploads a minute, or None.",
                id="liverooms.E182",
            )
        )
    return errors
