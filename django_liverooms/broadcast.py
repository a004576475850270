"""Group names and the one place that talks to the channel layer.

A broadcast carries the stream's seq and the frame already encoded as JSON
text, so each consumer forwards the same string with no per-recipient work.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from .conf import conf
from .layerwatch import LayerFailed, bounded

logger = logging.getLogger(__name__)

# The channel-layer event type of a stream frame; set only by our code.
FRAME_EVENT = "liverooms.frame"
# Several stream frames of one group at once (a batch of group commit):
# ``frames`` is a list of [seq, text] in seq order.
FRAMES_EVENT = "liverooms.frames"
# A frame for one connection only, forwarded without the seq check.
REPLY_EVENT = "liverooms.reply"
# Under process fan-out, a batch of group commit goes as one channel-layer
# message to every process's hub (the group below), whatever the number of
# rooms it touches: ``groups`` is a list of [group, [[seq, text], ...]].
# Each hub delivers the rooms it has sockets in and ignores the others.
BATCH_EVENT = "liverooms.batch"
BATCH_GROUP = "liverooms.batches"
# A batch event carries at most about this much frame text; a bigger batch
# is split (between rooms, never inside one room's frames).
BATCH_EVENT_BYTES = 256 * 1024


def group_name(kind: str, stream_id: int) -> str:
    return f"liverooms.{kind}.{stream_id}"


@dataclass(frozen=True)
class Broadcast:
    group: str
    seq: int | None  # None for frames that are not stream events (typing)
    text: str
    skip: str | None = None  # a channel not to deliver to: the sender's

    def event(self) -> dict[str, Any]:
        # ``group`` tells a process's fan-out hub (fanout.py) whose sockets it is for.
        event = {"type": FRAME_EVENT, "group": self.group, "seq": self.seq, "text": self.text}
        if self.skip is not None:
            event["skip"] = self.skip
        return event


def layer() -> Any:
    return get_channel_layer(conf.CHANNEL_LAYER)


# Code that runs inside database_sync_to_async (a consumer's write) collects
# its broadcasts and sends them from the event loop afterwards, instead of
# blocking the shared database thread on the channel layer.
_outbox: contextvars.ContextVar[list[Broadcast] | None] = contextvars.ContextVar(
    "liverooms_outbox", default=None
)


@contextmanager
def collect() -> Iterator[list[Broadcast]]:
    """Hold the broadcasts published inside the block; the caller sends them."""
    box: list[Broadcast] = []
    token = _outbox.set(box)
    try:
        yield box
    finally:
        _outbox.reset(token)


def publish(broadcast: Broadcast) -> None:
    """Send a committed event to its group, from synchronous code."""
    box = _outbox.get()
    if box is not None:
        box.append(broadcast)
        return
    async_to_sync(apublish)([broadcast])


def batch_events(frames_by_group: dict[str, list[tuple[int, str]]]) -> list[Batch]:
    """The channel-layer messages of a group-commit batch's frames.

    Under process fan-out: one message per ``BATCH_EVENT_BYTES`` of frames,
    to every hub, instead of one per room (each costs Redis round trips and a
    receive in every process in the room). Under consumer fan-out the
    sockets are the group members: one message per group.
    """
    if conf.FANOUT != "process":
        return [
            Batch(
                group, {"type": FRAMES_EVENT, "group": group, "frames": [list(f) for f in frames]}
            )
            for group, frames in frames_by_group.items()
        ]
    batches: list[Batch] = []
    groups: list[list[Any]] = []
    size = 0
    for group, frames in frames_by_group.items():
        if groups and size >= BATCH_EVENT_BYTES:
            batches.append(Batch(BATCH_GROUP, {"type": BATCH_EVENT, "groups": groups}))
            groups, size = [], 0
        groups.append([group, [list(f) for f in frames]])
        size += sum(len(text) for _, text in frames)
    if groups:
        batches.append(Batch(BATCH_GROUP, {"type": BATCH_EVENT, "groups": groups}))
    return batches


@dataclass(frozen=True)
class Batch:
    """A ready channel-layer event for ``group`` (batch_events)."""

    group: str
    payload: dict[str, Any]

    def event(self) -> dict[str, Any]:
        return self.payload


async def apublish(broadcasts: list[Broadcast] | list[Broadcast | Batch]) -> bool:
    """Send committed events to their groups; False if any send failed.

    The events are stored already, so a failure here loses nothing a
    reconnecting reader cannot replay: it is logged, not raised. Each send is
    bounded by ``LAYER_TIMEOUT``, so a stalled Redis cannot hang the caller.
    """
    channel_layer = layer()
    if channel_layer is None:
        return True
    sent = True
    for broadcast in broadcasts:
        try:
            await bounded(channel_layer.group_send(broadcast.group, broadcast.event()))
        except LayerFailed as exc:
            logger.warning("liverooms: broadcast to %s failed: %s", broadcast.group, exc)
            sent = False
    return sent


async def areply(
    request: dict[str, Any], text: str | None = None, event_type: str = REPLY_EVENT, **fields: Any
) -> None:
    """Send one event to the connection that sent ``request`` (a worker's reply).

    By default the event is a frame (``text``) the socket sends unconditionally.
    """
    channel_layer = layer()
    if channel_layer is None:
        return
    event = {"type": event_type, **fields}
    if text is not None:
        event["text"] = text
    if request.get("reply_to"):
        event["to"] = request["reply_to"]  # the hub of the socket's process hands it on
    await channel_layer.send(request["reply_channel"], event)
