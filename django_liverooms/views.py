"""HTTP history API: the stored frames of a stream as JSON.

``GET <prefix>chat/<slug>/messages?after=<seq>&limit=<n>`` and
``GET <prefix>liveblog/<slug>/entries?after=<seq>&limit=<n>`` return
``{"items": [<frame>, ...], "complete": bool}``: the events after ``after``
(default 0) in seq order, ``complete`` false when more follow.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from . import protocol, streams
from .conf import conf
from .policy import get_policy


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "detail": detail}}, status=status)


def _int_param(request: HttpRequest, name: str, default: int, low: int, high: int) -> int:
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
    stream = streams.get_stream(kind, slug)
    if stream is None:
        return _error(404, "not_found", f"No {kind} stream {slug[:64]!r}.")
    user = getattr(request, "user", None) or AnonymousUser()
    if not get_policy().can_read(user, stream, None):
        return _error(403, protocol.FORBIDDEN, "You may not read this stream.")
    max_limit = conf.HTTP_HISTORY_MAX_LIMIT
    try:
        after = _int_param(request, "after", 0, 0, protocol.MAX_SEQ)
        limit = _int_param(request, "limit", min(conf.HISTORY_LIMIT, max_limit) or 1, 1, max_limit)
    except ValueError as exc:
        return _error(400, protocol.BAD_FRAME, str(exc))
    history = streams.read_history(stream, after=after, limit=limit)
    return HttpResponse(
        protocol.page_text(history.items, history.complete), content_type="application/json"
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
