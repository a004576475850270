"""Hostile clients against real servers (uvicorn and daphne): one bad client
must not hurt anyone else.

A socket that never reads joins a room that is flooded with long messages;
meanwhile a prober in *another* room posts and times its own messages. Every
probe must arrive, the slow socket must be closed (4408, or dropped when even
the close frame cannot reach it) and the server's memory stays bounded. The
figures (probe latency with and without the slow socket, RSS growth) are
printed with -s; docs/reliability.md has a run.

``LIVEROOMS_HOSTILE_FLOOD`` sets the number of 15,000-character messages
flooded at the slow socket (default 400, about 6 MB: more than the kernel's
socket buffers on loopback take in before the server has to hold it).
"""

import base64
import json
import os
import socket
import statistics
import threading
import time
import uuid

import pytest
from websockets.sync.client import connect

from .processes import RedisServer, Site

pytestmark = [pytest.mark.live, pytest.mark.slow]

FLOOD = int(os.environ.get("LIVEROOMS_HOSTILE_FLOOD", "400"))
BODY = "x" * 15_000
SETTINGS = {
    "ANONYMOUS_CHAT": True,
    "FRAME_RATE": None,
    "SEND_RATE": None,
    "USER_SEND_RATE": None,
    "MAX_CONNECTIONS_PER_USER": None,
    "PRESENCE": False,
    "MAX_BODY_LENGTH": 16_000,
    "MAX_FRAME_BYTES": 17_000,
    # Small bounds, so that the test floods little.
    "SEND_QUEUE_BYTES": 256 * 1024,
    "SEND_TIMEOUT": 3.0,
}


@pytest.fixture(params=["uvicorn", "daphne"])
def server(request, tmp_path):
    site = Site(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        LIVEROOMS_TEST_SETTINGS=json.dumps(SETTINGS),
    )
    site.manage("migrate", "--verbosity=0")
    site.shell(
        "from django_liverooms.models import Room\n"
        "Room.objects.create(slug='flood', title='Flood')\n"
        "Room.objects.create(slug='probe', title='Probe')\n"
    )
    port = site.server(server=request.param)
    try:
        yield site, port, site.processes[-1]
    finally:
        site.stop()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_never_reading_socket(port, path):
    """A WebSocket handshake over a socket with a tiny receive buffer, which
    then reads nothing: its window closes after a few KiB."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://127.0.0.1:{port}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert b" 101 " in head.split(b"\r\n", 1)[0], head
    return sock


def read_until_closed(sock, timeout):
    """Everything the server still sends, until it closes or drops the
    connection; raises if it is still open after ``timeout`` seconds."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"the never-reading socket was still open after {timeout} s") from None
    return data


def close_code(data):
    """The close code of the close frame in a server's frames, if it got through."""
    while len(data) >= 2:
        opcode, length, at = data[0] & 0x0F, data[1] & 0x7F, 2
        if length == 126:
            length, at = int.from_bytes(data[2:4], "big"), 4
        elif length == 127:
            length, at = int.from_bytes(data[2:10], "big"), 10
        if opcode == 0x8 and len(data) >= at + 2:
            return int.from_bytes(data[at : at + 2], "big")
        data = data[at + length :]
    return None


class Prober:
    """Posts in the probe room and times the way back of its own messages."""

    def __init__(self, socket):
        self.socket = socket
        for _ in range(2):  # welcome, history
            self.socket.recv(timeout=10)
        self.latencies = []

    def probe(self):
        client_id = uuid.uuid4().hex
        started = time.perf_counter()
        self.socket.send(json.dumps({"type": "message", "body": "probe", "client_id": client_id}))
        while True:
            try:
                frame = json.loads(self.socket.recv(timeout=15))
            except TimeoutError:
                raise AssertionError(
                    "a probe in another room was not delivered within 15 s"
                ) from None
            if frame.get("client_id") == client_id:
                self.latencies.append(time.perf_counter() - started)
                return


def p99(latencies):
    return statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else latencies[0]


