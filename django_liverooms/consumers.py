"""Thin WebSocket consumers over protocol, policy, streams and broadcast.

A connection: resolve the stream and check the policy, join the group, read
the history, then forward live frames. The group is joined before history is
read, and live frames at or below the history's seq are dropped, so a frame
committed during the hand-over is neither lost nor sent twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth.models import AnonymousUser

from . import broadcast, protocol, streams, workers
from .conf import conf
from .policy import get_policy, identify

TYPING_INTERVAL = 2.0  # seconds between relayed typing frames per connection


def parse_after(query_string: bytes) -> int | None:
    """The ``?after=<seq>`` resume point; ValueError if it is not a seq."""
    values = parse_qs(query_string.decode("latin-1")).get("after")
    if not values:
        return None
    return protocol.parse_uint(values[-1])


@dataclass(frozen=True)
class Opening:
    stream: Any
    sender: streams.Sender
    can_post: bool


class StreamConsumer(AsyncWebsocketConsumer):
    kind: ClassVar[str]
    accepts: ClassVar[frozenset[str]]

    stream: Any = None
    through = 0  # live frames with a seq at or below this were in the history

    # Channels >= 4.2 runs close_old_connections() in a thread before every
    # handler. Frame forwarding touches no database, so it skips that hop,
    # which otherwise costs one thread round trip per delivered frame.
    _NO_DB_HANDLERS = frozenset({broadcast.FRAME_EVENT, broadcast.REPLY_EVENT})

    @property  # type: ignore[override]
    def channel_layer_alias(self) -> str:
        return conf.CHANNEL_LAYER

    async def dispatch(self, message: dict[str, Any]) -> None:
        if message["type"] in self._NO_DB_HANDLERS:
            await getattr(self, get_handler_name(message))(message)
        else:
            await super().dispatch(message)

    # Connection ----------------------------------------------------------

    async def connect(self) -> None:
        self.user = self.scope.get("user") or AnonymousUser()
        self.route_kwargs = self.scope.get("url_route", {}).get("kwargs", {})
        opening = await self.open_stream(self.route_kwargs.get("slug", ""))
        await self.accept()
        if isinstance(opening, int):
            await self.close(code=opening)
            return
        self.stream, self.sender = opening.stream, opening.sender
        self.limits = protocol.Limits(conf.MAX_FRAME_BYTES, conf.MAX_BODY_LENGTH)
        self.last_typing = 0.0
        await self.channel_layer.group_add(self.stream.group_name, self.channel_name)

        bad_after = None
        try:
            after = parse_after(self.scope.get("query_string", b""))
        except ValueError as exc:
            after, bad_after = None, str(exc)[:32]
        history = await database_sync_to_async(streams.read_history)(
            self.stream, after=after, limit=conf.HISTORY_LIMIT
        )
        self.through = history.through
        await self.send_frame(
            protocol.welcome(
                self.kind, self.stream.slug, history.last_seq, self.sender.info, opening.can_post
            )
        )
        if bad_after is not None:
            await self.send_frame(
                protocol.error(
                    protocol.BAD_FRAME,
                    f"after must be a seq (a non-negative integer), not {bad_after!r}; "
                    "sending the latest history instead.",
                )
            )
        await self.send(text_data=history.text)

    @database_sync_to_async
    def open_stream(self, slug: str) -> Opening | int:
        """The stream to join, or the close code that refuses it."""
        stream = streams.get_stream(self.kind, slug)
        if stream is None:
            return protocol.CLOSE_NOT_FOUND
        policy = get_policy()
        if not policy.can_read(self.user, stream, self.scope):
            return protocol.CLOSE_FORBIDDEN
        return Opening(
            stream=stream,
            sender=identify(self.user, self.scope, self.channel_name),
            can_post=policy.can_post(self.user, stream, self.scope),
        )

    async def disconnect(self, code: int) -> None:
        if self.stream is not None:
            await self.channel_layer.group_discard(self.stream.group_name, self.channel_name)

    # Client frames -------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.stream is None:
            return  # closing; the socket was refused
        try:
            command = protocol.parse(
                text_data, bytes_data, accepts=self.accepts, limits=self.limits
            )
            await self.handle(command)
        except protocol.ProtocolError as exc:
            await self.send_frame(exc.frame())

    async def handle(self, command: protocol.Command) -> None:
        if isinstance(command, protocol.Ping):
            await self.send_frame(protocol.pong())
        else:
            raise protocol.ProtocolError(protocol.UNKNOWN_TYPE, "Not accepted here.")

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=protocol.encode(frame))

    # Channel-layer events ------------------------------------------------

    async def liverooms_frame(self, event: dict[str, Any]) -> None:
        seq = event["seq"]
        if seq is not None and seq <= self.through:
            return  # already sent in the history
        if event.get("skip") == self.channel_name:
            return
        await self.send(text_data=event["text"])

    async def liverooms_reply(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


class ChatConsumer(StreamConsumer):
    kind = "chat"
    accepts = protocol.CHAT_COMMANDS

    async def handle(self, command: protocol.Command) -> None:
        if isinstance(command, protocol.SendMessage):
            await self.post_message(command)
        elif isinstance(command, protocol.Typing):
            await self.relay_typing()
        else:
            await super().handle(command)

    async def post_message(self, command: protocol.SendMessage) -> None:
        if conf.PERSISTENCE == "worker":
            await self.hand_to_worker(command)
            return
        posted, outbox = await self.store_message(command)
        await broadcast.apublish(outbox)
        if posted.duplicate and posted.frame is not None:
            await self.send(text_data=posted.frame)

    @database_sync_to_async
    def store_message(
        self, command: protocol.SendMessage
    ) -> tuple[streams.Posted, list[broadcast.Broadcast]]:
        self.check_can_post(command.client_id)
        with broadcast.collect() as outbox:
            posted = streams.post_message(self.stream, self.sender, command.body, command.client_id)
        return posted, outbox

    def check_can_post(self, client_id: str | None) -> None:
        if not get_policy().can_post(self.user, self.stream, self.scope):
            raise protocol.ProtocolError(
                protocol.FORBIDDEN, "You may not post in this room.", client_id
            )

    async def hand_to_worker(self, command: protocol.SendMessage) -> None:
        """Worker mode: the message is stored (and broadcast) by ``runworker``."""
        await database_sync_to_async(self.check_can_post)(command.client_id)
        try:
            await self.channel_layer.send(
                conf.PERSIST_CHANNEL,
                workers.persist_event(self.stream, self.sender, command, self.channel_name),
            )
        except Exception as exc:
            raise protocol.ProtocolError(
                protocol.UNAVAILABLE,
                f"The message could not be queued for storage ({type(exc).__name__}); send it again.",
                command.client_id,
            ) from None

    async def relay_typing(self) -> None:
        now = time.monotonic()
        if now - self.last_typing < TYPING_INTERVAL:
            return  # throttled: typing is a hint, not a message
        self.last_typing = now
        text = protocol.encode(protocol.typing(self.sender.info))
        await broadcast.apublish(
            [broadcast.Broadcast(self.stream.group_name, None, text, skip=self.channel_name)]
        )


class LiveBlogConsumer(StreamConsumer):
    kind = "liveblog"
    accepts = protocol.LIVEBLOG_COMMANDS
