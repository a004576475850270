"""Flags with the admin's review queue, site-wide bans and kicks (moderation.py)."""

import asyncio
import io
import json
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from websockets.exceptions import ConnectionClosed

from django_liverooms import broadcast, moderation, policy
from django_liverooms.models import Ban, Flag, Message, RoomMember

from .factories import make_blog, make_room, make_user
from .test_consumers import client
from .test_live import open_stream as open_live
from .test_live import recv, site
from .test_live import session_cookie as live_cookie
from .test_policy import session_cookie
from .test_sse import open_stream as open_sse

pytestmark = pytest.mark.django_db(transaction=True)

BANNED = "You are banned from the chat rooms. Reason: Spam"
KICKED = "You were disconnected by a moderator."


def post(room, author, body):
    return Message.objects.create(room=room, author=author, body=body)


def error(detail, code="forbidden"):
    return {"type": "error", "code": code, "detail": detail, "client_id": None}


async def assert_closed(socket, detail, timeout=3):
    """The forbidden error with ``detail``, then close 4403."""
    assert await socket.receive_frame(timeout) == error(detail)
    assert (await socket.receive_output(timeout))["code"] == 4403


# Flags over the socket -------------------------------------------------------------


@pytest.fixture
def messages(room, alice, bob):
    gone = post(room, bob, "gone")
    gone.delete()
    return {
        "theirs": post(room, bob, "spam"),
        "guests": Message.objects.create(room=room, body="a guest's", author_name="Guest 1"),
        "own": post(room, alice, "mine"),
        "gone": gone,
        "elsewhere": post(make_room("other", "Other"), bob, "elsewhere"),
    }


async def test_a_flag_is_stored_once_and_answered_to_the_reporter_alone(messages, alice, bob):
    guest, reporter, reader = (
        client("/ws/chat/lobby/"),
        client("/ws/chat/lobby/", alice),
        client("/ws/chat/lobby/", bob),
    )
    for socket in (guest, reporter, reader):
        await socket.open()
    theirs = messages["theirs"].pk

    await guest.send_frame({"type": "flag", "id": theirs})
    assert await guest.receive_frame() == error("Only signed-in users may report messages.")

    await reporter.send_frame({"type": "flag", "id": theirs, "reason": "  Spam!  "})
    assert await reporter.receive_frame() == {"type": "flagged", "id": theirs}
    await reporter.send_frame({"type": "flag", "id": theirs, "reason": "again"})  # idempotent
    assert await reporter.receive_frame() == {"type": "flagged", "id": theirs}
    await reporter.send_frame({"type": "flag", "id": messages["guests"].pk})  # no reason
    assert await reporter.receive_frame() == {"type": "flagged", "id": messages["guests"].pk}

    own = messages["own"].pk
    await reporter.send_frame({"type": "flag", "id": own})
    assert await reporter.receive_frame() == error(
        "You cannot report your own message.", "bad_frame"
    )
    for name in ("gone", "elsewhere"):
        message_id = messages[name].pk
        await reporter.send_frame({"type": "flag", "id": message_id})
        assert await reporter.receive_frame() == error(
            f"There is no message {message_id} in this room.", "bad_frame"
        )
    await reporter.send_frame({"type": "flag", "id": theirs, "reason": "x" * 501})
    assert (await reporter.receive_frame())["code"] == "bad_frame"

    assert await reader.receive_nothing(timeout=0.3)  # nothing is broadcast
    stored = await database_sync_to_async(
        lambda: sorted(Flag.objects.values_list("message", "reporter", "reason", "status"))
    )()
    assert stored == [
        (theirs, alice.pk, "Spam!", "open"),
        (messages["guests"].pk, alice.pk, "", "open"),
    ]
    for socket in (guest, reporter, reader):
        await socket.disconnect()


@override_settings(LIVEROOMS={"SEND_RATE": (1, 60)})
async def test_flags_count_against_the_send_rate(messages, alice):
    reporter = client("/ws/chat/lobby/", alice)
    await reporter.open()
    await reporter.send_frame({"type": "flag", "id": messages["theirs"].pk})
    assert (await reporter.receive_frame())["type"] == "flagged"
    await reporter.send_frame({"type": "flag", "id": messages["guests"].pk})
    assert (await reporter.receive_frame())["code"] == "rate_limited"
    assert await Flag.objects.acount() == 1
    await reporter.disconnect()


