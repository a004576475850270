"""HTTP history API: the stored frames of a stream as JSON.

``GET <prefix>chat/<slug>/messages?after=<seq>&limit=<n>`` and
``GET <prefix>liveblog/<slug>/entries?after=<seq>&limit=<n>`` return
``{"items": [<frame>, ...], "complete": bool}``: the events after ``after``
(default: from the oldest kept) in seq order, ``complete`` false when more
follow. ``?before=<seq>`` pages backwards: the ``limit`` events before it, in
seq order, ``complete`` false when earlier ones are kept. An ``after`` that
cannot be continued without a gap (pruned, or beyond the stream's seq) is
answered 410 ``history_gone``.

``GET <prefix>chat/<slug>/search?q=<text>`` finds a room's messages
(streams.search_messages), newest first, within the same bounds.

``GET <prefix>chat/unread`` tells a signed-in user's unread messages and
mentions per chat room (unread.py), within the same bounds.

``GET <prefix>liveblog/<slug>/stream`` is the live blog as Server-Sent
Events (sse.py), refused with the same JSON errors.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import asdict
from functools import partial, wraps
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from . import attachments, layerwatch, protocol, ratelimit, sessions, sse, streams, unread
from .conf import conf
from .policy import Refused, get_policy, open_stream, readable_stream


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "detail": detail}}, status=status)


def _refused(refused: Refused) -> JsonResponse:
    code = "not_found" if refused.status == 404 else protocol.FORBIDDEN
    return _error(refused.status, code, refused.detail)


def _int_param(
    request: HttpRequest, name: str, default: int | None, low: int, high: int
) -> int | None:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = protocol.parse_uint(raw, high)
        if value < low:
            raise ValueError(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer from {low} to {high}.") from None
    return value


def policy_scope(slug: str, prefix_kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """What the policy gets as ``scope`` for an HTTP request: None, or, under a
    prefix that captures kwargs (``"<slug:site>/live/"``), its ``url_route``
    as a socket's scope has it, so that a policy reading them judges both alike."""
    if not prefix_kwargs:
        return None
    return {"type": "http", "url_route": {"args": (), "kwargs": {**prefix_kwargs, "slug": slug}}}


def client_scope(request: HttpRequest, user: Any) -> dict[str, Any]:
    """What ratelimit's keys read (user, session, client address), as a socket's scope has it."""
    scope = getattr(request, "scope", None)  # ASGI
    if scope is None:  # WSGI: the peer and the proxy header from META
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
        scope = {
            "client": (request.META.get("REMOTE_ADDR") or "", 0),
            "headers": [(b"x-forwarded-for", forwarded.encode("latin-1"))] if forwarded else [],
        }
    return {**scope, "user": user, "session": getattr(request, "session", None)}


# Pages of history being read at once in this process (HTTP_HISTORY_CONCURRENCY),
# and each client's pages over time (HTTP_HISTORY_RATE).
_reading = ratelimit.Gate()
_history_rates = ratelimit.LocalBuckets()


def _bounded_read(
    request: HttpRequest, read: Callable[[HttpRequest, Any], HttpResponse]
) -> HttpResponse:
    """``read(request, user)`` within the client's HTTP_HISTORY_RATE and the
    process's HTTP_HISTORY_CONCURRENCY (history pages and searches alike)."""
    user = getattr(request, "user", None) or AnonymousUser()
    rate = ratelimit.Rate.parse(conf.HTTP_HISTORY_RATE)
    client = ratelimit.owner_key(client_scope(request, user))
    if rate is not None and client is not None:
        if not _history_rates.take(f"history:{client}", rate):
            response = _error(429, protocol.RATE_LIMITED, "Too many history pages; slow down.")
            response["Retry-After"] = str(max(1, round(rate.seconds / rate.count)))
            return response
    if not _reading.enter(conf.HTTP_HISTORY_CONCURRENCY):
        response = _error(
            503, protocol.UNAVAILABLE, "Too many history pages are being read; try again."
        )
        response["Retry-After"] = "1"
        return response
    try:
        return read(request, user)
    finally:
        _reading.leave()


