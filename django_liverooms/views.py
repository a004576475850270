"""HTTP history API: the stored frames of a stream as JSON.

``GET <prefix>chat/<slug>/messages?after=<seq>&limit=<n>`` and
``GET <prefix>liveblog/<slug>/entries?after=<seq>&limit=<n>`` return
``{"items": [<frame>, ...], "complete": bool}``: the events after ``after``
(default: from the oldest kept) in seq order, ``complete`` false when more
follow. ``?before=<seq>`` pages backwards: the ``limit`` events before it, in
seq order, ``complete`` false when earlier ones are kept. An ``after`` that
cannot be continued without a gap (pruned, or beyond the stream's seq) is
answered 410 ``history_gone``.

``GET <prefix>liveblog/<slug>/stream`` is the live blog as Server-Sent
Events (sse.py), refused with the same JSON errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from . import protocol, sse, streams
from .conf import conf
from .policy import Refused, open_stream, readable_stream


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


def _history(request: HttpRequest, kind: str, slug: str) -> HttpResponse:
    user = getattr(request, "user", None) or AnonymousUser()
    try:
        stream = readable_stream(kind, slug, user)
    except Refused as refused:
        return _refused(refused)
    max_limit = conf.HTTP_HISTORY_MAX_LIMIT
    try:
        after = _int_param(request, "after", None, 0, protocol.MAX_SEQ)
        before = _int_param(request, "before", None, 1, protocol.MAX_SEQ)
        limit = _int_param(request, "limit", min(conf.HISTORY_LIMIT, max_limit) or 1, 1, max_limit)
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
def messages(request: HttpRequest, slug: str) -> HttpResponse:
    return _history(request, "chat", slug)


@read_only
def entries(request: HttpRequest, slug: str) -> HttpResponse:
    return _history(request, "liveblog", slug)


@csrf_exempt  # a GET that changes nothing; other methods get the JSON 405
async def stream(request: HttpRequest, slug: str) -> HttpResponse:
    """The live blog ``slug`` as Server-Sent Events (format: docs/protocol.md)."""
    if request.method != "GET":
        response = _error(405, "method_not_allowed", "Use GET.")
        response["Allow"] = "GET"
        return response
    auser = getattr(request, "auser", None)
    user = await auser() if auser is not None else AnonymousUser()
    # As for the history API, the policy gets no scope (this is not a socket).
    session = getattr(request, "session", None)
    try:
        opening = await database_sync_to_async(open_stream)(
            "liveblog",
            slug,
            user,
            None,
            f"sse.{uuid.uuid4().hex}",
            moderation=False,
            session=session,
        )
    except Refused as refused:
        return _refused(refused)
    bad_after = None
    try:
        after = sse.parse_resume(request.headers.get("Last-Event-ID"), request.GET.get("after"))
    except ValueError as exc:
        after, bad_after = None, str(exc)[:32]
    response = StreamingHttpResponse(
        sse.event_stream("liveblog", opening, user, session, after, bad_after),
        content_type="text/event-stream",
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response
