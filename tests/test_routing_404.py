"""Every handshake under the app's prefix is answered: a stream, or close 4404.

Paths that name no route of the app (an empty rest, an unknown kind, a kind
in the wrong case, dot segments) used to fall through URLRouter with a
ValueError: HTTP 500 and a traceback on every server.
"""

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from django_liverooms.testing import StreamCommunicator

from .asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = [(b"origin", b"http://localhost")]

# Relative to the app's prefix.
UNROUTED = ["", "foo/", "Chat/lobby/", "chatx/lobby/", "../ws/chat/lobby/", "liveblogs/x/", "x"]
PREFIXES = ["/ws/", "/other/", "/site-a/live/"]


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("rest", UNROUTED)
async def test_unrouted_paths_under_the_prefix_close_with_4404(prefix, rest):
    chat = StreamCommunicator(prefix + rest, application=application, headers=ORIGIN)
    assert await chat.close_code() == 4404


async def test_4404_needs_no_channel_layer(settings):
    # A refusal must not touch the layer: with Redis down it would raise.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "tests.test_routing_404.BrokenLayer"}}
    from channels.layers import channel_layers

    channel_layers.backends = {}
    chat = StreamCommunicator("/ws/foo/", application=application, headers=ORIGIN)
    assert await chat.close_code() == 4404


class BrokenLayer:
    """A channel layer whose every call fails, as with Redis restarting."""

    extensions = ["groups"]

    def __init__(self, **kwargs):
        pass

    async def new_channel(self, prefix="specific."):
        raise ConnectionError("Redis is restarting")

    async def receive(self, channel):
        raise ConnectionError("Redis is restarting")

    async def send(self, channel, message):
        raise ConnectionError("Redis is restarting")

    async def group_add(self, group, channel):
        raise ConnectionError("Redis is restarting")

    async def group_discard(self, group, channel):
        raise ConnectionError("Redis is restarting")

    async def group_send(self, group, message):
        raise ConnectionError("Redis is restarting")


# Over real servers: daphne and uvicorn, and a signed-in reader logged out. --------


@pytest.fixture
def live_site(tmp_path):
    import json

    from .processes import Site

    site = Site(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        LIVEROOMS_TEST_SETTINGS=json.dumps({"SESSION_CHECK_INTERVAL": 0.5}),
    )
    site.manage("migrate", "--verbosity=0")
    site.shell(
        "from django_liverooms.models import Room, RoomMember\n"
        "from django.contrib.auth.models import User\n"
        "room = Room.objects.create(slug='secret', title='Secret', private=True)\n"
        "RoomMember.objects.create(room=room, user=User.objects.create_user('m', password='pw'))\n"
    )
    try:
        yield site
    finally:
        site.stop()


def start(site, server):
    import sys

    from .processes import free_port, wait_for_port

    if server == "daphne":
        return site.server(), site.processes[-1]
    port = free_port()
    process = site.start(
        sys.executable, "-m", "uvicorn", "--port", str(port), "--ws-per-message-deflate",
        "false", "tests.asgi:application",
    )  # fmt: skip
    wait_for_port(port, process)
    return port, process


def read_until_closed(socket):
    """The frames a socket gets until the server closes it, and the close code."""
    frames = []
    try:
        while True:
            frames.append(socket.recv(timeout=10))
    except ConnectionClosed as closed:
        return frames, closed.rcvd.code if closed.rcvd else None


def close_code(url, origin):
    with connect(url, origin=origin, open_timeout=10) as socket:
        return read_until_closed(socket)[1]


def server_log(process):
    process.log.seek(0)
    return process.log.read()


@pytest.mark.live
@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_unrouted_paths_and_a_logout_over_a_real_server(live_site, server):
    port, process = start(live_site, server)
    origin = f"http://127.0.0.1:{port}"
    paths = [prefix + rest for prefix in PREFIXES for rest in UNROUTED]
    codes = {path: close_code(f"ws://127.0.0.1:{port}{path}", origin) for path in paths}
    assert codes == {path: 4404 for path in paths}

    # A member reading the private room, logged out elsewhere: closed without a write.
    key = live_site.shell(
        "from django.test import Client\n"
        "from django.contrib.auth.models import User\n"
        "client = Client()\n"
        "client.force_login(User.objects.get(username='m'))\n"
        "print(client.cookies['sessionid'].value)\n"
    ).strip()
    url = f"ws://127.0.0.1:{port}/ws/chat/secret/"
    with connect(url, origin=origin, additional_headers={"Cookie": f"sessionid={key}"}) as socket:
        assert '"welcome"' in socket.recv(timeout=10)
        live_site.shell(
            "from django.contrib.sessions.models import Session\n"
            f"Session.objects.filter(session_key={key!r}).delete()\n"
        )
        frames, code = read_until_closed(socket)
    assert code == 4403
    assert '"code":"forbidden"' in frames[-1].replace(" ", "")
    assert "Traceback" not in server_log(process)
