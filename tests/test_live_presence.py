"""Presence and typing across two daphne processes on one real Redis."""

import asyncio
import json
import time

import pytest

from .test_live import open_stream, recv, session_cookie, site

pytestmark = pytest.mark.live

TTL, HEARTBEAT, INTERVAL = 2.0, 0.5, 0.2
# A killed process's connections leave within TTL + HEARTBEAT (docs/presence.md),
# and the change is broadcast within INTERVAL after that.
LEAVE_BOUND = TTL + HEARTBEAT + INTERVAL
FAST_PRESENCE = {
    "LIVEROOMS_TEST_PRESENCE_TTL": str(TTL),
    "LIVEROOMS_TEST_PRESENCE_HEARTBEAT": str(HEARTBEAT),
    "LIVEROOMS_TEST_PRESENCE_INTERVAL": str(INTERVAL),
}


async def presence_until(socket_, predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        frame = await recv(socket_, timeout=max(0.01, deadline - time.monotonic()), skip=())
        if frame["type"] == "presence" and predicate(frame):
            return frame


async def join(port, path, cookie=None):
    headers = {"Cookie": cookie} if cookie else {}
    socket_, welcome, _ = await open_stream(port, path, additional_headers=headers)
    frame = await recv(socket_, skip=())
    assert frame["type"] == "presence"
    return socket_, welcome, frame


async def test_users_on_two_processes_see_each_other_and_tabs_count_once(tmp_path, redis_url):
    with site(tmp_path, redis_url, **FAST_PRESENCE) as s:
        first, second = s.server(), s.server()
        cookie = await asyncio.to_thread(session_cookie, s, "admin")
        tab1, welcome, frame = await join(first, "/ws/chat/lobby/", cookie)
        admin = welcome["user"]
        assert (frame["count"], frame["users"]) == (1, [admin])
        tab2, _, frame = await join(second, "/ws/chat/lobby/", cookie)
        assert (frame["count"], frame["users"]) == (1, [admin])  # the same user, once
        guest, guest_welcome, frame = await join(second, "/ws/chat/lobby/")
        assert (frame["count"], frame["users"]) == (2, [admin, guest_welcome["user"]])
        # The first process's reader hears of the guest who joined the second.
        frame = await presence_until(tab1, lambda f: f["count"] == 2)
        assert frame["users"] == [admin, guest_welcome["user"]]
        # Python code in a third process sees the same room.
        listed = await asyncio.to_thread(
            s.shell,
            "import json\n"
            "from django_liverooms import presence\n"
            "from django_liverooms.models import Room\n"
            "room = Room.objects.get(slug='lobby')\n"
            "print(json.dumps([presence.count(room), presence.users(room)]))\n",
        )
        assert json.loads(listed) == [2, [admin, guest_welcome["user"]]]

        # Typing on the first process reaches the others on the second, not the typist.
        await tab1.send(json.dumps({"type": "typing"}))
        assert await recv(guest) == {"type": "typing", "user": admin}
        assert await recv(tab2) == {"type": "typing", "user": admin}
        await tab2.send(json.dumps({"type": "message", "body": "after typing", "client_id": "t"}))
        assert (await recv(tab1))["body"] == "after typing"  # no typing frame before it
        for ws in (tab1, tab2, guest):
            await ws.close()


async def test_a_killed_process_users_leave_within_the_bound(tmp_path, redis_url):
    with site(tmp_path, redis_url, **FAST_PRESENCE) as s:
        survivor, doomed = s.server(), s.server()
        cookie = await asyncio.to_thread(session_cookie, s, "admin")
        watcher, _, _ = await join(survivor, "/ws/liveblog/match-day/")
        victims = [await join(doomed, "/ws/liveblog/match-day/", cookie) for _ in range(2)]
        victims.append(await join(doomed, "/ws/liveblog/match-day/"))
        await presence_until(watcher, lambda f: f["count"] == 3)  # admin once, one guest
        s.servers[doomed].kill()  # SIGKILL: no disconnect, no leave
        s.servers[doomed].wait()
        killed = time.monotonic()
        # Wait for the leave for up to the bound plus a generous margin for a busy machine.
        frame = await presence_until(watcher, lambda f: f["count"] == 1, LEAVE_BOUND + 10)
        print(f"\nleft {time.monotonic() - killed:.1f} s after SIGKILL (bound {LEAVE_BOUND} s)")
        assert frame == {"type": "presence", "count": 1, "users": []}
        await watcher.close()
