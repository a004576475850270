"""What one event loop of a server process keeps for its connections.

A server process runs its sockets on one event loop (a test, or a thread
running its own loop, may have more). Everything tied to a loop's tasks and
futures lives in that loop's :class:`Runtime`, one object, instead of a
registry per module:

- ``hubs``: the fan-out hub of each channel layer (fanout.hub_for)
- ``watches``: the Redis watch of each channel layer (layerwatch.watch_for)
- ``census``: the open sockets and SSE streams (health.census)
- ``presence``: the presence tracker (presence.tracker)
- ``sessions``: the signed-in readers whose sessions are re-checked (sessions.watch_here)
- ``writer``: the group-commit writer (writer.writer)
- ``reads``: the batched history reads of connections opening (reads.history)

A connection uses them through subscription.py (attach, ready, detach),
the same three calls for a WebSocket and an SSE response. Each module
creates its part on first use; :func:`reset` forgets them all
(with the process-wide rate-limit counters and in-memory presence store),
which is the one reset a test needs.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any


class Runtime:
    """One event loop's share of the app (see the module docstring)."""

    __slots__ = (
        "hubs",
        "watches",
        "census",
        "presence",
        "sessions",
        "writer",
        "reads",
        "__weakref__",
    )

    def __init__(self) -> None:
        self.hubs: dict[Any, Any] = {}
        self.watches: dict[int, Any] = {}
        self.census: Any = None
        self.presence: Any = None
        self.sessions: Any = None
        self.writer: Any = None
        self.reads: Any = None


_runtimes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Runtime] = (
    weakref.WeakKeyDictionary()
)


def current() -> Runtime:
    """The running event loop's runtime."""
    loop = asyncio.get_running_loop()
    found = _runtimes.get(loop)
    if found is None:
        found = _runtimes[loop] = Runtime()
    return found


def every_loop() -> list[tuple[asyncio.AbstractEventLoop, Runtime]]:
    """Each event loop with a runtime, from any thread (signal receivers)."""
    for _ in range(3):  # another thread may add a loop meanwhile
        try:
            return list(_runtimes.items())
        except RuntimeError:
            continue
    return []


def reset() -> None:
    """Forget every runtime and the process-wide state (between tests)."""
    from . import presence, ratelimit

    _runtimes.clear()
    presence.reset_memory_store()
    ratelimit.set_counters(ratelimit.LocalCounters())
