"""What we rely on inside ASGI servers, Channels and channels-redis, beyond
their public APIs.

Each pin names the versions it was written against; tests/test_compat.py
fails when one of them changes the behaviour relied on (and when a version
outside :data:`TESTED` is installed), so an upgrade cannot silently turn a
bound off or bring back a hang. Pins that must stay where they act, as
method overrides, are listed here too:

- ``consumers.StreamConsumer.__call__``: channels 4.2-4.3
  ``AsyncConsumer.__call__`` without the socket's layer channel (process
  fan-out reads the layer once per process).
- ``consumers.StreamConsumer.dispatch``: channels >= 4.2 runs
  ``close_old_connections()`` in the database thread before every handler;
  ours skip that hop (every database call goes through
  ``database_sync_to_async``, which closes old connections itself).
- ``consumers.StreamConsumer.base_send`` / ``channel_receive`` properties:
  channels assigns both in ``__call__``; we wrap them (the outbox, and a
  layer read that fails into a 4503 close).
- ``layerwatch.cancel``: channels-redis 4.3 on redis-py 8 can swallow a
  cancel that lands in a blocking read; it is cancelled again until it ends.
- ``fanout.Hub._stop``: the hub's reader is stopped by a message to its own
  channel, not ``task.cancel()``, for the same reason.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from channels.sessions import InstanceSessionWrapper

# The versions the pins were checked against (tests/test_compat.py).
TESTED = {
    "channels": ("4.2", "4.3"),
    "channels_redis": ("4.2", "4.3"),
    "uvicorn": ("0.30", "0.54", "0.55"),
    "daphne": ("4.1", "4.2"),
}


def server_send(send: Any) -> Any:
    """The ASGI server's own send, from under channels' session middleware.

    channels 4.x ``InstanceSessionWrapper.send`` reads the lazy session on
    every message to save it on ``http.response.start`` only; a WebSocket
    never sends that, and the fan-out would pay for it once per frame and socket.
    """
    while isinstance(getattr(send, "__self__", None), InstanceSessionWrapper):
        send = send.__self__.real_send
    return send


class ServerTransport:
    """A socket's transport as its ASGI server holds it: how many bytes it has
    not yet handed to the kernel, and a way to drop the connection at once.

    ASGI has neither. Without them a peer that stops reading is invisible to
    the app on servers whose send never waits (daphne buffers without bound),
    and a close cannot complete on servers that flush before closing (uvicorn).
    """

    __slots__ = ("_buffered", "_abort")

    def __init__(self, buffered: Any, abort: Any) -> None:
        self._buffered = buffered
        self._abort = abort

    def buffered(self) -> int:
        try:
            return int(self._buffered())
        except Exception:
            return 0  # the connection is gone: nothing is waiting any more

    def abort(self) -> None:
        try:
            self._abort()
        except Exception:
            pass  # already closed


def server_transport(send: Any) -> ServerTransport | None:
    """The transport behind a server's send, or None on a server we don't know.

    - uvicorn 0.30-0.55, every WebSocket implementation (websockets-sansio,
      websockets, wsproto): send is a method of the protocol, whose
      ``transport`` is an asyncio transport.
    - daphne 4.x: send is ``functools.partial(server.handle_reply, protocol)``;
      the protocol's ``transport`` is a Twisted TCP transport, whose unsent
      bytes are ``dataBuffer[offset:]`` plus ``_tempDataLen`` (Twisted 22-26).
    """
    send = server_send(send)
    if isinstance(send, functools.partial) and send.args:
        transport = getattr(send.args[0], "transport", None)
        if hasattr(transport, "abortConnection") and hasattr(transport, "dataBuffer"):
            return ServerTransport(
                lambda: len(transport.dataBuffer) - transport.offset + transport._tempDataLen,
                transport.abortConnection,
            )
        return None
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if hasattr(transport, "get_write_buffer_size") and hasattr(transport, "abort"):
        return ServerTransport(transport.get_write_buffer_size, transport.abort)
    return None


async def private_channel_name(layer: Any) -> str:
    """A channel of one's own, read by one long-lived task: the fan-out hub's.

    channels-redis 4.3.x: RedisChannelLayer multiplexes a process's
    ``new_channel()`` names over one BZPOPMIN guarded by a shared lock; with
    redis-py 8 a cancel landing in that BZPOPMIN can be swallowed, which hangs
    event-loop shutdown once a long-lived reader such as the hub holds the lock.
    A plain name (no ``!``) is read with its own BZPOPMIN, outside that lock.
    It is as private as a ``new_channel()`` name: nobody else knows it.

    Not on a sharded layer (several hosts): there group_send writes a plain
    name's messages to the host its name hashes to, but receive() reads a
    plain name from the next host in turn and then waits on that one, so the
    hub would miss most broadcasts. ``new_channel()`` names are read from the
    host they hash to.
    """
    if hasattr(layer, "receive_buffer") and getattr(layer, "ring_size", 1) == 1:
        return f"liverooms.fanout.{uuid.uuid4().hex}"
    return await layer.new_channel()


def redis_hosts(layer: Any) -> int:
    """How many Redis hosts a channels_redis.core.RedisChannelLayer talks to
    (its shards: ``ring_size``, each reached with ``connection(index)``);
    0 for any other layer (nothing to watch or report)."""
    if hasattr(layer, "connection") and isinstance(getattr(layer, "ring_size", None), int):
        return layer.ring_size
    return 0
