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


def goal_frame(goal, created):
    kind = "goal" if created else "goal.edited"
    return {"type": kind, "id": goal.pk, "scorer": goal.scorer, "minute": goal.minute}


def goal_deleted(goal):
    return {"type": "goal.deleted", "id": goal.pk}


def stored(stream):
    return [json.loads(text) for text in stream.events.values_list("frame", flat=True)]


def test_a_host_model_edit_and_deletion_rewrite_its_earlier_events(goal_registration):
    bridge.register(
        Goal,
        stream="blog",
        frame_for_save=goal_frame,
        frame_for_delete=goal_deleted,
        redact_fields=("scorer",),
    )
    blog = make_blog()
    goal = Goal.objects.create(blog=blog, scorer="Offside Smith", minute=42)
    goal.scorer = "Kane"
    goal.save()
    assert [f["scorer"] for f in stored(blog)] == ["Kane", "Kane"]
    goal_id = goal.pk
    goal.delete()
    assert stored(blog) == [
        {"type": "goal", "seq": 1, "id": goal_id, "scorer": "", "minute": 42, "redacted": True},
        {
            "type": "goal.edited",
            "seq": 2,
            "id": goal_id,
            "scorer": "",
            "minute": 42,
            "redacted": True,
        },
        {"type": "goal.deleted", "seq": 3, "id": goal_id},
    ]


def test_redact_fields_none_leaves_a_host_models_events_alone(goal_registration):
    bridge.register(
        Goal,
        stream="blog",
        frame_for_save=goal_frame,
        frame_for_delete=goal_deleted,
        redact_fields=None,
    )
    blog = make_blog()
    goal = Goal.objects.create(blog=blog, scorer="Kane", minute=42)
    goal.delete()
    assert stored(blog)[0]["scorer"] == "Kane" and "redacted" not in stored(blog)[0]
