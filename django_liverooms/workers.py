"""Worker persistence: chat messages stored by ``manage.py runworker``
(which also publishes scheduled entries at their time: scheduling.py).

With ``LIVEROOMS["PERSISTENCE"] = "worker"`` a chat consumer hands each
message to the ``LIVEROOMS["PERSIST_CHANNEL"]`` channel instead of storing it
itself. :class:`PersistWorker` serves that channel: it stores the message and
broadcasts it, exactly as the inline mode does. The sender's acknowledgement
is the broadcast ``message`` frame.

Trade-off: the socket's event loop never waits for the database, but a
message is only as safe as the channel layer until a worker stores it (see
docs/worker-mode.md).

Batching: while the worker stores, the events that keep arriving wait in
memory (up to ``LIVEROOMS["PERSIST_BATCH"]``); the next round stores them per
room in one transaction each, in arrival (and so seq) order, then broadcasts
them, so a busy room costs one commit per round rather than per message.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.consumer import AsyncConsumer
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import router, transaction

from . import broadcast, policy, protocol, scheduling, streams
from .conf import conf
from .models import Room

logger = logging.getLogger(__name__)


# The channel-layer event types; set by our code, never from a client field.
PERSIST_EVENT = "liverooms.persist"
# To the sender's consumer once a message is handled (stored, or failed and
# reported): it stops waiting to tell the sender that no worker answered.
HANDLED_EVENT = "liverooms.handled"


def persist_event(
    room: Room,
    sender: streams.Sender,
    command: protocol.SendMessage,
    reply_channel: str,
    reply_to: str | None = None,
    *,
    route: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a chat consumer sends to the persist channel.

    Replies go to ``reply_channel``; with process fan-out that is the hub's
    channel, and ``reply_to`` names the socket the hub hands them to.
    ``route``: the socket's ``url_route`` kwargs, the scope the worker's
    policy questions get (values other than strings and integers as strings).
    """
    return {
        "type": PERSIST_EVENT,
        "room": room.pk,
        "user": sender.user.pk if sender.user is not None else None,
        "name": sender.name,
        "key": sender.key,
        "body": command.body,
        "client_id": command.client_id,
        "attachments": list(command.attachments),  # addition (issue 16)
        "reply_to_message": command.reply_to,  # addition (issue 16)
        "reply_channel": reply_channel,
        "reply_to": reply_to,
        "route": {
            str(k): v if isinstance(v, (str, int)) else str(v) for k, v in (route or {}).items()
        },
    }


def _sender(event: dict[str, Any]) -> streams.Sender:
    user = None
    if event["user"] is not None:
        user = get_user_model()._default_manager.filter(pk=event["user"]).first()
    return streams.Sender(user=user, name=event["name"], key=event["key"])


def _post(room: Room, event: dict[str, Any]) -> streams.Posted | protocol.ProtocolError:
    """Store one message as the socket's mode would: slow mode and the policy's
    ``clean_message`` apply (with the route's kwargs as the scope); a refusal
    is its outcome, and the others of the room's round are stored."""
    sender = _sender(event)
    scope = {"type": "websocket", "url_route": {"args": (), "kwargs": event.get("route") or {}}}
    screen = policy.Screen(sender.user or AnonymousUser(), room, scope)
    try:
        return streams.post_message(
            room,
            sender,
            event["body"],
            event["client_id"],
            screen=screen,
            attachments=tuple(event.get("attachments") or ()),
            reply_to=event.get("reply_to_message"),
        )
    except protocol.ProtocolError as refused:
        return refused


def store(event: dict[str, Any]) -> tuple[Outcome, list[broadcast.Broadcast]]:
    room = Room._default_manager.get(pk=event["room"])
    with broadcast.collect() as outbox:
        posted = _post(room, event)
    return posted, outbox


Outcome = streams.Posted | Exception


