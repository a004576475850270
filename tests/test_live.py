"""Real processes: daphne servers, runworker and manage.py shell on real Redis.

These are the promises a unit test cannot show: a save in another process
reaches readers of a running server, and two server processes act as one.
"""

import asyncio
import json
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .processes import Site

pytestmark = pytest.mark.live


@contextmanager
def site(tmp_path, redis_url, **env):
    site = Site(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        REDIS_URL=redis_url,
        LIVEROOMS_TEST_LAYER_PREFIX=f"liverooms-live-{uuid.uuid4().hex[:8]}",
        **env,
    )
    site.manage("migrate", "--verbosity=0")
    site.shell(
        "from django_liverooms.models import Room, LiveBlog\n"
        "from django.contrib.auth.models import User\n"
        "Room.objects.create(slug='lobby', title='Lobby')\n"
        "LiveBlog.objects.create(slug='match-day', title='Match day')\n"
        "User.objects.create_superuser('admin', password='pw')\n"
    )
    try:
        yield site
    finally:
        site.stop()


async def open_stream(port, path, **kwargs):
    socket_ = await connect(ws_url(port, path), origin=f"http://127.0.0.1:{port}", **kwargs)
    welcome = json.loads(await socket_.recv())
    history = json.loads(await socket_.recv())
    assert (welcome["type"], history["type"]) == ("welcome", "history")
    return socket_, welcome, history


def ws_url(port, path):
    return f"ws://127.0.0.1:{port}{path}"


async def recv(socket_, timeout=10, skip=("presence",)):
    """The next frame, stepping over presence frames (they come when others join)."""
    while True:
        frame = json.loads(await asyncio.wait_for(socket_.recv(), timeout))
        if frame["type"] not in skip:
            return frame


async def test_an_entry_saved_in_manage_py_shell_reaches_readers(tmp_path, redis_url):
    with site(tmp_path, redis_url) as s:
        port = s.server()
        reader, welcome, _ = await open_stream(port, "/ws/liveblog/match-day/")
        await asyncio.to_thread(
            s.shell,
            "from django_liverooms.models import Entry, LiveBlog\n"
            "Entry.objects.create(blog=LiveBlog.objects.get(slug='match-day'), title='Goal!',"
            " body='<p>1-0 <script>x</script></p>', status='published')\n",
        )
        entry = await recv(reader)
        assert (entry["type"], entry["seq"], entry["title"], entry["body"]) == (
            "entry",
            1,
            "Goal!",
            "<p>1-0 </p>",
        )
        await reader.close()


async def test_two_server_processes_act_as_one(tmp_path, redis_url):
    with site(tmp_path, redis_url) as s:
        first, second = s.server(), s.server()
        a, _, _ = await open_stream(first, "/ws/chat/lobby/")
        b, _, _ = await open_stream(second, "/ws/chat/lobby/")
        # Guests may not post by default; post as a bot from code on a third process.
        await asyncio.to_thread(
            s.shell,
            "from django_liverooms.models import Message, Room\n"
            "Message.objects.create(room=Room.objects.get(slug='lobby'), body='hello both', author_name='bot')\n",
        )
        frames = [await recv(a), await recv(b)]
        assert frames[0] == frames[1] and frames[0]["body"] == "hello both"
        # A page of another site may not connect.
        with pytest.raises(InvalidStatus) as refused:
            await connect(ws_url(first, "/ws/chat/lobby/"), origin="http://evil.example")
        assert refused.value.response.status_code == 403
        # Resume on the other process with ?after= sees the same stream.
        c, welcome, history = await open_stream(second, "/ws/chat/lobby/?after=0")
        assert welcome["seq"] == 1 and history["items"] == [frames[0]]
        for ws in (a, b, c):
            await ws.close()


async def test_worker_mode_with_runworker(tmp_path, redis_url):
    with site(tmp_path, redis_url, LIVEROOMS_TEST_PERSISTENCE="worker") as s:
        s.start(sys.executable, "-m", "django", "runworker", "liverooms.persist")
        port = s.server()
        # A signed-in sender, through the session cookie as a browser would.
        cookie = await asyncio.to_thread(session_cookie, s, "admin")
        sender, welcome, _ = await open_stream(
            port, "/ws/chat/lobby/", additional_headers={"Cookie": cookie}
        )
        assert welcome["can_post"] and welcome["user"]["name"] == "admin"
        await sender.send(
            json.dumps({"type": "message", "body": "stored by a worker", "client_id": "w"})
        )
        ack = await recv(sender, timeout=15)
        assert (ack["type"], ack["body"], ack["client_id"]) == (
            "message",
            "stored by a worker",
            "w",
        )
        stored = await asyncio.to_thread(
            s.shell,
            "from django_liverooms.models import Message; print(Message.objects.get().body)",
        )
        assert stored.strip() == "stored by a worker"
        await sender.close()

        # The worker publishes a scheduled entry at its time, with no cron.
        reader, _, _ = await open_stream(port, "/ws/liveblog/match-day/")
        due = await asyncio.to_thread(
            s.shell,
            "from datetime import timedelta\n"
            "from django.utils import timezone\n"
            "from django_liverooms.models import Entry, LiveBlog\n"
            "when = timezone.now() + timedelta(seconds=2)\n"
            "Entry.objects.create(blog=LiveBlog.objects.get(), title='On time', body='<p>x</p>',"
            " status='published', publish_at=when)\n"
            "print(when.timestamp())\n",
        )
        entry = await recv(reader, timeout=15)
        assert (entry["type"], entry["title"]) == ("entry", "On time")
        assert time.time() >= float(due)
        await reader.close()


def session_cookie(site, username):
    """A session cookie for ``username``, made by Django's test client in a shell."""
    sessionid = site.shell(
        "from django.contrib.auth.models import User\n"
        "from django.test import Client\n"
        "client = Client()\n"
        f"client.force_login(User.objects.get(username={username!r}))\n"
        "print(client.cookies['sessionid'].value)\n"
    ).strip()
    return f"sessionid={sessionid}"


async def test_bad_paths_and_the_http_api_on_a_real_server(tmp_path, redis_url):
    with site(tmp_path, redis_url) as s:
        port = s.server()
        for path in (
            "/ws/chat/NOT-A-SLUG/",
            "/ws/chat/missing/",
            "/ws/liveblog/" + "x" * 100 + "/",
        ):
            socket_ = await connect(ws_url(port, path), origin=f"http://127.0.0.1:{port}")
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(socket_.recv(), 5)
            assert closed.value.rcvd.code == 4404, path
        await asyncio.to_thread(
            s.shell,
            "from django_liverooms.models import Message, Room\n"
            "for n in range(3): Message.objects.create(room=Room.objects.get(slug='lobby'), body=f'm{n}', author_name='bot')\n",
        )
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/live/chat/lobby/messages?after=1&limit=1"
        ) as response:
            page = json.load(response)
        assert [i["body"] for i in page["items"]] == ["m1"] and page["complete"] is False
