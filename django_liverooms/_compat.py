"""What we rely on inside ASGI servers and Channels, beyond their public APIs.

Each function names the versions it was written against; tests/test_compat.py
fails when one of them changes behaviour, so an upgrade cannot silently turn
a bound off.
"""

from __future__ import annotations

import functools
from typing import Any

from channels.sessions import InstanceSessionWrapper


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

    - uvicorn 0.30-0.54, every WebSocket implementation (websockets-sansio,
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
