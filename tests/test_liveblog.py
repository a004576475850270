"""The live blog as a publishing product (issue 14): server-rendered entries,
structured data, live status, pinned and key entries, scheduled publishing,
the feed, reactions and embeds. Browser tests: tests/test_liveblog_browser.py."""

import json
import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django.test import RequestFactory, override_settings

from django_liverooms.models import Entry, LiveBlog, LiveBlogEvent

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
@override_settings(LIVEROOMS={"HISTORY_LIMIT": 3})
def test_the_widget_offers_older_entries_only_when_there_are_more(client):
    blog = make_blog()
    entries = [publish_entry(blog, title=f"E{i}") for i in range(3)]
    config = widget_config(render('{% liverooms_liveblog "match-day" %}'))
    assert config["older"] is False and config["page_size"] == 3
    entries[2].pin()  # shown first whatever its age: not counted against the limit
    entries.append(publish_entry(blog, title="E3"))
    config = widget_config(render('{% liverooms_liveblog "match-day" %}'))
    assert config["older"] is False
    entries.append(publish_entry(blog, title="E4"))
    config = widget_config(render('{% liverooms_liveblog "match-day" %}'))
    assert config["older"] is True
    # What the widget then reads: the events before the oldest entry shown.
    html = render('{% liverooms_liveblog "match-day" %}')
    oldest_shown = min(seq for entry_id, seq in articles(html) if entry_id != entries[2].pk)
    response = client.get(f"/live/liveblog/match-day/entries?before={oldest_shown}")
    assert response.status_code == 200
    page = response.json()
    assert [f["id"] for f in page["items"] if f["type"] == "entry"] == [entries[0].pk]
    assert page["complete"] is True


@pytest.mark.django_db
def test_a_pruned_entry_event_still_renders_the_entry():
    from django_liverooms import streams

    blog = make_blog()
    old = publish_entry(blog, title="Old")
    new = publish_entry(blog, title="New")
    streams.prune_events(blog, keep_last=1, older_than=None)
    html = render('{% liverooms_liveblog "match-day" %}')
    assert articles(html) == [(new.pk, entry_seq(new)), (old.pk, 0)]


# -- structured data (schema.org LiveBlogPosting) --------------------------------


def structured_data(html):
    [raw] = re.findall(r'<script type="application/ld\+json"[^>]*>(.*?)</script>', html, re.S)
    return json.loads(raw)


@pytest.mark.django_db
def test_the_widget_carries_live_blog_posting_structured_data():
    from datetime import datetime, timezone

    blog = make_blog()
    blog.description = "All the action"
    blog.coverage_start = datetime(2026, 12, 1, 15, 0, tzinfo=timezone.utc)
    blog.coverage_end = datetime(2026, 12, 1, 17, 0, tzinfo=timezone.utc)
    blog.save()
    author = make_user(first_name="Ada", last_name="Reporter")
    first = publish_entry(blog, title="Kick-off", author=author)
    second = publish_entry(blog, title="", body="<p>A long body &amp; more. " + "x" * 200 + "</p>")
    Entry.objects.create(blog=blog, title="Draft", body="<p>draft</p>")
    data = structured_data(render('{% liverooms_liveblog "match-day" %}'))
    assert data["@context"] == "https://schema.org"
    assert data["@type"] == "LiveBlogPosting"
    assert data["headline"] == "Match day" and data["description"] == "All the action"
    assert data["coverageStartTime"] == "2026-12-01T15:00:00+00:00"
    assert data["coverageEndTime"] == "2026-12-01T17:00:00+00:00"
    assert data["url"] == "http://testserver/"
    updates = data["liveBlogUpdate"]
    assert [u["@type"] for u in updates] == ["BlogPosting", "BlogPosting"]
    for update in updates:  # what search engines require of each update
        assert update["headline"] and update["datePublished"] and update["articleBody"]
    assert updates[1]["headline"] == "Kick-off"
    assert updates[1]["articleBody"] == "We are under way."  # text, not HTML
    assert updates[1]["author"] == {"@type": "Person", "name": "Ada Reporter"}
    assert updates[1]["datePublished"] == first.published_at.isoformat()
    assert updates[1]["url"] == f"http://testserver/#entry-{first.pk}"
    # No title: the start of the text, cut to 110 characters.
    assert updates[0]["headline"].startswith("A long body & more. xxx")
    assert len(updates[0]["headline"]) == 110 and updates[0]["headline"].endswith("…")
    assert updates[0]["datePublished"] == second.published_at.isoformat()


