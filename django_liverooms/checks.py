"""System checks: ``liverooms.E0xx`` errors and ``liverooms.W0xx`` warnings."""

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

        pools = [(host, create_pool(host)) for host in decode_hosts(hosts)]
    except Exception as exc:
        return [
            Error(
                f"CHANNEL_LAYERS[{alias!r}] hosts are not valid: {exc}",
                hint='Give a list of URLs or dicts, e.g. [{"address": "redis://127.0.0.1:6379/0"}].',
                id="liverooms.E012",
            )
        ]
    errors: list[Any] = []
    for host, pool in pools:
        name = host.get("address") or host.get("master_name") or host.get("host")
        max_connections = getattr(pool, "max_connections", None)
        if max_connections is not None and max_connections < MIN_MAX_CONNECTIONS:
            errors.append(
                Error(
                    f"Redis host {name!r} of channel layer {alias!r} allows only "
                    f"{max_connections} pooled connections; past about that many "
                    "sockets per process, connects fail with 'Too many connections'.",
                    hint=f'Set "max_connections": {MIN_MAX_CONNECTIONS * 10} (or more) in the host dict.',
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
                    hint='Set "socket_timeout": 30 (or more) in the host dict.',
                    id="liverooms.E014",
                )
            )
    return errors


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
