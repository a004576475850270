"""The reliability suite: no acknowledged message is lost for a reader that reconnects.

Jepsen-style: real daphne servers (two), a real redis-server of our own that
we kill, restart and pause, PostgreSQL in a database created for the run,
and many clients that speak docs/protocol.md with the ``websockets`` library.
Each client remembers the last seq it accepted, resumes with ``?after=``,
pages the HTTP API when a history is incomplete, resumes when it sees a gap,
and resends unacknowledged messages with the same ``client_id``. At the end,
every reader must have received every acknowledged message of its room
exactly once, in seq order.

Not part of the normal run (``-m "not reliability"`` in pyproject's addopts).
Run it with ``tox -e reliability`` (CI size) or, full size::

    LIVEROOMS_RELIABILITY=full python -m pytest -m reliability tests/test_reliability.py -s

It prints its figures; docs/reliability.md has the last full-size ones.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass

import pytest

from .conftest import POSTGRES_URL, missing_service
from .processes import RedisServer, Site

pytestmark = pytest.mark.reliability

SIZE = os.environ.get("LIVEROOMS_RELIABILITY", "ci")


@dataclass(frozen=True)
class Size:
    clients: int
    rooms: int
    messages: int


SIZES = {
    "ci": Size(clients=30, rooms=3, messages=600),
    "full": Size(clients=200, rooms=20, messages=20_000),
}
ACK_TIMEOUT = 15.0  # seconds without an ack before a client reconnects and resends
SETTLE = 5.0  # seconds readers get to catch up live at the end, before they resume
REORDER_WAIT = 2.0  # seconds a client waits for a missing seq before it resumes
CHURN = 0.3  # chance that a connection is closed by its client after a few seconds


def size() -> Size:
    if SIZE not in SIZES:
        raise pytest.UsageError(f"LIVEROOMS_RELIABILITY must be one of {sorted(SIZES)}")
    return SIZES[SIZE]


# The cluster ----------------------------------------------------------------


@pytest.fixture(scope="module")
def database_url():
    psycopg = pytest.importorskip("psycopg")
    name = f"liverooms_reliability_{os.getpid()}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=2)
    except psycopg.OperationalError as exc:
        missing_service(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}")
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def redis():
    if shutil.which("redis-server") is None:
        missing_service("redis-server is not installed")
    port = int(os.environ.get("LIVEROOMS_RELIABILITY_REDIS_PORT", "0")) or None
    with RedisServer(port) as server:
        yield server


class Cluster:
    def __init__(self, site: Site, redis: RedisServer, database_url: str):
        self.site, self.redis, self.database_url = site, redis, database_url
        self.ports = [site.server(), site.server()]

    def setup(self, name: str, size: Size) -> tuple[list[str], list[str]]:
        """Rooms and signed-in users (their session keys) for one scenario."""
        out = self.site.shell(SETUP.format(name=name, rooms=size.rooms, users=size.clients))
        data = json.loads(out.strip().splitlines()[-1])
        return data["rooms"], data["sessions"]

    def room_seqs(self, rooms: list[str]) -> dict[str, int]:
        import psycopg

        with psycopg.connect(self.database_url) as db:
            rows = db.execute(
                "SELECT slug, last_seq FROM django_liverooms_room WHERE slug = ANY(%s)", (rooms,)
            ).fetchall()
        return dict(rows)

    def stored(self, rooms: list[str]) -> tuple[int, int]:
        """(messages stored, distinct client_ids among them) in these rooms."""
        import psycopg

        with psycopg.connect(self.database_url) as db:
            return db.execute(
                "SELECT count(*), count(DISTINCT m.client_id) FROM django_liverooms_message m"
                " JOIN django_liverooms_room r ON r.id = m.room_id WHERE r.slug = ANY(%s)",
                (rooms,),
            ).fetchone()


SETUP = """
import json
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django_liverooms.models import Room
rooms = [Room.objects.create(slug=f"{name}-{{i}}", title=f"{name} {{i}}").slug for i in range({rooms})]
sessions = []
for i in range({users}):
    user = get_user_model().objects.create_user(f"{name}-{{i}}")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    sessions.append(session.session_key)
