"""Group commit: the chat messages of a process's sockets, stored in batches.

A socket's ``message`` frame does not get a database transaction of its own.
It joins the process's :class:`Writer` (one per event loop), which stores
what arrived while the previous batch was being written, plus up to
``WRITE_WINDOW`` seconds more, as one batch: one database hop, one
transaction, one seq allocation and one bulk insert per room, one broadcast
per room (streams.post_messages). Under load the batches grow by themselves;
when idle a message waits only ``WRITE_WINDOW``.

Per write, inside the batch's transaction, the connection's access is
checked again (the connection's ``check_can_post``: once per connection per
batch), so no write is accepted after a revocation has committed. Then the
room's slow mode and the policy's ``clean_message`` judge each message
(streams.post_messages): a refused one fails alone, with its ``error``.

Nothing changes for the client: the sender's acknowledgement is still its
own copy of the broadcast, sent after the commit. If the batch fails (a
``client_id`` stored by another process meanwhile, a database error), its
writes are stored one by one through ``store_message``, so one bad write
cannot fail the others.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from channels.db import database_sync_to_async
from django.db import DatabaseError, router, transaction

from . import broadcast, policy, protocol, runtime, streams
from .conf import conf

logger = logging.getLogger(__name__)


class Poster(Protocol):
    """What the writer needs from a chat consumer."""

    sender: streams.Sender
    stream: Any  # the Room it posts to
    user: Any  # the user it was opened with (checked again per batch)
    scope: dict[str, Any]

    def check_can_post(self, client_id: str | None, streams_now: dict[Any, Any]) -> Any: ...

    def store_message(self, command: protocol.SendMessage) -> Any: ...


@dataclass
class Write:
    poster: Poster
    command: protocol.SendMessage
    done: asyncio.Future[Stored] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(frozen=True)
class Stored:
    posted: streams.Posted
    broadcast: bool  # False: stored, but the broadcast failed (resume delivers it)


class Writer:
    """One event loop's queue of chat messages to store (see the module docstring)."""

    def __init__(self) -> None:
        self.queue: list[Write] = []
        self.task: asyncio.Task[None] | None = None

    async def post(self, poster: Poster, command: protocol.SendMessage) -> Stored:
        """Store ``command`` with the next batch; raises the write's ProtocolError
        (refused) or DatabaseError (failed)."""
        write = Write(poster, command)
        self.queue.append(write)
        if self.task is None:
            self.task = asyncio.ensure_future(self._run())
        return await write.done

    async def _run(self) -> None:
        try:
            while self.queue:
                if conf.WRITE_WINDOW:
                    await asyncio.sleep(conf.WRITE_WINDOW)
                size = conf.WRITE_BATCH
                batch, self.queue = self.queue[:size], self.queue[size:]
                await self._store(batch)
        finally:
            self.task = None
            if self.queue:  # cancelled with writes waiting: they must not hang
                for write in self.queue:
                    if not write.done.done():
                        write.done.set_exception(DatabaseError("the writer stopped"))
                self.queue = []

    async def _store(self, batch: list[Write]) -> None:
        try:
            outcomes, outbox = await database_sync_to_async(store_batch)(batch)
        except Exception as exc:
            logger.warning(
                "liverooms: a batch of %d failed (%r); storing one by one", len(batch), exc
            )
            # In turn: each is stored and broadcast before the next, so the
            # broadcasts leave in seq order (concurrent ones could overtake).
            for write in batch:
                await self._store_one(write)
            return
        sent = await broadcast.apublish(outbox)
        for write, outcome in zip(batch, outcomes, strict=True):
            if write.done.done():
                continue  # its sender went away
            if isinstance(outcome, BaseException):
                write.done.set_exception(outcome)
            else:
                write.done.set_result(Stored(outcome, sent))

    async def _store_one(self, write: Write) -> None:
        try:
            posted, outbox = await database_sync_to_async(write.poster.store_message)(write.command)
            sent = await broadcast.apublish(outbox)
        except Exception as exc:
            if not write.done.done():
                write.done.set_exception(exc)
            return
        if not write.done.done():
            write.done.set_result(Stored(posted, sent))


def store_batch(batch: list[Write]) -> tuple[list[Any], list[Any]]:
    """In the database thread: check each connection, store the allowed writes
    in one transaction. Each outcome is a Posted or the write's ProtocolError."""
    from .models import Message

    outcomes: list[Any] = [None] * len(batch)
    allowed: dict[int, Any] = {}  # id(poster) -> (its room, its Screen), or the ProtocolError
    rooms: dict[Any, Any] = {}  # each room read once per batch (policy.reader_now)
    new: list[streams.NewMessage] = []
    indexes: list[int] = []
    # The broadcasts are sent from the event loop once the transaction has
    # committed (an exception here rolls it back: nothing is sent).
    with transaction.atomic(using=router.db_for_write(Message)):
        # Every room of the batch read in one query (reader_now takes them from here).
        kinds = {type(write.poster.stream) for write in batch}
        for kind in kinds:
            pks = {write.poster.stream.pk for write in batch if type(write.poster.stream) is kind}
            for pk, stream in kind._default_manager.in_bulk(pks).items():
                rooms[(kind, pk)] = stream
        first_client_ids: dict[int, Any] = {}  # per connection: its first write's
        posters = {}
        for write in batch:
            first_client_ids.setdefault(id(write.poster), write.command.client_id)
            posters.setdefault(id(write.poster), write.poster)
        # Each connection's access checked again, the users, sessions,
        # memberships and mutes of all of them read together (and shared
        # with the policy's questions about the messages: policy.Screen).
        with policy.batch_checks([(p.user, p.scope, p.stream) for p in posters.values()]):
            for key, poster in posters.items():
                client_id = first_client_ids[key]
                try:
                    room = poster.check_can_post(client_id, rooms)
                except protocol.ProtocolError as refused:
                    allowed[key] = refused
                else:  # poster.user is the user as the database has it now
                    allowed[key] = (room, policy.Screen(poster.user, room, poster.scope))
            for index, write in enumerate(batch):
                verdict = allowed[id(write.poster)]
                if isinstance(verdict, protocol.ProtocolError):
                    outcomes[index] = protocol.ProtocolError(
                        verdict.code,
                        verdict.detail,
                        write.command.client_id,
                        close_code=verdict.close_code,
                    )
                    continue
                room, screen = verdict
                command = write.command
                sender = write.poster.sender
                new.append(
                    streams.NewMessage(
                        room,
                        sender,
                        command.body,
                        command.client_id,
                        screen,
                        attachments=command.attachments,
                        reply_to=command.reply_to,
                    )
                )
                indexes.append(index)
            posted, frames = streams.post_messages(new) if new else ([], {})
        for index, outcome in zip(indexes, posted, strict=True):
            outcomes[index] = outcome
    return outcomes, broadcast.batch_events(frames)


def writer() -> Writer:
    """This event loop's writer."""
    here = runtime.current()
    if here.writer is None:
        here.writer = Writer()
    return here.writer
