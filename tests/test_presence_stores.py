"""The two presence stores obey the same rules (Redis on a real server)."""

import asyncio
import uuid

import pytest

from django_liverooms.presence import Member, MemoryStore, RedisStore, get_store

TTL = 30
ALICE = {"id": 1, "name": "Alice"}
BOB = {"id": 2, "name": "Bob"}


@pytest.fixture(params=["memory", "redis"])
def store(request):
    if request.param == "memory":
        return MemoryStore()
    url = request.getfixturevalue("redis_url")
    return RedisStore(url, prefix=f"liverooms-presence-test-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def stream():
    return f"liverooms.chat.{uuid.uuid4().hex[:6]}"


def alice(conn):
    return Member(conn, "user:1", ALICE)


async def test_users_are_counted_not_connections(store, stream):
    first = await store.join(stream, alice("a1"), TTL, 10)
    assert first.joined == [("user:1", ALICE)] and (first.count, first.users) == (1, [ALICE])
    second_tab = await store.join(stream, alice("a2"), TTL, 10)
    assert not second_tab.changed and second_tab.count == 1
    bob = await store.join(stream, Member("b1", "user:2", BOB), TTL, 10)
    assert bob.joined == [("user:2", BOB)] and (bob.count, bob.users) == (2, [ALICE, BOB])
    assert bob.version > first.version

    closed_one_tab = await store.leave(stream, "a1")
    assert not closed_one_tab.changed
    closed_both = await store.leave(stream, "a2")
    assert closed_both.left == [("user:1", ALICE)]
    assert (await store.astate(stream, 10)).users == [BOB]
    assert not (await store.leave(stream, "a2")).changed  # a second leave is a no-op


async def test_the_users_list_is_capped_but_the_count_is_not(store, stream):
    for n in range(5):
        await store.join(
            stream, Member(f"c{n}", f"conn:c{n}", {"id": None, "name": f"G{n}"}), TTL, 0
        )
    state = await store.astate(stream, 2)
    assert state.count == 5 and [u["name"] for u in state.users] == ["G0", "G1"]
    assert (await store.astate(stream, 0)).users == []
    assert await asyncio.to_thread(lambda: store.state(stream, 10).count) == 5


async def test_a_connection_without_heartbeats_expires_and_its_user_leaves(store, stream):
    await store.join(stream, alice("a1"), 0.2, 10)
    await store.join(stream, Member("b1", "user:2", BOB), TTL, 10)
    await asyncio.sleep(0.3)
    state = await store.astate(stream, 10)
    assert state.left == [("user:1", ALICE)] and state.users == [BOB]
    assert not (await store.astate(stream, 10)).left  # swept once, reported once


async def test_heartbeats_keep_connections_and_put_back_lost_ones(store, stream):
    other = f"{stream}-2"
    # Wide margins: a loaded CI machine once took 0.15 s between two calls.
    await store.join(stream, alice("a1"), 1.0, 10)
    await asyncio.sleep(0.2)
    changes = await store.refresh({stream: [alice("a1")], other: [alice("a9")]}, 5.0)
    assert not changes[stream].changed  # still there: only its expiry moved
    assert changes[other].joined == [("user:1", ALICE)]  # lost (e.g. Redis restarted): back
    await asyncio.sleep(1.0)  # past the first expiry, within the refreshed one
    assert (await store.astate(stream, 10)).users == [ALICE]


async def test_broadcasts_are_claimed_at_most_once_per_interval(store, stream):
    change = await store.join(stream, alice("a1"), TTL, 10)
    first = await store.flush(stream, change.version, 0.3, 10)
    assert first.outcome == "send" and first.change.count == 1
    # A change already sent is done, wherever it came from.
    assert (await store.flush(stream, change.version, 0.3, 10)).outcome == "done"
    bob = await store.join(stream, Member("b1", "user:2", BOB), TTL, 10)
    waiting = await store.flush(stream, bob.version, 0.3, 10)
    assert waiting.outcome == "wait" and 0 < waiting.wait <= 0.3
    await asyncio.sleep(waiting.wait + 0.05)
    second = await store.flush(stream, bob.version, 0.3, 10)
    assert second.outcome == "send" and second.change.users == [ALICE, BOB]


def test_the_store_follows_the_channel_layer(settings, redis_url):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert isinstance(get_store(), MemoryStore)
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": redis_url, "socket_timeout": 30}], "prefix": "p1"},
        }
    }
    store = get_store()
    assert isinstance(store, RedisStore) and (store.url, store.prefix) == (redis_url, "p1")
    assert store.keys("liverooms.chat.1")[0] == "p1:liverooms:presence:{liverooms.chat.1}:conns"
    settings.LIVEROOMS = {"PRESENCE_REDIS_URL": "redis://127.0.0.1:6380/2"}
    assert get_store().url == "redis://127.0.0.1:6380/2"
