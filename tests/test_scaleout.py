"""Scale-out: 2, then 4 daphne processes on one Redis and PostgreSQL act as one.

Every client speaks docs/protocol.md over a real socket, and clients are
spread across the processes. Shown: chat delivery (every acknowledged
message reaches every client exactly once, in seq order), the live blog
bridge from other processes (``manage.py shell -c``, a host project's
management command, a POST to a WSGI server), presence and typing, the
health command's per-process counts, and resume after a process is
SIGKILLed (its clients reconnect to another with ``?after=`` and miss
nothing); and chat across two processes on a layer sharded over three
Redis hosts.

Runs in the ``postgres`` tox env only (marker ``scaleout``, excluded by
default; ``-m scaleout`` to run it). CI size by default, bigger with
``LIVEROOMS_SCALEOUT=full``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from .processes import RedisServer, Site, free_port, wait_for_port
from .test_reliability import database_url, redis  # noqa: F401  (module-scoped fixtures)

pytestmark = [pytest.mark.scaleout, pytest.mark.postgres, pytest.mark.live]


@dataclass(frozen=True)
class Size:
    clients: int  # chat clients, spread over the processes
    messages: int  # sent by each of the first `senders` clients
    senders: int
    resume_messages: int  # sent while a process dies


SIZES = {
    "ci": Size(clients=12, messages=5, senders=4, resume_messages=30),
    "full": Size(clients=200, messages=50, senders=20, resume_messages=500),
}
SIZE = SIZES[os.environ.get("LIVEROOMS_SCALEOUT", "ci")]
TIMEOUT = 30  # seconds any one wait may take before the test fails (a loaded CI box)

SETTINGS = {
    "ANONYMOUS_CHAT": True,
    # Clients here send far faster than people: the limits are not under test.
    "FRAME_RATE": None,
    "SEND_RATE": None,
    "USER_SEND_RATE": None,
    "MAX_CONNECTIONS_PER_USER": None,
    "MAX_CONNECTIONS_PER_ADDRESS": None,  # every reader comes from 127.0.0.1
    "HISTORY_LIMIT": 5000,  # a resume is one complete history
    "PRESENCE_INTERVAL": 0.2,
    "HEALTH_INTERVAL": 0.5,
}


class Cluster:
    def __init__(self, site: Site):
        self.site = site
        self.ports: list[int] = []

    def scale_to(self, count: int) -> list[int]:
        while len(self.ports) < count:
            self.ports.append(self.site.server())
        return self.ports


def start_site(db_url: str, redis_urls: list[str]) -> Site:
    site = Site(
        DATABASE_URL=db_url,
        REDIS_URL=",".join(redis_urls),
        LIVEROOMS_TEST_LAYER_PREFIX=f"liverooms-scale-{uuid.uuid4().hex[:8]}",
        LIVEROOMS_TEST_CONN_MAX_AGE="60",
        LIVEROOMS_TEST_SETTINGS=json.dumps(SETTINGS),
    )
    site.manage("migrate", "--verbosity=0")
    site.shell(
        "from django_liverooms.models import Room, LiveBlog\n"
        "for slug in ('chat-2', 'chat-4', 'presence', 'resume', 'sharded'):\n"
        "    Room.objects.get_or_create(slug=slug, defaults={'title': slug})\n"
        "LiveBlog.objects.get_or_create(slug='match-day', defaults={'title': 'Match day'})\n"
    )
    return site


@pytest.fixture(scope="module")
def cluster(database_url, redis):  # noqa: F811
    site = start_site(database_url, [redis.url])
    try:
        yield Cluster(site)
    finally:
        site.stop()


class Client:
    """One socket's view of a stream: every seq it accepted, in order.

    The robust client of docs/protocol.md ("Resume"): live frames are
    broadcast by whichever process stored them, so one may overtake a smaller
    seq; it is held until the seqs before it have arrived. A frame whose seq
    was already accepted is counted as a duplicate (the server must send none).
    """

    def __init__(self, path: str):
        self.path = path
        self.frames: list[dict] = []  # message/entry frames accepted, in seq order
        self.early: dict[int, dict] = {}  # frames that overtook a smaller seq
        self.overtaken = 0
        self.duplicates = 0
        self.other: asyncio.Queue = asyncio.Queue()  # presence, typing, errors
        self.acks: dict[str, asyncio.Future] = {}
        self.ws = None
        self.reader: asyncio.Task | None = None

    @property
    def seqs(self) -> list[int]:
        return [frame["seq"] for frame in self.frames]

    @property
    def last(self) -> int:
        return self.frames[-1]["seq"] if self.frames else 0

    async def open(self, port: int) -> None:
        self.early.clear()  # the history from ``last`` on replaces them
        url = f"ws://127.0.0.1:{port}{self.path}?after={self.last}"
        self.ws = await connect(url, origin=f"http://127.0.0.1:{port}", open_timeout=TIMEOUT)
        welcome = json.loads(await self.ws.recv())
        history = json.loads(await self.ws.recv())
        assert (welcome["type"], history["type"]) == ("welcome", "history")
        assert history["complete"]
        self.user = welcome["user"]
        for frame in history["items"]:
            self.accept(frame)
        self.reader = asyncio.ensure_future(self.read(self.ws))

    def accept(self, frame: dict) -> None:
        if frame["type"] not in ("message", "entry"):
            self.other.put_nowait(frame)
            return
        seq = frame["seq"]
        if seq <= self.last or seq in self.early:
            self.duplicates += 1
            return
        if seq > self.last + 1:
            self.early[seq] = frame
            self.overtaken += 1
            return
        while frame is not None:
            self.frames.append(frame)
            ack = self.acks.get(frame.get("client_id"))
            if ack is not None and not ack.done():
                ack.set_result(frame["seq"])
            frame = self.early.pop(self.last + 1, None)

    async def read(self, ws) -> None:
        try:
            async for text in ws:
                self.accept(json.loads(text))
        except ConnectionClosed:
            pass  # a killed server: the test reconnects this client

    async def send(self, body: str) -> int:
        """Post a message; its seq once acknowledged (stored and broadcast)."""
        client_id = uuid.uuid4().hex
        self.acks[client_id] = asyncio.get_running_loop().create_future()
        await self.ws.send(json.dumps({"type": "message", "body": body, "client_id": client_id}))
        return await asyncio.wait_for(self.acks[client_id], TIMEOUT)

    async def reach(self, seq: int) -> None:
        for _ in range(TIMEOUT * 20):
            if self.last >= seq:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.path}: stuck at seq {self.last}, expected {seq}")

    async def next_other(self, type_: str, predicate=lambda frame: True) -> dict:
        while True:
            frame = await asyncio.wait_for(self.other.get(), TIMEOUT)
            if frame["type"] == type_ and predicate(frame):
                return frame

    async def close(self) -> None:
        await self.ws.close()
        await self.reader


async def open_spread(path: str, ports: list[int], count: int) -> list[Client]:
    clients = [Client(path) for _ in range(count)]
    await asyncio.gather(*(c.open(ports[i % len(ports)]) for i, c in enumerate(clients)))
    return clients


def assert_exactly_once_in_order(clients: list[Client], acked: set[int], last: int) -> None:
    for client in clients:
        assert client.seqs == list(range(1, last + 1)), client.path  # no gap
        assert acked <= set(client.seqs)
        assert (client.duplicates, client.early) == (0, {}), client.path  # no repeat
    overtaken = sum(client.overtaken for client in clients)
    print(f"\n{len(clients)} clients x {last} seqs: 0 lost, 0 repeated, {overtaken} overtaken")


def stored_seq(cluster: Cluster, model: str, slug: str) -> int:
    return int(
        cluster.site.shell(
            f"from django_liverooms.models import {model}\n"
            f"print({model}.objects.get(slug={slug!r}).last_seq)\n"
        ).split()[-1]
    )


@pytest.mark.parametrize("processes", [2, 4])
async def test_chat_delivery_across_processes(cluster, processes):
    ports = await asyncio.to_thread(cluster.scale_to, processes)
    room = f"chat-{processes}"
    clients = await open_spread(f"/ws/chat/{room}/", ports, SIZE.clients)

    async def sender(client: Client, index: int) -> list[int]:
        return [await client.send(f"{index}-{n}") for n in range(SIZE.messages)]

    sent = await asyncio.gather(*(sender(c, i) for i, c in enumerate(clients[: SIZE.senders])))
    acked = {seq for seqs in sent for seq in seqs}
    assert len(acked) == SIZE.senders * SIZE.messages  # every send acknowledged, once
    last = max(acked)
    await asyncio.gather(*(c.reach(last) for c in clients))
    assert_exactly_once_in_order(clients, acked, last)
    assert await asyncio.to_thread(stored_seq, cluster, "Room", room) == last
    for client in clients:
        await client.close()


async def test_chat_delivery_across_processes_on_a_sharded_layer(cluster, database_url, redis):  # noqa: F811
    """Two processes on a layer of three Redis hosts: rooms' groups on different shards."""
    with RedisServer() as second, RedisServer() as third:
        site = start_site(database_url, [redis.url, second.url, third.url])
        try:
            sharded = Cluster(site)
            ports = await asyncio.to_thread(sharded.scale_to, 2)
            clients = await open_spread("/ws/chat/sharded/", ports, SIZE.clients)
            acked = set()
            for index, client in enumerate(clients[: SIZE.senders]):
                for n in range(SIZE.messages):
                    acked.add(await client.send(f"{index}-{n}"))
            last = max(acked)
            await asyncio.gather(*(c.reach(last) for c in clients))
            assert_exactly_once_in_order(clients, acked, last)
            for client in clients:
                await client.close()
        finally:
            site.stop()


