"""One socket's output: a reader that stops reading delays nobody but itself.

Every frame for a socket (its welcome and history, replies, live frames from
the fan-out hub or the channel layer, the close) goes through the socket's
:class:`Outbox`, which hands it to the ASGI server's send *without waiting*:

- The send is run up to its first suspension (what Python 3.12's eager tasks
  do). A server's send completes at once while its write buffer has room
  (uvicorn), or always (daphne), so the common case costs no task.
- If it has to wait (the peer's TCP window is full), a writer task of this
  socket's own finishes it, and later frames queue behind it, in order.
- A socket is *too slow*, and is closed with 4408, when the frames queued for
  it exceed ``SEND_QUEUE_BYTES`` (counting the server's own write buffer
  where the server shows it: uvicorn, daphne), or when one send has not
  completed within ``SEND_TIMEOUT`` seconds. The client resumes with
  ``?after=<seq>`` and misses nothing.
- Closing a socket that does not read cannot wait for it either: the close
  frame is written if the server takes it at once, and the connection is
  dropped ``CLOSE_GRACE`` seconds later if bytes are still stuck in it.

Queued frames are the same ``str`` objects for every reader of a stream, so
slow readers of one busy stream cost a reference each, not a copy.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from . import _compat
from .conf import conf

logger = logging.getLogger(__name__)

# Seconds a socket closed as too slow has to take its close frame before the
# connection is dropped.
CLOSE_GRACE = 2.0

Message = dict[str, Any]
Suspended = tuple[Generator[Any, None, Any], Any]


def start(awaitable: Awaitable[Any]) -> Suspended | None:
    """Run ``awaitable`` until it first suspends: None if it finished, else
    what :func:`finish` needs to complete it. Its exceptions propagate."""
    steps = awaitable.__await__()
    try:
        return steps, steps.send(None)
    except StopIteration:
        return None


async def finish(suspended: Suspended) -> None:
    """Complete an awaitable that :func:`start` left suspended, as a task would."""
    steps, waiting_on = suspended
    while True:
        try:
            if waiting_on is None:  # a bare yield: let the loop run once
                await asyncio.sleep(0)
            else:
                await asyncio.wait((waiting_on,))
        except asyncio.CancelledError:
            steps.close()
            raise
        try:
            waiting_on = steps.send(None)
        except StopIteration:
            return


def abandon(suspended: Suspended | None) -> None:
    if suspended is not None:
        suspended[0].close()


async def _within(awaitable: Awaitable[Any], timeout: float) -> bool:
    """Await ``awaitable`` for at most ``timeout`` seconds: False if it had to
    be cancelled. Not wait_for, which can swallow a cancel before Python 3.12."""
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        return False
    task.result()  # the send's own error, if any
    return True


def _size(message: Message) -> int:
    return len(message.get("text") or message.get("bytes") or "")


class Outbox:
    """What one socket has yet to be sent; see the module docstring."""

    __slots__ = (
        "send",
        "transport",
        "on_slow",
        "waiting",
        "waiting_size",
        "writer",
        "closed",
        "dropped",
        "limit",
    )

    def __init__(self, send: Callable[[Message], Awaitable[None]], on_slow: Callable[[], None]):
        self.send = _compat.server_send(send)
        self.transport = _compat.server_transport(self.send)
        self.on_slow = on_slow
        self.waiting: collections.deque[Message] | None = None  # made when a write first waits
        self.waiting_size = 0
        self.writer: asyncio.Task[None] | None = None
        self.closed = False  # a close was put, or the socket is gone: take nothing more
        self.dropped = False  # found too slow
        # Read once per socket, not per frame (a setting read costs more than a send).
        self.limit = conf.SEND_QUEUE_BYTES

    def put(self, message: Message) -> None:
        """Send ``message`` (an ASGI ``websocket.*`` message) after those before it."""
        if self.closed:
            return
        if message["type"] == "websocket.close":
            self.closed = True  # a frame after it would be an ASGI error
        if self.writer is not None:
            if self.waiting is None:
                self.waiting = collections.deque()
            self.waiting.append(message)
            self.waiting_size += _size(message)
            if self.waiting_size > self.limit:
                self.too_slow()
            return
        if self.transport is not None and self.transport.buffered() > self.limit:
            self.too_slow()
            return
        try:
            suspended = start(self.send(message))
        except Exception as exc:
            self._gone(exc)
            return
        if suspended is not None:
            self.writer = asyncio.ensure_future(self._drain(suspended))

    async def _drain(self, suspended: Suspended) -> None:
        """Finish the write that had to wait, then the frames queued behind it."""
        try:
            sent = await _within(finish(suspended), conf.SEND_TIMEOUT)
            while sent and self.waiting:
                message = self.waiting.popleft()
                self.waiting_size -= _size(message)
                sent = await _within(self.send(message), conf.SEND_TIMEOUT)
            if not sent:
                self.writer = None  # this task is ending: too_slow must not cancel it
                self.too_slow()
        except Exception as exc:
            self._gone(exc)
        finally:
            self.writer = None

    def too_slow(self) -> None:
        """Over a bound: send nothing more and tell the socket's owner, who
        closes it with :meth:`close_now`."""
        if self.dropped:
            return
        self.dropped = True
        self._stop()
        logger.info(
            "liverooms: closing a socket that does not keep up (over SEND_QUEUE_BYTES or SEND_TIMEOUT)"
        )
        self.on_slow()

    def close_now(self, code: int) -> None:
        """Close without waiting for the peer: drop the connection if the
        close frame cannot get through within ``CLOSE_GRACE`` seconds."""
        self._stop()
        try:
            abandon(start(self.send({"type": "websocket.close", "code": code})))
        except Exception:
            pass  # closed already
        if self.transport is not None:
            asyncio.get_running_loop().call_later(CLOSE_GRACE, self._drop_if_stuck)

    def _drop_if_stuck(self) -> None:
        if self.transport is not None and self.transport.buffered() > 0:
            self.transport.abort()

    def _stop(self) -> None:
        self.closed = True
        self.waiting = None
        self.waiting_size = 0
        writer, self.writer = self.writer, None
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()

    def _gone(self, exc: Exception) -> None:
        # The client went away while we wrote (daphne raises autobahn's
        # Disconnected, other servers OSError or RuntimeError); the
        # websocket.disconnect that follows ends the consumer.
        logger.debug("liverooms: send on a closed socket: %r", exc)
        self._stop()
