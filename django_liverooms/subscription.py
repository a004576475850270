"""A connection's live subscription to its stream: one path for WebSocket and SSE.

Both transports open the same way, through these three calls:

1. :func:`attach` joins the stream's live frames (held until step 2), puts
   the connection under the layer watch and counts it in the census. The
   group is joined *before* the history is read, so that an event committed
   meanwhile is in the history or held, never missed.
2. The transport sends ``welcome`` (:func:`protocol.opening_frames`) and the
   history, then calls :func:`ready` with the seq the history covered: held
   frames at or below it are dropped, the rest flow.
3. :func:`detach` undoes step 1, whatever part of it succeeded.

A member has ``channel_layer``, ``channel_name``, ``stream``, ``through`` and
``process_local`` (False: a socket of ``FANOUT = "consumer"``, subscribed on
its own channel), and takes frames as :class:`fanout.Member` says.
"""

from __future__ import annotations

from typing import Any

from . import fanout, health
from .layerwatch import LayerFailed, bounded, watch_for


async def attach(member: Any) -> None:
    """Subscribe ``member`` to its stream; LayerFailed if the layer does not answer."""
    if member.channel_layer is None:
        raise LayerFailed("no channel layer is configured")
    if member.process_local:
        await bounded(fanout.hub_for(member.channel_layer).join(member))
    else:
        await bounded(member.channel_layer.group_add(member.stream.group_name, member.channel_name))
    member.attached = True
    if not await watch_for(member.channel_layer).add(member):
        raise LayerFailed("the channel layer's Redis is down")
    health.census().add(member)


async def ready(member: Any, through: int) -> None:
    """The history up to ``through`` is sent: release the frames held since attach()."""
    member.through = through
    if member.process_local:
        await fanout.hub_for(member.channel_layer).ready(member)


async def detach(member: Any) -> None:
    """Leave the stream; a layer that does not answer lets the membership expire."""
    if not getattr(member, "attached", False):
        return
    member.attached = False
    health.census().discard(member)
    watch_for(member.channel_layer).discard(member)
    try:
        if member.process_local:
            await bounded(fanout.hub_for(member.channel_layer).leave(member))
        else:
            await bounded(
                member.channel_layer.group_discard(member.stream.group_name, member.channel_name)
            )
    except LayerFailed:
        pass  # the membership expires with the group (channels' group_expiry)
