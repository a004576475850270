"""Admin for editors: publishing or editing an entry here goes live on save."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from . import streams
from .models import Entry, LiveBlog, Message, Room, RoomMember, RoomMute


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
    list_display = ["title", "slug", "private", "last_seq", "modified"]
    list_filter = ["private"]
    inlines = [RoomMemberInline, RoomMuteInline]

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


@admin.register(RoomMute)
class RoomMuteAdmin(admin.ModelAdmin):
    list_display = ["user", "room", "until", "muted_by", "created"]
    list_filter = ["room"]
    raw_id_fields = ["user", "muted_by"]
    search_fields = ["user__username"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["created", "room", "author_name", "body", "is_removed"]
    list_filter = ["room", "is_removed"]
    search_fields = ["body", "author_name"]
    raw_id_fields = ["author"]
    readonly_fields = ["client_id", "sender_key", "created", "modified"]
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
