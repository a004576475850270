"""The policy's clean_message hook: every way a socket's message (or edit) is stored."""

import pytest
from channels.db import database_sync_to_async
from django.db import IntegrityError
from django.test import override_settings

from django_liverooms import protocol, streams, workers
from django_liverooms.models import Message, RoomEvent

from .factories import make_room, make_user
from .test_layers import RunningWorker, client
from .test_layers import redis_layers as redis_layers  # the fixture
from .test_writer import batches as batches  # the fixture
from .test_writer import frames, message, open_chats

pytestmark = pytest.mark.django_db(transaction=True)

WORDS = "tests.policies.WordListPolicy"
# Frames sent together land in one batch of group commit.
WIDE = override_settings(LIVEROOMS={"POLICY": WORDS, "WRITE_WINDOW": 0.2, "USER_SEND_RATE": None})


async def stored_bodies():
    return [m async for m in Message.objects.order_by("pk").values_list("body", flat=True)]


@WIDE
async def test_a_rewritten_body_is_stored_and_broadcast_and_a_rejected_one_fails_alone(
    room, batches
):
    rejected, rewritten, reader = await open_chats(3)
    await rejected.send_frame(message("buy SPAM now", "bad"))
    await rewritten.send_frame(message("oh darn, heck", "good"))
    ack = await rewritten.receive_frame()
    assert (ack["type"], ack["body"], ack["client_id"], ack["seq"]) == (
        "message",
        "oh ****, ****",
        "good",
        1,
    )
    assert await reader.receive_frame() == ack
    # The rejected sender gets its error (with its client_id) and, as a reader, the other.
    got = {frame["type"]: frame for frame in await frames(rejected, 2)}
    error = got["error"]
    assert (error["code"], error["detail"], error["client_id"]) == (
        "rejected",
        "No spam here.",
        "bad",
    )
    assert "retry_after" not in error
    assert got["message"] == ack
    assert batches == [2]  # one batch: the refusal did not fail the other
    assert await stored_bodies() == ["oh ****, ****"]
    history = await database_sync_to_async(streams.read_history)(room, after=None, limit=10)
    assert ['"body":"oh ****, ****"' in item for item in history.items] == [True]
    # A resend of the stored message is answered with it; nothing new is stored.
    await rewritten.send_frame(message("oh darn, heck", "good"))
    assert await rewritten.receive_frame() == ack
    # The rejected message was never acknowledged: nothing more comes.
    assert await rejected.receive_nothing(timeout=0.3)
    assert await Message.objects.acount() == 1
    for chat in (rejected, rewritten, reader):
        await chat.disconnect()


@WIDE
async def test_the_hook_applies_when_the_batch_is_stored_one_by_one(room, monkeypatch):
    def raced(batch):
        raise IntegrityError("another process stored one of these client_ids")

    monkeypatch.setattr(streams, "post_messages", raced)
    a, b = await open_chats(2)
    await a.send_frame(message("spam spam", "a"))
    await b.send_frame(message("darn", "b"))
    ack = await b.receive_frame()
    assert (ack["body"], ack["seq"]) == ("****", 1)
    got = {frame["type"]: frame for frame in await frames(a, 2)}
    assert (got["error"]["code"], got["error"]["client_id"]) == ("rejected", "a")
    assert await stored_bodies() == ["****"]
    for chat in (a, b):
        await chat.disconnect()


@override_settings(LIVEROOMS={"POLICY": WORDS})
async def test_edits_go_through_the_hook(room):
    [author, reader] = await open_chats(2)
    await author.send_frame(message("fine", "c1"))
    posted = await author.receive_frame()
    await reader.receive_frame()
    await author.send_frame({"type": "message.edit", "id": posted["id"], "body": "darn it"})
    edited = await reader.receive_frame()
    assert (edited["type"], edited["body"]) == ("message.edited", "**** it")
    assert await author.receive_frame() == edited
    await author.send_frame({"type": "message.edit", "id": posted["id"], "body": "spam"})
    error = await author.receive_frame()
    assert (error["type"], error["code"], error["client_id"]) == ("error", "rejected", None)
    assert await reader.receive_nothing(timeout=0.2)
    assert await stored_bodies() == ["**** it"]
    # The stored frames carry the cleaned text only.
    frames_now = [e async for e in RoomEvent.objects.values_list("frame", flat=True)]
    assert not [f for f in frames_now if "darn" in f or "spam" in f]
    for chat in (author, reader):
        await chat.disconnect()


