"""Direct messages: ``Room.objects.direct(a, b)``, a private room of two users."""

import threading

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.template import Context, Template

from django_liverooms import unread
from django_liverooms.models import Message, Room, RoomMember, direct_slug
from django_liverooms.policy import get_policy

from .factories import make_room, make_user

pytestmark = pytest.mark.django_db


def test_the_room_of_two_users_is_private_with_both_as_members():
    alice, bob = make_user("alice", first_name="Alice"), make_user("bob")
    room = Room.objects.direct(alice, bob)
    assert room.private and room.direct
    assert room.slug == direct_slug(alice.pk, bob.pk)
    assert room.title == "Alice, bob"
    assert set(room.members.all()) == {alice, bob}
    assert not any(m.moderator for m in RoomMember.objects.filter(room=room))
    policy, carol = get_policy(), make_user("carol")
    assert policy.can_read(alice, room) and policy.can_post(bob, room)
    assert not policy.can_read(carol, room)


def test_found_again_in_either_order_never_duplicated():
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room = Room.objects.direct(alice, bob)
    assert Room.objects.direct(bob, alice) == room
    assert Room.objects.direct(alice, carol) != room
    assert Room.objects.filter(direct=True).count() == 2
    assert RoomMember.objects.filter(room=room).count() == 2


def test_one_user_alone_or_unsaved_is_refused():
    alice = make_user("alice")
    with pytest.raises(ValueError, match="two different saved users"):
        Room.objects.direct(alice, alice)
    with pytest.raises(ValueError, match="two different saved users"):
        Room.objects.direct(alice, type(alice)(username="ghost"))


def test_slugs_fit_the_slug_alphabet_for_any_primary_key():
    assert direct_slug(17, 3) == direct_slug(3, 17) == "dm-3-17"
    uuids = ("6f1c2a4e-0d7b-4c3e-9a51-2b8f0e6d7c91", "0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b")
    slug = direct_slug(*uuids)
    assert slug == direct_slug(*reversed(uuids))
    assert len(slug) <= 64 and slug.startswith("dm-")
    Room(slug=slug, title="t").full_clean()  # the slug validator accepts it


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_threads_asking_at_once_get_one_room():
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL (DATABASE_URL)")
    alice, bob = make_user("alice"), make_user("bob")
    rooms, barrier = [], threading.Barrier(2)

    def ask(a, b):
        barrier.wait()
        try:
            rooms.append(Room.objects.direct(a, b).pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=p) for p in ((alice, bob), (bob, alice))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(rooms) == 2 and rooms[0] == rooms[1]
    assert RoomMember.objects.filter(room_id=rooms[0]).count() == 2


@pytest.fixture
def rooms():
    alice, bob, carol = make_user("alice"), make_user("bob", first_name="Bob"), make_user("carol")
    lobby, staff = make_room("lobby", "Lobby"), make_room("staff", "Staff")
    staff.private = True
    staff.save()
    RoomMember.objects.create(room=staff, user=alice)
    secret = make_room("secret", "Secret")
    secret.private = True
    secret.save()
    RoomMember.objects.create(room=secret, user=carol)
    dm = Room.objects.direct(alice, bob)
    Message.objects.create(room=dm, author=bob, body="hi @alice")
    Message.objects.create(room=lobby, author=bob, body="hello all")
    return alice, bob, dm


def listed(entries):
    return [(e.room.slug, e.title, e.unread, e.mentions) for e in entries]


def test_the_directory_lists_what_a_user_may_read_with_unread_counts(rooms):
    alice, bob, dm = rooms
    assert listed(unread.directory(alice)) == [
        (dm.slug, "Bob", 1, 1),  # direct rooms first, named after the other member
        ("lobby", "Lobby", 1, 0),
        ("staff", "Staff", 0, 0),
    ]  # not carol's private room
    assert listed(unread.directory(bob)) == [(dm.slug, "alice", 0, 0), ("lobby", "Lobby", 0, 0)]
    assert listed(unread.directory(AnonymousUser())) == [("lobby", "Lobby", 0, 0)]


def test_the_directory_costs_the_same_queries_for_more_rooms(rooms, django_assert_max_num_queries):
    alice, bob, _ = rooms
    with django_assert_max_num_queries(7) as few:  # 7: with the user's ban (moderation.py)
        unread.directory(alice)
    for n in range(10):
        Room.objects.direct(alice, make_user(f"user{n}"))
        RoomMember.objects.create(room=make_room(f"team{n}", f"Team {n}"), user=alice)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(unread.directory(alice)) == 23


def test_the_rooms_tag(rooms):
    alice, _, dm = rooms
    html = Template(
        "{% load liverooms %}{% liverooms_rooms as rooms %}"
        "{% for r in rooms %}{{ r.room.slug }}:{{ r.title }}:{{ r.unread }};{% endfor %}"
    ).render(Context({"user": alice}))
    assert html == f"{dm.slug}:Bob:1;lobby:Lobby:1;staff:Staff:0;"
