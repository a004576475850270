"""Who is in a stream, across every server process.

Channels cannot list a group's members, and a set in one process is wrong as
soon as there are two, so presence lives in a shared store:

- :class:`RedisStore`, used whenever the channel layer is channels-redis (on
  the layer's first host, under the layer's prefix) or ``PRESENCE_REDIS_URL``
  is set. Per stream: a sorted set of connections scored by their expiry,
  each connection's user, a reference count per user, and a version that
  grows whenever the set of users changes. Every change is one Lua script,
  so a join and a leave are atomic and exactly one caller sees each user
  arrive or go.
- :class:`MemoryStore`, for development on the in-memory layer: the same
  rules in this process's memory. It is single-process only, like that layer.

Users are counted, not sockets: a signed-in user's tabs share the key
``user:<pk>``; an anonymous visitor counts per connection. The first
connection of a user is a join, the last a leave.

Each process tracks its own connections (:class:`Tracker`, one per event
loop). Every ``PRESENCE_HEARTBEAT`` seconds it pushes their expiry
``PRESENCE_TTL`` seconds ahead, for every stream in one round trip, and
sweeps connections whose expiry has passed: those of a killed process or a
lost network. Any process that touches a stream (a join, a leave, a
heartbeat, a read) sweeps it, so a dead connection leaves at most
``PRESENCE_TTL + PRESENCE_HEARTBEAT`` seconds after its last heartbeat while
anyone is still in the stream.

Changes are broadcast as ``presence`` frames at most once per
``PRESENCE_INTERVAL`` per stream across all processes: the process that
changed the stream claims a short lock in the store and, if it gets it,
sends the state at that moment; the others wait for the lock to lapse and
then find that their change was already sent. So a connection receives one
``presence`` frame when it joins, then at most one per interval while the
room changes, however many people join at once.

A failing store never breaks a connection or a message: errors are logged,
the joining connection gets no ``presence`` frame, and the next heartbeat
puts this process's connections back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import broadcast, protocol, runtime, signals
from .conf import conf

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Member:
    """One connection in a stream and the user it counts for."""

    conn: str
    key: str  # "user:<pk>", or "conn:<channel>" for an anonymous visitor
    info: dict[str, Any]  # {"id": int | None, "name": str}


@dataclass
class Change:
    """What one store call did to a stream."""

    joined: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (key, info)
    left: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    version: int = 0  # the stream's version after the call
    count: int | None = None  # the state, when the call reads it
    users: list[dict[str, Any]] | None = None

    @property
    def changed(self) -> bool:
        return bool(self.joined or self.left)


@dataclass
class Flush:
    """The outcome of a claim to broadcast a stream's presence."""

    change: Change
    outcome: str  # "send" (change.count/users are the state), "done" or "wait"
    wait: float = 0.0  # seconds until the lock lapses, for "wait"


def member_for(sender: Any, conn: str) -> Member:
    """A signed-in user counts once however many tabs; a guest per connection."""
    key = sender.key if sender.user is not None else f"conn:{conn}"
    return Member(conn=conn, key=key, info=sender.info)


# Stores ----------------------------------------------------------------------


