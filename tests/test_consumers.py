import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.test import override_settings

from django_liverooms.broadcast import Broadcast
from django_liverooms.models import Entry, Message
from django_liverooms.testing import StreamCommunicator

from .asgi import application
from .factories import make_blog, make_user, publish_entry

pytestmark = pytest.mark.django_db(transaction=True)


ORIGIN = [(b"origin", b"http://localhost")]


def client(path, user=None):
    return StreamCommunicator(path, user=user, application=application, headers=ORIGIN)


@pytest.fixture
def blog():
    return make_blog()


@pytest.fixture
def alice():
    return make_user("alice", first_name="Alice", last_name="A")


async def test_welcome_and_empty_history_for_a_guest(room):
    chat = client("/ws/chat/lobby/")
    welcome, history = await chat.open()
    assert welcome["type"] == "welcome"
    assert (welcome["stream"], welcome["slug"], welcome["seq"], welcome["can_post"]) == (
        "chat",
        "lobby",
        0,
        False,
    )
    assert welcome["user"]["id"] is None and welcome["user"]["name"].startswith("Guest ")
    assert history == {"type": "history", "items": [], "complete": True}
    await chat.disconnect()


async def test_messages_reach_every_reader_and_ack_the_sender(room, alice):
    sender, reader = client("/ws/chat/lobby/", alice), client("/ws/chat/lobby/")
    welcome, _ = await sender.open()
    await reader.open()
    assert welcome["can_post"] and welcome["user"] == {"id": alice.pk, "name": "Alice A"}
    await sender.send_frame({"type": "message", "body": "Hello", "client_id": "m1"})
    ack, seen = await sender.receive_frame(), await reader.receive_frame()
    assert ack == seen
    assert ack["type"] == "message" and ack["seq"] == 1 and ack["client_id"] == "m1"
    assert ack["body"] == "Hello" and ack["author"] == {"id": alice.pk, "name": "Alice A"}
    assert ack["slug"] == "lobby" and ack["id"] == (await Message.objects.aget()).pk
    await sender.disconnect()
    await reader.disconnect()


async def test_a_repeated_send_is_stored_once_and_acknowledged_again(room, alice):
    sender, reader = client("/ws/chat/lobby/", alice), client("/ws/chat/lobby/")
    await sender.open()
    await reader.open()
    frame = {"type": "message", "body": "once", "client_id": "retry-me"}
    await sender.send_frame(frame)
    first = await sender.receive_frame()
    await reader.receive_frame()
    # The retry comes on a new connection, as after a reconnect.
    retry = client("/ws/chat/lobby/", alice)
    await retry.open()
    await retry.send_frame(frame)
    assert await retry.receive_frame() == first
    assert await reader.receive_nothing(timeout=0.2)
    assert await Message.objects.acount() == 1
    for c in (sender, reader, retry):
        await c.disconnect()


async def test_guests_may_not_post_by_default(room):
    chat = client("/ws/chat/lobby/")
    await chat.open()
    await chat.send_frame({"type": "message", "body": "hi", "client_id": "g1"})
    assert await chat.receive_frame() == {
        "type": "error",
        "code": "forbidden",
        "detail": "You may not post in this room.",
        "client_id": "g1",
    }
    assert await Message.objects.acount() == 0
    await chat.disconnect()


@override_settings(LIVEROOMS={"ANONYMOUS_CHAT": True})
async def test_guests_post_when_anonymous_chat_is_on(room):
    chat = client("/ws/chat/lobby/")
    welcome, _ = await chat.open()
    assert welcome["can_post"]
    await chat.send_frame({"type": "message", "body": "hi", "client_id": "g1"})
    frame = await chat.receive_frame()
    assert frame["author"] == welcome["user"] and frame["body"] == "hi"
    await chat.disconnect()


async def test_ping_pong_and_bad_input_keep_the_connection_open(room, alice):
    chat = client("/ws/chat/lobby/", alice)
    await chat.open()
    bad = [
        ({"type": "websocket.receive", "bytes": b"\x00"}, "bad_json"),
        ({"type": "websocket.receive", "text": ""}, "bad_json"),
        ({"type": "websocket.receive", "text": "{nope"}, "bad_json"),
        ({"type": "websocket.receive", "text": "[]"}, "bad_json"),
        (
            {
                "type": "websocket.receive",
                "text": '{"type": "liverooms.frame", "seq": null, "text": "x"}',
            },
            "unknown_type",
        ),
        ({"type": "websocket.receive", "text": '{"type": "entry"}'}, "unknown_type"),
        ({"type": "websocket.receive", "text": '{"type": "message", "body": "x"}'}, "bad_frame"),
        (
            {
                "type": "websocket.receive",
                "text": json.dumps({"type": "message", "body": "x" * 4001, "client_id": "c"}),
            },
            "too_long",
        ),
        (
            {"type": "websocket.receive", "text": json.dumps({"type": "ping", "pad": "x" * 20000})},
            "too_long",
        ),
    ]
    for event, code in bad:
        await chat.send_input(event)
        frame = await chat.receive_frame()
        assert (frame["type"], frame["code"]) == ("error", code), event
    await chat.send_frame({"type": "ping"})
    assert await chat.receive_frame() == {"type": "pong"}
    assert await Message.objects.acount() == 0
    await chat.disconnect()


