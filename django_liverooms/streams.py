"""The service layer: every database read and write of the app.

Each function is synchronous and runs in one transaction; async callers make
one ``database_sync_to_async`` hop per client action.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from django.db import IntegrityError, NotSupportedError, connections, router, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from . import attachments as uploads
from . import protocol
from .broadcast import Broadcast, publish
from .conf import conf
from .models import LiveBlog, Message, Room, RoomEvent, RoomMute, Stream
from .unread import save_mentions

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
    with transaction.atomic(using=using, savepoint=False):
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


def record_change(
    stream: Stream,
    frame: dict[str, Any],
    *,
    object_id: int | None,
    redact_fields: tuple[str, ...] | None = protocol.REDACTED_FIELDS,
) -> int:
    """Record ``frame`` about object ``object_id`` (as :func:`record_event`)
    and, in the same transaction, rewrite the object's earlier events.

    A ``<family>.deleted`` frame redacts them (``redact_fields`` blanked,
    ``"redacted": true``); a ``<family>.edited`` frame gives them its text;
    an ``entry.marked`` frame gives the ``entry`` frame its marks, and a
    ``message.reactions`` frame the ``message`` frame its reactions.
    The earlier frames are those of the same object whose type is
    ``<family>`` or ``<family>.<anything>``, so that two models pushing into
    one stream with the same pks never touch each other's events.
    ``redact_fields=None``: record only, rewrite nothing.
    """
    using = router.db_for_write(type(stream))
    with transaction.atomic(using=using, savepoint=False):
        seq = record_event(stream, frame, object_id=object_id)
        change = protocol.change_of(frame["type"])
        if object_id is not None and change is not None and redact_fields is not None:
            family, kind = change
            if kind == "deleted":
                rewrite = partial(protocol.redacted, fields=redact_fields)
            elif kind == "marked":
                rewrite = partial(protocol.with_current_marks, marked=frame)
            elif kind == "reactions":
                rewrite = partial(protocol.with_current_reactions, reacted=frame)
            else:
                rewrite = partial(protocol.with_current_text, edit=frame)
            rewrite_events(stream, [object_id], family, rewrite, before_seq=seq)
            if family == "message" and kind in ("deleted", "edited"):
                requote(stream, object_id, using)
    return seq


def requote(room: Stream, message_id: int, using: str) -> int:
    """Rewrite the stored replies to message ``message_id`` so that they
    quote it as it is now (edited, or removed: only its id). Returns how
    many events changed; none, and one query, when nobody replied to it."""
    replies = list(
        Message.all_objects.using(using).filter(reply_to_id=message_id).values_list("pk", flat=True)
    )
    if not replies:
        return 0
    quoted = Message.all_objects.using(using).get(pk=message_id).quoted()
    return rewrite_events(room, replies, "message", partial(protocol.with_quote, quoted=quoted))


REWRITE_BATCH = 500  # object ids per query, rows per UPDATE batch


def rewrite_events(
    stream: Stream,
    object_ids: list[int],
    family: str,
    rewrite: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    before_seq: int | None = None,
) -> int:
    """Rewrite the stored frames of ``family`` about ``object_ids`` in place.

    Each event keeps its row, seq, type and id; only its ``frame`` changes,
    so resume stays gap-free. One read and one bulk UPDATE per batch of
    objects, paid by the change, never by readers. ``.deleted`` frames carry
    no text and are left alone. Returns how many events changed.
    """
    events = stream.events.model._default_manager.using(router.db_for_write(type(stream)))
    changed = 0
    for start in range(0, len(object_ids), REWRITE_BATCH):
        rows = events.filter(stream=stream, object_id__in=object_ids[start : start + REWRITE_BATCH])
        rows = rows.filter(Q(type=family) | Q(type__startswith=f"{family}."))
        rows = rows.exclude(type=f"{family}.deleted")
        if before_seq is not None:
            rows = rows.filter(seq__lt=before_seq)
        updated = []
        for event in rows.only("pk", "frame"):
            text = protocol.rewrite_text(event.frame, rewrite)
            if text != event.frame:
                event.frame = text
                updated.append(event)
        events.bulk_update(updated, ["frame"], batch_size=REWRITE_BATCH)
        changed += len(updated)
    return changed


@dataclass(frozen=True, slots=True)  # one per connection
class Sender:
    """Who is posting: a user, or a guest identified by session or connection."""

    user: Any  # a user instance, or None for guests
    name: str  # cut to protocol.NAME_MAX_LENGTH characters (what a message stores)
    key: str  # idempotency scope: the same client_id from the same key is one send

    def __post_init__(self) -> None:
        # Whatever the policy returns, a send must not fail on the name's length.
        object.__setattr__(self, "name", protocol.shown_name(self.name))

    @property
    def info(self) -> dict[str, Any]:
        return protocol.user_info(self.user.pk if self.user is not None else None, self.name)


@dataclass(frozen=True)
class Posted:
    message_id: int
    duplicate: bool
    # The stored ``message`` frame; the reply to a repeated send.
    frame: str | None


class Screen(Protocol):
    """The policy's say on one sender's new messages in a room (policy.Screen)."""

    exempt: bool  # slow mode lets the sender through (a moderator)

    def clean(self, body: str, client_id: str | None) -> str: ...


def post_message(
    room: Room,
    sender: Sender,
    body: str,
    client_id: str | None,
    *,
    screen: Screen | None = None,
    attachments: tuple[int, ...] = (),
    reply_to: int | None = None,
) -> Posted:
    """Store a chat message (once per client_id) and broadcast it on commit.

    With a ``screen`` (a socket's message), the room's slow mode and the
    policy's ``clean_message`` apply as in :func:`post_messages`: a refused
    message raises its ProtocolError, unless its ``client_id`` was stored
    before (then that is the answer). ``attachments``: ids of the sender's
    uploads to the room, not sent yet, bound to the message in its
    transaction (else ProtocolError ``bad_frame``), as in post_messages.
    ``reply_to``: the id of a message of the room, not removed, that it
    answers (else ProtocolError ``bad_frame``).
    """
    using = router.db_for_write(Message)
    with transaction.atomic(using=using):
        claimed: list[Any] = []
        if attachments:
            # A resend's attachments are bound already: answered as a repeat.
            repeat = _repeated_send(room, sender, client_id) if client_id else None
            if repeat is not None:
                return repeat
            found = uploads.claim([(room.pk, _pk(sender.user), attachments)], using)[0]
            if found is None:
                raise uploads.refused(client_id)
            claimed = found
        if screen is not None:
            new = NewMessage(room, sender, body, client_id, screen)
            if room.slow_mode_seconds:
                _lock_rooms([room.pk], using)
            try:
                body = _screened(new, last_posts([new], using), timezone.now())
            except protocol.ProtocolError:
                repeat = _repeated_send(room, sender, client_id) if client_id else None
                if repeat is None:
                    raise
                return repeat
        parent = None
        if reply_to is not None:
            parent = Message.objects.using(using).filter(pk=reply_to, room=room).first()
            if parent is None:
                repeat = _repeated_send(room, sender, client_id) if client_id else None
                if repeat is not None:
                    return repeat
                raise not_a_reply_target(reply_to, client_id)
        message = Message(
            room=room,
            author=sender.user,
            author_name=sender.name,
            body=body,
            client_id=client_id or "",
            sender_key=sender.key,
            reply_to=parent,
        )
        message.attachment_frames = [uploads.info(a, room.slug) for a in claimed] or None
        try:
            with transaction.atomic(using=using):
                message.save(using=using)
        except IntegrityError:
            # A repeated send (a resend after a reconnect, or the same send
            # racing in from another connection): the unique client_id
            # constraint found it, so the common case costs no extra query.
            repeat = _repeated_send(room, sender, client_id) if client_id else None
            if repeat is None:
                raise
            return repeat
        uploads.bind(message.pk, claimed, using)
    return Posted(message_id=message.pk, duplicate=False, frame=None)


@dataclass(frozen=True)
class NewMessage:
    """One chat message of a batch (post_messages)."""

    room: Room
    sender: Sender
    body: str
    client_id: str | None
    # A socket's message: slow mode and the policy's clean_message apply.
    screen: Screen | None = None
    # Addition (issue 16): ids of the sender's uploads it sends (attachments.py).
    attachments: tuple[int, ...] = ()
    # Addition (issue 16): the id of the message of the room it replies to.
    reply_to: int | None = None


def post_messages(
    batch: list[NewMessage],
) -> tuple[list[Posted], dict[str, list[tuple[int, str]]]]:
    """Store a batch of chat messages in one transaction (group commit).

    The same guarantees as :func:`post_message`, message by message: stored
    once per ``client_id`` (a repeat, in the database or earlier in the
    batch, is answered with the stored frame), seqs in commit order, and a
    broadcast only after the commit. But a fixed number of statements
    whatever the batch holds: the repeats looked up at once, the rooms
    locked (in primary-key order, so that batches of other processes cannot
    deadlock with this one) and their seqs allocated together, one insert of
    all the messages and one of all the events; and the frames per room
    carrying all its new frames.

    A message with a ``screen`` is refused (its outcome the ProtocolError,
    nothing stored) when the room's slow mode holds its sender back (the
    senders' latest messages read in one query, once the rooms are locked,
    so that it holds across processes) or the policy's ``clean_message``
    refuses it; it is stored with the body ``clean_message`` returns.
    A repeated ``client_id`` of a stored message is answered, never refused.

    Returns each send's outcome and the new frames by group, in seq order,
    for the caller to broadcast once the transaction has committed
    (``broadcast.batch_events``): nothing is broadcast from here.
    Raises IntegrityError if another process stored one of the ``client_id``
    meanwhile; the caller then stores the batch message by message.
    """
    using = router.db_for_write(Message)
    if not connections[using].features.can_return_rows_from_bulk_insert:
        raise NotSupportedError("bulk inserts do not return primary keys on this database")
    results: list[Posted | Exception | None] = [None] * len(batch)
    frames: dict[str, list[tuple[int, str]]] = {}
    batch = list(batch)  # _screen puts the cleaned bodies in its copy
    # No savepoint inside the writer's transaction: a failure fails the batch anyway.
    with transaction.atomic(using=using, savepoint=False):
        fresh = _answer_repeats(batch, results, using)
        claimed: dict[int, list[Any]] = {}  # index -> its attachments (attachments.py)
        quotes: dict[int, dict[str, Any]] = {}  # index -> the message it replies to
        if fresh:
            _lock_rooms(sorted({batch[index].room.pk for index in fresh}), using)
            fresh, claimed = _claim_attachments(batch, fresh, results, using)
            fresh, quotes = _quote_replies(batch, fresh, results, using)
            fresh = _screen(batch, fresh, results, using)
        if fresh:
            counts: dict[int, int] = {}
            for index in fresh:
                counts[batch[index].room.pk] = counts.get(batch[index].room.pk, 0) + 1
            next_seq = _allocate_room_seqs(counts, using)
            # Plain rows, not model instances: the hot path's two inserts
            # (Model.__init__, its signals and the field tracker were a third
            # of a batch's CPU).
            created = [timezone.now() for _ in fresh]
            message_ids = insert_rows(
                Message,
                MESSAGE_COLUMNS,
                [_message_row(batch[i], when) for i, when in zip(fresh, created, strict=True)],
                using,
                returning=True,
            )
            events = []
            for index, message_id, when in zip(fresh, message_ids, created, strict=True):
                new = batch[index]
                room = new.room
                seq = next_seq[room.pk]
                next_seq[room.pk] += 1
                frame = protocol.message(
                    id=message_id,
                    slug=room.slug,
                    body=new.body,
                    author=protocol.user_info(_pk(new.sender.user), new.sender.name),
                    created=when.isoformat(),
                    client_id=new.client_id or None,
                    attachments=[uploads.info(a, room.slug) for a in claimed.get(index, ())],
                    reply_to=quotes.get(index),
                )
                uploads.bind(message_id, claimed.get(index, []), using)
                text = protocol.encode(protocol.with_seq(frame, seq))
                events.append((room.pk, seq, "message", message_id, text, when))
                frames.setdefault(room.group_name, []).append((seq, text))
                results[index] = Posted(message_id=message_id, duplicate=False, frame=None)
            insert_rows(RoomEvent, EVENT_COLUMNS, events, using)
            # Who the bodies @name: two more statements, only if any does (unread.py).
            save_mentions(
                [(mid, batch[i].body) for i, mid in zip(fresh, message_ids, strict=True)], using
            )
        _answer_repeats_within(batch, results)
    return results, frames  # type: ignore[return-value]


def _claim_attachments(
    batch: list[NewMessage], fresh: list[int], results: list[Posted | Exception | None], using: str
) -> tuple[list[int], dict[int, list[Any]]]:
    """The fresh sends whose attachments, if any, are theirs to send (one
    query for the batch: attachments.claim), and those attachments by index;
    the others are refused (``bad_frame``) in ``results``."""
    wanted = [index for index in fresh if batch[index].attachments]
    if not wanted:
        return fresh, {}
    keys = [(batch[i].room.pk, _pk(batch[i].sender.user), batch[i].attachments) for i in wanted]
    claimed: dict[int, list[Any]] = {}
    for index, items in zip(wanted, uploads.claim(keys, using), strict=True):
        if items is None:
            results[index] = uploads.refused(batch[index].client_id)
        else:
            claimed[index] = items
    return [i for i in fresh if i in claimed or not batch[i].attachments], claimed


def _quote_replies(
    batch: list[NewMessage], fresh: list[int], results: list[Posted | Exception | None], using: str
) -> tuple[list[int], dict[int, dict[str, Any]]]:
    """The fresh sends whose ``reply_to``, if any, is a message of their room
    not removed (one query for the batch), and its quote by index; the
    others are refused (``bad_frame``) in ``results``."""
    wanted = [index for index in fresh if batch[index].reply_to is not None]
    if not wanted:
        return fresh, {}
    parents = Message.objects.using(using).in_bulk({batch[i].reply_to for i in wanted})
    quotes: dict[int, dict[str, Any]] = {}
    for index in wanted:
        new = batch[index]
        parent = parents.get(new.reply_to)
        if parent is None or parent.room_id != new.room.pk:
            results[index] = not_a_reply_target(new.reply_to, new.client_id)
        else:
            quotes[index] = parent.quoted()
    return [i for i in fresh if i in quotes or batch[i].reply_to is None], quotes


def not_a_reply_target(message_id: Any, client_id: str | None) -> protocol.ProtocolError:
    return protocol.ProtocolError(
        protocol.BAD_FRAME, f"There is no message {message_id} in this room to reply to.", client_id
    )


MESSAGE_COLUMNS = (
    "room",
    "author",
    "author_name",
    "body",
    "client_id",
    "sender_key",
    "is_removed",
    "created",
    "modified",
    "reply_to",
)
EVENT_COLUMNS = ("stream", "seq", "type", "object_id", "frame", "created")


def _pk(user: Any) -> Any:
    return user.pk if user is not None else None


def _message_row(new: NewMessage, when: Any) -> tuple[Any, ...]:
    return (
        new.room.pk,
        _pk(new.sender.user),
        new.sender.name,
        new.body,
        new.client_id or "",
        new.sender.key,
        False,
        when,
        when,
        new.reply_to,
    )


def insert_rows(
    model: Any,
    fields: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    using: str,
    *,
    returning: bool = False,
) -> list[Any]:
    """INSERT ``rows`` (values in ``fields`` order; a foreign key's value is
    its pk) in as few statements as the database allows; with ``returning``,
    the new primary keys in row order (as ``bulk_create`` relies on)."""
    connection = connections[using]
    quote = connection.ops.quote_name
    columns = [model._meta.get_field(name) for name in fields]
    head = (
        f"INSERT INTO {quote(model._meta.db_table)} "
        f"({', '.join(quote(column.column) for column in columns)}) VALUES "
    )
    tail = f" RETURNING {quote(model._meta.pk.column)}" if returning else ""
    marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
    size = max(connection.ops.bulk_batch_size(columns, rows), 1)
    ids: list[Any] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            params = [
                column.get_db_prep_save(value, connection)
                for row in chunk
                for column, value in zip(columns, row, strict=True)
            ]
            cursor.execute(head + ", ".join([marks] * len(chunk)) + tail, params)
            if returning:
                ids.extend(row[0] for row in cursor.fetchall())
    return ids


def _lock_rooms(pks: list[int], using: str) -> None:
    """Lock the rooms' rows until the transaction ends (their seqs are taken
    and their slow mode judged under it)."""
    connection = connections[using]
    if not connection.features.has_select_for_update:
        return  # SQLite: a writing transaction locks the whole database
    quote = connection.ops.quote_name
    table, pk = quote(Room._meta.db_table), quote(Room._meta.pk.column)
    marks = ", ".join(["%s"] * len(pks))
    with connection.cursor() as cursor:
        # Locked in one order by every process, so batches cannot deadlock.
        cursor.execute(
            f"SELECT {pk} FROM {table} WHERE {pk} IN ({marks}) ORDER BY {pk} FOR UPDATE", pks
        )


def _allocate_room_seqs(counts: dict[int, int], using: str) -> dict[int, int]:
    """Take ``counts[pk]`` seqs of each room (locked by _lock_rooms); the first seq of each."""
    connection = connections[using]
    quote = connection.ops.quote_name
    table, pk, last = (
        quote(Room._meta.db_table),
        quote(Room._meta.pk.column),
        quote(Room._meta.get_field("last_seq").column),
    )
    pks = sorted(counts)
    marks = ", ".join(["%s"] * len(pks))
    with connection.cursor() as cursor:
        cases = " ".join(["WHEN %s THEN %s"] * len(pks))
        cursor.execute(
            f"UPDATE {table} SET {last} = {last} + CASE {pk} {cases} ELSE 0 END "
            f"WHERE {pk} IN ({marks})",
            [value for room in pks for value in (room, counts[room])] + pks,
        )
        cursor.execute(f"SELECT {pk}, {last} FROM {table} WHERE {pk} IN ({marks})", pks)
        return {room: seq - counts[room] + 1 for room, seq in cursor.fetchall()}


def _answer_repeats(
    batch: list[NewMessage], results: list[Posted | Exception | None], using: str
) -> list[int]:
    """Fill in the answers to sends stored before; the indexes left to store.

    A repeat later in the batch of a send earlier in it is answered after
    the insert (:func:`_answer_repeats_within`)."""
    keyed = {(m.room.pk, m.sender.key, m.client_id) for m in batch if m.client_id}
    stored: set[tuple[int, str, str]] = set()
    if keyed:
        # One equality per send, so each is an index lookup on the
        # (room, sender_key, client_id) constraint, however long the room.
        connection = connections[using]
        quote = connection.ops.quote_name
        columns = [
            quote(Message._meta.get_field(name).column)
            for name in ("room", "sender_key", "client_id")
        ]
        match = "(" + " AND ".join(f"{column} = %s" for column in columns) + ")"
        wanted = sorted(keyed)
        size = (connection.features.max_query_params or 3000) // 3
        with connection.cursor() as cursor:
            for start in range(0, len(wanted), size):
                chunk = wanted[start : start + size]
                cursor.execute(
                    f"SELECT {', '.join(columns)} FROM {quote(Message._meta.db_table)} "
                    f"WHERE {' OR '.join([match] * len(chunk))}",
                    [value for key in chunk for value in key],
                )
                stored.update(tuple(row) for row in cursor.fetchall())  # type: ignore[misc]
    fresh, seen = [], set()
    for index, new in enumerate(batch):
        key = (new.room.pk, new.sender.key, new.client_id)
        if new.client_id and key in stored:
            results[index] = _repeated_send(new.room, new.sender, new.client_id)
        elif new.client_id and key in seen:
            continue  # answered once its first copy is stored
        else:
            seen.add(key)
            fresh.append(index)
    return fresh


def _answer_repeats_within(
    batch: list[NewMessage], results: list[Posted | Exception | None]
) -> None:
    first: dict[tuple[int, str, str | None], Posted | Exception | None] = {}
    for index, posted in enumerate(results):
        new = batch[index]
        key = (new.room.pk, new.sender.key, new.client_id)
        if posted is not None:
            first.setdefault(key, posted)
            continue
        assert new.client_id is not None
        earlier = first.get(key)
        # The answer of its first copy: stored, or refused (then so is the repeat).
        if isinstance(earlier, Exception):
            results[index] = earlier
        else:
            results[index] = _repeated_send(new.room, new.sender, new.client_id)


def _screen(
    batch: list[NewMessage], fresh: list[int], results: list[Posted | Exception | None], using: str
) -> list[int]:
    """The fresh sends that slow mode and the policy let through, their
    bodies as cleaned put in ``batch``; the refusals in ``results``."""
    last = last_posts([batch[index] for index in fresh], using)
    now = timezone.now()
    kept = []
    for index in fresh:
        new = batch[index]
        try:
            body = _screened(new, last, now)
        except protocol.ProtocolError as refused:
            results[index] = refused
            continue
        if body != new.body:
            batch[index] = replace(new, body=body)
        kept.append(index)
    return kept


def _screened(new: NewMessage, last: dict[tuple[int, str], datetime], now: datetime) -> str:
    """The body to store for a fresh send; ProtocolError if the room's slow
    mode (``last``: (room pk, sender key) -> their latest message, which
    this one becomes) or the policy refuses it."""
    if new.screen is None:
        return new.body
    slow = new.room.slow_mode_seconds
    key = (new.room.pk, new.sender.key)
    if slow and key in last:
        wait = (last[key] + timedelta(seconds=slow) - now).total_seconds()
        if wait > 0 and not new.screen.exempt:
            retry = math.ceil(wait)
            raise protocol.ProtocolError(
                protocol.SLOW_MODE,
                f"Slow mode: one message every {slow} s in this room; wait {retry} s.",
                new.client_id,
                retry_after=retry,
            )
    body = new.screen.clean(new.body, new.client_id)
    if slow:
        last[key] = now
    return body


def last_posts(batch: list[NewMessage], using: str) -> dict[tuple[int, str], datetime]:
    """When each sender of ``batch`` last posted in its room, for the rooms
    with slow mode on, if within the slow mode: one query (none when no room
    has it), on the (room, sender_key, created) index. Within the batch's
    transaction, after the rooms are locked: what another process stored
    meanwhile has committed and is seen."""
    slowed = [new for new in batch if new.screen is not None and new.room.slow_mode_seconds]
    if not slowed:
        return {}
    since = timezone.now() - timedelta(seconds=max(new.room.slow_mode_seconds for new in slowed))
    rows = (
        Message.all_objects.using(using)
        .filter(
            room__in={new.room.pk for new in slowed},
            sender_key__in={new.sender.key for new in slowed},
            created__gt=since,
        )
        .order_by()
        .values_list("room", "sender_key")
        .annotate(last=Max("created"))
    )
    return {(room, key): last for room, key, last in rows}


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
    if frame is None:  # its event was pruned (liverooms_prune): rebuild the frame
        frame = _rebuilt_message_frame(
            Message.all_objects.select_related("room").get(pk=message_id)
        )
    return Posted(message_id=message_id, duplicate=True, frame=frame)


def _rebuilt_message_frame(message: Message) -> str:
    """The acknowledgement of a send whose event was pruned: seq 0, as its seq
    is no longer known and it is older than anything a reader can be sent."""
    frame = protocol.message(
        id=message.pk,
        slug=message.room.slug,
        body=message.body,
        author=protocol.user_info(message.author_id, message.author_name),
        created=message.created.isoformat(),
        client_id=message.client_id or None,
        attachments=[uploads.info(a, message.room.slug) for a in message.attachments.all()],
    )
    if message.is_removed:  # as its stored events would be: no text
        frame = protocol.redacted(frame)
    return protocol.encode(protocol.with_seq(frame, 0))


@dataclass(frozen=True)
class History:
    last_seq: int  # the stream's latest seq when history was read
    items: list[str]  # encoded frames, in seq order
    complete: bool
    # Every event up to this seq is covered by ``items`` (or older than the
    # window); live frames at or below it are duplicates.
    through: int
    # The ``after`` asked for cannot be continued without a gap: it is beyond
    # the stream's seq, or the events after it were pruned. ``items`` are then
    # the latest events and ``complete`` is false.
    gone: bool = False
    seqs: tuple[int, ...] = ()  # the seq of each item (read_history only)

    @property
    def text(self) -> str:
        return protocol.history_text(self.items, self.complete)


def current_seq(stream: Stream) -> int:
    """The stream's latest seq, as committed."""
    model = type(stream)
    return model._base_manager.filter(pk=stream.pk).values_list("last_seq", flat=True).get()


