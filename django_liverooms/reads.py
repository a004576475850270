"""Batched reads: connections that open together share their database hops.

After a deploy or a network blip thousands of readers reconnect at once,
most of them to the same few streams and from the same few seqs. A
connection's two reads (open the stream, read its history) join the event
loop's queue; what arrived while the previous batch was being read runs in
one database hop, and within it each stream is looked up once, each stream's
seq read once, and each distinct resume point read once, however many
connections share them. A lone connection waits for nothing: its batch
starts at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async

from . import runtime, streams
from .policy import Opening, open_stream


class Batch:
    """What the calls of one batch share, keyed by what they read."""

    def __init__(self) -> None:
        self.streams: dict[tuple[str, str], Any] = {}
        self.last_seqs: dict[tuple[type, int], int] = {}
        self.histories: dict[tuple[type, int, int | None, int], streams.History] = {}

    def stream(self, kind: str, slug: str) -> Any:
        key = (kind, slug)
        if key not in self.streams:
            self.streams[key] = streams.get_stream(kind, slug)
        return self.streams[key]

    def history(self, stream: Any, after: int | None, limit: int) -> streams.History:
        key = (type(stream), stream.pk)
        if key not in self.last_seqs:
            self.last_seqs[key] = streams.current_seq(stream)
        request = (*key, after, limit)
        if request not in self.histories:
            self.histories[request] = streams.read_history(
                stream, after=after, limit=limit, last_seq=self.last_seqs[key]
            )
        return self.histories[request]


Call = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]"]


class Reads:
    """One event loop's queue of reads (see the module docstring)."""

    def __init__(self) -> None:
        self.queue: list[Call] = []
        self.task: asyncio.Task[None] | None = None

    async def call(self, func: Callable[..., Any], *args: Any) -> Any:
        """``func(batch, *args)`` in the database thread, with the others queued."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.queue.append((func, args, done))
        if self.task is None:
            self.task = asyncio.ensure_future(self._run())
        return await done

    async def _run(self) -> None:
        try:
            while self.queue:
                calls, self.queue = self.queue, []
                try:
                    outcomes = await database_sync_to_async(run_batch)(calls)
                except BaseException as exc:  # the hop itself failed (or we were cancelled)
                    outcomes = [(False, exc)] * len(calls)
                for (_, _, done), (ok, value) in zip(calls, outcomes, strict=True):
                    if done.done():
                        continue  # its connection went away
                    if ok:
                        done.set_result(value)
                    else:
                        done.set_exception(value)
        finally:
            self.task = None


def run_batch(calls: list[Call]) -> list[tuple[bool, Any]]:
    """In the database thread: each call in turn, each failing on its own."""
    batch = Batch()
    outcomes: list[tuple[bool, Any]] = []
    for func, args, _ in calls:
        try:
            outcomes.append((True, func(batch, *args)))
        except Exception as exc:
            outcomes.append((False, exc))
    return outcomes


def _reads() -> Reads:
    here = runtime.current()
    if here.reads is None:
        here.reads = Reads()
    return here.reads


async def opening(
    kind: str, slug: str, user: Any, scope: Any, connection_id: str, *, moderation: bool
) -> Opening:
    """policy.open_stream() for a connecting socket, batched; raises Refused."""

    def call(batch: Batch) -> Opening:
        return open_stream(
            kind, slug, user, scope, connection_id, moderation=moderation, find=batch.stream
        )

    return await _reads().call(call)


async def history(stream: Any, *, after: int | None, limit: int) -> streams.History:
    """A joining reader's history (streams.read_history), batched."""
    return await _reads().call(Batch.history, stream, after, limit)
