"""Process-local fan-out (fanout.py) on the in-memory layer and real Redis."""

import asyncio
import shutil
import subprocess
import uuid

import pytest
from channels.layers import InMemoryChannelLayer
from django.test import override_settings

from django_liverooms import _compat, fanout
from django_liverooms.broadcast import Broadcast
from django_liverooms.consumers import StreamConsumer
from django_liverooms.outbox import Outbox

from .conftest import REDIS_URL
from .processes import free_port, wait_for_port

GROUP = "liverooms.chat.1"


class Member:
    """Stands in for a StreamConsumer: the hub's side of it, with the real wants()."""

    wants = StreamConsumer.wants
    take = StreamConsumer.take

    def __init__(self, name, through=0, group=GROUP):
        self.channel_name, self.through, self.group = name, through, group
        self.got = []
        self.failed = asyncio.Event()
        self.outbox = Outbox(self.server_send, on_slow=lambda: None)

    def fanout_group(self):
        return self.group

    async def server_send(self, message):
        assert message["type"] == "websocket.send"
        self.got.append(message["text"])

    async def send(self, text_data=None, bytes_data=None):
        self.outbox.put({"type": "websocket.send", "text": text_data})

    async def layer_failed(self):
        self.failed.set()


async def until(condition):
    """Wait for the hub's reader task; a hang fails through the test timeout."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never held")


def redis_layer(kind, url=REDIS_URL):
    hosts = [{"address": url, "max_connections": 1000, "socket_timeout": 30}]
    prefix = f"liverooms-test-{uuid.uuid4().hex[:8]}"
    if kind == "core":
        from channels_redis.core import RedisChannelLayer

        return RedisChannelLayer(hosts=hosts, prefix=prefix)
    from channels_redis.pubsub import RedisPubSubChannelLayer

    return RedisPubSubChannelLayer(hosts=hosts, prefix=prefix)


@pytest.fixture(params=["memory", "core", "pubsub"])
async def layer(request):
    if request.param == "memory":
        yield InMemoryChannelLayer()
        return
    request.getfixturevalue("redis_url")
    layer = redis_layer(request.param)
    yield layer
    if request.param == "pubsub":
        await layer.flush()  # closes its connections; pub/sub stores nothing


async def send(layer, seq, text, skip=None):
    await layer.group_send(GROUP, Broadcast(GROUP, seq, text, skip=skip).event())


async def test_each_member_gets_each_frame_once_through_one_subscription(layer):
    hub = fanout.Hub(layer)
    members = [Member(f"c{i}") for i in range(3)]
    for member in members:
        await hub.join(member)
        await hub.ready(member)
    assert list(hub.groups) == [GROUP] and hub.groups[GROUP] == set(members)
    if isinstance(layer, InMemoryChannelLayer):
        assert list(layer.groups[GROUP]) == [hub.channel]  # one channel, not three
    await send(layer, 1, "one")
    await send(layer, 2, "two")
    await until(lambda: all(len(m.got) == 2 for m in members))
    await send(layer, 3, "three")
    await until(lambda: all(len(m.got) == 3 for m in members))
    assert all(m.got == ["one", "two", "three"] for m in members)
    for member in members:
        await hub.leave(member)
    assert hub.groups == {}


async def test_skip_and_through_are_per_member(layer):
    hub = fanout.Hub(layer)
    typist, caught_up, reader = Member("typist"), Member("caught-up", through=5), Member("reader")
    for member in (typist, caught_up, reader):
        await hub.join(member)
        await hub.ready(member)
    await send(layer, None, "typing", skip="typist")
    await send(layer, 5, "five")
    await send(layer, 6, "six")
    await until(lambda: len(reader.got) == 3)
    await until(lambda: "six" in typist.got and "six" in caught_up.got)
    assert reader.got == ["typing", "five", "six"]
    assert typist.got == ["five", "six"]
    assert caught_up.got == ["typing", "six"]
    for member in (typist, caught_up, reader):
        await hub.leave(member)


async def test_frames_wait_for_the_history_and_then_respect_through(layer):
    hub = fanout.Hub(layer)
    witness = Member("witness")
    await hub.join(witness)
    await hub.ready(witness)
    joining = Member("joining")
    await hub.join(joining)  # reading its history now
    await send(layer, 1, "in the history")
    await send(layer, 2, "after it")
    await until(lambda: len(witness.got) == 2)
    assert joining.got == []  # nothing before welcome and history
    joining.through = 1  # what the history covered
    await hub.ready(joining)
    assert joining.got == ["after it"]
    await send(layer, 3, "live")
    await until(lambda: len(joining.got) == 2)
    assert joining.got == ["after it", "live"]
    await hub.leave(witness)
    await hub.leave(joining)


async def test_a_member_that_left_gets_nothing_and_the_last_one_unsubscribes(layer):
    hub = fanout.Hub(layer)
    stays, goes = Member("stays"), Member("goes")
    for member in (stays, goes):
        await hub.join(member)
        await hub.ready(member)
    await hub.leave(goes)
    await send(layer, 1, "one")
    await until(lambda: stays.got == ["one"])
    assert goes.got == []
    await hub.leave(stays)
    assert hub.groups == {}
    if isinstance(layer, InMemoryChannelLayer):
        assert GROUP not in layer.groups
    await until(lambda: hub.reader is None)  # the reader stopped with the last member


class BrokenLayer(InMemoryChannelLayer):
    async def receive(self, channel):
        await asyncio.sleep(0)
        raise ConnectionError("Redis went away")


async def test_a_failed_subscription_closes_every_member():
    hub = fanout.Hub(BrokenLayer())
    members = [Member("a"), Member("b", group="liverooms.chat.2")]
    for member in members:
        await hub.join(member)
    for member in members:
        await asyncio.wait_for(member.failed.wait(), 5)
    assert hub.groups == {} and hub.channel is None


@pytest.fixture
def own_redis_server():
    """A redis-server of this test's own, to stop under the hub."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    process.log = None
    try:
        wait_for_port(port, process)
        yield process, f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait()