@pytest.mark.django_db
def test_an_empty_blog_has_structured_data_without_updates():
    blog = LiveBlog.objects.create(slug="match-day", title="Match day", status="upcoming")
    data = structured_data(render('{% liverooms_liveblog "match-day" %}'))
    assert data["liveBlogUpdate"] == []
    # An upcoming blog without a coverage start: its creation.
    assert data["coverageStartTime"] == blog.created.isoformat()
    assert "coverageEndTime" not in data
    blog.status = "live"
    blog.save()
    data = structured_data(render('{% liverooms_liveblog "match-day" %}'))
    assert data["coverageStartTime"] == blog.coverage_start.isoformat() > blog.created.isoformat()


@pytest.mark.django_db
def test_no_entry_text_can_end_the_structured_data_script():
    blog = make_blog()
    hostile = '</script><script>alert(1)</script><!-- & "quoted"'
    blog.title = hostile
    blog.description = hostile
    blog.save()
    # Titles are plain text: anything goes in them; bodies are sanitised HTML
    # whose text can still spell a closing tag with entities.
    publish_entry(blog, title=hostile, body="<p>&lt;/script&gt;&lt;script&gt;alert(2)</p>")
    html = render('{% liverooms_liveblog "match-day" %}')
    [raw] = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert "<" not in raw and ">" not in raw  # so no </script> nor <!--
    data = json.loads(raw)
    assert data["description"] == hostile
    assert data["liveBlogUpdate"][0]["headline"] == hostile
    assert data["liveBlogUpdate"][0]["articleBody"] == "</script><script>alert(2)"
    assert html.count("<script") == 2  # the config and the structured data, nothing else


@pytest.mark.django_db
def test_the_structured_data_carries_the_csp_nonce():
    make_blog()
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    request.csp_nonce = "abc"
    html = Template('{% load liverooms %}{% liverooms_liveblog "match-day" %}').render(
        Context({"request": request})
    )
    assert '<script type="application/ld+json" nonce="abc">' in html


# -- live status ------------------------------------------------------------------


def status_events(blog):
    return [
        json.loads(frame)
        for frame in blog.events.filter(type="liveblog.status").values_list("frame", flat=True)
    ]


@pytest.mark.django_db
def test_a_new_blog_is_live_from_its_creation_and_sends_nothing():
    blog = make_blog()
    assert blog.status == "live" and blog.coverage_start is not None
    assert blog.coverage_end is None
    assert status_events(blog) == []


@pytest.mark.django_db
def test_a_change_of_status_is_an_event_with_a_seq():
    from django.test import Client

    blog = LiveBlog.objects.create(slug="match-day", title="Match day", status="upcoming")
    assert blog.coverage_start is None
    publish_entry(blog)
    blog.status = "live"
    blog.save()
    blog.refresh_from_db()
    blog.title = "Renamed"  # not a coverage change: no event
    blog.save()
    blog.status = "ended"
    blog.save()
    blog.refresh_from_db()
    events = status_events(blog)
    assert [(e["seq"], e["status"]) for e in events] == [(2, "live"), (3, "ended")]
    assert events[1] == {
        "type": "liveblog.status",
        "seq": 3,
        "status": "ended",
        "coverage_start": blog.coverage_start.isoformat(),
        "coverage_end": blog.coverage_end.isoformat(),
    }
    assert blog.last_seq == 3
    # Replayed over HTTP like any event.
    page = Client().get("/live/liveblog/match-day/entries").json()
    assert [item["type"] for item in page["items"]] == [
        "entry",
        "liveblog.status",
        "liveblog.status",
    ]


@pytest.mark.django_db
def test_the_widget_renders_the_status():
    from datetime import datetime, timezone

    blog = LiveBlog.objects.create(
        slug="match-day",
        title="Match day",
        status="upcoming",
        coverage_start=datetime(2026, 12, 24, 18, 0, tzinfo=timezone.utc),
    )
    html = render('{% liverooms_liveblog "match-day" %}')
    assert (
        'data-coverage="upcoming">Upcoming · starts <time datetime="2026-12-24T18:00:00+00:00">'
        in html
    )
    assert widget_config(html)["strings"]["status_ended"] == "Coverage ended"
    blog.status = "ended"
    blog.save()
    assert 'data-coverage="ended">Coverage ended</p>' in render(
        '{% liverooms_liveblog "match-day" %}'
    )


