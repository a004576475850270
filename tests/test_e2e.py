"""End to end: the example project on daphne, driven in headless Chromium.

The pages are the app's template tags and widgets.js, as a site would use
them: two browsers chat; an entry published in the admin reaches a reader
without a reload; the page rides out a server restart and shows what was
sent meanwhile, its own queued message included; a reader without
WebSockets follows the live blog over Server-Sent Events. The channel layer
is the in-memory one (one server process), or Redis when REDIS_URL is set.
Skips without Chromium or Playwright (fails in CI).
"""

import os
import uuid

import pytest

from .processes import ROOT, Site

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.browser]

APPLICATION = "example.asgi:application"
CHAT = ".liverooms-chat"
BLOG = ".liverooms-liveblog"


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    site = Site(
        DJANGO_SETTINGS_MODULE="tests.example_settings",
        PYTHONPATH=f"{ROOT / 'example_project'}{os.pathsep}{ROOT}",
        LIVEROOMS_EXAMPLE_DB=str(tmp_path_factory.mktemp("e2e") / "example.sqlite3"),
        LIVEROOMS_TEST_LAYER_PREFIX=f"liverooms-e2e-{uuid.uuid4().hex[:8]}",
    )
    site.manage("migrate", "--verbosity=0")
    site.shell(
        "from django.contrib.auth import get_user_model\n"
        "from django_liverooms.models import Entry, LiveBlog, Room\n"
        "get_user_model().objects.create_superuser('admin', 'admin@example.com', 'admin')\n"
        "Room.objects.create(slug='lobby', title='Lobby')\n"
        "blog = LiveBlog.objects.create(slug='match-day', title='Match day')\n"
        "Entry.objects.create(blog=blog, title='Kick-off', body='<p>Under way.</p>', status='published')\n"
        # Two members who are not moderators (the admin is: a superuser).
        "get_user_model().objects.create_user('carol', password='carol')\n"
        "get_user_model().objects.create_user('dave', password='dave')\n"
        "for slug in ['own-edits', 'moderated', 'members', 'replies', 'news-room']:\n"
        "    Room.objects.create(slug=slug, title=slug)\n"
    )
    try:
        site.port = site.server(application=APPLICATION)
        yield site
    finally:
        site.stop()


def open_page(browser, example, path, init_script=None):
    context = browser.new_context()
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{example.port}{path}")
    wait_until_open(page)
    return page


def signed_in(browser, example, username, path, widget=True):
    """A page at ``path`` signed in as ``username`` (a session made by Django's test
    client); with ``widget``, once its widget is connected."""
    sessionid = example.shell(
        "from django.contrib.auth.models import User\n"
        "from django.test import Client\n"
        "client = Client()\n"
        f"client.force_login(User.objects.get(username={username!r}))\n"
        "print(client.cookies['sessionid'].value)\n"
    ).strip()
    context = browser.new_context()
    origin = f"http://127.0.0.1:{example.port}"
    context.add_cookies([{"name": "sessionid", "value": sessionid, "url": origin}])
    page = context.new_page()
    page.goto(origin + path)
    if widget:
        wait_until_open(page)
    return page


def wait_until_open(page):
    page.wait_for_function("document.querySelector('.liverooms').dataset.state === 'open'")


def say(page, text):
    page.fill(f"{CHAT} textarea", text)
    page.keyboard.press("Enter")


def messages(page):
    """[(author, body)] as shown, once acknowledged (no pending ones)."""
    return page.evaluate(
        "[...document.querySelectorAll('.liverooms-message:not(.liverooms-pending)')]"
        ".map(li => [li.querySelector('.liverooms-author').textContent,"
        " li.querySelector('.liverooms-body').textContent])"
    )


def wait_for_message(page, body):
    page.wait_for_function(
        "body => [...document.querySelectorAll('.liverooms-message:not(.liverooms-pending)"
        " .liverooms-body')].some(b => b.textContent === body)",
        arg=body,
    )


def entry_titles(page):
    return page.locator(f"{BLOG} .liverooms-entry-title").all_inner_texts()


def wait_for_entry(page, title):
    page.wait_for_function(
        "title => [...document.querySelectorAll('.liverooms-entry-title')]"
        ".some(h => h.textContent === title)",
        arg=title,
    )


def signed_in_editor(browser, example, next_path):
    """A page signed in to the admin as an editor, at ``next_path``."""
    page = browser.new_context().new_page()
    page.goto(f"http://127.0.0.1:{example.port}/admin/login/?next={next_path}")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin")
    page.click("input[type=submit]")
    return page