async def test_redis_going_away_closes_the_members_so_they_resume(own_redis_server):
    process, url = own_redis_server
    hub = fanout.Hub(redis_layer("core", url))
    members = [Member("a"), Member("b")]
    for member in members:
        await hub.join(member)
        await hub.ready(member)
    process.kill()
    process.wait()
    for member in members:
        await asyncio.wait_for(member.failed.wait(), 30)


# The consumer's side ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_readers_in_one_process_share_one_group_member():
    from channels.db import database_sync_to_async
    from channels.layers import get_channel_layer

    from .factories import make_room
    from .test_consumers import client

    room = await database_sync_to_async(make_room)()
    readers = [client("/ws/chat/lobby/") for _ in range(3)]
    for reader in readers:
        await reader.open()
    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):
        assert len(layer.groups[room.group_name]) == 1
    await layer.group_send(room.group_name, Broadcast(room.group_name, 1, '{"seq":1}').event())
    for reader in readers:
        assert await reader.receive_frame() == {"seq": 1}
        assert await reader.receive_nothing(timeout=0.1)
    for reader in readers:
        await reader.disconnect()


@pytest.mark.django_db(transaction=True)
@override_settings(LIVEROOMS={"FANOUT": "consumer"})
async def test_consumer_fanout_joins_the_group_per_socket():
    from channels.db import database_sync_to_async
    from channels.layers import get_channel_layer

    from .factories import make_room
    from .test_consumers import client

    room = await database_sync_to_async(make_room)()
    readers = [client("/ws/chat/lobby/") for _ in range(2)]
    for reader in readers:
        await reader.open()
    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):
        assert len(layer.groups[room.group_name]) == 2
    await layer.group_send(room.group_name, Broadcast(room.group_name, 1, '{"seq":1}').event())
    for reader in readers:
        assert await reader.receive_frame() == {"seq": 1}
        await reader.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_failed_layer_closes_the_socket_with_4503():
    from channels.db import database_sync_to_async
    from channels.layers import get_channel_layer

    from .factories import make_room
    from .test_consumers import client

    await database_sync_to_async(make_room)()
    reader = client("/ws/chat/lobby/")
    await reader.open()
    await fanout.hub_for(get_channel_layer())._fail()
    with pytest.raises(AssertionError, match="closed the connection with code 4503"):
        await reader.receive_frame()


@override_settings(LIVEROOMS={"FANOUT": "per-socket"})
def test_an_unknown_fanout_mode_is_a_system_check_error():
    from django_liverooms import checks

    assert [e.id for e in checks.check_settings()] == ["liverooms.E006"]


@override_settings(LIVEROOMS={"FANOUT": "consumer"})
def test_both_fanout_modes_pass_the_checks():
    from django_liverooms import checks

    assert checks.check_settings() == []


def test_the_hub_writes_with_the_servers_own_send_under_session_middleware():
    from channels.sessions import InstanceSessionWrapper

    async def server_send(message):
        pass

    inner = InstanceSessionWrapper({"cookies": {}}, server_send)
    outer = InstanceSessionWrapper({"cookies": {}}, inner.send)
    assert _compat.server_send(outer.send) is server_send
    assert _compat.server_send(server_send) is server_send
