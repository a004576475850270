"""Chat search: ``GET <prefix>chat/<slug>/search?q=`` (streams.search_messages)."""

import json

import pytest
from django.test import override_settings

from django_liverooms import streams
from django_liverooms.models import Message, RoomMember

from .factories import make_room, make_user

pytestmark = pytest.mark.django_db

BOT = streams.Sender(user=None, name="bot", key="bot")


def post(room, *bodies):
    return [streams.post_message(room, BOT, body, None) for body in bodies]


def search(client, query, slug="lobby"):
    return client.get(
        f"/live/chat/{slug}/search", {"q": query} if isinstance(query, str) else query
    )


def bodies(response):
    assert response.status_code == 200, response.content
    return [item["body"] for item in response.json()["items"]]


def test_finds_matching_messages_newest_first_as_their_stored_frames(client):
    room = make_room()
    post(room, "kick-off at three", "the pitch is wet", "Kick-off delayed")
    response = search(client, "kick-off")
    assert bodies(response) == ["Kick-off delayed", "kick-off at three"]
    stored = json.loads(room.events.get(seq=3).frame)
    assert response.json()["items"][0] == stored  # seq, id, author: as in the history
    assert response.json()["complete"] is True


def test_every_word_must_match(client):
    post(make_room(), "red card for the keeper", "a red shirt", "the keeper saves")
    assert bodies(search(client, "keeper red")) == ["red card for the keeper"]


def test_pages_back_with_before_a_message_id(client):
    room = make_room()
    post(room, *(f"goal {n}" for n in range(5)))
    first = search(client, {"q": "goal", "limit": 2}).json()
    assert [i["body"] for i in first["items"]] == ["goal 4", "goal 3"]
    assert first["complete"] is False
    rest = search(client, {"q": "goal", "limit": 2, "before": first["items"][-1]["id"]}).json()
    assert [i["body"] for i in rest["items"]] == ["goal 2", "goal 1"]
    last = search(client, {"q": "goal", "before": rest["items"][-1]["id"]}).json()
    assert [i["body"] for i in last["items"]] == ["goal 0"] and last["complete"] is True


def test_deleted_messages_are_never_found_and_edits_are_found_by_their_new_text(client):
    room = make_room()
    post(room, "secret plan", "old words")
    gone = Message.objects.get(body="secret plan")
    gone.delete()
    changed = Message.objects.get(body="old words")
    changed.body = "new words"
    changed.save()
    assert bodies(search(client, "secret")) == []
    assert bodies(search(client, "old")) == []
    assert bodies(search(client, "new")) == ["new words"]


def test_a_message_whose_event_was_pruned_is_found_without_a_seq(client):
    room = make_room()
    post(room, "early news", "later news")
    streams.prune_events(room, keep_last=1, older_than=None)
    items = search(client, "news").json()["items"]
    assert [(i["body"], "seq" in i) for i in items] == [("later news", True), ("early news", False)]


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"q": "   "},
        {"q": "x" * 201},
        {"q": "a\x00b"},
        {"q": "a", "limit": 51},
        {"q": "a", "before": 0},
    ],
)
def test_bad_queries_are_a_400(client, query):
    make_room()
    response = search(client, query)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_frame"


def test_only_get_and_unknown_rooms_are_a_404(client):
    make_room()
    assert client.post("/live/chat/lobby/search?q=a").status_code == 405
    assert search(client, "a", slug="nope").status_code == 404


@pytest.mark.parametrize(
    ("who", "status"), [("anonymous", 403), ("outsider", 403), ("member", 200), ("moderator", 200)]
)
def test_a_private_room_is_searched_only_by_those_who_may_read_it(client, who, status):
    room = make_room()
    room.private = True
    room.save()
    post(room, "members only")
    if who != "anonymous":
        user = make_user(who)
        if who in ("member", "moderator"):
            RoomMember.objects.create(room=room, user=user, moderator=who == "moderator")
        client.force_login(user)
    response = search(client, "members")
    assert response.status_code == status
    if status == 200:
        assert bodies(response) == ["members only"]
    else:
        assert response.json()["error"]["code"] == "forbidden"
        assert "members only" not in response.content.decode()


@override_settings(LIVEROOMS={"HTTP_HISTORY_CONCURRENCY": 0})
def test_searches_share_the_history_reads_bound(client):
    make_room()
    response = search(client, "a")
    assert response.status_code == 503 and response["Retry-After"] == "1"


@pytest.mark.postgres
def test_postgresql_uses_full_text_search_with_the_configured_language(client):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("run the suite with DATABASE_URL=postgres://... for this test")
    post(make_room(), "two goals scored", "no goal, the pitch is wet")
    assert bodies(search(client, "goals")) == ["two goals scored"]  # "simple": as written
    assert bodies(search(client, "goal -wet")) == []  # websearch syntax: -word excludes
    with override_settings(LIVEROOMS={"SEARCH_CONFIG": "english"}):
        assert bodies(search(client, "goals")) == ["no goal, the pitch is wet", "two goals scored"]
        assert bodies(search(client, "goal -wet")) == ["two goals scored"]