def publish_in_admin(browser, example, title, body):
    """Publish an entry with the admin's "add entry" form."""
    page = signed_in_editor(browser, example, "/admin/django_liverooms/entry/add/")
    page.select_option("#id_blog", label="Match day")
    page.fill("#id_title", title)
    page.fill("#id_body", body)
    page.select_option("#id_status", "published")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    page.context.close()


def retitle_in_admin(browser, example, title, new_title):
    pk = example.shell(
        f"from django_liverooms.models import Entry\nprint(Entry.objects.get(title={title!r}).pk)\n"
    ).strip()
    page = signed_in_editor(browser, example, f"/admin/django_liverooms/entry/{pk}/change/")
    page.fill("#id_title", new_title)
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    page.context.close()


def test_two_browsers_chat(browser, example):
    alice = open_page(browser, example, "/chat/lobby/")
    bob = open_page(browser, example, "/chat/lobby/")
    alice_name = alice.evaluate("document.querySelector('.liverooms-chat').liverooms.user.name")
    bob_name = bob.evaluate("document.querySelector('.liverooms-chat').liverooms.user.name")
    assert alice_name != bob_name  # two guests, one per browser session

    # Each sees the other online, and the other typing.
    alice.wait_for_function(
        "name => document.querySelector('[data-liverooms-presence]').textContent.includes(name)",
        arg=bob_name,
    )
    bob.fill(f"{CHAT} textarea", "Hel")
    alice.wait_for_function(
        "name => document.querySelector('[data-liverooms-typing]').textContent.includes(name)",
        arg=bob_name,
    )

    say(alice, "Hello <b>Bob</b>")
    wait_for_message(bob, "Hello <b>Bob</b>")
    say(bob, "Hi Alice\nhow are you?")
    wait_for_message(alice, "Hi Alice\nhow are you?")
    wait_for_message(bob, "Hi Alice\nhow are you?")

    expected = [(alice_name, "Hello <b>Bob</b>"), (bob_name, "Hi Alice\nhow are you?")]
    assert [tuple(m) for m in messages(alice)][-2:] == expected
    assert [tuple(m) for m in messages(bob)][-2:] == expected
    assert bob.locator(f"{CHAT} .liverooms-messages b").count() == 0  # text, not HTML
    # Each page marks its own messages.
    assert alice.locator(".liverooms-mine .liverooms-body").all_inner_texts() == [
        "Hello <b>Bob</b>"
    ]
    alice.context.close()
    bob.context.close()


def test_an_entry_published_in_the_admin_appears_without_reload(browser, example):
    reader = open_page(browser, example, "/liveblog/match-day/")
    reader.evaluate("window.__same_page = true")
    assert entry_titles(reader) == ["Kick-off"]
    reader.wait_for_function(
        "document.querySelector('[data-liverooms-readers]').textContent !== ''"
    )

    publish_in_admin(browser, example, "Goal!", "<p>1-0 <script>alert(1)</script></p>")

    wait_for_entry(reader, "Goal!")
    assert entry_titles(reader) == ["Goal!", "Kick-off"]  # newest first
    assert reader.locator(".liverooms-entry-body").first.inner_html() == "<p>1-0 </p>"

    retitle_in_admin(browser, example, "Goal!", "Goal! 1-0")
    wait_for_entry(reader, "Goal! 1-0")
    assert entry_titles(reader) == ["Goal! 1-0", "Kick-off"]
    assert "edited" in reader.locator(".liverooms-entry-meta").first.inner_text()
    assert reader.evaluate("window.__same_page") is True
    reader.context.close()


def test_the_page_reconnects_after_a_restart_and_shows_what_was_sent_meanwhile(browser, example):
    page = open_page(browser, example, "/chat/lobby/")
    page.evaluate("window.__same_page = true")
    say(page, "before the restart")
    wait_for_message(page, "before the restart")

    port = example.port
    example.kill_server(port)
    page.wait_for_function("document.querySelector('.liverooms-chat').dataset.state === 'offline'")
    # Sent by someone else while this page is cut off...
    example.shell(
        "from django_liverooms.models import Message, Room\n"
        "Message.objects.create(room=Room.objects.get(slug='lobby'), body='while you were away',"
        " author_name='bot')\n"
    )
    # ...and by this page: queued until the server is back.
    say(page, "queued while offline")
    assert page.locator(".liverooms-pending .liverooms-body").all_inner_texts() == [
        "queued while offline"
    ]

    example.server(port=port, application=APPLICATION)
    # The network is back: the page retries now rather than at its next backoff.
    page.evaluate("window.dispatchEvent(new Event('online'))")
    wait_until_open(page)
    wait_for_message(page, "queued while offline")

    bodies = [body for _author, body in messages(page)]
    assert bodies[-3:] == ["before the restart", "while you were away", "queued while offline"]
    assert bodies.count("queued while offline") == 1  # sent again, stored once
    assert page.locator(".liverooms-pending").count() == 0
    assert page.evaluate("window.__same_page") is True
    stored = example.shell(
        "from django_liverooms.models import Message\n"
        "print(Message.objects.filter(body='queued while offline').count())\n"
    )
    assert stored.strip() == "1"
    page.context.close()


