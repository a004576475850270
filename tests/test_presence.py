"""Presence and typing through the consumers, on this process's layer and store.

(Across server processes on Redis: tests/test_live_presence.py.)
"""

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager

import pytest
from channels.db import database_sync_to_async
from django.test import override_settings

from django_liverooms import presence, signals
from django_liverooms.testing import StreamCommunicator

from .asgi import application
from .conftest import missing_service
from .factories import make_blog, make_user
from .processes import free_port, wait_for_port

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = [(b"origin", b"http://localhost")]
FAST = {"PRESENCE_INTERVAL": 0.2}


def client(path, user=None):
    return StreamCommunicator(
        path, user=user, application=application, headers=ORIGIN, presence=True
    )


async def open_with_presence(chat):
    await chat.open()
    frame = await chat.receive_frame()
    assert frame["type"] == "presence"
    return frame


async def presence_until(chat, predicate, timeout=5):
    """Presence frames until one satisfies ``predicate`` (the latest state wins)."""
    deadline = time.monotonic() + timeout
    while True:
        frame = await chat.receive_frame(timeout=max(0.01, deadline - time.monotonic()))
        if frame["type"] == "presence" and predicate(frame):
            return frame


@pytest.fixture
def alice():
    return make_user("alice", first_name="Alice", last_name="A")


@override_settings(LIVEROOMS=FAST)
async def test_a_joining_connection_sees_who_is_here(room, alice):
    first = client("/ws/chat/lobby/", alice)
    assert await open_with_presence(first) == {
        "type": "presence",
        "count": 1,
        "users": [{"id": alice.pk, "name": "Alice A"}],
    }
    guest = client("/ws/chat/lobby/")
    frame = await open_with_presence(guest)
    assert frame["count"] == 2 and frame["users"][0] == {"id": alice.pk, "name": "Alice A"}
    assert frame["users"][1]["id"] is None
    # The first reader learns of the guest from a broadcast.
    assert (await presence_until(first, lambda f: f["count"] == 2))["users"] == frame["users"]
    await guest.disconnect()
    assert (await presence_until(first, lambda f: f["count"] == 1))["users"][0]["id"] == alice.pk
    await first.disconnect()


@override_settings(LIVEROOMS=FAST)
async def test_a_user_with_three_tabs_is_one_and_guests_count_per_connection(room, alice):
    tabs = [client("/ws/chat/lobby/", alice) for _ in range(3)]
    for tab in tabs:
        await open_with_presence(tab)
    guests = [client("/ws/chat/lobby/") for _ in range(2)]
    for guest in guests:
        await open_with_presence(guest)
    assert await presence.acount(room) == 3
    assert [u["id"] for u in await presence.ausers(room)] == [alice.pk, None, None]
    assert await database_sync_to_async(presence.count)(room) == 3
    for tab in tabs[:2]:
        await tab.disconnect()
    assert await presence.acount(room) == 3  # alice still has a tab open
    await tabs[2].disconnect()
    assert [u["id"] for u in await presence.ausers(room)] == [None, None]
    for guest in guests:
        await guest.disconnect()


async def test_live_blogs_send_a_reader_count_without_names():
    await database_sync_to_async(make_blog)()
    readers = [client("/ws/liveblog/match-day/") for _ in range(3)]
    frames = [await open_with_presence(reader) for reader in readers]
    assert [(f["count"], f["users"]) for f in frames] == [(1, []), (2, []), (3, [])]
    for reader in readers:
        await reader.disconnect()


@override_settings(LIVEROOMS={**FAST, "PRESENCE_USERS_MAX": 2})
async def test_the_users_list_is_capped_and_the_count_complete(room):
    guests = [client("/ws/chat/lobby/") for _ in range(4)]
    for guest in guests:
        frame = await open_with_presence(guest)
    assert frame["count"] == 4 and len(frame["users"]) == 2
    for guest in guests:
        await guest.disconnect()


