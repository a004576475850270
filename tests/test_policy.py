"""The default policy, row by row, over WebSocket and HTTP (docs/permissions.md),
and access taken away while a socket is open."""

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Permission
from django.test import Client, override_settings

from django_liverooms import streams
from django_liverooms.models import Message, Room, RoomMember, RoomMute
from django_liverooms.testing import StreamCommunicator

from .asgi import application
from .factories import make_blog, make_room, make_user
from .test_consumers import ORIGIN, client

pytestmark = pytest.mark.django_db(transaction=True)

ROLES = ["anonymous", "reader", "writer", "moderator"]
STREAMS = {
    "public room": ("/ws/chat/lobby/", "/live/chat/lobby/messages"),
    "private room": ("/ws/chat/secret/", "/live/chat/secret/messages"),
    "live blog": ("/ws/liveblog/match-day/", "/live/liveblog/match-day/entries"),
}

# (role, stream): (close code or None, welcome.can_post, answer to a message,
# answer to deleting someone else's message, HTTP status of the history API)
OPEN, REFUSED = None, 4403
EXPECTED = {
    ("anonymous", "public room"): (OPEN, False, "forbidden", "forbidden", 200),
    ("anonymous", "private room"): (REFUSED, None, None, None, 403),
    ("anonymous", "live blog"): (OPEN, False, "unknown_type", "unknown_type", 200),
    ("reader", "public room"): (OPEN, True, "message", "forbidden", 200),
    ("reader", "private room"): (REFUSED, None, None, None, 403),
    ("reader", "live blog"): (OPEN, False, "unknown_type", "unknown_type", 200),
    ("writer", "public room"): (OPEN, True, "message", "forbidden", 200),
    ("writer", "private room"): (OPEN, True, "message", "forbidden", 200),
    ("writer", "live blog"): (OPEN, True, "unknown_type", "unknown_type", 200),
    ("moderator", "public room"): (OPEN, True, "message", "message.deleted", 200),
    ("moderator", "private room"): (REFUSED, None, None, None, 403),
    ("moderator", "live blog"): (OPEN, False, "unknown_type", "unknown_type", 200),
}


def grant(user, *codenames):
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))


@pytest.fixture
def world():
    """Two rooms and a live blog, a message from a bot in each room, and users.

    writer: a member of the private room and an editor of live blogs.
    moderator: may change every message (not a member of the private room).
    """
    public, private = make_room("lobby"), make_room("secret", "Secret")
    private.private = True
    private.save()
    make_blog()
    writer, reader, moderator = make_user("writer"), make_user("reader"), make_user("moderator")
    grant(writer, "add_entry", "change_entry")
    grant(moderator, "change_message")
    RoomMember.objects.create(room=private, user=writer)
    bot = streams.Sender(user=None, name="bot", key="bot")
    for room in (public, private):
        streams.post_message(room, bot, "from the bot", None)
    return {"anonymous": None, "reader": reader, "writer": writer, "moderator": moderator}


@pytest.mark.parametrize("stream", list(STREAMS))
@pytest.mark.parametrize("role", ROLES)
async def test_policy_over_websocket(world, role, stream):
    close, can_post, post_answer, moderate_answer, _ = EXPECTED[(role, stream)]
    path = STREAMS[stream][0]
    socket = client(path, world[role])
    if close is not None:
        assert await socket.close_code() == close
        return
    welcome, history = await socket.open()
    assert welcome["can_post"] is can_post
    assert welcome["can_moderate"] is (moderate_answer == "message.deleted")
    await socket.send_frame({"type": "message", "body": "hi", "client_id": "p1"})
    answer = await socket.receive_frame()
    assert (answer["type"] if answer["type"] != "error" else answer["code"]) == post_answer
    target = history["items"][0]["id"] if history["items"] else 1
    await socket.send_frame({"type": "message.delete", "id": target})
    answer = await socket.receive_frame()
    assert (answer["type"] if answer["type"] != "error" else answer["code"]) == moderate_answer
    await socket.disconnect()


