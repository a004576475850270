"""Helpers for host projects' own tests of chat rooms and live blogs.

::

    from django_liverooms.testing import StreamCommunicator

    async def test_lobby(user):
        client = StreamCommunicator("/chat/lobby/", user=user)
        welcome, history = await client.open()
        await client.send_frame({"type": "message", "body": "hi", "client_id": "1"})
        assert (await client.receive_frame())["body"] == "hi"
        await client.disconnect()

Database work in such tests needs ``django_db(transaction=True)``: consumers
run their queries in another thread.

Through a project's own ASGI application behind ``AllowedHostsOriginValidator``,
send ``Origin: http://testserver``: Django's test runner turns ``DEBUG`` off and
adds ``testserver`` to ``ALLOWED_HOSTS``, so ``http://localhost`` is refused
(HTTP 403) in a project whose ``ALLOWED_HOSTS`` is empty.
"""

from __future__ import annotations

import json
from typing import Any

from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from .routing import websocket_include


class HandshakeRejected(AssertionError):
    """The application closed the socket before accepting it: an HTTP 403 to a browser.

    The app's consumers accept and then close (4403, 4404), so a refusal at the
    handshake comes from the middleware, almost always the Origin check.
    """


def handshake_rejected(code: Any) -> HandshakeRejected:
    return HandshakeRejected(
        "handshake rejected (HTTP 403): check the Origin header against ALLOWED_HOSTS "
        "(AllowedHostsOriginValidator). Under Django's test runner DEBUG is off and "
        'ALLOWED_HOSTS gains "testserver", so pass '
        'headers=[(b"origin", b"http://testserver")]. '
        f"(The application closed with code {code} before the stream's consumer "
        "could accept.)"
    )


def default_application() -> Any:
    """The app's WebSocket routes mounted at the root, without middleware."""
    return URLRouter([websocket_include("")])


class StreamCommunicator(WebsocketCommunicator):
    """A WebsocketCommunicator that speaks the liverooms protocol.

    ``application`` defaults to the app's routes mounted at the root with no
    middleware, so paths are ``"/chat/lobby/"``. To test your project's own
    ASGI application, pass it with its prefix (``"/ws/chat/lobby/"``) and,
    behind ``AllowedHostsOriginValidator``, an Origin header:
    ``headers=[(b"origin", b"http://testserver")]``. ``user`` is put in the
    scope as AuthMiddleware would.

    ``presence`` frames come when other people join or leave, at times a
    test does not control, so by default ``receive_frame()`` and
    ``receive_nothing()`` step over them and keep the latest in
    ``self.presence``. Pass ``presence=True`` to receive them like any frame.
    """

    def __init__(
        self,
        path: str,
        *,
        user: Any = None,
        application: Any = None,
        presence: bool = False,
        **kwargs: Any,
    ):
        super().__init__(application or default_application(), path, **kwargs)
        if user is not None:
            self.scope["user"] = user
        self.receive_presence = presence
        self.presence: dict[str, Any] | None = None  # the latest presence frame stepped over

    async def open(self, timeout: float = 3) -> tuple[dict[str, Any], dict[str, Any]]:
        """Connect and return the ``welcome`` and ``history`` frames.

        Raises HandshakeRejected (an AssertionError) if the handshake was
        refused, and AssertionError with the close code if the stream was.
        """
        connected, code = await self.connect(timeout)
        if not connected:
            raise handshake_rejected(code)
        welcome = await self.receive_frame(timeout)
        assert welcome["type"] == "welcome", f"expected welcome, got {welcome}"
        history = await self.receive_frame(timeout)
        if history["type"] == "error":  # a bad ?after= is reported before the history
            history = await self.receive_frame(timeout)
        assert history["type"] == "history", f"expected history, got {history}"
        return welcome, history

    async def close_code(self, timeout: float = 3) -> int:
        """Connect to a stream that should refuse, and return its close code."""
        connected, code = await self.connect(timeout)
        if not connected:
            raise handshake_rejected(code)
        output = await self.receive_output(timeout)
        assert output["type"] == "websocket.close", f"expected a close, got {output}"
        # Let the consumer finish (as the server would after the close), so
        # no application task is left waiting on the channel layer.
        await self.disconnect(timeout=timeout)
        return output.get("code", 1000)

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.send_to(text_data=json.dumps(frame))

    async def receive_frame(self, timeout: float = 3) -> dict[str, Any]:
        """The next frame; AssertionError naming the close code if the server closed."""
        while True:
            frame = await self._receive_any_frame(timeout)
            if frame.get("type") != "presence" or self.receive_presence:
                return frame
            self.presence = frame

    async def receive_nothing(self, timeout: float = 0.1, interval: float = 0.01) -> bool:
        """True if nothing but (stepped-over) presence frames arrives within ``timeout``."""
        while True:
            if not await super().receive_nothing(timeout, interval):
                if self.receive_presence or self.output_queue.empty():
                    return False
                peeked = self.output_queue._queue[0]  # type: ignore[attr-defined]
                if not (peeked.get("text") or "").startswith('{"type":"presence"'):
                    return False
                self.presence = json.loads(self.output_queue.get_nowait()["text"])
                continue
            return True

    async def _receive_any_frame(self, timeout: float) -> dict[str, Any]:
        output = await self.receive_output(timeout)
        if output["type"] == "websocket.close":
            raise AssertionError(
                f"the server closed the connection with code {output.get('code', 1000)}"
                " (4404: no such stream, 4403: not allowed to read it)"
            )
        assert output["type"] == "websocket.send", f"unexpected output {output}"
        return json.loads(output["text"])
