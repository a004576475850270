"""RSS and Atom feeds of a live blog's published entries (django.contrib.syndication).

Mounted by ``django_liverooms.urls`` as ``liveblog/<slug>/feed/`` (RSS 2.0)
and ``liveblog/<slug>/feed/atom/``; views.py checks the read policy first.
Only live entries (published, not removed) are listed, newest first; drafts,
scheduled, unpublished and deleted entries never are.
"""

from __future__ import annotations

from typing import Any

from django.contrib.syndication.views import Feed
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.feedgenerator import Atom1Feed
from django.utils.translation import gettext as _

from . import streams, structured
from .conf import conf
from .models import Entry, LiveBlog, display_name
from .sanitizer import clean_html


def page_url(blog: LiveBlog) -> str:
    """Where readers see the blog: ``LIVEBLOG_PAGE_URL`` with its slug, else the feed."""
    template = conf.LIVEBLOG_PAGE_URL
    if template:
        return template.format(slug=blog.slug)
    try:
        return reverse("liverooms:feed", args=[blog.slug])
    except NoReverseMatch:  # mounted under a prefix that captures kwargs
        return "/"


class LiveBlogFeed(Feed):
    """RSS 2.0; :class:`LiveBlogAtomFeed` is the same as Atom."""

    def get_object(self, request: HttpRequest, blog: LiveBlog, **kwargs: Any) -> LiveBlog:
        return blog  # found, and allowed, by views.feed

    def title(self, blog: LiveBlog) -> str:
        return blog.title

    def link(self, blog: LiveBlog) -> str:
        return page_url(blog)

    def description(self, blog: LiveBlog) -> str:
        return blog.description or _("Live blog: %(title)s") % {"title": blog.title}

    def items(self, blog: LiveBlog) -> list[Entry]:
        return streams.feed_entries(blog, conf.HISTORY_LIMIT)

    def item_title(self, entry: Entry) -> str:
        return structured.headline(entry.title, structured.plain_text(entry.body))

    def item_description(self, entry: Entry) -> str:
        return clean_html(entry.body)  # sanitised again, as when rendered

    def item_link(self, entry: Entry) -> str:
        return f"{page_url(entry.blog)}#entry-{entry.pk}"

    def item_guid(self, entry: Entry) -> str:
        return f"{page_url(entry.blog)}#entry-{entry.pk}"

    def item_pubdate(self, entry: Entry) -> Any:
        return entry.published_at

    def item_updateddate(self, entry: Entry) -> Any:
        return entry.modified

    def item_author_name(self, entry: Entry) -> str | None:
        return display_name(entry.author) if entry.author is not None else None


class LiveBlogAtomFeed(LiveBlogFeed):
    feed_type = Atom1Feed
    subtitle = LiveBlogFeed.description
