"""The live blog's Server-Sent Events stream (docs/protocol.md, "Server-Sent Events")."""

import json
import uuid
from http.client import HTTPConnection

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.contrib.sessions.models import Session
from django.test import override_settings

from django_liverooms import revoke, streams
from django_liverooms.models import Entry
from django_liverooms.testing import StreamCommunicator

from . import test_faults, test_policy
from .asgi import application
from .factories import make_blog, make_user, publish_entry
from .test_consumers import ORIGIN
from .test_live import site
from .test_policy import EXPECTED, ROLES, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

world = test_policy.world  # the policy table's users and streams (a fixture)
redis = test_faults.redis  # a redis-server of the test's own, to restart (a fixture)

TIMEOUT = 3
# Tests that look inside, or break, the in-memory layer (also when the suite runs on Redis).
in_memory_layer = override_settings(
    CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
)


class Ended(Exception):
    """The server ended the response."""


class EventSource:
    """An SSE reader of the test project's ASGI application, in process."""

    def __init__(self, path, headers=(), query="", method="GET", session=None):
        headers = [(b"host", b"testserver"), *headers]
        if session is not None:
            headers.append((b"cookie", f"sessionid={session}".encode()))
        self.communicator = ApplicationCommunicator(
            application,
            {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": method,
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "query_string": query.encode(),
                "headers": headers,
                "client": ("127.0.0.1", 40000),
                "server": ("testserver", 80),
            },
        )
        self.buffer = ""
        self.ended = False

    async def start(self):
        await self.communicator.send_input({"type": "http.request", "body": b""})
        start = await self.communicator.receive_output(TIMEOUT)
        self.status = start["status"]
        self.headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
        return self

    async def json(self):
        body = b""
        while True:
            message = await self.communicator.receive_output(TIMEOUT)
            body += message.get("body", b"")
            if not message.get("more_body"):
                return json.loads(body)

    async def block(self, timeout=TIMEOUT):
        """The next raw SSE block (without its blank line); Ended at the end."""
        while "\n\n" not in self.buffer:
            if self.ended:
                raise Ended(self.buffer)
            message = await self.communicator.receive_output(timeout)
            self.buffer += message.get("body", b"").decode()
            self.ended = not message.get("more_body")
        block, self.buffer = self.buffer.split("\n\n", 1)
        return block

    async def event(self, timeout=TIMEOUT):
        """The next event as (id or None, frame), stepping over comments and retry."""
        while True:
            fields = {}
            for line in (await self.block(timeout)).split("\n"):
                name, _, value = line.partition(": ")
                if name:  # "" is a comment line
                    fields[name] = value
            if "data" in fields:
                seq = int(fields["id"]) if "id" in fields else None
                return seq, json.loads(fields["data"])

    async def events(self, count):
        return [await self.event() for _ in range(count)]

    async def expect_end(self):
        """The response ends (after any events still buffered, which are returned)."""
        rest = []
        try:
            while True:
                rest.append(await self.event())
        except Ended:
            return rest

    async def close(self):
        await self.communicator.send_input({"type": "http.disconnect"})
        await self.communicator.wait(TIMEOUT)


async def open_stream(path="/live/liveblog/match-day/stream", **kwargs):
    return await EventSource(path, **kwargs).start()


@pytest.fixture
def blog():
    return make_blog()


def publish(blog, count):
    return [publish_entry(blog, title=f"e{i}") for i in range(count)]


apublish = database_sync_to_async(publish)


async def test_headers_retry_welcome_then_history_as_identified_events(blog):
    await apublish(blog, 3)
    sse = await open_stream()
    assert sse.status == 200
    assert sse.headers["content-type"] == "text/event-stream"
    assert sse.headers["cache-control"] == "no-cache"
    assert sse.headers["x-accel-buffering"] == "no"
    assert await sse.block() == "retry: 3000"
    block = await sse.block()
    assert block.startswith("data: ") and "\n" not in block  # no id line
    welcome = json.loads(block[len("data: ") :])
    assert welcome == {
        "type": "welcome",
        "stream": "liveblog",
        "slug": "match-day",
        "seq": 3,
        "user": {"id": None, "name": welcome["user"]["name"]},
        "can_post": False,
        "can_moderate": False,
        "version": 1,
    }
    history = await sse.events(3)
    stored = await database_sync_to_async(lambda: list(blog.events.values_list("seq", "frame")))()
    assert history == [(seq, json.loads(frame)) for seq, frame in stored]
    assert [frame["title"] for _, frame in history] == ["e0", "e1", "e2"]
    await sse.close()


