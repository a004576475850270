"""Attachments of chat messages (issue 16): uploads, their types, who gets them.

A signed-in user who may post in a room uploads a file
(``POST <prefix>chat/<slug>/attachments``, views.upload_attachment): at most
``ATTACHMENT_MAX_BYTES``, of a type of ``ATTACHMENT_TYPES`` as the file's
bytes say, never as its name or the client's claimed type. It is stored in
Django's default storage under a random name in a directory of its room,
then referenced by the ids in a ``message`` frame's ``attachments``:
:func:`claim` finds and locks them in the transaction that stores the
message, which binds them to it (streams.post_message, post_messages).

Served (``GET <prefix>chat/<slug>/attachments/<id>``, views.attachment) to
whoever may read the room while its message is not removed; before it is
sent, to its uploader alone (:func:`servable`). Deleting the row deletes the
file, once the deletion commits (a purge, a room deleted, the admin).
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from functools import partial
from typing import Any

from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.db import transaction
from django.db.models.signals import post_delete
from django.urls import NoReverseMatch, reverse

from . import protocol
from .conf import conf
from .embeds import IMAGE_TYPES, _looks_like
from .models import Attachment

# Every type the server can recognise from a file's bytes (content type:
# the extension of its stored name); ATTACHMENT_TYPES picks among them.
KNOWN_TYPES = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
    "application/pdf": "pdf",
    "text/plain": "txt",
}
MAX_PER_MESSAGE = protocol.MAX_ATTACHMENTS
# Bytes a multipart body may carry besides the file (boundaries, headers):
# a Content-Length over ATTACHMENT_MAX_BYTES plus this is refused unread.
MULTIPART_SLACK = 64 * 1024
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def allowed_types() -> list[str]:
    return [t for t in conf.ATTACHMENT_TYPES or () if t in KNOWN_TYPES]


def sniff(file: Any) -> str | None:
    """The content type of ``file`` (an uploaded file) from its bytes, or None.

    Images and PDF by their first bytes (embeds.IMAGE_TYPES' signatures);
    ``text/plain``: UTF-8 throughout, without control characters other than
    tab, line breaks and form feed, and not starting with ``<`` (HTML, SVG
    or XML, which a browser might render, is not plain text here).
    """
    file.seek(0)
    head = file.read(16)
    if not head:
        return None  # an empty file is of no type
    for content_type, extension in KNOWN_TYPES.items():
        signature = "jpeg" if extension == "jpg" else extension
        if signature in IMAGE_TYPES and _looks_like(head, signature):
            return content_type
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return "text/plain" if _is_text(file) else None


def _is_text(file: Any) -> bool:
    file.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    first = True
    for chunk in iter(partial(file.read, 64 * 1024), b""):
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError:
            return False
        if first and text:
            if text.lstrip("\ufeff \t\r\n\f").startswith("<"):
                return False
            first = False
        if _CONTROL.search(text):
            return False
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def clean_name(name: str | None) -> str:
    """The name shown for an upload: the client's file name without any
    directory, control or format characters (bidi overrides), whitespace
    collapsed, cut to ``Attachment.NAME_MAX_LENGTH`` characters keeping its
    extension; ``"file"`` when nothing is left. Never used as a path."""
    name = (name or "").replace("\\", "/").rpartition("/")[2]
    name = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in name)
    name = " ".join(name.split()).strip(". ") or "file"
    limit = Attachment.NAME_MAX_LENGTH
    if len(name) > limit:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and len(extension) <= 10:
            name = stem[: limit - len(extension) - 1] + "." + extension
        else:
            name = name[:limit]
    return name


def url(slug: str, pk: int) -> str:
    """Where the attachment is served; "" without the app's URLs."""
    try:
        return reverse("liverooms:attachment", args=[slug, pk])
    except NoReverseMatch:
        return ""


def info(attachment: Attachment, slug: str) -> dict[str, Any]:
    """What frames and the upload's answer say about an attachment."""
    return protocol.attachment(
        id=attachment.pk,
        name=attachment.name,
        type=attachment.content_type,
        size=attachment.size,
        url=url(slug, attachment.pk),
    )


def store(room: Any, user: Any, upload: Any, content_type: str) -> Attachment:
    """Save an upload checked by the view (its size and ``content_type``)."""
    attachment = Attachment(
        room=room,
        uploader=user,
        name=clean_name(upload.name),
        content_type=content_type,
        size=upload.size,
    )
    upload.seek(0)
    # The name given only carries the extension: upload_to makes a random one.
    attachment.file.save(f"upload.{KNOWN_TYPES[content_type]}", upload, save=False)
    try:
        attachment.save()
    except BaseException:
        attachment.file.delete(save=False)
        raise
    return attachment


def claim(
    wanted: list[tuple[Any, Any, tuple[int, ...]]], using: str
) -> list[list[Attachment] | None]:
    """For each ``(room pk, uploader pk, ids)``: its attachments in that
    order, locked until the transaction ends; or None when one of them is
    not that uploader's in that room, is bound to a message already, or is
    claimed by an earlier item. One query for all of them; a message bound
    meanwhile by another transaction is seen once it commits (the rows are
    locked, then read again), so an attachment is never bound twice."""
    ids = {pk for _, _, pks in wanted for pk in pks}
    found = {}
    if ids:
        rows = Attachment.objects.using(using).select_for_update()
        found = {a.pk: a for a in rows.filter(pk__in=ids, message__isnull=True)}
    taken: set[int] = set()
    claimed: list[list[Attachment] | None] = []
    for room_pk, uploader_pk, pks in wanted:
        items = [found.get(pk) for pk in pks]
        if uploader_pk is not None and all(
            a is not None and a.room_id == room_pk and a.uploader_id == uploader_pk for a in items
        ):
            if not taken.intersection(pks):
                taken.update(pks)
                claimed.append(items)  # type: ignore[arg-type]
                continue
        claimed.append(None)
    return claimed


def refused(client_id: str | None) -> protocol.ProtocolError:
    return protocol.ProtocolError(
        protocol.BAD_FRAME,
        "attachments must be ids of files you uploaded to this room and have not sent yet.",
        client_id,
    )


def bind(message_id: int, attachments: list[Attachment], using: str) -> None:
    """Bind claimed attachments to their message (in its transaction)."""
    if attachments:
        Attachment.objects.using(using).filter(pk__in=[a.pk for a in attachments]).update(
            message_id=message_id
        )


def servable(room: Any, pk: int, user: Any) -> Attachment | None:
    """Attachment ``pk`` of ``room`` if it may be served to ``user``, who may
    read the room: its message is not removed, or it was not sent yet and
    ``user`` uploaded it."""
    if pk > protocol.MAX_SEQ:
        return None
    attachment = Attachment.objects.filter(room=room, pk=pk).select_related("message").first()
    if attachment is None:
        return None
    if attachment.message_id is None:
        mine = user.is_authenticated and attachment.uploader_id == user.pk
        return attachment if mine else None
    return None if attachment.message.is_removed else attachment


def delete_for_messages(message_ids: list[int], using: str) -> int:
    """Delete the attachments of these messages, and so their files (a purge)."""
    count = 0
    for start in range(0, len(message_ids), 500):
        chunk = message_ids[start : start + 500]
        count += Attachment.objects.using(using).filter(message_id__in=chunk).delete()[0]
    return count


def delete_uploads_of(user_id: Any) -> int:
    """Delete every attachment user ``user_id`` uploaded, and so its file (a purge)."""
    return Attachment.objects.filter(uploader_id=user_id).delete()[0]


class SizeLimit(FileUploadHandler):
    """The first upload handler of an upload: stops reading the body once
    its files exceed ``limit`` bytes (a request without a Content-Length,
    or one that lies), so that no more of it is read or stored."""

    def __init__(self, request: Any, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.received = 0
        self.too_large = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.too_large = True
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handlers make the file


def _delete_file(sender: Any, instance: Attachment, using: str, **kwargs: Any) -> None:
    if instance.file.name:
        storage, name = instance.file.storage, instance.file.name
        transaction.on_commit(partial(storage.delete, name), using=using, robust=True)


def connect_signals() -> None:
    post_delete.connect(_delete_file, sender=Attachment, dispatch_uid="liverooms.attachment_file")