@pytest.mark.django_db
def test_the_admin_changes_the_status():
    from django.test import Client

    admin = make_user("boss", is_staff=True, is_superuser=True)
    blog = make_blog()
    client = Client()
    client.force_login(admin)
    assert client.get("/admin/django_liverooms/liveblog/").status_code == 200
    response = client.post(
        f"/admin/django_liverooms/liveblog/{blog.pk}/change/",
        {
            "title": "Match day",
            "slug": "match-day",
            "description": "",
            "status": "ended",
            "coverage_start_0": "",
            "coverage_start_1": "",
            "coverage_end_0": "",
            "coverage_end_1": "",
        },
    )
    assert response.status_code == 302, response.content
    blog.refresh_from_db()
    assert blog.status == "ended" and blog.coverage_end is not None
    assert [e["status"] for e in status_events(blog)] == ["ended"]


# -- pinned and key entries -------------------------------------------------------


def frames(blog, *types):
    rows = blog.events.order_by("seq").values_list("frame", flat=True)
    found = [json.loads(frame) for frame in rows]
    return [f for f in found if not types or f["type"] in types]


@pytest.mark.django_db
def test_pinning_a_live_entry_is_an_event():
    blog = make_blog()
    entry = publish_entry(blog)
    entry.pin()
    entry.unpin()
    entry.mark_key()
    assert frames(blog, "entry.marked") == [
        {"type": "entry.marked", "seq": 2, "id": entry.pk, "pinned": True, "key": False},
        {"type": "entry.marked", "seq": 3, "id": entry.pk, "pinned": False, "key": False},
        {"type": "entry.marked", "seq": 4, "id": entry.pk, "pinned": False, "key": True},
    ]
    entry.refresh_from_db()
    assert entry.key and not entry.pinned


@pytest.mark.django_db
def test_a_draft_carries_its_marks_into_its_entry_frame():
    blog = make_blog()
    draft = Entry.objects.create(blog=blog, title="T", body="<p>b</p>")
    draft.pin()
    draft.mark_key()
    assert frames(blog) == []  # not live: nothing to tell
    draft.status = Entry.STATUS.published
    draft.save()
    [entry] = frames(blog)
    assert entry["type"] == "entry" and entry["pinned"] is True and entry["key"] is True
    # An unmarked entry's frame is the v1 frame, unchanged.
    plain = publish_entry(blog)
    assert "pinned" not in frames(blog)[-1] and "key" not in frames(blog)[-1]
    assert frames(blog)[-1]["id"] == plain.pk


@pytest.mark.django_db
def test_the_entry_frame_keeps_the_current_marks_for_paging_back():
    blog = make_blog()
    entry = publish_entry(blog)
    entry.pin()
    entry.mark_key()
    [stored] = frames(blog, "entry")
    assert stored["pinned"] is True and stored["key"] is True
    entry.unpin()
    [stored] = frames(blog, "entry")
    assert "pinned" not in stored and stored["key"] is True
    # The marked events stay as they were: each tells its own change.
    assert [f["pinned"] for f in frames(blog, "entry.marked")] == [True, True, False]


@pytest.mark.django_db
def test_an_edit_and_a_pin_in_one_save_are_two_events_in_order():
    blog = make_blog()
    entry = publish_entry(blog)
    entry.body = "<p>new</p>"
    entry.pinned = True
    entry.save()
    assert [f["type"] for f in frames(blog)] == ["entry", "entry.edited", "entry.marked"]


@pytest.mark.django_db
def test_the_marks_of_a_deleted_entry_are_redacted_with_it():
    blog = make_blog()
    entry = publish_entry(blog)
    entry.pin()
    entry.delete()
    marked = frames(blog, "entry.marked")[0]
    assert marked["redacted"] is True


@pytest.mark.django_db
@override_settings(LIVEROOMS={"HISTORY_LIMIT": 2})
def test_pinned_entries_are_rendered_first_even_when_old():
    blog = make_blog()
    old = publish_entry(blog, title="Old")
    publish_entry(blog, title="Middle")
    newer = publish_entry(blog, title="Newer")
    newest = publish_entry(blog, title="Newest")
    old.pin()
    html = render('{% liverooms_liveblog "match-day" %}')
    assert [entry_id for entry_id, _ in articles(html)] == [old.pk, newest.pk, newer.pk]
    assert f'data-seq="{entry_seq(old)}" data-pinned>' in html
    assert '<span class="liverooms-pin-label">Pinned</span>' in html
    assert html.count('<span class="liverooms-pin-label" hidden>') == 2


