"""Process-local fan-out: one channel-layer subscription per process.

With ``LIVEROOMS["FANOUT"] = "process"`` (the default) the sockets of one
server process do not each join the stream's group. A :class:`Hub` per
channel layer joins the group once, with one channel of its own, reads each
broadcast once and writes its pre-encoded text straight to the local sockets
that joined: no per-socket layer message, queue, decode or task switch.

Every guarantee of the per-socket path holds:

- only consumers that passed the policy join (they call :func:`join` from
  ``connect`` after the checks);
- resume hand-over: frames that arrive while a joining consumer reads its
  history are held for it and released by :func:`ready` once the history is
  sent, then filtered by ``consumer.take()`` (seq at or below ``through``
  dropped), exactly like frames waiting in the consumer's queue were;
- ``skip`` (a typing frame is not echoed to its sender) is the same
  ``consumer.take()`` check;
- persistence before ack is unchanged: a frame is only broadcast once stored.

If the hub's subscription fails (Redis down or restarted), the hub cannot
know which frames it missed, so it closes every local consumer through
``consumer.layer_failed()`` (close code 4503); clients reconnect with
``?after=`` and resume from the database.

With process fan-out a socket has no channel-layer channel of its own: its
``channel_name`` is a process-local name (:func:`local_name`), and the few
events meant for one socket (a worker's reply, revoke.py's recheck) reach it
through the hub: sent to the hub's channel with ``"to"`` naming the socket,
or sent to the group and handed to each local member. That saves each idle
socket a layer read (a task, a queue and a Redis receive buffer).

Each socket's frames go through its own :class:`~.outbox.Outbox`, which
never makes the hub wait: a client that stops reading delays only itself,
and is closed with 4408 once it is over its bound (outbox.py).

SSE responses (sse.py) read through the hub too, whatever ``FANOUT`` says:
a stream costs a queue, not a channel-layer channel and a Redis connection.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Protocol

from . import _compat, runtime
from .broadcast import BATCH_EVENT, BATCH_GROUP, FRAME_EVENT, FRAMES_EVENT
from .conf import conf
from .layerwatch import LayerFailed, cancellable

logger = logging.getLogger(__name__)

# RedisChannelLayer forgets group members after ``group_expiry`` (a day by
# default); the hub re-adds its channel well before that.
DEFAULT_REFRESH = 3600.0
# Sent by a hub to its own channel when its last member leaves.
STOP_EVENT = "liverooms.fanout.stop"


class Member(Protocol):
    """What the hub needs from a member: a socket (consumers.StreamConsumer)
    or a Server-Sent Events response (sse.Reader)."""

    channel_name: str

    def fanout_group(self) -> str: ...

    def take(self, seq: int | None, skip: str | None, message: dict[str, Any]) -> None:
        """One live frame (``message["text"]``): write it unless it is not for
        this member (already in its history, its own typing). Never waits."""

    async def layer_failed(self) -> None: ...

    def receive_routed(self, event: dict[str, Any]) -> None: ...


class Hub:
    """The one subscriber of one process to the groups its sockets read."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.channel: str | None = None
        self.groups: dict[str, set[Member]] = {}
        # Consumers still sending their history: their frames wait here.
        self.pending: dict[Member, list[dict[str, Any]]] = {}
        # Joined members by channel_name, for events addressed to one socket.
        self.local: dict[str, Member] = {}
        self.lock = asyncio.Lock()
        self.reader: asyncio.Task[None] | None = None
        self.refresher: asyncio.Task[None] | None = None

    # Membership -------------------------------------------------------------

    async def join(self, consumer: Member) -> None:
        """Subscribe ``consumer``; its frames wait until :meth:`ready`."""
        group = consumer.fanout_group()
        self.pending[consumer] = []
        self.local[consumer.channel_name] = consumer
        members = self.groups.get(group)
        if members is None:
            async with self.lock:
                members = self.groups.get(group)
                if members is None:
                    first = not self.groups
                    await self._start()
                    if first:  # batches of group commit come to every hub
                        await self.layer.group_add(BATCH_GROUP, self.channel)
                    await self.layer.group_add(group, self.channel)
                    members = self.groups[group] = set()
        members.add(consumer)

    async def ready(self, consumer: Member) -> None:
        """Send the frames held since :meth:`join`, then deliver live.

        Held frames without a seq (presence, typing) are dropped: they were
        true before this socket joined, and its own presence frame follows.
        """
        for event in self.pending.pop(consumer, ()):
            if event["seq"] is not None:
                consumer.take(event["seq"], event.get("skip"), _message(event))

    async def leave(self, consumer: Member) -> None:
        self.pending.pop(consumer, None)
        self.local.pop(consumer.channel_name, None)
        group = consumer.fanout_group()
        members = self.groups.get(group)
        if members is None:
            return
        members.discard(consumer)  # deliver() may have dropped it already
        if members:
            return
        async with self.lock:
            if self.groups.get(group) is not members or members:
                return  # someone joined meanwhile
            del self.groups[group]
            if self.channel is None:
                return  # the subscription failed (_fail): nothing to leave
            try:
                await self.layer.group_discard(group, self.channel)
            except Exception:
                logger.warning("liverooms: fan-out could not leave %s", group, exc_info=True)
            if not self.groups:
                try:
                    await self.layer.group_discard(BATCH_GROUP, self.channel)
                except Exception:
                    logger.warning("liverooms: fan-out could not leave the batches", exc_info=True)
                await self._stop()

    # Reading ----------------------------------------------------------------

    async def _start(self) -> None:
        if self.channel is None:
            self.channel = await _compat.private_channel_name(self.layer)
        if self.reader is None:
            self.reader = asyncio.ensure_future(self._read())
            self.refresher = asyncio.ensure_future(self._refresh())

    async def _stop(self) -> None:
        """Let the reader finish: no members are left."""
        if self.refresher is not None:
            self.refresher.cancel()
            self.refresher = None
        if self.reader is not None:
            # A message, not task.cancel(): a cancelled RedisChannelLayer.receive()
            # can lose a message for another channel of this process, and with
            # redis-py 8 a cancel that lands in its BRPOP can be swallowed.
            reader = self.reader
            try:
                await self.layer.send(self.channel, {"type": STOP_EVENT})
            except Exception:
                logger.warning("liverooms: fan-out could not stop its reader", exc_info=True)
            else:
                # Wait (bounded) until it has stopped, so that a loop closing
                # right after the last disconnect finds no read in flight.
                await asyncio.wait({reader}, timeout=conf.LAYER_TIMEOUT)

    async def _read(self) -> None:
        try:
            while True:
                event = await cancellable(self.layer.receive(self.channel))
                if "to" in event:
                    self.route(event)
                elif event.get("type") == FRAME_EVENT:
                    self.deliver(event)
                elif event.get("type") == FRAMES_EVENT:
                    self.deliver_many(event)
                elif event.get("type") == BATCH_EVENT:
                    self.deliver_batch(event)
                elif event.get("type") == STOP_EVENT:
                    if not self.groups:
                        self.reader = None  # a join from now on starts a new reader
                        return
                else:
                    self.forward(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("liverooms: fan-out lost its channel-layer subscription")
            self.reader = None  # this task ends here; _fail must not cancel it
            await self._fail()

    def deliver(self, event: dict[str, Any]) -> None:
        """Hand one broadcast to the local members of its group.

        Nothing here waits for a socket: each member's outbox takes the frame
        and writes it when the socket can take it (outbox.py).
        """
        members = self.groups.get(event.get("group", ""))
        if not members:
            return
        seq, skip = event["seq"], event.get("skip")
        message = _message(event)  # one for every socket
        pending = self.pending
        for consumer in members:
            held = pending.get(consumer)
            if held is not None:
                held.append(event)
            else:
                consumer.take(seq, skip, message)

    def deliver_many(self, event: dict[str, Any]) -> None:
        """A batch of one group's frames (group commit), in seq order."""
        group = event.get("group", "")
        for seq, text in event["frames"]:
            self.deliver({"group": group, "seq": seq, "text": text})

    def deliver_batch(self, event: dict[str, Any]) -> None:
        """A batch of group commit for every hub: the rooms with local members."""
        for group, frames in event["groups"]:
            if group in self.groups:
                self.deliver_many({"group": group, "frames": frames})

    def forward(self, event: dict[str, Any]) -> None:
        """Any other group event (e.g. revoke.py's recheck) goes to each local
        member, to run its handler there: these are rare. One sent to
        BATCH_GROUP (revoke.recheck_user: a ban, a kick) goes to every local
        member, whatever its stream."""
        group = event.get("group", "")
        members = self.local.values() if group == BATCH_GROUP else self.groups.get(group, ())
        for consumer in tuple(members):
            consumer.receive_routed(event)

    def route(self, event: dict[str, Any]) -> None:
        """An event addressed to one local socket (a worker's reply)."""
        consumer = self.local.get(event["to"])
        if consumer is not None:  # else it has gone: nobody to tell
            consumer.receive_routed(event)

    async def _refresh(self) -> None:
        interval = getattr(self.layer, "group_expiry", None)
        interval = min(DEFAULT_REFRESH, interval / 2) if interval else DEFAULT_REFRESH
        while True:
            await asyncio.sleep(interval)
            for group in [BATCH_GROUP, *self.groups]:
                try:
                    await self.layer.group_add(group, self.channel)
                except Exception:
                    logger.warning("liverooms: fan-out could not refresh %s", group, exc_info=True)

    async def _fail(self) -> None:
        """Close every local member: they may have missed frames."""
        members = {consumer for group in self.groups.values() for consumer in group}
        self.groups.clear()
        self.pending.clear()
        self.local.clear()
        if self.refresher is not None:
            self.refresher.cancel()
            self.refresher = None
        self.channel = None  # a fresh one on the next join
        for consumer in members:
            try:
                await consumer.layer_failed()
            except Exception:
                logger.warning("liverooms: could not close a consumer", exc_info=True)


def _message(event: dict[str, Any]) -> dict[str, Any]:
    """A broadcast's frame as the ASGI message AsyncWebsocketConsumer.send() builds."""
    return {"type": "websocket.send", "text": event["text"]}


def hub_for(layer: Any) -> Hub:
    """The running event loop's hub for ``layer`` (runtime.py)."""
    hubs = runtime.current().hubs
    hub = hubs.get(layer)
    if hub is None:
        hub = hubs[layer] = Hub(layer)
    return hub


def local_name() -> str:
    """A socket's channel_name under process fan-out: unique, but no layer channel.

    Presence and typing's ``skip`` use it as the connection's id.
    """
    return f"liverooms.local.{uuid.uuid4().hex}"


def reply_channel(consumer: Any) -> str:
    """Where a worker sends its replies to ``consumer`` (with ``"to"``)."""
    channel = hub_for(consumer.channel_layer).channel
    if channel is None:  # the hub failed and is closing its sockets
        raise LayerFailed("the fan-out hub lost its channel-layer subscription")
    return channel


async def join(consumer: Any) -> None:
    await hub_for(consumer.channel_layer).join(consumer)


async def ready(consumer: Any) -> None:
    await hub_for(consumer.channel_layer).ready(consumer)


async def leave(consumer: Any) -> None:
    await hub_for(consumer.channel_layer).leave(consumer)
