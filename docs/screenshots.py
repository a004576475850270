"""Take docs/chat.png, docs/chat-features.png, docs/liveblog.png,
docs/liveblog-publishing.png and docs/liveblog-nojs.png from the example project.

    PYTHONPATH=. python docs/screenshots.py

Starts the example project on daphne (a throwaway SQLite database, the
in-memory channel layer, the demo data of ``manage.py demo``), has two
guests chat and an editor publish, and screenshots the pages in the
system's headless Chromium (LIVEROOMS_TEST_CHROMIUM, default
/usr/bin/chromium) through Playwright.
"""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.processes import Site  # noqa: E402

DOCS = ROOT / "docs"
SIZE = {"width": 900, "height": 640}


def main():
    with tempfile.TemporaryDirectory() as tmp:
        site = Site(
            DJANGO_SETTINGS_MODULE="tests.example_settings",
            PYTHONPATH=f"{ROOT / 'example_project'}{os.pathsep}{ROOT}",
            LIVEROOMS_EXAMPLE_DB=str(Path(tmp) / "example.sqlite3"),
            LIVEROOMS_TEST_LAYER_PREFIX="liverooms-screenshots",
            REDIS_URL="",
        )
        site.manage("demo", "--no-serve", "--verbosity=0")
        site.shell(
            "from django_liverooms.models import Entry, LiveBlog\n"
            "blog = LiveBlog.objects.get(slug='match-day')\n"
            "Entry.objects.create(blog=blog, title='Goal!', status='published',"
            " body='<p><strong>1-0</strong> after 23 minutes: a header from the corner.</p>')\n"
        )
        port = site.server(application="example.asgi:application")
        base = f"http://127.0.0.1:{port}"
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                pages = []
                for _ in range(2):
                    page = browser.new_context(viewport=SIZE).new_page()
                    page.goto(f"{base}/chat/lobby/")
                    page.wait_for_function(
                        "document.querySelector('.liverooms').dataset.state === 'open'"
                    )
                    pages.append(page)
                alice, bob = pages
                shown = (
                    "document.querySelectorAll('.liverooms-message:not(.liverooms-pending)').length"
                )
                lines = [
                    (alice, "Hi! Is anyone watching the match?"),
                    (bob, "Yes, 1-0 already."),
                    (alice, "Great header <3"),
                ]
                for count, (page, text) in enumerate(lines, start=2):  # after the demo's welcome
                    page.fill(".liverooms-chat textarea", text)
                    page.keyboard.press("Enter")
                    for each in pages:
                        each.wait_for_function(f"{shown} === {count}")
                alice.wait_for_function(
                    "document.querySelector('[data-liverooms-presence]').textContent.startsWith('Online (2)')"
                )
                bob.fill(".liverooms-chat textarea", "Wh")
                alice.wait_for_function(
                    "document.querySelector('[data-liverooms-typing]').textContent !== ''"
                )
                alice.screenshot(path=str(DOCS / "chat.png"))

                reader = browser.new_context(viewport=SIZE).new_page()
                reader.goto(f"{base}/liveblog/match-day/")
                reader.wait_for_function(
                    "document.querySelectorAll('.liverooms-entry').length === 3"
                    " && document.querySelector('[data-liverooms-readers]').textContent"
                )
                reader.screenshot(path=str(DOCS / "liveblog.png"))
                publishing(site, browser, base)
                chat_features(site, browser, base)
                browser.close()
        finally:
            site.stop()
    print("wrote", *(DOCS / name for name in WRITTEN))


WRITTEN = [
    "chat.png",
    "chat-features.png",
    "liveblog.png",
    "liveblog-publishing.png",
    "liveblog-nojs.png",
]


def signed_in(site, browser, base, username, path):
    sessionid = site.shell(
        "from django.contrib.auth.models import User\n"
        "from django.test import Client\n"
        f"user, _ = User.objects.get_or_create(username={username!r})\n"
        "client = Client()\n"
        "client.force_login(user)\n"
        "print(client.cookies['sessionid'].value)\n"
    ).strip()
    context = browser.new_context(viewport=SIZE)
    context.add_cookies([{"name": "sessionid", "value": sessionid, "url": base}])
    page = context.new_page()
    page.goto(base + path)
    page.wait_for_function("document.querySelector('.liverooms').dataset.state === 'open'")
    return page


