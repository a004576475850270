"""Rate limits: token buckets per connection and per user, and abuse strikes.

A *rate* is ``(count, seconds)``: up to ``count`` actions at once, refilled
continuously at ``count`` per ``seconds``; ``None`` turns a limit off.

Per-connection buckets live on the consumer. Per-user buckets and the
connections-per-user count live in a :class:`Counters` backend shared by the
consumers of one process. The default, :class:`LocalCounters`, is
process-local: with N server processes a user gets up to N times the per-user
rate and N times the connection limit. A shared backend (e.g. Redis) only has
to implement the three async methods of :class:`Counters` and be installed
with :func:`set_counters`.

Connections (sockets and SSE streams alike) count per user, per guest
session, or, for a guest without a session, per client address
(:func:`client_address`, which believes ``X-Forwarded-For`` only from
``TRUSTED_PROXIES``): :func:`connection_cap`, :func:`acquire_slot`,
:func:`stream_slot`. Sessionless guests' writes share one ``USER_SEND_RATE``
budget per address (:func:`send_key`).

Everything takes an injected clock, so the arithmetic is unit-testable.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from django.utils.translation import gettext

from . import protocol
from .conf import conf

Clock = Callable[[], float]
EPSILON = 1e-9  # refills are float sums: 0.95 + 0.05 may fall short of 1


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: float

    @classmethod
    def parse(cls, value: Any) -> Rate | None:
        """A rate from a setting: ``(count, seconds)`` or None; ValueError otherwise."""
        if value is None:
            return None
        try:
            count, seconds = value
        except (TypeError, ValueError):
            raise ValueError(f"expected (count, seconds) or None, not {value!r}") from None
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive integer, not {count!r}")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
            raise ValueError(f"seconds must be a positive number, not {seconds!r}")
        return cls(count, float(seconds))


@dataclass
class TokenBucket:
    rate: Rate
    tokens: float
    updated: float

    @classmethod
    def full(cls, rate: Rate, now: float) -> TokenBucket:
        return cls(rate, float(rate.count), now)

    def _refill(self, now: float) -> None:
        elapsed = max(now - self.updated, 0.0)
        self.tokens = min(
            float(self.rate.count), self.tokens + elapsed * self.rate.count / self.rate.seconds
        )
        self.updated = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        self._refill(now)
        if self.tokens >= 1 - EPSILON:
            self.tokens = max(self.tokens - 1, 0.0)
            return True
        return False

    def is_full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.rate.count - EPSILON


class Counters(Protocol):
    """Per-user state shared by connections: the pluggable part."""

    async def take(self, key: str, rate: Rate) -> bool:
        """Spend one token of ``key``'s bucket at ``rate``."""

    async def acquire(self, key: str, limit: int) -> bool:
        """Count one more connection of ``key`` unless it has ``limit`` already."""

    async def release(self, key: str) -> None:
        """Count one connection of ``key`` fewer."""


@dataclass
class LocalCounters:
    """Counters in this process's memory (see the module docstring)."""

    clock: Clock = time.monotonic
    max_buckets: int = 100_000
    buckets: dict[tuple[str, Rate], TokenBucket] = field(default_factory=dict)
    connections: dict[str, int] = field(default_factory=dict)

    async def take(self, key: str, rate: Rate) -> bool:
        return self.take_now(key, rate)

    def take_now(self, key: str, rate: Rate) -> bool:
        """``take`` for synchronous callers (not thread-safe by itself)."""
        now = self.clock()
        bucket = self.buckets.get((key, rate))
        if bucket is None:
            if len(self.buckets) >= self.max_buckets:
                self._prune(now)
            bucket = self.buckets[(key, rate)] = TokenBucket.full(rate, now)
        return bucket.take(now)

    def _prune(self, now: float) -> None:
        # A full bucket holds no information: dropping it changes nothing.
        for key in [k for k, b in self.buckets.items() if b.is_full(now)]:
            del self.buckets[key]

    async def acquire(self, key: str, limit: int) -> bool:
        count = self.connections.get(key, 0)
        if count >= limit:
            return False
        self.connections[key] = count + 1
        return True

    async def release(self, key: str) -> None:
        count = self.connections.get(key, 0) - 1
        if count > 0:
            self.connections[key] = count
        else:
            self.connections.pop(key, None)