def test_a_reader_without_websockets_follows_the_blog_over_sse(browser, example):
    reader = open_page(browser, example, "/liveblog/match-day/", "delete window.WebSocket")
    transport = reader.evaluate("document.querySelector('.liverooms-liveblog').liverooms.transport")
    assert transport == "sse"
    wait_for_entry(reader, "Kick-off")
    shown = entry_titles(reader)

    publish_in_admin(browser, example, "Over SSE", "<p>Streamed.</p>")

    wait_for_entry(reader, "Over SSE")
    assert entry_titles(reader) == ["Over SSE", *shown]
    reader.context.close()


def test_load_earlier_messages_pages_back_and_keeps_the_place(browser, example):
    # 60 messages: the first history carries the latest 50 (HISTORY_LIMIT).
    example.shell(
        "from django_liverooms.models import Message, Room\n"
        "room = Room.objects.create(slug='archive', title='Archive')\n"
        "for n in range(1, 61):\n"
        "    Message.objects.create(room=room, author_name='Bot', body=f'line {n}')\n"
        "Message.objects.get(room=room, body='line 3').delete()\n"
    )
    page = open_page(browser, example, "/chat/archive/")
    wait_for_message(page, "line 60")
    # The latest 50 events: lines 12-60 and the deletion of line 3.
    assert messages(page)[0] == ["Bot", "line 12"] and len(messages(page)) == 49
    earlier = page.locator("[data-liverooms-earlier]")
    assert earlier.is_visible() and earlier.inner_text() == "Load earlier messages"
    page.evaluate("document.querySelector('.liverooms-messages').scrollTop = 0")
    # Where a message is inside the scrolled list (the button above may go).
    place_of = (
        "body => { const list = document.querySelector('.liverooms-messages');"
        " const li = [...list.children].find("
        "li => li.querySelector('.liverooms-body').textContent === body);"
        " return li.getBoundingClientRect().top - list.getBoundingClientRect().top; }"
    )
    top_before = page.evaluate(place_of, "line 12")
    earlier.click()
    page.wait_for_function("document.querySelector('[data-liverooms-earlier]').hidden")
    shown = messages(page)
    assert [body for _, body in shown[:11]] == [
        "line 1",
        "line 2",
        "This message was deleted.",
        *[f"line {n}" for n in range(4, 12)],
    ]
    assert len(shown) == 60
    # The message that was at the top is where it was: nothing jumped.
    assert abs(page.evaluate(place_of, "line 12") - top_before) < 2
    page.context.close()


# The message menu (issue 16) -------------------------------------------------------


def message_item(page, body):
    """The shown message whose text is ``body``."""
    return page.locator(
        ".liverooms-message:not(.liverooms-pending)",
        has=page.locator(".liverooms-body", has_text=body),
    )


def choose(page, body, action):
    """Open the menu of the message showing ``body`` and choose ``action`` ("Edit"...)."""
    item = message_item(page, body)
    item.get_by_role("button", name="Actions for the message by").click()
    item.get_by_role("menuitem", name=action, exact=True).click()


def offered(page, body):
    """The actions the menu of the message showing ``body`` offers ([]: no menu)."""
    item = message_item(page, body)
    toggle = item.locator(".liverooms-menu-button")
    if toggle.count() == 0 or not toggle.is_visible():
        return []
    toggle.click()
    actions = item.get_by_role("menuitem").all_inner_texts()
    toggle.click()
    return actions


