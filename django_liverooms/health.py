"""The app's health: what ``manage.py liverooms_health`` reports.

Four checks, each with a plain verdict:

- **layer**: a message round-trips through the channel layer (a group add,
  a group send, a receive), bounded by ``LAYER_TIMEOUT``; with a
  RedisChannelLayer each host (shard) also answers ``INFO``.
- **streams**: the latest seq of streams, from the database.
- **presence**: the presence store answers, and how many users are in the
  given streams.
- **processes**: open sockets per server process.

Connection counts need every server process to say how many sockets it has,
somewhere the command can read. Each process keeps a :class:`Census` (one
per event loop) of its open consumers; while it has any it writes
``{"connections", "streams", "at"}`` every ``HEALTH_INTERVAL`` seconds into
one Redis hash (``<prefix>:liverooms:processes``, field ``<host>:<pid>``),
on the presence store's Redis. A field older than three intervals belongs to
a process that died without saying so: the reader ignores and deletes it. A
process whose last socket closes deletes its own field. On the in-memory
layer nothing is written: one process, which the command cannot see into.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import socket
import time
import uuid
import weakref
from dataclasses import asdict, dataclass, field
from typing import Any

from . import runtime
from ._compat import private_channel_name, redis_hosts
from .conf import conf
from .layerwatch import LayerFailed, bounded

logger = logging.getLogger(__name__)

STALE_AFTER = 3  # intervals without a report before a process counts as gone
HEALTH_EVENT = "liverooms.health"


def processes_key(prefix: str) -> str:
    return f"{prefix}:liverooms:processes"


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# The reporting side: one census per server process (event loop) ---------------


class Census:
    """This event loop's open sockets, reported to Redis while there are any."""

    def __init__(self) -> None:
        self.consumers: weakref.WeakSet[Any] = weakref.WeakSet()
        self.task: asyncio.Task[None] | None = None

    def add(self, consumer: Any) -> None:
        self.consumers.add(consumer)
        if conf.HEALTH_INTERVAL and (self.task is None or self.task.done()) and shared():
            self.task = asyncio.ensure_future(self._report_loop())

    def discard(self, consumer: Any) -> None:
        self.consumers.discard(consumer)

    def counts(self) -> dict[str, int]:
        consumers = list(self.consumers)
        streams = {consumer.stream.group_name for consumer in consumers}
        return {"connections": len(consumers), "streams": len(streams)}

    async def _report_loop(self) -> None:
        while True:
            counts = self.counts()
            try:
                await bounded(report(counts))
            except LayerFailed as exc:  # a courtesy: never breaks a socket
                logger.warning("liverooms: could not report connection counts: %s", exc)
            if not counts["connections"] and not self.consumers:
                # Read again after the await: a socket that opened while the
                # zero report was in flight found this task still running.
                return  # the next add() starts reporting again
            await asyncio.sleep(conf.HEALTH_INTERVAL)


def shared() -> bool:
    """Whether there is a Redis to report to (not on the in-memory layer)."""
    from .presence import RedisStore, get_store

    return isinstance(get_store(), RedisStore)


async def report(counts: dict[str, int]) -> None:
    """Write (or, at zero, delete) this process's counts in the shared hash."""
    from .presence import RedisStore, get_store

    store = get_store()
    if not isinstance(store, RedisStore):
        return
    client = await store.aclient()
    key, name = processes_key(store.prefix), process_name()
    if not counts["connections"]:
        await client.hdel(key, name)
        return
    ttl = max(1, math.ceil(conf.HEALTH_INTERVAL * STALE_AFTER))
    value = json.dumps({**counts, "at": time.time()})
    async with client.pipeline(transaction=False) as pipe:
        pipe.hset(key, name, value)
        pipe.expire(key, ttl)  # the hash goes when every process has gone
        await pipe.execute()


def census() -> Census:
    """The census of the running event loop (consumers add and discard themselves)."""
    here = runtime.current()
    if here.census is None:
        here.census = Census()
    return here.census


# The checking side ----------------------------------------------------------------


@dataclass
class Check:
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    checks: dict[str, Check]

    @property
    def healthy(self) -> bool:
        return all(check.ok for check in self.checks.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "checks": {name: asdict(check) for name, check in self.checks.items()},
        }