# The admin's review queue ----------------------------------------------------------


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("boss", password="pw")
    client.force_login(user)
    return client


@pytest.fixture
def queue(alice, bob):
    """Flags of three messages in two rooms, created in a known order."""
    carol = make_user("carol")
    lobby, other = make_room(), make_room("other", "Other")
    spam, rude, old = (
        post(lobby, bob, "buy followers"),
        post(other, bob, "rude"),
        post(lobby, bob, "x"),
    )
    now = timezone.now()
    flags = {
        "spam": Flag.objects.create(message=spam, reporter=alice, reason="advert"),
        "spam2": Flag.objects.create(message=spam, reporter=carol),
        "rude": Flag.objects.create(message=rude, reporter=alice, reason="insult"),
        "done": Flag.objects.create(message=old, reporter=carol, status=Flag.STATUS.dismissed),
    }
    # Oldest first: done, rude, spam, spam2.
    for minutes, name in enumerate(["spam2", "spam", "rude", "done"], start=1):
        Flag.objects.filter(pk=flags[name].pk).update(created=now - timedelta(minutes=minutes))
    return {"lobby": lobby, "other": other, "spam": spam, "rude": rude, **flags}


def listed(response):
    """The review queue's rows, as (excerpt, reporter, status)."""
    return [
        (row.message.body, row.reporter.username, row.status)
        for row in response.context["cl"].result_list
    ]


def test_the_review_queue_lists_open_flags_oldest_first_then_the_others(admin_client, queue):
    response = admin_client.get("/admin/django_liverooms/flag/")
    assert response.status_code == 200
    assert listed(response) == [
        ("rude", "alice", "open"),
        ("buy followers", "alice", "open"),
        ("buy followers", "carol", "open"),
        ("x", "carol", "dismissed"),
    ]
    html = response.content.decode()
    for shown in ("buy followers", "Lobby", "advert", "insult", "bob"):
        assert shown in html
    # Filtered by status and by room.
    by_room = admin_client.get(
        f"/admin/django_liverooms/flag/?status__exact=open&message__room__id__exact={queue['other'].pk}"
    )
    assert listed(by_room) == [("rude", "alice", "open")]
    # The room list counts each room's open flags, linked to its queue.
    rooms = admin_client.get("/admin/django_liverooms/room/").content.decode()
    link = f"/admin/django_liverooms/flag/?status__exact=open&amp;message__room__id__exact={queue['lobby'].pk}"
    assert f'<a href="{link}">2</a>' in rooms


def test_deleting_the_flagged_messages_removes_them_live_and_resolves_their_flags(
    admin_client, queue
):
    with broadcast.collect() as box:
        response = admin_client.post(
            "/admin/django_liverooms/flag/",
            {"action": "delete_messages", "_selected_action": [queue["spam"].pk]},
        )
    assert response.status_code == 302
    assert [json.loads(b.text)["type"] for b in box] == ["message.deleted"]
    assert Message.all_objects.get(pk=queue["spam"].message_id).is_removed
    statuses = dict(Flag.objects.values_list("pk", "status"))
    assert [statuses[queue[name].pk] for name in ("spam", "spam2", "rude", "done")] == [
        "resolved",  # both flags of the deleted message
        "resolved",
        "open",
        "dismissed",
    ]
    # Redacted as any deletion: the stored message frame has no text left.
    page = admin_client.get("/live/chat/lobby/messages").json()
    [stored] = [
        item
        for item in page["items"]
        if (item["type"], item["id"]) == ("message", queue["spam"].message_id)
    ]
    assert (stored["body"], stored["redacted"]) == ("", True)


def test_dismissing_flags(admin_client, queue):
    admin_client.post(
        "/admin/django_liverooms/flag/",
        {"action": "dismiss", "_selected_action": [queue["rude"].pk, queue["spam"].pk]},
    )
    statuses = dict(Flag.objects.values_list("pk", "status"))
    assert [statuses[queue[name].pk] for name in ("spam", "spam2", "rude")] == [
        "dismissed",
        "open",
        "dismissed",
    ]
    assert not Message.all_objects.filter(is_removed=True).exists()