print(json.dumps({{"rooms": rooms, "sessions": sessions}}))
"""


@pytest.fixture(scope="module")
def cluster(database_url, redis):
    site = Site(
        DATABASE_URL=database_url,
        REDIS_URL=redis.url,
        LIVEROOMS_TEST_LAYER_PREFIX=f"liverooms-rel-{uuid.uuid4().hex[:8]}",
        LIVEROOMS_TEST_CONN_MAX_AGE="60",
    )
    site.manage("migrate", "--verbosity=0")
    try:
        yield Cluster(site, redis, database_url)
    finally:
        site.stop()


# The clients ------------------------------------------------------------------


class Stats(Counter):
    pass


class Resume(Exception):
    """The client saw a gap (or gave up waiting): reconnect with ?after=<last>."""


class Client:
    def __init__(self, index, room, session, ports, quota, stats):
        self.index, self.room, self.session, self.ports = index, room, session, ports
        self.quota, self.stats = quota, stats
        self.last = 0  # the greatest seq accepted; every seq up to it was accepted once
        self.accepted: dict[int, str | None] = {}  # seq -> client_id of the message
        self.acks: dict[str, int] = {}  # my client_id -> its seq
        self.sent_count = 0  # client_ids made so far
        self.current: str | None = None  # the unacknowledged client_id
        self.acked = asyncio.Event()
        self.stop = False
        self.resync = False
        self.ws = None

    # One connection: history (and HTTP pages), then live frames and sends.

    async def run(self) -> None:
        from websockets.asyncio.client import connect

        attempt = 0
        while not self.stop:
            port = self.ports[(self.index + attempt) % len(self.ports)]
            url = f"ws://127.0.0.1:{port}/ws/chat/{self.room}/?after={self.last}"
            try:
                async with connect(
                    url,
                    origin="http://127.0.0.1",
                    additional_headers={"Cookie": f"sessionid={self.session}"},
                    open_timeout=10,
                    close_timeout=2,
                    max_size=2**22,
                ) as ws:
                    self.ws = ws
                    self.stats["connections"] += 1
                    attempt = 0
                    await self.session_loop(ws)
            except Resume:
                self.stats["resumes"] += 1
            except Exception as exc:  # refused, reset, closed (4503, 1006), timed out
                code = getattr(getattr(exc, "rcvd", None), "code", None)
                self.stats[f"closed_{code}" if code else f"failed_{type(exc).__name__}"] += 1
                attempt += 1
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt) * random.uniform(0.5, 1.5))
            finally:
                self.ws = None
            if not self.stop:
                self.stats["reconnects"] += 1

    async def session_loop(self, ws) -> None:
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome", welcome
        history = json.loads(await ws.recv())
        assert history["type"] == "history", history
        after = self.last
        for frame in history["items"]:
            if frame["seq"] != self.last + 1:
                self.stats["out_of_order"] += 1  # a history must continue from `after`
                raise Resume
            self.accept(frame)
        paged_through = 0
        if not history["complete"]:
            paged_through = await self.page(ws)
        self.stats["history_items"] += self.last - after
        sender = asyncio.ensure_future(self.send_loop(ws))
        sender.add_done_callback(lambda task: task.cancelled() or task.exception())
        churn = None
        if random.random() < CHURN:
            churn = asyncio.get_running_loop().call_later(
                random.uniform(1, 6), lambda: asyncio.ensure_future(ws.close())
            )
        from websockets.exceptions import ConnectionClosedOK

        loop = asyncio.get_running_loop()
        early: dict[int, dict] = {}  # frames that overtook a smaller seq, held a moment
        gap_since = 0.0
        try:
            while True:
                try:
                    if early:
                        wait = gap_since + REORDER_WAIT - loop.time()
                        raw = await asyncio.wait_for(ws.recv(), max(wait, 0.0))
                    else:
                        raw = await ws.recv()
                except asyncio.TimeoutError:
                    self.stats["gaps"] += 1  # the layer dropped a frame: resume from the store
                    raise Resume from None
                except ConnectionClosedOK:
                    break
                frame = json.loads(raw)
                if "seq" not in frame or frame.get("type") not in EVENT_TYPES:
                    self.other(frame)
                    continue
                seq = frame["seq"]
                if seq <= self.last:
                    mine = frame.get("client_id") in self.acks or frame.get("client_id") == (
                        self.current
                    )
                    if mine:
                        self.ack(frame)  # a repeated send, answered with the stored frame
                    elif seq > paged_through:
                        self.stats["duplicates"] += 1
                    continue
                if seq != self.last + 1:
                    # Broadcasts from two processes (or two coroutines) can
                    # overtake each other; wait a moment for the missing seq.
                    if seq in early:
                        self.stats["duplicates"] += 1
                    elif not early:
                        gap_since = loop.time()
                    early[seq] = frame
                    self.stats["reordered"] += 1
                    continue
                self.accept(frame)
                while self.last + 1 in early:
                    self.accept(early.pop(self.last + 1))
                if early:
                    gap_since = loop.time()
                if self.resync:
                    self.resync = False
                    raise Resume
        finally:
            sender.cancel()
            if churn is not None:
                churn.cancel()

    async def page(self, ws) -> int:
        """Page the HTTP API up to the stream's end; the seq reached."""
        while True:
            url = (
                f"http://127.0.0.1:{ws.remote_address[1]}/live/chat/{self.room}/messages"
                f"?after={self.last}&limit=200"
            )
            request = urllib.request.Request(url, headers={"Cookie": f"sessionid={self.session}"})
            body = await asyncio.to_thread(read_url, request)
            page = json.loads(body)
            self.stats["http_pages"] += 1
            for frame in page["items"]:
                if frame["seq"] != self.last + 1:
                    self.stats["out_of_order"] += 1
                    raise Resume
                self.accept(frame)
            if page["complete"]:
                return self.last

    def accept(self, frame) -> None:
        self.last = frame["seq"]
        self.accepted[frame["seq"]] = frame.get("client_id")
        self.stats["delivered"] += 1
        self.ack(frame)

    def ack(self, frame) -> None:
        client_id = frame.get("client_id")
        if client_id is not None and client_id == self.current:
            self.acks[client_id] = frame["seq"]
            self.current = None
            self.acked.set()

    def other(self, frame) -> None:
        if frame.get("type") == "error":
            self.stats[f"error_{frame.get('code')}"] += 1
            if frame.get("client_id") == self.current:
                self.acked.set()  # not stored: the send loop resends it

    async def send_loop(self, ws) -> None:
        while True:
            if self.current is None:
                if self.sent_count >= self.quota:
                    return
                await asyncio.sleep(random.uniform(0, 0.2))
                self.current = f"c{self.index}-{self.sent_count}"
                self.sent_count += 1
            client_id = self.current
            self.acked.clear()
            body = f"message {client_id} from {self.index}"
            await ws.send(json.dumps({"type": "message", "body": body, "client_id": client_id}))
            self.stats["sent"] += 1
            try:
                await asyncio.wait_for(self.acked.wait(), ACK_TIMEOUT)
            except asyncio.TimeoutError:
                self.stats["ack_timeouts"] += 1
                await ws.close()
                return
            if self.current == client_id:  # an error frame: resend after a pause
                await asyncio.sleep(random.uniform(0.2, 1.0))

    @property
    def done_sending(self) -> bool:
        return self.sent_count >= self.quota and self.current is None