async def test_the_frames_are_the_stored_text_byte_for_byte(blog):
    await apublish(blog, 1)
    sse = await open_stream()
    await sse.event()  # welcome
    block = await sse.block()
    frame = await database_sync_to_async(lambda: blog.events.get().frame)()
    assert block == f"id: 1\ndata: {frame}"
    await sse.close()


async def test_last_event_id_resumes_and_wins_over_after(blog):
    await apublish(blog, 5)
    sse = await open_stream(headers=[(b"last-event-id", b"2")], query="after=4")
    _, welcome = await sse.event()
    assert welcome["seq"] == 5
    assert [seq for seq, _ in await sse.events(3)] == [3, 4, 5]
    await apublish(blog, 1)
    seq, frame = await sse.event()
    assert (seq, frame["type"]) == (6, "entry")
    await sse.close()


async def test_after_resumes_the_first_connection(blog):
    await apublish(blog, 4)
    sse = await open_stream(query="after=3")
    await sse.event()
    assert (await sse.event())[0] == 4
    await apublish(blog, 1)
    assert (await sse.event())[0] == 5
    await sse.close()


@override_settings(LIVEROOMS={"HISTORY_LIMIT": 2})
async def test_without_a_resume_point_the_latest_history_limit_events(blog):
    await apublish(blog, 5)
    sse = await open_stream()
    await sse.event()
    assert [seq for seq, _ in await sse.events(2)] == [4, 5]
    await apublish(blog, 1)
    assert (await sse.event())[0] == 6
    await sse.close()


@override_settings(LIVEROOMS={"HISTORY_LIMIT": 2})
async def test_a_resume_beyond_the_bound_is_sent_in_pages_without_a_gap(blog):
    await apublish(blog, 7)
    sse = await open_stream(headers=[(b"last-event-id", b"1")])
    await sse.event()
    assert [seq for seq, _ in await sse.events(6)] == [2, 3, 4, 5, 6, 7]
    await apublish(blog, 1)
    assert (await sse.event())[0] == 8
    await sse.close()


async def test_events_committed_during_the_hand_over_come_once_and_in_order(blog, monkeypatch):
    """One event commits just before the history is read (it is in the history
    and also arrives live), one just after (live only): each is sent once."""
    await apublish(blog, 2)
    read_history = streams.read_history

    def racing_read_history(stream, **kwargs):
        publish(blog, 1)
        history = read_history(stream, **kwargs)
        publish(blog, 1)
        return history

    monkeypatch.setattr(streams, "read_history", racing_read_history)
    sse = await open_stream(headers=[(b"last-event-id", b"1")])
    _, welcome = await sse.event()
    assert welcome["seq"] == 3
    monkeypatch.undo()
    await apublish(blog, 1)
    assert [seq for seq, _ in await sse.events(4)] == [2, 3, 4, 5]
    await apublish(blog, 1)
    assert (await sse.event())[0] == 6  # nothing was sent twice in between
    await sse.close()


async def test_entries_published_edited_and_deleted_through_the_model_arrive_live(blog):
    sse = await open_stream()
    _, welcome = await sse.event()
    assert welcome["seq"] == 0
    [entry] = await apublish(blog, 1)

    def edit_then_delete():
        entry.title = "Goal!"
        entry.save()
        Entry.objects.get(pk=entry.pk).delete()

    await database_sync_to_async(edit_then_delete)()
    got = await sse.events(3)
    assert [(seq, frame["type"]) for seq, frame in got] == [
        (1, "entry"),
        (2, "entry.edited"),
        (3, "entry.deleted"),
    ]
    assert got[1][1]["title"] == "Goal!"
    await sse.close()


@override_settings(LIVEROOMS={"SSE_KEEPALIVE": 0.05, "SSE_RETRY": 500})
async def test_keep_alive_comments_on_an_idle_stream(blog):
    sse = await open_stream()
    assert await sse.block() == "retry: 500"
    await sse.event()
    assert await sse.block() == ": keep-alive"
    assert await sse.block() == ": keep-alive"
    await apublish(blog, 1)
    assert (await sse.event())[0] == 1  # still live after the comments
    await sse.close()


