"""``manage.py liverooms_health``: healthy, broken and stalled layers, counts per process."""

import asyncio
import json
import shutil
import time
from io import StringIO

import pytest
from channels.db import database_sync_to_async
from django.core.management import CommandError, call_command
from django.test import override_settings

from django_liverooms import health
from django_liverooms.presence import get_store
from django_liverooms.testing import StreamCommunicator

from .asgi import application
from .conftest import missing_service
from .processes import RedisServer, free_port
from .settings import redis_channel_layers

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = [(b"origin", b"http://localhost")]


def run(*args):
    """(exit status, stdout) of the command."""
    out = StringIO()
    try:
        call_command("liverooms_health", *args, stdout=out)
    except SystemExit as exc:
        return exc.code, out.getvalue()
    return 0, out.getvalue()


def redis_layer(url, **liverooms):
    return override_settings(CHANNEL_LAYERS=redis_channel_layers(url), LIVEROOMS=liverooms)


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
def test_healthy_on_the_in_memory_layer(room):
    status, out = run("--json", "--stream", "chat:lobby")
    report = json.loads(out)
    assert status == 0 and report["healthy"] is True
    checks = report["checks"]
    assert checks["streams"]["data"]["streams"] == [
        {"kind": "chat", "slug": "lobby", "last_seq": 0}
    ]
    assert checks["presence"]["data"] == {"store": "memory", "counts": {"chat:lobby": 0}}
    assert "in-memory" in checks["processes"]["detail"]


def test_a_missing_stream_is_unhealthy_and_bad_arguments_are_refused(room):
    status, out = run("--stream", "chat:nope")
    assert status == 1
    assert "streams    FAIL no such stream: chat:nope" in out
    assert out.rstrip().endswith("UNHEALTHY")
    with pytest.raises(CommandError, match="chat:<slug> or liveblog:<slug>"):
        call_command("liverooms_health", "--stream", "lobby")


def test_a_layer_that_refuses_connections_is_unhealthy(room):
    with redis_layer(f"redis://127.0.0.1:{free_port()}/0", LAYER_TIMEOUT=3):
        status, out = run()
    assert status == 1
    assert (
        "layer      FAIL channels_redis.core.RedisChannelLayer: a message did not round-trip" in out
    )
    assert "presence   FAIL the presence Redis does not answer" in out
    assert "streams    ok" in out  # the database is fine


def test_a_stalled_layer_is_unhealthy_within_the_timeout(room):
    if shutil.which("redis-server") is None:
        missing_service("redis-server is not installed")
    with RedisServer() as server, redis_layer(server.url, LAYER_TIMEOUT=0.5):
        server.pause()
        try:
            status, out = run("--json")
        finally:
            server.resume()
    report = json.loads(out)
    assert status == 1 and report["healthy"] is False
    assert "no answer within LAYER_TIMEOUT (0.5 s)" in report["checks"]["layer"]["detail"]


async def test_connection_counts_per_process_on_redis(room, redis_url):
    with redis_layer(redis_url, HEALTH_INTERVAL=0.2):
        store = get_store()
        client = await store.aclient()
        key = health.processes_key(store.prefix)
        # A process SIGKILLed long ago left its last report behind.
        stale = json.dumps({"connections": 7, "streams": 1, "at": time.time() - 60})
        await client.hset(key, "gone:1", stale)
        sockets = [
            StreamCommunicator("/ws/chat/lobby/", application=application, headers=ORIGIN)
            for _ in range(2)
        ]
        for socket_ in sockets:
            await socket_.open()
        deadline = time.monotonic() + 10
        while b'"connections": 2' not in (await client.hget(key, health.process_name()) or b""):
            assert time.monotonic() < deadline, "no report with both sockets"
            await asyncio.sleep(0.05)
        status, out = await database_sync_to_async(run)("--json", "--stream", "chat:lobby")
        checks = json.loads(out)["checks"]
        assert status == 0
        processes = checks["processes"]["data"]["processes"]
        assert list(processes) == [health.process_name()]  # the stale one is ignored
        assert processes[health.process_name()]["connections"] == 2
        assert processes[health.process_name()]["streams"] == 1
        assert checks["presence"]["data"]["counts"] == {"chat:lobby": 2}
        assert not await client.hexists(key, "gone:1")  # and deleted
        for socket_ in sockets:
            await socket_.disconnect()
        # The last socket gone, the process takes its entry out.
        deadline = time.monotonic() + 10
        while await client.hexists(key, health.process_name()):
            assert time.monotonic() < deadline, "the report outlived the sockets"
            await asyncio.sleep(0.05)


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
async def test_nothing_is_reported_on_the_in_memory_layer(room):
    socket_ = StreamCommunicator("/ws/chat/lobby/", application=application, headers=ORIGIN)
    await socket_.open()
    census = health.census()
    assert census.counts() == {"connections": 1, "streams": 1}
    assert census.task is None  # no Redis to report to, so no reporting task
    await socket_.disconnect()
    assert census.counts() == {"connections": 0, "streams": 0}


class FakeConsumer:
    def __init__(self, group_name):
        self.stream = type("Stream", (), {"group_name": group_name})()


async def test_a_socket_that_opens_during_the_zero_report_keeps_being_reported(monkeypatch):
    """The last socket closes; while its zero report is in flight a new one opens."""
    census = health.Census()
    reports = []
    newcomer = FakeConsumer("chat.lobby")

    async def report(counts):
        reports.append(counts["connections"])
        if reports == [1, 0]:
            census.add(newcomer)  # the task is still running: add() starts no other
            await asyncio.sleep(0)

    monkeypatch.setattr(health, "report", report)
    monkeypatch.setattr(health, "shared", lambda: True)
    with override_settings(LIVEROOMS={"HEALTH_INTERVAL": 0.01}):
        first = FakeConsumer("chat.lobby")
        census.add(first)
        await asyncio.sleep(0)
        census.discard(first)
        deadline = time.monotonic() + 5
        while reports[-1:] != [1] or len(reports) < 3:
            assert time.monotonic() < deadline, f"the newcomer was never reported: {reports}"
            await asyncio.sleep(0.01)
        census.discard(newcomer)
        await asyncio.wait_for(census.task, 5)
    assert reports[:3] == [1, 0, 1]
