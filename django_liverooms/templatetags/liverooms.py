"""Drop-in widgets: a live chat or live blog from one template tag.

::

    {% load liverooms %}
    <head>... {% liverooms_script %} ...</head>
    {% liverooms_chat "lobby" %}
    {% liverooms_liveblog "match-day" %}

The widgets render ``django_liverooms/chat.html`` and
``django_liverooms/liveblog.html`` (or ``unavailable.html`` when the stream
does not exist or the visitor may not read it), which a project overrides
the usual way; ``widgets.js`` fills them in. See docs/client.md.
"""

from __future__ import annotations

import logging
from typing import Any

from django import template
from django.contrib.auth.models import AnonymousUser
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, json_script
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from .. import protocol, reactions, streams, structured, unread
from ..attachments import allowed_types
from ..conf import conf
from ..embeds import embed_for
from ..models import Room, display_name
from ..policy import Refused, readable_stream
from ..sanitizer import clean_html

register = template.Library()
logger = logging.getLogger(__name__)

# The widgets' strings, translated here and handed to widgets.js in the
# config; {name} placeholders are filled in by the script.
STRINGS = {
    "connecting": _("Connecting…"),
    "open": _("Live"),
    "open_sse": _("Live (streaming)"),
    "offline": _("Offline, reconnecting…"),
    "retrying": _("Offline, reconnecting in {seconds} s…"),
    "closed": _("Disconnected"),
    "closed_forbidden": _("You may not read this."),
    "closed_missing": _("This no longer exists."),
    "you_are": _("You are {name}."),
    "online": _("Online ({count}):"),
    "more": _("and {count} more"),
    "typing": _("{name} is typing…"),
    "placeholder": _("Write a message…"),
    "placeholder_offline": _("Offline: messages are sent when the connection is back."),
    "cannot_post": _("You may read this room but not post in it."),
    "sending": _("sending…"),
    "edited": _("edited"),
    "deleted": _("This message was deleted."),
    "readers": _("Readers: {count}"),
    "error": _("Error ({code}): {detail}"),
    "error_rate_limited": _("You are sending too fast. Wait a moment and try again."),
    "error_too_long": _("That message is too long."),
    "error_forbidden": _("You may not do that here."),
    "error_bad_frame": _("That message was refused: {detail}"),
    "error_rejected": _("That message was refused: {detail}"),
    # Replies and reactions to chat messages (issue 16).
    "reply": _("Reply"),
    "replying_to": _("Replying to {name}: {body}"),
    "cancel_reply": _("Cancel the reply"),
    "react_to": _("React"),
    "reaction_label": _("{emoji} {count}: react with {emoji}"),
    "error_slow_mode": _("Slow mode: wait {retry_after} s before your next message."),
    # Live blog coverage (issue 14).
    "status_upcoming": _("Upcoming"),
    "status_live": _("Live coverage"),
    "status_ended": _("Coverage ended"),
    "starts": _("starts"),
    "pinned": _("Pinned"),
    "key": _("Key entry"),
    "new_entry": _("1 new entry"),
    "new_entries": _("{count} new entries"),
    "react": _("React with {emoji}"),
    "embed_title": _("Embedded content from {provider}"),
    "load_older": _("Load older entries"),
    "load_earlier": _("Load earlier messages"),
    "error_load_earlier": _("Earlier messages could not be loaded ({detail}). Try again."),
    "error_load_older": _("Older entries could not be loaded ({detail}). Try again."),
    "loading": _("Loading…"),
    # The chat's message menu (issue 16).
    "actions": _("Actions for the message by {name}"),
    "edit": _("Edit"),
    "delete": _("Delete"),
    "mute": _("Mute"),
    "unmute": _("Unmute"),
    "edit_label": _("Edit the message: Enter saves, Escape cancels."),
    "confirm_delete": _("Delete this message?"),
    "muted": _("{name} is muted in this room."),
    "unmuted": _("{name} is no longer muted in this room."),
    "not_connected": _("Not connected: try again when the connection is back."),
    "error_post_forbidden": _("You may not post here now: a moderator may have muted you."),
    # Chat attachments (issue 16).
    "uploading": _("Uploading {name}…"),
    "remove_attachment": _("Remove {name}"),
    "too_many_attachments": _("At most {count} files per message."),
    "error_upload": _("The file could not be attached: {detail}"),
    # Flags (issue 16; moderation.py): the message menu's "Report".
    "report": _("Report"),
    "report_reason": _("Report this message to the moderators. Why? (optional)"),
    "flagged": _("Reported. Thank you."),
}

