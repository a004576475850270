"""The live blog's publishing features in headless Chromium (issue 14).

The example project on daphne over Redis (entries saved by ``manage.py
shell`` reach the server's readers): JavaScript disabled shows the entries;
the server-rendered entries are taken over without duplicates or a reflow.
Skips without Chromium, Playwright or Redis (fails in CI).
"""

import os
import uuid

import pytest

from .conftest import REDIS_URL, missing_service, redis_available
from .processes import ROOT, Site

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.browser]

BLOG = ".liverooms-liveblog"


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    if not redis_available():
        missing_service(f"Redis is not reachable at {REDIS_URL}")
    site = Site(
        DJANGO_SETTINGS_MODULE="tests.example_settings",
        PYTHONPATH=f"{ROOT / 'example_project'}{os.pathsep}{ROOT}",
        LIVEROOMS_EXAMPLE_DB=str(tmp_path_factory.mktemp("liveblog") / "example.sqlite3"),
        REDIS_URL=REDIS_URL,
        LIVEROOMS_TEST_LAYER_PREFIX=f"liveblog-{uuid.uuid4().hex[:8]}",
    )
    site.manage("migrate", "--verbosity=0")
    site.shell(
        "from django_liverooms.models import Entry, LiveBlog\n"
        "blog = LiveBlog.objects.create(slug='match-day', title='Match day')\n"
        "for title in ['Kick-off', 'Early chance', 'Yellow card']:\n"
        "    Entry.objects.create(blog=blog, title=title, body='<p>Text of ' + title + '</p>',"
        " status='published')\n"
        "Entry.objects.create(blog=blog, title='Draft', body='<p>not yet</p>')\n"
    )
    try:
        site.port = site.server(application="example.asgi:application")
        yield site
    finally:
        site.stop()


def url(example, path):
    return f"http://127.0.0.1:{example.port}{path}"


def publish(example, title, **fields):
    extra = "".join(f", {name}={value!r}" for name, value in fields.items())
    example.shell(
        "from django_liverooms.models import Entry, LiveBlog\n"
        "Entry.objects.create(blog=LiveBlog.objects.get(slug='match-day'),"
        f" title={title!r}, body='<p>live</p>', status='published'{extra})\n"
    )


def titles(page):
    return page.locator(f"{BLOG} .liverooms-entry-title").all_inner_texts()


def wait_until_open(page):
    page.wait_for_function("document.querySelector('.liverooms').dataset.state === 'open'")


# Records every entry article taken out of the page, from before the widget runs.
WATCH_REMOVALS = """
window.__removed = [];
new MutationObserver((records) => {
  for (const record of records)
    for (const node of record.removedNodes)
      if (node.nodeType === 1 && node.matches('article')) window.__removed.push(node.id);
}).observe(document, {childList: true, subtree: true});
"""


def test_without_javascript_the_entries_are_in_the_page(browser, example):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(url(example, "/liveblog/match-day/"))
    assert titles(page) == ["Yellow card", "Early chance", "Kick-off"]
    assert page.locator(f"{BLOG} .liverooms-entry-body").first.inner_text() == "Text of Yellow card"
    assert not page.locator("[data-liverooms-empty]").is_visible()
    assert not page.locator("[data-liverooms-status]").is_visible()  # no "Connecting…"
    assert page.locator("noscript").count() >= 1
    assert "not yet" not in page.content()
    context.close()


def test_the_widget_takes_the_rendered_entries_over_without_duplicates(browser, example):
    context = browser.new_context()
    context.add_init_script(WATCH_REMOVALS)
    page = context.new_page()
    page.goto(url(example, "/liveblog/match-day/"))
    wait_until_open(page)
    shown = titles(page)
    assert shown[:3] == ["Yellow card", "Early chance", "Kick-off"]
    assert page.evaluate("window.__removed") == []  # no flash: the same nodes stay
    assert page.locator("[data-liverooms-status]").inner_text() == "Live"

    publish(example, "Half-time")
    page.wait_for_function(
        "document.querySelector('.liverooms-entry-title').textContent === 'Half-time'"
    )
    assert titles(page) == ["Half-time", *shown]
    ids = page.evaluate("[...document.querySelectorAll('.liverooms-entry')].map(a => a.id)")
    assert len(ids) == len(set(ids))
    assert page.evaluate("window.__removed") == []
    context.close()


def test_the_structured_data_parses_in_the_browser(browser, example):
    page = browser.new_page()
    page.goto(url(example, "/liveblog/match-day/"))
    data = page.evaluate(
        "JSON.parse(document.querySelector('script[type=\"application/ld+json\"]').textContent)"
    )
    assert data["@type"] == "LiveBlogPosting" and data["coverageStartTime"]
    updates = data["liveBlogUpdate"]
    assert [u["headline"] for u in updates][-3:] == ["Yellow card", "Early chance", "Kick-off"]
    assert all(u["@type"] == "BlogPosting" and u["datePublished"] for u in updates)
    assert updates[-1]["articleBody"] == "Text of Kick-off"
    page.close()


