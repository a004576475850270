"""XSS in a real browser: the example project's pages, in headless Chromium.

A stored chat message ``<img src=x onerror=...>`` is shown as text, and a
``<script>`` (or an ``onerror``) in a live blog entry never runs, whether the
page reads it from history or receives it live. Skips without Chromium or
Playwright (fails in CI).
"""

import json
import os
import uuid

import pytest

from .conftest import REDIS_URL, missing_service, redis_available
from .processes import ROOT, Site

pytestmark = [pytest.mark.live, pytest.mark.slow]

CHAT_PAYLOAD = (
    "<img src=x onerror=\"window.__xss='chat-img'\"><script>window.__xss='chat-script'</script>"
)
ENTRY_PAYLOAD = (
    "<p>Goal!</p><script>window.__xss='entry-script'</script>"
    "<img src=x onerror=\"window.__xss='entry-img'\">"
)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example project on daphne, started once for this module's tests."""
    # Redis: an entry saved by `manage.py shell` reaches the server's readers.
    if not redis_available():
        missing_service(f"Redis is not reachable at {REDIS_URL}")
    site = Site(
        DJANGO_SETTINGS_MODULE="tests.example_settings",
        PYTHONPATH=f"{ROOT / 'example_project'}{os.pathsep}{ROOT}",
        LIVEROOMS_EXAMPLE_DB=str(tmp_path_factory.mktemp("example") / "example.sqlite3"),
        REDIS_URL=REDIS_URL,
        LIVEROOMS_TEST_LAYER_PREFIX=f"liverooms-browser-{uuid.uuid4().hex[:8]}",
    )
    site.manage("migrate", "--verbosity=0")
    site.shell(
        "from django_liverooms.models import Entry, LiveBlog, Message, Room\n"
        "room = Room.objects.create(slug='lobby', title='Lobby')\n"
        f"Message.objects.create(room=room, body={CHAT_PAYLOAD!r}, author_name='<b>mallory</b>')\n"
        "blog = LiveBlog.objects.create(slug='match-day', title='Match day')\n"
        f"Entry.objects.create(blog=blog, title='<i>T</i>', body={ENTRY_PAYLOAD!r}, status='published')\n"
    )
    try:
        site.port = site.server(application="example.asgi:application")
        yield site
    finally:
        site.stop()


def fresh_page(browser):
    page = browser.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    return page, dialogs


def assert_detection_works(page):
    """The same markup put in with innerHTML does run here: the checks below can fail."""
    page.evaluate(
        "() => { const probe = document.createElement('div');"
        " probe.innerHTML = '<img src=x onerror=\"window.__probe = 1\">';"
        " document.body.append(probe); }"
    )
    page.wait_for_function("window.__probe === 1")


def test_a_stored_and_a_live_chat_message_render_as_text(browser, example):
    page, dialogs = fresh_page(browser)
    page.goto(f"http://127.0.0.1:{example.port}/chat/lobby/")
    stored = page.locator(".liverooms-messages .liverooms-body").first
    stored.wait_for()
    assert stored.inner_text() == CHAT_PAYLOAD
    # A guest (the example allows guests) sends the same payload live.
    page.wait_for_function("!document.querySelector('.liverooms-chat textarea').disabled")
    page.fill(".liverooms-chat textarea", CHAT_PAYLOAD)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "document.querySelectorAll('.liverooms-messages .liverooms-body').length === 2"
    )
    page.wait_for_function(
        "[...document.querySelectorAll('.liverooms-message')].every(li => !li.classList.contains('liverooms-pending'))"
    )
    bodies = page.locator(".liverooms-messages .liverooms-body").all_inner_texts()
    assert bodies == [CHAT_PAYLOAD, CHAT_PAYLOAD]
    assert (
        page.locator(
            ".liverooms-messages img, .liverooms-messages script, .liverooms-messages b"
        ).count()
        == 0
    )
    assert page.evaluate("window.__xss") is None and dialogs == []
    assert_detection_works(page)
    assert page.evaluate("window.__xss") is None
    page.close()


def test_script_and_event_handlers_in_entries_never_run(browser, example):
    page, dialogs = fresh_page(browser)
    page.goto(f"http://127.0.0.1:{example.port}/liveblog/match-day/")
    page.locator(".liverooms-entry").first.wait_for()
    # Published while the page is open: it arrives over the socket.
    example.shell(
        "from django_liverooms.models import Entry, LiveBlog\n"
        "Entry.objects.create(blog=LiveBlog.objects.get(slug='match-day'), title='Live',"
        f" body={ENTRY_PAYLOAD!r}, status='published')\n"
    )
    page.wait_for_function("document.querySelectorAll('.liverooms-entry').length === 2")
    page.wait_for_function(
        "[...document.querySelectorAll('div.liverooms-entries img')].every(i => i.complete)"
    )
    assert page.locator(".liverooms-entries script").count() == 0
    handlers = page.evaluate(
        "[...document.querySelectorAll('.liverooms-entries *')]"
        ".flatMap(e => [...e.attributes].map(a => a.name)).filter(n => n.startsWith('on'))"
    )
    assert handlers == []
    assert page.locator(".liverooms-entry-body p").first.inner_text() == "Goal!"
    assert page.locator(".liverooms-entry-title").first.inner_text() in ("<i>T</i>", "Live")
    assert page.evaluate("window.__xss") is None and dialogs == []
    assert_detection_works(page)
    assert page.evaluate("window.__xss") is None
    page.close()


def test_the_payloads_are_stored_as_given(example):
    stored = json.loads(
        example.shell(
            "import json\n"
            "from django_liverooms.models import Entry, Message\n"
            "print(json.dumps([Message.objects.first().body, Entry.objects.first().body]))\n"
        )
    )
    # Chat bodies are plain text, kept verbatim; entry HTML is sanitised on save.
    assert stored[0] == CHAT_PAYLOAD
    assert "<script" not in stored[1] and "onerror" not in stored[1] and "<p>Goal!</p>" in stored[1]


def test_the_example_refuses_cross_site_handshakes(example):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = f"ws://127.0.0.1:{example.port}/ws/chat/lobby/"
    for origin in ("http://evil.example", "null", None):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, origin=origin, open_timeout=10)
        assert refused.value.response.status_code == 403, origin
    with connect(url, origin=f"http://127.0.0.1:{example.port}", open_timeout=10) as same_site:
        assert json.loads(same_site.recv(timeout=10))["type"] == "welcome"
