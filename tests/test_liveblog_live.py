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
