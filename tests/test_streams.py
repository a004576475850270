import json

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from django_liverooms import broadcast, streams
from django_liverooms.models import Entry, Message, Room
from django_liverooms.streams import Sender

from .factories import make_blog, make_room, make_user, publish_entry

pytestmark = pytest.mark.django_db(transaction=True)


def frames(box):
    return [json.loads(b.text) for b in box]


def guest(key="session:abc"):
    return Sender(user=None, name="Guest 1234", key=key)


def test_events_get_consecutive_seqs_per_stream():
    room, other = make_room(), make_room("other", "Other")
    for n in range(3):
        streams.post_message(room, guest(), f"m{n}", None)
    streams.post_message(other, guest(), "x", None)
    assert list(room.events.values_list("seq", flat=True)) == [1, 2, 3]
    assert list(other.events.values_list("seq", flat=True)) == [1]
    room.refresh_from_db()
    assert room.last_seq == 3


def test_saving_a_stale_room_does_not_move_its_seq_back():
    room = make_room()
    stale = Room.objects.get(pk=room.pk)
    streams.post_message(room, guest(), "hello", None)
    stale.title = "Renamed"
    stale.save()
    room.refresh_from_db()
    assert (room.title, room.last_seq) == ("Renamed", 1)


def test_slug_outside_the_alphabet_fails_validation():
    with pytest.raises(ValidationError):
        Room(slug="Not Valid", title="x").full_clean()
    Room(slug="ok-slug_1", title="x").full_clean()


def test_post_message_stores_and_broadcasts_the_frame_on_commit():
    room, user = make_room(), make_user()
    with broadcast.collect() as box:
        posted = streams.post_message(room, Sender(user, "alice", f"user:{user.pk}"), "hi", "c1")
    assert not posted.duplicate
    [frame] = frames(box)
    message = Message.objects.get()
    assert frame == {
        "type": "message",
        "seq": 1,
        "id": message.pk,
        "slug": "lobby",
        "body": "hi",
        "author": {"id": user.pk, "name": "alice"},
        "created": message.created.isoformat(),
        "client_id": "c1",
    }
    assert box[0].group == f"liverooms.chat.{room.pk}"
    assert room.events.get().frame == box[0].text


def test_repeated_client_id_is_stored_once_and_answered_with_the_stored_frame():
    room = make_room()
    with broadcast.collect() as box:
        first = streams.post_message(room, guest(), "hi", "same")
        again = streams.post_message(room, guest(), "hi (retry)", "same")
    assert Message.objects.count() == 1
    assert len(box) == 1  # the repeat is not broadcast again
    assert again.duplicate and again.message_id == first.message_id
    assert again.frame == box[0].text


def test_same_client_id_from_another_sender_is_another_message():
    room = make_room()
    streams.post_message(room, guest("session:a"), "hi", "same")
    streams.post_message(room, guest("session:b"), "hi", "same")
    assert Message.objects.count() == 2


def test_message_edit_and_soft_delete_are_events():
    room = make_room()
    streams.post_message(room, guest(), "hi", None)
    message = Message.objects.get()
    with broadcast.collect() as box:
        message.body = "hi, edited"
        message.save()
        message.save()  # no change, no event
        message.delete()  # soft
        message.delete()  # already removed, no event
    assert [f["type"] for f in frames(box)] == ["message.edited", "message.deleted"]
    assert frames(box)[0]["body"] == "hi, edited"
    assert [f["seq"] for f in frames(box)] == [2, 3]
    assert Message.all_objects.get().is_removed
    assert not Message.objects.exists()


def test_hard_delete_of_a_live_message_is_an_event():
    room = make_room()
    streams.post_message(room, guest(), "hi", None)
    with broadcast.collect() as box:
        Message.objects.get().delete(soft=False)
    assert [f["type"] for f in frames(box)] == ["message.deleted"]


def test_entry_lifecycle_events():
    blog = make_blog()
    with broadcast.collect() as box:
        entry = Entry.objects.create(blog=blog, title="Draft", body="<p>x</p>")
        entry.title = "Still a draft"
        entry.save()
        entry.status = Entry.STATUS.published
        entry.save()
        entry.body = "<p>updated</p>"
        entry.save()
        entry.status = Entry.STATUS.draft
        entry.save()
        entry.status = Entry.STATUS.published
        entry.save()
        entry.delete()
    assert [f["type"] for f in frames(box)] == [
        "entry",
        "entry.edited",
        "entry.deleted",
        "entry",
        "entry.deleted",
    ]
    published = frames(box)[0]
    assert published["title"] == "Still a draft"
    assert published["published"] == Entry.all_objects.get().published_at.isoformat()
    assert [f["seq"] for f in frames(box)] == [1, 2, 3, 4, 5]


def test_entry_body_is_sanitised_on_save():
    entry = publish_entry(
        make_blog(),
        body='<p onclick="x()">Hi<script>alert(1)</script><img src=x onerror=alert(1)></p>',
    )
    entry.refresh_from_db()
    assert entry.body == '<p>Hi<img src="x"></p>'
    assert "onerror" not in entry.blog.events.get().frame


def test_read_history_latest_window():
    room = make_room()
    for n in range(5):
        streams.post_message(room, guest(), f"m{n}", None)
    history = streams.read_history(room, after=None, limit=3)
    assert [json.loads(i)["seq"] for i in history.items] == [3, 4, 5]
    assert (history.complete, history.last_seq, history.through) == (False, 5, 5)
    everything = streams.read_history(room, after=None, limit=5)
    assert everything.complete and len(everything.items) == 5


def test_read_history_after_a_seq():
    room = make_room()
    for n in range(5):
        streams.post_message(room, guest(), f"m{n}", None)
    history = streams.read_history(room, after=1, limit=2)
    assert [json.loads(i)["seq"] for i in history.items] == [2, 3]
    assert (history.complete, history.through) == (False, 3)
    rest = streams.read_history(room, after=3, limit=10)
    assert [json.loads(i)["seq"] for i in rest.items] == [4, 5]
    assert (rest.complete, rest.through) == (True, 5)
    assert streams.read_history(room, after=5, limit=10).items == []


def test_nothing_is_recorded_or_broadcast_on_rollback():
    blog = make_blog()

    def publish_then_fail():
        with transaction.atomic():
            publish_entry(blog)
            raise RuntimeError("rolled back")

    with broadcast.collect() as box, pytest.raises(RuntimeError):
        publish_then_fail()
    assert box == []
    blog.refresh_from_db()
    assert blog.last_seq == 0 and not blog.events.exists()


def test_broadcast_waits_for_the_outer_transaction_to_commit():
    blog = make_blog()
    with broadcast.collect() as box:
        with transaction.atomic():
            publish_entry(blog)
            assert box == []
        assert len(box) == 1


def test_get_stream():
    room = make_room()
    assert streams.get_stream("chat", "lobby") == room
    assert streams.get_stream("liveblog", "lobby") is None
    assert streams.get_stream("chat", "LOBBY") is None


def test_database_refuses_a_slug_outside_the_alphabet():
    from django.db import IntegrityError

    with pytest.raises(IntegrityError):
        Room.objects.create(slug="Bad Slug", title="x")
