"""Rate limits and connection limits on real consumers; origins at the handshake."""

import pytest
from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.test import override_settings

from django_liverooms.models import Message
from django_liverooms.routing import websocket_include
from django_liverooms.testing import StreamCommunicator

from .factories import make_user
from .test_consumers import client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice():
    return make_user("alice")


@override_settings(LIVEROOMS={"SEND_RATE": (2, 600), "ABUSE_LIMIT": (3, 600)})
async def test_sends_over_the_rate_are_refused_then_the_socket_is_closed_with_4429(room, alice):
    chat = client("/ws/chat/lobby/", alice)
    await chat.open()
    for n in range(2):
        await chat.send_frame({"type": "message", "body": f"m{n}", "client_id": f"c{n}"})
        assert (await chat.receive_frame())["type"] == "message"
    for n in range(2, 5):
        await chat.send_frame({"type": "message", "body": f"m{n}", "client_id": f"c{n}"})
        assert await chat.receive_frame() == {
            "type": "error",
            "code": "rate_limited",
            "detail": "Too many messages from this connection; slow down.",
            "client_id": f"c{n}",
        }
    # The third refusal used the last strike; the fourth closes.
    await chat.send_frame({"type": "message", "body": "m5", "client_id": "c5"})
    assert (await chat.receive_frame())["code"] == "rate_limited"
    assert (await chat.receive_output())["code"] == 4429
    assert await Message.objects.acount() == 2


@override_settings(LIVEROOMS={"SEND_RATE": None, "USER_SEND_RATE": (3, 600)})
async def test_the_per_user_rate_spans_connections(room, alice):
    one, two = client("/ws/chat/lobby/", alice), client("/ws/chat/lobby/", alice)
    await one.open()
    await two.open()
    for n, socket in enumerate([one, two, one]):
        await socket.send_frame({"type": "message", "body": f"m{n}", "client_id": f"c{n}"})
    for _ in range(3):
        assert (await one.receive_frame())["type"] == "message"
        assert (await two.receive_frame())["type"] == "message"
    await two.send_frame({"type": "message", "body": "m3", "client_id": "c3"})
    error = await two.receive_frame()
    assert (error["code"], error["detail"]) == (
        "rate_limited",
        "Too many messages from you; slow down.",
    )
    await one.disconnect()
    await two.disconnect()


@override_settings(LIVEROOMS={"FRAME_RATE": (5, 600), "ABUSE_LIMIT": (2, 600)})
async def test_a_flood_of_any_frames_is_closed_with_4429(room):
    chat = client("/ws/chat/lobby/")
    await chat.open()
    answers = []
    for _ in range(8):
        await chat.send_frame({"type": "ping"})
        answers.append((await chat.receive_frame()).get("code", "pong"))
    # Two strikes are allowed; the third refusal closes the socket.
    assert answers == ["pong"] * 5 + ["rate_limited"] * 3
    assert (await chat.receive_output())["code"] == 4429


@override_settings(LIVEROOMS={"MAX_CONNECTIONS_PER_USER": 2})
async def test_connections_per_user_are_capped(room, alice):
    first, second = client("/ws/chat/lobby/", alice), client("/ws/chat/lobby/", alice)
    await first.open()
    await second.open()
    assert await client("/ws/chat/lobby/", alice).close_code() == 4429
    # Other users and guests are not affected; a closed socket frees its place.
    await client("/ws/chat/lobby/").open()
    await first.disconnect()
    third = client("/ws/chat/lobby/", alice)
    await third.open()
    await second.disconnect()
    await third.disconnect()


async def test_typing_over_its_rate_is_dropped_silently(room, alice):
    typist, other = client("/ws/chat/lobby/", alice), client("/ws/chat/lobby/")
    await typist.open()
    await other.open()
    for _ in range(5):
        await typist.send_frame({"type": "typing"})
    assert (await other.receive_frame())["type"] == "typing"
    assert await other.receive_nothing(timeout=0.2)
    assert await typist.receive_nothing(timeout=0.1)
    await typist.disconnect()
    await other.disconnect()


# Origins: what ALLOWED_HOSTS patterns admit (README "Origins").


@pytest.mark.parametrize(
    ("allowed_hosts", "origin", "admitted"),
    [
        (["example.com"], "https://example.com", True),
        (["example.com"], "https://www.example.com", False),
        (["example.com"], "https://example.com.evil.test", False),
        ([".example.com"], "https://example.com", True),
        ([".example.com"], "https://chat.example.com", True),
        ([".example.com"], "https://a.b.example.com", True),
        ([".example.com"], "https://notexample.com", False),
        (["example.com"], "http://example.com:8000", True),
        (["*"], "https://evil.test", True),
        (["example.com"], "null", False),
        (["example.com"], None, False),
    ],
)
async def test_allowed_hosts_patterns_and_the_origin_check(room, allowed_hosts, origin, admitted):
    with override_settings(ALLOWED_HOSTS=allowed_hosts):
        app = AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter([websocket_include("ws/")]))
        )
    headers = [] if origin is None else [(b"origin", origin.encode())]
    socket = StreamCommunicator("/ws/chat/lobby/", application=app, headers=headers)
    connected, _ = await socket.connect()
    assert connected is admitted
    await socket.disconnect()