def test_an_author_edits_and_deletes_their_message_and_others_see_it_live(browser, example):
    carol = signed_in(browser, example, "carol", "/chat/own-edits/")
    dave = signed_in(browser, example, "dave", "/chat/own-edits/")
    say(carol, "see you at 8")
    wait_for_message(dave, "see you at 8")
    assert offered(carol, "see you at 8") == ["Edit", "Delete", "Reply", "React"]

    # With the keyboard: the menu button, "Edit", the new text, Enter.
    message_item(carol, "see you at 8").locator(".liverooms-menu-button").focus()
    carol.keyboard.press("Enter")
    carol.keyboard.press("Enter")
    editor = carol.locator("textarea.liverooms-edit")
    assert editor.input_value() == "see you at 8"
    editor.fill("see you at 9")
    carol.keyboard.press("Enter")
    wait_for_message(dave, "see you at 9")
    wait_for_message(carol, "see you at 9")
    for page in (carol, dave):
        assert message_item(page, "see you at 9").locator(".liverooms-edited").is_visible()
    assert carol.locator("textarea.liverooms-edit").count() == 0

    carol.once("dialog", lambda dialog: dialog.accept())
    choose(carol, "see you at 9", "Delete")
    for page in (carol, dave):
        wait_for_message(page, "This message was deleted.")
        deleted = message_item(page, "This message was deleted.")
        assert "liverooms-deleted" in deleted.get_attribute("class")
        assert deleted.locator(".liverooms-actions").count() == 0  # no menu left
    assert [body for _author, body in messages(dave)] == ["This message was deleted."]
    carol.context.close()
    dave.context.close()


def test_a_moderator_deletes_a_message_and_mutes_its_author(browser, example):
    admin = signed_in(browser, example, "admin", "/chat/moderated/")
    dave = signed_in(browser, example, "dave", "/chat/moderated/")
    say(dave, "buy cheap watches")
    wait_for_message(admin, "buy cheap watches")
    assert offered(admin, "buy cheap watches") == [
        "Delete",
        "Mute",
        "Unmute",
        "Report",
        "Reply",
        "React",
    ]

    admin.once("dialog", lambda dialog: dialog.accept())
    choose(admin, "buy cheap watches", "Delete")
    wait_for_message(dave, "This message was deleted.")
    assert [body for _author, body in messages(dave)] == ["This message was deleted."]
    assert dave.locator(".liverooms-actions").count() == 0

    say(dave, "sorry")
    wait_for_message(admin, "sorry")
    choose(admin, "sorry", "Mute")
    notice = admin.locator("[data-liverooms-error]")
    notice.filter(has_text="dave is muted in this room.").wait_for()
    assert offered(admin, "sorry") == ["Delete", "Unmute", "Report", "Reply", "React"]

    # Dave's next post is refused: the muted notice, and his text given back.
    say(dave, "let me speak")
    dave.locator("[data-liverooms-error]").filter(
        has_text="You may not post here now: a moderator may have muted you."
    ).wait_for()
    assert dave.locator(f"{CHAT} textarea").input_value() == "let me speak"
    assert dave.locator(".liverooms-pending").count() == 0
    stored = example.shell(
        "from django_liverooms.models import Message\n"
        "print(Message.objects.filter(body='let me speak').count())\n"
    )
    assert stored.strip() == "0"

    choose(admin, "sorry", "Unmute")
    notice.filter(has_text="dave is no longer muted in this room.").wait_for()
    say(dave, "thanks")
    wait_for_message(admin, "thanks")
    admin.context.close()
    dave.context.close()


def test_a_member_gets_no_moderation_on_others_messages(browser, example):
    carol = signed_in(browser, example, "carol", "/chat/members/")
    dave = signed_in(browser, example, "dave", "/chat/members/")
    guest = open_page(browser, example, "/chat/members/")
    say(carol, "carol's")
    say(guest, "a guest's")
    for page in (carol, dave, guest):
        wait_for_message(page, "carol's")
        wait_for_message(page, "a guest's")
    # Signed in, they may report, answer and react to others' messages; nothing more.
    answers = ["Report", "Reply", "React"]
    assert offered(dave, "carol's") == answers and offered(dave, "a guest's") == answers
    assert dave.get_by_role("menuitem").count() == 0
    assert offered(carol, "carol's") == ["Edit", "Delete", "Reply", "React"]
    # The server lets no guest change, report or react to a message, theirs
    # included; a guest who may post may reply.
    assert offered(guest, "a guest's") == ["Reply"] and offered(guest, "carol's") == ["Reply"]
    for page in (carol, dave, guest):
        page.context.close()