@pytest.mark.django_db
def test_key_entries_are_listed_as_a_summary():
    blog = make_blog()
    html = render('{% liverooms_liveblog "match-day" %}')
    assert (
        "data-liverooms-summary" in html
        and 'aria-labelledby="liverooms-liveblog-match-day-keys" hidden' in html
    )
    goal = publish_entry(blog, title="Goal!")
    untitled = publish_entry(blog, title="", body="<p>Red card &amp; penalty</p>")
    publish_entry(blog, title="Not key")
    goal.mark_key()
    untitled.mark_key()
    html = render('{% liverooms_liveblog "match-day" %}')
    [summary] = re.findall(r"<ol data-liverooms-keys>(.*?)</ol>", html, re.S)
    assert re.findall(r'<a href="#entry-(\d+)">(.*?)</a>', summary) == [
        (str(untitled.pk), "Red card &amp; penalty"),
        (str(goal.pk), "Goal!"),
    ]
    assert 'aria-labelledby="liverooms-liveblog-match-day-keys">' in html  # not hidden


@pytest.mark.django_db
def test_the_admin_pins_and_marks_key_entries():
    from django.test import Client

    admin = make_user("boss", is_staff=True, is_superuser=True)
    blog = make_blog()
    entries = [publish_entry(blog, title=f"E{i}") for i in range(2)]
    client = Client()
    client.force_login(admin)
    selected = [e.pk for e in entries]
    for action in ("pin", "mark_key", "unpin", "unmark_key"):
        response = client.post(
            "/admin/django_liverooms/entry/", {"action": action, "_selected_action": selected}
        )
        assert response.status_code == 302
    sent = frames(blog, "entry.marked")
    assert [(f["type"], f["pinned"], f["key"]) for f in sent] == [
        ("entry.marked", True, False),
        ("entry.marked", True, False),
        ("entry.marked", True, True),
        ("entry.marked", True, True),
        ("entry.marked", False, True),
        ("entry.marked", False, True),
        ("entry.marked", False, False),
        ("entry.marked", False, False),
    ]
    assert client.get("/admin/django_liverooms/entry/?pinned__exact=1").status_code == 200


# -- scheduled publishing ---------------------------------------------------------


def later(**delta):
    from datetime import timedelta

    from django.utils import timezone

    return timezone.now() + timedelta(**delta)


@pytest.mark.django_db
def test_an_entry_published_ahead_of_its_time_is_scheduled_and_not_live():
    blog = make_blog()
    entry = publish_entry(blog, title="Scheduled", publish_at=later(hours=1))
    assert entry.status == Entry.STATUS.scheduled and not entry.is_live
    assert entry.published_at is None
    assert frames(blog) == []
    html = render('{% liverooms_liveblog "match-day" %}')
    assert "Scheduled" not in html and articles(html) == []
    from django_liverooms import streams

    assert streams.publish_due() == []  # not due yet


@pytest.mark.django_db
def test_a_due_entry_is_published_with_its_event_then():
    from django_liverooms import streams

    blog = make_blog()
    entry = publish_entry(blog, title="Scheduled", publish_at=later(hours=1))
    other = publish_entry(blog, title="Now")
    Entry.objects.filter(pk=entry.pk).update(publish_at=later(seconds=-1))  # time passes
    [published] = streams.publish_due()
    assert published.pk == entry.pk
    entry.refresh_from_db()
    assert entry.status == Entry.STATUS.published and entry.published_at > other.published_at
    assert [(f["type"], f["id"]) for f in frames(blog)] == [
        ("entry", other.pk),
        ("entry", entry.pk),
    ]
    assert streams.publish_due() == []  # once
    html = render('{% liverooms_liveblog "match-day" %}')
    assert [entry_id for entry_id, _ in articles(html)] == [entry.pk, other.pk]


@pytest.mark.django_db
def test_a_scheduled_entry_needs_a_time():
    from django.core.exceptions import ValidationError

    blog = make_blog()
    entry = Entry(blog=blog, title="T", body="<p>b</p>", status=Entry.STATUS.scheduled)
    with pytest.raises(ValidationError) as error:
        entry.full_clean()
    assert "publish_at" in error.value.message_dict


