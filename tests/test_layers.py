"""Channel-layer behaviour in this process: the real Redis layer, and worker mode."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import ChannelNameRouter
from channels.worker import Worker
from django.test import override_settings

from django_liverooms.models import Message, Room
from django_liverooms.routing import worker_routes
from django_liverooms.testing import StreamCommunicator

from .asgi import application
from .factories import make_user
from .settings import redis_channel_layers

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_layers(redis_url):
    layers = redis_channel_layers(redis_url)
    with override_settings(CHANNEL_LAYERS=layers):
        yield layers


@pytest.fixture
def alice():
    return make_user("alice")


ORIGIN = [(b"origin", b"http://localhost")]


def client(path, user=None):
    return StreamCommunicator(path, user=user, application=application, headers=ORIGIN)


async def test_chat_round_trip_over_redis(redis_layers, room, alice):
    assert type(get_channel_layer()).__name__ == "RedisChannelLayer"
    sender, reader = client("/ws/chat/lobby/", alice), client("/ws/chat/lobby/")
    await sender.open()
    await reader.open()
    await sender.send_frame({"type": "message", "body": "via redis", "client_id": "r1"})
    ack, seen = await sender.receive_frame(), await reader.receive_frame()
    assert ack == seen and ack["body"] == "via redis" and ack["seq"] == 1
    await sender.disconnect()
    await reader.disconnect()


class RunningWorker:
    """``runworker liverooms.persist``, in this event loop."""

    async def __aenter__(self):
        worker = Worker(
            ChannelNameRouter(worker_routes()), ["liverooms.persist"], get_channel_layer()
        )
        self.task = asyncio.ensure_future(worker.handle())
        return self

    async def __aexit__(self, *exc):
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@override_settings(LIVEROOMS={"PERSISTENCE": "worker"})
async def test_worker_mode_stores_then_broadcasts(redis_layers, room, alice):
    sender, reader = client("/ws/chat/lobby/", alice), client("/ws/chat/lobby/")
    await sender.open()
    await reader.open()
    async with RunningWorker():
        await sender.send_frame({"type": "message", "body": "queued", "client_id": "w1"})
        ack = await sender.receive_frame(timeout=5)
        assert ack["type"] == "message" and ack["client_id"] == "w1" and ack["seq"] == 1
        assert await reader.receive_frame() == ack
        message = await Message.objects.aget()
        assert (message.body, message.author_id, message.client_id) == ("queued", alice.pk, "w1")
        # A retry is answered by the worker with the stored frame, to the sender only.
        await sender.send_frame({"type": "message", "body": "queued", "client_id": "w1"})
        assert await sender.receive_frame(timeout=5) == ack
        assert await reader.receive_nothing(timeout=0.3)
    assert await Message.objects.acount() == 1
    await sender.disconnect()
    await reader.disconnect()


@override_settings(LIVEROOMS={"PERSISTENCE": "worker"})
async def test_worker_mode_waits_for_a_worker(redis_layers, room, alice):
    # The trade-off: with no worker running, a message waits in Redis, unstored
    # and unacknowledged, until one starts (or the layer expires it).
    sender = client("/ws/chat/lobby/", alice)
    await sender.open()
    await sender.send_frame({"type": "message", "body": "later", "client_id": "w2"})
    assert await sender.receive_nothing(timeout=0.5)
    assert await Message.objects.acount() == 0
    async with RunningWorker():
        ack = await sender.receive_frame(timeout=5)
    assert ack["body"] == "later"
    await sender.disconnect()


@override_settings(LIVEROOMS={"PERSISTENCE": "worker"})
async def test_worker_mode_still_checks_the_policy(redis_layers, room):
    guest = client("/ws/chat/lobby/")
    await guest.open()
    await guest.send_frame({"type": "message", "body": "hi", "client_id": "g"})
    assert (await guest.receive_frame())["code"] == "forbidden"
    await guest.disconnect()


@override_settings(
    CHANNEL_LAYERS={
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1}}
    },
    LIVEROOMS={"PERSISTENCE": "worker"},
)
async def test_worker_mode_reports_a_refused_hand_off(room, alice):
    sender = client("/ws/chat/lobby/", alice)
    await sender.open()
    await sender.send_frame({"type": "message", "body": "one", "client_id": "a"})
    await sender.send_frame({"type": "message", "body": "two", "client_id": "b"})
    error = await sender.receive_frame()
    assert (error["type"], error["code"], error["client_id"]) == ("error", "unavailable", "b")
    await sender.disconnect()


@override_settings(LIVEROOMS={"PERSISTENCE": "worker"})
async def test_worker_mode_reports_a_failed_store(room, alice):
    sender = client("/ws/chat/lobby/", alice)
    await sender.open()
    await sender.send_frame({"type": "message", "body": "orphan", "client_id": "o"})
    # Take the hand-off from the channel (the consumer's own check saw the
    # room), delete the room, then give it back for a worker to run.
    layer = get_channel_layer()
    event = await asyncio.wait_for(layer.receive("liverooms.persist"), 5)
    await database_sync_to_async(Room.objects.all().delete)()
    await layer.send("liverooms.persist", event)
    async with RunningWorker():
        error = await sender.receive_frame(timeout=5)
    assert (error["type"], error["code"], error["client_id"]) == ("error", "unavailable", "o")
    assert await Message.objects.acount() == 0
    await sender.disconnect()


@override_settings(LIVEROOMS={"PERSISTENCE": "worker", "WORKER_ACK_TIMEOUT": 0.3})
async def test_worker_mode_tells_the_sender_when_no_worker_answers(redis_layers, room, alice):
    # Otherwise the layer would expire the queued message without a word.
    sender = client("/ws/chat/lobby/", alice)
    await sender.open()
    await sender.send_frame({"type": "message", "body": "anyone?", "client_id": "w3"})
    error = await sender.receive_frame(timeout=5)
    assert (error["type"], error["code"], error["client_id"]) == ("error", "unavailable", "w3")
    assert await Message.objects.acount() == 0
    # The resend is answered once a worker runs; the queued first copy is
    # stored (once) too. Neither is reported as unavailable any more.
    async with RunningWorker():
        await sender.send_frame({"type": "message", "body": "anyone?", "client_id": "w3"})
        frames = [await sender.receive_frame(timeout=5)]
        while not await sender.receive_nothing(timeout=0.6):
            frames.append(await sender.receive_frame())
    assert {(f["type"], f["client_id"]) for f in frames} == {("message", "w3")}
    assert await Message.objects.acount() == 1
    await sender.disconnect()