@pytest.mark.parametrize("stream", list(STREAMS))
@pytest.mark.parametrize("role", ROLES)
def test_policy_over_http(world, role, stream):
    http = Client()
    if world[role] is not None:
        http.force_login(world[role])
    response = http.get(STREAMS[stream][1])
    assert response.status_code == EXPECTED[(role, stream)][4]


def test_every_cell_of_the_table_is_tested():
    assert set(EXPECTED) == {(r, s) for r in ROLES for s in STREAMS}


@override_settings(LIVEROOMS={"ANONYMOUS_CHAT": True})
async def test_guests_post_in_public_rooms_only_when_anonymous_chat_is_on(world):
    guest = client("/ws/chat/lobby/")
    welcome, _ = await guest.open()
    assert welcome["can_post"] is True
    await guest.send_frame({"type": "message", "body": "hi", "client_id": "g"})
    assert (await guest.receive_frame())["type"] == "message"
    assert await client("/ws/chat/secret/").close_code() == 4403


async def test_a_room_moderator_moderates_only_their_room(world):
    writer = world["writer"]
    await RoomMember.objects.filter(user=writer).aupdate(moderator=True)
    in_private, in_public = client("/ws/chat/secret/", writer), client("/ws/chat/lobby/", writer)
    _, private_history = await in_private.open()
    _, public_history = await in_public.open()
    await in_private.send_frame({"type": "message.delete", "id": private_history["items"][0]["id"]})
    assert (await in_private.receive_frame())["type"] == "message.deleted"
    await in_public.send_frame({"type": "message.delete", "id": public_history["items"][0]["id"]})
    assert (await in_public.receive_frame())["code"] == "forbidden"
    # A message of another room is not found here.
    await in_public.send_frame({"type": "message.delete", "id": private_history["items"][0]["id"]})
    assert (await in_public.receive_frame())["detail"].startswith("There is no message")
    await in_private.disconnect()
    await in_public.disconnect()


# Moderation ------------------------------------------------------------------


async def test_moderator_edits_and_deletes_and_every_reader_sees_it(world):
    moderator, reader = client("/ws/chat/lobby/", world["moderator"]), client("/ws/chat/lobby/")
    _, history = await moderator.open()
    await reader.open()
    message_id = history["items"][0]["id"]
    await moderator.send_frame({"type": "message.edit", "id": message_id, "body": "[removed]"})
    edited = await reader.receive_frame()
    assert edited == await moderator.receive_frame()
    assert (edited["type"], edited["seq"], edited["id"], edited["body"]) == (
        "message.edited",
        2,
        message_id,
        "[removed]",
    )
    await moderator.send_frame({"type": "message.delete", "id": message_id})
    assert await reader.receive_frame() == {"type": "message.deleted", "seq": 3, "id": message_id}
    await moderator.receive_frame()
    message = await Message.all_objects.aget(pk=message_id)
    assert message.is_removed and message.body == "[removed]"
    # A removed message is gone for moderation too.
    await moderator.send_frame({"type": "message.delete", "id": message_id})
    assert (await moderator.receive_frame())["code"] == "bad_frame"
    await moderator.disconnect()
    await reader.disconnect()


async def test_authors_edit_and_delete_their_own_messages_only(world):
    author = client("/ws/chat/lobby/", world["reader"])
    _, history = await author.open()
    await author.send_frame({"type": "message", "body": "tpyo", "client_id": "t"})
    own = await author.receive_frame()
    await author.send_frame({"type": "message.edit", "id": own["id"], "body": "typo"})
    assert (await author.receive_frame())["body"] == "typo"
    await author.send_frame({"type": "message.edit", "id": history["items"][0]["id"], "body": "x"})
    assert await author.receive_frame() == {
        "type": "error",
        "code": "forbidden",
        "detail": f"You may not change message {history['items'][0]['id']}.",
        "client_id": None,
    }
    await author.send_frame({"type": "message.delete", "id": own["id"]})
    assert (await author.receive_frame())["type"] == "message.deleted"
    await author.disconnect()


