"""Admin for editors: publishing or editing an entry here goes live on save."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Case, Count, OuterRef, Subquery, URLField, Value, When
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import attachments, moderation, streams
from .models import (
    Attachment,
    Ban,
    Entry,
    Flag,
    LiveBlog,
    Message,
    MessageReaction,
    ReadMarker,
    Room,
    RoomMember,
    RoomMute,
)
from .policy import MODERATE_PERMISSION


class StreamAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "last_seq", "modified"]
    search_fields = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}
    readonly_fields = ["last_seq", "created", "modified"]


class RoomMemberInline(admin.TabularInline):
    model = RoomMember
    raw_id_fields = ["user"]
    extra = 0


class RoomMuteInline(admin.TabularInline):
    model = RoomMute
    fk_name = "room"
    raw_id_fields = ["user", "muted_by"]
    extra = 0


@admin.register(Room)
class RoomAdmin(StreamAdmin):
    list_display = [
        "title",
        "slug",
        "private",
        "slow_mode_seconds",
        "open_flags",
        "last_seq",
        "modified",
    ]
    list_filter = ["private", "direct"]
    inlines = [RoomMemberInline, RoomMuteInline]

    def get_queryset(self, request: HttpRequest) -> Any:
        # The open flags of each room's messages, in the same query (the
        # (status, created) index finds the open ones).
        open_flags = (
            Flag.objects.filter(message__room=OuterRef("pk"), status=Flag.STATUS.open)
            .order_by()
            .values("message__room")
            .annotate(count=Count("pk"))
            .values("count")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(open_flag_count=Coalesce(Subquery(open_flags), 0))
        )

    @admin.display(description=_("open flags"), ordering="open_flag_count")
    def open_flags(self, obj: Room) -> Any:
        """The room's open flags, linked to the review queue of that room."""
        count = getattr(obj, "open_flag_count", 0)
        if not count:
            return 0
        url = reverse("admin:django_liverooms_flag_changelist")
        query = f"?status__exact={Flag.STATUS.open}&message__room__id__exact={obj.pk}"
        return format_html('<a href="{}{}">{}</a>', url, query, count)

    # Deleting a room here is streams.purge_room(): its open sockets close (4404).
    def delete_model(self, request: HttpRequest, obj: Room) -> None:
        streams.purge_room(obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for room in queryset:
            streams.purge_room(room)


@admin.register(LiveBlog)
class LiveBlogAdmin(StreamAdmin):
    # Saving a change of status or coverage times sends ``liveblog.status``.
    list_display = ["title", "slug", "status", "coverage_start", "coverage_end", "last_seq"]
    list_filter = ["status"]
    fields = ["title", "slug", "description", "status", "coverage_start", "coverage_end"]


@admin.register(ReadMarker)
class ReadMarkerAdmin(admin.ModelAdmin):
    """Read-only: markers move only with their users' ``read`` frames."""

    list_display = ["user", "room", "seq", "modified"]
    list_filter = ["room"]
    search_fields = ["user__username", "room__slug"]
    list_select_related = ["user", "room"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RoomMute)
class RoomMuteAdmin(admin.ModelAdmin):
    list_display = ["user", "room", "until", "muted_by", "created"]
    list_filter = ["room"]
    raw_id_fields = ["user", "muted_by"]
    search_fields = ["user__username"]


class MessageReactionInline(admin.TabularInline):
    """Who reacted: read-only (readers set and take back their own over the socket)."""

    model = MessageReaction
    fields = ["emoji", "user", "created"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["created", "room", "author_name", "body", "is_removed"]
    list_filter = ["room", "is_removed"]
    search_fields = ["body", "author_name"]
    raw_id_fields = ["author"]
    readonly_fields = ["client_id", "sender_key", "created", "modified"]
    inlines = [MessageReactionInline]
    actions = ["remove_messages", "purge_authors"]

    @admin.action(description=_("Remove selected messages (readers see them deleted)"))
    def remove_messages(self, request: HttpRequest, queryset: Any) -> None:
        # One save per message, so each removal is an event readers receive.
        for message in queryset.filter(is_removed=False):
            message.delete()

    @admin.action(
        description=_("Erase every message of the selected messages' authors (data protection)"),
        permissions=["delete"],
    )
    def purge_authors(self, request: HttpRequest, queryset: Any) -> None:
        # liverooms_purge --user for each signed-in author (docs/retention.md).
        author_ids = sorted(set(queryset.exclude(author=None).values_list("author_id", flat=True)))
        erased = sum(streams.purge_user(author_id).messages for author_id in author_ids)
        self.message_user(
            request,
            _("Erased %(messages)d messages of %(authors)d users.")
            % {"messages": erased, "authors": len(author_ids)},
        )


@admin.register(Entry)
class EntryAdmin(admin.ModelAdmin):
    # Embed links without a scheme are https (Django 6's default; 5.2 warns otherwise).
    formfield_overrides = {URLField: {"assume_scheme": "https"}}
    list_display = [
        "__str__",
        "blog",
        "status",
        "publish_at",
        "pinned",
        "key",
        "published_at",
        "is_removed",
    ]
    list_filter = ["blog", "status", "pinned", "key", "is_removed"]
    search_fields = ["title", "body"]
    raw_id_fields = ["author"]
    readonly_fields = ["published_at", "status_changed", "created", "modified"]
    fields = [
        "blog",
        "title",
        "body",
        "status",
        "publish_at",
        "pinned",
        "key",
        "embed_url",
        "image",
        "image_alt",
        "author",
        "is_removed",
        *readonly_fields,
    ]
    actions = ["publish", "unpublish", "pin", "unpin", "mark_key", "unmark_key"]

    def save_model(self, request: HttpRequest, obj: Entry, form: Any, change: bool) -> None:
        if not change and obj.author_id is None:
            obj.author = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Publish selected entries"))
    def publish(self, request: HttpRequest, queryset: Any) -> None:
        for entry in queryset.exclude(status=Entry.STATUS.published):
            entry.status = Entry.STATUS.published
            entry.save()

    @admin.action(description=_("Unpublish selected entries"))
    def unpublish(self, request: HttpRequest, queryset: Any) -> None:
        for entry in queryset.filter(status=Entry.STATUS.published):
            entry.status = Entry.STATUS.draft
            entry.save()

    # One save per entry, so that each live one sends ``entry.marked``.
    @admin.action(description=_("Pin selected entries (shown first)"))
    def pin(self, request: HttpRequest, queryset: Any) -> None:
        for entry in queryset.filter(pinned=False):
            entry.pin()

    @admin.action(description=_("Unpin selected entries"))
    def unpin(self, request: HttpRequest, queryset: Any) -> None:
        for entry in queryset.filter(pinned=True):
            entry.unpin()

    @admin.action(description=_("Mark selected entries as key entries"))
    def mark_key(self, request: HttpRequest, queryset: Any) -> None:
        for entry in queryset.filter(key=False):
            entry.mark_key()

    @admin.action(description=_("Unmark selected key entries"))
    def unmark_key(self, request: HttpRequest, queryset: Any) -> None:
        for entry in queryset.filter(key=True):
            entry.mark_key(False)


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    """Uploads come only from the chat (attachments.py); deleting one here
    deletes its file."""

    list_display = [
        "name",
        "room",
        "uploader",
        "size",
        "content_type",
        "message",
        "created",
        "link",
    ]
    list_filter = ["content_type", "room"]
    search_fields = ["name", "uploader__username", "room__slug"]
    list_select_related = ["room", "uploader"]
    raw_id_fields = ["uploader", "message"]

    @admin.display(description=_("file"))
    def link(self, obj: Attachment) -> str:
        url = attachments.url(obj.room.slug, obj.pk)
        return format_html('<a href="{}">{}</a>', url, _("open")) if url else ""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Moderation tools (issue 16; moderation.py) -------------------------------------


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    """The review queue of flagged messages: open flags first, oldest first.
    Flags come from readers (the ``flag`` frame), never from here."""

    list_display = ["excerpt", "room", "author", "reporter", "reason", "status", "created"]
    list_filter = ["status", ("message__room", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["message__room", "reporter"]
    search_fields = ["reason", "message__body", "message__author_name"]
    raw_id_fields = ["message", "reporter"]
    readonly_fields = ["status_changed", "created", "modified"]
    ordering = [Case(When(status=Flag.STATUS.open, then=Value(0)), default=Value(1)), "created"]
    actions = ["delete_messages", "dismiss"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_moderate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MODERATE_PERMISSION)

    @admin.display(description=_("message"))
    def excerpt(self, obj: Flag) -> str:
        body = obj.message.body
        text = body if len(body) <= 80 else body[:79] + "\u2026"
        return f"[{_('deleted')}] {text}" if obj.message.is_removed else text

    @admin.display(description=_("room"), ordering="message__room")
    def room(self, obj: Flag) -> Room:
        return obj.message.room

    @admin.display(description=_("author"), ordering="message__author_name")
    def author(self, obj: Flag) -> str:
        return obj.message.author_name

    @admin.action(description=_("Delete the flagged messages"), permissions=["moderate"])
    def delete_messages(self, request: HttpRequest, queryset: Any) -> None:
        # The socket's soft delete: readers get message.deleted, frames are redacted.
        deleted = moderation.delete_flagged(queryset)
        self.message_user(
            request,
            ngettext("Deleted %(count)d message.", "Deleted %(count)d messages.", deleted)
            % {"count": deleted},
        )

    @admin.action(description=_("Dismiss"), permissions=["change"])
    def dismiss(self, request: HttpRequest, queryset: Any) -> None:
        dismissed = moderation.dismiss(queryset)
        self.message_user(
            request,
            ngettext("Dismissed %(count)d flag.", "Dismissed %(count)d flags.", dismissed)
            % {"count": dismissed},
        )


@admin.register(Ban)
class BanAdmin(admin.ModelAdmin):
    """Saving an active ban closes the user's open chat sockets in every
    server process (moderation.py)."""

    list_display = ["user", "until", "reason", "created_by", "created", "active"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_by", "created"]
    search_fields = ["user__username", "reason"]
    list_select_related = ["user", "created_by"]

    def save_model(self, request: HttpRequest, obj: Ban, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description=_("active"), boolean=True)
    def active(self, obj: Ban) -> bool:
        return obj.is_active


@admin.action(description=_("Close their live connections (they may reconnect)"))
def kick_users(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: Any) -> None:
    """An action for the host project's user admin (docs/permissions.md)::

        from django_liverooms.admin import kick_users

        class UserAdmin(auth_admin.UserAdmin):
            actions = [kick_users]

    Each selected user's sockets and SSE streams close in every server
    process (``moderation.kick``).
    """
    count = 0
    for user in queryset:
        moderation.kick(user)
        count += 1
    modeladmin.message_user(
        request,
        ngettext(
            "Closed the connections of %(count)d user.",
            "Closed the connections of %(count)d users.",
            count,
        )
        % {"count": count},
    )