def post_from_wsgi_server(cluster: Cluster, title: str) -> None:
    """Django's own WSGI server (runserver, not the ASGI app) in its own process."""
    port = free_port()
    process = cluster.site.start(
        sys.executable, "-m", "django", "runserver", "--noreload", f"127.0.0.1:{port}"
    )
    try:
        wait_for_port(port, process)
        data = urllib.parse.urlencode({"title": title, "body": f"<p>{title}</p>"}).encode()
        url = f"http://127.0.0.1:{port}/test/publish/match-day/"
        with urllib.request.urlopen(url, data=data, timeout=TIMEOUT) as response:
            assert response.status == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
        cluster.site.processes.remove(process)
        process.log.close()


async def test_live_blog_entries_from_other_processes_reach_readers_on_every_process(cluster):
    ports = await asyncio.to_thread(cluster.scale_to, 4)
    readers = await open_spread("/ws/liveblog/match-day/", ports, 2 * len(ports))
    site = cluster.site
    await asyncio.to_thread(
        site.shell,
        "from django_liverooms.models import Entry, LiveBlog\n"
        "Entry.objects.create(blog=LiveBlog.objects.get(slug='match-day'),"
        " title='from shell', body='<p>shell</p>', status='published')\n",
    )
    await asyncio.to_thread(site.manage, "publish_entry", "match-day", "from a command")
    await asyncio.to_thread(post_from_wsgi_server, cluster, "from wsgi")
    await asyncio.gather(*(r.reach(3) for r in readers))
    for reader in readers:
        assert [(f["seq"], f["title"]) for f in reader.frames] == [
            (1, "from shell"),
            (2, "from a command"),
            (3, "from wsgi"),
        ]
        await reader.close()


