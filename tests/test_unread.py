"""Read state (issue 16): read markers, unread counts and mentions in chat rooms."""

import json

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.core.checks import run_checks
from django.template import Context, Template
from django.test import RequestFactory, override_settings

from django_liverooms import protocol, unread
from django_liverooms.models import Mention, Message, ReadMarker, Room, RoomMember

from .factories import make_room, make_user
from .test_consumers import client as ws

pytestmark = pytest.mark.django_db(transaction=True)

LOBBY = "/ws/chat/lobby/"


def post(room, user, body):
    return Message.objects.create(room=room, author=user, body=body)


apost = database_sync_to_async(post)


@database_sync_to_async
def marker(user, room):
    return unread.read_seq(user, room)


def fresh(*rooms):
    """The rooms as the database has them now (their last_seq)."""
    return list(Room.objects.filter(pk__in=[r.pk for r in rooms]).order_by("slug"))


# The protocol (pure) -------------------------------------------------------------


def test_mentions_are_parsed_from_the_body():
    assert protocol.mentions("hi @alice and @bob. (@carol) @alice") == ["alice", "bob", "carol"]
    # An address, a doubled @ and a name too long to be a username name nobody.
    assert protocol.mentions("mail bob@example.com @@dave @" + "x" * 151) == []
    assert protocol.mentions("@a-b- @c+") == ["a-b", "c"]
    many = " ".join(f"@u{n}" for n in range(15))
    assert protocol.mentions(many) == [f"u{n}" for n in range(protocol.MAX_MENTIONS)]


def test_message_frames_carry_mentions_only_when_the_body_has_some():
    author = protocol.user_info(1, "a")
    plain = protocol.message(id=1, slug="s", body="hi", author=author, created="t", client_id=None)
    assert "mentions" not in plain
    named = protocol.message(
        id=1, slug="s", body="@bob hi", author=author, created="t", client_id=None
    )
    assert named["mentions"] == ["bob"]
    # An edit gives the stored frame the names of the new body; a deletion takes them away.
    edit = protocol.message_edited(id=1, body="@carol now", edited="t2")
    assert protocol.with_current_text(named, edit)["mentions"] == ["carol"]
    cleared = protocol.message_edited(id=1, body="nobody", edited="t3")
    assert "mentions" not in protocol.with_current_text(named, cleared)
    assert "mentions" not in protocol.redacted(named)


def test_the_read_frame():
    assert protocol.parse('{"type": "read", "seq": 7}') == protocol.Read(seq=7)
    for bad in ('{"type": "read"}', '{"type": "read", "seq": "7"}', '{"type": "read", "seq": 0}'):
        with pytest.raises(protocol.ProtocolError) as refused:
            protocol.parse(bad)
        assert refused.value.code == protocol.BAD_FRAME
    with pytest.raises(protocol.ProtocolError) as refused:
        protocol.parse('{"type": "read", "seq": 7}', accepts=protocol.LIVEBLOG_COMMANDS)
    assert refused.value.code == protocol.UNKNOWN_TYPE
    assert protocol.read(3) == {"type": "read", "read_seq": 3}  # no "seq": not a stream event
    welcome = protocol.welcome("chat", "s", 5, protocol.user_info(1, "a"), True, read_seq=4)
    assert welcome["read_seq"] == 4
    assert "read_seq" not in protocol.welcome("chat", "s", 5, protocol.user_info(None, "g"), False)


# Over the socket -------------------------------------------------------------------