class MemoryStore:
    """Presence in this process's memory, for the in-memory channel layer.

    Single-process only: a second server process has its own, so use Redis
    as soon as there are two (the Redis store is picked automatically with
    the channels-redis layer).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[str, _MemoryStream] = {}

    def reset(self) -> None:
        with self._lock:
            self._streams.clear()

    def _get(self, stream: str) -> _MemoryStream:
        return self._streams.setdefault(stream, _MemoryStream())

    async def join(self, stream: str, member: Member, ttl: float, cap: int) -> Change:
        with self._lock:
            s = self._get(stream)
            change = Change()
            s.sweep(change)
            s.add(member, time.monotonic() + ttl, change)
            return s.state(change, cap)

    async def leave(self, stream: str, conn: str) -> Change:
        with self._lock:
            s = self._get(stream)
            change = Change()
            s.drop(conn, change)
            s.sweep(change)
            change.version = s.version
            return change

    async def refresh(self, members: dict[str, list[Member]], ttl: float) -> dict[str, Change]:
        expiry = time.monotonic() + ttl
        changes = {}
        with self._lock:
            for stream, stream_members in members.items():
                s = self._get(stream)
                change = Change()
                for member in stream_members:
                    if member.conn in s.conns:
                        s.conns[member.conn] = expiry
                    else:
                        s.add(member, expiry, change)
                s.sweep(change)
                change.version = s.version
                changes[stream] = change
        return changes

    async def astate(self, stream: str, cap: int) -> Change:
        return self.state(stream, cap)

    def state(self, stream: str, cap: int) -> Change:
        with self._lock:
            s = self._get(stream)
            change = Change()
            s.sweep(change)
            return s.state(change, cap)

    async def flush(self, stream: str, target: int, interval: float, cap: int) -> Flush:
        with self._lock:
            s = self._get(stream)
            change = Change()
            s.sweep(change)
            if change.changed:
                target = max(target, s.version)
            if s.flushed >= target:
                return Flush(change, "done")
            now = time.monotonic()
            if s.locked_until > now:
                return Flush(change, "wait", s.locked_until - now)
            s.locked_until = now + interval
            s.flushed = s.version
            return Flush(s.state(change, cap), "send")


class _MemoryStream:
    def __init__(self) -> None:
        self.conns: dict[str, float] = {}  # conn -> expiry (monotonic)
        self.conn_user: dict[str, str] = {}
        self.refs: dict[str, int] = {}
        self.users: dict[str, dict[str, Any]] = {}  # key -> info, in join order
        self.version = 0
        self.flushed = 0
        self.locked_until = 0.0

    def add(self, member: Member, expiry: float, change: Change) -> None:
        if member.conn in self.conns:
            self.conns[member.conn] = expiry
            return
        self.conns[member.conn] = expiry
        self.conn_user[member.conn] = member.key
        self.refs[member.key] = self.refs.get(member.key, 0) + 1
        if self.refs[member.key] == 1:
            self.users[member.key] = member.info
            self.version += 1
            change.joined.append((member.key, member.info))

    def drop(self, conn: str, change: Change) -> None:
        if self.conns.pop(conn, None) is None:
            return
        key = self.conn_user.pop(conn)
        self.refs[key] -= 1
        if self.refs[key] <= 0:
            del self.refs[key]
            change.left.append((key, self.users.pop(key)))
            self.version += 1

    def sweep(self, change: Change) -> None:
        now = time.monotonic()
        for conn in [c for c, expiry in self.conns.items() if expiry <= now]:
            self.drop(conn, change)

    def state(self, change: Change, cap: int) -> Change:
        change.version = self.version
        change.count = len(self.users)
        change.users = list(self.users.values())[:cap] if cap else []
        return change


# All the Redis scripts share these helpers. KEYS: 1 conns (zset conn ->
# expiry ms), 2 conn_user (hash conn -> user key), 3 refs (hash user key ->
# connections), 4 users (zset user key -> first join ms), 5 info (hash user
# key -> JSON), 6 version, 7 flushed, 8 lock. Times come from Redis (TIME),
# so the clocks of the server processes do not matter.
_LUA_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local joined, left = {}, {}
local function drop(conn)
  if redis.call('ZREM', KEYS[1], conn) == 0 then return end
  local user = redis.call('HGET', KEYS[2], conn)
  redis.call('HDEL', KEYS[2], conn)
  if not user then return end
  if redis.call('HINCRBY', KEYS[3], user, -1) > 0 then return end
  local info = redis.call('HGET', KEYS[5], user)
  redis.call('HDEL', KEYS[3], user)
  redis.call('ZREM', KEYS[4], user)
  redis.call('HDEL', KEYS[5], user)
  redis.call('INCR', KEYS[6])
  table.insert(left, user)
  table.insert(left, info or '{}')
end
local function add(conn, user, info, expiry)
  if redis.call('ZADD', KEYS[1], expiry, conn) == 0 then return end
  redis.call('HSET', KEYS[2], conn, user)
  if redis.call('HINCRBY', KEYS[3], user, 1) == 1 then
    redis.call('ZADD', KEYS[4], now, user)
    redis.call('HSET', KEYS[5], user, info)
    redis.call('INCR', KEYS[6])
    table.insert(joined, user)
    table.insert(joined, info)
  end
end
local function sweep()
  for _, conn in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
    drop(conn)
  end
end
local function keep(ttl)
  for i = 1, 7 do redis.call('PEXPIRE', KEYS[i], ttl) end
end
local function version()
  return tonumber(redis.call('GET', KEYS[6]) or '0')
end
local function state(cap)
  local count = redis.call('ZCARD', KEYS[4])
  local users = {}
  if cap > 0 and count > 0 then
    for _, user in ipairs(redis.call('ZRANGE', KEYS[4], 0, cap - 1)) do
      table.insert(users, redis.call('HGET', KEYS[5], user) or '{}')
    end
  end
  return {count, users}
end
"""

