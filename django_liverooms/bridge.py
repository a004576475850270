"""Model saves and deletes become stream events, broadcast after commit.

Whatever saves the object (the admin, a view, ``manage.py shell``, another
process), the handler stores the event in the stream's table inside the
save's transaction and broadcasts it when that transaction commits: never on
rollback, never for ``raw`` fixture loads. In the same transaction a
deletion or an edit rewrites the object's earlier events (redaction, see
:func:`streams.record_change`), so no read path serves the old text.

Host projects push their own objects into a stream with :func:`register`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models.signals import post_delete, post_save

from . import protocol

if TYPE_CHECKING:
    from .models import Stream

FrameForSave = Callable[[Any, bool], "dict[str, Any] | None"]
FrameForDelete = Callable[[Any], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Registration:
    model: type[models.Model]
    stream: Callable[[Any], Stream | None]
    frame_for_save: FrameForSave
    frame_for_delete: FrameForDelete | None
    redact_fields: tuple[str, ...] | None = protocol.REDACTED_FIELDS

    @property
    def uid(self) -> str:
        return f"liverooms.bridge.{self.model._meta.label_lower}"


_registry: dict[type[models.Model], Registration] = {}


def register(
    model: type[models.Model],
    *,
    stream: str | Callable[[Any], Stream | None],
    frame_for_save: FrameForSave,
    frame_for_delete: FrameForDelete | None = None,
    redact_fields: tuple[str, ...] | None = protocol.REDACTED_FIELDS,
) -> None:
    """Push ``model``'s saves (and optionally deletes) into a stream.

    ``stream``: the attribute naming the instance's Room or LiveBlog
    (``"blog"``), or a function of the instance returning it (or None to skip).
    ``frame_for_save(instance, created)`` and ``frame_for_delete(instance)``
    return the frame to send (a dict with a string ``type``, without ``seq``)
    or None for no event. Call it from your ``AppConfig.ready()``.

    Redaction (docs/retention.md): name the frames ``<type>``,
    ``<type>.edited`` and ``<type>.deleted``, and a ``.deleted`` frame
    blanks the ``redact_fields`` of the object's earlier events (adding
    ``"redacted": true``) while an ``.edited`` frame copies its fields into
    them, in the transaction that records it. ``redact_fields=None`` turns
    the rewriting off for this model.
    """
    if isinstance(stream, str):
        stream = attrgetter(stream)
    registration = Registration(model, stream, frame_for_save, frame_for_delete, redact_fields)
    unregister(model)
    _registry[model] = registration
    post_save.connect(_on_save, sender=model, dispatch_uid=registration.uid)
    if frame_for_delete is not None:
        post_delete.connect(_on_delete, sender=model, dispatch_uid=registration.uid)


def unregister(model: type[models.Model]) -> None:
    registration = _registry.pop(model, None)
    if registration is not None:
        post_save.disconnect(sender=model, dispatch_uid=registration.uid)
        post_delete.disconnect(sender=model, dispatch_uid=registration.uid)


def _record(registration: Registration, instance: Any, frame: dict[str, Any] | None) -> None:
    from .streams import record_change

    if frame is None:
        return
    stream = registration.stream(instance)
    if stream is None:
        return
    object_id = instance.pk if isinstance(instance.pk, int) else None
    # The event and the rewrite of the object's earlier events (redaction)
    # commit together, with the save when it runs in a transaction.
    record_change(stream, frame, object_id=object_id, redact_fields=registration.redact_fields)


def _on_save(
    sender: type[models.Model], instance: Any, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    if raw:
        return
    registration = _registry[sender]
    _record(registration, instance, registration.frame_for_save(instance, created))


def _on_delete(
    sender: type[models.Model], instance: Any, origin: Any = None, **kwargs: Any
) -> None:
    if _deleting_a_stream(origin):
        return  # the stream goes with its events; there is no one to tell
    registration = _registry[sender]
    assert registration.frame_for_delete is not None
    _record(registration, instance, registration.frame_for_delete(instance))


def _deleting_a_stream(origin: Any) -> bool:
    from .models import Stream

    if isinstance(origin, Stream):
        return True
    return isinstance(origin, models.QuerySet) and issubclass(origin.model, Stream)


def connect_builtin_models() -> None:
    """Register the app's own models; called from AppConfig.ready()."""
    from .models import Entry, LiveBlog, Message

    register(
        Message,
        stream="room",
        frame_for_save=Message.frame_for_save,
        frame_for_delete=Message.frame_for_delete,
    )
    from .embeds import ENTRY_MEDIA_FRAME_FIELDS

    register(
        Entry,
        stream="blog",
        frame_for_save=Entry.frame_for_save,
        frame_for_delete=Entry.frame_for_delete,
        # An entry's embed and image go with its text when it is deleted.
        redact_fields=(*protocol.REDACTED_FIELDS, *ENTRY_MEDIA_FRAME_FIELDS),
    )
    # A live blog's own changes (status, coverage times): events of itself.
    register(
        LiveBlog,
        stream=lambda blog: blog,
        frame_for_save=LiveBlog.frame_for_save,
        redact_fields=None,
    )