def chat_features(site, browser, base):
    """Two signed-in users: a reply with its quote, reactions, the message menu."""
    site.shell(
        "from django_liverooms.models import Room\n"
        "Room.objects.get_or_create(slug='match-talk', defaults={'title': 'Match talk'})\n"
    )
    ana = signed_in(site, browser, base, "ana", "/chat/match-talk/")
    ben = signed_in(site, browser, base, "ben", "/chat/match-talk/")

    def item(page, text):
        return page.locator(".liverooms-message", has=page.locator(".liverooms-body", has_text=text))

    def say(page, text):
        page.fill(".liverooms-chat textarea", text)
        page.keyboard.press("Enter")
        for each in (ana, ben):
            item(each, text).locator(".liverooms-menu-button").wait_for()

    say(ana, "Who scores next?")
    say(ben, "Number 9, before half-time")
    item(ana, "Number 9").get_by_role("button", name="Actions for the message by").click()
    item(ana, "Number 9").get_by_role("menuitem", name="Reply", exact=True).click()
    say(ana, "Bold. I say the keeper saves it.")
    for page, emoji in ((ana, "👍"), (ben, "😂")):
        message = item(page, "Number 9")
        message.get_by_role("button", name="Actions for the message by").click()
        message.get_by_role("menuitem", name="React", exact=True).click()
        message.get_by_role("button", name=emoji, exact=True).click()
    ben.locator(".liverooms-reaction", has_text="😂 1").wait_for()
    ben.locator(".liverooms-reaction", has_text="👍 1").wait_for()
    item(ben, "Bold.").get_by_role("button", name="Actions for the message by").click()
    ben.screenshot(path=str(DOCS / "chat-features.png"))

# Stands in for the provider's player: the screenshots fetch nothing from outside.
PLAYER = (
    "<body style='margin:0;background:#111;color:#eee;display:grid;place-items:center;"
    "height:100vh;font:20px system-ui'>&#9654; video player</body>"
)


def publishing(site, browser, base):
    """The publishing features (docs/liveblog.md): status, pinned and key
    entries, an embed, reactions, the "new entries" banner; then the page
    without JavaScript."""
    site.shell(
        "from django_liverooms.models import Entry, LiveBlog\n"
        "blog = LiveBlog.objects.get(slug='match-day')\n"
        "pinned = Entry.objects.create(blog=blog, title='Team news: unchanged line-up',"
        " status='published', body='<p>The same eleven as last week.</p>')\n"
        "pinned.pin()\n"
        "pinned.mark_key()\n"
        "Entry.objects.create(blog=blog, title='Highlights', status='published',"
        " body='<p>The goal, again.</p>', embed_url='https://www.youtube.com/watch?v=dQw4w9WgXcQ')\n"
        "Entry.objects.filter(title='Goal!').first().mark_key()\n"
    )
    page = browser.new_context(viewport={"width": 900, "height": 900}).new_page()
    page.route(
        lambda url: not url.startswith(base),
        lambda route: route.fulfill(body=PLAYER, content_type="text/html"),
    )
    page.goto(f"{base}/liveblog/match-day/")
    page.wait_for_function("document.querySelector('.liverooms').dataset.state === 'open'")
    for _ in range(3):
        page.click(".liverooms-entry:nth-of-type(2) .liverooms-reaction[data-emoji='❤️']")
    page.click(".liverooms-liveblog > .liverooms-reactions .liverooms-reaction[data-emoji='👍']")
    page.wait_for_function(
        "document.querySelector(\".liverooms-entry:nth-of-type(2) [data-emoji='❤️']"
        " .liverooms-reaction-count\").textContent === '3'"
    )
    page.screenshot(path=str(DOCS / "liveblog-publishing.png"))

    nojs = browser.new_context(viewport=SIZE, java_script_enabled=False).new_page()
    nojs.route(
        lambda url: not url.startswith(base),
        lambda route: route.fulfill(body=PLAYER, content_type="text/html"),
    )
    nojs.goto(f"{base}/liveblog/match-day/")
    nojs.screenshot(path=str(DOCS / "liveblog-nojs.png"))


if __name__ == "__main__":
    main()