@in_memory_layer
async def test_a_disconnected_reader_leaves_the_group(blog):
    sse = await open_stream()
    await sse.event()
    layer = get_channel_layer()
    assert len(layer.groups[blog.group_name]) == 1
    await sse.close()
    assert not layer.groups.get(blog.group_name)


@in_memory_layer
async def test_streams_read_through_the_process_hub_with_no_layer_channel_each(blog):
    readers = [await open_stream() for _ in range(3)]
    for sse in readers:
        await sse.event()  # welcome (the blog is empty)
    # One channel in the group, the hub's, however many streams are open.
    assert len(get_channel_layer().groups[blog.group_name]) == 1
    await apublish(blog, 1)
    for sse in readers:
        assert (await sse.event())[0] == 1
        await sse.close()
    assert not get_channel_layer().groups.get(blog.group_name)


async def test_many_streams_on_redis_hold_no_redis_connection_each(blog, redis_url):
    import redis as redis_client

    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": f"liverooms-sse-{uuid.uuid4().hex[:8]}"},
        }
    }
    server = redis_client.Redis.from_url(redis_url)
    with override_settings(CHANNEL_LAYERS=layers):
        first = await open_stream()
        await first.event()
        before = len(server.client_list())
        readers = [await open_stream() for _ in range(30)]
        for sse in readers:
            await sse.event()
        # Before, each stream read its own channel: one Redis connection per stream.
        assert len(server.client_list()) - before < 5
        await apublish(blog, 1)
        for sse in [first, *readers]:
            assert (await sse.event())[0] == 1
            await sse.close()


@override_settings(LIVEROOMS={"SEND_QUEUE_BYTES": 1024})
def test_a_reader_that_falls_behind_is_ended_and_keeps_nothing_more():
    from django_liverooms.sse import _TOO_SLOW, Reader

    reader = Reader(stream=None)  # its queue alone: never opened
    for seq in range(1, 50):
        reader.take(seq, None, {"type": "websocket.send", "text": "z" * 100})
    events = reader.drain()
    assert events[-1] is _TOO_SLOW  # the response ends; the browser resumes
    assert len(events) == 12  # 11 frames (over 1024 characters), then the end
    assert reader.size == 0


async def test_an_open_stream_counts_in_the_health_census(blog):
    from django_liverooms import health

    census = health.census()
    before = census.counts()["connections"]
    sse = await open_stream()
    await sse.event()
    assert census.counts()["connections"] == before + 1
    await sse.close()
    assert census.counts()["connections"] == before


@pytest.mark.parametrize("value", ["x", "-1", "1.5", "9" * 30])
async def test_a_bad_resume_point_is_reported_then_the_latest_history(blog, value):
    await apublish(blog, 2)
    sse = await open_stream(headers=[(b"last-event-id", value.encode())])
    (_, welcome), (seq, error) = await sse.events(2)
    assert welcome["type"] == "welcome" and seq is None
    assert (error["type"], error["code"]) == ("error", "bad_frame")
    assert [seq for seq, _ in await sse.events(2)] == [1, 2]
    await sse.close()


@pytest.mark.parametrize("after", ["9", "1"])
async def test_a_resume_point_gone_or_beyond_the_stream_is_history_gone(blog, after):
    await apublish(blog, 3)
    if after == "1":  # the events after 1 were pruned
        await database_sync_to_async(streams.prune_events)(blog, keep_last=1, older_than=None)
    sse = await open_stream(query=f"after={after}")
    (_, welcome), (seq, error) = await sse.events(2)
    assert (error["code"], seq) == ("history_gone", None)
    kept = [3] if after == "1" else [1, 2, 3]
    assert [seq for seq, _ in await sse.events(len(kept))] == kept
    await sse.close()


# Access: the socket's policy ----------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
async def test_the_policy_table_over_sse(world, role):
    """The live blog rows of test_policy's table: the socket's answers."""
    close, can_post, _, _, status = EXPECTED[(role, "live blog")]
    user = world[role]
    session = None if user is None else await database_sync_to_async(session_cookie)(user)
    sse = await open_stream(session=session)
    assert sse.status == status == 200 and close is None
    _, welcome = await sse.event()
    assert (welcome["can_post"], welcome["can_moderate"]) == (can_post, False)
    assert welcome["user"]["id"] == (user.pk if user else None)
    await sse.close()