async def test_presence_typing_and_connection_counts_across_processes(cluster):
    ports = await asyncio.to_thread(cluster.scale_to, 4)
    guests = await open_spread("/ws/chat/presence/", ports, len(ports))  # one per process
    for guest in guests:
        await guest.next_other("presence", lambda f: f["count"] == len(ports))
    # Typing reaches the others on the other processes, and not the typist:
    # the first typing frame the typist gets is the next typist's.
    await guests[0].ws.send(json.dumps({"type": "typing"}))
    for guest in guests[1:]:
        assert (await guest.next_other("typing"))["user"] == guests[0].user
    await guests[1].ws.send(json.dumps({"type": "typing"}))
    assert (await guests[0].next_other("typing"))["user"] == guests[1].user
    # The health command, in yet another process, sees one socket on each server.
    for _ in range(TIMEOUT * 4):
        report = json.loads(
            await asyncio.to_thread(site_health, cluster, "--stream", "chat:presence")
        )
        counts = report["checks"]["processes"]["data"]["processes"]
        if sorted(e["connections"] for e in counts.values()) == [1] * len(ports):
            break
        await asyncio.sleep(0.25)
    else:
        raise AssertionError(f"connection counts never showed one per process: {counts}")
    assert report["healthy"] is True
    assert report["checks"]["presence"]["data"]["counts"] == {"chat:presence": len(ports)}
    await guests[-1].close()
    for guest in guests[:-1]:
        await guest.next_other("presence", lambda f: f["count"] == len(ports) - 1)
        await guest.close()


def site_health(cluster: Cluster, *args: str) -> str:
    return cluster.site.manage("liverooms_health", "--json", *args).stdout


async def test_clients_of_a_killed_process_resume_on_another_and_miss_nothing(cluster):
    ports = list(await asyncio.to_thread(cluster.scale_to, 4))
    doomed, survivors = ports[-1], ports[:-1]
    clients = await open_spread("/ws/chat/resume/", ports, SIZE.clients)
    writer = Client("/ws/chat/resume/")
    await writer.open(survivors[0])
    acked: list[int] = []

    async def write() -> None:
        for n in range(SIZE.resume_messages):
            acked.append(await writer.send(f"resume-{n}"))

    async def acked_count(count: int) -> None:
        while len(acked) < count:
            await asyncio.sleep(0.01)

    writing = asyncio.ensure_future(write())
    await asyncio.wait_for(acked_count(SIZE.resume_messages // 3), TIMEOUT)
    await asyncio.to_thread(cluster.site.kill_server, doomed)  # SIGKILL: no close frames
    cluster.ports.remove(doomed)
    orphans = [c for i, c in enumerate(clients) if ports[i % len(ports)] == doomed]
    for orphan in orphans:
        await orphan.reader  # the socket died with its process
    # Messages go on while the orphans are away; then they reconnect elsewhere
    # with ?after=<last accepted seq>.
    await asyncio.wait_for(acked_count(2 * SIZE.resume_messages // 3), TIMEOUT)
    missed = [max(acked) - orphan.last for orphan in orphans]
    for i, orphan in enumerate(orphans):
        await orphan.open(survivors[i % len(survivors)])
    await writing
    assert orphans and min(missed) > 0  # each orphan had something to catch up on
    last = max(acked)
    assert sorted(acked) == list(range(1, SIZE.resume_messages + 1))
    await asyncio.gather(*(c.reach(last) for c in [*clients, writer]))
    assert_exactly_once_in_order([*clients, writer], set(acked), last)
    assert await asyncio.to_thread(stored_seq, cluster, "Room", "resume") == last
    for client in [*clients, writer]:
        await client.close()