# ARGV: conn, user key, info JSON, ttl ms, cap
_LUA_JOIN = (
    _LUA_PRELUDE
    + """
sweep()
add(ARGV[1], ARGV[2], ARGV[3], now + tonumber(ARGV[4]))
keep(tonumber(ARGV[4]) * 2)
return {joined, left, version(), state(tonumber(ARGV[5]))}
"""
)

# ARGV: conn
_LUA_LEAVE = (
    _LUA_PRELUDE
    + """
drop(ARGV[1])
sweep()
return {joined, left, version()}
"""
)

# ARGV: ttl ms, then conn, user key, info JSON for each of this process's connections
_LUA_REFRESH = (
    _LUA_PRELUDE
    + """
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV, 3 do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
  else
    add(ARGV[i], ARGV[i + 1], ARGV[i + 2], now + ttl)
  end
end
sweep()
keep(ttl * 2)
return {joined, left, version()}
"""
)

# ARGV: cap
_LUA_STATE = (
    _LUA_PRELUDE
    + """
sweep()
return {joined, left, version(), state(tonumber(ARGV[1]))}
"""
)

# ARGV: target version, interval ms, cap
_LUA_FLUSH = (
    _LUA_PRELUDE
    + """
local target = tonumber(ARGV[1])
sweep()
if #left > 0 then target = math.max(target, version()) end
if tonumber(redis.call('GET', KEYS[7]) or '0') >= target then
  return {joined, left, version(), 'done'}
end
if not redis.call('SET', KEYS[8], '1', 'NX', 'PX', tonumber(ARGV[2])) then
  return {joined, left, version(), 'wait', redis.call('PTTL', KEYS[8])}
end
redis.call('SET', KEYS[7], version())
local pttl = redis.call('PTTL', KEYS[6])
if pttl > 0 then redis.call('PEXPIRE', KEYS[7], pttl) end
return {joined, left, version(), 'send', state(tonumber(ARGV[3]))}
"""
)

_KEY_NAMES = ("conns", "conn_user", "refs", "users", "info", "version", "flushed", "lock")


def _pairs(flat: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(_text(flat[i]), json.loads(flat[i + 1])) for i in range(0, len(flat), 2)]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _change(reply: list[Any]) -> Change:
    change = Change(joined=_pairs(reply[0]), left=_pairs(reply[1]), version=int(reply[2]))
    return change


def _with_state(change: Change, state: list[Any]) -> Change:
    change.count = int(state[0])
    change.users = [json.loads(info) for info in state[1] if info]
    return change