def read_history(
    stream: Stream, *, after: int | None, limit: int, last_seq: int | None = None
) -> History:
    """Events for a joining reader: the latest ``limit``, or those after a seq.

    The stream's seq is read first (or given: read after the reader joined)
    and bounds the events read, so that an event committed meanwhile arrives
    live rather than twice. An ``after`` that cannot be continued without a
    gap gives the latest events with ``gone`` set (see :class:`History`).
    """
    if last_seq is None:
        last_seq = current_seq(stream)
    limit = max(limit, 0)
    events = stream.events.filter(seq__lte=last_seq)
    if after is not None:
        rows = list(
            events.filter(seq__gt=after).order_by("seq").values_list("seq", "frame")[: limit + 1]
        )
        continues = rows[0][0] == after + 1 if rows else after == last_seq
        if continues:
            complete = len(rows) <= limit
            rows = rows[:limit]
            through = last_seq if complete else rows[-1][0] if rows else after
            return _history(last_seq, rows, complete, through)
    rows = list(events.order_by("-seq").values_list("seq", "frame")[: limit + 1])
    complete = len(rows) <= limit and after is None
    rows = rows[:limit]
    rows.reverse()
    return _history(last_seq, rows, complete, last_seq, gone=after is not None)


def _history(
    last_seq: int, rows: list[tuple[int, str]], complete: bool, through: int, gone: bool = False
) -> History:
    return History(
        last_seq,
        [frame for _, frame in rows],
        complete,
        through,
        gone=gone,
        seqs=tuple(seq for seq, _ in rows),
    )


