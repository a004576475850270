"""Streams (chat rooms, live blogs), what is posted in them, and their events.

Every change readers see is an *event*: one row of the stream's event table
holding the frame exactly as it was broadcast, numbered by the stream's
``seq``. History and resume read that table, so what was broadcast and what
can be replayed are the same rows.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models, router, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from model_utils import Choices, FieldTracker
from model_utils.managers import SoftDeletableManager, SoftDeletableQuerySet
from model_utils.models import SoftDeletableModel, StatusModel, TimeStampedModel

from . import protocol
from .broadcast import group_name
from .embeds import EMBED_FRAME_FIELDS, embed_for, validate_image
from .sanitizer import clean_html

SLUG_PATTERN = r"^[a-z0-9_-]{1,64}$"  # protocol.SLUG_RE, anchored for the database too

slug_validator = RegexValidator(
    SLUG_PATTERN,
    _("Use 1 to 64 lowercase letters, digits, hyphens or underscores."),
)


class Stream(TimeStampedModel):
    """A sequence of events with its own ``seq``: a chat room or a live blog."""

    kind: ClassVar[str]

    slug = models.CharField(_("slug"), max_length=64, unique=True, validators=[slug_validator])
    title = models.CharField(_("title"), max_length=200)
    last_seq = models.PositiveBigIntegerField(
        _("last seq"),
        default=0,
        editable=False,
        help_text=_("The seq of the stream's latest event."),
    )

    class Meta:
        abstract = True
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title or self.slug

    def save(self, *args: Any, **kwargs: Any) -> None:
        # last_seq is only ever advanced by streams.record_event(); a save of
        # a stale instance (an admin form, say) must not move it back.
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name != "last_seq"
            ]
        super().save(*args, **kwargs)

    @property
    def group_name(self) -> str:
        return group_name(self.kind, self.pk)


def _slug_constraint(name: str) -> models.CheckConstraint:
    # Code that skips full_clean() still cannot store a slug no URL reaches.
    return models.CheckConstraint(condition=models.Q(slug__regex=SLUG_PATTERN), name=name)


class RoomQuerySet(models.QuerySet):
    def direct(self, a: Any, b: Any) -> Room:
        """The direct-message room of users ``a`` and ``b``: private, the two
        of them its members; created on the first call, found again after
        (in either order, from any process), never duplicated."""
        if a.pk is None or b.pk is None or a.pk == b.pk:
            raise ValueError("A direct room needs two different saved users.")
        slug = direct_slug(a.pk, b.pk)
        with transaction.atomic(using=self.db):
            room, created = self.get_or_create(
                slug=slug,
                defaults={
                    "title": protocol.shown_name(f"{display_name(a)}, {display_name(b)}", 200),
                    "private": True,
                    "direct": True,
                },
            )
            if created:
                RoomMember.objects.using(self.db).bulk_create(
                    [RoomMember(room=room, user=a), RoomMember(room=room, user=b)]
                )
        return room


def direct_slug(a_pk: Any, b_pk: Any) -> str:
    """``dm-<pk>-<pk>`` (the smaller first) for integer keys; a digest otherwise."""
    keys = sorted((a_pk, b_pk)) if isinstance(a_pk, int) and isinstance(b_pk, int) else None
    slug = f"dm-{keys[0]}-{keys[1]}" if keys else ""
    if not keys or len(slug) > 64:
        pair = "\n".join(sorted((str(a_pk), str(b_pk))))
        slug = "dm-" + hashlib.sha256(pair.encode()).hexdigest()[:40]
    return slug


class Room(Stream):
    kind = "chat"

    private = models.BooleanField(
        _("private"),
        default=False,
        help_text=_("Only the room's members may read and post in a private room."),
    )
    direct = models.BooleanField(
        _("direct"),
        default=False,
        editable=False,
        help_text=_("A direct-message room of two users (Room.objects.direct())."),
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="RoomMember",
        related_name="liverooms_rooms",
        blank=True,
        verbose_name=_("members"),
    )
    slow_mode_seconds = models.PositiveIntegerField(
        _("slow mode"),
        default=0,
        help_text=_(
            "Seconds each user must wait between two messages in this room; 0: off. "
            "Moderators are not slowed."
        ),
    )

    objects = RoomQuerySet.as_manager()

    class Meta(Stream.Meta):
        verbose_name = _("chat room")
        verbose_name_plural = _("chat rooms")
        constraints = [_slug_constraint("liverooms_room_slug_alphabet")]


class RoomMember(models.Model):
    """A user's membership of a room; a member may be the room's moderator."""

    room = models.ForeignKey(
        Room, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("room")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="liverooms_memberships",
        verbose_name=_("user"),
    )
    moderator = models.BooleanField(
        _("moderator"),
        default=False,
        help_text=_("May edit and delete anyone's messages and mute users in this room."),
    )
    created = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("room member")
        verbose_name_plural = _("room members")
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="liverooms_roommember_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.room}"


class RoomMuteQuerySet(models.QuerySet):
    def active(self, now: Any = None) -> models.QuerySet:
        now = now or timezone.now()
        return self.filter(models.Q(until__isnull=True) | models.Q(until__gt=now))


class RoomMute(models.Model):
    """A user who may read a room but not post in it, for a while or for good."""

    room = models.ForeignKey(
        Room, on_delete=models.CASCADE, related_name="mutes", verbose_name=_("room")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="liverooms_mutes",
        verbose_name=_("user"),
    )
    until = models.DateTimeField(
        _("until"), null=True, blank=True, help_text=_("Empty: until the mute is removed.")
    )
    muted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("muted by"),
    )
    created = models.DateTimeField(_("created"), auto_now_add=True)

    objects = RoomMuteQuerySet.as_manager()

    class Meta:
        verbose_name = _("mute")
        verbose_name_plural = _("mutes")
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="liverooms_roommute_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} muted in {self.room}"

    @property
    def is_active(self) -> bool:
        return self.until is None or self.until > timezone.now()


class LiveBlog(Stream):
    kind = "liveblog"

    # Where the coverage stands, shown in the widget and sent as a
    # ``liveblog.status`` event when it changes (docs/liveblog.md).
    STATUS = Choices(("upcoming", _("upcoming")), ("live", _("live")), ("ended", _("ended")))

    description = models.TextField(_("description"), blank=True)
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=STATUS,
        default=STATUS.live,
        help_text=_("Upcoming, live or ended; readers see it change live."),
    )
    coverage_start = models.DateTimeField(
        _("coverage start"),
        null=True,
        blank=True,
        help_text=_("When the coverage starts; set when the blog goes live if empty."),
    )
    coverage_end = models.DateTimeField(
        _("coverage end"),
        null=True,
        blank=True,
        help_text=_("When the coverage ends (or is planned to); set when the blog ends if empty."),
    )

    tracker = FieldTracker(fields=["status", "coverage_start", "coverage_end"])

    class Meta(Stream.Meta):
        verbose_name = _("live blog")
        verbose_name_plural = _("live blogs")
        constraints = [_slug_constraint("liverooms_liveblog_slug_alphabet")]

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Going live starts the coverage, ending ends it, unless set already.
        if self.status != self.STATUS.upcoming and self.coverage_start is None:
            self.coverage_start = timezone.now()
        if self.status == self.STATUS.ended and self.coverage_end is None:
            self.coverage_end = timezone.now()
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "coverage_start", "coverage_end"}
        # The row and its ``liveblog.status`` event (bridge.py) commit together.
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            super().save(*args, **kwargs)

    def status_frame(self) -> dict[str, Any]:
        return protocol.liveblog_status(
            status=self.status,
            coverage_start=_iso(self.coverage_start) if self.coverage_start else None,
            coverage_end=_iso(self.coverage_end) if self.coverage_end else None,
        )

    # The bridge's serialiser (see bridge.connect_builtin_models): a change of
    # status or coverage times is an event of the blog itself.
    def frame_for_save(self, created: bool) -> dict[str, Any] | None:
        if created or not self.tracker.changed():
            return None
        return self.status_frame()


class Event(models.Model):
    """One event of a stream: its seq and the frame readers were sent."""

    seq = models.PositiveBigIntegerField(_("seq"))
    type = models.CharField(_("type"), max_length=64)
    object_id = models.BigIntegerField(
        _("object id"),
        null=True,
        blank=True,
        help_text=_("The primary key of the object the event is about, if any."),
    )
    frame = models.TextField(_("frame"), help_text=_("The encoded JSON frame."))
    created = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"{self.stream} #{self.seq} {self.type}"


class RoomEvent(Event):
    stream = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="events")

    class Meta(Event.Meta):
        verbose_name = _("chat room event")
        verbose_name_plural = _("chat room events")
        constraints = [
            models.UniqueConstraint(fields=["stream", "seq"], name="liverooms_roomevent_unique_seq")
        ]
        indexes = [models.Index(fields=["stream", "object_id"])]


class LiveBlogEvent(Event):
    stream = models.ForeignKey(LiveBlog, on_delete=models.CASCADE, related_name="events")

    class Meta(Event.Meta):
        verbose_name = _("live blog event")
        verbose_name_plural = _("live blog events")
        constraints = [
            models.UniqueConstraint(
                fields=["stream", "seq"], name="liverooms_liveblogevent_unique_seq"
            )
        ]
        indexes = [models.Index(fields=["stream", "object_id"])]


class StreamItemQuerySet(SoftDeletableQuerySet):
    def delete(self) -> tuple[int, dict[str, int]]:  # type: ignore[override]
        """Soft-delete the rows one save at a time, so that each removal is an
        event readers get and redacts the item's earlier events (model_utils'
        own ``delete()`` is one UPDATE that no signal sees)."""
        count = 0
        with transaction.atomic(using=self.db, savepoint=False):
            for item in self.filter(is_removed=False):
                item.delete(using=self.db)
                count += 1
        return count, {self.model._meta.label: count}


class StreamItemManager(SoftDeletableManager):
    _queryset_class = StreamItemQuerySet


class StreamItem(TimeStampedModel, SoftDeletableModel):
    """What is posted in a stream: saved in a transaction, so the bridge's
    event commits with the row; soft-deleted, so removals replay as events."""

    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("author"),
    )

    all_objects = models.Manager()
    objects = StreamItemManager()

    class Meta:
        abstract = True
        default_manager_name = "all_objects"  # the admin shows removed items too

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The row and its event (bridge.py) commit together. No savepoint:
        # as with Model.save(), an error marks an enclosing atomic block for
        # rollback.
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            super().save(*args, **kwargs)


def _iso(value: Any) -> str:
    return value.isoformat()


def display_name(user: Any) -> str:
    """A user's full name if the user model has one, else the username, cut
    to ``protocol.NAME_MAX_LENGTH`` characters (what a message stores)."""
    get_full_name = getattr(user, "get_full_name", None)
    return protocol.shown_name((get_full_name() if get_full_name else "") or user.get_username())


def _author(user: Any, name: str | None = None) -> dict[str, Any]:
    if name is None:
        name = display_name(user) if user is not None else ""
    return protocol.user_info(user.pk if user is not None else None, name)


AUTHOR_NAME_MAX_LENGTH = protocol.NAME_MAX_LENGTH
# Entry fields whose change is an ``entry.edited`` like the text's.
MEDIA_FIELDS = ("embed_url", "image", "image_alt")


class Message(StreamItem):
    """A chat message. Soft-deleted messages stay, marked ``is_removed``."""

    # No index of its own: the (room, sender_key, created) index serves it.
    room = models.ForeignKey(
        Room,
        on_delete=models.CASCADE,
        related_name="messages",
        verbose_name=_("room"),
        db_index=False,
    )
    author_name = models.CharField(
        _("author name"),
        max_length=AUTHOR_NAME_MAX_LENGTH,
        blank=True,
        help_text=_("The name shown to readers; a guest's name for anonymous posts."),
    )
    body = models.TextField(_("body"))
    client_id = models.CharField(_("client id"), max_length=64, blank=True, editable=False)
    sender_key = models.CharField(
        _("sender key"),
        max_length=150,
        blank=True,
        editable=False,
        help_text=_("Who sent it, for idempotent sends: a user, a session or a connection."),
    )
    reply_to = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="replies",
        verbose_name=_("reply to"),
        help_text=_("The message of the same room this one answers."),
    )

    tracker = FieldTracker(fields=["body", "is_removed"])
    # Not a field: what the ``message`` frame of its first save says about
    # its attachments (set by streams.post_message, which binds them).
    attachment_frames: list[dict[str, Any]] | None = None

    class Meta(StreamItem.Meta):
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["created"]
        constraints = [
            models.UniqueConstraint(
                fields=["room", "sender_key", "client_id"],
                condition=~models.Q(client_id=""),
                name="liverooms_message_unique_client_id",
            )
        ]
        # A sender's latest message in a room, for slow mode (streams.last_posts).
        indexes = [
            models.Index(
                fields=["room", "sender_key", "created"], name="liverooms_message_sender_time"
            )
        ]

    def __str__(self) -> str:
        return f"{self.author_name}: {self.body[:50]}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.author_name and self.author is not None:
            self.author_name = display_name(self.author)
        # A longer name would fail the save (DataError on PostgreSQL).
        self.author_name = protocol.shown_name(self.author_name, AUTHOR_NAME_MAX_LENGTH)
        # Who the body @names (unread.py) is stored with the body, when it changes.
        before = (
            [] if self._state.adding else protocol.mentions(self.tracker.previous("body") or "")
        )
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            super().save(*args, **kwargs)
            if protocol.mentions(self.body) != before:
                from .unread import save_mentions

                save_mentions([(self.pk, self.body)], using, replace=bool(before))

    # The bridge's serialisers (see bridge.register).

    def frame_for_save(self, created: bool) -> dict[str, Any] | None:
        if created:
            if self.is_removed:
                return None
            return protocol.message(
                id=self.pk,
                slug=self.room.slug,
                body=self.body,
                author=_author(self.author, self.author_name),
                created=_iso(self.created),
                client_id=self.client_id or None,
                attachments=self.attachment_frames,
                reply_to=self.reply_to.quoted() if self.reply_to_id else None,
            )
        if self.is_removed:
            if self.tracker.previous("is_removed"):
                return None
            return protocol.message_deleted(id=self.pk)
        if self.tracker.has_changed("body"):
            return protocol.message_edited(id=self.pk, body=self.body, edited=_iso(self.modified))
        return None

    def frame_for_delete(self) -> dict[str, Any] | None:
        if self.is_removed:
            return None  # its deletion was an event already
        return protocol.message_deleted(id=self.pk)

    def quoted(self) -> dict[str, Any]:
        """How a reply to this message shows it (protocol.quote)."""
        return protocol.quote(
            id=self.pk,
            author=protocol.user_info(self.author_id, self.author_name),
            body=self.body,
            removed=self.is_removed,
        )


class Entry(StreamItem, StatusModel):
    """A live blog entry. Only published, not removed entries are live.

    A *scheduled* entry goes live at ``publish_at``, when
    ``manage.py liverooms_publish_due`` (cron, or ``--every``) or the worker
    (scheduling.py) publishes it:
    its ``entry`` event is sent then, never before."""

    STATUS = Choices(
        ("draft", _("draft")), ("scheduled", _("scheduled")), ("published", _("published"))
    )

    blog = models.ForeignKey(
        LiveBlog, on_delete=models.CASCADE, related_name="entries", verbose_name=_("live blog")
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    body = models.TextField(_("body"), help_text=_("HTML; sanitised when saved."))
    published_at = models.DateTimeField(_("published at"), null=True, blank=True, editable=False)
    publish_at = models.DateTimeField(
        _("publish at"),
        null=True,
        blank=True,
        db_index=True,
        help_text=_(
            "Publish at this time: the entry is scheduled until then. Saving it as "
            "published with a time ahead schedules it."
        ),
    )
    pinned = models.BooleanField(
        _("pinned"), default=False, help_text=_("Pinned entries are shown first.")
    )
    key = models.BooleanField(
        _("key entry"),
        default=False,
        help_text=_("Key entries are listed in the live blog's summary."),
    )
    embed_url = models.URLField(
        _("embed"),
        max_length=500,
        blank=True,
        help_text=_(
            "A YouTube, Vimeo, X or Instagram URL is shown as its player; any other URL as a link."
        ),
    )
    image = models.FileField(
        _("image"),
        upload_to="liverooms/entries/%Y/%m/",
        blank=True,
        validators=[validate_image],
        help_text=_("A JPEG, PNG, GIF or WebP image."),
    )
    image_alt = models.CharField(
        _("image description"),
        max_length=300,
        blank=True,
        help_text=_("What the image shows, for readers who cannot see it."),
    )

    tracker = FieldTracker(
        fields=[
            "status",
            "is_removed",
            "title",
            "body",
            "pinned",
            "key",
            "embed_url",
            "image",
            "image_alt",
        ]
    )

    class Meta(StreamItem.Meta):
        verbose_name = _("entry")
        verbose_name_plural = _("entries")
        ordering = ["-published_at", "-created"]

    def __str__(self) -> str:
        return self.title or self.body[:50]

    def clean(self) -> None:
        super().clean()
        if self.status == self.STATUS.scheduled and self.publish_at is None:
            raise ValidationError(
                {"publish_at": _("A scheduled entry needs the time to publish it at.")}
            )

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.body = clean_html(self.body)
        # Published ahead of its time: scheduled until publish_at. Not once
        # live, and not from scheduled (publishing a scheduled entry, as
        # liverooms_publish_due and an editor's "publish now" do).
        if (
            self.status == self.STATUS.published
            and self.publish_at is not None
            and self.publish_at > timezone.now()
            and not self._was_live()
            and (self._state.adding or self.tracker.previous("status") != self.STATUS.scheduled)
        ):
            self.status = self.STATUS.scheduled
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "status"}
        if self.is_live and self.published_at is None:
            self.published_at = timezone.now()
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "body", "published_at", "modified"}
        # A live entry pinned, unpinned, marked key or not: ``entry.marked``,
        # after any ``entry.edited`` of the same save (the bridge sends one
        # frame per save). Publishing carries the marks in the ``entry`` frame.
        was_live = self._was_live()
        marked = not self._state.adding and (
            self.tracker.has_changed("pinned") or self.tracker.has_changed("key")
        )
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            super().save(*args, **kwargs)
            if marked and was_live and self.is_live:
                from .streams import record_change

                # The entry's earlier ``entry`` frame gets the marks too, so a
                # reader paging back ("load older entries") sees them.
                frame = protocol.entry_marked(id=self.pk, pinned=self.pinned, key=self.key)
                record_change(self.blog, frame, object_id=self.pk)

    def pin(self, pinned: bool = True) -> None:
        """Pin the entry (shown first); ``pin(False)`` unpins it. Live readers
        get ``entry.marked``."""
        self.pinned = pinned
        self.save(update_fields=["pinned"])

    def unpin(self) -> None:
        self.pin(False)

    def mark_key(self, key: bool = True) -> None:
        """Mark the entry a key entry (listed in the summary), or not."""
        self.key = key
        self.save(update_fields=["key"])

    @property
    def is_live(self) -> bool:
        return self.status == self.STATUS.published and not self.is_removed

    def _was_live(self) -> bool:
        if self._state.adding or self.tracker.previous("status") is None:
            return False
        return self.tracker.previous(
            "status"
        ) == self.STATUS.published and not self.tracker.previous("is_removed")

    def frame_for_save(self, created: bool) -> dict[str, Any] | None:
        was_live = False if created else self._was_live()
        if self.is_live and not was_live:
            return protocol.entry(
                id=self.pk,
                slug=self.blog.slug,
                title=self.title,
                body=self.body,
                author=_author(self.author),
                published=_iso(self.published_at),
                pinned=self.pinned,
                key=self.key,
                media=self.media_fields(),
            )
        if was_live and not self.is_live:
            return protocol.entry_deleted(id=self.pk)
        changed = [f for f in ("title", "body", *MEDIA_FIELDS) if self.tracker.has_changed(f)]
        if self.is_live and changed:
            media_changed = any(f in MEDIA_FIELDS for f in changed)
            return protocol.entry_edited(
                id=self.pk,
                title=self.title,
                body=self.body,
                edited=_iso(self.modified),
                media=self.media_fields(clearing=media_changed),
            )
        return None

    def media_fields(self, clearing: bool = False) -> dict[str, str]:
        """The embed and image fields of the entry's frames (additions): those
        it has, or all of them (empty strings) when ``clearing`` one."""
        fields: dict[str, str] = {}
        embed = embed_for(self.embed_url)
        if embed is not None or clearing:
            fields.update(embed.frame_fields() if embed else dict.fromkeys(EMBED_FRAME_FIELDS, ""))
        if self.image or clearing:
            fields["image"] = self.image.url if self.image else ""
            fields["image_alt"] = self.image_alt if self.image else ""
        return fields

    def frame_for_delete(self) -> dict[str, Any] | None:
        return protocol.entry_deleted(id=self.pk) if self._was_live() else None


# Read state (issue 16; unread.py) ------------------------------------------------


class ReadMarker(TimeStampedModel):
    """How far a signed-in user has read a chat room: the seq of the latest
    event read. Only ever moves forward (unread.mark_read)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="liverooms_read_markers",
        verbose_name=_("user"),
    )
    room = models.ForeignKey(
        Room, on_delete=models.CASCADE, related_name="read_markers", verbose_name=_("room")
    )
    seq = models.PositiveBigIntegerField(
        _("read up to"), default=0, help_text=_("The seq of the latest event the user has read.")
    )

    class Meta:
        verbose_name = _("read marker")
        verbose_name_plural = _("read markers")
        constraints = [
            models.UniqueConstraint(fields=["user", "room"], name="liverooms_readmarker_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.room} up to #{self.seq}"


class Mention(models.Model):
    """A user ``@named`` in a chat message (protocol.mentions); counted as an
    unread mention while the message is after the user's read marker."""

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="mentions", verbose_name=_("message")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="liverooms_mentions",
        verbose_name=_("user"),
    )

    class Meta:
        verbose_name = _("mention")
        verbose_name_plural = _("mentions")
        constraints = [
            models.UniqueConstraint(fields=["message", "user"], name="liverooms_mention_unique")
        ]

    def __str__(self) -> str:
        return f"@{self.user} in message {self.message_id}"


# Attachments (issue 16; attachments.py) ------------------------------------------


def attachment_path(instance: Attachment, filename: str) -> str:
    """``liverooms/attachments/<room pk>/<random>.<extension>``: never the
    client's file name (``filename`` only gives the extension of the type
    found in the file's bytes)."""
    import uuid

    extension = filename.rpartition(".")[2].lower()[:10] or "bin"
    return f"liverooms/attachments/{instance.room_id}/{uuid.uuid4().hex}.{extension}"


class Attachment(TimeStampedModel):
    """A file uploaded to a chat room by a signed-in user, shown with the
    message that references it (``message`` is set when one does)."""

    NAME_MAX_LENGTH = 200

    room = models.ForeignKey(
        Room, on_delete=models.CASCADE, related_name="attachments", verbose_name=_("room")
    )
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="liverooms_attachments",
        verbose_name=_("uploader"),
    )
    file = models.FileField(_("file"), upload_to=attachment_path, max_length=200)
    name = models.CharField(
        _("name"), max_length=NAME_MAX_LENGTH, help_text=_("The file's name as uploaded, cleaned.")
    )
    content_type = models.CharField(
        _("type"), max_length=100, help_text=_("As found in the file's bytes.")
    )
    size = models.PositiveBigIntegerField(_("size"), help_text=_("In bytes."))
    message = models.ForeignKey(
        Message,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="attachments",
        verbose_name=_("message"),
        help_text=_("The message that sent it; empty until one does."),
    )

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")


