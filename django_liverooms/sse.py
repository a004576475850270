"""The live blog as Server-Sent Events (``GET <prefix>liveblog/<slug>/stream``).

For readers whose WebSockets fail: the same frames as the socket, one SSE
event each, with the seq as the event id so that a browser's EventSource
resumes with ``Last-Event-ID`` by itself. The format is in docs/protocol.md.

An async Django view rather than Channels' ``AsyncHttpConsumer``: Django's
``ASGIHandler`` cancels the response when the client sends
``http.disconnect``, runs the project's middleware (sessions, auth) as for
any view, and answers refusals with the history API's JSON errors. An
``AsyncHttpConsumer`` would need the project to route ``http`` through
Channels' URL router and would duplicate that.

The stream reads through the process's fan-out hub (fanout.py), as the
sockets do: a :class:`Reader` joins the stream's group *before* the history
is read, live frames are held meanwhile, and those whose seq the history
covered are dropped. A response costs a queue, not a channel-layer channel
(nor, on Redis, a connection of its own). When the layer fails the response
ends, and the browser reconnects with ``Last-Event-ID`` and misses nothing.

A reader that does not keep up is bounded like a socket (outbox.py): once
more than ``SEND_QUEUE_BYTES`` of frames wait for it, the response ends and
the browser resumes from its last event id.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator
from typing import Any

from channels.db import database_sync_to_async

from . import fanout, moderation, protocol, streams, subscription
from .broadcast import layer
from .conf import conf
from .layerwatch import LayerFailed
from .policy import Opening, Refused, reader_now
from .revoke import RECHECK_EVENT

logger = logging.getLogger(__name__)

# Queued for the response (never from the layer): the layer failed, or the
# reader fell too far behind; either way the response ends.
_FAILED = {"type": "liverooms.sse.failed"}
_TOO_SLOW = {"type": "liverooms.sse.too_slow"}


def parse_resume(last_event_id: str | None, after: str | None) -> int | None:
    """The seq to resume after: ``Last-Event-ID`` wins over ``?after=``.

    ValueError if the one that counts is not a seq.
    """
    raw = last_event_id if last_event_id else after
    if raw is None or raw == "":
        return None
    return protocol.parse_uint(raw)


class Reader:
    """One response's subscription to its stream (subscription.py, fanout.Member)."""

    process_local = True  # SSE always reads through the hub

    def __init__(self, stream: Any) -> None:
        self.channel_layer = layer()
        self.stream = stream
        self.channel_name = fanout.local_name()
        self.through = 0  # live frames at or below it were in the history
        self.events: collections.deque[dict[str, Any]] = collections.deque()
        self.size = 0  # characters of frames in ``events``
        self.arrived = asyncio.Event()

    def fanout_group(self) -> str:
        return self.stream.group_name

    def take(self, seq: int | None, skip: str | None, message: dict[str, Any]) -> None:
        if seq is None or seq > self.through:
            self._queue({"seq": seq, "text": message["text"]})

    def receive_routed(self, event: dict[str, Any]) -> None:
        self._queue(event)  # a recheck (revoke.py)

    async def layer_failed(self) -> None:
        """Called by the hub or the layer watch: Redis went away or restarted."""
        self._queue(_FAILED)

    def _queue(self, event: dict[str, Any]) -> None:
        if self.size > conf.SEND_QUEUE_BYTES:
            return  # ending: _TOO_SLOW is queued
        self.events.append(event)
        self.size += len(event.get("text", ""))
        if self.size > conf.SEND_QUEUE_BYTES:
            self.events.append(_TOO_SLOW)
        self.arrived.set()

    def drain(self) -> list[dict[str, Any]]:
        events, self.events, self.size = list(self.events), collections.deque(), 0
        self.arrived.clear()
        return events


async def event_stream(
    kind: str,
    opening: Opening,
    user: Any,
    scope: dict[str, Any] | None,
    session: Any,
    after: int | None,
    bad_after: str | None = None,
) -> AsyncIterator[str]:
    """The response body: ``retry``, ``welcome``, the history, then live frames.

    ``user``, the policy's ``scope`` and ``session`` are the request's, for
    re-checks (revoke.py).
    """
    yield protocol.sse_retry(conf.SSE_RETRY)
    stream = opening.stream
    reader = Reader(stream)
    try:
        try:
            await subscription.attach(reader)
        except LayerFailed as exc:
            logger.warning("liverooms: SSE could not join %s: %s", stream.group_name, exc)
            return  # the browser reconnects after ``retry``
        through = 0
        async for chunk, covered in _history(kind, opening, after, bad_after):
            through = covered
            yield chunk
        await subscription.ready(reader, through)
        while True:
            # Not wait_for, which can swallow the response's cancel before 3.12.
            arrived = asyncio.ensure_future(reader.arrived.wait())
            try:
                done, _ = await asyncio.wait({arrived}, timeout=conf.SSE_KEEPALIVE)
            finally:
                arrived.cancel()
            if not done:
                yield protocol.SSE_KEEPALIVE
                continue
            out = []  # one write for a burst
            for event in reader.drain():
                if "text" in event:
                    out.append(protocol.sse_event(event["text"], event["seq"]))
                elif event.get("type") == RECHECK_EVENT:
                    refusal = await _recheck(event, user, stream, scope, session)
                    if refusal is not None:
                        yield "".join(out) + refusal
                        return
                else:  # _FAILED or _TOO_SLOW
                    if out:
                        yield "".join(out)
                    return
            if out:
                yield "".join(out)
    finally:
        await subscription.detach(reader)


async def _history(
    kind: str, opening: Opening, after: int | None, bad_after: str | None
) -> AsyncIterator[tuple[str, int]]:
    """``welcome`` and the stored events, a page at a time, each with the seq
    the history covers so far.

    Resuming, every event after ``after`` is sent, in pages of
    ``HISTORY_LIMIT``, so that a reader never gets a gap; a fresh reader gets
    the latest ``HISTORY_LIMIT``.
    """
    stream = opening.stream
    read = database_sync_to_async(streams.read_history)
    limit = conf.HISTORY_LIMIT if after is None else max(conf.HISTORY_LIMIT, 1)
    history = await read(stream, after=after, limit=limit)
    chunk = protocol.sse_event(protocol.encode(opening.welcome(kind, history.last_seq)))
    source = "Last-Event-ID or after"
    while True:
        for frame in protocol.resume_errors(after, bad_after, history.gone, source=source):
            chunk += protocol.sse_event(protocol.encode(frame))
        bad_after = None
        chunk += "".join(map(protocol.sse_event, history.items, history.seqs))
        yield chunk, history.through
        chunk = ""
        if after is None or history.gone or history.complete:
            return
        after = history.through
        history = await read(stream, after=after, limit=limit)


async def _recheck(
    event: dict[str, Any], user: Any, stream: Any, scope: dict[str, Any] | None, session: Any
) -> str | None:
    """Access may have been taken away (revoke.py): the closing error event, or None."""
    user_id = event.get("user_id")
    if user_id is not None and user_id != getattr(user, "pk", None):
        return None
    if event.get("kick") and user_id is not None:  # moderation.kick(): whatever the policy says
        return protocol.sse_event(
            protocol.encode(protocol.error(protocol.FORBIDDEN, moderation.kicked_detail()))
        )
    try:
        await database_sync_to_async(reader_now)(user, stream, scope, session=session)
    except Refused as refused:
        return protocol.sse_event(
            protocol.encode(protocol.error(protocol.FORBIDDEN, refused.detail))
        )
    return None
