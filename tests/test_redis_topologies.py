"""Several Redis hosts (channels-redis sharding) and Sentinel, on redis-servers of our own.

What must hold on either: chat round trips for rooms whose groups live on
different shards, presence (on the layer's first host, or the Sentinel
master), the layer watch over every host, and the health command.
"""

import json
import shutil
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis as redis_py
from channels.db import database_sync_to_async
from django.test import override_settings

from django_liverooms import presence
from django_liverooms.models import Room
from django_liverooms.testing import StreamCommunicator

from .asgi import application
from .conftest import missing_service
from .processes import RedisServer, free_port, wait_for_port
from .test_faults import UNAVAILABLE, closed_with, make_async_user
from .test_health import run

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = [(b"origin", b"http://localhost")]
LAYERS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}
FAST_CHECKS = {"LAYER_TIMEOUT": 2.0, "LAYER_CHECK_INTERVAL": 0.2}
POOL = {"max_connections": 10000, "socket_timeout": 30}


def needs_redis_server():
    if shutil.which("redis-server") is None:
        missing_service("redis-server is not installed")


@contextmanager
def layer(kind, hosts):
    prefix = f"liverooms-topo-{uuid.uuid4().hex[:8]}"
    layers = {"default": {"BACKEND": LAYERS[kind], "CONFIG": {"hosts": hosts, "prefix": prefix}}}
    with override_settings(CHANNEL_LAYERS=layers, LIVEROOMS=FAST_CHECKS):
        yield prefix


@pytest.fixture
def shards():
    needs_redis_server()
    servers = [RedisServer().start() for _ in range(3)]
    try:
        yield servers
    finally:
        for server in servers:
            server.kill()


class Sentinel:
    """A master and one ``redis-server --sentinel`` watching it as "liverooms"."""

    def __init__(self, directory: Path):
        self.master = RedisServer()
        self.port = free_port()
        self.config = directory / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor liverooms 127.0.0.1 {self.master.port} 1\n"
        )
        self.process = None

    def start(self):
        self.master.start()
        self.process = subprocess.Popen(
            ["redis-server", str(self.config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.process.log = tempfile.TemporaryFile("w+")
        wait_for_port(self.port, self.process)
        return self

    def stop(self):
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process.log.close()
        self.master.kill()

    def host(self):
        return {"sentinels": [("127.0.0.1", self.port)], "master_name": "liverooms", **POOL}


@pytest.fixture
def sentinel(tmp_path):
    needs_redis_server()
    server = Sentinel(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def client(path, user=None):
    return StreamCommunicator(path, user=user, application=application, headers=ORIGIN)


async def round_trips(slugs):
    """In each room a message from one socket reaches another; both stay open."""
    sockets = []
    for slug in slugs:
        await Room.objects.acreate(slug=slug, title=slug)
        sender = client(f"/ws/chat/{slug}/", await make_async_user())
        reader = client(f"/ws/chat/{slug}/")
        await sender.open()
        await reader.open()
        await sender.send_frame({"type": "message", "body": f"in {slug}", "client_id": "1"})
        assert (await sender.receive_frame())["body"] == f"in {slug}"  # the ack
        assert (await reader.receive_frame())["body"] == f"in {slug}"
        sockets += [sender, reader]
    return sockets


def keys(url, prefix):
    return [key.decode() for key in redis_py.Redis.from_url(url).scan_iter(f"{prefix}*")]


@pytest.mark.parametrize("kind", ["core", "pubsub"])
async def test_a_sharded_layer_carries_every_room_and_presence_uses_its_first_host(shards, kind):
    with layer(kind, [{"address": s.url, **POOL} for s in shards]) as prefix:
        slugs = [f"room-{i}" for i in range(8)]  # their groups hash onto the three shards
        sockets = await round_trips(slugs)
        room = await Room.objects.aget(slug="room-0")
        assert await presence.acount(room) == 2
        presence_keys = [k for k in keys(shards[0].url, prefix) if ":liverooms:presence:" in k]
        assert presence_keys  # on hosts[0], where every process looks
        assert not any(":liverooms:presence:" in k for s in shards[1:] for k in keys(s.url, prefix))
        if kind == "core":  # RedisChannelLayer keeps group memberships as keys
            holding = [s for s in shards if any(":group:" in k for k in keys(s.url, prefix))]
            assert len(holding) > 1  # the groups really are spread over the shards
        for socket_ in sockets:
            await socket_.disconnect()


async def test_a_restarted_shard_closes_sockets_4503_and_health_lists_every_host(shards, room):
    with layer("core", [{"address": s.url, **POOL} for s in shards]):
        status, out = await _health("--json")
        assert status == 0
        hosts = json.loads(out)["checks"]["layer"]["data"]["hosts"]
        assert [h["index"] for h in hosts] == [0, 1, 2]
        reader = client("/ws/chat/lobby/")
        await reader.open()
        # Whichever shard holds the lobby's group, the watch checks them all.
        shards[2].restart()
        assert await closed_with(reader) == UNAVAILABLE
        await reader.disconnect()
        shards[1].kill()
        status, out = await _health()
        assert status == 1
        assert "layer      FAIL" in out


async def _health(*args):
    return await database_sync_to_async(run)(*args)


@pytest.mark.parametrize("kind", ["core", "pubsub"])
async def test_a_sentinel_layer_carries_messages_presence_and_health(sentinel, kind):
    with layer(kind, [sentinel.host()]) as prefix:
        sockets = await round_trips(["lobby"])
        room = await Room.objects.aget(slug="lobby")
        assert await presence.acount(room) == 2
        # Presence found the master through the Sentinel, as the layer did.
        assert any(":liverooms:presence:" in k for k in keys(sentinel.master.url, prefix))
        status, out = await _health("--stream", "chat:lobby")
        assert status == 0, out
        assert "chat:lobby: 2 present" in out
        for socket_ in sockets:
            await socket_.disconnect()