async def test_signals_are_sent_once_per_user_not_per_tab(room, alice):
    seen = []

    def joined(sender, stream, key, user_id, name, **kwargs):
        seen.append(("joined", sender.__name__, stream.slug, key, user_id, name))

    async def left(sender, stream, key, user_id, name, **kwargs):
        seen.append(("left", sender.__name__, stream.slug, key, user_id, name))

    def broken(**kwargs):
        raise RuntimeError("a host receiver failed")

    signals.user_joined.connect(joined)
    signals.user_joined.connect(broken)
    signals.user_left.connect(left)
    try:
        tabs = [client("/ws/chat/lobby/", alice) for _ in range(2)]
        for tab in tabs:
            await open_with_presence(tab)  # a failing receiver does not break the socket
        for tab in tabs:
            await tab.disconnect()
    finally:
        signals.user_joined.disconnect(joined)
        signals.user_joined.disconnect(broken)
        signals.user_left.disconnect(left)
    assert seen == [
        ("joined", "Room", "lobby", f"user:{alice.pk}", alice.pk, "Alice A"),
        ("left", "Room", "lobby", f"user:{alice.pk}", alice.pk, "Alice A"),
    ]


@override_settings(
    LIVEROOMS={"PRESENCE_TTL": 2, "PRESENCE_HEARTBEAT": 0.1, "PRESENCE_INTERVAL": 0.1}
)
async def test_a_dead_connection_is_swept_by_a_heartbeat_and_its_user_leaves_once(room):
    left = []

    def record(sender, stream, key, **kwargs):
        left.append(key)

    reader = client("/ws/chat/lobby/")
    await open_with_presence(reader)
    # A connection of a process that died: it is in the store, and nobody refreshes it.
    ghost = presence.Member("gone", "user:999", {"id": 999, "name": "Ghost"})
    await presence.get_store().join(room.group_name, ghost, 0.3, 0)
    assert await presence.acount(room) == 2
    signals.user_left.connect(record)
    try:
        frame = await presence_until(reader, lambda f: f["count"] == 1, timeout=10)
        await asyncio.sleep(0.3)  # more heartbeats: the leave is not reported again
    finally:
        signals.user_left.disconnect(record)
    assert [u["id"] for u in frame["users"]] == [None] and left == ["user:999"]
    await reader.disconnect()


async def test_typing_is_never_stored(room, alice):
    typist = StreamCommunicator(
        "/ws/chat/lobby/", user=alice, application=application, headers=ORIGIN
    )
    await typist.open()
    await typist.send_frame({"type": "typing"})
    assert await typist.receive_nothing(timeout=0.2)  # presence frames stepped over
    later = client("/ws/chat/lobby/")
    welcome, history = await later.open()
    assert (welcome["seq"], history["items"]) == (0, [])
    await typist.disconnect()
    await later.disconnect()


class BrokenStore(presence.MemoryStore):
    async def join(self, *args, **kwargs):
        raise ConnectionError("presence store is down")

    leave = refresh = flush = join


async def test_a_failing_store_costs_the_presence_frame_only(room, alice, monkeypatch, caplog):
    monkeypatch.setattr(presence, "get_store", BrokenStore)
    sender, reader = client("/ws/chat/lobby/", alice), client("/ws/chat/lobby/")
    await sender.open()
    await reader.open()
    await sender.send_frame({"type": "message", "body": "still here", "client_id": "1"})
    assert (await sender.receive_frame())["body"] == "still here"
    assert (await reader.receive_frame())["body"] == "still here"
    assert await reader.receive_nothing(timeout=0.2)  # no presence frame
    await sender.disconnect()
    await reader.disconnect()
    assert "presence join in liverooms.chat" in caplog.text


@override_settings(LIVEROOMS={"PRESENCE": False})
async def test_presence_can_be_turned_off(room):
    chat = client("/ws/chat/lobby/")
    await chat.open()
    assert await chat.receive_nothing(timeout=0.2)
    assert await presence.acount(room) == 0
    await chat.disconnect()


@override_settings(LIVEROOMS={"TYPING_RATE": None})
async def test_the_typing_throttle_is_a_setting(room, alice):
    typist, other = client("/ws/chat/lobby/", alice), client("/ws/chat/lobby/")
    await open_with_presence(typist)
    await open_with_presence(other)
    for _ in range(2):
        await typist.send_frame({"type": "typing"})
    typing = [f for f in [await other.receive_frame() for _ in range(3)] if f["type"] == "typing"]
    # Unthrottled here; by default the second one is dropped (test_consumers).
    assert len(typing) == 2 and typing[0]["user"]["id"] == alice.pk
    await typist.disconnect()
    await other.disconnect()