class RedisStore:
    """Presence in Redis, shared by every process on the same server."""

    def __init__(self, url: str | None = None, prefix: str = "asgi", **client_kwargs: Any):
        self.url = url
        self.prefix = prefix
        self.client_kwargs = {k: v for k, v in client_kwargs.items() if v is not None}
        self._async_clients: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._sync_client: Any = None

    def keys(self, stream: str) -> list[str]:
        # The hash tag keeps a stream's keys in one slot on Redis Cluster.
        return [f"{self.prefix}:liverooms:presence:{{{stream}}}:{name}" for name in _KEY_NAMES]

    def _client(self, module: Any) -> Any:
        kwargs = dict(self.client_kwargs)
        master_name = kwargs.pop("master_name", None)
        if master_name is not None:
            # A Sentinel-configured layer host, as channels-redis reads it: the
            # client asks the Sentinels for the current master, and again after
            # a failover.
            sentinel = module.sentinel.Sentinel(
                kwargs.pop("sentinels"), sentinel_kwargs=kwargs.pop("sentinel_kwargs", None)
            )
            return sentinel.master_for(master_name, **kwargs)
        if self.url:
            return module.Redis.from_url(self.url, **kwargs)
        return module.Redis(**kwargs)

    async def aclient(self) -> Any:
        """This event loop's redis.asyncio client (health.py's reports use it too)."""
        return self._aclient()[0]

    def _aclient(self) -> Any:
        loop = asyncio.get_running_loop()
        entry = self._async_clients.get(loop)
        if entry is None:
            import redis.asyncio
            import redis.asyncio.sentinel  # noqa: F401  (module.sentinel in _client)

            client = self._client(redis.asyncio)
            entry = (client, {name: client.register_script(lua) for name, lua in _SCRIPTS})
            self._async_clients[loop] = entry
        return entry

    def _sclient(self) -> Any:
        if self._sync_client is None:
            import redis
            import redis.sentinel  # noqa: F401

            client = self._client(redis)
            self._sync_client = (
                client,
                {name: client.register_script(lua) for name, lua in _SCRIPTS},
            )
        return self._sync_client

    async def _run(self, script: str, stream: str, args: list[Any]) -> Any:
        _, scripts = self._aclient()
        return await scripts[script](keys=self.keys(stream), args=args)

    async def join(self, stream: str, member: Member, ttl: float, cap: int) -> Change:
        reply = await self._run(
            "join", stream, [member.conn, member.key, protocol.encode(member.info), _ms(ttl), cap]
        )
        return _with_state(_change(reply), reply[3])

    async def leave(self, stream: str, conn: str) -> Change:
        return _change(await self._run("leave", stream, [conn]))

    async def refresh(self, members: dict[str, list[Member]], ttl: float) -> dict[str, Change]:
        """Every stream of this process in one round trip (a pipeline)."""
        client, scripts = self._aclient()
        streams = list(members)
        async with client.pipeline(transaction=False) as pipe:
            for stream in streams:
                args: list[Any] = [_ms(ttl)]
                for member in members[stream]:
                    args += [member.conn, member.key, protocol.encode(member.info)]
                await scripts["refresh"](keys=self.keys(stream), args=args, client=pipe)
            replies = await pipe.execute()
        return {stream: _change(reply) for stream, reply in zip(streams, replies, strict=True)}

    async def astate(self, stream: str, cap: int) -> Change:
        reply = await self._run("state", stream, [cap])
        return _with_state(_change(reply), reply[3])

    def state(self, stream: str, cap: int) -> Change:
        _, scripts = self._sclient()
        reply = scripts["state"](keys=self.keys(stream), args=[cap])
        return _with_state(_change(reply), reply[3])

    async def flush(self, stream: str, target: int, interval: float, cap: int) -> Flush:
        reply = await self._run("flush", stream, [target, _ms(interval), cap])
        change, outcome = _change(reply), _text(reply[3])
        if outcome == "send":
            return Flush(_with_state(change, reply[4]), "send")
        if outcome == "wait":
            return Flush(change, "wait", max(int(reply[4]), 1) / 1000)
        return Flush(change, "done")


_SCRIPTS = [
    ("join", _LUA_JOIN),
    ("leave", _LUA_LEAVE),
    ("refresh", _LUA_REFRESH),
    ("state", _LUA_STATE),
    ("flush", _LUA_FLUSH),
]


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


_memory_store = MemoryStore()


def reset_memory_store() -> None:
    """Forget every stream of the in-process store (for tests)."""
    _memory_store.reset()


_redis_stores: dict[Any, RedisStore] = {}