@pytest.mark.django_db
def test_publishing_a_scheduled_entry_by_hand_publishes_it_now():
    blog = make_blog()
    entry = publish_entry(blog, publish_at=later(hours=1))
    entry.status = Entry.STATUS.published
    entry.save()
    assert entry.is_live and [f["type"] for f in frames(blog)] == ["entry"]


@pytest.mark.django_db
def test_the_publish_due_command():
    from io import StringIO

    from django.core.management import CommandError, call_command

    blog = make_blog()
    entry = publish_entry(blog, publish_at=later(hours=1))
    out = StringIO()
    call_command("liverooms_publish_due", stdout=out)
    assert out.getvalue() == ""
    Entry.objects.filter(pk=entry.pk).update(publish_at=later(seconds=-1))
    call_command("liverooms_publish_due", "--dry-run", stdout=out)
    assert f"1 entries due: {entry.pk}" in out.getvalue()
    assert frames(blog) == []
    call_command("liverooms_publish_due", stdout=out)
    assert f"Published entry {entry.pk} in match-day." in out.getvalue()
    assert [f["type"] for f in frames(blog)] == ["entry"]
    with pytest.raises(CommandError, match="--every"):
        call_command("liverooms_publish_due", "--every", "0")


@pytest.mark.django_db
def test_the_admin_schedules_an_entry():
    from django.test import Client

    admin = make_user("boss", is_staff=True, is_superuser=True)
    blog = make_blog()
    client = Client()
    client.force_login(admin)
    when = later(hours=2)
    form = {
        "blog": blog.pk,
        "title": "Later",
        "body": "<p>b</p>",
        "status": "published",
        "publish_at_0": when.strftime("%Y-%m-%d"),
        "publish_at_1": when.strftime("%H:%M:%S"),
    }
    response = client.post("/admin/django_liverooms/entry/add/", form)
    assert response.status_code == 302, response.content
    assert Entry.objects.get().status == Entry.STATUS.scheduled
    response = client.post(
        "/admin/django_liverooms/entry/add/",
        {**form, "status": "scheduled", "publish_at_0": "", "publish_at_1": ""},
    )
    assert response.status_code == 200
    assert "A scheduled entry needs the time to publish it at." in response.content.decode()


# -- feeds ------------------------------------------------------------------------


def feed_items(response):
    from xml.etree import ElementTree

    root = ElementTree.fromstring(response.content)
    return root, root.findall("./channel/item")


@pytest.mark.django_db
def test_the_rss_feed_lists_the_published_entries_newest_first():
    from django.test import Client

    blog = make_blog()
    blog.description = "All the action"
    blog.save()
    author = make_user(first_name="Ada", last_name="Reporter")
    first = publish_entry(blog, title="Kick-off", author=author)
    second = publish_entry(blog, title="", body="<p>Goal &amp; celebration</p>")
    second.pin()  # a feed is chronological anyway
    first.pin()
    Entry.objects.create(blog=blog, title="Draft", body="<p>secret</p>")
    publish_entry(blog, title="Later", publish_at=later(hours=1))
    removed = publish_entry(blog, title="Removed", body="<p>gone</p>")
    removed.delete()
    response = Client().get("/live/liveblog/match-day/feed/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/rss+xml")
    root, items = feed_items(response)
    assert root.find("./channel/title").text == "Match day"
    assert root.find("./channel/description").text == "All the action"
    assert [i.find("title").text for i in items] == ["Goal & celebration", "Kick-off"]
    assert items[1].find("description").text == "<p>We are under way.</p>"
    assert (
        items[1].find("link").text
        == f"http://testserver/live/liveblog/match-day/feed/#entry-{first.pk}"
    )
    assert "Ada Reporter" in response.content.decode()
    for secret in ("secret", "Later", "Removed", "gone"):
        assert secret not in response.content.decode()