async def check_layer() -> Check:
    from .broadcast import layer

    channel_layer = layer()
    if channel_layer is None:
        return Check(False, f"no channel layer {conf.CHANNEL_LAYER!r} in CHANNEL_LAYERS")
    backend = f"{type(channel_layer).__module__}.{type(channel_layer).__qualname__}"
    token = uuid.uuid4().hex
    group = f"liverooms.health.{token}"
    try:
        channel = await bounded(private_channel_name(channel_layer))  # as the fan-out reads
        await bounded(channel_layer.group_add(group, channel))
        await bounded(channel_layer.group_send(group, {"type": HEALTH_EVENT, "token": token}))
        message = await bounded(channel_layer.receive(channel))
        await bounded(channel_layer.group_discard(group, channel))
        hosts = await _host_info(channel_layer)
    except LayerFailed as exc:
        return Check(False, f"{backend}: a message did not round-trip: {exc}")
    # No close_pools(): it would close every loop's pools in this process;
    # channels-redis closes this loop's when the loop closes.
    if message.get("token") != token:
        return Check(False, f"{backend}: a round trip returned another message", {"got": message})
    return Check(True, f"{backend}: a message round-tripped", {"backend": backend, "hosts": hosts})


async def _host_info(channel_layer: Any) -> list[dict[str, Any]]:
    """Each Redis host (shard) of a RedisChannelLayer: its run_id and version."""
    hosts = []
    for index in range(redis_hosts(channel_layer)):
        info = await bounded(channel_layer.connection(index).info("server"))
        hosts.append(
            {"index": index, "run_id": info.get("run_id"), "redis": info.get("redis_version")}
        )
    return hosts


async def check_presence(streams: list[Any]) -> Check:
    from .presence import RedisStore, get_store

    if not conf.PRESENCE:
        return Check(True, "presence is off (LIVEROOMS['PRESENCE'] = False)")
    store = get_store()
    counts: dict[str, int] = {}
    if not isinstance(store, RedisStore):
        for stream in streams:
            counts[f"{stream.kind}:{stream.slug}"] = store.state(stream.group_name, 0).count or 0
        return Check(
            True,
            "in this process's memory (in-memory layer): server processes' users are not visible here",
            {"store": "memory", "counts": counts},
        )
    try:
        client = await store.aclient()
        await bounded(client.ping())
        for stream in streams:
            change = await bounded(store.astate(stream.group_name, 0))
            counts[f"{stream.kind}:{stream.slug}"] = change.count or 0
    except LayerFailed as exc:
        return Check(False, f"the presence Redis does not answer: {exc}", {"store": "redis"})
    return Check(True, "the presence Redis answers", {"store": "redis", "counts": counts})


async def check_processes() -> Check:
    from .presence import RedisStore, get_store

    if not conf.HEALTH_INTERVAL:
        return Check(True, "not reported (LIVEROOMS['HEALTH_INTERVAL'] = 0)")
    store = get_store()
    if not isinstance(store, RedisStore):
        return Check(True, "not shared on the in-memory layer (one process, not this one)")
    try:
        processes = await bounded(read_processes(store))
    except LayerFailed as exc:
        return Check(False, f"could not read the connection counts: {exc}")
    total = sum(entry["connections"] for entry in processes.values())
    return Check(
        True,
        f"{total} connections on {len(processes)} server processes",
        {"connections": total, "processes": processes},
    )


async def read_processes(store: Any) -> dict[str, dict[str, Any]]:
    """The live processes' reports; stale ones (a killed process) are deleted."""
    client = await store.aclient()
    key = processes_key(store.prefix)
    oldest = time.time() - conf.HEALTH_INTERVAL * STALE_AFTER
    live, stale = {}, []
    for name, value in (await client.hgetall(key)).items():
        name = name.decode() if isinstance(name, bytes) else name
        entry = json.loads(value)
        if entry.get("at", 0) < oldest:
            stale.append(name)
        else:
            live[name] = entry
    if stale:
        await client.hdel(key, *stale)
    return dict(sorted(live.items()))


def check_streams(selected: list[tuple[str, str]], limit: int) -> tuple[Check, list[Any]]:
    """Latest seqs from the database; also the selected streams, for presence."""
    from . import streams

    try:
        rows, found = streams.latest_seqs(selected, limit)
    except Exception as exc:  # the database is down, or not migrated
        return Check(False, f"the database does not answer: {type(exc).__name__}: {exc}"), []
    missing = sorted(
        f"{kind}:{slug}" for kind, slug in set(selected) - {(s.kind, s.slug) for s in found}
    )
    if missing:
        return Check(False, f"no such stream: {', '.join(missing)}", {"streams": rows}), found
    return Check(True, f"{len(rows)} streams listed", {"streams": rows}), found


def collect(selected: list[tuple[str, str]] | None = None, limit: int = 10) -> Report:
    """Run every check (from synchronous code: the database part runs outside the loop)."""
    streams_check, found = check_streams(selected or [], limit)

    async def redis_checks() -> list[Check]:
        return [await check_layer(), await check_presence(found), await check_processes()]

    layer_check, presence_check, processes_check = asyncio.run(redis_checks())
    return Report(
        {
            "layer": layer_check,
            "streams": streams_check,
            "presence": presence_check,
            "processes": processes_check,
        }
    )
