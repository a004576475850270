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

The hand-over is the socket's: the response's own channel joins the stream's
group *before* the history is read, live frames wait in a queue meanwhile,
and those whose seq the history covered are dropped. Each response has its
own layer channel in the group (also with ``FANOUT = "process"``: the hub
writes to sockets, and SSE readers are the fallback, not the crowd). Every
layer call is bounded by ``LAYER_TIMEOUT``; when the layer fails the response
ends, and the browser reconnects with ``Last-Event-ID`` and misses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from channels.db import database_sync_to_async

from . import health, protocol, streams
from .broadcast import FRAME_EVENT, layer
from .conf import conf
from .fanout import private_channel_name
from .layerwatch import LayerFailed, bounded, cancellable, watch_for
from .policy import Opening, Refused, reader_now
from .revoke import RECHECK_EVENT

logger = logging.getLogger(__name__)

# Queued by the reader itself (never from the layer): stop, or the layer failed.
_STOP_EVENT = "liverooms.sse.stop"
_FAILED = {"type": "liverooms.sse.failed"}
# RedisChannelLayer forgets group members after ``group_expiry`` (a day by
# default); a long response re-adds its channel, as the fan-out hub does.
DEFAULT_REFRESH = 3600.0


def parse_resume(last_event_id: str | None, after: str | None) -> int | None:
    """The seq to resume after: ``Last-Event-ID`` wins over ``?after=``.

    ValueError if the one that counts is not a seq.
    """
    raw = last_event_id if last_event_id else after
    if raw is None or raw == "":
        return None
    return protocol.parse_uint(raw)


class Subscription:
    """One response's channel in the stream's group, read into a queue."""

    def __init__(self, stream: Any) -> None:
        self.layer = layer()
        self.stream = stream  # health's per-process census counts it
        self.group = stream.group_name
        self.channel: str | None = None
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.added = 0.0

    async def open(self) -> None:
        """Join the group (LayerFailed if the layer does not answer)."""
        if self.layer is None:
            raise LayerFailed("no channel layer is configured")
        self.channel = await bounded(private_channel_name(self.layer))
        await bounded(self.layer.group_add(self.group, self.channel))
        self.added = asyncio.get_running_loop().time()
        self.task = asyncio.ensure_future(self._read())
        if not await watch_for(self.layer).add(self):
            raise LayerFailed("the channel layer's Redis is down")

    async def _read(self) -> None:
        assert self.channel is not None
        try:
            while True:
                event = await cancellable(self.layer.receive(self.channel))
                if event.get("type") == _STOP_EVENT:
                    return
                self.queue.put_nowait(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("liverooms: SSE channel-layer read failed: %r", exc)
            self.queue.put_nowait(_FAILED)

    async def layer_failed(self) -> None:
        """Called by the layer watch (layerwatch.py): Redis went away or restarted."""
        self.queue.put_nowait(_FAILED)

    async def refresh(self) -> None:
        """Re-add the channel before the layer's group expiry forgets it."""
        expiry = getattr(self.layer, "group_expiry", None)
        interval = min(DEFAULT_REFRESH, expiry / 2) if expiry else DEFAULT_REFRESH
        now = asyncio.get_running_loop().time()
        if now - self.added >= interval:
            await bounded(self.layer.group_add(self.group, self.channel))
            self.added = now

    async def close(self) -> None:
        if self.layer is None or self.channel is None:
            return
        watch_for(self.layer).discard(self)
        try:
            await bounded(self.layer.group_discard(self.group, self.channel))
        except LayerFailed:
            pass  # the membership expires with the group
        task = self.task
        if task is None or task.done():
            return
        if hasattr(self.layer, "receive_buffer"):
            # RedisChannelLayer: a cancel landing in its BZPOPMIN can be
            # swallowed (see fanout.private_channel_name); ask the read to end.
            try:
                await bounded(self.layer.send(self.channel, {"type": _STOP_EVENT}))
            except LayerFailed:
                pass
            else:
                await asyncio.wait({task}, timeout=conf.LAYER_TIMEOUT)
        if not task.done():
            # The in-memory and pub/sub layers clean up a cancelled receive.
            task.cancel()


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
    subscription = Subscription(stream)
    getter: asyncio.Future[dict[str, Any]] | None = None
    try:
        try:
            await subscription.open()
        except LayerFailed as exc:
            logger.warning("liverooms: SSE could not join %s: %s", stream.group_name, exc)
            return  # the browser reconnects after ``retry``
        health.census().add(subscription)
        through = 0  # live frames at or below it were in the history
        async for chunk, covered in _history(kind, opening, after, bad_after):
            through = covered
            yield chunk
        while True:
            if getter is None:
                getter = asyncio.ensure_future(subscription.queue.get())
            done, _ = await asyncio.wait({getter}, timeout=conf.SSE_KEEPALIVE)
            if not done:
                try:
                    await subscription.refresh()
                except LayerFailed:
                    return
                yield protocol.SSE_KEEPALIVE
                continue
            pending, getter = [getter.result()], None
            while not subscription.queue.empty():  # one write for a burst
                pending.append(subscription.queue.get_nowait())
            out = []
            for event in pending:
                kind_of_event = event.get("type")
                if kind_of_event == FRAME_EVENT:
                    seq = event.get("seq")
                    if seq is None or seq > through:  # else: the history carried it
                        out.append(protocol.sse_event(event["text"], seq))
                elif kind_of_event == RECHECK_EVENT:
                    refusal = await _recheck(event, user, stream, scope, session)
                    if refusal is not None:
                        yield "".join(out) + refusal
                        return
                elif event is _FAILED:
                    if out:
                        yield "".join(out)
                    return
            if out:
                yield "".join(out)
    finally:
        if getter is not None:
            getter.cancel()
        health.census().discard(subscription)
        await subscription.close()


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
    welcome = protocol.welcome(
        kind,
        stream.slug,
        history.last_seq,
        opening.sender.info,
        opening.can_post,
        opening.can_moderate,
    )
    chunk = protocol.sse_event(protocol.encode(welcome))
    if bad_after is not None:
        detail = (
            f"Last-Event-ID or after must be a seq (a non-negative integer), not {bad_after!r}; "
            "sending the latest history instead."
        )
        chunk += protocol.sse_event(protocol.encode(protocol.error(protocol.BAD_FRAME, detail)))
    while True:
        if history.gone:
            detail = (
                f"Events after seq {after} are no longer kept (or never existed); "
                "reload: the history that follows is the latest, not a continuation."
            )
            chunk += protocol.sse_event(
                protocol.encode(protocol.error(protocol.HISTORY_GONE, detail))
            )
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
    try:
        await database_sync_to_async(reader_now)(user, stream, scope, session=session)
    except Refused as refused:
        return protocol.sse_event(
            protocol.encode(protocol.error(protocol.FORBIDDEN, refused.detail))
        )
    return None