@pytest.mark.django_db
@override_settings(LIVEROOMS={"LIVEBLOG_PAGE_URL": "/liveblog/{slug}/"})
def test_the_atom_feed_links_to_the_page():
    from xml.etree import ElementTree

    from django.test import Client

    blog = make_blog()
    entry = publish_entry(blog)
    response = Client().get("/live/liveblog/match-day/feed/atom/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    ns = {"a": "http://www.w3.org/2005/Atom"}
    root = ElementTree.fromstring(response.content)
    [item] = root.findall("a:entry", ns)
    assert item.find("a:title", ns).text == "Kick-off"
    assert (
        item.find("a:link", ns).get("href")
        == f"http://testserver/liveblog/match-day/#entry-{entry.pk}"
    )
    assert item.find("a:published", ns) is not None


@pytest.mark.django_db
def test_the_feed_follows_the_read_policy():
    from django.test import Client

    make_blog()
    assert Client().get("/live/liveblog/nowhere/feed/").status_code == 404
    assert Client().get("/live/liveblog/Bad%20Slug/feed/").status_code == 404
    assert Client().post("/live/liveblog/match-day/feed/").status_code == 405
    with override_settings(LIVEROOMS={"POLICY": "tests.policies.NobodyPolicy"}):
        response = Client().get("/live/liveblog/match-day/feed/")
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("value", ["/liveblog/", "/x/{slug}/{other}/", 5, "/{slug}/{"])
def test_a_bad_page_url_setting_is_reported(value):
    from django_liverooms import checks

    with override_settings(LIVEROOMS={"LIVEBLOG_PAGE_URL": value}):
        [error] = checks.check_liveblog_publishing()
    assert error.id == "liverooms.E140" and error.hint


@pytest.mark.parametrize("value", [None, "/liveblog/{slug}/", "https://example.com/live/{slug}"])
def test_good_page_url_settings_pass(value):
    from django_liverooms import checks

    with override_settings(LIVEROOMS={"LIVEBLOG_PAGE_URL": value}):
        assert checks.check_liveblog_publishing() == []


# -- reactions: settings and the widget's config -----------------------------------


@pytest.mark.parametrize(
    ("settings", "error_id"),
    [
        ({"REACTIONS": "👍"}, "liverooms.E141"),
        ({"REACTIONS": ["👍", ""]}, "liverooms.E141"),
        ({"REACTIONS": ["x" * 17]}, "liverooms.E141"),
        ({"REACTION_RATE": (0, 10)}, "liverooms.E142"),
        ({"REACTION_INTERVAL": 0}, "liverooms.E143"),
        ({"REACTION_INTERVAL": "1"}, "liverooms.E143"),
    ],
)
def test_bad_reaction_settings_are_reported(settings, error_id):
    from django_liverooms import checks

    with override_settings(LIVEROOMS=settings):
        [error] = checks.check_liveblog_publishing()
    assert error.id == error_id and error.hint


def test_the_default_reaction_settings_pass():
    from django_liverooms import checks

    assert checks.check_liveblog_publishing() == []
    with override_settings(LIVEROOMS={"REACTIONS": [], "REACTION_RATE": None}):
        assert checks.check_liveblog_publishing() == []


@pytest.mark.django_db
def test_the_widget_is_given_the_allowed_reactions():
    make_blog()
    config = widget_config(render('{% liverooms_liveblog "match-day" %}'))
    assert config["reactions"] == ["👍", "❤️", "😂", "😮", "😢", "👏"]
    assert config["strings"]["react"] == "React with {emoji}"
    with override_settings(LIVEROOMS={"REACTIONS": []}):
        assert widget_config(render('{% liverooms_liveblog "match-day" %}'))["reactions"] == []


def test_reaction_frames_parse():
    from django_liverooms import protocol

    command = protocol.parse(
        '{"type": "reaction", "emoji": "👍", "entry": 3}', accepts=protocol.LIVEBLOG_COMMANDS
    )
    assert command == protocol.React(emoji="👍", entry=3)
    command = protocol.parse(
        '{"type": "reaction", "emoji": "👍"}', accepts=protocol.LIVEBLOG_COMMANDS
    )
    assert command == protocol.React(emoji="👍", entry=None)
    with pytest.raises(protocol.ProtocolError) as refused:
        protocol.parse('{"type": "reaction", "emoji": "👍"}')  # chat
    assert refused.value.code == "unknown_type"


# -- embeds and images ------------------------------------------------------------

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00"
    b"\x00IEND\xaeB`\x82"
)


