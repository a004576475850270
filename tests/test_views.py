import pytest
from django.test import override_settings

from django_liverooms import streams

from .factories import make_blog, make_room, publish_entry

pytestmark = pytest.mark.django_db


def post(room, n):
    sender = streams.Sender(user=None, name="bot", key="bot")
    for i in range(n):
        streams.post_message(room, sender, f"m{i}", None)


def test_messages_returns_the_stored_frames(client):
    room = make_room()
    post(room, 3)
    response = client.get("/live/chat/lobby/messages")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert [i["body"] for i in data["items"]] == ["m0", "m1", "m2"] and data["complete"] is True
    assert data["items"][0] == __import__("json").loads(room.events.first().frame)


def test_paging_with_after_and_limit(client):
    post(make_room(), 5)
    page = client.get("/live/chat/lobby/messages?after=1&limit=2").json()
    assert [i["seq"] for i in page["items"]] == [2, 3] and page["complete"] is False
    rest = client.get("/live/chat/lobby/messages?after=3&limit=2").json()
    assert [i["seq"] for i in rest["items"]] == [4, 5] and rest["complete"] is True


def test_entries(client):
    publish_entry(make_blog(), title="Hi")
    data = client.get("/live/liveblog/match-day/entries").json()
    assert [(i["type"], i["title"]) for i in data["items"]] == [("entry", "Hi")]


@pytest.mark.parametrize(
    "query", ["after=-1", "after=x", "limit=0", "limit=201", "limit=1.5", "after=" + "9" * 30]
)
def test_bad_parameters_are_a_400(client, query):
    make_room()
    response = client.get(f"/live/chat/lobby/messages?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_frame"


@pytest.mark.parametrize(
    "path",
    ["/live/chat/nope/messages", "/live/chat/Bad%20Slug/messages", "/live/liveblog/lobby/entries"],
)
def test_unknown_streams_are_a_404(client, path):
    make_room()
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@override_settings(LIVEROOMS={"POLICY": "tests.policies.NobodyPolicy"})
def test_the_policy_applies(client):
    make_room()
    response = client.get("/live/chat/lobby/messages")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_only_get(client):
    make_room()
    client = type(client)(enforce_csrf_checks=True)
    response = client.post("/live/chat/lobby/messages")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_paging_backwards_from_beyond_the_stream_gives_the_latest_page(client):
    post(make_room(), 5)
    page = client.get("/live/chat/lobby/messages?before=999&limit=2").json()
    assert [i["seq"] for i in page["items"]] == [4, 5] and page["complete"] is False
    older = client.get("/live/chat/lobby/messages?before=4&limit=2").json()
    assert [i["seq"] for i in older["items"]] == [2, 3] and older["complete"] is False
    oldest = client.get("/live/chat/lobby/messages?before=2&limit=2").json()
    assert [i["seq"] for i in oldest["items"]] == [1] and oldest["complete"] is True


def test_paging_forwards_until_complete_then_caught_up(client):
    post(make_room(), 3)
    page = client.get("/live/chat/lobby/messages?after=1&limit=2").json()
    assert [i["seq"] for i in page["items"]] == [2, 3] and page["complete"] is True
    assert client.get("/live/chat/lobby/messages?after=3").json() == {
        "items": [],
        "complete": True,
    }
    assert client.get("/live/chat/lobby/messages?after=4").status_code == 410


@override_settings(LIVEROOMS={"POLICY": "tests.policies.TenantPolicy"})
def test_a_prefix_that_captures_kwargs_reaches_the_policy_as_on_the_socket(client):
    make_room()
    make_blog()
    assert client.get("/acme/live/chat/lobby/messages").status_code == 200
    assert client.get("/acme/live/liveblog/match-day/entries").status_code == 200
    refused = client.get("/other/live/chat/lobby/messages")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert client.get("/live/chat/lobby/messages").status_code == 200  # no site: allowed
