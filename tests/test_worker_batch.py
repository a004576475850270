"""Worker mode stores the events waiting for it in batches (workers.store_batch)."""

import pytest
from channels.db import database_sync_to_async
from django.test import override_settings

from django_liverooms import workers
from django_liverooms.models import Message

from .factories import make_room, make_user
from .test_layers import RunningWorker, client
from .test_layers import redis_layers as redis_layers  # the fixture

pytestmark = pytest.mark.django_db(transaction=True)


def event(room, body, client_id, key="k", user=None):
    return {
        "type": workers.PERSIST_EVENT,
        "room": room.pk,
        "user": user,
        "name": "Bot",
        "key": key,
        "body": body,
        "client_id": client_id,
        "reply_channel": "unused",
    }


def test_a_batch_is_stored_per_room_in_order():
    lobby, other = make_room(), make_room("other", "Other")
    batch = [
        event(lobby, "a1", "1"),
        event(other, "b1", "2"),
        event(lobby, "a2", "3"),
        event(lobby, "a1", "1"),  # a repeat within the batch: stored once
        event(other, "b2", "4"),
    ]
    outcomes, outbox = workers.store_batch(batch)
    by_client = {e["client_id"] + e["body"]: o for e, o in outcomes}
    assert len(outcomes) == 5 and not any(isinstance(o, Exception) for _, o in outcomes)
    assert [o.duplicate for e, o in outcomes if e["room"] == lobby.pk] == [False, False, True]
    assert by_client["1a1"].message_id == by_client["3a2"].message_id - 1
    assert [(b.group, b.seq) for b in outbox] == [
        (lobby.group_name, 1),
        (lobby.group_name, 2),
        (other.group_name, 1),
        (other.group_name, 2),
    ]
    assert list(
        Message.objects.filter(room=lobby).order_by("pk").values_list("body", flat=True)
    ) == [
        "a1",
        "a2",
    ]


def test_one_bad_event_fails_alone():
    lobby = make_room()
    batch = [event(lobby, "good", "1"), event(lobby, "bad", "2", key=None), event(lobby, "ok", "3")]
    outcomes, outbox = workers.store_batch(batch)
    failed = [e["body"] for e, o in outcomes if isinstance(o, Exception)]
    assert failed == ["bad"]
    assert [b.seq for b in outbox] == [1, 2]
    assert set(Message.objects.values_list("body", flat=True)) == {"good", "ok"}


@override_settings(LIVEROOMS={"PERSISTENCE": "worker", "SEND_RATE": None, "USER_SEND_RATE": None})
async def test_messages_waiting_for_a_worker_are_all_stored_and_acknowledged(
    redis_layers,  # noqa: F811
):
    await database_sync_to_async(make_room)()
    alice = await database_sync_to_async(make_user)("alice")
    sender = client("/ws/chat/lobby/", alice)
    await sender.open()
    for n in range(12):
        await sender.send_frame({"type": "message", "body": f"m{n}", "client_id": f"w{n}"})
    async with RunningWorker():
        acks = [await sender.receive_frame(timeout=10) for _ in range(12)]
    assert [(a["body"], a["seq"]) for a in acks] == [(f"m{n}", n + 1) for n in range(12)]
    assert await Message.objects.acount() == 12
    await sender.disconnect()