_counters: Counters = LocalCounters()


def get_counters() -> Counters:
    return _counters


def set_counters(counters: Counters) -> Counters:
    """Install a Counters backend (for every consumer of this process); returns the old one."""
    global _counters
    previous, _counters = _counters, counters
    return previous


def owner_key(scope: dict[str, Any]) -> str | None:
    """Whose connections count together: a user, or a guest's session (as
    policy.identify() keys them), or a sessionless guest's address
    (``ip:<address>``); None when not even the address is known."""
    user = scope.get("user")
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    session_key = getattr(scope.get("session"), "session_key", None)
    if session_key:
        return f"session:{session_key}"
    address = client_address(scope)
    return f"ip:{address}" if address else None


def connection_cap(scope: dict[str, Any]) -> tuple[str, int] | None:
    """The key a connection (socket or SSE stream) counts under and its cap.

    Users and guest sessions: ``MAX_CONNECTIONS_PER_USER``; sessionless
    guests, per client address: ``MAX_CONNECTIONS_PER_ADDRESS``. None: uncapped.
    """
    key = owner_key(scope)
    if key is None:
        return None
    limit = (
        conf.MAX_CONNECTIONS_PER_ADDRESS if key.startswith("ip:") else conf.MAX_CONNECTIONS_PER_USER
    )
    return None if limit is None else (key, limit)


def send_key(sender_key: str, scope: dict[str, Any]) -> str:
    """Whose writes ``USER_SEND_RATE`` counts together: the sender's key
    (policy.identify()), except that sessionless guests, keyed by their
    connection, count per client address (a new socket is no new budget)."""
    if sender_key.startswith("conn:"):
        address = client_address(scope)
        if address:
            return f"ip:{address}"
    return sender_key


async def acquire_slot(scope: dict[str, Any]) -> str | None | bool:
    """Count one more connection for ``scope``'s client.

    The key to :func:`release_slot` later, None if uncapped (nothing to
    release), or False if the client is at its cap (refuse it)."""
    cap = connection_cap(scope)
    if cap is None:
        return None
    key, limit = cap
    if not await get_counters().acquire(key, limit):
        return False
    return key


async def release_slot(key: str | None | bool) -> None:
    if isinstance(key, str):
        await get_counters().release(key)


@asynccontextmanager
async def stream_slot(scope: dict[str, Any]) -> AsyncIterator[bool]:
    """``async with stream_slot(scope) as ok:`` a connection slot held for the
    block; ``ok`` is False (and nothing held) when the client is at its cap."""
    key = await acquire_slot(scope)
    try:
        yield key is not False
    finally:
        await release_slot(key)


class LocalBuckets:
    """Token buckets for synchronous callers (the HTTP history views), any thread."""

    def __init__(self, clock: Clock = time.monotonic, max_buckets: int = 100_000) -> None:
        self.lock = threading.Lock()
        self.counters = LocalCounters(clock=clock, max_buckets=max_buckets)

    def take(self, key: str, rate: Rate) -> bool:
        with self.lock:
            return self.counters.take_now(key, rate)