def _read_history(
    kind: str, slug: str, prefix_kwargs: dict[str, Any], request: HttpRequest, user: Any
) -> HttpResponse:
    try:
        stream = readable_stream(kind, slug, user, policy_scope(slug, prefix_kwargs))
    except Refused as refused:
        return _refused(refused)
    max_limit = conf.HTTP_HISTORY_MAX_LIMIT
    try:
        after = _int_param(request, "after", None, 0, protocol.MAX_SEQ)
        before = _int_param(request, "before", None, 1, protocol.MAX_SEQ)
        limit = _int_param(request, "limit", streams.default_page_size(), 1, max_limit)
    except ValueError as exc:
        return _error(400, protocol.BAD_FRAME, str(exc))
    if after is not None and before is not None:
        return _error(400, protocol.BAD_FRAME, "Give after or before, not both.")
    page = streams.read_page(stream, after=after, before=before, limit=limit)
    if page.gone:
        return _error(
            410,
            protocol.HISTORY_GONE,
            f"Events after seq {after} are no longer kept (or never existed); "
            f"reload from the latest (the stream is at seq {page.last_seq}).",
        )
    return HttpResponse(
        protocol.page_text(page.items, page.complete), content_type="application/json"
    )


def read_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """GET and HEAD only, answered in JSON; exempt from CSRF as it changes nothing."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            response = _error(405, "method_not_allowed", "Use GET.")
            response["Allow"] = "GET, HEAD"
            return response
        return view(request, *args, **kwargs)

    return wrapper


@read_only
def messages(request: HttpRequest, slug: str, **prefix_kwargs: Any) -> HttpResponse:
    return _bounded_read(request, partial(_read_history, "chat", slug, prefix_kwargs))


@read_only
def entries(request: HttpRequest, slug: str, **prefix_kwargs: Any) -> HttpResponse:
    return _bounded_read(request, partial(_read_history, "liveblog", slug, prefix_kwargs))


@read_only
def search(request: HttpRequest, slug: str, **prefix_kwargs: Any) -> HttpResponse:
    """The chat room ``slug``'s messages matching ``?q=``, newest first (streams.search_messages)."""
    return _bounded_read(request, partial(_search, slug, prefix_kwargs))


MAX_SEARCH_QUERY = 200  # characters of ``q``
MAX_SEARCH_LIMIT = 50


def _search(
    slug: str, prefix_kwargs: dict[str, Any], request: HttpRequest, user: Any
) -> HttpResponse:
    try:
        stream = readable_stream("chat", slug, user, policy_scope(slug, prefix_kwargs))
    except Refused as refused:
        return _refused(refused)
    query = request.GET.get("q", "").strip()
    if not query or len(query) > MAX_SEARCH_QUERY or "\x00" in query:
        return _error(
            400, protocol.BAD_FRAME, f"q must be 1 to {MAX_SEARCH_QUERY} characters of text."
        )
    try:
        before = _int_param(request, "before", None, 1, protocol.MAX_SEQ)
        limit = _int_param(request, "limit", 20, 1, MAX_SEARCH_LIMIT)
    except ValueError as exc:
        return _error(400, protocol.BAD_FRAME, str(exc))
    found = streams.search_messages(stream, query, before=before, limit=limit)
    return HttpResponse(
        protocol.page_text(found.items, found.complete), content_type="application/json"
    )


@read_only
def unread_counts(request: HttpRequest, **prefix_kwargs: Any) -> HttpResponse:
    """``{"rooms": {slug: {"unread", "mentions", "last_seq", "read_seq"}}}`` for
    the signed-in user: the rooms ``?rooms=a,b`` names, or else those the user
    has read or is a member of (unread.user_rooms), that the policy lets them read."""
    return _bounded_read(request, partial(_unread, prefix_kwargs))


def _unread(prefix_kwargs: dict[str, Any], request: HttpRequest, user: Any) -> HttpResponse:
    if not user.is_authenticated:
        return _error(403, protocol.FORBIDDEN, "Sign in to see unread counts.")
    slugs = None
    if request.GET.get("rooms"):
        slugs = request.GET["rooms"].split(",")
        if len(slugs) > unread.MAX_ROOMS or not all(map(protocol.is_valid_slug, slugs)):
            return _error(
                400,
                protocol.BAD_FRAME,
                f"rooms must be 1 to {unread.MAX_ROOMS} slugs, separated by commas.",
            )
    rooms = unread.readable(
        user,
        unread.user_rooms(user, slugs),
        lambda room: policy_scope(room.slug, prefix_kwargs),
    )
    found = unread.unread(user, rooms)
    return JsonResponse({"rooms": {slug: asdict(state) for slug, state in found.items()}})


