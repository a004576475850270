"""Thin WebSocket consumers over protocol, policy, streams and broadcast.

A connection: resolve the stream and check the policy, join the group, read
the history, then forward live frames. The group is joined before history is
read, and live frames at or below the history's seq are dropped, so a frame
committed during the hand-over is neither lost nor sent twice.

When the channel layer fails (a call raises or hangs, or Redis restarts and
forgets the groups), ``layer_failed()`` closes the socket with 4503: the
client reconnects and resumes from the database, which missed nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, DataError
from django.utils import timezone

from . import (
    _compat,
    broadcast,
    fanout,
    layerwatch,
    moderation,
    presence,
    protocol,
    ratelimit,
    reactions,
    reads,
    sessions,
    streams,
    subscription,
    unread,
    workers,
    writer,
)
from .conf import conf
from .outbox import Outbox
from .policy import CachedVerdict, Opening, Refused, Screen, get_policy, reader_now

logger = logging.getLogger(__name__)

# A local event (never from the layer or a client): the layer read failed.
LAYER_FAILED_EVENT = "liverooms.layer_failed"


def parse_after(query_string: bytes) -> int | None:
    """The ``?after=<seq>`` resume point; ValueError if it is not a seq."""
    values = parse_qs(query_string.decode("latin-1")).get("after")
    if not values:
        return None
    return protocol.parse_uint(values[-1])


class StreamConsumer(AsyncWebsocketConsumer):
    kind: ClassVar[str]
    accepts: ClassVar[frozenset[str]]

    stream: Any = None
    process_local = False  # frames come from the process's fan-out hub (fanout.py)
    through = 0  # live frames with a seq at or below this were in the history
    layer_lost = False  # set by layer_failed(): the socket is closing with 4503
    layer_lost_reading = False  # the layer read failed; read no more
    counted_as: str | None = None  # the key this socket counts under (ratelimit.connection_cap)
    refused_detail: str | None = None  # told before the 4403 of a refused open (a ban)
    routed: asyncio.Lock | None = None  # orders the events the hub hands over

    @property  # type: ignore[override]
    def channel_layer_alias(self) -> str:
        return conf.CHANNEL_LAYER

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """AsyncConsumer.__call__ (channels 4.2, 4.3) without the socket's layer channel.

        With process fan-out the hub reads the layer for every socket of the
        process and hands each the events meant for it (receive_routed), so
        a layer channel and read per idle socket would be pure cost.
        """
        layer = get_channel_layer(self.channel_layer_alias)
        if conf.FANOUT != "process" or layer is None:
            return await super().__call__(scope, receive, send)
        self.scope = scope
        self.channel_layer = layer
        self.channel_name = fanout.local_name()
        self.base_send = send
        try:
            while True:  # await_many_dispatch with one source, minus its task per message
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    def receive_routed(self, event: dict[str, Any]) -> None:
        """An event the fan-out hub read for this socket; handled in arrival order."""
        if self.routed is None:
            self.routed = asyncio.Lock()
        layerwatch.background(self._dispatch_routed(self.routed, event))

    async def _dispatch_routed(self, lock: asyncio.Lock, event: dict[str, Any]) -> None:
        async with lock:
            try:
                await self.dispatch(event)
            except Exception:
                logger.exception("liverooms: handling %s failed", event.get("type"))

    async def dispatch(self, message: dict[str, Any]) -> None:
        """AsyncConsumer.dispatch (channels >= 4.2) without its thread hop.

        Channels runs close_old_connections() in the database thread before
        every handler: one thread round trip per delivered frame and per
        client frame. Every database call of these consumers goes through
        database_sync_to_async, which closes old connections around the call
        itself, so the extra hop buys nothing here. A subclass that queries
        the database must do the same.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # Connection ----------------------------------------------------------

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        # Connections per user (or guest session, or sessionless address)
        # are counted before anything else is done.
        key = await ratelimit.acquire_slot(self.scope)
        if key is False:
            await self.accept()
            await self.close(code=protocol.CLOSE_ABUSE)
            return
        self.counted_as = key if isinstance(key, str) else None
        try:
            await super().websocket_connect(message)
        except BaseException:
            # No disconnect may follow a failed connect: give the place back now.
            if self.counted_as is not None:
                key, self.counted_as = self.counted_as, None
                await ratelimit.get_counters().release(key)
            raise

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        if self.counted_as is not None:
            key, self.counted_as = self.counted_as, None
            await ratelimit.get_counters().release(key)
        await super().websocket_disconnect(message)

    async def connect(self) -> None:
        self.worker_timers: dict[str, asyncio.TimerHandle] = {}  # worker mode's sends
        self.user = self.scope.get("user") or AnonymousUser()
        self.route_kwargs = self.scope.get("url_route", {}).get("kwargs", {})
        opening = await self.open_stream(self.route_kwargs.get("slug", ""))
        await self.accept()
        if isinstance(opening, int):
            if self.refused_detail:  # a ban (moderation.py): told why
                await self.send_frame(protocol.error(protocol.FORBIDDEN, self.refused_detail))
            await self.close(code=opening)
            return
        self.stream, self.sender = opening.stream, opening.sender
        self.may_post = CachedVerdict(opening.can_post)  # for typing; writes refresh it
        sessions.watch(self, self.user, self.scope.get("session"))  # closed when it ends
        self.limits = protocol.Limits(
            conf.MAX_FRAME_BYTES, conf.MAX_BODY_LENGTH, conf.MAX_MUTE_MINUTES
        )
        self.process_local = conf.FANOUT == "process"
        try:
            await subscription.attach(self)
        except layerwatch.LayerFailed as exc:
            logger.warning("liverooms: could not join %s: %s", self.stream.group_name, exc)
            await self.layer_failed()
            return
        bad_after = None
        try:
            after = parse_after(self.scope.get("query_string", b""))
        except ValueError as exc:
            after, bad_after = None, str(exc)[:32]
        history = await reads.history(self.stream, after=after, limit=conf.HISTORY_LIMIT)
        await self.send_frame(opening.welcome(self.kind, history.last_seq))
        for frame in protocol.resume_errors(after, bad_after, history.gone):
            await self.send_frame(frame)
        await self.send(text_data=history.text)
        # This socket's own presence frame goes before any held live frame.
        await presence.ajoin(self.stream, self.channel_name, self.sender, self.send)
        await subscription.ready(self, history.through)

    async def open_stream(self, slug: str) -> Opening | int:
        """The stream to join, or the close code that refuses it."""
        try:
            return await reads.opening(
                self.kind,
                slug,
                self.user,
                self.scope,
                self.channel_name,
                # Only where moderation frames are accepted (chat rooms).
                moderation=protocol.MODERATION_COMMANDS <= self.accepts,
            )
        except Refused as refused:
            self.refused_detail = refused.detail if refused.tell else None
            return refused.close_code

    async def disconnect(self, code: int) -> None:
        for timer in getattr(self, "worker_timers", {}).values():
            timer.cancel()
        if self.stream is None:
            return
        sessions.unwatch(self)
        await presence.aleave(self.stream, self.channel_name)
        await subscription.detach(self)

    async def layer_failed(self) -> None:
        """The channel layer failed this socket: close with 4503, "reconnect and resume".

        The one exit for every layer fault (a failed join, read or broadcast,
        a stalled or restarted Redis). Idempotent; frames after it are dropped.
        """
        if self.layer_lost or self.stream is None:
            return  # closing already, or refused (4403/4404)
        self.layer_lost = True
        watch = layerwatch.watch_for(self.channel_layer)
        watch.discard(self)
        await self.close(code=protocol.CLOSE_UNAVAILABLE)
        await watch.reset()  # so that the reconnect gets fresh Redis connections

    # AsyncConsumer.__call__ assigns channel_receive, the layer read that
    # feeds dispatch(); this property wraps it so a failed read closes the
    # socket with 4503 instead of killing the consumer with a traceback.
    @property
    def channel_receive(self) -> Callable[[], Awaitable[dict[str, Any]]]:
        return self._receive_from_layer

    @channel_receive.setter
    def channel_receive(self, receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self._layer_receive = receive

    async def _receive_from_layer(self) -> dict[str, Any]:
        if not self.layer_lost_reading:
            # channels' await_many_dispatch awaits the cancelled read when the
            # consumer ends, so a cancel swallowed by redis-py would hang it.
            try:
                return await layerwatch.cancellable(self._layer_receive())
            except Exception as exc:
                logger.warning("liverooms: channel layer read failed: %r", exc)
                self.layer_lost_reading = True
                # channels-redis reads for every socket of the process in one
                # loop and raises in one of them only: close them all.
                layerwatch.watch_for(self.channel_layer).fail_all()
                # Handled by dispatch in turn, so after connect() has accepted.
                return {"type": LAYER_FAILED_EVENT}
        await asyncio.Event().wait()  # read nothing more; the close ends the consumer
        raise AssertionError("unreachable")

    async def liverooms_layer_failed(self, event: dict[str, Any]) -> None:
        await self.layer_failed()

    # AsyncConsumer.__call__ assigns base_send, which accept(), send() and
    # close() all write through; every message goes to the socket's outbox
    # instead, which never waits for a slow reader (outbox.py).
    @property
    def base_send(self) -> Callable[[dict[str, Any]], Awaitable[None]]:
        return self._put

    @base_send.setter
    def base_send(self, send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self.outbox = Outbox(_compat.server_send(send), self.too_slow)

    async def _put(self, message: dict[str, Any]) -> None:
        self.outbox.put(message)

    def too_slow(self) -> None:
        """The outbox's bound was hit: close with 4408 without waiting for the peer."""
        self.outbox.close_now(protocol.CLOSE_TOO_SLOW)

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        if self.layer_lost:  # a frame after the 4503 close would be an ASGI error
            return
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    # Live frames (subscription.py) --------------------------------------

    def fanout_group(self) -> str:
        return self.stream.group_name

    def wants(self, seq: int | None, skip: str | None) -> bool:
        """Whether a live frame is for this socket: not in its history, not its own typing."""
        return (seq is None or seq > self.through) and skip != self.channel_name

    def take(self, seq: int | None, skip: str | None, message: dict[str, Any]) -> None:
        """A live frame from the fan-out hub (fanout.Member.take)."""
        if (seq is None or seq > self.through) and skip != self.channel_name:
            self.outbox.put(message)

    # Client frames -------------------------------------------------------

    @cached_property
    def limiter(self) -> ratelimit.ConnectionLimiter:
        return ratelimit.ConnectionLimiter(ratelimit.send_key(self.sender.key, self.scope))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.stream is None:
            return  # closing; the socket was refused
        try:
            self.limiter.frame()
            command = protocol.parse(
                text_data, bytes_data, accepts=self.accepts, limits=self.limits
            )
            if isinstance(command, protocol.WRITES):
                await self.limiter.send(getattr(command, "client_id", None))
            await self.handle(command)
        except protocol.ProtocolError as exc:
            await self.send_frame(exc.frame())
            if exc.close_code is not None:
                await self.close(code=exc.close_code)

    async def handle(self, command: protocol.Command) -> None:
        if isinstance(command, protocol.Ping):
            await self.send_frame(protocol.pong())
        else:
            raise protocol.ProtocolError(protocol.UNKNOWN_TYPE, "Not accepted here.")

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=protocol.encode(frame))

    # Channel-layer events ------------------------------------------------

    async def liverooms_frame(self, event: dict[str, Any]) -> None:
        if self.wants(event["seq"], event.get("skip")):
            await self.send(text_data=event["text"])

    async def liverooms_frames(self, event: dict[str, Any]) -> None:
        for seq, text in event["frames"]:  # a batch of group commit, in seq order
            if self.wants(seq, None):
                await self.send(text_data=text)

    async def liverooms_reply(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])

    async def liverooms_recheck(self, event: dict[str, Any]) -> None:
        """Access may have been taken away (revoke.py): check it again."""
        if self.stream is None:
            return
        user_id = event.get("user_id")
        if user_id is not None and user_id != getattr(self.user, "pk", None):
            return
        if event.get("kick") and user_id is not None:  # moderation.kick(): whatever the policy says
            await self.send_frame(protocol.error(protocol.FORBIDDEN, moderation.kicked_detail()))
            await self.close(code=protocol.CLOSE_FORBIDDEN)
            return
        try:
            await database_sync_to_async(self.authorize)(None)
        except protocol.ProtocolError as exc:
            await self.send_frame(exc.frame())
            await self.close(code=exc.close_code or protocol.CLOSE_FORBIDDEN)

    async def session_ended(self) -> None:
        """The connection's session ended (sessions.py): logout, expiry, password change."""
        await self.send_frame(protocol.error(protocol.FORBIDDEN, sessions.ended_detail()))
        await self.close(code=protocol.CLOSE_FORBIDDEN)

    # Access on every write -------------------------------------------------

    def authorize(
        self, client_id: str | None, streams_now: dict[Any, Any] | None = None
    ) -> tuple[Any, Any]:
        """The connection's user and stream as the database has them now.

        Runs in the database thread of every write (and on a recheck event):
        a user logged out or deactivated elsewhere, or who may no longer read
        the stream, gets an error carrying the close code that ends the socket.
        """
        try:
            user, stream = reader_now(self.user, self.stream, self.scope, streams_now=streams_now)
        except Refused as refused:
            raise protocol.ProtocolError(
                protocol.FORBIDDEN, refused.detail, client_id, close_code=refused.close_code
            ) from None
        self.user = user
        return user, stream


