"""Caps by client address, SSE stream caps, the HTTP history bound, typing
from readers who may not post, and guest names (issue 13, items 4, 6, 8)."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.core.checks import run_checks
from django.test import override_settings

from django_liverooms import ratelimit, views
from django_liverooms.models import Room, RoomMute
from django_liverooms.policy import CachedVerdict, get_policy
from django_liverooms.testing import StreamCommunicator

from .asgi import application
from .factories import make_blog, make_room, make_user
from .test_consumers import ORIGIN
from .test_sse import open_stream

pytestmark = pytest.mark.django_db(transaction=True)


def scope(peer, forwarded=None):
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return {"client": (peer, 1234) if peer else None, "headers": headers}


# The client's address ------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxies", "peer", "forwarded", "address"),
    [
        ([], "203.0.113.7", None, "203.0.113.7"),
        ([], "203.0.113.7", "198.51.100.1", "203.0.113.7"),  # no proxy is trusted
        (["10.0.0.0/8"], "10.0.0.1", "198.51.100.1", "198.51.100.1"),
        (["10.0.0.0/8"], "10.0.0.1", "1.1.1.1, 198.51.100.1, 10.0.0.2", "198.51.100.1"),
        (["10.0.0.0/8"], "203.0.113.7", "198.51.100.1", "203.0.113.7"),  # not via the proxy
        (["10.0.0.1"], "10.0.0.1", "10.0.0.1", "10.0.0.1"),  # only proxies: the leftmost
        (["10.0.0.0/8"], "10.0.0.1", "198.51.100.1, junk", "10.0.0.1"),  # nothing left of junk
        (["10.0.0.0/8"], "10.0.0.1", None, "10.0.0.1"),
        (["::1"], "::1", "2001:db8::5", "2001:db8::5"),
        ([], "::ffff:203.0.113.7", None, "203.0.113.7"),
        ([], None, "198.51.100.1", ""),  # a Unix socket: unknown
    ],
)
def test_client_address(proxies, peer, forwarded, address):
    with override_settings(LIVEROOMS={"TRUSTED_PROXIES": proxies}):
        assert ratelimit.client_address(scope(peer, forwarded)) == address


@pytest.mark.parametrize("value", ["10.0.0.1", ["10.0.0.300"], ["proxy.local"], 5])
def test_malformed_trusted_proxies_are_a_check_error(value):
    with override_settings(LIVEROOMS={"TRUSTED_PROXIES": value}):
        assert "liverooms.E101" in {e.id for e in run_checks()}
        # Meanwhile nobody is trusted.
        assert ratelimit.client_address(scope("10.0.0.1", "1.2.3.4")) == "10.0.0.1"


@pytest.mark.parametrize(
    "settings_",
    [
        {"MAX_CONNECTIONS_PER_ADDRESS": 0},
        {"MAX_CONNECTIONS_PER_ADDRESS": "100"},
        {"SESSION_CHECK_INTERVAL": -1},
        {"HTTP_HISTORY_CONCURRENCY": 0},
        {"HTTP_HISTORY_RATE": (0, 1)},
    ],
)
def test_bad_cap_settings_are_check_errors(settings_):
    with override_settings(LIVEROOMS=settings_):
        ids = {e.id for e in run_checks()}
    assert ids & {"liverooms.E100", "liverooms.E102", "liverooms.E103", "liverooms.E104"}


# Sessionless sockets: capped per address, and one send budget per address --------


def guest(peer, path="/ws/chat/lobby/"):
    socket = StreamCommunicator(path, application=application, headers=ORIGIN)
    socket.scope["client"] = (peer, 40000)
    return socket


@override_settings(LIVEROOMS={"MAX_CONNECTIONS_PER_ADDRESS": 2})
async def test_sessionless_sockets_are_capped_per_address():
    await database_sync_to_async(make_room)()
    first, second = guest("203.0.113.7"), guest("203.0.113.7")
    await first.open()
    await second.open()
    assert await guest("203.0.113.7").close_code() == 4429
    elsewhere = guest("198.51.100.1")
    await elsewhere.open()
    await first.disconnect()
    again = guest("203.0.113.7")  # a place was given back
    await again.open()
    for socket in (second, elsewhere, again):
        await socket.disconnect()


@override_settings(
    LIVEROOMS={"ANONYMOUS_CHAT": True, "SEND_RATE": None, "USER_SEND_RATE": (2, 600)}
)
async def test_sessionless_guests_share_one_send_rate_per_address():
    await database_sync_to_async(make_room)()
    one, two = guest("203.0.113.7"), guest("203.0.113.7")
    await one.open()
    await two.open()
    for n in range(2):
        await one.send_frame({"type": "message", "body": f"m{n}", "client_id": f"a{n}"})
        assert (await one.receive_frame())["type"] == "message"
        assert (await two.receive_frame())["type"] == "message"
    await two.send_frame({"type": "message", "body": "more", "client_id": "b"})
    assert (await two.receive_frame())["code"] == "rate_limited"
    # Another address has its own budget.
    other = guest("198.51.100.1")
    await other.open()
    await other.send_frame({"type": "message", "body": "hi", "client_id": "c"})
    assert (await other.receive_frame())["body"] == "hi"
    for socket in (one, two, other):
        await socket.disconnect()


# SSE streams count as connections --------------------------------------------------


@override_settings(LIVEROOMS={"MAX_CONNECTIONS_PER_ADDRESS": 2})
async def test_anonymous_sse_streams_are_capped_per_address():
    await database_sync_to_async(make_blog)()
    streams = [await open_stream(), await open_stream()]  # the test client: 127.0.0.1
    assert [s.status for s in streams] == [200, 200]
    refused = await open_stream()
    assert refused.status == 429
    assert (await refused.json())["error"]["code"] == "rate_limited"
    await streams.pop().close()
    for _ in range(100):  # the place is given back when the response is closed
        again = await open_stream()
        if again.status == 200:
            break
        await again.json()
        await asyncio.sleep(0.02)
    assert again.status == 200
    await again.close()
    await streams[0].close()


async def test_a_refused_sse_stream_gives_its_place_back():
    with override_settings(LIVEROOMS={"MAX_CONNECTIONS_PER_ADDRESS": 1}):
        for _ in range(3):
            missing = await open_stream("/live/liveblog/nowhere/stream")
            assert missing.status == 404
            await missing.json()


async def test_stream_slot():
    with override_settings(LIVEROOMS={"MAX_CONNECTIONS_PER_ADDRESS": 1}):
        async with ratelimit.stream_slot(scope("203.0.113.9")) as ok:
            assert ok
            async with ratelimit.stream_slot(scope("203.0.113.9")) as again:
                assert not again
        async with ratelimit.stream_slot(scope("203.0.113.9")) as ok:
            assert ok


# The HTTP history: bounded concurrency, and an optional rate per client -------------


@pytest.fixture
def lobby():
    return make_room()


def test_history_reads_over_the_concurrency_bound_are_a_503(client, lobby):
    with override_settings(LIVEROOMS={"HTTP_HISTORY_CONCURRENCY": 2}):
        assert views._reading.enter(2) and views._reading.enter(2)  # two pages being read
        try:
            busy = client.get("/live/chat/lobby/messages")
        finally:
            views._reading.leave()
            views._reading.leave()
        assert busy.status_code == 503 and busy["Retry-After"] == "1"
        assert busy.json()["error"]["code"] == "unavailable"
        assert client.get("/live/chat/lobby/messages").status_code == 200
        assert views._reading.inside == 0


def test_a_failed_read_gives_its_place_back(client, lobby):
    with override_settings(LIVEROOMS={"HTTP_HISTORY_CONCURRENCY": 1}):
        for _ in range(3):
            assert client.get("/live/chat/lobby/messages?after=x").status_code == 400
            assert client.get("/live/chat/nowhere/messages").status_code == 404
        assert views._reading.inside == 0


def test_history_rate_per_client(client, lobby):
    with override_settings(LIVEROOMS={"HTTP_HISTORY_RATE": (2, 600)}):
        statuses = [
            client.get("/live/chat/lobby/messages", REMOTE_ADDR="203.0.113.20").status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        other = client.get("/live/chat/lobby/messages", REMOTE_ADDR="203.0.113.21")
        assert other.status_code == 200


# Typing: only from connections that may post -----------------------------------------


async def test_a_guest_who_may_not_post_does_not_type(room):
    typist, other = guest("203.0.113.7"), guest("198.51.100.1")
    welcome, _ = await typist.open()
    await other.open()
    assert not welcome["can_post"]
    await typist.send_frame({"type": "typing"})
    assert await other.receive_nothing(timeout=0.3)
    for socket in (typist, other):
        await socket.disconnect()


@override_settings(LIVEROOMS={"TYPING_RATE": None})
async def test_a_muted_user_stops_typing_once_the_verdict_is_looked_up_again(room, monkeypatch):
    alice = await database_sync_to_async(make_user)("alice")
    typist = StreamCommunicator(
        "/ws/chat/lobby/", user=alice, application=application, headers=ORIGIN
    )
    other = guest("198.51.100.1")
    await typist.open()
    await other.open()
    await typist.send_frame({"type": "typing"})
    assert (await other.receive_frame())["type"] == "typing"
    await RoomMute.objects.acreate(room=await Room.objects.aget(slug="lobby"), user=alice)
    monkeypatch.setattr(CachedVerdict, "ttl", 0.0)  # as if ttl seconds had passed
    await typist.send_frame({"type": "typing"})
    assert await other.receive_nothing(timeout=0.3)
    for socket in (typist, other):
        await socket.disconnect()


def test_cached_verdict():
    now = [0.0]
    verdict = CachedVerdict(True, clock=lambda: now[0])
    assert verdict.value and not verdict.stale()
    now[0] = CachedVerdict.ttl
    assert verdict.stale()
    verdict.set(False)
    assert not verdict.value and not verdict.stale()


# Guest names ----------------------------------------------------------------------------


def test_guest_names_carry_32_bits():
    names = {get_policy().guest_name(f"conn:{n}") for n in range(20_000)}
    assert len(names) == 20_000  # 16 bits collided within a few hundred
    assert all(len(name.removeprefix("Guest ")) == 8 for name in names)