@csrf_exempt  # a GET that changes nothing; other methods get the JSON 405
async def stream(request: HttpRequest, slug: str, **prefix_kwargs: Any) -> HttpResponse:
    """The live blog ``slug`` as Server-Sent Events (format: docs/protocol.md)."""
    if request.method != "GET":
        response = _error(405, "method_not_allowed", "Use GET.")
        response["Allow"] = "GET"
        return response
    auser = getattr(request, "auser", None)
    user = await auser() if auser is not None else AnonymousUser()
    scope = policy_scope(slug, prefix_kwargs)
    session = getattr(request, "session", None)
    # A stream counts as a connection of its client (ratelimit.connection_cap).
    slot = await ratelimit.acquire_slot(client_scope(request, user))
    if slot is False:
        return _error(
            429, protocol.RATE_LIMITED, "Too many open connections from you; close some first."
        )
    held = _HeldSlot(slot)
    try:
        opening = await database_sync_to_async(open_stream)(
            "liveblog",
            slug,
            user,
            scope,
            f"sse.{uuid.uuid4().hex}",
            moderation=False,
            session=session,
        )
    except Refused as refused:
        await ratelimit.release_slot(held.take())
        return _refused(refused)
    except BaseException:
        await ratelimit.release_slot(held.take())
        raise
    bad_after = None
    try:
        after = sse.parse_resume(request.headers.get("Last-Event-ID"), request.GET.get("after"))
    except ValueError as exc:
        after, bad_after = None, str(exc)[:32]
    body = sse.event_stream("liveblog", opening, user, scope, session, after, bad_after)
    farewell = protocol.sse_event(
        protocol.encode(protocol.error(protocol.FORBIDDEN, sessions.ended_detail()))
    )
    held.body = sessions.until_session_ends(body, user, session, farewell)
    response = StreamingHttpResponse(held, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


class _HeldSlot:
    """A stream's body that gives its connection slot back when the response
    is closed: Django's ASGI handler calls ``close()`` (in a thread) after the
    body ends, is cancelled, or was never started."""

    def __init__(self, slot: str | None) -> None:
        self.slot = slot
        self.loop = asyncio.get_running_loop()
        self.body: Any = None

    def __aiter__(self) -> Any:
        return aiter(self.body)

    def take(self) -> str | None:
        slot, self.slot = self.slot, None
        return slot

    def close(self) -> None:
        slot = self.take()
        if slot is None:
            return
        try:
            self.loop.call_soon_threadsafe(layerwatch.background, ratelimit.release_slot(slot))
        except RuntimeError:
            pass  # the loop is closed: so is the process's count


# Feeds (issue 14) ---------------------------------------------------------------


def _feed(
    request: HttpRequest, slug: str, prefix_kwargs: dict[str, Any], feed_class: type
) -> HttpResponse:
    user = getattr(request, "user", None) or AnonymousUser()
    try:
        blog = readable_stream("liveblog", slug, user, policy_scope(slug, prefix_kwargs))
    except Refused as refused:
        return _refused(refused)
    return feed_class()(request, blog=blog)


@read_only
def feed(request: HttpRequest, slug: str, **prefix_kwargs: Any) -> HttpResponse:
    """The live blog ``slug``'s published entries as RSS 2.0 (feeds.py)."""
    from .feeds import LiveBlogFeed

    return _feed(request, slug, prefix_kwargs, LiveBlogFeed)


@read_only
def atom_feed(request: HttpRequest, slug: str, **prefix_kwargs: Any) -> HttpResponse:
    """The same as Atom."""
    from .feeds import LiveBlogAtomFeed

    return _feed(request, slug, prefix_kwargs, LiveBlogAtomFeed)


# Attachments (issue 16; attachments.py) ------------------------------------------

_upload_rates = ratelimit.LocalBuckets()  # each user's uploads (ATTACHMENT_RATE)


@csrf_exempt  # only until the size limit is in place: _upload checks CSRF (csrf_protect)
def upload_attachment(request: HttpRequest, slug: str, **prefix_kwargs: Any) -> HttpResponse:
    """``POST <prefix>chat/<slug>/attachments`` (multipart, the file in ``file``):
    201 ``{"id", "name", "type", "size", "url"}``, for a signed-in user who may post.

    A body over ``ATTACHMENT_MAX_BYTES`` is refused (413) before it is read:
    by its Content-Length, else by an upload handler that stops reading at
    the limit. That handler must come first, before anything reads
    ``request.POST``, so Django's CSRF check runs after it (as Django's docs
    show for upload handlers), on every request: the view is not exempt."""
    if request.method != "POST":
        response = _error(405, "method_not_allowed", "Use POST.")
        response["Allow"] = "POST"
        return response
    limit = conf.ATTACHMENT_MAX_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit + attachments.MULTIPART_SLACK:
        return _too_large(limit)
    guard = attachments.SizeLimit(request, limit)
    request.upload_handlers.insert(0, guard)
    return _upload(request, slug, prefix_kwargs, guard)


def _too_large(limit: int) -> JsonResponse:
    return _error(413, "too_large", f"The file is larger than the limit of {limit} bytes.")


@csrf_protect
def _upload(
    request: HttpRequest, slug: str, prefix_kwargs: dict[str, Any], guard: attachments.SizeLimit
) -> HttpResponse:
    user = getattr(request, "user", None) or AnonymousUser()
    if not user.is_authenticated:
        return _error(403, protocol.FORBIDDEN, "Sign in to attach files.")
    scope = policy_scope(slug, prefix_kwargs)
    try:
        room = readable_stream("chat", slug, user, scope)
    except Refused as refused:
        return _refused(refused)
    if not get_policy().can_post(user, room, scope):  # muted users too
        return _error(403, protocol.FORBIDDEN, "You may not post in this room.")
    rate = ratelimit.Rate.parse(conf.ATTACHMENT_RATE)
    if rate is not None and not _upload_rates.take(f"attach:user:{user.pk}", rate):
        response = _error(429, protocol.RATE_LIMITED, "Too many uploads; wait a moment.")
        response["Retry-After"] = str(max(1, round(rate.seconds / rate.count)))
        return response
    upload = request.FILES.get("file")
    if guard.too_large or (upload is not None and upload.size > conf.ATTACHMENT_MAX_BYTES):
        return _too_large(conf.ATTACHMENT_MAX_BYTES)
    if upload is None:
        return _error(
            400, protocol.BAD_FRAME, "Send the file as multipart/form-data, in the field 'file'."
        )
    content_type = attachments.sniff(upload)
    allowed = attachments.allowed_types()
    if content_type not in allowed:
        what = f"a {content_type} file" if content_type else "of no type the server recognises"
        return _error(
            415,
            "unsupported_type",
            f"This file is {what}; allowed here: {', '.join(allowed) or 'none'}.",
        )
    stored = attachments.store(room, user, upload, content_type)
    return JsonResponse(attachments.info(stored, room.slug), status=201)


@read_only
def attachment(
    request: HttpRequest, slug: str, attachment_id: int, **prefix_kwargs: Any
) -> HttpResponse:
    """``GET <prefix>chat/<slug>/attachments/<id>``: the file, to whoever may read
    the room, while its message is not removed (attachments.servable)."""
    user = getattr(request, "user", None) or AnonymousUser()
    try:
        room = readable_stream("chat", slug, user, policy_scope(slug, prefix_kwargs))
    except Refused as refused:
        return _refused(refused)
    found = attachments.servable(room, attachment_id, user)
    missing = _error(404, "not_found", f"No attachment {attachment_id} in this room.")
    if found is None:
        return missing
    try:
        handle = found.file.open("rb")
    except OSError:  # the file is gone from the storage
        return missing
    response = FileResponse(
        handle,
        content_type=found.content_type,
        as_attachment=not found.is_image,  # images inline, anything else downloaded
        filename=found.name,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response
