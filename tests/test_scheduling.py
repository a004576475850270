"""The worker publishes scheduled entries at their time (scheduling.py), with no cron."""

import asyncio
import time
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.test import override_settings
from django.utils import timezone

from django_liverooms import scheduling
from django_liverooms.models import Entry, LiveBlogEvent

from .factories import make_blog
from .test_layers import RunningWorker, client

pytestmark = pytest.mark.django_db(transaction=True)

WORKER = {"PERSISTENCE": "worker"}


def schedule(blog, title, seconds):
    return Entry.objects.create(
        blog=blog,
        title=title,
        body="<p>on time</p>",
        status=Entry.STATUS.scheduled,
        publish_at=timezone.now() + timedelta(seconds=seconds),
    )


async def persist_channel_event(timeout=1.0):
    layer = get_channel_layer()
    try:
        return await asyncio.wait_for(layer.receive("liverooms.persist"), timeout)
    except asyncio.TimeoutError:
        return None


@override_settings(LIVEROOMS=WORKER)
async def test_saving_a_scheduled_entry_tells_the_worker_its_time():
    blog = await database_sync_to_async(make_blog)()
    entry = await database_sync_to_async(schedule)(blog, "Later", 60)
    event = await persist_channel_event()
    assert event == {"type": scheduling.SCHEDULE_EVENT, "at": entry.publish_at.timestamp()}


async def test_inline_persistence_leaves_scheduling_to_cron():
    blog = await database_sync_to_async(make_blog)()
    await database_sync_to_async(schedule)(blog, "Later", 60)
    assert await persist_channel_event(timeout=0.3) is None


@override_settings(LIVEROOMS=WORKER)
async def test_the_worker_publishes_an_entry_at_its_time_and_readers_get_it():
    blog = await database_sync_to_async(make_blog)()
    reader = client("/ws/liveblog/match-day/")
    await reader.open()
    async with RunningWorker():
        entry = await database_sync_to_async(schedule)(blog, "On the hour", 1.5)
        await asyncio.sleep(0.5)
        assert not await LiveBlogEvent.objects.filter(type="entry").aexists()  # never before
        frame = await reader.receive_frame(timeout=10)
        arrived = timezone.now()
    assert (frame["type"], frame["id"], frame["title"]) == ("entry", entry.pk, "On the hour")
    await entry.arefresh_from_db()
    assert entry.status == Entry.STATUS.published
    assert entry.publish_at <= entry.published_at <= arrived
    await reader.disconnect()


@override_settings(LIVEROOMS=WORKER)
async def test_a_worker_publishes_what_came_due_while_it_was_not_running():
    blog = await database_sync_to_async(make_blog)()
    overdue = await database_sync_to_async(schedule)(blog, "Overdue", 0.2)
    await persist_channel_event()  # the event no worker took
    await asyncio.sleep(0.3)
    async with RunningWorker():
        # Its first event (here a later entry's) makes it sweep.
        await database_sync_to_async(schedule)(blog, "Later", 60)
        for _ in range(100):
            await overdue.arefresh_from_db()
            if overdue.status == Entry.STATUS.published:
                break
            await asyncio.sleep(0.05)
    assert overdue.status == Entry.STATUS.published


async def test_timers_are_bounded_and_shared_per_second(monkeypatch):
    monkeypatch.setattr(scheduling, "MAX_TIMERS", 3)
    timers = scheduling.DueTimers()
    now = time.time()
    for at in (now + 100.1, now + 100.2, now + 200, now + 300, now + 400, "bad", None):
        timers.arm(at)
    assert len(timers.handles) == 3  # 100.1 and 100.2 share a second; 400 is over the bound
    for handle in timers.handles.values():
        handle.cancel()