class Gate:
    """At most ``limit`` callers inside at once (any thread); the rest are turned away."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = 0

    def enter(self, limit: int | None) -> bool:
        with self.lock:
            if limit is not None and self.inside >= limit:
                return False
            self.inside += 1
            return True

    def leave(self) -> None:
        with self.lock:
            self.inside -= 1


# The client's address ------------------------------------------------------------


def client_address(scope: dict[str, Any]) -> str:
    """The client's IP address: the ASGI peer (``scope["client"]``) or, when
    the peer is one of ``TRUSTED_PROXIES``, the rightmost address of
    ``X-Forwarded-For`` that is not a trusted proxy. "" when unknown (a Unix
    socket without a trusted proxy's header)."""
    client = scope.get("client")
    peer = _ip(client[0]) if client else None
    proxies = trusted_proxies()
    if peer is None:
        return ""
    if not proxies or not _trusted(peer, proxies):
        return str(peer)
    hops = [
        hop.strip()
        for value in _header_values(scope, b"x-forwarded-for")
        for hop in value.split(",")
    ]
    address = peer
    for hop in reversed(hops):
        parsed = _ip(hop)
        if parsed is None:
            break  # a malformed hop: believe nothing to its left
        address = parsed
        if not _trusted(parsed, proxies):
            break
    return str(address)


def parse_proxies(value: Any) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``TRUSTED_PROXIES`` as networks; ValueError naming a malformed entry."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise ValueError(f"expected a list of IP addresses or networks, not {value!r}")
    networks = []
    for entry in value:
        try:
            networks.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network (CIDR)") from None
    return networks


def trusted_proxies() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    raw = conf.TRUSTED_PROXIES
    return _parsed_proxies(tuple(raw) if isinstance(raw, (list, tuple)) else raw)


@lru_cache(maxsize=8)
def _parsed_proxies(raw: Any) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        return parse_proxies(list(raw) if isinstance(raw, tuple) else raw)
    except ValueError:
        return []  # reported by the system check liverooms.E101; trust nobody


def _trusted(address: Any, proxies: list[Any]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except (ValueError, AttributeError):
        return None
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:1.2.3.4 is 1.2.3.4
    return mapped or address


def _header_values(scope: dict[str, Any], name: bytes) -> list[str]:
    return [
        value.decode("latin-1") for key, value in scope.get("headers", ()) if key.lower() == name
    ]


class ConnectionLimiter:
    """The limits of one connection; ``sender_key`` names its user or guest.

    Each method raises :class:`protocol.ProtocolError` (``rate_limited``) for
    a frame over a limit. Every such refusal is a strike; once the strikes
    exceed ``ABUSE_LIMIT`` the error carries close code 4429.
    """

    def __init__(
        self, sender_key: str, *, counters: Counters | None = None, clock: Clock = time.monotonic
    ):
        self.sender_key = sender_key
        self.counters = counters if counters is not None else get_counters()
        self.clock = clock
        now = clock()
        self.frames = _bucket(conf.FRAME_RATE, now)
        self.sends = _bucket(conf.SEND_RATE, now)
        self.typings = _bucket(conf.TYPING_RATE, now)
        self.strikes = _bucket(conf.ABUSE_LIMIT, now)
        self.user_rate = Rate.parse(conf.USER_SEND_RATE)

    def frame(self) -> None:
        """Any inbound frame, parsed or not."""
        if self.frames is not None and not self.frames.take(self.clock()):
            self._refuse(gettext("Too many frames; slow down."), None)

    async def send(self, client_id: str | None = None) -> None:
        """A write: a message, an edit, a deletion, a mute."""
        if self.sends is not None and not self.sends.take(self.clock()):
            self._refuse(gettext("Too many messages from this connection; slow down."), client_id)
        if self.user_rate is not None and not await self.counters.take(
            f"send:{self.sender_key}", self.user_rate
        ):
            self._refuse(gettext("Too many messages from you; slow down."), client_id)

    def typing(self) -> bool:
        """Whether to relay a typing frame; excess typing is dropped, not refused."""
        return self.typings is None or self.typings.take(self.clock())

    def _refuse(self, detail: str, client_id: str | None) -> None:
        close = self.strikes is not None and not self.strikes.take(self.clock())
        raise protocol.ProtocolError(
            protocol.RATE_LIMITED,
            detail,
            client_id,
            close_code=protocol.CLOSE_ABUSE if close else None,
        )


def _bucket(setting: Any, now: float) -> TokenBucket | None:
    rate = Rate.parse(setting)
    return None if rate is None else TokenBucket.full(rate, now)