def test_a_ban_saved_in_the_admin_records_who_banned(admin_client, alice):
    response = admin_client.post(
        "/admin/django_liverooms/ban/add/", {"user": alice.pk, "until": "", "reason": "Spam"}
    )
    assert response.status_code == 302, response.content
    ban = Ban.objects.get()
    assert (ban.user, ban.created_by.username, ban.until, ban.is_active) == (
        alice,
        "boss",
        None,
        True,
    )
    assert admin_client.get("/admin/django_liverooms/ban/").status_code == 200


# Bans -----------------------------------------------------------------------------


def test_a_ban_keeps_a_user_out_of_every_chat_room_but_not_live_blogs(alice, bob, client):
    lobby, staff, blog = make_room(), make_room("staff", "Staff"), make_blog()
    staff.private = True
    staff.save()
    RoomMember.objects.create(room=staff, user=alice)
    rules = policy.get_policy()

    def verdicts(user):
        user = get_user_model().objects.get(pk=user.pk)  # a new check
        return [(rules.can_read(user, s), rules.can_post(user, s)) for s in (lobby, staff, blog)]

    assert verdicts(alice) == [(True, True), (True, True), (True, False)]
    ban = moderation.ban(alice, reason="Spam", by=bob)
    assert verdicts(alice) == [(False, False), (False, False), (True, False)]
    assert verdicts(bob) == [(True, True), (False, False), (True, False)]
    # Told why, over HTTP too.
    client.force_login(alice)
    refused = client.get("/live/chat/lobby/messages")
    assert (refused.status_code, refused.json()["error"]["detail"]) == (403, BANNED)
    assert client.get("/live/liveblog/match-day/entries").status_code == 200
    # A ban with an end, and one that has ended.
    Ban.objects.filter(pk=ban.pk).update(until=timezone.now() + timedelta(hours=1))
    user = get_user_model().objects.get(pk=alice.pk)
    assert rules.refused_because(user, lobby).startswith(
        "You are banned from the chat rooms until "
    )
    Ban.objects.filter(pk=ban.pk).update(until=timezone.now() - timedelta(minutes=1))
    assert verdicts(alice) == [(True, True), (True, True), (True, False)]


async def test_a_banned_user_is_told_why_when_a_chat_socket_opens(room, alice):
    await database_sync_to_async(make_blog)()
    await database_sync_to_async(moderation.ban)(alice, reason="Spam")
    refused = client("/ws/chat/lobby/", alice)
    connected, _ = await refused.connect()
    assert connected
    await assert_closed(refused, BANNED)
    blog = client("/ws/liveblog/match-day/", alice)
    await blog.open()  # live blogs stay readable
    await blog.disconnect()


async def test_a_ban_closes_the_users_chat_sockets_at_once_without_a_write(room, alice, bob):
    await database_sync_to_async(make_blog)()
    chat, blog, other = (
        client("/ws/chat/lobby/", alice),
        client("/ws/liveblog/match-day/", alice),
        client("/ws/chat/lobby/", bob),
    )
    for socket in (chat, blog, other):
        await socket.open()
    await database_sync_to_async(moderation.ban)(alice, reason="Spam")
    await assert_closed(chat, BANNED)
    assert await blog.receive_nothing(timeout=0.3)  # its re-check lets it read on
    assert await other.receive_nothing()
    await other.send_frame({"type": "message", "body": "still here", "client_id": "b1"})
    assert (await other.receive_frame())["body"] == "still here"
    for socket in (chat, blog, other):
        await socket.disconnect()


@override_settings(LIVEROOMS={"FANOUT": "consumer"})
async def test_without_a_hub_a_ban_takes_effect_at_the_next_write(room, alice):
    chat = client("/ws/chat/lobby/", alice)
    await chat.open()
    await database_sync_to_async(moderation.ban)(alice, reason="Spam")
    assert await chat.receive_nothing(timeout=0.3)
    await chat.send_frame({"type": "message", "body": "hi", "client_id": "a1"})
    assert await chat.receive_frame() == {**error(BANNED), "client_id": "a1"}
    assert (await chat.receive_output())["code"] == 4403
    assert await Message.objects.acount() == 0
    await chat.disconnect()


def test_a_write_check_reads_the_ban_once(room, alice):
    rules = policy.get_policy()
    with CaptureQueriesContext(connection) as queries:
        user, current = policy.reader_now(alice, room, None)
        assert rules.can_post(user, current) and not rules.can_moderate(user, current)
    assert sum("liverooms_ban" in q["sql"] for q in queries.captured_queries) == 1