def store_batch(
    events: list[dict[str, Any]],
) -> tuple[list[tuple[dict[str, Any], Outcome]], list[broadcast.Broadcast]]:
    """Store waiting events: one transaction per room, in the order given.

    If a room's transaction fails, its events are stored one by one, so one
    bad event fails alone. Returns each event's outcome and the broadcasts,
    to send after the commits.
    """
    by_room: dict[Any, list[dict[str, Any]]] = {}
    for event in events:
        by_room.setdefault(event["room"], []).append(event)
    outcomes: list[tuple[dict[str, Any], Outcome]] = []
    outbox: list[broadcast.Broadcast] = []
    using = router.db_for_write(Room)
    for room_id, room_events in by_room.items():
        try:
            with broadcast.collect() as box, transaction.atomic(using=using):
                room = Room._default_manager.get(pk=room_id)
                posted = [_post(room, event) for event in room_events]
        except Exception:
            for event in room_events:
                try:
                    posted_one, box = store(event)
                except Exception as exc:
                    logger.exception("liverooms: worker could not store a message")
                    outcomes.append((event, exc))
                else:
                    outcomes.append((event, posted_one))
                    outbox.extend(box)
        else:
            outcomes.extend(zip(room_events, posted, strict=True))
            outbox.extend(box)
    return outcomes, outbox


class PersistWorker(AsyncConsumer):
    """Serves the persist channel; mount it with :func:`routing.worker_routes`."""

    @property  # type: ignore[override]
    def channel_layer_alias(self) -> str:
        return conf.CHANNEL_LAYER

    waiting: list[dict[str, Any]]
    storer: asyncio.Future[None] | None = None
    due: scheduling.DueTimers | None = None

    def _due_timers(self) -> scheduling.DueTimers:
        if self.due is None:
            self.due = scheduling.DueTimers()
            self.due.sweep_once()  # entries that came due while no worker ran
        return self.due

    async def liverooms_schedule(self, event: dict[str, Any]) -> None:
        """A scheduled entry's time (scheduling.py): publish what is due then."""
        self._due_timers().arm(event.get("at"))

    async def liverooms_persist(self, event: dict[str, Any]) -> None:
        self._due_timers()
        # Returns at once so the worker keeps taking events off the layer
        # while a round is stored; waits only when a full batch is waiting.
        if self.storer is None:
            self.waiting = []
            self.storer = asyncio.ensure_future(self.store_waiting())
        self.waiting.append(event)
        if len(self.waiting) >= conf.PERSIST_BATCH and self.storer is not None:
            await asyncio.shield(self.storer)

    async def store_waiting(self) -> None:
        try:
            await asyncio.sleep(0)  # let the events already received join the round
            while self.waiting:
                batch = self.waiting[: conf.PERSIST_BATCH]
                del self.waiting[: len(batch)]
                await self.store_round(batch)
        finally:
            self.storer = None

    async def store_round(self, batch: list[dict[str, Any]]) -> None:
        try:
            outcomes, outbox = await database_sync_to_async(store_batch)(batch)
        except Exception as exc:  # the database is gone: every sender hears it
            logger.exception("liverooms: worker could not store a batch")
            outcomes, outbox = [(event, exc) for event in batch], []
        await broadcast.apublish(outbox)
        for event, outcome in outcomes:
            if isinstance(outcome, protocol.ProtocolError):  # slow mode, clean_message
                await broadcast.areply(event, protocol.encode(outcome.frame()))
            elif isinstance(outcome, Exception):
                error = protocol.error(
                    protocol.UNAVAILABLE,
                    f"The message could not be stored ({type(outcome).__name__}); send it again.",
                    event.get("client_id"),
                )
                await broadcast.areply(event, protocol.encode(error))
            elif outcome.duplicate and outcome.frame is not None:
                await broadcast.areply(event, outcome.frame)
            await broadcast.areply(
                event, event_type=HANDLED_EVENT, client_id=event.get("client_id")
            )