def redis_location() -> tuple[str | None, str, dict[str, Any]] | None:
    """(url, key prefix, client kwargs) of the Redis presence store, or None.

    ``PRESENCE_REDIS_URL`` wins; otherwise a channels-redis layer's first host
    (with sharding, every process that has the same ``hosts`` list picks the
    same one), which may be a Sentinel-managed master. Raises ValueError for a
    host that names Sentinels but no ``master_name`` (check liverooms.E081).
    """
    from django.conf import settings

    layer = (getattr(settings, "CHANNEL_LAYERS", None) or {}).get(conf.CHANNEL_LAYER, {})
    layer_config = layer.get("CONFIG", {}) or {}
    prefix = layer_config.get("prefix", "asgi")
    if conf.PRESENCE_REDIS_URL:
        return conf.PRESENCE_REDIS_URL, prefix, {}
    if not layer.get("BACKEND", "").startswith("channels_redis."):
        return None
    from channels_redis.utils import decode_hosts

    host = dict(decode_hosts(layer_config.get("hosts"))[0])
    if "sentinels" in host and "master_name" not in host:
        raise ValueError("the layer's first host lists Sentinels but no master_name")
    # As channels-redis builds its pool: the address (or the Sentinels and
    # master_name), and the rest as client options.
    address = host.pop("address", None)
    return address, prefix, host


def get_store() -> MemoryStore | RedisStore:
    """The store for the current settings (read each time, so tests can override)."""
    try:
        location = redis_location()
    except ValueError:
        logger.exception("liverooms: presence falls back to this process's memory")
        location = None
    if location is None:
        return _memory_store
    url, prefix, kwargs = location
    cache_key = (url, prefix, repr(sorted(kwargs.items())))
    store = _redis_stores.get(cache_key)
    if store is None:
        store = _redis_stores[cache_key] = RedisStore(url, prefix, **kwargs)
    return store


def users_cap(stream: Any) -> int:
    """Live blogs show a reader count only; chat rooms list who is online."""
    return conf.PRESENCE_USERS_MAX if stream.kind == "chat" else 0


def frame_text(change: Change) -> str:
    return protocol.encode(protocol.presence(change.count or 0, change.users or []))


# This process's connections -----------------------------------------------------


@dataclass
class _Local:
    stream: Any
    members: dict[str, Member] = field(default_factory=dict)


class Tracker:
    """One event loop's connections: joins, leaves, heartbeats and broadcasts."""

    def __init__(self, store: MemoryStore | RedisStore) -> None:
        self.store = store
        self.local: dict[str, _Local] = {}
        self.pending: dict[str, list[Any]] = {}  # stream -> [target version, due, stream]
        self._wake = asyncio.Event()
        self._heartbeat: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None

    async def join(self, stream: Any, member: Member, send: Callable[..., Any]) -> None:
        key = stream.group_name
        self.local.setdefault(key, _Local(stream)).members[member.conn] = member
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.ensure_future(self._beat())
        try:
            change = await self.store.join(key, member, conf.PRESENCE_TTL, users_cap(stream))
        except Exception:
            logger.exception("liverooms: presence join in %s failed", key)
            return
        await send(text_data=frame_text(change))
        await self._changed(stream, change)

    async def leave(self, stream: Any, conn: str) -> None:
        key = stream.group_name
        local = self.local.get(key)
        if local is not None:
            local.members.pop(conn, None)
            if not local.members:
                del self.local[key]
        try:
            change = await self.store.leave(key, conn)
        except Exception:
            logger.exception("liverooms: presence leave in %s failed", key)
            return
        await self._changed(stream, change)

    async def _changed(self, stream: Any, change: Change) -> None:
        if not change.changed:
            return
        key = stream.group_name
        if key in self.pending:
            self.pending[key][0] = max(self.pending[key][0], change.version)
        else:
            self.pending[key] = [change.version, time.monotonic(), stream]
            self._wake.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush_loop())
        await send_signals(stream, change)

    async def _beat(self) -> None:
        while self.local:
            await asyncio.sleep(conf.PRESENCE_HEARTBEAT)
            snapshot = {key: list(local.members.values()) for key, local in self.local.items()}
            if not snapshot:
                break
            try:
                changes = await self.store.refresh(snapshot, conf.PRESENCE_TTL)
            except Exception:
                logger.exception("liverooms: presence heartbeat failed")
                continue
            for key, change in changes.items():
                local = self.local.get(key)
                if local is not None:
                    await self._changed(local.stream, change)

    async def _flush_loop(self) -> None:
        while self.pending:
            now = time.monotonic()
            due = [key for key, (_, at, _) in self.pending.items() if at <= now]
            if not due:
                self._wake.clear()
                wait = min(at for _, at, _ in self.pending.values()) - now
                # Not wait_for, which can swallow a cancel on Python < 3.12.
                waiter = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({waiter}, timeout=wait)
                finally:
                    waiter.cancel()
                continue
            for key in due:
                target, _, stream = self.pending.pop(key)
                await self._flush(key, target, stream)

    async def _flush(self, key: str, target: int, stream: Any) -> None:
        interval = conf.PRESENCE_INTERVAL
        try:
            result = await self.store.flush(key, target, interval, users_cap(stream))
        except Exception:
            logger.exception("liverooms: presence broadcast in %s failed", key)
            if key in self.local:  # retry while someone here still cares
                self.pending.setdefault(key, [target, time.monotonic() + interval, stream])
            return
        if result.outcome == "send":
            text = frame_text(result.change)
            await broadcast.apublish([broadcast.Broadcast(key, None, text)])
        elif result.outcome == "wait":
            self.pending.setdefault(key, [target, time.monotonic() + result.wait, stream])
        if result.change.left:  # swept now: dead connections' users
            await self._changed(stream, result.change)


