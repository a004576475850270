"""Issue 14's live blog events over WebSocket and Server-Sent Events, in process."""

import pytest
from channels.db import database_sync_to_async

from .factories import make_blog, publish_entry
from .test_consumers import client
from .test_sse import open_stream

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def blog():
    return make_blog()


def change(obj, **fields):
    for name, value in fields.items():
        setattr(obj, name, value)
    obj.save()


achange = database_sync_to_async(change)


async def test_a_status_change_reaches_websocket_readers_and_replays(blog):
    reader = client("/ws/liveblog/match-day/")
    await reader.open()
    await achange(blog, status="ended")
    frame = await reader.receive_frame()
    assert (frame["type"], frame["seq"], frame["status"]) == ("liveblog.status", 1, "ended")
    assert frame["coverage_end"] is not None and frame["coverage_start"] is not None
    await reader.disconnect()
    _, history = await client("/ws/liveblog/match-day/").open()
    assert history["items"] == [frame]


async def test_a_status_change_reaches_sse_readers(blog):
    await database_sync_to_async(publish_entry)(blog)
    sse = await open_stream()
    await sse.event()  # welcome
    assert (await sse.event())[1]["type"] == "entry"
    await achange(blog, status="upcoming")
    seq, frame = await sse.event()
    assert (seq, frame["type"], frame["status"]) == (2, "liveblog.status", "upcoming")
    await sse.close()


async def test_a_pin_reaches_websocket_readers(blog):
    entry = await database_sync_to_async(publish_entry)(blog)
    reader = client("/ws/liveblog/match-day/")
    await reader.open()
    await database_sync_to_async(entry.pin)()
    frame = await reader.receive_frame()
    assert frame == {"type": "entry.marked", "seq": 2, "id": entry.pk, "pinned": True, "key": False}
    await reader.disconnect()


async def test_a_pin_reaches_sse_readers_and_the_history_carries_the_marks(blog):
    entry = await database_sync_to_async(publish_entry)(blog)
    sse = await open_stream()
    await sse.event()  # welcome
    assert (await sse.event())[1]["type"] == "entry"
    await database_sync_to_async(entry.mark_key)()
    seq, frame = await sse.event()
    assert (seq, frame) == (
        2,
        {"type": "entry.marked", "seq": 2, "id": entry.pk, "pinned": False, "key": True},
    )
    await sse.close()
    # A reader connecting now replays the entry frame with its current marks.
    _, history = await client("/ws/liveblog/match-day/").open()
    assert history["items"][0]["key"] is True and "pinned" not in history["items"][0]


async def test_a_scheduled_entry_reaches_readers_when_published_not_before(blog):
    from datetime import timedelta

    from django.utils import timezone

    from django_liverooms import streams
    from django_liverooms.models import Entry

    reader = client("/ws/liveblog/match-day/")
    await reader.open()
    entry = await database_sync_to_async(publish_entry)(
        blog, publish_at=timezone.now() + timedelta(hours=1)
    )
    assert await reader.receive_nothing(timeout=0.2)
    await database_sync_to_async(Entry.objects.filter(pk=entry.pk).update)(
        publish_at=timezone.now()
    )
    await database_sync_to_async(streams.publish_due)()
    frame = await reader.receive_frame()
    assert (frame["type"], frame["seq"], frame["id"]) == ("entry", 1, entry.pk)
    await reader.disconnect()


# -- reactions --------------------------------------------------------------------

FAST_REACTIONS = {"REACTION_INTERVAL": 0.2, "REACTIONS": ["👍", "❤️"]}


async def test_reactions_are_coalesced_into_one_frame_per_interval(blog):
    from django.test import override_settings

    with override_settings(LIVEROOMS={**FAST_REACTIONS, "REACTION_RATE": (10, 10)}):
        one, two = client("/ws/liveblog/match-day/"), client("/ws/liveblog/match-day/")
        await one.open()
        await two.open()
        for emoji, entry in [("👍", None), ("👍", None), ("❤️", 7), ("👍", None)]:
            await one.send_frame({"type": "reaction", "emoji": emoji, "entry": entry})
        await two.send_frame({"type": "reaction", "emoji": "❤️", "entry": 7})
        expected = {
            "type": "reactions",
            "counts": [
                {"entry": None, "emoji": "👍", "count": 3},
                {"entry": 7, "emoji": "❤️", "count": 2},
            ],
        }
        assert await one.receive_frame() == expected  # the sender's own count too
        assert await two.receive_frame() == expected
        assert await one.receive_nothing(timeout=0.4)  # one frame, not one per reaction
        await one.disconnect()
        await two.disconnect()


async def test_reactions_over_the_rate_are_dropped_silently(blog):
    from django.test import override_settings

    with override_settings(LIVEROOMS={**FAST_REACTIONS, "REACTION_RATE": (2, 60)}):
        reader = client("/ws/liveblog/match-day/")
        await reader.open()
        for _ in range(5):
            await reader.send_frame({"type": "reaction", "emoji": "👍"})
        frame = await reader.receive_frame()
        assert frame["counts"] == [{"entry": None, "emoji": "👍", "count": 2}]
        assert await reader.receive_nothing(timeout=0.4)
        await reader.disconnect()


async def test_bad_reactions_are_refused(blog):
    from django.test import override_settings

    with override_settings(LIVEROOMS=FAST_REACTIONS):
        reader = client("/ws/liveblog/match-day/")
        await reader.open()
        for frame, code in [
            ({"type": "reaction", "emoji": "💩"}, "bad_frame"),
            ({"type": "reaction"}, "bad_frame"),
            ({"type": "reaction", "emoji": "👍" * 17}, "bad_frame"),
            ({"type": "reaction", "emoji": "👍", "entry": -1}, "bad_frame"),
            ({"type": "reaction", "emoji": "👍", "entry": "7"}, "bad_frame"),
        ]:
            await reader.send_frame(frame)
            error = await reader.receive_frame()
            assert (error["type"], error["code"]) == ("error", code), frame
        assert await reader.receive_nothing(timeout=0.4)  # nothing was counted
        await reader.disconnect()
    with override_settings(LIVEROOMS={"REACTIONS": []}):
        reader = client("/ws/liveblog/match-day/")
        await reader.open()
        await reader.send_frame({"type": "reaction", "emoji": "👍"})
        assert (await reader.receive_frame())["code"] == "unknown_type"
        await reader.disconnect()


async def test_chat_rooms_take_no_reactions(room):
    chat = client("/ws/chat/lobby/")
    await chat.open()
    await chat.send_frame({"type": "reaction", "emoji": "👍"})
    assert (await chat.receive_frame())["code"] == "unknown_type"
    await chat.disconnect()


async def test_sse_readers_receive_the_counts(blog):
    from django.test import override_settings

    with override_settings(LIVEROOMS=FAST_REACTIONS):
        sse = await open_stream()
        await sse.event()  # welcome
        reader = client("/ws/liveblog/match-day/")
        await reader.open()
        await reader.send_frame({"type": "reaction", "emoji": "❤️", "entry": None})
        while True:
            seq, frame = await sse.event()
            if frame["type"] != "presence":
                break
        assert (seq, frame["type"]) == (None, "reactions")
        await reader.disconnect()
        await sse.close()
