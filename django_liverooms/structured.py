"""schema.org ``LiveBlogPosting`` structured data for a live blog page.

Search engines show a "LIVE" badge for pages that carry it. Pure functions:
the template tag passes in the blog, the entries it renders and the page's
URL, and puts the result in a ``<script type="application/ld+json">`` with
:func:`ld_json_script`, escaped so that no entry text can end the script.
"""

from __future__ import annotations

import html
import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils.html import format_html, strip_tags
from django.utils.safestring import SafeString, mark_safe

HEADLINE_MAX_LENGTH = 110  # what search engines show of a headline

# As django.utils.html.json_script: inside <script>, "<", ">" and "&" as
# JSON escapes, so "</script>" or "<!--" in any string cannot end the element.
_SCRIPT_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


def plain_text(body_html: str) -> str:
    """An entry body as text: tags dropped, entities decoded, spaces squeezed."""
    return " ".join(html.unescape(strip_tags(body_html)).split())


def headline(title: str, text: str) -> str:
    """The title, or else the start of the text, cut to HEADLINE_MAX_LENGTH."""
    line = title.strip() or text
    if len(line) <= HEADLINE_MAX_LENGTH:
        return line
    return line[: HEADLINE_MAX_LENGTH - 1].rstrip() + "\u2026"


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def blog_posting(entry: Any, page_url: str | None) -> dict[str, Any]:
    """One entry as a ``BlogPosting`` (a ``liveBlogUpdate``)."""
    text = plain_text(entry.body)
    posting: dict[str, Any] = {
        "@type": "BlogPosting",
        "headline": headline(entry.title, text),
        "datePublished": _iso(entry.published_at),
        "dateModified": _iso(entry.modified),
        "articleBody": text,
    }
    if page_url:
        posting["url"] = f"{page_url}#entry-{entry.pk}"
    if entry.author is not None:
        from .models import display_name

        posting["author"] = {"@type": "Person", "name": display_name(entry.author)}
    return posting


def live_blog_posting(blog: Any, entries: list[Any], page_url: str | None) -> dict[str, Any]:
    """The ``LiveBlogPosting`` of ``blog`` with ``entries`` (newest first) as
    its ``liveBlogUpdate``. ``coverageStartTime`` is the blog's coverage start
    (else its creation); ``coverageEndTime`` its coverage end, when known."""
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "LiveBlogPosting",
        "headline": headline(blog.title, ""),
        "coverageStartTime": _iso(blog.coverage_start or blog.created),
    }
    if blog.coverage_end is not None:
        data["coverageEndTime"] = _iso(blog.coverage_end)
    if blog.description:
        data["description"] = blog.description
    if page_url:
        data["url"] = page_url
    data["datePublished"] = _iso(blog.created)
    latest = max((e.modified for e in entries), default=None)
    data["dateModified"] = _iso(max(latest, blog.modified) if latest else blog.modified)
    data["liveBlogUpdate"] = [blog_posting(entry, page_url) for entry in entries]
    return data


def ld_json_script(data: dict[str, Any], nonce: str | None = None) -> SafeString:
    """``data`` in a ``<script type="application/ld+json">``, safely escaped."""
    text = json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False).translate(_SCRIPT_ESCAPES)
    if nonce:
        return format_html(
            '<script type="application/ld+json" nonce="{}">{}</script>', nonce, mark_safe(text)
        )
    return format_html('<script type="application/ld+json">{}</script>', mark_safe(text))
