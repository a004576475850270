"""Worker persistence: chat messages stored by ``manage.py runworker``.

With ``LIVEROOMS["PERSISTENCE"] = "worker"`` a chat consumer hands each
message to the ``LIVEROOMS["PERSIST_CHANNEL"]`` channel instead of storing it
itself. :class:`PersistWorker` serves that channel: it stores the message and
broadcasts it, exactly as the inline mode does. The sender's acknowledgement
is the broadcast ``message`` frame.

Trade-off: the socket's event loop never waits for the database, but a
message is only as safe as the channel layer until a worker stores it (see
docs/worker-mode.md).
"""

from __future__ import annotations

import logging
from typing import Any

from channels.consumer import AsyncConsumer
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model

from . import broadcast, protocol, streams
from .conf import conf
from .models import Room

logger = logging.getLogger(__name__)


# The channel-layer event type; set by our code, never from a client field.
PERSIST_EVENT = "liverooms.persist"


def persist_event(
    room: Room, sender: streams.Sender, command: protocol.SendMessage, reply_channel: str
) -> dict[str, Any]:
    """What a chat consumer sends to the persist channel."""
    return {
        "type": PERSIST_EVENT,
        "room": room.pk,
        "user": sender.user.pk if sender.user is not None else None,
        "name": sender.name,
        "key": sender.key,
        "body": command.body,
        "client_id": command.client_id,
        "reply_channel": reply_channel,
    }


def store(event: dict[str, Any]) -> tuple[streams.Posted, list[broadcast.Broadcast]]:
    room = Room._default_manager.get(pk=event["room"])
    user = None
    if event["user"] is not None:
        user = get_user_model()._default_manager.filter(pk=event["user"]).first()
    sender = streams.Sender(user=user, name=event["name"], key=event["key"])
    with broadcast.collect() as outbox:
        posted = streams.post_message(room, sender, event["body"], event["client_id"])
    return posted, outbox


class PersistWorker(AsyncConsumer):
    """Serves the persist channel; mount it with :func:`routing.worker_routes`."""

    @property  # type: ignore[override]
    def channel_layer_alias(self) -> str:
        return conf.CHANNEL_LAYER

    async def liverooms_persist(self, event: dict[str, Any]) -> None:
        reply_channel = event["reply_channel"]
        try:
            posted, outbox = await database_sync_to_async(store)(event)
        except Exception as exc:
            logger.exception("liverooms: worker could not store a message")
            error = protocol.error(
                protocol.UNAVAILABLE,
                f"The message could not be stored ({type(exc).__name__}); send it again.",
                event.get("client_id"),
            )
            await broadcast.areply(reply_channel, protocol.encode(error))
            return
        await broadcast.apublish(outbox)
        if posted.duplicate and posted.frame is not None:
            await broadcast.areply(reply_channel, posted.frame)
