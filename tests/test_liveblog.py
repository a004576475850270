"""The live blog as a publishing product (issue 14): server-rendered entries,
structured data, live status, pinned and key entries, scheduled publishing,
the feed, reactions and embeds. Browser tests: tests/test_liveblog_browser.py."""

import json
import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django.test import RequestFactory, override_settings

from django_liverooms.models import Entry, LiveBlogEvent

from .factories import make_blog, make_user, publish_entry


def render(source, user=None, **context):
    request = RequestFactory().get("/")
    request.user = user or AnonymousUser()
    return Template("{% load liverooms %}" + source).render(
        Context({"request": request, **context})
    )


def widget_config(html):
    [raw] = re.findall(r'<script type="application/json">(.*?)</script>', html, re.S)
    return json.loads(raw)


def articles(html):
    """(id, seq) of each rendered entry, in page order."""
    return [
        (int(entry_id), int(seq))
        for entry_id, seq in re.findall(
            r'<article class="liverooms-entry[^"]*" id="entry-(\d+)" data-entry-id="\d+" data-seq="(\d+)"',
            html,
        )
    ]


def entry_seq(entry):
    return LiveBlogEvent.objects.filter(type="entry", object_id=entry.pk).latest("seq").seq


# -- server-rendered entries ----------------------------------------------------


@pytest.mark.django_db
def test_the_latest_entries_are_rendered_newest_first_with_their_seqs():
    blog = make_blog()
    author = make_user(first_name="Ada", last_name="Reporter")
    first = publish_entry(blog, title="Kick-off", author=author)
    second = publish_entry(blog, title="Goal", body="<p>1-0 <b>Bold</b></p>")
    html = render('{% liverooms_liveblog "match-day" %}')
    assert articles(html) == [(second.pk, entry_seq(second)), (first.pk, entry_seq(first))]
    assert "<p>1-0 <b>Bold</b></p>" in html  # the body is HTML
    assert "Ada Reporter" in html
    assert f'<time datetime="{first.published_at.isoformat()}' in html
    # The widget resumes after the seq the page was read at: no duplicate.
    blog.refresh_from_db()
    assert widget_config(html)["after"] == blog.last_seq
    assert "data-liverooms-empty hidden" in html


@pytest.mark.django_db
def test_the_empty_state_only_when_nothing_is_live():
    blog = make_blog()
    Entry.objects.create(blog=blog, title="Draft", body="<p>secret draft</p>")
    html = render('{% liverooms_liveblog "match-day" %}')
    assert articles(html) == []
    assert "data-liverooms-empty>" in html
    assert "secret draft" not in html and "Draft" not in html


@pytest.mark.django_db
def test_unpublished_and_deleted_entries_are_never_rendered():
    blog = make_blog()
    kept = publish_entry(blog, title="Kept", body="<p>kept text</p>")
    unpublished = publish_entry(blog, title="Withdrawn", body="<p>withdrawn text</p>")
    deleted = publish_entry(blog, title="Deleted", body="<p>deleted text</p>")
    unpublished.status = Entry.STATUS.draft
    unpublished.save()
    deleted.delete()
    html = render('{% liverooms_liveblog "match-day" %}')
    assert [entry_id for entry_id, _ in articles(html)] == [kept.pk]
    for gone in ("withdrawn text", "Withdrawn", "deleted text", "Deleted"):
        assert gone not in html


@pytest.mark.django_db
def test_a_republished_entry_is_placed_by_its_new_publication():
    blog = make_blog()
    first = publish_entry(blog, title="First")
    second = publish_entry(blog, title="Second")
    first.status = Entry.STATUS.draft
    first.save()
    first.status = Entry.STATUS.published
    first.save()
    html = render('{% liverooms_liveblog "match-day" %}')
    assert [entry_id for entry_id, _ in articles(html)] == [first.pk, second.pk]
    assert articles(html)[0][1] == entry_seq(first) > entry_seq(second)


@pytest.mark.django_db
def test_the_body_is_sanitised_again_when_rendered():
    blog = make_blog()
    entry = publish_entry(blog)
    # Written around save() (a raw UPDATE, an older sanitiser): still made safe.
    Entry.objects.filter(pk=entry.pk).update(
        body='<p>ok</p><script>alert(1)</script><img src=x onerror="x()">'
    )
    html = render('{% liverooms_liveblog "match-day" %}')
    assert "<p>ok</p>" in html
    assert "<script>alert" not in html and "onerror" not in html


@pytest.mark.django_db
@override_settings(LIVEROOMS={"HISTORY_LIMIT": 3})
def test_at_most_history_limit_entries_are_rendered():
    blog = make_blog()
    entries = [publish_entry(blog, title=f"E{i}") for i in range(5)]
    html = render('{% liverooms_liveblog "match-day" %}')
    assert [entry_id for entry_id, _ in articles(html)] == [e.pk for e in entries[:1:-1]]


@pytest.mark.django_db
def test_a_pruned_entry_event_still_renders_the_entry():
    from django_liverooms import streams

    blog = make_blog()
    old = publish_entry(blog, title="Old")
    new = publish_entry(blog, title="New")
    streams.prune_events(blog, keep_last=1, older_than=None)
    html = render('{% liverooms_liveblog "match-day" %}')
    assert articles(html) == [(new.pk, entry_seq(new)), (old.pk, 0)]