KINDS = {
    # tag kind: (URL name of its HTTP history, template)
    "chat": ("liverooms:messages", "django_liverooms/chat.html"),
    "liveblog": ("liverooms:entries", "django_liverooms/liveblog.html"),
}


def _nonce(context: template.Context) -> str | None:
    # django-csp puts it on the request; Django 6.0's csp() context processor in the context.
    request = context.get("request")
    return getattr(request, "csp_nonce", None) or context.get("csp_nonce") or None


@register.simple_tag(takes_context=True)
def liverooms_script(context: template.Context) -> str:
    """The widgets' stylesheet and script (an ES module), with the CSP nonce if any."""
    nonce = _nonce(context)
    css = static("django_liverooms/liverooms.css")
    js = static("django_liverooms/widgets.js")
    if nonce:
        return format_html(
            '<link rel="stylesheet" href="{}" nonce="{}">\n'
            '<script type="module" src="{}" nonce="{}"></script>',
            css,
            nonce,
            js,
            nonce,
        )
    return format_html(
        '<link rel="stylesheet" href="{}">\n<script type="module" src="{}"></script>', css, js
    )


def _reverse(name: str, slug: str) -> str | None:
    # Optional: without the app's urls (or under a prefix that captures
    # kwargs) the widget works without history paging and SSE.
    try:
        return reverse(name, args=[slug])
    except NoReverseMatch:
        return None


# Set in an anonymous visitor's new session so that SessionMiddleware saves it
# (it saves no empty session, modified or not): a guest's name comes from the
# session key, so without it every page load would be a new guest.
GUEST_SESSION_KEY = "_liverooms_guest"


def keep_guest_session(request: Any, user: Any) -> None:
    session = getattr(request, "session", None)
    if session is None or user.is_authenticated or session.session_key is not None:
        return  # no session middleware, a user, or a session that is saved already
    session[GUEST_SESSION_KEY] = True


def render_widget(context: template.Context, kind: str, slug: Any) -> str:
    slug = "" if slug is None else str(slug)
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user") or AnonymousUser()
    history_url, template_name = KINDS[kind]
    try:
        stream = readable_stream(kind, slug, user)
    except Refused as refused:
        return render_to_string(
            "django_liverooms/unavailable.html",
            {"kind": kind, "slug": slug, "missing": refused.status == 404},
            request=request,
        )
    if kind == "chat":
        keep_guest_session(request, user)
    config = {
        "kind": kind,
        "slug": slug,
        "websocket": f"{conf.WEBSOCKET_PREFIX}{kind}/{slug}/",
        "history": _reverse(history_url, slug),
        "stream": _reverse("liverooms:stream", slug) if kind == "liveblog" else None,
        "strings": {key: str(value) for key, value in STRINGS.items()},
        "page_size": streams.default_page_size(),  # "load older/earlier"
    }
    if kind == "chat":  # attachments (issue 16): signed-in users upload, with Django's CSRF token
        config["attachments"] = _reverse("liverooms:attachments", slug)
        config["attachment_types"] = allowed_types()
        config["max_attachments"] = protocol.MAX_ATTACHMENTS
        config["reactions"] = reactions.allowed()  # reactions to messages
        if request is not None and user.is_authenticated:
            config["csrf_token"] = get_token(request)
    context_data = {
        "stream": stream,
        "widget_id": f"liverooms-{kind}-{slug}",
        "max_length": conf.MAX_BODY_LENGTH,
    }
    if kind == "liveblog":
        context_data.update(liveblog_context(stream, request, _nonce(context)))
        config["after"] = context_data["after"]
        config["older"] = context_data["older"]
        config["reactions"] = reactions.allowed()
    context_data["config"] = json_script(config)
    return render_to_string(template_name, context_data, request=request)


def fill_in(text: str, **values: str) -> str:
    """A STRINGS entry filled in as widgets.js does ({name} placeholders)."""
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def shown_entry(shown: streams.ShownEntry) -> dict[str, Any]:
    """An entry as the templates render it; the body sanitised again with
    today's ENTRY_ALLOWED_TAGS (it was when saved, maybe under other rules)."""
    entry = shown.entry
    embed = embed_for(entry.embed_url)
    return {
        "id": entry.pk,
        "seq": shown.seq,
        "title": entry.title,
        "body": mark_safe(clean_html(entry.body)),  # noqa: S308 - sanitised just now
        "author": display_name(entry.author) if entry.author is not None else "",
        "pinned": entry.pinned,
        "key": entry.key,
        "headline": structured.headline(entry.title, structured.plain_text(entry.body)),
        "embed": embed,
        "embed_title": fill_in(
            str(STRINGS["embed_title"]), provider=embed.provider if embed else ""
        ),
        "image_url": entry.image.url if entry.image else "",
        "image_alt": entry.image_alt,
        "published": entry.published_at,
        "published_iso": entry.published_at.isoformat(),  # as in its ``entry`` frame
    }