# A burst of joins ------------------------------------------------------------------

# 1,000 on the in-memory layer. On Redis, 1,000 in-process consumers hit a
# race in redis-py 8 (a cancel that lands as a read times out is retried, not
# raised) often enough to hang the event loop's close at teardown; the
# two-process tests in test_live_presence.py cover Redis with real servers.
BURST = int(
    os.environ.get("LIVEROOMS_TEST_PRESENCE_BURST")
    or (200 if os.environ.get("REDIS_URL") else 1000)
)
INTERVAL = 0.5


class CountingCommunicator(StreamCommunicator):
    presence_frames = 0
    last_count = 0

    async def _receive_any_frame(self, timeout):
        frame = await super()._receive_any_frame(timeout)
        if frame["type"] == "presence":
            self.presence_frames += 1
            self.last_count = frame["count"]
        return frame


@pytest.mark.slow
@override_settings(LIVEROOMS={"PRESENCE_INTERVAL": INTERVAL})
async def test_a_burst_of_joins_sends_a_bounded_number_of_presence_frames(room):
    """The documented bound (docs/presence.md): a connection receives one
    presence frame when it joins, then at most one per PRESENCE_INTERVAL
    while the room changes, plus one for the interval under way."""
    readers = [
        CountingCommunicator("/ws/chat/lobby/", application=application, headers=ORIGIN)
        for _ in range(BURST)
    ]
    started = time.monotonic()
    joined_at = []
    for batch in range(0, BURST, 50):
        group = readers[batch : batch + 50]
        await asyncio.gather(*(reader.open(timeout=30) for reader in group))
        joined_at += [time.monotonic()] * len(group)
    # Every reader ends up seeing the whole room...
    for reader in readers:
        while reader.last_count != BURST:
            await reader._receive_any_frame(timeout=30)
    await asyncio.sleep(2 * INTERVAL)  # ...and whatever was still pending arrives
    for reader in readers:
        while not reader.output_queue.empty():
            await reader._receive_any_frame(timeout=1)
    finished = time.monotonic()
    frames = sum(reader.presence_frames for reader in readers)
    bound = sum(2 + (finished - at) / INTERVAL for at in joined_at)
    print(
        f"\n{BURST} joins in {joined_at[-1] - started:.1f} s: {frames} presence frames "
        f"(bound {bound:.0f}, {frames / BURST:.1f} per connection)"
    )
    assert frames <= bound
    # Without coalescing, N joins would be about N * N / 2 frames.
    assert frames < BURST * BURST / 10
    await asyncio.gather(*(reader.disconnect() for reader in readers))


# A real Redis that goes away and comes back ------------------------------------------


@contextmanager
def own_redis(port):
    """A redis-server of this test's own (never the shared one), stopped on exit."""
    log = tempfile.TemporaryFile("w+")
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    process.log = log  # wait_for_port shows it if the server exits
    try:
        wait_for_port(port, process)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


async def test_presence_survives_its_redis_going_away_and_coming_back(room, alice, caplog):
    if shutil.which("redis-server") is None:
        missing_service("redis-server is not installed")
    port = free_port()
    fast = {
        "PRESENCE_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "PRESENCE_TTL": 2,
        "PRESENCE_HEARTBEAT": 0.2,
        "PRESENCE_INTERVAL": 0.1,
    }
    with override_settings(LIVEROOMS=fast):
        with own_redis(port):
            reader = client("/ws/chat/lobby/")
            assert (await open_with_presence(reader))["count"] == 1
        # Redis is gone: a new connection and its messages still work.
        sender = client("/ws/chat/lobby/", alice)
        await sender.open()
        await sender.send_frame({"type": "message", "body": "no redis", "client_id": "1"})
        assert (await sender.receive_frame())["body"] == "no redis"
        assert (await reader.receive_frame())["body"] == "no redis"
        assert "presence join in liverooms.chat" in caplog.text
        # A fresh, empty Redis: the heartbeats put both connections back.
        with own_redis(port):
            frame = await presence_until(reader, lambda f: f["count"] == 2, timeout=10)
            assert {u["id"] for u in frame["users"]} == {alice.pk, None}
            await sender.disconnect()
            await reader.disconnect()
            assert await presence.acount(room) == 0
