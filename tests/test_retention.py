"""Retention (manage.py liverooms_prune) and resuming from a seq that cannot be continued."""

import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_liverooms import streams
from django_liverooms.models import Message, RoomEvent
from django_liverooms.testing import StreamCommunicator

from .factories import make_blog, make_room

pytestmark = pytest.mark.django_db


def guest(key="session:abc"):
    return streams.Sender(user=None, name="Guest", key=key)


def post(room, n, start=0):
    for i in range(start, start + n):
        streams.post_message(room, guest(), f"m{i}", f"c{i}")


def seqs(room):
    return list(room.events.values_list("seq", flat=True))


def test_keep_last_deletes_a_prefix_of_the_events_and_keeps_the_messages():
    room, other = make_room(), make_room("other", "Other")
    post(room, 5)
    post(other, 2)
    call_command("liverooms_prune", "--keep-last", "2")
    assert seqs(room) == [4, 5]
    assert seqs(other) == [1, 2]
    assert Message.objects.filter(room=room).count() == 5


def test_keep_days_deletes_older_events_unless_keep_last_keeps_them():
    room = make_room()
    post(room, 4)
    RoomEvent.objects.filter(seq__lte=3).update(created=timezone.now() - timedelta(days=10))
    call_command("liverooms_prune", "--keep-days", "7", "--keep-last", "2", "--dry-run")
    assert seqs(room) == [1, 2, 3, 4]
    call_command("liverooms_prune", "--keep-days", "7", "--keep-last", "2")
    assert seqs(room) == [3, 4]  # seq 3 is old, but among the last 2
    call_command("liverooms_prune", "--keep-days", "7")
    assert seqs(room) == [4]


def test_only_the_named_streams_are_pruned():
    room, other, blog = make_room(), make_room("other", "Other"), make_blog()
    post(room, 3)
    post(other, 3)
    call_command("liverooms_prune", "--keep-last", "0", "--chat", "other")
    assert (seqs(room), seqs(other)) == ([1, 2, 3], [])
    with pytest.raises(CommandError, match="No liveblog stream nope"):
        call_command("liverooms_prune", "--keep-last", "0", "--liveblog", "nope")
    assert blog.events.count() == 0


@pytest.mark.parametrize("args", [[], ["--keep-last", "-1"]])
def test_the_command_needs_a_rule(args):
    with pytest.raises(CommandError):
        call_command("liverooms_prune", *args)


def test_history_after_a_pruned_seq_is_gone_and_gives_the_latest():
    room = make_room()
    post(room, 6)
    streams.prune_events(room, keep_last=3, older_than=None)
    kept = streams.read_history(room, after=3, limit=10)
    assert (kept.gone, kept.complete, [json.loads(i)["seq"] for i in kept.items]) == (
        False,
        True,
        [4, 5, 6],
    )
    gone = streams.read_history(room, after=2, limit=2)
    assert gone.gone and not gone.complete and gone.through == 6
    assert [json.loads(i)["seq"] for i in gone.items] == [5, 6]
    assert streams.read_history(room, after=7, limit=10).gone  # beyond the stream's seq
    assert not streams.read_history(room, after=6, limit=10).gone


def test_a_repeated_send_whose_event_was_pruned_is_still_acknowledged():
    room = make_room()
    first = streams.post_message(room, guest(), "hello", "keep-me")
    post(room, 2)
    streams.prune_events(room, keep_last=1, older_than=None)
    again = streams.post_message(room, guest(), "hello (retry)", "keep-me")
    frame = json.loads(again.frame)
    assert again.duplicate and again.message_id == first.message_id
    assert (frame["type"], frame["seq"], frame["id"], frame["body"], frame["client_id"]) == (
        "message",
        0,
        first.message_id,
        "hello",
        "keep-me",
    )
    assert Message.objects.filter(room=room).count() == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("after", [2, 99])
async def test_resuming_from_a_gone_seq_is_told_to_reload(after):
    from channels.db import database_sync_to_async

    @database_sync_to_async
    def setup():
        room = make_room()
        post(room, 5)
        streams.prune_events(room, keep_last=2, older_than=None)

    await setup()
    reader = StreamCommunicator(f"/chat/lobby/?after={after}")
    connected, _ = await reader.connect()
    assert connected
    assert (await reader.receive_frame())["type"] == "welcome"
    error = await reader.receive_frame()
    assert (error["type"], error["code"]) == ("error", "history_gone")
    history = await reader.receive_frame()
    assert history["type"] == "history" and history["complete"] is False
    assert [i["seq"] for i in history["items"]] == [4, 5]
    await reader.disconnect()


def test_http_pages_backwards_with_before(client):
    post(make_room(), 5)
    page = client.get("/live/chat/lobby/messages?before=5&limit=2").json()
    assert [i["seq"] for i in page["items"]] == [3, 4] and page["complete"] is False
    rest = client.get("/live/chat/lobby/messages?before=3&limit=2").json()
    assert [i["seq"] for i in rest["items"]] == [1, 2] and rest["complete"] is True
    both = client.get("/live/chat/lobby/messages?before=3&after=1")
    assert both.status_code == 400


def test_http_after_a_pruned_seq_is_410_and_no_after_starts_at_the_oldest_kept(client):
    room = make_room()
    post(room, 5)
    streams.prune_events(room, keep_last=2, older_than=None)
    gone = client.get("/live/chat/lobby/messages?after=1")
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "history_gone"
    assert client.get("/live/chat/lobby/messages?after=9").status_code == 410
    assert [i["seq"] for i in client.get("/live/chat/lobby/messages").json()["items"]] == [4, 5]
    assert client.get("/live/chat/lobby/messages?after=3").status_code == 200