def test_an_attached_image_reaches_the_other_page_and_a_refused_file_says_why(browser, example):
    from .test_attachments import tiny_png

    example.shell("from django_liverooms.models import Room\nRoom.objects.create(slug='files')\n")
    carol = signed_in(browser, example, "carol", "/chat/files/")
    dave = signed_in(browser, example, "dave", "/chat/files/")
    attach = f"{CHAT} input[type=file]"
    carol.set_input_files(
        attach, files=[{"name": "red.png", "mimeType": "image/png", "buffer": tiny_png(16)}]
    )
    carol.wait_for_selector(
        f"{CHAT} [data-liverooms-ready] li:not(.liverooms-uploading):has-text('red.png')"
    )
    say(carol, "a red square")
    wait_for_message(dave, "a red square")
    image = f"{CHAT} .liverooms-attachments img"
    dave.wait_for_function(
        "image => { const img = document.querySelector(image);"
        " return img && img.complete && img.naturalWidth === 16; }",
        arg=image,
    )
    assert dave.get_attribute(image, "alt") == "red.png"
    assert dave.get_attribute(image, "loading") == "lazy"
    # An HTML page named like an image: the server's reason shows in the error line.
    html = b"<!doctype html><script>alert(1)</script>"
    carol.set_input_files(
        attach, files=[{"name": "cat.png", "mimeType": "image/png", "buffer": html}]
    )
    error = f"{CHAT} [data-liverooms-error]"
    carol.wait_for_function(
        "error => document.querySelector(error).textContent.includes('allowed here')", arg=error
    )
    assert "could not be attached" in carol.text_content(error)
    assert carol.locator(f"{CHAT} [data-liverooms-ready] li").count() == 0
    carol.context.close()
    dave.context.close()


def test_a_reply_and_a_reaction_reach_the_other_reader_live(browser, example):
    carol = signed_in(browser, example, "carol", "/chat/replies/")
    dave = signed_in(browser, example, "dave", "/chat/replies/")
    say(carol, "kick-off at three?")
    wait_for_message(dave, "kick-off at three?")
    choose(dave, "kick-off at three?", "Reply")
    assert (
        "Replying to carol: kick-off at three?" in dave.locator(".liverooms-replying").inner_text()
    )
    say(dave, "yes, at three")
    for page in (carol, dave):
        wait_for_message(page, "yes, at three")
        quote = message_item(page, "yes, at three").locator(".liverooms-quote")
        assert quote.locator(".liverooms-quote-author").inner_text() == "carol"
        assert quote.locator(".liverooms-quote-body").inner_text() == "kick-off at three?"
    assert dave.locator(".liverooms-replying").is_hidden()

    choose(carol, "yes, at three", "React")
    message_item(carol, "yes, at three").get_by_role("button", name="👍", exact=True).click()
    for page in (carol, dave):
        reaction = message_item(page, "yes, at three").locator(".liverooms-reaction")
        reaction.filter(has_text="👍 1").wait_for()
    mine = message_item(carol, "yes, at three").locator(".liverooms-reaction", has_text="👍 1")
    assert mine.get_attribute("aria-pressed") == "true"
    theirs = message_item(dave, "yes, at three").locator(".liverooms-reaction", has_text="👍 1")
    assert theirs.get_attribute("aria-pressed") == "false"
    mine.click()  # taken back
    message_item(dave, "yes, at three").locator(".liverooms-reaction").wait_for(state="detached")

    # The quoted message deleted: the reply's quote says so, live.
    carol.once("dialog", lambda dialog: dialog.accept())
    choose(carol, "kick-off at three?", "Delete")
    for page in (carol, dave):
        quote = message_item(page, "yes, at three").locator(".liverooms-quote")
        quote.filter(has_text="This message was deleted.").wait_for()
    for page in (carol, dave):
        page.context.close()


def test_unread_counts_rise_and_clear_when_the_room_is_read(browser, example):
    home = signed_in(browser, example, "dave", "/", widget=False)
    assert "unread" not in home.locator("a[href='/chat/news-room/']").locator("..").inner_text()
    carol = signed_in(browser, example, "carol", "/chat/news-room/")
    for n in range(3):
        say(carol, f"news {n} @dave")
    wait_for_message(carol, "news 2 @dave")
    home.reload()
    entry = home.locator("li", has=home.locator("a[href='/chat/news-room/']"))
    assert "3 unread" in entry.inner_text() and "@3" in entry.inner_text()
    room = signed_in(browser, example, "dave", "/chat/news-room/")
    wait_for_message(room, "news 2 @dave")
    home.wait_for_timeout(300)  # the widget marks the room read (coalesced)
    room.context.close()  # and on close
    for _ in range(20):
        home.reload()
        entry = home.locator("li", has=home.locator("a[href='/chat/news-room/']"))
        if "unread" not in entry.inner_text():
            break
        home.wait_for_timeout(250)
    assert "unread" not in entry.inner_text()
    for page in (home, carol):
        page.context.close()