@pytest.mark.parametrize(
    "path",
    [
        "/ws/chat/nowhere/",
        "/ws/chat/Lobby/",
        "/ws/chat/" + "a" * 65 + "/",
        "/ws/chat/%C3%A9/",
        "/ws/liveblog/lobby/",
    ],
)
async def test_unknown_or_invalid_streams_close_with_4404(room, path):
    assert await client(path).close_code() == 4404


@override_settings(LIVEROOMS={"POLICY": "tests.policies.TenantPolicy"})
async def test_capturing_prefix_kwargs_reach_the_policy(room):
    welcome, _ = await client("/acme/live/chat/lobby/").open()
    assert welcome["slug"] == "lobby"
    assert await client("/globex/live/chat/lobby/").close_code() == 4403


async def test_the_same_include_works_under_two_prefixes(room, alice):
    first, second = client("/ws/chat/lobby/", alice), client("/other/chat/lobby/")
    await first.open()
    await second.open()
    await first.send_frame({"type": "message", "body": "both", "client_id": "b"})
    assert (await second.receive_frame())["body"] == "both"
    await first.disconnect()
    await second.disconnect()


async def post(room, body, n=1):
    from django_liverooms import streams

    sender = streams.Sender(user=None, name="bot", key="bot")
    for i in range(n):
        await database_sync_to_async(streams.post_message)(room, sender, f"{body} {i}", None)


async def test_history_and_resume_after_a_seq(room):
    await post(room, "old", 5)
    _, history = await client("/ws/chat/lobby/").open()
    assert [i["seq"] for i in history["items"]] == [1, 2, 3, 4, 5] and history["complete"]
    welcome, resumed = await client("/ws/chat/lobby/?after=3").open()
    assert welcome["seq"] == 5
    assert [i["body"] for i in resumed["items"]] == ["old 3", "old 4"]


@override_settings(LIVEROOMS={"HISTORY_LIMIT": 2})
async def test_history_is_bounded(room):
    await post(room, "m", 5)
    _, latest = await client("/ws/chat/lobby/").open()
    assert [i["seq"] for i in latest["items"]] == [4, 5] and latest["complete"] is False
    _, resumed = await client("/ws/chat/lobby/?after=1").open()
    assert [i["seq"] for i in resumed["items"]] == [2, 3] and resumed["complete"] is False


async def test_a_bad_after_is_reported_and_the_latest_history_sent(room):
    await post(room, "m", 2)
    chat = client("/ws/chat/lobby/?after=-1")
    await chat.connect()
    assert (await chat.receive_frame())["type"] == "welcome"
    error = await chat.receive_frame()
    assert (error["type"], error["code"]) == ("error", "bad_frame") and "after" in error["detail"]
    history = await chat.receive_frame()
    assert [i["seq"] for i in history["items"]] == [1, 2]
    await chat.disconnect()


async def test_live_frames_already_in_the_history_are_not_sent_twice(room):
    await post(room, "m", 3)
    chat = client("/ws/chat/lobby/")
    await chat.open()
    group = f"liverooms.chat.{room.pk}"
    layer = get_channel_layer()
    # A late broadcast of an event the history carried, then a new one.
    await layer.group_send(group, Broadcast(group, 3, '{"type":"message","seq":3}').event())
    await layer.group_send(group, Broadcast(group, 4, '{"type":"message","seq":4}').event())
    assert (await chat.receive_frame())["seq"] == 4
    assert await chat.receive_nothing(timeout=0.2)
    await chat.disconnect()


async def test_typing_reaches_the_others_but_not_the_sender(room, alice):
    typist, other = client("/ws/chat/lobby/", alice), client("/ws/chat/lobby/")
    await typist.open()
    await other.open()
    await typist.send_frame({"type": "typing"})
    assert await other.receive_frame() == {
        "type": "typing",
        "user": {"id": alice.pk, "name": "Alice A"},
    }
    assert await typist.receive_nothing(timeout=0.2)
    await typist.disconnect()
    await other.disconnect()


