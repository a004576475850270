"""Replies (issue 16): a message quotes the one it answers, as that one is now."""

import json

import pytest
from channels.db import database_sync_to_async

from django_liverooms import protocol, streams, workers
from django_liverooms.models import Message, RoomEvent

from .factories import make_room, make_user
from .test_consumers import client as ws

pytestmark = pytest.mark.django_db(transaction=True)

LOBBY = "/ws/chat/lobby/"


@pytest.fixture
def alice():
    return make_user("alice", first_name="Alice")


def stored_frame(message_id):
    event = RoomEvent.objects.get(type="message", object_id=message_id)
    return json.loads(event.frame)


def test_the_frame():
    frame = '{"type": "message", "body": "yes", "client_id": "c", "reply_to": 7}'
    assert protocol.parse(frame).reply_to == 7
    assert protocol.parse('{"type": "message", "body": "yes", "client_id": "c"}').reply_to is None
    for bad in ('"7"', "0", "true", "1.5"):
        with pytest.raises(protocol.ProtocolError) as refused:
            protocol.parse(
                f'{{"type": "message", "body": "y", "client_id": "c", "reply_to": {bad}}}'
            )
        assert (refused.value.code, refused.value.client_id) == (protocol.BAD_FRAME, "c")
    author = protocol.user_info(1, "Bob")
    long = protocol.quote(id=7, author=author, body="x" * 500)
    assert long["body"] == "x" * 199 + "\u2026" and long["author"] == author
    assert protocol.quote(id=7, author=author, body="hi", removed=True) == {
        "id": 7,
        "redacted": True,
    }
    reply = {"type": "message", "id": 8, "reply_to": {"id": 7, "author": author, "body": "hi"}}
    edited = protocol.quote(id=7, author=author, body="hello")
    assert protocol.with_quote(reply, edited)["reply_to"]["body"] == "hello"
    other = protocol.quote(id=9, author=author, body="other")
    assert protocol.with_quote(reply, other) == reply


async def test_a_reply_carries_the_quote_to_every_reader(room, alice, bob):
    chat, other = ws(LOBBY, alice), ws(LOBBY, bob)
    await chat.open()
    await other.open()
    await other.send_frame({"type": "message", "body": "kick-off?", "client_id": "q"})
    question = await chat.receive_frame()
    assert await other.receive_frame() == question
    await chat.send_frame(
        {"type": "message", "body": "at three", "client_id": "a", "reply_to": question["id"]}
    )
    answer = await other.receive_frame()
    assert answer["reply_to"] == {
        "id": question["id"],
        "author": {"id": bob.pk, "name": "bob"},
        "body": "kick-off?",
    }
    assert await chat.receive_frame() == answer  # the sender's acknowledgement
    saved = await database_sync_to_async(Message.objects.get)(pk=answer["id"])
    assert saved.reply_to_id == question["id"]
    for socket in (chat, other):
        await socket.disconnect()


async def test_a_reply_to_nothing_here_is_refused_and_not_stored(room, alice, bob):
    elsewhere = await database_sync_to_async(make_room)("other", "Other")
    there = await database_sync_to_async(Message.objects.create)(room=elsewhere, body="x")
    gone = await database_sync_to_async(Message.objects.create)(room=room, body="y")
    await database_sync_to_async(gone.delete)()
    chat = ws(LOBBY, alice)
    await chat.open()
    for n, target in enumerate((there.pk, gone.pk, 10**6)):
        await chat.send_frame(
            {"type": "message", "body": "hm", "client_id": f"c{n}", "reply_to": target}
        )
        error = await chat.receive_frame()
        assert (error["code"], error["client_id"]) == (protocol.BAD_FRAME, f"c{n}")
        assert f"no message {target} in this room" in error["detail"]
    count = database_sync_to_async(Message.all_objects.filter(body="hm").count)
    assert await count() == 0
    await chat.send_frame({"type": "message", "body": "fine", "client_id": "ok"})
    assert (await chat.receive_frame())["body"] == "fine"  # the socket goes on
    await chat.disconnect()


def test_stored_replies_follow_the_quoted_message(alice, bob):
    room = make_room()
    sender = streams.Sender(user=bob, name="bob", key=f"user:{bob.pk}")
    question = streams.post_message(room, sender, "kick-off at 3?", "q").message_id
    reply_sender = streams.Sender(user=alice, name="Alice", key=f"user:{alice.pk}")
    answer = streams.post_message(room, reply_sender, "yes", "a", reply_to=question).message_id
    assert stored_frame(answer)["reply_to"]["body"] == "kick-off at 3?"
    parent = Message.objects.get(pk=question)
    parent.body = "kick-off at 4?"
    parent.save()
    assert stored_frame(answer)["reply_to"]["body"] == "kick-off at 4?"
    parent.delete()
    assert stored_frame(answer)["reply_to"] == {"id": question, "redacted": True}
    assert "kick-off" not in json.dumps([e.frame for e in RoomEvent.objects.all()])


def test_a_data_protection_purge_leaves_no_quote(alice, bob):
    room = make_room()
    sender = streams.Sender(user=bob, name="bob", key=f"user:{bob.pk}")
    question = streams.post_message(room, sender, "my phone is 555", "q").message_id
    reply_sender = streams.Sender(user=alice, name="Alice", key=f"user:{alice.pk}")
    answer = streams.post_message(room, reply_sender, "ok", "a", reply_to=question).message_id
    streams.purge_user(bob.pk)
    assert stored_frame(answer)["reply_to"] == {"id": question, "redacted": True}
    assert "555" not in json.dumps([e.frame for e in RoomEvent.objects.all()])


def test_group_commit_quotes_in_one_query_and_refuses_per_message(
    alice, bob, django_assert_max_num_queries
):
    room = make_room()
    sender = streams.Sender(user=bob, name="bob", key=f"user:{bob.pk}")
    question = streams.post_message(room, sender, "who?", "q").message_id
    batch = [
        streams.NewMessage(room, sender, f"r{n}", f"r{n}", reply_to=question) for n in range(5)
    ] + [streams.NewMessage(room, sender, "bad", "bad", reply_to=question + 100)]
    results, _ = streams.post_messages(batch)
    assert [isinstance(r, streams.Posted) for r in results] == [True] * 5 + [False]
    assert results[-1].client_id == "bad"
    assert all(stored_frame(r.message_id)["reply_to"]["body"] == "who?" for r in results[:5])
    more = [
        streams.NewMessage(room, sender, f"s{n}", f"s{n}", reply_to=question) for n in range(20)
    ]
    with django_assert_max_num_queries(12):
        streams.post_messages(more)


def test_worker_mode_stores_replies():
    room = make_room()
    question = Message.objects.create(room=room, body="who?").pk
    sender = streams.Sender(user=None, name="Guest", key="session:1")
    command = protocol.SendMessage("me", "c1", reply_to=question)
    event = workers.persist_event(room, sender, command, "unused")
    outcomes, _ = workers.store_batch([event])
    [(_, posted)] = outcomes
    assert stored_frame(posted.message_id)["reply_to"]["body"] == "who?"


def test_a_removed_reply_quotes_nothing():
    reply = {"type": "message", "id": 8, "body": "yes", "reply_to": {"id": 7, "body": "q"}}
    assert "reply_to" not in protocol.redacted(reply)