@override_settings(LIVEROOMS={"READ_INTERVAL": 0})
async def test_the_marker_moves_forward_only_and_never_beyond_the_rooms_seq(room, alice, bob):
    for n in range(3):
        await apost(room, bob, f"m{n}")
    chat = ws(LOBBY, alice)
    welcome, _ = await chat.open()
    assert welcome["read_seq"] == 0
    await chat.send_frame({"type": "read", "seq": 2})
    assert await chat.receive_frame() == {"type": "read", "read_seq": 2}
    await chat.send_frame({"type": "read", "seq": 1})  # backwards: nothing to do
    assert await chat.receive_nothing(timeout=0.2)
    await chat.send_frame({"type": "read", "seq": 99})  # beyond the room: its seq
    assert await chat.receive_frame() == {"type": "read", "read_seq": 3}
    await chat.disconnect()
    assert await marker(alice, room) == 3
    # Another socket cannot move it back either; its welcome carries it.
    other = ws(LOBBY, alice)
    welcome, _ = await other.open()
    assert welcome["read_seq"] == 3
    await other.send_frame({"type": "read", "seq": 1})
    assert await other.receive_frame() == {"type": "read", "read_seq": 3}
    await other.disconnect()
    assert await marker(alice, room) == 3


@override_settings(LIVEROOMS={"READ_INTERVAL": 60})
async def test_many_read_frames_cost_one_write_at_once_and_one_at_disconnect(
    room, alice, bob, monkeypatch
):
    for n in range(20):
        await apost(room, bob, f"m{n}")
    writes = []
    real = unread.mark_read

    def counting(user, room, seq):
        writes.append(seq)
        return real(user, room, seq)

    monkeypatch.setattr(unread, "mark_read", counting)
    chat = ws(LOBBY, alice)
    await chat.open()
    for seq in range(1, 21):
        await chat.send_frame({"type": "read", "seq": seq})
    assert await chat.receive_frame() == {"type": "read", "read_seq": 1}
    assert await chat.receive_nothing(timeout=0.3)
    assert writes == [1]
    await chat.disconnect()
    assert writes == [1, 20]
    assert await marker(alice, room) == 20


@override_settings(LIVEROOMS={"READ_INTERVAL": 0.2})
async def test_held_reads_are_written_once_the_interval_has_passed(room, alice, bob, monkeypatch):
    for n in range(10):
        await apost(room, bob, f"m{n}")
    writes = []
    real = unread.mark_read
    monkeypatch.setattr(unread, "mark_read", lambda *a: writes.append(a[2]) or real(*a))
    chat = ws(LOBBY, alice)
    await chat.open()
    for seq in range(1, 11):
        await chat.send_frame({"type": "read", "seq": seq})
    assert await chat.receive_frame() == {"type": "read", "read_seq": 1}
    assert await chat.receive_frame() == {"type": "read", "read_seq": 10}
    assert writes == [1, 10]
    await chat.disconnect()
    assert writes == [1, 10]  # nothing left to write


def test_an_existing_marker_moves_in_two_queries(room, alice, bob, django_assert_num_queries):
    for n in range(3):
        post(room, bob, f"m{n}")
    assert unread.mark_read(alice, room, 1) == 1
    with django_assert_num_queries(2):  # the room's seq; UPDATE ... WHERE seq < 3
        assert unread.mark_read(alice, room, 3) == 3
    assert unread.mark_read(alice, room, 2) == 3
    assert ReadMarker.objects.get(user=alice, room=room).seq == 3


async def test_guests_are_refused_read_markers(room, bob):
    await apost(room, bob, "hi")
    chat = ws(LOBBY)
    welcome, _ = await chat.open()
    assert "read_seq" not in welcome
    await chat.send_frame({"type": "read", "seq": 1})
    assert await chat.receive_frame() == {
        "type": "error",
        "code": "forbidden",
        "detail": "Only signed-in users have read markers.",
        "client_id": None,
    }
    await chat.send_frame({"type": "ping"})  # the socket stays open
    assert (await chat.receive_frame())["type"] == "pong"
    await chat.disconnect()
    assert await ReadMarker.objects.acount() == 0


async def test_a_message_carries_its_mentions_and_stores_who_exists(room, alice, bob):
    chat = ws(LOBBY, alice)
    await chat.open()
    body = "hi @bob and @nobody, mail bob@example.com"
    await chat.send_frame({"type": "message", "body": body, "client_id": "m1"})
    frame = await chat.receive_frame()
    assert frame["type"] == "message" and frame["mentions"] == ["bob", "nobody"]
    await chat.send_frame({"type": "message", "body": "no names", "client_id": "m2"})
    assert "mentions" not in await chat.receive_frame()
    await chat.disconnect()
    rows = [(m.message_id, m.user_id) async for m in Mention.objects.all()]
    assert rows == [(frame["id"], bob.pk)]