@override_settings(LIVEROOMS={"POLICY": "tests.policies.NobodyPolicy"})
async def test_a_policy_that_refuses_gets_the_history_apis_403(blog):
    sse = await open_stream()
    assert sse.status == 403
    assert (await sse.json())["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    "path",
    [
        "/live/liveblog/nope/stream",
        "/live/liveblog/Bad%20Slug/stream",
        "/live/liveblog/" + "a" * 65 + "/stream",
    ],
)
async def test_unknown_live_blogs_are_a_404(blog, path):
    sse = await open_stream(path)
    assert sse.status == 404
    assert (await sse.json())["error"]["code"] == "not_found"


async def test_chat_rooms_have_no_stream(blog):
    sse = await open_stream("/live/chat/lobby/stream")
    assert sse.status == 404


async def test_only_get(blog):
    sse = await open_stream(method="POST")
    assert sse.status == 405
    assert sse.headers["allow"] == "GET"
    assert (await sse.json())["error"]["code"] == "method_not_allowed"


@override_settings(LIVEROOMS={"POLICY": "tests.policies.EditorsReadPolicy"})
async def test_a_reader_whose_access_is_revoked_while_connected_is_ended(blog):
    editor = await database_sync_to_async(make_user)("ed", editor=True)
    other = await database_sync_to_async(make_user)("other", editor=True)
    sse = await open_stream(session=await database_sync_to_async(session_cookie)(editor))
    watcher = await open_stream(session=await database_sync_to_async(session_cookie)(other))
    assert sse.status == watcher.status == 200
    await sse.event()
    await watcher.event()

    def revoke_editor():
        editor.user_permissions.clear()
        revoke.recheck(blog.group_name, editor.pk)

    await database_sync_to_async(revoke_editor)()
    seq, error = await sse.event()
    assert (seq, error["type"], error["code"]) == (None, "error", "forbidden")
    assert await sse.expect_end() == []
    await apublish(blog, 1)
    assert (await watcher.event())[0] == 1  # the other reader goes on
    again = await open_stream(session=await database_sync_to_async(session_cookie)(editor))
    assert again.status == 403
    await watcher.close()


async def test_a_reader_whose_session_ended_elsewhere_is_ended(blog):
    user = await database_sync_to_async(make_user)("alice")
    sse = await open_stream(session=await database_sync_to_async(session_cookie)(user))
    _, welcome = await sse.event()
    assert welcome["user"]["id"] == user.pk

    def log_out_everywhere():
        Session.objects.all().delete()
        revoke.recheck(blog.group_name)

    await database_sync_to_async(log_out_everywhere)()
    _, error = await sse.event()
    assert (error["code"], error["detail"]) == (
        "forbidden",
        "Your session has ended; sign in and reconnect.",
    )
    assert await sse.expect_end() == []


# Channel-layer failures end the response: EventSource reconnects and resumes ---


@in_memory_layer
async def test_a_failed_layer_read_ends_the_stream(blog, monkeypatch):
    await apublish(blog, 1)

    async def broken_receive(self, channel):
        raise ConnectionError("redis went away")

    monkeypatch.setattr(InMemoryChannelLayer, "receive", broken_receive)
    sse = await open_stream()
    got = await sse.expect_end()
    assert [(seq, frame["type"]) for seq, frame in got] == [(None, "welcome"), (1, "entry")]


@in_memory_layer
async def test_a_failed_join_ends_the_stream_after_retry(blog, monkeypatch):
    async def broken_group_add(self, group, channel):
        raise ConnectionError("redis went away")

    monkeypatch.setattr(InMemoryChannelLayer, "group_add", broken_group_add)
    sse = await open_stream()
    assert sse.status == 200
    assert await sse.block() == "retry: 3000"
    assert await sse.expect_end() == []


# Redis layers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend",
    ["channels_redis.core.RedisChannelLayer", "channels_redis.pubsub.RedisPubSubChannelLayer"],
)
async def test_over_redis_layers(blog, redis_url, backend):
    layers = {
        "default": {
            "BACKEND": backend,
            "CONFIG": {"hosts": [redis_url], "prefix": f"liverooms-sse-{uuid.uuid4().hex[:8]}"},
        }
    }
    with override_settings(CHANNEL_LAYERS=layers):
        await apublish(blog, 2)
        sse = await open_stream(headers=[(b"last-event-id", b"1")])
        await sse.event()
        assert (await sse.event())[0] == 2
        await apublish(blog, 1)
        assert (await sse.event())[0] == 3
        await sse.close()