def default_page_size() -> int:
    """A history page without ``?limit=`` (and the widget's "load older" page)."""
    return min(conf.HISTORY_LIMIT, conf.HTTP_HISTORY_MAX_LIMIT) or 1


def read_page(stream: Stream, *, after: int | None, before: int | None, limit: int) -> History:
    """A page of the HTTP history API: ``limit`` events after ``after``, or before ``before``.

    With neither, the oldest events kept. ``complete`` is true when no
    further event exists in the direction of paging. After ``after`` is
    ``gone`` as in :func:`read_history` (no items are read then).
    """
    last_seq = current_seq(stream)
    events = stream.events.filter(seq__lte=last_seq)
    if before is not None:
        rows = list(
            events.filter(seq__lt=before).order_by("-seq").values_list("seq", "frame")[: limit + 1]
        )
        complete = len(rows) <= limit
        rows = rows[:limit]
        rows.reverse()
        return History(last_seq, [frame for _, frame in rows], complete, last_seq)
    start = 0 if after is None else after
    rows = list(
        events.filter(seq__gt=start).order_by("seq").values_list("seq", "frame")[: limit + 1]
    )
    if after is not None and not (rows[0][0] == after + 1 if rows else after == last_seq):
        return History(last_seq, [], False, last_seq, gone=True)
    complete = len(rows) <= limit
    rows = rows[:limit]
    return History(last_seq, [frame for _, frame in rows], complete, last_seq)