# Unread counts (the service layer) ----------------------------------------------------


def test_unread_counts_messages_after_the_marker_but_not_ones_own_or_removed(
    alice, bob, django_assert_num_queries
):
    r0, r1, r2, r3 = (make_room(f"r{n}", f"R{n}") for n in range(4))
    for n in range(3):
        post(r0, bob, f"m{n}")
    unread.mark_read(alice, r0, 1)
    post(r1, bob, "a")
    post(r1, alice, "mine")
    post(r1, bob, "b")
    post(r2, bob, "stays")
    post(r2, bob, "goes").delete()
    rooms = fresh(r0, r1, r2, r3)
    with django_assert_num_queries(2):  # the markers; the counts
        found = unread.unread(alice, rooms)
    assert {slug: (s.unread, s.last_seq, s.read_seq) for slug, s in found.items()} == {
        "r0": (2, 3, 1),
        "r1": (2, 3, 0),
        "r2": (1, 3, 0),
        "r3": (0, 0, 0),
    }
    # As many queries for more rooms (public ones: the policy reads only the
    # user's ban, once).
    more = fresh(*rooms, *(make_room(f"s{n}", "S") for n in range(5)))
    for room in more[4:]:
        post(room, bob, "x")
    more = fresh(*more)
    with django_assert_num_queries(3):
        assert unread.unread_counts(alice, more) == {
            "r0": 2,
            "r1": 2,
            "r2": 1,
            "r3": 0,
            **{f"s{n}": 1 for n in range(5)},
        }
    # By default, the rooms alice has read or is a member of.
    RoomMember.objects.create(room=r3, user=alice)
    assert unread.unread_counts(alice) == {"r0": 2, "r3": 0}
    assert unread.unread_counts(AnonymousUser()) == {}


def test_unread_mentions_are_messages_after_the_marker_that_name_the_user(room, alice, bob):
    post(room, bob, "@alice early")  # seq 1, read
    unread.mark_read(alice, room, 1)
    post(room, bob, "hey @alice")  # counted
    post(room, bob, "@carol only")
    edited = post(room, bob, "no one")
    edited.body = "now @alice"  # an edit that names her: counted
    edited.save()
    post(room, bob, "@alice gone").delete()  # removed: not counted
    post(room, alice, "@alice myself")  # her own: not counted
    [state] = unread.unread(alice, fresh(room)).values()
    assert (state.unread, state.mentions, state.read_seq) == (3, 2, 1)
    assert unread.unread(bob, fresh(room))["lobby"].mentions == 0
    stored = json.loads(room.events.get(type="message", object_id=edited.pk).frame)
    assert stored["mentions"] == ["alice"] and stored["body"] == "now @alice"
    edited.body = "nobody again"
    edited.save()
    assert unread.unread(alice, fresh(room))["lobby"].mentions == 1


@override_settings(LIVEROOMS={"UNREAD_WINDOW": 2})
def test_unread_counts_look_at_the_latest_events_only(room, alice, bob):
    for n in range(5):
        post(room, bob, f"m{n}")
    assert unread.unread_counts(alice, fresh(room)) == {"lobby": 2}


def test_a_private_rooms_counts_are_for_its_members(alice, bob):
    secret = Room.objects.create(slug="secret", title="Secret", private=True)
    post(secret, bob, "psst @alice")
    assert unread.unread_counts(alice, fresh(secret)) == {}
    RoomMember.objects.create(room=secret, user=alice)
    assert unread.unread_counts(alice, fresh(secret)) == {"secret": 1}


# The HTTP endpoint ------------------------------------------------------------------