def liveblog_context(blog: Any, request: Any, nonce: str | None) -> dict[str, Any]:
    """The server-rendered part of a live blog: its latest entries, the seq
    the widget resumes after (so that it shows each entry once) and their
    schema.org structured data."""
    page = streams.live_entries(blog, conf.HISTORY_LIMIT)
    page_url = request.build_absolute_uri(request.path) if request is not None else None
    data = structured.live_blog_posting(blog, [s.entry for s in page.entries], page_url)
    return {
        "entries": [shown_entry(shown) for shown in page.entries],
        "key_entries": [shown_entry(shown) for shown in page.key_entries],
        "after": page.last_seq,
        "older": page.older,
        "status_text": STRINGS.get(f"status_{blog.status}", blog.status),
        "structured_data": structured.ld_json_script(data, nonce),
    }


class StreamNode(template.Node):
    def __init__(self, tag: str, kind: str, slug: template.base.FilterExpression):
        self.tag = tag
        self.kind = kind
        self.slug = slug

    def render(self, context: template.Context) -> str:
        # A slug from a variable that names no stream renders unavailable.html.
        slug = self.slug.resolve(context)
        if slug in (None, "") and self._undefined(context):
            message = (
                f"{{% {self.tag} {self.slug.token} %}}: the variable {self.slug.var!s} "
                "is not defined in the template context (quote a literal slug: "
                f'{{% {self.tag} "lobby" %}}).'
            )
            # Like {% url %}, a tag that cannot do without its argument says so
            # while developing; in production the page still renders, with the
            # "no such stream" notice, and the log names the variable.
            if context.template is not None and context.template.engine.debug:
                raise template.TemplateSyntaxError(message)
            logger.warning("%s", message)
        return render_widget(context, self.kind, slug)

    def _undefined(self, context: template.Context) -> bool:
        if not self.slug.is_var:
            return False
        try:
            self.slug.var.resolve(context)
        except template.VariableDoesNotExist:
            return True
        return False


def _stream_tag(kind: str):
    def compile_tag(parser: template.base.Parser, token: template.base.Token) -> StreamNode:
        bits = token.split_contents()
        if len(bits) != 2:
            raise template.TemplateSyntaxError(
                f'{bits[0]} takes one argument, the slug: {{% {bits[0]} "lobby" %}}'
            )
        slug = bits[1]
        literal = len(slug) >= 2 and slug[0] == slug[-1] and slug[0] in "'\""
        if literal and not protocol.is_valid_slug(slug[1:-1]):
            raise template.TemplateSyntaxError(
                f"{bits[0]}: {slug} is not a slug (1 to 64 characters of a-z 0-9 - _)."
            )
        return StreamNode(bits[0], kind, parser.compile_filter(slug))

    return compile_tag


register.tag("liverooms_chat", _stream_tag("chat"))
register.tag("liverooms_liveblog", _stream_tag("liveblog"))


@register.simple_tag(takes_context=True)
def liverooms_unread_count(context: template.Context, room: Any) -> int:
    """The unread messages of ``request.user`` in a chat room (a Room or a
    slug): 0 for guests and for rooms that do not exist or they may not read.
    ``{% liverooms_unread_count room as n %}{% if n %}...{% endif %}``."""
    user = _context_user(context)
    if not user.is_authenticated:
        return 0
    if not isinstance(room, Room):
        room = streams.get_stream("chat", "" if room is None else str(room))
        if room is None:
            return 0
    return unread.unread_counts(user, [room]).get(room.slug, 0)


@register.simple_tag(takes_context=True)
def liverooms_rooms(context: template.Context) -> list[unread.Listed]:
    """The chat rooms the page's user may read, with their unread counts:
    ``{% liverooms_rooms as rooms %}{% for r in rooms %}{{ r.title }}
    {{ r.unread }} {{ r.mentions }} {{ r.room.slug }}{% endfor %}``
    (unread.directory: direct rooms first, titled by the other member)."""
    return unread.directory(_context_user(context))


def _context_user(context: template.Context) -> Any:
    request = context.get("request")
    return getattr(request, "user", None) or context.get("user") or AnonymousUser()