def test_a_socket_that_never_reads_delays_nobody_else_and_is_closed(server):
    site, port, process = server
    url = f"ws://127.0.0.1:{port}/ws/chat/flood/"
    with connect(url, origin=f"http://127.0.0.1:{port}", max_size=2**22) as flooder:
        received = []
        reader = threading.Thread(target=lambda: received.extend(flooder), daemon=True)
        reader.start()  # the flooder reads its own messages back, as any good client
        with connect(
            f"ws://127.0.0.1:{port}/ws/chat/probe/", origin=f"http://127.0.0.1:{port}"
        ) as probe_socket:
            prober = Prober(probe_socket)

            def flood(run):
                for i in range(FLOOD):
                    flooder.send(
                        json.dumps({"type": "message", "body": BODY, "client_id": f"{run}-{i}"})
                    )
                    if i % 5 == 4:
                        prober.probe()

            flood("baseline")  # the same flood, with no slow socket
            quiet = list(prober.latencies)
            prober.latencies.clear()

            slow = open_never_reading_socket(port, "/ws/chat/flood/")
            rss_before = rss_kib(process.pid)
            flood("slow")
            # Every flood message stored and sent: the slow socket has had all
            # it would ever be sent, far more than the kernel buffers hold.
            deadline = time.monotonic() + 60
            while len(received) < 2 * FLOOD + 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(received) == 2 * FLOOD + 2  # welcome, history, its own messages
            rss_after = rss_kib(process.pid)
            data = read_until_closed(slow, timeout=10)
            slow.close()
    print(
        f"\n[{process.args[2]}] probes during the flood without a slow socket: p50 "
        f"{statistics.median(quiet) * 1000:.1f} ms, p99 {p99(quiet) * 1000:.1f} ms; "
        f"with one: p50 {statistics.median(prober.latencies) * 1000:.1f} ms, "
        f"p99 {p99(prober.latencies) * 1000:.1f} ms; RSS {rss_before} -> {rss_after} KiB "
        f"during a {FLOOD * len(BODY) / 1e6:.1f} MB flood; the slow socket got "
        f"{len(data)} more bytes, close code {close_code(data)}"
    )
    assert len(prober.latencies) == FLOOD // 5  # every probe arrived
    # read_until_closed() returned: the server closed the slow socket, with
    # 4408 or by dropping it (no close frame). Not by the server's keepalive
    # (1011), and not never (daphne kept buffering for it).
    assert close_code(data) in (4408, None)
    # Cut off: it never got the whole flood (before the bound, daphne held all
    # of it for the socket until the socket's ping timed out).
    assert len(data) < FLOOD * len(BODY)


STREAMS = int(os.environ.get("LIVEROOMS_HOSTILE_STREAMS", "1000"))


def open_sse(port, path):
    """An anonymous SSE request, sessionless; returns (socket, status)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(1024)
        assert chunk, "the server closed the connection without a status line"
        head += chunk
    return sock, int(head.split(b" ", 2)[1])


@pytest.mark.parametrize("server_name", ["uvicorn", "daphne"])
def test_a_thousand_anonymous_sse_streams_are_capped_and_share_one_redis_subscription(
    tmp_path, redis_url, server_name
):
    import redis as redis_client

    cap = 50
    # A redis-server of the test's own: its client count is the server's alone.
    own_redis = RedisServer().start()
    site = Site(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        REDIS_URL=own_redis.url,
        LIVEROOMS_TEST_LAYER_PREFIX=f"liverooms-hostile-{uuid.uuid4().hex[:8]}",
        LIVEROOMS_TEST_SETTINGS=json.dumps({"MAX_CONNECTIONS_PER_ADDRESS": cap, "PRESENCE": False}),
    )
    site.manage("migrate", "--verbosity=0")
    site.shell(
        "from django_liverooms.models import LiveBlog\n"
        "LiveBlog.objects.create(slug='match-day', title='Match day')\n"
    )
    redis = redis_client.Redis.from_url(own_redis.url)
    sockets = []
    try:
        port = site.server(server=server_name)
        first, status = open_sse(port, "/live/liveblog/match-day/stream")
        sockets.append(first)
        assert status == 200
        time.sleep(0.5)  # the hub's subscription is up
        clients_before = len(redis.client_list())
        statuses = []
        for _ in range(STREAMS - 1):
            sock, status = open_sse(port, "/live/liveblog/match-day/stream")
            statuses.append(status)
            if status == 200:
                sockets.append(sock)  # held open, as an attacker would
            else:
                sock.close()
        clients_after = len(redis.client_list())
        print(
            f"\n[{server_name}] {STREAMS} anonymous SSE requests from one address: "
            f"{statuses.count(200) + 1} streams, {statuses.count(429)} refused (429); "
            f"Redis clients {clients_before} -> {clients_after}"
        )
        assert statuses.count(200) + 1 == cap
        assert statuses.count(429) == STREAMS - cap
        # Every stream reads through the process's one subscription.
        assert clients_after - clients_before < 5
    finally:
        for sock in sockets:
            sock.close()
        site.stop()
        own_redis.kill()
