"""The demo pages. The live parts are the app's template tags (see the templates)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from django_liverooms.models import LiveBlog, Room


def ensure_session(request: HttpRequest) -> None:
    """Give an anonymous visitor a session now, before the page opens a socket.

    Guests are named after their session ("Guest 1a2b"), so with a session
    the name stays the same across reloads, tabs and reconnects, and a
    message re-sent after a reconnect is recognised as the same send.
    """
    if request.session.session_key is None:
        request.session.save()


def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "demo/home.html",
        {"blogs": LiveBlog.objects.all()},
    )


def chat(request: HttpRequest, slug: str) -> HttpResponse:
    ensure_session(request)
    room = get_object_or_404(Room, slug=slug)
    return render(request, "demo/chat.html", {"room": room})


def liveblog(request: HttpRequest, slug: str) -> HttpResponse:
    ensure_session(request)
    blog = get_object_or_404(LiveBlog, slug=slug)
    # The admin's "add entry" form, with this blog and "published" filled in.
    add_entry_url = (
        reverse("admin:django_liverooms_entry_add") + f"?blog={blog.pk}&status=published"
    )
    return render(request, "demo/liveblog.html", {"blog": blog, "add_entry_url": add_entry_url})