async def test_mute_stops_posting_until_it_ends_or_is_lifted(world):
    reader = world["reader"]
    moderator, muted = (
        client("/ws/chat/lobby/", world["moderator"]),
        client("/ws/chat/lobby/", reader),
    )
    await moderator.open()
    await muted.open()
    await moderator.send_frame({"type": "mute", "user_id": reader.pk, "minutes": 10})
    answer = await moderator.receive_frame()
    assert (answer["type"], answer["user_id"]) == ("muted", reader.pk) and answer["until"]
    await muted.send_frame({"type": "message", "body": "let me talk", "client_id": "m1"})
    assert await muted.receive_frame() == {
        "type": "error",
        "code": "forbidden",
        "detail": "You may not post in this room.",
        "client_id": "m1",
    }
    # Still connected and reading; a muted author may not edit either.
    await muted.send_frame({"type": "ping"})
    assert await muted.receive_frame() == {"type": "pong"}
    # An expired mute no longer counts.
    mute = await RoomMute.objects.aget(user=reader)
    mute.until = mute.created
    await mute.asave()
    await muted.send_frame({"type": "message", "body": "back", "client_id": "m2"})
    assert (await muted.receive_frame())["body"] == "back"
    await moderator.receive_frame()
    # Muted for good, then unmuted.
    await moderator.send_frame({"type": "mute", "user_id": reader.pk})
    assert await moderator.receive_frame() == {"type": "muted", "user_id": reader.pk, "until": None}
    await muted.send_frame({"type": "message", "body": "x", "client_id": "m3"})
    assert (await muted.receive_frame())["code"] == "forbidden"
    await moderator.send_frame({"type": "unmute", "user_id": reader.pk})
    assert await moderator.receive_frame() == {"type": "unmuted", "user_id": reader.pk}
    await muted.send_frame({"type": "message", "body": "free", "client_id": "m4"})
    assert (await muted.receive_frame())["body"] == "free"
    await moderator.disconnect()
    await muted.disconnect()


async def test_only_moderators_mute(world):
    reader = client("/ws/chat/lobby/", world["reader"])
    await reader.open()
    await reader.send_frame({"type": "mute", "user_id": world["writer"].pk})
    assert await reader.receive_frame() == {
        "type": "error",
        "code": "forbidden",
        "detail": "Only moderators may mute users here.",
        "client_id": None,
    }
    assert not await RoomMute.objects.aexists()
    await reader.disconnect()


# Access taken away while connected -------------------------------------------


async def test_a_member_removed_from_a_private_room_is_closed(world):
    writer = client("/ws/chat/secret/", world["writer"])
    await writer.open()
    await RoomMember.objects.filter(user=world["writer"]).adelete()
    error = await writer.receive_frame()
    assert (error["code"], error["detail"]) == ("forbidden", "You may no longer read this stream.")
    assert (await writer.receive_output())["code"] == 4403


async def test_readers_who_are_not_members_are_closed_when_a_room_becomes_private(world):
    guest, member = client("/ws/chat/lobby/"), client("/ws/chat/lobby/", world["writer"])
    await guest.open()
    await member.open()
    room = await Room.objects.aget(slug="lobby")
    await RoomMember.objects.acreate(room=room, user=world["writer"])
    room.private = True
    await database_sync_to_async(room.save)()
    assert (await guest.receive_frame())["code"] == "forbidden"
    assert (await guest.receive_output())["code"] == 4403
    await member.send_frame({"type": "ping"})
    assert await member.receive_frame() == {"type": "pong"}
    await member.disconnect()


async def test_a_deactivated_user_cannot_keep_posting(world):
    reader = world["reader"]
    socket = client("/ws/chat/lobby/", reader)
    await socket.open()
    reader.is_active = False
    await reader.asave()
    await socket.send_frame({"type": "message", "body": "still here?", "client_id": "d"})
    assert await socket.receive_frame() == {
        "type": "error",
        "code": "forbidden",
        "detail": "Your session has ended; sign in and reconnect.",
        "client_id": "d",
    }
    assert (await socket.receive_output())["code"] == 4403
    assert not await Message.objects.filter(body="still here?").aexists()


