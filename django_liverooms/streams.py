"""The service layer: every database read and write of the app.

Each function is synchronous and runs in one transaction; async callers make
one ``database_sync_to_async`` hop per client action.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import IntegrityError, router, transaction
from django.db.models import F

from . import protocol
from .broadcast import Broadcast, publish
from .models import LiveBlog, Message, Room, Stream

STREAM_MODELS: dict[str, type[Stream]] = {"chat": Room, "liveblog": LiveBlog}


def get_stream(kind: str, slug: str) -> Stream | None:
    """The room or live blog ``slug``, or None if there is none."""
    if not protocol.is_valid_slug(slug):
        return None
    return STREAM_MODELS[kind]._default_manager.filter(slug=slug).first()


def record_event(stream: Stream, frame: dict[str, Any], *, object_id: int | None = None) -> int:
    """Store ``frame`` as the stream's next event; broadcast it on commit.

    Returns the event's seq. The stream row stays locked until the caller's
    transaction commits, so seqs commit in order: a reader that has seen seq
    N has been able to see every event before it.
    """
    model = type(stream)
    using = router.db_for_write(model)
    with transaction.atomic(using=using):
        rows = model._base_manager.using(using).filter(pk=stream.pk)
        rows.update(last_seq=F("last_seq") + 1)
        seq = rows.values_list("last_seq", flat=True).get()
        text = protocol.encode(protocol.with_seq(frame, seq))
        stream.events.create(seq=seq, type=frame["type"], object_id=object_id, frame=text)
        stream.last_seq = seq
        transaction.on_commit(
            partial(publish, Broadcast(stream.group_name, seq, text)),
            using=using,
            robust=True,
        )
    return seq


@dataclass(frozen=True)
class Sender:
    """Who is posting: a user, or a guest identified by session or connection."""

    user: Any  # a user instance, or None for guests
    name: str
    key: str  # idempotency scope: the same client_id from the same key is one send

    @property
    def info(self) -> dict[str, Any]:
        return protocol.user_info(self.user.pk if self.user is not None else None, self.name)


@dataclass(frozen=True)
class Posted:
    message_id: int
    duplicate: bool
    # The stored ``message`` frame; the reply to a repeated send.
    frame: str | None


def post_message(room: Room, sender: Sender, body: str, client_id: str | None) -> Posted:
    """Store a chat message (once per client_id) and broadcast it on commit."""
    using = router.db_for_write(Message)
    with transaction.atomic(using=using):
        if client_id is not None:
            repeat = _repeated_send(room, sender, client_id)
            if repeat is not None:
                return repeat
        message = Message(
            room=room,
            author=sender.user,
            author_name=sender.name,
            body=body,
            client_id=client_id or "",
            sender_key=sender.key,
        )
        try:
            with transaction.atomic(using=using):
                message.save(using=using)
        except IntegrityError:
            # The same send raced in from another connection and won.
            repeat = _repeated_send(room, sender, client_id) if client_id else None
            if repeat is None:
                raise
            return repeat
    return Posted(message_id=message.pk, duplicate=False, frame=None)


def _repeated_send(room: Room, sender: Sender, client_id: str) -> Posted | None:
    message_id = (
        Message.all_objects.filter(room=room, sender_key=sender.key, client_id=client_id)
        .values_list("pk", flat=True)
        .first()
    )
    if message_id is None:
        return None
    frame = (
        room.events.filter(object_id=message_id, type="message")
        .values_list("frame", flat=True)
        .first()
    )
    return Posted(message_id=message_id, duplicate=True, frame=frame)


@dataclass(frozen=True)
class History:
    last_seq: int  # the stream's latest seq when history was read
    items: list[str]  # encoded frames, in seq order
    complete: bool
    # Every event up to this seq is covered by ``items`` (or older than the
    # window); live frames at or below it are duplicates.
    through: int

    @property
    def text(self) -> str:
        return protocol.history_text(self.items, self.complete)


def read_history(stream: Stream, *, after: int | None, limit: int) -> History:
    """Events for a joining reader: the latest ``limit``, or those after a seq.

    The stream's seq is read first and bounds the events read, so that an
    event committed meanwhile arrives live rather than twice.
    """
    model = type(stream)
    last_seq = model._base_manager.filter(pk=stream.pk).values_list("last_seq", flat=True).get()
    limit = max(limit, 0)
    events = stream.events.filter(seq__lte=last_seq)
    if after is None:
        rows = list(events.order_by("-seq").values_list("seq", "frame")[: limit + 1])
        complete = len(rows) <= limit
        rows = rows[:limit]
        rows.reverse()
        through = last_seq
    else:
        rows = list(
            events.filter(seq__gt=after).order_by("seq").values_list("seq", "frame")[: limit + 1]
        )
        complete = len(rows) <= limit
        rows = rows[:limit]
        through = last_seq if complete else rows[-1][0] if rows else after
    return History(
        last_seq=last_seq, items=[frame for _, frame in rows], complete=complete, through=through
    )