async def test_live_blog_entries_go_live_when_published(blog):
    reader = client("/ws/liveblog/match-day/")
    welcome, history = await reader.open()
    assert (welcome["stream"], welcome["can_post"], history["items"]) == ("liveblog", False, [])
    draft = await database_sync_to_async(Entry.objects.create)(
        blog=blog, title="T", body="<p>B</p>"
    )
    assert await reader.receive_nothing(timeout=0.2)  # drafts are not live

    def update(**fields):
        for name, value in fields.items():
            setattr(draft, name, value)
        draft.save()

    await database_sync_to_async(update)(status=Entry.STATUS.published)
    entry = await reader.receive_frame()
    assert entry["type"] == "entry" and entry["seq"] == 1 and entry["id"] == draft.pk
    assert (entry["title"], entry["body"], entry["slug"]) == ("T", "<p>B</p>", "match-day")
    await database_sync_to_async(update)(body="<p>B2<script>x</script></p>")
    edited = await reader.receive_frame()
    assert (edited["type"], edited["seq"], edited["body"]) == ("entry.edited", 2, "<p>B2</p>")
    await database_sync_to_async(draft.delete)()
    assert await reader.receive_frame() == {"type": "entry.deleted", "seq": 3, "id": draft.pk}
    await reader.disconnect()


async def test_live_blog_readers_cannot_post(blog):
    reader = client("/ws/liveblog/match-day/")
    await reader.open()
    await reader.send_frame({"type": "message", "body": "hi", "client_id": "c"})
    assert (await reader.receive_frame())["code"] == "unknown_type"
    await reader.send_frame({"type": "ping"})
    assert await reader.receive_frame() == {"type": "pong"}
    await reader.disconnect()


async def test_editors_are_told_they_can_post_to_a_live_blog(blog):
    editor = await database_sync_to_async(make_user)("ed", editor=True)
    welcome, _ = await client("/ws/liveblog/match-day/", editor).open()
    assert welcome["can_post"] is True


async def test_live_blog_history_replays_published_entries(blog):
    await database_sync_to_async(publish_entry)(blog, title="One")
    await database_sync_to_async(publish_entry)(blog, title="Two")
    _, history = await client("/ws/liveblog/match-day/").open()
    assert [(i["type"], i["title"]) for i in history["items"]] == [
        ("entry", "One"),
        ("entry", "Two"),
    ]


async def test_messages_from_code_reach_connected_readers(room):
    reader = client("/ws/chat/lobby/")
    await reader.open()
    await database_sync_to_async(Message.objects.create)(
        room=room, body="from a view", author_name="bot"
    )
    frame = await reader.receive_frame()
    assert (frame["type"], frame["body"], frame["client_id"]) == ("message", "from a view", None)
    await reader.disconnect()


async def test_handlers_make_no_extra_database_thread_hop(room, alice, monkeypatch):
    # Channels >= 4.2 runs close_old_connections() in the database thread
    # before every handler; these consumers' database calls do it themselves.
    hops = []

    async def counted():
        hops.append(1)

    monkeypatch.setattr("channels.consumer.aclose_old_connections", counted)
    sender, reader = client("/ws/chat/lobby/", alice), client("/ws/chat/lobby/")
    await sender.open()
    await reader.open()
    await sender.send_frame({"type": "message", "body": "Hello", "client_id": "m1"})
    assert (await reader.receive_frame())["body"] == "Hello"
    await sender.send_frame({"type": "ping"})
    assert any(frame["type"] == "pong" for frame in [await sender.receive_frame() for _ in "ab"])
    await sender.disconnect()
    await reader.disconnect()
    assert hops == []


async def test_concurrent_senders_get_gapless_increasing_seqs(room, alice):
    senders = [client("/ws/chat/lobby/", alice) for _ in range(4)]
    for s in senders:
        await s.open()
    await asyncio.gather(
        *(
            s.send_frame({"type": "message", "body": f"{n}-{k}", "client_id": f"{n}-{k}"})
            for n, s in enumerate(senders)
            for k in range(5)
        )
    )
    received = []
    for s in senders:  # (a nested async comprehension needs Python 3.11)
        received.append([(await s.receive_frame())["seq"] for _ in range(20)])
    for seqs in received:
        assert sorted(seqs) == list(range(1, 21))
    for s in senders:
        await s.disconnect()


async def test_stream_communicator_names_the_close_code():
    chat = client("/ws/chat/nowhere/")
    with pytest.raises(AssertionError, match="closed the connection with code 4404"):
        await chat.open()


@pytest.mark.parametrize("headers", [[], [(b"origin", b"http://evil.example")]])
async def test_cross_site_handshakes_are_refused(room, headers):
    chat = StreamCommunicator("/ws/chat/lobby/", application=application, headers=headers)
    connected, _ = await chat.connect()
    assert not connected


async def test_message_edits_and_deletions_reach_readers(room):
    await post(room, "typo", 1)
    reader = client("/ws/chat/lobby/")
    await reader.open()
    message = await Message.objects.aget()

    def edit_then_delete():
        message.body = "fixed"
        message.save()
        message.delete()

    await database_sync_to_async(edit_then_delete)()
    edited, deleted = await reader.receive_frame(), await reader.receive_frame()
    assert (edited["type"], edited["seq"], edited["id"], edited["body"]) == (
        "message.edited",
        2,
        message.pk,
        "fixed",
    )
    assert deleted == {"type": "message.deleted", "seq": 3, "id": message.pk}
    await reader.disconnect()