def no_such_message(message_id: int) -> protocol.ProtocolError:
    """A write about a message that is not in the room, or is removed."""
    return protocol.ProtocolError(
        protocol.BAD_FRAME, f"There is no message {message_id} in this room."
    )


def database_error(exc: DatabaseError, client_id: str | None) -> protocol.ProtocolError:
    """The ``error`` frame for a write the database refused.

    A value it cannot store (DataError) is refused for good (``bad_frame``:
    the client stops resending); anything else may pass (``unavailable``:
    send it again). Logged with its traceback, as it is a server-side fault.
    """
    logger.exception("liverooms: a write failed in the database")
    if isinstance(exc, DataError):
        return protocol.ProtocolError(
            protocol.BAD_FRAME, "The database could not store this.", client_id
        )
    return protocol.ProtocolError(
        protocol.UNAVAILABLE, "The database failed; send it again.", client_id
    )


class ChatConsumer(StreamConsumer):
    kind = "chat"
    accepts = protocol.CHAT_COMMANDS

    async def handle(self, command: protocol.Command) -> None:
        try:
            await self.handle_chat(command)
        except DatabaseError as exc:
            # An unexpected database error answers the sender; the socket stays open.
            raise database_error(exc, getattr(command, "client_id", None)) from None

    async def handle_chat(self, command: protocol.Command) -> None:
        if isinstance(command, protocol.SendMessage):
            await self.post_message(command)
        elif isinstance(command, protocol.Typing):
            await self.relay_typing()
        elif isinstance(command, (protocol.EditMessage, protocol.DeleteMessage)):
            await broadcast.apublish(await self.change_message(command))
        elif isinstance(command, (protocol.Mute, protocol.Unmute)):
            await self.send_frame(await self.change_mute(command))
        elif isinstance(command, protocol.Read):
            await self.mark_read(command.seq)
        elif isinstance(command, protocol.FlagMessage):
            await self.send_frame(await self.flag_message(command))
        elif isinstance(command, protocol.ReactToMessage):
            if await self.store_reaction(command):
                reactions.recorder().changed(self.stream, command.id)
        else:
            await super().handle(command)

    @database_sync_to_async
    def store_reaction(self, command: protocol.ReactToMessage) -> bool:
        """A signed-in poster's reaction to a message here; whether it changed anything."""
        user, room = self.authorize(None)
        if not user.is_authenticated:
            raise protocol.ProtocolError(protocol.FORBIDDEN, "Sign in to react to messages.")
        allowed = reactions.allowed()
        if command.emoji not in allowed:
            detail = (
                f"emoji must be one of: {' '.join(allowed)}." if allowed else "Reactions are off."
            )
            raise protocol.ProtocolError(protocol.BAD_FRAME, detail)
        if not get_policy().can_post(user, room, self.scope):
            raise protocol.ProtocolError(protocol.FORBIDDEN, "You may not react here now.")
        try:
            return streams.react(room, command.id, user, command.emoji, command.on)
        except streams.NotFound:
            raise no_such_message(command.id) from None

    async def post_message(self, command: protocol.SendMessage) -> None:
        if conf.PERSISTENCE == "worker":
            await self.hand_to_worker(command)
            return
        stored = await writer.writer().post(self, command)  # group commit (writer.py)
        if not stored.broadcast:
            # Stored but not broadcast: the sender's ack and the readers'
            # copies come from the history when they resume.
            await self.layer_failed()
            return
        if stored.posted.duplicate and stored.posted.frame is not None:
            await self.send(text_data=stored.posted.frame)

    def store_message(
        self, command: protocol.SendMessage
    ) -> tuple[streams.Posted, list[broadcast.Broadcast]]:
        """Store one message on its own (the writer's fallback when a batch fails)."""
        room = self.check_can_post(command.client_id)
        screen = Screen(self.user, room, self.scope)  # self.user: as check_can_post found it
        with broadcast.collect() as outbox:
            posted = streams.post_message(
                room,
                self.sender,
                command.body,
                command.client_id,
                screen=screen,
                attachments=command.attachments,
                reply_to=command.reply_to,
            )
        return posted, outbox

    def check_can_post(
        self, client_id: str | None, streams_now: dict[Any, Any] | None = None
    ) -> Any:
        """The room, fresh, if the connection's user may post in it now."""
        user, room = self.authorize(client_id, streams_now)
        allowed = get_policy().can_post(user, room, self.scope)
        self.may_post.set(allowed)
        if not allowed:
            raise protocol.ProtocolError(
                protocol.FORBIDDEN, "You may not post in this room.", client_id
            )
        return room

    @database_sync_to_async
    def change_message(
        self, command: protocol.EditMessage | protocol.DeleteMessage
    ) -> list[broadcast.Broadcast]:
        """A moderator's (or the author's) edit or deletion; readers get the event."""
        user, room = self.authorize(None)
        policy = get_policy()
        body = command.body if isinstance(command, protocol.EditMessage) else None
        try:
            with broadcast.collect() as outbox:
                streams.change_message(
                    room,
                    command.id,
                    lambda message: policy.can_change_message(user, message, self.scope),
                    body=body,
                    screen=Screen(user, room, self.scope),  # the edit's body: clean_message
                )
        except streams.NotFound:
            raise no_such_message(command.id) from None
        except streams.NotAllowed:
            raise protocol.ProtocolError(
                protocol.FORBIDDEN, f"You may not change message {command.id}."
            ) from None
        return outbox

    @database_sync_to_async
    def change_mute(self, command: protocol.Mute | protocol.Unmute) -> dict[str, Any]:
        """Mute or unmute a user in this room; the answer goes to the moderator."""
        user, room = self.authorize(None)
        if not get_policy().can_moderate(user, room, self.scope):
            raise protocol.ProtocolError(protocol.FORBIDDEN, "Only moderators may mute users here.")
        if isinstance(command, protocol.Unmute):
            streams.unmute(room, command.user_id)
            return protocol.unmuted(user_id=command.user_id)
        until = None
        if command.minutes is not None:
            until = timezone.now() + timedelta(minutes=command.minutes)
        try:
            streams.mute(room, command.user_id, until, user)
        except streams.NotFound:
            raise protocol.ProtocolError(
                protocol.BAD_FRAME, f"There is no user {command.user_id}."
            ) from None
        return protocol.muted(
            user_id=command.user_id, until=until.isoformat() if until is not None else None
        )

    async def hand_to_worker(self, command: protocol.SendMessage) -> None:
        """Worker mode: the message is stored (and broadcast) by ``runworker``."""
        room = await database_sync_to_async(self.check_can_post)(command.client_id)
        try:
            await layerwatch.bounded(
                self.channel_layer.send(
                    conf.PERSIST_CHANNEL,
                    self.persist_event(room, command),
                )
            )
        except Exception as exc:
            reason = type(exc.__cause__ or exc).__name__  # not its text: hosts, ports
            raise protocol.ProtocolError(
                protocol.UNAVAILABLE,
                f"The message could not be queued for storage ({reason}); send it again.",
                command.client_id,
            ) from None
        if conf.WORKER_ACK_TIMEOUT:
            # No worker, or workers too far behind: the layer would expire the
            # message without a word. Tell the sender instead.
            if command.client_id in self.worker_timers:
                self.worker_timers[command.client_id].cancel()
            self.worker_timers[command.client_id] = asyncio.get_running_loop().call_later(
                conf.WORKER_ACK_TIMEOUT, self.worker_silent, command.client_id
            )

    def persist_event(self, room: Any, command: protocol.SendMessage) -> dict[str, Any]:
        # The worker asks the policy with the route's kwargs as the scope.
        route = self.scope.get("url_route", {}).get("kwargs", {})
        if self.process_local:  # no layer channel of our own: replies come via the hub
            reply_channel = fanout.reply_channel(self)
            return workers.persist_event(
                room, self.sender, command, reply_channel, self.channel_name, route=route
            )
        return workers.persist_event(room, self.sender, command, self.channel_name, route=route)

    def worker_silent(self, client_id: str) -> None:
        self.worker_timers.pop(client_id, None)
        error = protocol.error(
            protocol.UNAVAILABLE,
            f"No worker stored the message within {conf.WORKER_ACK_TIMEOUT:g} s; send it again "
            "with the same client_id (if it was stored meanwhile, that is answered with it).",
            client_id,
        )
        layerwatch.background(self.send_frame(error))

    async def liverooms_handled(self, event: dict[str, Any]) -> None:
        """A worker handled (stored, or failed and said so) one of our messages."""
        timer = self.worker_timers.pop(event["client_id"], None)
        if timer is not None:
            timer.cancel()

    def can_post_now(self) -> bool:
        return get_policy().can_post(self.user, self.stream, self.scope)

    async def relay_typing(self) -> None:
        if not self.limiter.typing():
            return  # throttled (TYPING_RATE): typing is a hint, not a message
        if self.may_post.stale():
            self.may_post.set(await database_sync_to_async(self.can_post_now)())
        if not self.may_post.value:
            return  # readers who may not post (guests, muted users) do not type
        text = protocol.encode(protocol.typing(self.sender.info))
        await broadcast.apublish(
            [broadcast.Broadcast(self.stream.group_name, None, text, skip=self.channel_name)]
        )

    # Flags (issue 16; moderation.py) --------------------------------------

    @database_sync_to_async
    def flag_message(self, command: protocol.FlagMessage) -> dict[str, Any]:
        """A signed-in reader reports a message to the moderators; only they
        are answered (``flagged``), nothing is broadcast."""
        if not self.user.is_authenticated:
            raise protocol.ProtocolError(
                protocol.FORBIDDEN, "Only signed-in users may report messages."
            )
        user, room = self.authorize(None)
        try:
            moderation.flag(room, command.id, user, command.reason)
        except streams.NotFound:
            raise no_such_message(command.id) from None
        except streams.NotAllowed:
            raise protocol.ProtocolError(
                protocol.BAD_FRAME, "You cannot report your own message."
            ) from None
        return protocol.flagged(id=command.id)

    # Read markers (issue 16; unread.py) ------------------------------------

    read_asked = 0  # the highest seq this socket's ``read`` frames gave
    read_stored = 0  # the highest seq written for it
    read_at = float("-inf")  # the loop's time of the last write
    read_timer: asyncio.TimerHandle | None = None

    async def mark_read(self, seq: int) -> None:
        """A ``read`` frame. Coalesced: written at once if READ_INTERVAL has
        passed since this socket's last write, else with the highest seq
        asked meanwhile when it has (and on disconnect)."""
        if not self.user.is_authenticated:
            raise protocol.ProtocolError(
                protocol.FORBIDDEN, "Only signed-in users have read markers."
            )
        if seq <= self.read_asked:
            return
        self.read_asked = seq
        loop = asyncio.get_running_loop()
        wait = self.read_at + conf.READ_INTERVAL - loop.time()
        if wait <= 0:
            await self.store_read()
        elif self.read_timer is None:
            self.read_timer = loop.call_later(
                wait, lambda: layerwatch.background(self.store_read())
            )

    async def store_read(self, *, ack: bool = True) -> None:
        """Write the marker; the socket gets ``read`` with the marker as stored."""
        self.read_timer = None
        seq, stored = self.read_asked, self.read_stored
        if seq <= stored:
            return
        self.read_stored, self.read_at = seq, asyncio.get_running_loop().time()
        try:
            marker = await database_sync_to_async(unread.mark_read)(self.user, self.stream, seq)
        except Exception:
            # A hint, not a write: retried with the next ``read`` or at disconnect.
            logger.exception("liverooms: a read marker could not be stored")
            self.read_stored = stored
            return
        if ack:
            await self.send_frame(protocol.read(marker))

    async def disconnect(self, code: int) -> None:
        if self.read_timer is not None:
            self.read_timer.cancel()
        if self.stream is not None and self.read_asked > self.read_stored:
            await self.store_read(ack=False)
        await super().disconnect(code)


class LiveBlogConsumer(StreamConsumer):
    kind = "liveblog"
    accepts = protocol.LIVEBLOG_COMMANDS

    async def handle(self, command: protocol.Command) -> None:
        if isinstance(command, protocol.React):  # reader reactions (reactions.py)
            return await reactions.react(self, command)
        await super().handle(command)


class NotFoundConsumer(AsyncWebsocketConsumer):
    """A path under the app's prefix that names no stream: closed with 4404.

    It has no channel-layer channel: a refusal must not need the layer (with
    Redis restarting, creating and reading one raised in this path)."""

    channel_layer_alias = "liverooms.none"  # no such alias: get_channel_layer() is None

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=protocol.CLOSE_NOT_FOUND)
