import pytest
from django.test import override_settings

from django_liverooms.protocol import ProtocolError
from django_liverooms.ratelimit import ConnectionLimiter, LocalCounters, Rate, TokenBucket


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_rate_parse():
    assert Rate.parse((10, 5)) == Rate(10, 5.0)
    assert Rate.parse(None) is None
    for bad in [10, (0, 1), (1, 0), ("1", 1), (True, 1), (1, 2, 3), "10/s"]:
        with pytest.raises(ValueError, match="expected|must be"):
            Rate.parse(bad)


def test_token_bucket_spends_its_burst_then_refills_at_the_rate():
    bucket = TokenBucket.full(Rate(3, 6), now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(1.9) is False  # 1.9 s refills 0.95 of a token
    assert bucket.take(2.0) is True  # one token per 2 s
    assert bucket.take(2.0) is False
    assert bucket.is_full(100.0) and bucket.tokens == 3  # never above the burst


def test_token_bucket_ignores_a_clock_going_backwards():
    bucket = TokenBucket.full(Rate(1, 1), now=10.0)
    assert bucket.take(10.0)
    assert not bucket.take(5.0)


async def test_local_counters_keep_a_bucket_per_key_and_count_connections():
    clock = Clock()
    counters = LocalCounters(clock=clock)
    rate = Rate(2, 10)
    assert [await counters.take("a", rate) for _ in range(3)] == [True, True, False]
    assert await counters.take("b", rate)
    clock.now += 5
    assert await counters.take("a", rate)
    assert [await counters.acquire("u", 2) for _ in range(3)] == [True, True, False]
    await counters.release("u")
    assert await counters.acquire("u", 2)
    for _ in range(5):
        await counters.release("u")
    assert "u" not in counters.connections


async def test_local_counters_prune_only_full_buckets():
    clock = Clock()
    counters = LocalCounters(clock=clock, max_buckets=2)
    rate = Rate(1, 100)
    assert await counters.take("spent", rate)
    clock.now += 1000  # "spent" is full again: nothing to remember
    assert await counters.take("busy", rate)
    assert await counters.take("new", rate)  # prunes "spent", keeps "busy"
    assert set(k for k, _ in counters.buckets) == {"busy", "new"}
    assert not await counters.take("busy", rate)


@override_settings(
    LIVEROOMS={
        "FRAME_RATE": (3, 60),
        "SEND_RATE": (2, 60),
        "USER_SEND_RATE": (3, 60),
        "ABUSE_LIMIT": (2, 60),
        "TYPING_RATE": (1, 2),
    }
)
async def test_connection_limiter_refuses_then_closes_after_repeated_violations():
    clock = Clock()
    counters = LocalCounters(clock=clock)
    limiter = ConnectionLimiter("user:1", counters=counters, clock=clock)
    await limiter.send("a")
    await limiter.send("b")
    refusals = []
    for client_id in ("c", "d", "e"):
        with pytest.raises(ProtocolError) as info:
            await limiter.send(client_id)
        refusals.append((info.value.code, info.value.client_id, info.value.close_code))
    assert refusals == [
        ("rate_limited", "c", None),
        ("rate_limited", "d", None),
        ("rate_limited", "e", 4429),
    ]


@override_settings(LIVEROOMS={"SEND_RATE": None, "USER_SEND_RATE": (3, 60)})
async def test_the_per_user_rate_is_shared_by_connections():
    clock = Clock()
    counters = LocalCounters(clock=clock)
    one = ConnectionLimiter("user:1", counters=counters, clock=clock)
    two = ConnectionLimiter("user:1", counters=counters, clock=clock)
    other = ConnectionLimiter("user:2", counters=counters, clock=clock)
    await one.send()
    await two.send()
    await one.send()
    with pytest.raises(ProtocolError, match="from you"):
        await two.send()
    await other.send()


@override_settings(LIVEROOMS={"FRAME_RATE": (2, 10), "TYPING_RATE": (1, 2), "ABUSE_LIMIT": None})
def test_frame_and_typing_limits():
    clock = Clock()
    limiter = ConnectionLimiter("conn:x", counters=LocalCounters(clock=clock), clock=clock)
    limiter.frame()
    limiter.frame()
    with pytest.raises(ProtocolError) as info:
        limiter.frame()
    assert (info.value.code, info.value.close_code) == ("rate_limited", None)
    assert limiter.typing() and not limiter.typing()
    clock.now += 2
    assert limiter.typing()


def test_owner_key_counts_users_and_guest_sessions_not_bare_sockets():
    from types import SimpleNamespace

    from django.contrib.auth.models import AnonymousUser

    from django_liverooms.ratelimit import owner_key

    user = SimpleNamespace(is_authenticated=True, pk=7)
    session = SimpleNamespace(session_key="abc")
    assert owner_key({"user": user, "session": session}) == "user:7"
    assert owner_key({"user": AnonymousUser(), "session": session}) == "session:abc"
    assert (
        owner_key({"user": AnonymousUser(), "session": SimpleNamespace(session_key=None)}) is None
    )
    assert owner_key({}) is None