def test_the_coverage_status_changes_live(browser, example):
    page = browser.new_page()
    page.goto(url(example, "/liveblog/match-day/"))
    wait_until_open(page)
    badge = page.locator("[data-liverooms-coverage]")
    assert badge.inner_text() == "Live coverage"
    example.shell(
        "from django_liverooms.models import LiveBlog\n"
        "blog = LiveBlog.objects.get(slug='match-day')\n"
        "blog.status = 'ended'\n"
        "blog.save()\n"
    )
    page.wait_for_function(
        "document.querySelector('[data-liverooms-coverage]').dataset.coverage === 'ended'"
    )
    assert badge.inner_text() == "Coverage ended"
    page.close()
    # Set back for the other tests.
    example.shell(
        "from django_liverooms.models import LiveBlog\n"
        "LiveBlog.objects.filter(slug='match-day').update(status='live', coverage_end=None)\n"
    )


def entry_call(example, title, call):
    example.shell(
        f"from django_liverooms.models import Entry\nEntry.objects.get(title={title!r}).{call}\n"
    )


def test_pinning_moves_an_entry_to_the_top_live(browser, example):
    page = browser.new_page()
    page.goto(url(example, "/liveblog/match-day/"))
    wait_until_open(page)
    shown = titles(page)
    assert shown[0] != "Kick-off" and page.locator("[data-liverooms-summary]").is_hidden()

    entry_call(example, "Kick-off", "pin()")
    page.wait_for_function(
        "document.querySelector('.liverooms-entry-title').textContent === 'Kick-off'"
    )
    assert titles(page) == ["Kick-off", *[t for t in shown if t != "Kick-off"]]
    assert page.locator(".liverooms-entry").first.locator(".liverooms-pin-label").is_visible()

    entry_call(example, "Early chance", "mark_key()")
    page.wait_for_selector("[data-liverooms-keys] li")
    assert page.locator("[data-liverooms-keys] a").all_inner_texts() == ["Early chance"]
    assert page.locator("[data-liverooms-summary]").is_visible()

    # A reload renders the same order on the server.
    page.reload()
    assert titles(page)[0] == "Kick-off"
    assert page.locator("[data-liverooms-keys] a").all_inner_texts() == ["Early chance"]
    entry_call(example, "Kick-off", "unpin()")
    page.wait_for_function(
        "document.querySelector('.liverooms-entry-title').textContent !== 'Kick-off'"
    )
    assert titles(page) == shown
    page.close()


def test_a_scheduled_entry_appears_at_its_time(browser, example):
    import time

    page = browser.new_page()
    page.goto(url(example, "/liveblog/match-day/"))
    wait_until_open(page)
    shown = titles(page)
    due = float(
        example.shell(
            "from datetime import timedelta\n"
            "from django.utils import timezone\n"
            "from django_liverooms.models import Entry, LiveBlog\n"
            "when = timezone.now() + timedelta(seconds=3)\n"
            "Entry.objects.create(blog=LiveBlog.objects.get(slug='match-day'), title='Scheduled',"
            " body='<p>on time</p>', status='published', publish_at=when)\n"
            "print(when.timestamp())\n"
        )
    )
    assert example.manage("liverooms_publish_due").stdout == ""  # not due yet
    assert "Scheduled" not in page.content()
    time.sleep(max(0, due - time.time()) + 0.1)
    assert "Published entry" in example.manage("liverooms_publish_due").stdout
    page.wait_for_function(
        "[...document.querySelectorAll('.liverooms-entry-title')].some(h => h.textContent === 'Scheduled')"
    )
    assert titles(page) == ["Scheduled", *shown]
    page.close()


def test_load_older_entries_pages_back_with_current_text_and_marks(browser, example):
    # 55 entries: the page renders the latest 50 (HISTORY_LIMIT); the oldest
    # five, one since edited, one marked key, one deleted, are paged in.
    example.shell(
        "from django_liverooms.models import Entry, LiveBlog\n"
        "blog = LiveBlog.objects.create(slug='archive', title='Archive')\n"
        "entries = [Entry.objects.create(blog=blog, title=f'Entry {n}', body=f'<p>text {n}</p>',"
        " status='published') for n in range(1, 56)]\n"
        "entries[0].mark_key()\n"
        "entries[1].title = 'Entry 2, edited'\n"
        "entries[1].save()\n"
        "entries[2].delete()\n"
    )
    page = browser.new_page()
    page.goto(url(example, "/liveblog/archive/"))
    wait_until_open(page)
    shown = titles(page)
    assert shown == [f"Entry {n}" for n in range(55, 5, -1)]
    older = page.locator("[data-liverooms-older]")
    assert older.is_visible() and older.inner_text() == "Load older entries"

    older.click()
    page.wait_for_function("document.querySelector('[data-liverooms-older]').hidden")
    assert titles(page) == [*shown, "Entry 5", "Entry 4", "Entry 2, edited", "Entry 1"]
    oldest = page.locator(".liverooms-entry").last
    assert oldest.locator(".liverooms-key-label").is_visible()
    assert oldest.locator(".liverooms-entry-body").inner_text() == "text 1"
    assert "<p>text 3</p>" not in page.content()
    ids = page.evaluate("[...document.querySelectorAll('.liverooms-entry')].map(a => a.id)")
    assert len(ids) == len(set(ids)) == 54

    # Live entries still go on top.
    example.shell(
        "from django_liverooms.models import Entry, LiveBlog\n"
        "Entry.objects.create(blog=LiveBlog.objects.get(slug='archive'), title='Entry 56',"
        " body='<p>live</p>', status='published')\n"
    )
    page.wait_for_function(
        "document.querySelector('.liverooms-entry-title').textContent === 'Entry 56'"
    )
    assert titles(page)[-1] == "Entry 1"
    page.close()