def tracker() -> Tracker:
    """This event loop's tracker, over the store the settings give now."""
    here = runtime.current()
    store = get_store()
    if here.presence is None or here.presence.store is not store:
        here.presence = Tracker(store)
    return here.presence


# Signals --------------------------------------------------------------------------


def _signal_calls(stream: Any, change: Change) -> Any:
    """(signal, kwargs) for each user who joined or left."""
    for signal, people in ((signals.user_joined, change.joined), (signals.user_left, change.left)):
        for key, info in people:
            kwargs = {
                "sender": type(stream),
                "stream": stream,
                "key": key,
                "user_id": info.get("id"),
                "name": info.get("name", ""),
            }
            yield signal, kwargs


async def send_signals(stream: Any, change: Change) -> None:
    for signal, kwargs in _signal_calls(stream, change):
        _log_failures(signal, await signal.asend_robust(**kwargs))


def _send_signals_sync(stream: Any, change: Change) -> None:
    for signal, kwargs in _signal_calls(stream, change):
        _log_failures(signal, signal.send_robust(**kwargs))


def _log_failures(signal: Any, responses: list[tuple[Any, Any]]) -> None:
    for receiver, response in responses:
        if isinstance(response, Exception):
            logger.error("liverooms: %r receiver %r failed", signal, receiver, exc_info=response)


# The consumers' hooks ----------------------------------------------------------------


async def ajoin(stream: Any, conn: str, sender: Any, send: Callable[..., Any]) -> None:
    """Count a connection in; send it the stream's ``presence`` frame with ``send``."""
    if not conf.PRESENCE:
        return
    try:
        await tracker().join(stream, member_for(sender, conn), send)
    except Exception:  # presence is a courtesy: it must never break a connection
        logger.exception("liverooms: presence join failed")


async def aleave(stream: Any, conn: str) -> None:
    if not conf.PRESENCE:
        return
    try:
        await tracker().leave(stream, conn)
    except Exception:
        logger.exception("liverooms: presence leave failed")


# The Python API ------------------------------------------------------------------------


def users(stream: Any, limit: int | None = None) -> list[dict[str, Any]]:
    """The distinct users in a stream (``{"id", "name"}``), first arrived first.

    Anonymous visitors appear once per connection, with ``id`` None.
    """
    change = get_store().state(stream.group_name, limit if limit is not None else 2**31)
    _send_signals_sync(stream, change)
    return change.users or []


def count(stream: Any) -> int:
    """How many distinct users are in a stream, across every process."""
    change = get_store().state(stream.group_name, 0)
    _send_signals_sync(stream, change)
    return change.count or 0


async def ausers(stream: Any, limit: int | None = None) -> list[dict[str, Any]]:
    change = await get_store().astate(stream.group_name, limit if limit is not None else 2**31)
    await send_signals(stream, change)
    return change.users or []


async def acount(stream: Any) -> int:
    change = await get_store().astate(stream.group_name, 0)
    await send_signals(stream, change)
    return change.count or 0