@pytest.mark.parametrize(
    ("url", "provider", "player"),
    [
        (
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "youtube",
            "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
        ),
        (
            "https://youtu.be/dQw4w9WgXcQ?t=42",
            "youtube",
            "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
        ),
        (
            "https://www.youtube.com/watch?feature=share&v=dQw4w9WgXcQ",
            "youtube",
            "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
        ),
        (
            "https://www.youtube.com/shorts/abcDEF12345",
            "youtube",
            "https://www.youtube-nocookie.com/embed/abcDEF12345",
        ),
        ("https://vimeo.com/76979871", "vimeo", "https://player.vimeo.com/video/76979871?dnt=1"),
        (
            "https://x.com/django/status/1234567890123",
            "x",
            "https://platform.twitter.com/embed/Tweet.html?id=1234567890123&dnt=true",
        ),
        (
            "https://twitter.com/django/status/42",
            "x",
            "https://platform.twitter.com/embed/Tweet.html?id=42&dnt=true",
        ),
        (
            "https://www.instagram.com/p/CxYz12_ab/",
            "instagram",
            "https://www.instagram.com/p/CxYz12_ab/embed/",
        ),
        ("https://example.com/watch?v=dQw4w9WgXcQ", "", ""),
        ("https://www.youtube.com.evil.example/watch?v=dQw4w9WgXcQ", "", ""),
        ('https://www.youtube.com/watch?v=dQw4w9WgXcQ"><script>', "", ""),
    ],
)
def test_allow_listed_urls_become_players_and_others_links(url, provider, player):
    from django_liverooms.embeds import embed_for

    embed = embed_for(url)
    if '"' in url:
        assert embed is None  # not a URL anyone links to
        return
    assert (embed.url, embed.provider, embed.player) == (url, provider, player)


@pytest.mark.parametrize(
    "url", ["", "javascript:alert(1)", "data:text/html,x", "ftp://x/y", "x" * 600]
)
def test_no_embed_for_what_is_not_a_web_url(url):
    from django_liverooms.embeds import embed_for

    assert embed_for(url) is None


def test_providers_are_extensible_by_setting():
    from django_liverooms.embeds import embed_for

    extra = {
        "peertube": {
            "pattern": r"https://video\.example\.org/w/(?P<id>[A-Za-z0-9]{6,30})",
            "player": "https://video.example.org/videos/embed/{id}",
        },
        "instagram": None,
    }
    with override_settings(LIVEROOMS={"EMBED_PROVIDERS": extra}):
        embed = embed_for("https://video.example.org/w/abcdef123")
        assert (embed.provider, embed.player) == (
            "peertube",
            "https://video.example.org/videos/embed/abcdef123",
        )
        assert embed_for("https://www.instagram.com/p/CxYz12_ab/").provider == ""  # removed: a link
        assert embed_for("https://vimeo.com/1").provider == "vimeo"  # built-ins stay


@pytest.mark.django_db
def test_an_embed_renders_the_player_and_another_url_a_link():
    blog = make_blog()
    video = publish_entry(blog, title="Video", embed_url="https://youtu.be/dQw4w9WgXcQ")
    link = publish_entry(blog, title="Link", embed_url="https://example.com/story")
    html = render('{% liverooms_liveblog "match-day" %}')
    assert html.count("<iframe") == 1
    assert (
        '<iframe src="https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ" title="Embedded content from youtube" loading="lazy"'
        in html
    )
    assert 'sandbox="allow-scripts allow-same-origin allow-popups allow-presentation"' in html
    assert (
        '<p class="liverooms-embed liverooms-embed-link"><a href="https://example.com/story" rel="noopener nofollow ugc" target="_blank">https://example.com/story</a></p>'
        in html
    )
    assert "style=" not in html and html.count("<script") == 2  # CSP: nothing inline
    [video_frame, link_frame] = frames(blog)
    assert video_frame["embed_url"] == "https://youtu.be/dQw4w9WgXcQ"
    assert video_frame["embed_provider"] == "youtube"
    assert video_frame["embed_src"] == "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"
    assert (link_frame["embed_provider"], link_frame["embed_src"]) == ("", "")
    assert link.pk != video.pk


@pytest.mark.django_db
def test_changing_or_removing_an_embed_is_an_edit_and_deletion_redacts_it():
    blog = make_blog()
    entry = publish_entry(blog, embed_url="https://vimeo.com/1")
    entry.embed_url = "https://vimeo.com/2"
    entry.save()
    [first, edit] = frames(blog)
    assert edit["type"] == "entry.edited"
    assert edit["embed_src"] == first["embed_src"] == "https://player.vimeo.com/video/2?dnt=1"
    entry.embed_url = ""
    entry.save()
    removal = frames(blog)[-1]
    assert removal["type"] == "entry.edited"
    assert (removal["embed_url"], removal["embed_provider"], removal["embed_src"]) == ("", "", "")
    # The stored frames carry the current embed (none): the old one is served nowhere.
    assert all(f["embed_url"] == "" for f in frames(blog))
    no_media = publish_entry(blog)
    assert "embed_url" not in frames(blog)[-1] and "image" not in frames(blog)[-1]
    entry.embed_url = "https://vimeo.com/3"
    entry.save()
    entry.delete()
    stored = frames(blog, "entry")[0]
    assert stored["redacted"] is True and stored["embed_url"] == stored["embed_src"] == ""
    assert no_media.pk