MAX_SEARCH_TERMS = 8  # words of a query matched without full-text search


@dataclass(frozen=True)
class Found:
    items: list[str]  # encoded ``message`` frames, newest first
    complete: bool  # no older match


def search_messages(room: Room, query: str, *, before: int | None, limit: int) -> Found:
    """The room's messages that match ``query``, newest first, older than message ``before``.

    On PostgreSQL, full-text search (``websearch_to_tsquery`` syntax, the
    ``SEARCH_CONFIG`` text search configuration); elsewhere each of the first
    ``MAX_SEARCH_TERMS`` words as a case-insensitive substring. Removed
    messages are never found. An item is the message's stored frame (so
    edits and marks show as in the history) or, where retention pruned that
    event, a frame built from the row, without ``seq``.
    """
    messages = Message.objects.filter(room=room)  # ``objects``: removed ones excluded
    if before is not None:
        messages = messages.filter(pk__lt=before)
    if connections[messages.db].vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVector

        config = conf.SEARCH_CONFIG
        messages = messages.annotate(matched=SearchVector("body", config=config)).filter(
            matched=SearchQuery(query, config=config, search_type="websearch")
        )
    else:
        for term in query.split()[:MAX_SEARCH_TERMS]:
            messages = messages.filter(body__icontains=term)
    found = list(messages.select_related("room", "author").order_by("-pk")[: limit + 1])
    complete = len(found) <= limit
    found = found[:limit]
    stored = dict(
        room.events.filter(type="message", object_id__in=[m.pk for m in found]).values_list(
            "object_id", "frame"
        )
    )
    items = [stored.get(m.pk) or protocol.encode(m.frame_for_save(created=True)) for m in found]
    return Found(items, complete)


