"""Channel-layer faults: a dead, paused or restarted Redis closes sockets with 4503.

Each test runs its own redis-server (tests.processes.RedisServer), never the
shared one, and breaks it on purpose.
"""

import asyncio
import json
import shutil
import uuid

import pytest
from channels.layers import InMemoryChannelLayer
from django.test import override_settings

from django_liverooms.testing import StreamCommunicator

from .asgi import application
from .conftest import missing_service
from .factories import make_user
from .processes import RedisServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

UNAVAILABLE = 4503
FAST_CHECKS = {"LAYER_TIMEOUT": 1.0, "LAYER_CHECK_INTERVAL": 0.2}
ORIGIN = [(b"origin", b"http://localhost")]


@pytest.fixture
def redis():
    if shutil.which("redis-server") is None:
        missing_service("redis-server is not installed")
    server = RedisServer().start()
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": server.url, "socket_timeout": 30}],
                "prefix": f"liverooms-test-{uuid.uuid4().hex[:8]}",
            },
        }
    }
    try:
        with override_settings(CHANNEL_LAYERS=layers, LIVEROOMS=FAST_CHECKS):
            yield server
    finally:
        server.kill()


def client(path="/ws/chat/lobby/", user=None):
    return StreamCommunicator(path, user=user, application=application, headers=ORIGIN)


async def closed_with(communicator, timeout=10):
    output = await communicator.receive_output(timeout)
    while output["type"] == "websocket.send":  # frames sent before the fault
        output = await communicator.receive_output(timeout)
    assert output["type"] == "websocket.close"
    return output.get("code")


async def round_trip(body):
    """A message from a new socket reaches another new socket: the layer works.

    Retried after a 4503 close, as a client would: sockets opened just after
    a restart, before the watch noticed it, are closed once more.
    """
    user = await make_async_user()
    for attempt in range(50):
        sender, reader = client(user=user), client()
        try:
            await sender.open(timeout=10)
            await reader.open(timeout=10)
            # A new client_id per attempt: a repeat would be answered to the sender only.
            client_id = f"{body}-{attempt}"
            await sender.send_frame({"type": "message", "body": body, "client_id": client_id})
            ack = await sender.receive_frame(timeout=5)
            assert ack["body"] == body
            assert await reader.receive_frame(timeout=5) == ack
            return
        except AssertionError as exc:
            if "4503" not in str(exc) and "accepted" not in str(exc):
                raise
        finally:
            await sender.disconnect()
            await reader.disconnect()
        await asyncio.sleep(0.1)
    raise AssertionError("the layer did not come back")


async def make_async_user():
    from channels.db import database_sync_to_async

    return await database_sync_to_async(make_user)(f"u{uuid.uuid4().hex[:8]}")


async def test_connecting_while_redis_is_down_closes_4503_then_recovers(redis, room):
    redis.kill()
    assert await client().close_code(timeout=10) == UNAVAILABLE
    redis.start()
    await round_trip("after the outage")


async def test_redis_killed_under_an_open_socket_closes_it_4503(redis, room):
    reader = client()
    await reader.open()
    redis.kill()
    assert await closed_with(reader) == UNAVAILABLE
    await reader.disconnect()
    redis.start()
    await round_trip("back again")


async def test_a_paused_redis_closes_sockets_instead_of_freezing_them(redis, room):
    reader = client()
    await reader.open()
    redis.pause()
    try:
        assert await closed_with(reader) == UNAVAILABLE
        # While it is paused, a new socket is closed too rather than left hanging.
        assert await client().close_code(timeout=10) == UNAVAILABLE
    finally:
        redis.resume()
    await reader.disconnect()
    await round_trip("resumed")


async def test_a_restarted_redis_forgot_the_groups_so_sockets_close_4503(redis, room):
    reader = client()
    await reader.open()
    redis.restart()
    assert await closed_with(reader) == UNAVAILABLE
    await reader.disconnect()
    await round_trip("restarted")


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
async def test_a_failed_broadcast_closes_the_sender_and_resume_delivers(room, monkeypatch):
    alice = await make_async_user()
    sender = client(user=alice)
    await sender.open()

    async def refuse(self, group, message):
        raise ConnectionError("layer down")

    monkeypatch.setattr(InMemoryChannelLayer, "group_send", refuse)
    await sender.send_frame({"type": "message", "body": "stored", "client_id": "s1"})
    assert await closed_with(sender) == UNAVAILABLE
    await sender.disconnect()
    monkeypatch.undo()
    # The message was stored: resuming from before it replays it, with its client_id.
    again = client("/ws/chat/lobby/?after=0", user=alice)
    _, history = await again.open()
    assert [(f["body"], f["client_id"]) for f in history["items"]] == [("stored", "s1")]
    await again.disconnect()


async def drain(ws):
    """Read frames until the server closes the socket."""
    while True:
        await asyncio.wait_for(ws.recv(), 10)


@pytest.mark.live
def test_daphne_sends_the_close_code_and_recovers(tmp_path):
    # In-process communicators accept any close code; daphne (autobahn) only
    # sends 1000 or 3000-4999, so check the real server.
    if shutil.which("redis-server") is None:
        missing_service("redis-server is not installed")
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosedError

    from .processes import Site

    with RedisServer() as redis:
        site = Site(
            DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
            REDIS_URL=redis.url,
            LIVEROOMS_TEST_LAYER_PREFIX=f"faults-{uuid.uuid4().hex[:8]}",
        )
        try:
            site.manage("migrate", "--verbosity=0")
            site.shell("from tests.factories import make_room; make_room()")
            url = f"ws://127.0.0.1:{site.server()}/ws/chat/lobby/"

            async def scenario():
                async with connect(url, origin="http://localhost") as ws:
                    assert json.loads(await ws.recv())["type"] == "welcome"
                    redis.kill()
                    with pytest.raises(ConnectionClosedError) as closed:
                        await drain(ws)
                    assert closed.value.rcvd.code == UNAVAILABLE
                redis.start()
                async with connect(url, origin="http://localhost") as ws:
                    assert json.loads(await ws.recv())["type"] == "welcome"

            asyncio.run(scenario())
        finally:
            site.stop()


@pytest.mark.parametrize(
    ("setting", "value", "error"),
    [
        ("LAYER_TIMEOUT", 0, "liverooms.E030"),
        ("LAYER_TIMEOUT", "5", "liverooms.E030"),
        ("LAYER_CHECK_INTERVAL", -1, "liverooms.E031"),
        ("LAYER_CHECK_INTERVAL", True, "liverooms.E031"),
        ("WORKER_ACK_TIMEOUT", None, "liverooms.E032"),
    ],
)
def test_layer_fault_settings_are_checked(setting, value, error):
    from django_liverooms.checks import check_layer_faults

    with override_settings(LIVEROOMS={setting: value}):
        assert [e.id for e in check_layer_faults()] == [error]
    with override_settings(LIVEROOMS={"LAYER_TIMEOUT": 0.5, "LAYER_CHECK_INTERVAL": 0}):
        assert check_layer_faults() == []