def read_url(request) -> bytes:
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


EVENT_TYPES = {"message", "message.edited", "message.deleted"}


# Faults -------------------------------------------------------------------------


async def when_progress(clients, total, fraction):
    while sum(len(c.acks) for c in clients) < total * fraction:
        await asyncio.sleep(0.1)


async def redis_faults(cluster, clients, total, stats):
    redis = cluster.redis
    for fraction in (0.15, 0.3, 0.45):
        await when_progress(clients, total, fraction)
        await asyncio.to_thread(redis.kill)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(redis.start)
        stats["redis_restarts"] += 1
    await when_progress(clients, total, 0.6)
    redis.pause()
    await asyncio.sleep(10)
    redis.resume()
    stats["redis_pauses"] += 1


async def server_faults(cluster, clients, total, stats):
    for fraction in (0.2, 0.45, 0.7):
        await when_progress(clients, total, fraction)
        port = cluster.ports[1]
        await asyncio.to_thread(cluster.site.kill_server, port)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(cluster.site.server, port)
        stats["server_kills"] += 1


# A scenario -----------------------------------------------------------------------


async def run_scenario(cluster, name, size, faults=None):
    rooms, sessions = await asyncio.to_thread(cluster.setup, name, size)
    stats = Stats()
    quota, extra = divmod(size.messages, size.clients)
    clients = [
        Client(i, rooms[i % len(rooms)], sessions[i], cluster.ports, quota + (i < extra), stats)
        for i in range(size.clients)
    ]
    started = time.monotonic()
    tasks = [asyncio.ensure_future(c.run()) for c in clients]
    fault_task = (
        asyncio.ensure_future(faults(cluster, clients, size.messages, stats)) if faults else None
    )
    while not all(c.done_sending for c in clients):
        await asyncio.sleep(0.2)
        if time.monotonic() - started > 1800:
            break
    if fault_task is not None:
        await fault_task
    sending = time.monotonic() - started
    # Every reader catches up: live first, then by resuming (a dropped last
    # frame leaves no gap to notice, so a reader still behind resumes).
    final = await asyncio.to_thread(cluster.room_seqs, rooms)
    deadline = time.monotonic() + SETTLE
    while time.monotonic() < deadline and any(c.last < final[c.room] for c in clients):
        await asyncio.sleep(0.1)
    behind = [c for c in clients if c.last < final[c.room]]
    stats["resumed_at_end"] = len(behind)
    for client in behind:
        client.resync = True
        if client.ws is not None:
            await client.ws.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(c.last < final[c.room] for c in clients):
        await asyncio.sleep(0.1)
    elapsed = time.monotonic() - started
    for client in clients:
        client.stop = True
        if client.ws is not None:
            await client.ws.close()
    await asyncio.wait(tasks, timeout=10)
    for task in tasks:
        task.cancel()

    # The invariant.
    acked = {cid: seq for c in clients for cid, seq in c.acks.items()}
    room_of = {cid: c.room for c in clients for cid in c.acks}
    lost = 0
    wrong = 0
    for reader in clients:
        for cid, seq in acked.items():
            if room_of[cid] != reader.room:
                continue
            if seq not in reader.accepted:
                lost += 1
            elif reader.accepted[seq] != cid:
                wrong += 1
    stored, distinct = await asyncio.to_thread(cluster.stored, rooms)
    expected = sum(final[c.room] for c in clients)
    figures = {
        "scenario": name,
        "size": SIZE,
        "clients": size.clients,
        "rooms": size.rooms,
        "messages": size.messages,
        "sent": stats["sent"],
        "acknowledged": len(acked),
        "stored": stored,
        "delivered": stats["delivered"],
        "expected_deliveries": expected,
        "lost": lost,
        "wrong_message_at_seq": wrong,
        "duplicates": stats["duplicates"],
        "out_of_order": stats["out_of_order"],
        "gaps_resumed": stats["gaps"],
        "reordered_live": stats["reordered"],
        "reconnects": stats["reconnects"],
        "resumed_at_end": stats["resumed_at_end"],
        "elapsed_s": round(elapsed, 1),
        "sending_s": round(sending, 1),
        "acked_per_s": round(len(acked) / sending, 1) if sending else 0,
        "events": {
            k: v for k, v in sorted(stats.items()) if k.startswith(("closed_", "failed_", "error_"))
        }
        | {
            k: stats[k]
            for k in (
                "connections",
                "ack_timeouts",
                "http_pages",
                "history_items",
                "redis_restarts",
                "redis_pauses",
                "server_kills",
            )
            if stats[k]
        },
    }
    print("\nreliability figures: " + json.dumps(figures))
    assert len(acked) == size.messages, figures  # every send was acknowledged in the end
    assert stored == distinct == size.messages, figures  # each stored exactly once
    assert lost == wrong == 0, figures
    assert stats["duplicates"] == stats["out_of_order"] == 0, figures
    assert stats["delivered"] == expected, figures  # exactly once per reader
    return figures


def test_churn(cluster):
    asyncio.run(run_scenario(cluster, "churn", size()))


def test_redis_killed_restarted_and_paused(cluster):
    asyncio.run(run_scenario(cluster, "redis", size(), redis_faults))


def test_server_killed(cluster):
    asyncio.run(run_scenario(cluster, "server", size(), server_faults))