@dataclass(frozen=True)
class Pruned:
    stream: Stream
    events: int  # events deleted
    through: int  # every event up to this seq is gone (0: none)


def prune_events(
    stream: Stream, *, keep_last: int | None, older_than: Any | None, dry_run: bool = False
) -> Pruned:
    """Delete a stream's oldest events: a prefix of its seqs, never a hole.

    An event is kept if any given rule keeps it: it is among the latest
    ``keep_last``, or it was created at or after ``older_than`` (a datetime).
    The stored messages and entries stay; only their replayable events go, so
    a reader resuming from before the cut is told ``history_gone``.
    """
    using = router.db_for_write(type(stream))
    with transaction.atomic(using=using):
        events = stream.events.using(using)
        cuts = []
        if keep_last is not None:
            cuts.append(current_seq(stream) - keep_last)
        if older_than is not None:
            cuts.append(
                events.filter(created__lt=older_than).aggregate(through=Max("seq"))["through"] or 0
            )
        through = min(cuts) if cuts else 0
        doomed = events.filter(seq__lte=through)
        count = doomed.count() if dry_run else doomed.delete()[0]
    return Pruned(stream, count, max(through, 0) if count else 0)


class NotFound(Exception):
    """The message or user a moderation command names is not there."""


class NotAllowed(Exception):
    """The policy refuses this change."""


