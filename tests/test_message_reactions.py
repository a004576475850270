"""Reactions to chat messages (issue 16): stored, one per user, emoji and
message, announced as coalesced ``message.reactions`` events that replay."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from django.test import override_settings

from django_liverooms import protocol, streams
from django_liverooms.models import Message, MessageReaction, RoomEvent, RoomMute

from .factories import make_user
from .test_consumers import client as ws

pytestmark = pytest.mark.django_db(transaction=True)

LOBBY = "/ws/chat/lobby/"
FAST = override_settings(LIVEROOMS={"REACTION_INTERVAL": 0.05})


@database_sync_to_async
def post(room, user, body="hello"):
    return Message.objects.create(room=room, author=user, body=body).pk


@database_sync_to_async
def stored(room, type_):
    return [json.loads(e.frame) for e in RoomEvent.objects.filter(stream=room, type=type_)]


async def next_of(chat, type_):
    while True:
        frame = await chat.receive_frame()
        if frame["type"] == type_:
            return frame


def test_the_frames():
    frame = '{"type": "message.react", "id": 4, "emoji": "👍"}'
    assert protocol.parse(frame) == protocol.ReactToMessage(id=4, emoji="👍", on=True)
    off = '{"type": "message.react", "id": 4, "emoji": "👍", "on": false}'
    assert protocol.parse(off).on is False
    for bad in (
        '{"type": "message.react", "emoji": "👍"}',
        '{"type": "message.react", "id": 4, "emoji": ""}',
        '{"type": "message.react", "id": 4, "emoji": "👍", "on": 1}',
    ):
        with pytest.raises(protocol.ProtocolError) as refused:
            protocol.parse(bad)
        assert refused.value.code == protocol.BAD_FRAME
    counts = [{"emoji": "👍", "count": 2, "users": [1, 2]}]
    reacted = protocol.message_reactions(id=4, reactions=counts)
    message = {"type": "message", "id": 4, "body": "hi"}
    assert protocol.with_current_reactions(message, reacted)["reactions"] == counts
    cleared = protocol.message_reactions(id=4, reactions=[])
    assert "reactions" not in protocol.with_current_reactions(
        {**message, "reactions": counts}, cleared
    )
    gone = {**message, "redacted": True, "body": ""}
    assert protocol.with_current_reactions(gone, reacted) == gone


@FAST
async def test_a_reaction_reaches_every_reader_and_replays_with_the_message(room, alice, bob):
    message_id = await post(room, bob)
    chat, other = ws(LOBBY, alice), ws(LOBBY, bob)
    await chat.open()
    await other.open()
    await chat.send_frame({"type": "message.react", "id": message_id, "emoji": "👍"})
    for reader in (chat, other):
        event = await next_of(reader, "message.reactions")
        assert event["id"] == message_id and event["seq"] == 2
        assert event["reactions"] == [{"emoji": "👍", "count": 1, "users": [alice.pk]}]
    # The history replays both: the message with its reactions, then the event.
    [message] = await stored(room, "message")
    assert message["reactions"] == [{"emoji": "👍", "count": 1, "users": [alice.pk]}]
    late = ws(LOBBY, bob)
    _, history = await late.open()
    assert [f["type"] for f in history["items"]] == ["message", "message.reactions"]
    for socket in (chat, other, late):
        await socket.disconnect()


@FAST
async def test_one_per_user_and_emoji_and_taken_back(room, alice, bob):
    message_id = await post(room, bob)
    chat = ws(LOBBY, alice)
    await chat.open()
    for emoji in ("👍", "👍", "❤️"):
        await chat.send_frame({"type": "message.react", "id": message_id, "emoji": emoji})
    event = await next_of(chat, "message.reactions")
    assert [(r["emoji"], r["count"]) for r in event["reactions"]] == [("👍", 1), ("❤️", 1)]
    await chat.send_frame({"type": "message.react", "id": message_id, "emoji": "👍", "on": False})
    await chat.send_frame({"type": "message.react", "id": message_id, "emoji": "❤️", "on": False})
    assert (await next_of(chat, "message.reactions"))["reactions"] == []
    [message] = await stored(room, "message")
    assert "reactions" not in message
    assert not await database_sync_to_async(MessageReaction.objects.exists)()
    await chat.disconnect()


@override_settings(LIVEROOMS={"REACTION_INTERVAL": 0.3})
async def test_reactions_within_an_interval_are_one_event(room, alice, bob):
    message_id = await post(room, bob)
    users = [alice, bob] + [await database_sync_to_async(make_user)(f"user{n}") for n in range(3)]
    sockets = [ws(LOBBY, user) for user in users]
    for socket in sockets:
        await socket.open()
    for socket in sockets:
        await socket.send_frame({"type": "message.react", "id": message_id, "emoji": "😂"})
    event = await next_of(sockets[0], "message.reactions")
    assert event["reactions"][0]["count"] == 5
    assert event["reactions"][0]["users"] == [user.pk for user in users]
    await asyncio.sleep(0.5)
    assert len(await stored(room, "message.reactions")) == 1
    for socket in sockets:
        await socket.disconnect()


@FAST
async def test_refusals(room, alice, bob):
    message_id = await post(room, bob)
    guest = ws(LOBBY)
    await guest.open()
    await guest.send_frame({"type": "message.react", "id": message_id, "emoji": "👍"})
    assert (await guest.receive_frame())["code"] == protocol.FORBIDDEN
    chat = ws(LOBBY, alice)
    await chat.open()
    for frame, code in (
        ({"id": message_id, "emoji": "🦄"}, protocol.BAD_FRAME),  # not on the allow-list
        ({"id": message_id + 100, "emoji": "👍"}, protocol.BAD_FRAME),  # no such message
    ):
        await chat.send_frame({"type": "message.react", **frame})
        assert (await chat.receive_frame())["code"] == code
    await database_sync_to_async(RoomMute.objects.create)(room=room, user=alice)
    await chat.send_frame({"type": "message.react", "id": message_id, "emoji": "👍"})
    assert (await chat.receive_frame())["code"] == protocol.FORBIDDEN
    assert await chat.receive_nothing(timeout=0.2)
    assert not await database_sync_to_async(MessageReaction.objects.exists)()
    for socket in (guest, chat):
        await socket.disconnect()


@FAST
async def test_a_removed_message_takes_no_reactions_and_announces_none(room, alice, bob):
    message_id = await post(room, bob)
    await database_sync_to_async(streams.react)(room, message_id, alice, "👍", True)
    await database_sync_to_async(lambda: Message.objects.get(pk=message_id).delete())()
    chat = ws(LOBBY, alice)
    await chat.open()
    await chat.send_frame({"type": "message.react", "id": message_id, "emoji": "❤️"})
    assert (await chat.receive_frame())["code"] == protocol.BAD_FRAME
    assert await database_sync_to_async(streams.record_reactions)(room, [message_id]) == []
    await chat.disconnect()


def test_a_redacted_message_keeps_nobody_s_reactions():
    counts = [{"emoji": "👍", "count": 1, "users": [7]}]
    for frame in (
        {"type": "message", "id": 4, "body": "hi", "reactions": counts},
        protocol.message_reactions(id=4, reactions=counts),
    ):
        assert "reactions" not in protocol.redacted(frame)


def test_the_admin_shows_who_reacted(admin_client, room, alice, bob):
    message = Message.objects.create(room=room, author=bob, body="hi")
    streams.react(room, message.pk, alice, "👏", True)
    page = admin_client.get(f"/admin/django_liverooms/message/{message.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "👏" in html and "alice" in html