@pytest.mark.django_db
def test_entry_images_are_stored_checked_and_rendered(tmp_path):
    from django.core.exceptions import ValidationError
    from django.core.files.uploadedfile import SimpleUploadedFile

    with override_settings(MEDIA_ROOT=str(tmp_path), MEDIA_URL="/media/"):
        blog = make_blog()
        entry = Entry(
            blog=blog, title="Photo", body="<p>b</p>", status="published", image_alt="A goal"
        )
        entry.image = SimpleUploadedFile("goal.png", PNG, content_type="image/png")
        entry.full_clean()
        entry.save()
        assert entry.image.name.startswith("liverooms/entries/") and entry.image.url.startswith(
            "/media/"
        )
        html = render('{% liverooms_liveblog "match-day" %}')
        assert f'<img src="{entry.image.url}" alt="A goal" loading="lazy">' in html
        [frame] = frames(blog)
        assert (frame["image"], frame["image_alt"]) == (entry.image.url, "A goal")

        for name, content, code in [
            ("goal.png", b"<?php evil(); ?>", "bad_content"),
            ("goal.svg", b"<svg onload=x()>", "bad_type"),
            ("goal", PNG, "bad_type"),
            ("goal.webp", b"RIFF\x00\x00\x00\x00WAVE", "bad_content"),
        ]:
            bad = Entry(blog=blog, title="Bad", body="<p>b</p>")
            bad.image = SimpleUploadedFile(name, content)
            with pytest.raises(ValidationError) as error:
                bad.full_clean()
            assert error.value.error_dict["image"][0].code == code, name
        with override_settings(LIVEROOMS={"ENTRY_IMAGE_MAX_BYTES": 10}):
            big = Entry(blog=blog, title="Big", body="<p>b</p>")
            big.image = SimpleUploadedFile("goal.png", PNG)
            with pytest.raises(ValidationError) as error:
                big.full_clean()
            assert error.value.error_dict["image"][0].code == "too_large"


@pytest.mark.django_db
def test_the_admin_uploads_an_image_and_sets_an_embed(tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    with override_settings(MEDIA_ROOT=str(tmp_path), MEDIA_URL="/media/"):
        admin = make_user("boss", is_staff=True, is_superuser=True)
        blog = make_blog()
        client = Client()
        client.force_login(admin)
        form = {
            "blog": blog.pk,
            "title": "Media",
            "body": "<p>b</p>",
            "status": "published",
            "embed_url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "image_alt": "A goal",
            "image": SimpleUploadedFile("goal.png", PNG, content_type="image/png"),
        }
        response = client.post("/admin/django_liverooms/entry/add/", form)
        assert response.status_code == 302, response.content
        entry = Entry.objects.get()
        assert entry.image and entry.embed_url.endswith("dQw4w9WgXcQ")
        form["image"] = SimpleUploadedFile("fake.png", b"MZ\x90\x00 not a png")
        response = client.post("/admin/django_liverooms/entry/add/", form)
        assert response.status_code == 200
        assert "The file is not the image its name says (png)." in response.content.decode()


@pytest.mark.parametrize(
    ("settings", "error_id"),
    [
        ({"EMBED_PROVIDERS": []}, "liverooms.E144"),
        (
            {"EMBED_PROVIDERS": {"v": {"pattern": "https://v/(\\d+)", "player": "https://v/{id}"}}},
            "liverooms.E144",
        ),
        (
            {
                "EMBED_PROVIDERS": {
                    "v": {"pattern": "https://v/(?P<id>[", "player": "https://v/{id}"}
                }
            },
            "liverooms.E144",
        ),
        (
            {
                "EMBED_PROVIDERS": {
                    "v": {"pattern": "https://v/(?P<id>\\d+)", "player": "http://v/{id}"}
                }
            },
            "liverooms.E144",
        ),
        ({"ENTRY_IMAGE_MAX_BYTES": 0}, "liverooms.E145"),
    ],
)
def test_bad_media_settings_are_reported(settings, error_id):
    from django_liverooms import checks

    with override_settings(LIVEROOMS=settings):
        [error] = checks.check_liveblog_publishing()
    assert error.id == error_id and error.hint