def change_message(
    room: Room,
    message_id: int,
    may_change: Any,
    *,
    body: str | None = None,
    screen: Screen | None = None,
) -> Message:
    """Edit (``body`` given) or soft-delete a message of ``room``.

    ``may_change(message)`` is the policy's verdict, asked with the row
    locked; then an edit's body goes through ``screen.clean`` (the policy's
    ``clean_message``: rewritten, or refused with its ProtocolError). The
    save is the bridge's usual path: ``message.edited`` or
    ``message.deleted`` with the room's next seq, broadcast on commit.
    """
    using = router.db_for_write(Message)
    with transaction.atomic(using=using):
        message = (
            Message.objects.using(using)
            .select_for_update(of=("self",))
            .filter(room=room, pk=message_id, is_removed=False)
            .select_related("room")
            .first()
        )
        if message is None:
            raise NotFound(message_id)
        if not may_change(message):
            raise NotAllowed(message_id)
        if body is not None and screen is not None:
            body = screen.clean(body, None)
        if body is None:
            message.delete(using=using)
        elif body != message.body:
            message.body = body
            message.save(using=using)
    return message


# Data-protection requests (docs/retention.md) ---------------------------------


def react(room: Room, message_id: int, user: Any, emoji: str, on: bool) -> bool:
    """Set (``on``) or take back ``user``'s ``emoji`` on message ``message_id``
    of ``room``; whether anything changed. NotFound: no such message there,
    or it was removed. Readers learn of it from :func:`record_reactions`."""
    from .models import MessageReaction

    using = router.db_for_write(MessageReaction)
    if not Message.objects.using(using).filter(pk=message_id, room=room).exists():
        raise NotFound(message_id)
    mine = MessageReaction.objects.using(using).filter(
        message_id=message_id, user=user, emoji=emoji
    )
    if not on:
        return mine.delete()[0] > 0
    if mine.exists():
        return False
    try:
        with transaction.atomic(using=using):
            MessageReaction.objects.using(using).create(
                message_id=message_id, user=user, emoji=emoji
            )
    except IntegrityError:
        return False  # another socket of the user's, just now
    return True


