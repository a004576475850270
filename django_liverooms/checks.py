"""System checks: ``liverooms.E0xx`` errors and ``liverooms.W0xx`` warnings."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.utils.module_loading import import_string

from .conf import DEFAULTS, conf

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