# Moderation tools (issue 16; moderation.py) ---------------------------------------

FLAG_REASON_MAX_LENGTH = protocol.FLAG_REASON_MAX


class Flag(StatusModel, TimeStampedModel):
    """A signed-in reader's report of a chat message, for the admin's review
    queue: open until a moderator deletes the message (resolved) or
    dismisses it."""

    STATUS = Choices(
        ("open", pgettext_lazy("flag status", "open")),
        ("resolved", pgettext_lazy("flag status", "resolved")),
        ("dismissed", pgettext_lazy("flag status", "dismissed")),
    )

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="flags", verbose_name=_("message")
    )
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="liverooms_flags",
        verbose_name=_("reporter"),
    )
    reason = models.CharField(_("reason"), max_length=FLAG_REASON_MAX_LENGTH, blank=True)

    class Meta:
        verbose_name = _("flag")
        verbose_name_plural = _("flags")
        constraints = [
            models.UniqueConstraint(fields=["message", "reporter"], name="liverooms_flag_unique")
        ]
        # The review queue (open first, oldest first) and the open counts.
        indexes = [models.Index(fields=["status", "created"], name="liverooms_flag_queue")]

    def __str__(self) -> str:
        return f"{self.reporter} flagged message {self.message_id}"


class BanQuerySet(models.QuerySet):
    def active(self, now: Any = None) -> models.QuerySet:
        now = now or timezone.now()
        return self.filter(models.Q(until__isnull=True) | models.Q(until__gt=now))