def record_reactions(room: Room, message_ids: list[int]) -> list[int]:
    """A ``message.reactions`` event for each message of ``message_ids``
    still in ``room``, with its reactions as stored now (each emoji's count
    and its first ``REACTION_USERS_MAX`` users, emoji by first use); the
    stored ``message`` frame gets them too. Returns the seqs."""
    from django.db.models import Count, Min, Window
    from django.db.models.functions import RowNumber

    from .models import MessageReaction

    using = router.db_for_write(Room)
    with transaction.atomic(using=using):
        live = sorted(
            Message.objects.using(using)
            .filter(room=room, pk__in=message_ids)
            .values_list("pk", flat=True)
        )
        reactions = MessageReaction.objects.using(using).filter(message_id__in=live)
        counts = (
            reactions.values("message_id", "emoji")
            .annotate(count=Count("pk"), first=Min("created"))
            .order_by("message_id", "first", "emoji")
        )
        ranked = reactions.annotate(
            rank=Window(RowNumber(), partition_by=["message_id", "emoji"], order_by="created")
        )
        users: dict[tuple[int, str], list[Any]] = {}
        for message_id, emoji, user_id in (
            ranked.filter(rank__lte=protocol.REACTION_USERS_MAX)
            .order_by("message_id", "emoji", "rank")
            .values_list("message_id", "emoji", "user_id")
        ):
            users.setdefault((message_id, emoji), []).append(user_id)
        by_message: dict[int, list[dict[str, Any]]] = {pk: [] for pk in live}
        for row in counts:
            key = (row["message_id"], row["emoji"])
            by_message[row["message_id"]].append(
                {"emoji": row["emoji"], "count": row["count"], "users": users.get(key, [])}
            )
        return [
            record_change(room, protocol.message_reactions(id=pk, reactions=found), object_id=pk)
            for pk, found in by_message.items()
        ]


@dataclass(frozen=True)
class Purged:
    messages: int  # messages erased
    deleted: int  # of which were live: readers got ``message.deleted``
    events: int  # stored events redacted
    rooms: int  # rooms they were in


def _messages_of(user_id: int) -> Any:
    # sender_key too: it outlives the user row (author is SET_NULL on delete).
    return Message.all_objects.filter(Q(author_id=user_id) | Q(sender_key=f"user:{user_id}"))


def purge_user(user_id: int, *, dry_run: bool = False) -> Purged:
    """Erase every message user ``user_id`` wrote, in every room.

    Each message's body, author name, author, sender key and client_id are
    erased and it is marked removed; a message still live gets a
    ``message.deleted`` event (live readers remove it); every stored event
    about the messages is redacted, its author too (id null, name ""). One
    transaction per room. The user row itself is left to the caller.
    """
    room_ids = sorted(set(_messages_of(user_id).values_list("room_id", flat=True)))
    messages = deleted = events = 0
    for room_id in room_ids:
        purged = _purge_user_in_room(user_id, room_id, dry_run=dry_run)
        messages += purged.messages
        deleted += purged.deleted
        events += purged.events
    if not dry_run:  # the files they uploaded and never sent too
        uploads.delete_uploads_of(user_id)
    return Purged(messages, deleted, events, len(room_ids))


def _purge_user_in_room(user_id: int, room_id: int, *, dry_run: bool) -> Purged:
    using = router.db_for_write(Message)
    with transaction.atomic(using=using):
        room = Room._base_manager.using(using).get(pk=room_id)
        rows = list(_messages_of(user_id).filter(room_id=room_id).values_list("pk", "is_removed"))
        ids = [pk for pk, _ in rows]
        live = [pk for pk, removed in rows if not removed]
        if dry_run:
            return Purged(len(ids), len(live), _count_events(room, ids, "message"), 1)
        for start in range(0, len(ids), REWRITE_BATCH):
            Message.all_objects.using(using).filter(
                pk__in=ids[start : start + REWRITE_BATCH]
            ).update(
                body="",
                author_name="",
                author=None,
                sender_key="",
                client_id="",
                is_removed=True,
                modified=timezone.now(),
            )
        for pk in live:  # what a moderator's deletion sends, so live readers drop it
            record_event(room, protocol.message_deleted(id=pk), object_id=pk)
        redact = partial(protocol.redacted, erase_author=True)
        events = rewrite_events(room, ids, "message", redact)
        for pk in ids:  # replies quote them no more
            requote(room, pk, using)
        uploads.delete_for_messages(ids, using)  # and their files, once this commits
    return Purged(len(ids), len(live), events, 1)


def _count_events(stream: Stream, object_ids: list[int], family: str) -> int:
    count = 0
    for start in range(0, len(object_ids), REWRITE_BATCH):
        count += (
            stream.events.filter(object_id__in=object_ids[start : start + REWRITE_BATCH])
            .filter(Q(type=family) | Q(type__startswith=f"{family}."))
            .exclude(type=f"{family}.deleted")
            .count()
        )
    return count


@dataclass(frozen=True)
class RoomPurged:
    messages: int
    events: int


def purge_room(room: Stream, *, dry_run: bool = False) -> RoomPurged:
    """Delete a room (or live blog) with everything posted in it and its events.

    Its open sockets and SSE readers are asked to re-check after the commit
    (revoke.py) and are closed with 4404, as for any stream that no longer
    exists. Nothing else is sent: there is no stream left to tell.
    """
    from .revoke import recheck

    using = router.db_for_write(type(room))
    with transaction.atomic(using=using):
        items = room.messages if isinstance(room, Room) else room.entries
        counts = RoomPurged(items.count(), room.events.count())
        if not dry_run:
            group = room.group_name
            room.delete(using=using)
            transaction.on_commit(partial(recheck, group), using=using, robust=True)
    return counts


