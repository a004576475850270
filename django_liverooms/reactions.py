"""Reactions: live blog readers' (ephemeral) and chat messages' (stored).

Live blogs: ephemeral, throttled, coalesced.

A reader sends ``{"type": "reaction", "emoji": "👍", "entry": 42}`` (or
``"entry": null`` for the blog itself). Nothing is stored and nothing gets a
seq. Each server process adds up the reactions its sockets receive, per
stream, and broadcasts the sums at most once per ``REACTION_INTERVAL``
seconds as one ``reactions`` frame (``{"type": "reactions", "counts":
[{"entry": 42, "emoji": "👍", "count": 3}, ...]}``), like presence's
coalescing: a thousand readers tapping at once cost each stream one frame
per interval per process, never one per reaction. Readers add the counts up.

Bounds: ``REACTIONS`` is the allow-list of emoji (empty: reactions off);
``REACTION_RATE`` throttles each connection (the excess is dropped silently,
as typing is); at most ``MAX_TARGETS`` distinct (entry, emoji) pairs are
counted per stream per interval (entry ids are not looked up: a client
ignores counts for entries it does not show).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import Counter
from typing import Any

from channels.db import database_sync_to_async

from . import broadcast, protocol
from .conf import conf
from .ratelimit import Rate, TokenBucket

logger = logging.getLogger(__name__)

MAX_TARGETS = 200  # distinct (entry, emoji) pairs per stream per interval

# Each connection's reaction bucket, while the connection lives.
_buckets: weakref.WeakKeyDictionary[Any, TokenBucket | None] = weakref.WeakKeyDictionary()


def allowed() -> list[str]:
    return list(conf.REACTIONS or [])


def _take(consumer: Any) -> bool:
    """Whether this connection may react now (REACTION_RATE)."""
    if consumer not in _buckets:
        rate = Rate.parse(conf.REACTION_RATE)
        _buckets[consumer] = None if rate is None else TokenBucket.full(rate, time.monotonic())
    bucket = _buckets[consumer]
    return bucket is None or bucket.take(time.monotonic())


class Coalescer:
    """One event loop's pending reaction counts, flushed once per interval per stream."""

    def __init__(self) -> None:
        self.pending: dict[str, Counter[tuple[int | None, str]]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def add(self, group: str, entry: int | None, emoji: str) -> None:
        counts = self.pending.get(group)
        if counts is None:
            counts = self.pending[group] = Counter()
            task = asyncio.ensure_future(self._flush_later(group))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        target = (entry, emoji)
        if target in counts or len(counts) < MAX_TARGETS:
            counts[target] += 1

    async def _flush_later(self, group: str) -> None:
        await asyncio.sleep(max(float(conf.REACTION_INTERVAL), 0.0))
        counts = self.pending.pop(group, None)
        if not counts:
            return
        text = protocol.encode(protocol.reactions(_as_list(counts)))
        try:
            await broadcast.apublish([broadcast.Broadcast(group, None, text)])
        except Exception:  # ephemeral: a failed broadcast is a lost hint, not an error
            logger.exception("liverooms: reactions broadcast in %s failed", group)


def _as_list(counts: Counter[tuple[int | None, str]]) -> list[dict[str, Any]]:
    return [
        {"entry": entry, "emoji": emoji, "count": count}
        for (entry, emoji), count in sorted(
            counts.items(), key=lambda item: (item[0][0] or 0, item[0][1])
        )
    ]


_coalescers: weakref.WeakKeyDictionary[Any, Coalescer] = weakref.WeakKeyDictionary()


def coalescer() -> Coalescer:
    loop = asyncio.get_running_loop()
    current = _coalescers.get(loop)
    if current is None:
        current = _coalescers[loop] = Coalescer()
    return current


async def react(consumer: Any, command: protocol.React) -> None:
    """A reader's reaction (LiveBlogConsumer.handle): checked, throttled, counted."""
    emojis = allowed()
    if not emojis:
        raise protocol.ProtocolError(protocol.UNKNOWN_TYPE, "Reactions are off here.")
    if command.emoji not in emojis:
        raise protocol.ProtocolError(
            protocol.BAD_FRAME, f"emoji must be one of: {' '.join(emojis)}."
        )
    if not _take(consumer):
        return  # throttled (REACTION_RATE): a reaction is a hint, dropped silently
    coalescer().add(consumer.stream.group_name, command.entry, command.emoji)


# Reactions to chat messages (issue 16): stored (streams.react), one per user,
# emoji and message. Readers learn the counts from ``message.reactions``
# events, recorded by each event loop at most once per REACTION_INTERVAL per
# room for all the messages its sockets changed meanwhile, so a burst of taps
# on one message costs one event, not one per tap.


class Recorder:
    """One event loop's chat messages with changed reactions, by room."""

    def __init__(self) -> None:
        self.pending: dict[int, tuple[Any, set[int]]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def changed(self, room: Any, message_id: int) -> None:
        found = self.pending.get(room.pk)
        if found is None:
            found = self.pending[room.pk] = (room, set())
            task = asyncio.ensure_future(self._record_later(room.pk))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        found[1].add(message_id)  # bounded by the sockets' send rates

    async def _record_later(self, room_pk: int) -> None:
        await asyncio.sleep(max(float(conf.REACTION_INTERVAL), 0.0))
        room, message_ids = self.pending.pop(room_pk)
        ids = sorted(message_ids)
        for start in range(0, len(ids), MAX_TARGETS):
            try:
                outbox = await database_sync_to_async(_record)(
                    room, ids[start : start + MAX_TARGETS]
                )
            except Exception:  # stored already: the next change announces them
                logger.exception("liverooms: reactions in room %s were not recorded", room_pk)
                continue
            await broadcast.apublish(outbox)


def _record(room: Any, message_ids: list[int]) -> list[broadcast.Broadcast]:
    from . import streams

    with broadcast.collect() as outbox:
        streams.record_reactions(room, message_ids)
    return outbox


_recorders: weakref.WeakKeyDictionary[Any, Recorder] = weakref.WeakKeyDictionary()


def recorder() -> Recorder:
    loop = asyncio.get_running_loop()
    current = _recorders.get(loop)
    if current is None:
        current = _recorders[loop] = Recorder()
    return current
