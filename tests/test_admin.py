import json

import pytest
from django.contrib.auth import get_user_model

from django_liverooms import broadcast
from django_liverooms.models import Entry, Message

from .factories import make_blog, make_room

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("boss", password="pw")
    client.force_login(user)
    client.user = user
    return client


def types(box):
    return [json.loads(b.text)["type"] for b in box]


def entry_form(blog, **fields):
    return {"blog": blog.pk, "title": "Goal", "body": "<p>1-0</p>", "status": "published", **fields}


def test_publishing_an_entry_in_the_admin_goes_live(admin_client):
    blog = make_blog()
    with broadcast.collect() as box:
        response = admin_client.post("/admin/django_liverooms/entry/add/", entry_form(blog))
    assert response.status_code == 302, response.content
    entry = Entry.objects.get()
    assert entry.author == admin_client.user
    [frame] = [json.loads(b.text) for b in box]
    assert (frame["type"], frame["id"], frame["author"]["id"]) == (
        "entry",
        entry.pk,
        admin_client.user.pk,
    )


def test_editing_and_unpublishing_in_the_admin(admin_client):
    blog = make_blog()
    admin_client.post("/admin/django_liverooms/entry/add/", entry_form(blog))
    entry = Entry.objects.get()
    url = f"/admin/django_liverooms/entry/{entry.pk}/change/"
    with broadcast.collect() as box:
        admin_client.post(url, entry_form(blog, body="<p>2-0</p>", author=entry.author_id))
        admin_client.post(
            url, entry_form(blog, body="<p>2-0</p>", status="draft", author=entry.author_id)
        )
    assert types(box) == ["entry.edited", "entry.deleted"]


def test_publish_action(admin_client):
    blog = make_blog()
    drafts = [Entry.objects.create(blog=blog, body=f"<p>{n}</p>") for n in range(2)]
    with broadcast.collect() as box:
        admin_client.post(
            "/admin/django_liverooms/entry/",
            {"action": "publish", "_selected_action": [e.pk for e in drafts]},
        )
    assert types(box) == ["entry", "entry"]
    assert Entry.objects.filter(status="published").count() == 2


def test_deleting_a_message_in_the_admin_soft_deletes_it_live(admin_client):
    room = make_room()
    message = Message.objects.create(room=room, body="spam", author_name="x")
    with broadcast.collect() as box:
        response = admin_client.post(
            f"/admin/django_liverooms/message/{message.pk}/delete/", {"post": "yes"}
        )
    assert response.status_code == 302
    assert types(box) == ["message.deleted"]
    assert Message.all_objects.get().is_removed


@pytest.mark.parametrize("model", ["room", "message", "liveblog", "entry"])
def test_admin_pages_render(admin_client, model):
    make_room()
    make_blog()
    assert admin_client.get(f"/admin/django_liverooms/{model}/").status_code == 200
    assert admin_client.get(f"/admin/django_liverooms/{model}/add/").status_code == 200


def test_room_admin_shows_members_and_mutes(admin_client):
    from django_liverooms.models import RoomMember, RoomMute

    room = make_room()
    member = get_user_model().objects.create_user("member")
    RoomMember.objects.create(room=room, user=member, moderator=True)
    RoomMute.objects.create(room=room, user=member)
    page = admin_client.get(f"/admin/django_liverooms/room/{room.pk}/change/")
    assert page.status_code == 200
    content = page.content.decode()
    assert "room members" in content.lower() and "mutes" in content.lower()
    assert admin_client.get("/admin/django_liverooms/roommute/").status_code == 200
    assert admin_client.get("/admin/django_liverooms/room/?private__exact=1").status_code == 200