# A real ASGI server ------------------------------------------------------------------


def read_events(response, count):
    """``count`` events (id, frame) from a streaming http.client response."""
    events, fields = [], {}
    while len(events) < count:
        line = response.readline().decode()
        assert line, "the stream ended"
        line = line.rstrip("\n")
        if line == "":
            if "data" in fields:
                events.append((fields.get("id"), json.loads(fields["data"])))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    return events


@pytest.mark.live
def test_over_daphne_an_entry_saved_in_another_process_arrives_and_resume_has_no_gap(
    tmp_path, redis_url
):
    publish_in_shell = (
        "from django_liverooms.models import Entry, LiveBlog\n"
        "Entry.objects.create(blog=LiveBlog.objects.get(slug='match-day'), title='{}',"
        " status='published')\n"
    )
    with site(tmp_path, redis_url) as s:
        for title in ("a", "b", "c"):
            s.shell(publish_in_shell.format(title))
        port = s.server()
        http = HTTPConnection("127.0.0.1", port, timeout=10)
        http.request("GET", "/live/liveblog/match-day/stream", headers={"Last-Event-ID": "1"})
        response = http.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "text/event-stream"
        assert response.getheader("Cache-Control") == "no-cache"
        assert response.readline() == b"retry: 3000\n"
        (_, welcome), *history = read_events(response, 3)
        assert (welcome["type"], welcome["seq"]) == ("welcome", 3)
        assert [(seq, frame["title"]) for seq, frame in history] == [("2", "b"), ("3", "c")]
        s.shell(publish_in_shell.format("d"))
        [(seq, entry)] = read_events(response, 1)
        assert (seq, entry["type"], entry["title"]) == ("4", "entry", "d")
        http.close()

        s.shell(publish_in_shell.format("e"))  # while nobody reads
        http = HTTPConnection("127.0.0.1", port, timeout=10)
        http.request("GET", "/live/liveblog/match-day/stream", headers={"Last-Event-ID": "4"})
        response = http.getresponse()
        _, (seq, entry) = read_events(response, 2)
        assert (seq, entry["title"]) == ("5", "e")
        http.close()
        log = s.servers[port].log
        log.seek(0)
        assert "Traceback" not in log.read()


@pytest.mark.redis
async def test_a_restarted_redis_ends_the_stream_and_a_reconnect_resumes(redis, blog):
    sse = await open_stream()
    await sse.event()
    redis.restart()  # the group memberships are gone: frames would be missed
    assert await sse.expect_end() == []
    await apublish(blog, 1)  # stored while the reader is away
    for _ in range(50):  # as EventSource does, until the layer is back
        again = await open_stream(headers=[(b"last-event-id", b"0")])
        try:
            assert (await again.event(timeout=10))[1]["type"] == "welcome"
            seq, frame = await again.event(timeout=10)
            break
        except Ended:
            continue
    assert (seq, frame["type"]) == (1, "entry")
    await again.close()


@override_settings(LIVEROOMS={"POLICY": "tests.policies.TenantPolicy"})
async def test_a_prefix_that_captures_kwargs_reaches_the_policy(blog):
    refused = await open_stream("/other/live/liveblog/match-day/stream")
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "forbidden"
    sse = await open_stream("/acme/live/liveblog/match-day/stream")
    assert sse.status == 200
    assert (await sse.event())[1]["type"] == "welcome"
    await sse.close()


@pytest.mark.parametrize("fanout", ["process", "consumer"])
async def test_a_socket_and_an_sse_reader_get_the_same_text(blog, fanout):
    with override_settings(LIVEROOMS={"FANOUT": fanout}):
        socket = StreamCommunicator(
            "/ws/liveblog/match-day/", application=application, headers=ORIGIN
        )
        await socket.open()
        sse = await open_stream()
        await sse.event()
        await apublish(blog, 1)
        block = await sse.block()
        while not block.startswith("id: "):  # presence frames (no id) may come first
            block = await sse.block()
        text = await socket.receive_from(TIMEOUT)
        while json.loads(text)["type"] == "presence":
            text = await socket.receive_from(TIMEOUT)
        assert block == f"id: 1\ndata: {text}"
        await socket.disconnect()
        await sse.close()