def persist(room, body, client_id, key="user:1", user=None, route=None):
    sender = streams.Sender(user=user, name="Bob", key=key)
    command = protocol.SendMessage(body, client_id)
    return workers.persist_event(room, sender, command, "unused", route=route)


@override_settings(LIVEROOMS={"POLICY": WORDS})
def test_a_worker_round_cleans_and_rejects_message_by_message():
    lobby = make_room()
    batch = [
        persist(lobby, "darn", "1"),
        persist(lobby, "spam", "2"),
        persist(lobby, "fine", "3"),
        persist(lobby, "darn", "1"),  # a repeat of a stored one: its answer
    ]
    outcomes, outbox = workers.store_batch(batch)
    got = [o.code if isinstance(o, Exception) else o.duplicate for _, o in outcomes]
    assert got == [False, "rejected", False, True]
    assert outcomes[1][1].client_id == "2"
    assert [b.seq for b in outbox] == [1, 2]
    assert list(Message.objects.order_by("pk").values_list("body", flat=True)) == ["****", "fine"]


def test_a_worker_asks_the_hook_with_the_user_and_the_route(monkeypatch):
    from django_liverooms import policy

    seen = []

    class RouteReadingPolicy(policy.DefaultPolicy):
        """Refuses messages unless the socket's route names the "acme" site."""

        def clean_message(self, user, room, body, scope=None):
            seen.append((user, scope))
            if scope["url_route"]["kwargs"].get("site") != "acme":
                raise policy.MessageRejected("Not on this site.")
            return body

    lobby = make_room()
    alice = make_user("alice")
    monkeypatch.setattr(policy, "get_policy", RouteReadingPolicy)
    outcomes, _ = workers.store_batch(
        [
            persist(lobby, "hi", "1", f"user:{alice.pk}", alice, {"site": "acme", "slug": "lobby"}),
            persist(lobby, "hi", "2", "session:x", None, {"site": "other"}),
        ]
    )
    assert [type(o).__name__ for _, o in outcomes] == ["Posted", "ProtocolError"]
    (user, scope), (guest, _) = seen
    assert user.pk == alice.pk and not guest.is_authenticated
    assert scope["url_route"]["kwargs"] == {"site": "acme", "slug": "lobby"}


@override_settings(LIVEROOMS={"PERSISTENCE": "worker", "POLICY": WORDS, "WORKER_ACK_TIMEOUT": 0.3})
async def test_worker_mode_cleans_and_rejects(redis_layers, room):  # noqa: F811
    alice = await database_sync_to_async(make_user)("alice")
    sender, reader = client("/ws/chat/lobby/", alice), client("/ws/chat/lobby/")
    await sender.open()
    await reader.open()
    async with RunningWorker():
        await sender.send_frame(message("spam!", "w1"))
        await sender.send_frame(message("heck yes", "w2"))
        error = await sender.receive_frame(timeout=5)
        assert (error["type"], error["code"], error["client_id"]) == ("error", "rejected", "w1")
        ack = await sender.receive_frame(timeout=5)
        assert (ack["type"], ack["body"], ack["client_id"], ack["seq"]) == (
            "message",
            "**** yes",
            "w2",
            1,
        )
        assert await reader.receive_frame(timeout=5) == ack
        # Handled: the sender is not told later that no worker answered.
        assert await sender.receive_nothing(timeout=0.6)
    assert await stored_bodies() == ["**** yes"]
    await sender.disconnect()
    await reader.disconnect()
