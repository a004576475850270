import json

import pytest
from django.core import serializers

from django_liverooms import bridge, broadcast
from django_liverooms.models import Entry, LiveBlog, Message, Room

from .factories import make_blog, make_room, publish_entry
from .hostapp.models import Goal

pytestmark = pytest.mark.django_db(transaction=True)


def types(box):
    return [json.loads(b.text)["type"] for b in box]


def test_registered_host_model_is_pushed_into_its_stream():
    blog = make_blog()
    with broadcast.collect() as box:
        goal = Goal.objects.create(blog=blog, scorer="Kane", minute=42)
        goal.minute = 43
        goal.save()  # its frame function sends nothing for updates
    assert [json.loads(b.text) for b in box] == [
        {"type": "goal", "seq": 1, "id": goal.pk, "scorer": "Kane", "minute": 42}
    ]
    assert blog.events.get().object_id == goal.pk


def test_raw_fixture_loads_are_not_broadcast():
    blog = make_blog()
    entry = publish_entry(blog)
    data = serializers.serialize("json", [entry])
    Entry.all_objects.all().delete()
    with broadcast.collect() as box:
        for obj in serializers.deserialize("json", data):
            obj.save()  # raw=True, as loaddata does
    assert box == []
    assert Entry.all_objects.count() == 1


def test_deleting_a_stream_deletes_its_items_without_events():
    room = make_room()
    Message.objects.create(room=room, body="hi", author_name="x")
    blog = make_blog()
    publish_entry(blog)
    with broadcast.collect() as box:
        room.delete()
        LiveBlog.objects.all().delete()
    assert box == []
    assert not Message.all_objects.exists() and not Room.objects.exists()


@pytest.fixture
def goal_registration():
    """Restores the host app's registration of Goal after the test changes it."""
    yield
    bridge.register(Goal, stream="blog", frame_for_save=Goal.frame)


def test_a_stream_function_returning_none_skips_the_event(goal_registration):
    blog = make_blog()
    bridge.register(Goal, stream=lambda goal: None, frame_for_save=Goal.frame)
    with broadcast.collect() as box:
        Goal.objects.create(blog=blog, scorer="x", minute=1)
    assert box == []


def test_unregister_stops_the_events(goal_registration):
    blog = make_blog()
    bridge.unregister(Goal)
    with broadcast.collect() as box:
        Goal.objects.create(blog=blog, scorer="x", minute=1)
    assert box == []
    bridge.register(Goal, stream="blog", frame_for_save=Goal.frame)
    with broadcast.collect() as box:
        Goal.objects.create(blog=blog, scorer="y", minute=2)
    assert types(box) == ["goal"]


def test_plain_queryset_create_of_a_message_is_an_event():
    # Saves from code (a view, the shell) take the same path as the socket.
    room = make_room()
    with broadcast.collect() as box:
        Message.objects.create(room=room, body="from code", author_name="bot")
    assert types(box) == ["message"]
    assert json.loads(box[0].text)["client_id"] is None


def test_host_frames_may_carry_datetimes_and_decimals():
    import datetime
    import decimal

    from django_liverooms import streams

    blog = make_blog()
    moment = datetime.datetime(2026, 11, 24, 20, 45, tzinfo=datetime.timezone.utc)
    with broadcast.collect() as box:
        streams.record_event(blog, {"type": "odds", "at": moment, "price": decimal.Decimal("2.50")})
    assert json.loads(box[0].text) == {
        "type": "odds",
        "seq": 1,
        "at": "2026-11-24T20:45:00Z",
        "price": "2.50",
    }
