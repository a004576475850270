"""Channel-layer faults: bounded layer calls and a per-process watch on Redis.

Channels gives a consumer no signal when its layer goes away: a call to a
dead Redis raises, a paused one hangs, and after a restart the group
memberships are gone and the socket silently gets nothing more. The database
is the source of truth, so the safe answer to all three is the same: close
the socket with 4503 and let the client reconnect and resume with
``?after=<seq>`` (the consumer's ``layer_failed()``).

- :func:`bounded` limits a layer call to ``LAYER_TIMEOUT`` seconds.
- :class:`Watch` (one per event loop) checks each Redis host of the layer
  every ``LAYER_CHECK_INTERVAL`` seconds; when a host does not answer in time,
  or answers with a new ``run_id`` (it restarted and lost the groups), every
  watched consumer is told. Until a check succeeds again, new connections are
  closed with 4503 at once instead of waiting for a dead layer.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable
from typing import Any, Protocol, TypeVar

from . import _compat, runtime
from .conf import conf

logger = logging.getLogger(__name__)

T = TypeVar("T")

RESET_INTERVAL = 1.0  # seconds: one pool reset covers a burst of failures
CANCEL_RETRY = 0.1  # seconds between repeated cancels of a layer call
CANCEL_ATTEMPTS = 100


class LayerFailed(Exception):
    """A channel-layer call raised or did not finish within ``LAYER_TIMEOUT``."""


async def bounded(call: Awaitable[T]) -> T:
    """Await a layer call for at most ``LAYER_TIMEOUT`` seconds; LayerFailed otherwise."""
    # Not asyncio.wait_for: on Python < 3.12 it can swallow a cancel that
    # arrives as the call finishes, and a watch loop that swallowed its cancel
    # would never end (an event loop could not close).
    task = asyncio.ensure_future(call)
    try:
        done, _ = await asyncio.wait({task}, timeout=conf.LAYER_TIMEOUT)
    except asyncio.CancelledError:
        cancel(task)
        raise
    if not done:
        cancel(task)
        raise LayerFailed(f"no answer within LAYER_TIMEOUT ({conf.LAYER_TIMEOUT} s)")
    try:
        return task.result()
    except Exception as exc:  # the layer's own error (redis ConnectionError, ...)
        raise LayerFailed(f"{type(exc).__name__}: {exc}") from exc


async def cancellable(call: Awaitable[T]) -> T:
    """Await a layer read so that cancelling the caller always ends it.

    The read runs as a task of its own; the caller waits on it through a
    shield, which a cancel cannot miss, and then :func:`cancel` makes sure
    the read ends too.
    """
    task = asyncio.ensure_future(call)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        cancel(task)
        raise


def cancel(task: asyncio.Future[Any]) -> None:
    """Cancel a layer call, and cancel it again until it has ended.

    channels-redis 4.3 on redis-py 8 can swallow a cancel that lands in a
    blocking Redis read (seen on Python 3.10 and 3.11): the read then loops on
    for good, holding the process's receive lock, and an event loop that is
    closing waits for it forever. A later cancel lands.
    """
    if not task.done():
        task.cancel()
        background(_cancel_again(task))


async def _cancel_again(task: asyncio.Future[Any]) -> None:
    for _ in range(CANCEL_ATTEMPTS):
        try:
            await asyncio.wait({task}, timeout=CANCEL_RETRY)
        except asyncio.CancelledError:
            pass  # the loop is closing: it must see the call end first
        if task.done():
            return
        task.cancel()


class Watched(Protocol):
    async def layer_failed(self) -> None: ...


class Watch:
    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.consumers: weakref.WeakSet[Any] = weakref.WeakSet()
        self.run_ids: dict[int, str] = {}
        self.healthy = True
        self.task: asyncio.Task[None] | None = None
        self.first_check: asyncio.Future[None] | None = None
        self.last_reset = float("-inf")

    async def add(self, consumer: Watched) -> bool:
        """Watch a consumer that has joined its group; False if the layer is down."""
        interval = conf.LAYER_CHECK_INTERVAL
        if not interval or not _compat.redis_hosts(self.layer):
            return True
        if self.task is None or self.task.done():
            self.first_check = asyncio.get_running_loop().create_future()
            self.task = asyncio.ensure_future(self.run())
        # The first check records each host's run_id; a consumer that joined
        # before it must be covered by it, or a restart in between goes unseen.
        assert self.first_check is not None
        await asyncio.shield(self.first_check)
        if not self.healthy:
            return False
        self.consumers.add(consumer)
        return True

    def discard(self, consumer: Watched) -> None:
        self.consumers.discard(consumer)

    async def run(self) -> None:
        while True:
            failure = await self.check()
            self.healthy = failure is None
            if failure is not None:
                logger.warning("liverooms: channel layer failed (%s); closing sockets", failure)
                self.fail_all()
                await self.reset()
            if self.first_check is not None and not self.first_check.done():
                self.first_check.set_result(None)
            await asyncio.sleep(conf.LAYER_CHECK_INTERVAL)
            if self.healthy and not self.consumers:
                return  # idle; the next add() starts a new watch with a fresh first check

    async def check(self) -> str | None:
        """None if every host answered as before, else what went wrong."""
        for index in range(_compat.redis_hosts(self.layer)):
            try:
                info = await bounded(self.layer.connection(index).info("server"))
            except LayerFailed as exc:
                self.run_ids.pop(index, None)
                return f"host {index}: {exc}"
            run_id = str(info.get("run_id", ""))
            known = self.run_ids.get(index)
            self.run_ids[index] = run_id
            if known is not None and known != run_id:
                return f"host {index} restarted (its groups are gone)"
        return None

    async def reset(self) -> None:
        """Drop the layer's idle pooled Redis connections (at most once a second).

        After a restart every pooled connection is stale and the first command
        on each would fail: a new socket could be refused long after Redis is
        back. Connections in use are left to fail on their own.
        """
        now = asyncio.get_running_loop().time()
        if now - self.last_reset < RESET_INTERVAL:
            return
        self.last_reset = now
        for index in range(_compat.redis_hosts(self.layer)):
            pool = self.layer.connection(index).connection_pool
            try:
                await bounded(pool.disconnect(inuse_connections=False))
            except LayerFailed:
                pass  # closing a socket cannot really fail; a stalled one is dropped anyway

    def fail_all(self) -> None:
        consumers, self.consumers = list(self.consumers), weakref.WeakSet()
        for consumer in consumers:
            background(consumer.layer_failed())


_background: set[asyncio.Task[Any]] = set()


def background(call: Awaitable[Any]) -> None:
    """Run ``call`` as a task, holding it until done (the loop only holds tasks weakly)."""
    task = asyncio.ensure_future(call)
    _background.add(task)
    task.add_done_callback(_background.discard)


def watch_for(layer: Any) -> Watch:
    """The watch of ``layer`` in the running event loop."""
    per_loop = runtime.current().watches
    watch = per_loop.get(id(layer))
    if watch is None or watch.layer is not layer:
        watch = per_loop[id(layer)] = Watch(layer)
    return watch