def test_the_unread_endpoint(client, alice, bob):
    lobby, other = make_room(), make_room("other", "Other")
    secret = Room.objects.create(slug="secret", title="Secret", private=True)
    post(lobby, bob, "hi @alice")
    post(lobby, bob, "again")
    post(secret, bob, "psst @alice")
    unread.mark_read(alice, lobby, 1)
    unread.mark_read(alice, other, 1)  # nothing to read: no marker
    client.force_login(alice)
    response = client.get("/live/chat/unread")
    assert response.status_code == 200
    assert response.json() == {
        "rooms": {"lobby": {"unread": 1, "mentions": 0, "last_seq": 2, "read_seq": 1}}
    }
    # Named rooms: a private one alice is not a member of is not shown, nor one that is not.
    named = client.get("/live/chat/unread?rooms=secret,other,lobby,nope").json()["rooms"]
    assert sorted(named) == ["lobby", "other"]
    assert named["other"] == {"unread": 0, "mentions": 0, "last_seq": 0, "read_seq": 0}
    RoomMember.objects.create(room=secret, user=alice)
    assert client.get("/live/chat/unread").json()["rooms"]["secret"] == {
        "unread": 1,
        "mentions": 1,
        "last_seq": 1,
        "read_seq": 0,
    }
    # Under a prefix that captures a kwarg too.
    assert "secret" in client.get("/site1/live/chat/unread").json()["rooms"]


def test_the_unread_endpoint_refuses_guests_and_bad_rooms(client, alice):
    response = client.get("/live/chat/unread")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    client.force_login(alice)
    for bad in ("Not-A-Slug", ",".join(f"r{n}" for n in range(unread.MAX_ROOMS + 1)), "a,,b"):
        response = client.get("/live/chat/unread", {"rooms": bad})
        assert response.status_code == 400 and response.json()["error"]["code"] == "bad_frame"
    assert client.post("/live/chat/unread").status_code == 405


@override_settings(LIVEROOMS={"HTTP_HISTORY_RATE": (1, 60)})
def test_the_unread_endpoint_is_bounded_as_the_history_api(client, alice):
    client.force_login(alice)
    assert client.get("/live/chat/unread").status_code == 200
    assert client.get("/live/chat/unread").status_code == 429


# The template tag, the admin, the checks ----------------------------------------------


def render(source, user, **context):
    request = RequestFactory().get("/")
    request.user = user
    return Template("{% load liverooms %}" + source).render(
        Context({"request": request, **context})
    )


def test_the_unread_count_tag(room, alice, bob):
    secret = Room.objects.create(slug="secret", title="Secret", private=True)
    for body in ("a", "b @alice", "c"):
        post(room, bob, body)
    post(secret, bob, "psst")
    unread.mark_read(alice, room, 1)
    rooms = list(Room.objects.order_by("slug"))
    html = render(
        "{% for r in rooms %}{{ r.slug }}={% liverooms_unread_count r %};{% endfor %}"
        '{% liverooms_unread_count "lobby" as n %}{% if n %}[{{ n }}]{% endif %}'
        '{% liverooms_unread_count "nope" %}',
        alice,
        rooms=rooms,
    )
    assert html == "lobby=2;secret=0;[2]0"
    assert render("{% liverooms_unread_count room %}", AnonymousUser(), room=room) == "0"


def test_read_markers_are_read_only_in_the_admin(client, room, alice):
    admin = make_user("admin", is_staff=True, is_superuser=True)
    post(room, alice, "hi")
    unread.mark_read(alice, room, 1)
    client.force_login(admin)
    page = client.get("/admin/django_liverooms/readmarker/")
    assert page.status_code == 200 and "alice" in page.content.decode()
    assert client.get("/admin/django_liverooms/readmarker/add/").status_code == 403


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"READ_INTERVAL": -1}, "liverooms.E175"),
        ({"READ_INTERVAL": "5"}, "liverooms.E175"),
        ({"UNREAD_WINDOW": 0}, "liverooms.E176"),
        ({"UNREAD_WINDOW": True}, "liverooms.E176"),
    ],
)
def test_bad_read_settings_are_reported(settings, error):
    with override_settings(LIVEROOMS=settings):
        assert error in {e.id for e in run_checks()}
    assert error not in {e.id for e in run_checks()}