def mute(room: Room, user_id: int, until: Any, by: Any) -> None:
    """Mute user ``user_id`` in ``room`` until ``until`` (None: until unmuted)."""
    from django.contrib.auth import get_user_model

    if not get_user_model()._default_manager.filter(pk=user_id).exists():
        raise NotFound(user_id)
    RoomMute.objects.update_or_create(
        room=room, user_id=user_id, defaults={"until": until, "muted_by": by}
    )


def unmute(room: Room, user_id: int) -> bool:
    deleted, _ = RoomMute.objects.filter(room=room, user_id=user_id).delete()
    return bool(deleted)


def latest_seqs(
    selected: list[tuple[str, str]], limit: int
) -> tuple[list[dict[str, Any]], list[Stream]]:
    """(rows, streams) for the health report: the ``selected`` (kind, slug)
    streams, or else the ``limit`` busiest of each kind (highest seq first)."""
    found: list[Stream] = []
    for kind, model in STREAM_MODELS.items():
        slugs = [slug for k, slug in selected if k == kind]
        if selected:
            found += model._default_manager.filter(slug__in=slugs) if slugs else []
        else:
            found += model._default_manager.order_by("-last_seq", "slug")[:limit]
    rows = [{"kind": s.kind, "slug": s.slug, "last_seq": s.last_seq} for s in found]
    return rows, found


# Live blog pages (issue 14: server-rendered entries, structured data) ------------


@dataclass(frozen=True)
class ShownEntry:
    entry: Any  # an Entry, live, with its author
    seq: int  # the seq of its latest ``entry`` event (0: pruned)


@dataclass(frozen=True)
class LivePage:
    """What a live blog page renders: its pinned entries, then the latest
    live entries, each newest first; and its key entries (the summary).

    ``last_seq`` was read before the entries, so a reader resuming after it
    misses nothing: a change committed meanwhile arrives live (an entry the
    page shows already replaces its article, by id)."""

    last_seq: int
    entries: list[ShownEntry]
    key_entries: list[ShownEntry]
    older: bool  # more live entries than shown: the widget offers "load older entries"


def _live_rows(blog: LiveBlog, last_seq: int) -> Any:
    from django.db.models import OuterRef, Subquery

    from .models import Entry

    published_seq = (
        blog.events.filter(type="entry", object_id=OuterRef("pk"), seq__lte=last_seq)
        .order_by("-seq")
        .values("seq")[:1]
    )
    return (
        Entry.objects.filter(blog=blog, status=Entry.STATUS.published)
        .select_related("author")
        .annotate(entry_seq=Subquery(published_seq))
        .order_by(F("entry_seq").desc(nulls_last=True), "-published_at", "-pk")
    )


def _shown(rows: Any) -> list[ShownEntry]:
    return [ShownEntry(entry, entry.entry_seq or 0) for entry in rows]


def live_entries(blog: LiveBlog, limit: int) -> LivePage:
    """``blog``'s live entries (published, not removed) as the widget shows
    them: up to ``limit`` pinned ones, then the latest ``limit`` others, each
    by the seq of their publication; and up to ``limit`` key entries."""
    limit = max(limit, 0)
    last_seq = current_seq(blog)
    rows = _live_rows(blog, last_seq)
    pinned = _shown(rows.filter(pinned=True)[:limit])
    others = _shown(rows.filter(pinned=False)[: limit + 1])
    keys = _shown(rows.filter(key=True)[:limit])
    return LivePage(last_seq, pinned + others[:limit], keys, older=len(others) > limit)


def due_entries(now: Any = None) -> list[int]:
    """The pks of scheduled entries whose ``publish_at`` has come, oldest first."""
    from .models import Entry

    now = now or timezone.now()
    rows = Entry.objects.filter(status=Entry.STATUS.scheduled, publish_at__lte=now)
    return list(rows.order_by("publish_at", "pk").values_list("pk", flat=True))


def publish_due(now: Any = None) -> list[Any]:
    """Publish every scheduled entry that is due; returns the entries published.

    One transaction per entry, its row locked (and skipped if another runner
    holds it), so overlapping runs (cron, ``--every``) publish each entry
    once. The save is the bridge's usual path: the ``entry`` event is
    recorded and broadcast now, at publication, never before.
    """
    from .models import Entry

    now = now or timezone.now()
    published = []
    using = router.db_for_write(Entry)
    for pk in due_entries(now):
        with transaction.atomic(using=using):
            entry = (
                Entry.objects.using(using)
                .select_for_update(skip_locked=True, of=("self",))
                .filter(pk=pk, status=Entry.STATUS.scheduled, publish_at__lte=now)
                .select_related("blog")
                .first()
            )
            if entry is None:
                continue  # published, changed or locked by another runner meanwhile
            entry.status = Entry.STATUS.published
            entry.save(using=using)
            published.append(entry)
    return published


def feed_entries(blog: LiveBlog, limit: int) -> list[Any]:
    """The latest ``limit`` live entries of ``blog`` by publication time, newest
    first (a feed is chronological: pinned entries are not put first)."""
    from .models import Entry

    rows = Entry.objects.filter(blog=blog, status=Entry.STATUS.published)
    rows = rows.select_related("author", "blog").order_by("-published_at", "-pk")
    return list(rows[: max(limit, 0)])