def test_batch_checks_read_every_users_ban_in_one_query(room):
    users = [make_user(f"user{n}") for n in range(6)]
    moderation.ban(users[0])
    moderation.ban(users[1], until=timezone.now() - timedelta(minutes=1))  # over
    moderation.ban(users[2], until=timezone.now() + timedelta(days=1))
    moderation.ban(users[2])  # for good: the one that ends last counts
    rules = policy.get_policy()
    with CaptureQueriesContext(connection) as queries:
        with policy.batch_checks([(user, None, room) for user in users]):
            verdicts = [rules.can_post(user, room) for user in users]
            detail = rules.refused_because(users[2], room)
    assert verdicts == [False, True, False, True, True, True]
    assert detail == "You are banned from the chat rooms."
    assert sum("liverooms_ban" in q["sql"] for q in queries.captured_queries) == 1


# Kicks ----------------------------------------------------------------------------


async def test_a_kick_closes_every_connection_of_the_user_who_may_reconnect(room, alice, bob):
    await database_sync_to_async(make_blog)()
    chat, blog, other = (
        client("/ws/chat/lobby/", alice),
        client("/ws/liveblog/match-day/", alice),
        client("/ws/chat/lobby/", bob),
    )
    for socket in (chat, blog, other):
        await socket.open()
    sse = await open_sse(session=await database_sync_to_async(session_cookie)(alice))
    await sse.event()  # welcome
    out = io.StringIO()
    await database_sync_to_async(call_command)("liverooms_kick", "alice", stdout=out)
    assert out.getvalue() == "alice: disconnected in every server process\n"
    await assert_closed(chat, KICKED)
    await assert_closed(blog, KICKED)
    _, ended = await sse.event()
    assert ended == error(KICKED)
    assert await sse.expect_end() == []
    assert await other.receive_nothing()
    again = client("/ws/chat/lobby/", alice)
    welcome, _ = await again.open()
    assert welcome["user"]["id"] == alice.pk and welcome["can_post"]
    for socket in (again, other):
        await socket.disconnect()


def test_the_kick_action_for_a_hosts_user_admin(admin_client, alice, bob, monkeypatch):
    from django.contrib import admin

    from django_liverooms.admin import kick_users

    kicked = []
    monkeypatch.setattr(moderation, "kick", lambda user: kicked.append(user.pk))
    user_admin = admin.site._registry[get_user_model()]
    monkeypatch.setattr(user_admin, "actions", [kick_users])
    response = admin_client.post(
        "/admin/auth/user/", {"action": "kick_users", "_selected_action": [alice.pk, bob.pk]}
    )
    assert response.status_code == 302
    assert sorted(kicked) == sorted([alice.pk, bob.pk])


def test_kick_command_refuses_unknown_users_before_kicking_anyone(alice):
    with pytest.raises(CommandError, match="There is no user 'nobody'"):
        call_command("liverooms_kick", "alice", "nobody")


# Real processes ---------------------------------------------------------------------


@pytest.mark.live
async def test_a_ban_and_a_kick_close_sockets_on_every_server_process(tmp_path, redis_url):
    with site(tmp_path, redis_url) as s:
        await asyncio.to_thread(
            s.shell,
            "from django.contrib.auth.models import User\nUser.objects.create_user('alice')",
        )
        ports = [s.server(), s.server()]
        cookies = {
            name: {"Cookie": await asyncio.to_thread(live_cookie, s, name)}
            for name in ("alice", "admin")
        }
        sockets = {
            (name, port): (
                await open_live(port, "/ws/chat/lobby/", additional_headers=cookies[name])
            )[0]
            for name in ("alice", "admin")
            for port in ports
        }
        await asyncio.to_thread(
            s.shell,
            "from django.contrib.auth.models import User\n"
            "from django_liverooms import moderation\n"
            "moderation.ban(User.objects.get(username='alice'), reason='Spam')\n",
        )
        for port in ports:
            socket = sockets[("alice", port)]
            assert await recv(socket) == error(BANNED)
            with pytest.raises(ConnectionClosed) as closed:
                await recv(socket)
            assert closed.value.rcvd.code == 4403
        await asyncio.to_thread(s.manage, "liverooms_kick", "admin")
        for port in ports:
            socket = sockets[("admin", port)]
            assert await recv(socket) == error(KICKED)
            with pytest.raises(ConnectionClosed) as closed:
                await recv(socket)
            assert closed.value.rcvd.code == 4403
