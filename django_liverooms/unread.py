"""Read state of chat rooms (issue 16): read markers, mentions, unread counts.

A signed-in user's :class:`~.models.ReadMarker` holds the seq of the latest
event they have read in a room; it only moves forward, and never beyond the
room's seq. *Unread* are the room's ``message`` events after it that are
neither the user's own nor removed since, among the room's latest
``UNREAD_WINDOW`` events (older ones count as read, so a count costs at
most that many index entries per room; events pruned by retention are not
counted). *Mentions* are those of them that ``@name`` the user
(:class:`~.models.Mention` rows, stored with the message).

The service layer's share: synchronous, database thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import Any

from django.contrib.auth import get_user_model
from django.db import router
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from . import protocol
from .conf import conf
from .models import Mention, Message, ReadMarker, Room, RoomEvent, RoomMember

MAX_ROOMS = 100  # rooms per unread request (GET chat/unread?rooms=)


def read_seq(user: Any, room: Room) -> int:
    """The seq ``user`` has read ``room`` up to (0: nothing yet)."""
    return (
        ReadMarker.objects.filter(user=user, room=room).values_list("seq", flat=True).first() or 0
    )


def mark_read(user: Any, room: Room, seq: int) -> int:
    """Move ``user``'s marker in ``room`` forward to ``seq``, bounded by the
    room's seq; never back. Returns the marker as it is now.

    Two queries once the marker exists (the room's seq, one
    ``UPDATE ... WHERE seq < N``, which cannot move it back whatever runs
    meanwhile); the first time, a get_or_create more.
    """
    using = router.db_for_write(ReadMarker)
    last = Room._base_manager.using(using).filter(pk=room.pk).order_by()
    seq = min(seq, last.values_list("last_seq", flat=True).first() or 0)
    markers = ReadMarker.objects.using(using).filter(user=user, room=room)
    if seq <= 0:
        return markers.values_list("seq", flat=True).first() or 0
    if markers.filter(seq__lt=seq).update(seq=seq, modified=timezone.now()):
        return seq
    marker, created = ReadMarker.objects.using(using).get_or_create(
        user=user, room=room, defaults={"seq": seq}
    )
    if not created and marker.seq < seq:  # created by another socket meanwhile
        markers.filter(seq__lt=seq).update(seq=seq, modified=timezone.now())
    return max(marker.seq, seq)


def save_mentions(messages: list[tuple[int, str]], using: str, *, replace: bool = False) -> None:
    """Store who each (message id, body) ``@names``: the users whose username
    is named (protocol.mentions), read in one query for all the messages,
    inserted in one more; none when no body names anyone. ``replace``: an
    edit, whose earlier mentions go first."""
    named = {message_id: protocol.mentions(body) for message_id, body in messages}
    if replace:
        Mention.objects.using(using).filter(message_id__in=list(named)).delete()
    names = {name for names in named.values() for name in names}
    if not names:
        return
    user_model = get_user_model()
    field = user_model.USERNAME_FIELD
    users = dict(
        user_model._default_manager.filter(**{f"{field}__in": names}).values_list(field, "pk")
    )
    rows = {(m, users[name]) for m, names in named.items() for name in names if name in users}
    Mention.objects.using(using).bulk_create(
        [Mention(message_id=m, user_id=user) for m, user in sorted(rows)]
    )


@dataclass(frozen=True)
class Unread:
    unread: int  # messages after the marker, not the user's own (see the module docstring)
    mentions: int  # of which name the user
    last_seq: int  # the room's seq
    read_seq: int  # the user's marker


def user_rooms(user: Any, slugs: list[str] | None = None) -> list[Room]:
    """The rooms ``slugs`` names, or else those ``user`` has a read marker in
    or is a member of; at most ``MAX_ROOMS``, by slug. Not yet filtered by
    the read policy (:func:`readable`)."""
    rooms = Room._default_manager.all()
    if slugs is not None:
        rooms = rooms.filter(slug__in=slugs)
    else:
        rooms = rooms.filter(
            Q(pk__in=ReadMarker.objects.filter(user=user).values("room"))
            | Q(pk__in=RoomMember.objects.filter(user=user).values("room"))
        )
    return list(rooms.order_by("slug")[:MAX_ROOMS])


def readable(
    user: Any, rooms: Iterable[Room], scope: Callable[[Room], Any] = lambda room: None
) -> list[Room]:
    """The ``rooms`` the policy lets ``user`` read (``scope(room)``: the
    policy's scope for it); the default policy's memberships of private
    rooms read in one query for all of them."""
    from .policy import batch_checks, forget_ban, get_policy  # policy.py imports this module

    rooms = list(rooms)
    policy = get_policy()
    forget_ban(user)  # the user's ban (moderation.py): read once, now
    with batch_checks([(user, scope(room), room) for room in rooms if room.private]):
        return [room for room in rooms if policy.can_read(user, room, scope(room))]


def unread(user: Any, rooms: Iterable[Room]) -> dict[str, Unread]:
    """Each room's :class:`Unread` for ``user``, by slug, in two queries
    whatever the number of rooms (the markers; the counts of the rooms with
    anything after them). The caller has checked the read policy
    (:func:`readable`); guests get ``{}``."""
    rooms = list(rooms)
    if not rooms or not user.is_authenticated:
        return {}
    read = dict(ReadMarker.objects.filter(user=user, room__in=rooms).values_list("room", "seq"))
    since = {
        room.pk: max(read.get(room.pk, 0), room.last_seq - conf.UNREAD_WINDOW) for room in rooms
    }
    behind = [room for room in rooms if since[room.pk] < room.last_seq]
    counts: dict[int, tuple[int, int]] = {}
    if behind:
        after = reduce(
            or_,
            (Q(stream=r.pk, seq__gt=since[r.pk], seq__lte=r.last_seq) for r in behind),
        )
        not_for_me = Message.all_objects.filter(pk=OuterRef("object_id")).filter(
            Q(author=user) | Q(is_removed=True)
        )
        named_me = Mention.objects.filter(message=OuterRef("object_id"), user=user)
        rows = (
            RoomEvent.objects.filter(after, type="message")
            .filter(~Exists(not_for_me))
            .values("stream")
            .annotate(unread=Count("pk"), mentions=Count("pk", filter=Q(Exists(named_me))))
            .order_by()
        )
        counts = {row["stream"]: (row["unread"], row["mentions"]) for row in rows}
    return {
        room.slug: Unread(
            *counts.get(room.pk, (0, 0)), last_seq=room.last_seq, read_seq=read.get(room.pk, 0)
        )
        for room in rooms
    }


def unread_counts(user: Any, rooms: Iterable[Room] | None = None) -> dict[str, int]:
    """``{slug: unread messages}`` of the ``rooms`` (default: those ``user``
    has a read marker in or is a member of, at most ``MAX_ROOMS``) that the
    policy lets ``user`` read; a bounded number of queries for any number."""
    if not user.is_authenticated:
        return {}
    found = user_rooms(user) if rooms is None else rooms
    return {slug: state.unread for slug, state in unread(user, readable(user, found)).items()}


@dataclass(frozen=True)
class Listed:
    """A room of :func:`directory`."""

    room: Room
    title: str  # a direct room's: the other member's name
    unread: int  # 0 for guests
    mentions: int


def directory(user: Any, limit: int = MAX_ROOMS) -> list[Listed]:
    """The chat rooms ``user`` may read: public ones, and the private and
    direct ones they are a member of; direct rooms first, then by title; at
    most ``limit``. A fixed number of queries for any number of rooms."""
    from .models import display_name

    rooms = Room._default_manager.filter(private=False)
    if user.is_authenticated:
        rooms = rooms | Room._default_manager.filter(memberships__user=user)
    found = readable(user, rooms.distinct().order_by("-direct", "title", "slug")[:limit])
    states = unread(user, found)
    direct = [room.pk for room in found if room.direct]
    others: dict[int, str] = {}
    if direct and user.is_authenticated:
        members = RoomMember.objects.filter(room__in=direct).exclude(user=user)
        for member in members.select_related("user"):
            others[member.room_id] = display_name(member.user)
    none = Unread(0, 0, 0, 0)
    return [
        Listed(
            room,
            others.get(room.pk, room.title),
            states.get(room.slug, none).unread,
            states.get(room.slug, none).mentions,
        )
        for room in found
    ]
