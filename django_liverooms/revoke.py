"""Tell open sockets to check their access again when it may have been taken away.

Every write re-checks the policy anyway; these events also close a *reader*
who lost access: a member removed from a private room, or everyone who is
not a member when a room becomes private. Each consumer in the room's group
re-checks in one database hop, so the event costs one query batch per
socket, and only when membership changes.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from django.db import router, transaction
from django.db.models.signals import post_delete, post_save, pre_save

from .broadcast import BATCH_GROUP, layer

logger = logging.getLogger(__name__)

# The channel-layer event type; set only by our code, never from a client field.
RECHECK_EVENT = "liverooms.recheck"


def recheck(group: str, user_id: int | None = None) -> None:
    """Ask the sockets of ``group`` (only ``user_id``'s, if given) to re-check."""
    channel_layer = layer()
    if channel_layer is None:
        return
    try:
        async_to_sync(channel_layer.group_send)(
            group, {"type": RECHECK_EVENT, "group": group, "user_id": user_id}
        )
    except Exception:
        logger.exception("liverooms: recheck of %s failed", group)


def recheck_user(user_id: Any, *, kick: bool = False) -> None:
    """Ask ``user_id``'s sockets and SSE streams in every server process to
    re-check (``kick``: to close, whatever the policy says).

    One event to ``BATCH_GROUP``, the group every process's fan-out hub is
    in; each hub hands it to all its members (fanout.Hub.forward), and the
    members of other users drop it without a query. Sockets of ``FANOUT =
    "consumer"`` have no hub and do not get it (moderation.py).
    """
    channel_layer = layer()
    if channel_layer is None:
        return
    event = {"type": RECHECK_EVENT, "group": BATCH_GROUP, "user_id": user_id}
    if kick:
        event["kick"] = True
    try:
        async_to_sync(channel_layer.group_send)(BATCH_GROUP, event)
    except Exception:
        logger.exception("liverooms: recheck of user %s failed", user_id)


def _on_commit(model: Any, func: Any) -> None:
    transaction.on_commit(func, using=router.db_for_write(model), robust=True)


def _membership_deleted(sender: Any, instance: Any, origin: Any = None, **kwargs: Any) -> None:
    from .models import Room

    if isinstance(origin, Room):
        return  # the room itself is going
    _on_commit(sender, partial(recheck, instance.room.group_name, instance.user_id))


def _room_saving(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if raw or instance._state.adding:
        return
    was_private = sender._base_manager.filter(pk=instance.pk, private=True).exists()
    instance._liverooms_became_private = instance.private and not was_private


def _room_saved(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if raw or not getattr(instance, "_liverooms_became_private", False):
        return
    instance._liverooms_became_private = False
    _on_commit(sender, partial(recheck, instance.group_name, None))


def _user_saved(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    # A deactivated user's sockets in private rooms are closed; elsewhere
    # their next write is refused (the policy reloads the user). A password
    # set with set_password() (AbstractBaseUser keeps the raw one in
    # ``_password`` until save() returns) makes their sessions' auth hash
    # stale: the same re-check, and this process sweeps its sessions at once.
    if raw:
        return
    password_changed = getattr(instance, "_password", None) is not None
    if getattr(instance, "is_active", True) and not password_changed:
        return
    from . import sessions
    from .models import RoomMember

    if password_changed:
        _on_commit(sender, sessions.sweep_soon)

    groups = [
        m.room.group_name
        for m in RoomMember.objects.filter(user_id=instance.pk).select_related("room")
    ]
    for group in groups:
        _on_commit(sender, partial(recheck, group, instance.pk))


def connect_signals() -> None:
    """Called from AppConfig.ready()."""
    from django.contrib.auth import get_user_model

    from . import moderation, sessions
    from .models import Room, RoomMember

    post_delete.connect(
        _membership_deleted, sender=RoomMember, dispatch_uid="liverooms.revoke.member"
    )
    pre_save.connect(_room_saving, sender=Room, dispatch_uid="liverooms.revoke.room.pre")
    post_save.connect(_room_saved, sender=Room, dispatch_uid="liverooms.revoke.room.post")
    post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="liverooms.revoke.user")
    sessions.connect_signals()
    moderation.connect_signals()
