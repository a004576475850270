"""Every bad input in tests/bad_inputs.py, answered exactly, in process.

Each case: a fresh connection sends the input and gets the exact answer; the
same connection still answers a ping; and a control connection in the same
room still gets its own message back. tests/test_live.py runs the same cases
against a real server.
"""

import json

import pytest

from django_liverooms.models import RoomMember

from .bad_inputs import BAD_STREAM_PATHS, CASES, matches
from .factories import make_blog, make_room, make_user
from .test_consumers import client

pytestmark = pytest.mark.django_db(transaction=True)

PATHS = {"chat": "/ws/chat/lobby/", "liveblog": "/ws/liveblog/match-day/"}


@pytest.fixture
def streams_and_moderator():
    room = make_room()
    make_blog()
    moderator = make_user("mod")
    RoomMember.objects.create(room=room, user=moderator, moderator=True)
    return moderator, make_user("control")


def receive_event(payload):
    if isinstance(payload, bytes):
        return {"type": "websocket.receive", "bytes": payload}
    return {"type": "websocket.receive", "text": payload}


@pytest.mark.parametrize(
    ("name", "stream", "payload", "expected"), CASES, ids=[c[0] for c in CASES]
)
async def test_bad_input_is_answered_and_the_room_still_works(
    streams_and_moderator, name, stream, payload, expected
):
    moderator, control_user = streams_and_moderator
    bad = client(PATHS[stream], moderator)
    await bad.open()
    await bad.send_input(receive_event(payload))
    answer = await bad.receive_frame()
    assert matches(answer, expected), answer
    await bad.send_frame({"type": "ping"})
    assert await bad.receive_frame() == {"type": "pong"}
    await bad.disconnect()

    control = client("/ws/chat/lobby/", control_user)
    await control.open()
    await control.send_frame({"type": "message", "body": f"after {name}", "client_id": "ctl"})
    echo = await control.receive_frame()
    assert (echo["type"], echo["body"]) == ("message", f"after {name}")
    await control.disconnect()


def test_there_are_at_least_sixty_handwritten_cases():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("path", BAD_STREAM_PATHS)
async def test_bad_stream_paths_close_with_4404(streams_and_moderator, path):
    assert await client("/ws/" + path).close_code() == 4404


@pytest.mark.parametrize(
    "slug", ["Lobby", "a" * 65, "a" * 5000, "%C3%A9", "a%20b", "a.b", "a%00b", "nowhere"]
)
def test_bad_slugs_are_a_json_404_over_http(client, slug):
    make_room()
    response = client.get(f"/live/chat/{slug}/messages")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_a_frame_typed_as_an_internal_event_delivers_nothing(streams_and_moderator):
    moderator, _ = streams_and_moderator
    attacker, reader = client("/ws/chat/lobby/", moderator), client("/ws/chat/lobby/")
    await attacker.open()
    await reader.open()
    forged = {"type": "liverooms.frame", "seq": None, "text": json.dumps({"type": "message"})}
    await attacker.send_frame(forged)
    assert (await attacker.receive_frame())["code"] == "unknown_type"
    assert await reader.receive_nothing(timeout=0.2)
    await attacker.disconnect()
    await reader.disconnect()
