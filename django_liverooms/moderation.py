"""Site-wide moderation (issue 16): flags, bans and kicks.

- **Flags**: a signed-in reader reports a chat message (the ``flag`` frame,
  :func:`flag`). Moderators review them in the admin's queue
  (``admin.FlagAdmin``): :func:`delete_flagged` removes the messages the
  usual way (a soft delete: readers get ``message.deleted`` and the stored
  frames are redacted) and resolves their flags; :func:`dismiss` dismisses.
- **Bans**: a :class:`~.models.Ban` keeps its user out of every chat room
  (``policy.DefaultPolicy.can_read``; live blogs stay readable). Saving an
  active one closes the user's open chat sockets in every server process,
  after the commit: one re-check event to every process's fan-out hub
  (``revoke.recheck_user``), which each of the user's sockets answers by
  re-checking its access (4403, with :func:`ban_detail`).
- **Kicks**: :func:`kick` closes a user's sockets and SSE streams in every
  process (4403, :func:`kicked_detail`) whatever the policy says; they may
  reconnect at once. ``manage.py liverooms_kick <username>`` calls it.

Under ``FANOUT = "consumer"`` sockets are not members of a hub, so the event
reaches only SSE streams: a banned reader's socket is refused at its next
write (and reconnect), and a kick does not close sockets.
"""

from __future__ import annotations

from typing import Any

from django.db import router, transaction
from django.db.models import F
from django.db.models.signals import post_save
from django.utils import timezone
from django.utils.translation import gettext

from . import revoke
from .models import Ban, Flag, Message, Room
from .streams import NotAllowed, NotFound

# Flags ----------------------------------------------------------------------


def flag(room: Room, message_id: int, reporter: Any, reason: str = "") -> Flag:
    """``reporter``'s flag of message ``message_id`` of ``room``, stored once:
    flagging it again returns the first flag, unchanged.

    NotFound: no such message in the room (or it was removed); NotAllowed:
    the reporter wrote it.
    """
    message = (
        Message.objects.filter(room=room, pk=message_id, is_removed=False)
        .only("pk", "author_id")
        .first()
    )
    if message is None:
        raise NotFound(message_id)
    if message.author_id is not None and message.author_id == reporter.pk:
        raise NotAllowed(message_id)
    found, _ = Flag.objects.get_or_create(
        message=message, reporter=reporter, defaults={"reason": reason}
    )
    return found


def delete_flagged(flags: Any) -> int:
    """Soft-delete the messages of ``flags`` (a Flag queryset) one save at a
    time, as the socket's ``message.delete`` does (readers get
    ``message.deleted``, the stored frames are redacted), and resolve every
    open flag of those messages. Returns how many messages were deleted."""
    message_ids = set(flags.values_list("message_id", flat=True))
    using = router.db_for_write(Message)
    with transaction.atomic(using=using):
        deleted = 0
        for message in Message.objects.using(using).filter(pk__in=message_ids, is_removed=False):
            message.delete()
            deleted += 1
        _set_status(Flag.objects.filter(message__in=message_ids), Flag.STATUS.resolved)
    return deleted


def dismiss(flags: Any) -> int:
    """Dismiss the open ones of ``flags``; returns how many."""
    return _set_status(flags, Flag.STATUS.dismissed)


def _set_status(flags: Any, status: str) -> int:
    # An UPDATE, so StatusModel's status_changed is set here.
    return flags.filter(status=Flag.STATUS.open).update(
        status=status, status_changed=timezone.now()
    )


# Bans and kicks --------------------------------------------------------------


def ban(user: Any, *, until: Any = None, reason: str = "", by: Any = None) -> Ban:
    """Ban ``user`` from every chat room until ``until`` (None: until the ban
    is deleted). Their open chat sockets close after the commit."""
    return Ban.objects.create(user=user, until=until, reason=reason, created_by=by)


def active_ban(user: Any) -> Ban | None:
    """``user``'s ban now (the one that ends last), or None. One query."""
    return (
        Ban.objects.active()
        .filter(user_id=user.pk)
        .order_by(F("until").desc(nulls_first=True))
        .first()
    )


def active_bans(user_ids: set[Any]) -> dict[Any, Ban]:
    """The bans now of these users (each the one that ends last), in one query."""
    bans: dict[Any, Ban] = {}
    for found in (
        Ban.objects.active().filter(user_id__in=user_ids).order_by(F("until").asc(nulls_last=True))
    ):
        bans[found.user_id] = found  # a later end (or none) wins
    return bans


def ban_detail(found: Ban) -> str:
    """The ``forbidden`` detail a banned user gets."""
    if found.until is None:
        detail = gettext("You are banned from the chat rooms.")
    else:
        until = timezone.localtime(found.until).strftime("%Y-%m-%d %H:%M %Z")
        detail = gettext("You are banned from the chat rooms until %(until)s.") % {"until": until}
    if found.reason:
        detail += " " + gettext("Reason: %(reason)s") % {"reason": found.reason}
    return detail


def kick(user: Any) -> None:
    """Close ``user``'s open sockets and SSE streams in every server process,
    whatever the policy says (``error`` ``forbidden``, then 4403); they may
    reconnect. Synchronous code (a view, the admin, a command)."""
    revoke.recheck_user(user.pk, kick=True)


def kicked_detail() -> str:
    return gettext("You were disconnected by a moderator.")


def _ban_saved(sender: Any, instance: Ban, raw: bool = False, **kwargs: Any) -> None:
    if raw or not instance.is_active:
        return
    transaction.on_commit(
        lambda: revoke.recheck_user(instance.user_id),
        using=router.db_for_write(sender),
        robust=True,
    )


def connect_signals() -> None:
    """Called from revoke.connect_signals() (AppConfig.ready())."""
    post_save.connect(_ban_saved, sender=Ban, dispatch_uid="liverooms.moderation.ban")