async def test_a_moderator_who_loses_the_permission_cannot_moderate(world):
    moderator = world["moderator"]
    socket = client("/ws/chat/lobby/", moderator)
    _, history = await socket.open()
    await database_sync_to_async(moderator.user_permissions.clear)()
    await socket.send_frame({"type": "message.delete", "id": history["items"][0]["id"]})
    assert (await socket.receive_frame())["code"] == "forbidden"
    await socket.disconnect()


def session_cookie(user):
    http = Client()
    http.force_login(user)
    return http.cookies["sessionid"].value


def session_client(path, session_key):
    headers = [*ORIGIN, (b"cookie", f"sessionid={session_key}".encode())]
    return StreamCommunicator(path, application=application, headers=headers)


# The write path alone: the session sweep (tests/test_sessions_revoke.py) would close it first.
@override_settings(LIVEROOMS={"SESSION_CHECK_INTERVAL": 0})
@pytest.mark.parametrize("how", ["logged out elsewhere", "password changed"])
async def test_a_session_ended_elsewhere_cannot_keep_posting(world, how):
    reader = world["reader"]
    key = await database_sync_to_async(session_cookie)(reader)
    socket = session_client("/ws/chat/lobby/", key)
    welcome, _ = await socket.open()
    assert welcome["user"]["id"] == reader.pk
    await socket.send_frame({"type": "message", "body": "one", "client_id": "1"})
    assert (await socket.receive_frame())["body"] == "one"

    def end_session():
        if how == "logged out elsewhere":
            from django.contrib.sessions.models import Session

            Session.objects.filter(session_key=key).delete()
        else:
            reader.set_password("new password")
            reader.save()

    await database_sync_to_async(end_session)()
    await socket.send_frame({"type": "message", "body": "two", "client_id": "2"})
    error = await socket.receive_frame()
    assert (error["code"], error["client_id"]) == ("forbidden", "2")
    assert (await socket.receive_output())["code"] == 4403
    assert not await Message.objects.filter(body="two").aexists()


async def test_a_session_check_does_not_touch_the_session(world):
    from django.contrib.sessions.models import Session

    key = await database_sync_to_async(session_cookie)(world["reader"])
    before = await Session.objects.aget(session_key=key)
    socket = session_client("/ws/chat/lobby/", key)
    await socket.open()
    await socket.send_frame({"type": "message", "body": "hi", "client_id": "1"})
    await socket.receive_frame()
    after = await Session.objects.aget(session_key=key)
    assert (after.session_data, after.expire_date) == (before.session_data, before.expire_date)
    await socket.disconnect()


async def test_a_deactivated_member_reading_a_private_room_is_closed(world):
    writer = world["writer"]
    socket = client("/ws/chat/secret/", writer)
    await socket.open()
    writer.is_active = False
    await database_sync_to_async(writer.save)()
    assert (await socket.receive_frame())["code"] == "forbidden"
    assert (await socket.receive_output())["code"] == 4403


async def test_a_recheck_for_another_user_leaves_a_socket_alone(world):
    reader = client("/ws/chat/lobby/", world["reader"])
    await reader.open()
    member = await RoomMember.objects.acreate(
        room=await Room.objects.aget(slug="lobby"), user=world["writer"]
    )
    await database_sync_to_async(member.delete)()
    assert await reader.receive_nothing(timeout=0.2)
    await reader.send_frame({"type": "ping"})
    assert await reader.receive_frame() == {"type": "pong"}
    await reader.disconnect()


async def test_a_user_from_other_middleware_beside_a_guest_session_keeps_posting(world):
    """A token-authenticated user whose cookie session is a guest's is checked by pk."""
    from django.contrib.sessions.backends.db import SessionStore

    reader = world["reader"]
    guest_session = SessionStore()
    await database_sync_to_async(guest_session.save)()
    socket = session_client("/ws/chat/lobby/", guest_session.session_key)
    socket.scope["user"] = reader  # as a token middleware would
    await socket.open()
    await socket.send_frame({"type": "message", "body": "by token", "client_id": "t"})
    assert (await socket.receive_frame())["body"] == "by token"
    reader.is_active = False
    await reader.asave()
    await socket.send_frame({"type": "message", "body": "again", "client_id": "t2"})
    assert (await socket.receive_frame())["code"] == "forbidden"