def test_new_entries_banner_and_title_count_while_scrolled_away(browser, example):
    page = browser.new_page(viewport={"width": 800, "height": 300})
    page.goto(url(example, "/liveblog/match-day/"))
    wait_until_open(page)
    title = page.title()
    banner = page.locator("[data-liverooms-banner]")
    # At the top, a new entry is simply shown.
    publish(example, "Seen at the top")
    page.wait_for_function(
        "document.querySelector('.liverooms-entry-title').textContent === 'Seen at the top'"
    )
    assert banner.is_hidden() and page.title() == title

    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_function(
        "document.querySelector('[data-liverooms-entries]').getBoundingClientRect().top < 0"
    )
    publish(example, "Missed one")
    page.wait_for_function("!document.querySelector('[data-liverooms-banner]').hidden")
    assert banner.inner_text() == "1 new entry" and page.title() == f"(1) {title}"
    publish(example, "Missed two")
    page.wait_for_function("document.title.startsWith('(2) ')")
    assert banner.inner_text() == "2 new entries"
    assert banner.is_visible()  # sticky: in view while scrolled down

    banner.click()
    page.wait_for_function("document.querySelector('[data-liverooms-banner]').hidden")
    assert page.title() == title
    top = page.evaluate(
        "document.querySelector('[data-liverooms-entries]').getBoundingClientRect().top"
    )
    assert top >= 0
    assert titles(page)[:2] == ["Missed two", "Missed one"]
    page.close()


def test_a_reaction_is_counted_for_every_reader(browser, example):
    reader, other = browser.new_page(), browser.new_page()
    for page in (reader, other):
        page.goto(url(example, "/liveblog/match-day/"))
        wait_until_open(page)
    button = ".liverooms-entry:first-of-type .liverooms-reaction[data-emoji='👍']"
    reader.click(button)
    reader.click(button)
    for page in (reader, other):
        page.wait_for_function(
            "s => document.querySelector(s + ' .liverooms-reaction-count').textContent === '2'",
            arg=button,
        )
    # The blog's own row, in the header area.
    other.click(".liverooms-liveblog > .liverooms-reactions .liverooms-reaction[data-emoji='❤️']")
    reader.wait_for_function(
        "document.querySelector(\".liverooms-liveblog > .liverooms-reactions [data-emoji='❤️'] .liverooms-reaction-count\").textContent === '1'"
    )
    reader.close()
    other.close()


def test_an_embed_url_renders_the_player_and_another_stays_a_link(browser, example):
    page = browser.new_page()
    # Nothing leaves the machine: the provider's player is never loaded here.
    page.route(lambda u: not u.startswith("http://127.0.0.1"), lambda route: route.abort())
    page.goto(url(example, "/liveblog/match-day/"))
    wait_until_open(page)
    publish(example, "Highlights", embed_url="https://www.youtube.com/watch?v=dQw4w9WgXcQ")
    publish(example, "Elsewhere", embed_url="https://example.com/report")
    page.wait_for_function(
        "document.querySelector('.liverooms-entry-title').textContent === 'Elsewhere'"
    )

    def media(page):
        return page.evaluate(
            """[...document.querySelectorAll('.liverooms-entry')].slice(0, 2).map(a => ({
                 iframe: a.querySelector('iframe') && a.querySelector('iframe').getAttribute('src'),
                 sandbox: a.querySelector('iframe') && a.querySelector('iframe').getAttribute('sandbox'),
                 link: a.querySelector('.liverooms-embed-link a, a.liverooms-embed-link').getAttribute('href'),
               }))"""
        )

    live = media(page)
    assert live == [
        {"iframe": None, "sandbox": None, "link": "https://example.com/report"},
        {
            "iframe": "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
            "sandbox": "allow-scripts allow-same-origin allow-popups allow-presentation",
            "link": "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        },
    ]
    page.reload()  # the server renders the same
    assert media(page) == live
    page.close()
