"""Bad input against a real daphne server: every handwritten case and a
Hypothesis run of generated frames, with a control connection in the same room
after each. Nothing may crash: no 1011 close, no 500, no traceback in the log.

``LIVEROOMS_FUZZ_EXAMPLES`` sets the number of generated frames (default 200).
Runs on the in-memory channel layer (one server process), so it needs no Redis.
"""

import contextlib
import json
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from .bad_inputs import BAD_STREAM_PATHS, CASES, matches
from .processes import Site

pytestmark = [pytest.mark.live, pytest.mark.slow]

FUZZ_EXAMPLES = int(os.environ.get("LIVEROOMS_FUZZ_EXAMPLES", "200"))
# This is about bad input: no rate limits, and no presence frames in between.
UNLIMITED = {"FRAME_RATE": None, "SEND_RATE": None, "USER_SEND_RATE": None, "PRESENCE": False}


class Server:
    """One daphne process of the test project, with a room, a blog and users."""

    def __init__(self, tmp_path):
        self.sockets = contextlib.ExitStack()
        self.site = Site(
            DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
            LIVEROOMS_TEST_SETTINGS=json.dumps(UNLIMITED),
        )
        self.site.manage("migrate", "--verbosity=0")
        self.cookies = json.loads(
            self.site.shell(
                "import json\n"
                "from django.contrib.auth.models import User\n"
                "from django.test import Client\n"
                "from django_liverooms.models import LiveBlog, Room, RoomMember\n"
                "room = Room.objects.create(slug='lobby', title='Lobby')\n"
                "LiveBlog.objects.create(slug='match-day', title='Match day')\n"
                "cookies = {}\n"
                "for name, moderator in (('mod', True), ('member', False), ('control', False)):\n"
                "    user = User.objects.create_user(name, password='pw')\n"
                "    RoomMember.objects.create(room=room, user=user, moderator=moderator)\n"
                "    client = Client()\n"
                "    client.force_login(user)\n"
                "    cookies[name] = 'sessionid=' + client.cookies['sessionid'].value\n"
                "print(json.dumps(cookies))\n"
            )
        )
        self.port = self.site.server()
        self.process = self.site.processes[-1]
        self.control = self.open("/ws/chat/lobby/", "control")
        self.control_sends = 0

    def open(self, path, user=None):
        headers = {"Cookie": self.cookies[user]} if user else None
        # Entered (websockets 17 deprecates a bare connect()); stop() closes them all.
        socket = self.sockets.enter_context(
            connect(
                f"ws://127.0.0.1:{self.port}{path}",
                origin=f"http://127.0.0.1:{self.port}",
                additional_headers=headers,
                open_timeout=10,
                max_size=2**22,
            )
        )
        assert json.loads(socket.recv(timeout=10))["type"] == "welcome"
        assert json.loads(socket.recv(timeout=10))["type"] == "history"
        return socket

    def control_still_works(self):
        """The control connection posts and gets its own message back."""
        self.control_sends += 1
        client_id = f"control-{self.control_sends}"
        self.control.send(json.dumps({"type": "message", "body": "ok", "client_id": client_id}))
        while True:  # skip others' frames (edits, deletions, typing) in between
            frame = json.loads(self.control.recv(timeout=10))
            assert frame["type"] != "error", frame
            if frame["type"] == "message" and frame["client_id"] == client_id:
                return

    def log(self):
        self.process.log.seek(0)
        return self.process.log.read()

    def assert_no_crash(self):
        log = self.log()
        assert "Traceback" not in log, log[-5000:]
        assert not re.search(r'" 5\d\d ', log), log[-5000:]

    def stop(self):
        try:
            self.sockets.close()
        finally:
            self.site.stop()


@pytest.fixture
def server(tmp_path):
    server = Server(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def pong_after(socket):
    """Ping, and read until the pong: the connection is still open and serving."""
    socket.send(json.dumps({"type": "ping"}))
    while True:
        frame = json.loads(socket.recv(timeout=10))
        if frame["type"] == "pong":
            return


def test_handwritten_bad_inputs_on_a_real_server(server):
    paths = {"chat": "/ws/chat/lobby/", "liveblog": "/ws/liveblog/match-day/"}
    wrong = []
    for name, stream, payload, expected in CASES:
        socket = server.open(paths[stream], "mod")
        socket.send(payload)
        answer = json.loads(socket.recv(timeout=10))
        if not matches(answer, expected):
            wrong.append((name, answer))
        pong_after(socket)
        socket.close()
        server.control_still_works()
    assert wrong == []
    server.assert_no_crash()


def test_bad_stream_paths_on_a_real_server(server):
    codes = {}
    for path in BAD_STREAM_PATHS:
        try:
            with connect(
                f"ws://127.0.0.1:{server.port}/ws/{path}",
                origin=f"http://127.0.0.1:{server.port}",
                open_timeout=10,
            ) as socket:
                with pytest.raises(ConnectionClosed) as closed:
                    socket.recv(timeout=10)
        except InvalidStatus as refused:  # a refusal at the HTTP level is allowed too
            codes[path] = refused.response.status_code
            continue
        codes[path] = closed.value.rcvd.code
    assert codes == {path: 4404 for path in BAD_STREAM_PATHS}
    server.control_still_works()
    server.assert_no_crash()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
TYPES = [
    "message",
    "typing",
    "ping",
    "message.edit",
    "message.delete",
    "mute",
    "unmute",
    "liverooms.frame",
    "liverooms.reply",
    "liverooms.recheck",
    "websocket.disconnect",
]
generated_frames = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(TYPES) | json_values,
        "body": st.text(max_size=200) | json_values,
        "client_id": st.text(min_size=1, max_size=70) | json_values,
        "id": st.integers(min_value=-5, max_value=50) | json_values,
        "user_id": st.integers(min_value=-5, max_value=50) | json_values,
        "minutes": st.integers(min_value=-5, max_value=10**6) | json_values,
        "seq": json_values,
        "text": json_values,
    },
).map(json.dumps)
payloads = (
    generated_frames
    | st.text(max_size=200)
    | st.binary(max_size=200)
    | st.text(alphabet='[]{}",:0123456789.eE-+ntrufalsNIiy\\u', max_size=300)
)


@pytest.mark.parametrize("stream", ["/ws/chat/lobby/"])
def test_generated_frames_on_a_real_server(server, stream):
    seen = {"examples": 0}

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(payloads)
    def run(payload):
        seen["examples"] += 1
        socket = server.open(stream, "member")
        try:
            socket.send(payload)
            pong_after(socket)  # whatever the answer was, the socket still serves
        except ConnectionClosed as closed:
            raise AssertionError(f"{payload!r} closed the socket: {closed.rcvd}") from None
        finally:
            socket.close()
        server.control_still_works()

    run()
    assert seen["examples"] >= min(FUZZ_EXAMPLES, 200)
    server.assert_no_crash()