class Ban(models.Model):
    """A user who may not read or post in any chat room (live blogs stay
    readable), for a while or for good. Saving one closes the user's open
    chat sockets in every server process (moderation.py)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="liverooms_bans",
        verbose_name=_("user"),
    )
    until = models.DateTimeField(
        _("until"), null=True, blank=True, help_text=_("Empty: until the ban is deleted.")
    )
    reason = models.CharField(
        _("reason"), max_length=500, blank=True, help_text=_("Shown to the user.")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created = models.DateTimeField(_("created"), auto_now_add=True)

    objects = BanQuerySet.as_manager()

    class Meta:
        verbose_name = _("ban")
        verbose_name_plural = _("bans")
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.user} banned"

    @property
    def is_active(self) -> bool:
        return self.until is None or self.until > timezone.now()


class MessageReaction(models.Model):
    """A user's reaction to a chat message: one per user, emoji and message
    (issue 16). Readers get the counts from ``message.reactions`` events."""

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="reactions", verbose_name=_("message")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="liverooms_reactions",
        verbose_name=_("user"),
    )
    emoji = models.CharField(_("emoji"), max_length=protocol.EMOJI_MAX_LENGTH)
    created = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("message reaction")
        verbose_name_plural = _("message reactions")
        constraints = [
            models.UniqueConstraint(
                fields=["message", "user", "emoji"], name="liverooms_reaction_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.emoji} by {self.user} on {self.message_id}"
