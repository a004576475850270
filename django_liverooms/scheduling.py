"""Scheduled entries published by the worker, at their time.

``manage.py liverooms_publish_due`` (cron, or ``--every``) publishes due
entries anywhere. With worker persistence (``PERSISTENCE = "worker"``) the
worker does it too, with no cron: saving a scheduled entry sends a
``liverooms.schedule`` event with its time to the persist channel, and the
worker that takes it arms a timer and runs ``streams.publish_due()`` then.
The worker also publishes what is overdue when it takes its first event.
A worker that was not running, or a timer lost in a restart, is what cron is
the backstop for (docs/liveblog.md).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import router, transaction
from django.db.models.signals import post_save

from . import streams
from .conf import conf

logger = logging.getLogger(__name__)

SCHEDULE_EVENT = "liverooms.schedule"
# Timers one worker keeps (one per distinct second); beyond, cron publishes.
MAX_TIMERS = 1000
# call_later may fire a clock tick early; publish_due() must find the entry due.
LATE_BY = 0.05


def connect_signals() -> None:
    from .models import Entry

    post_save.connect(_on_entry_saved, sender=Entry, dispatch_uid="liverooms.scheduling")


def _on_entry_saved(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if raw or conf.PERSISTENCE != "worker" or instance.publish_at is None:
        return
    if instance.status != instance.STATUS.scheduled:
        return
    using = kwargs.get("using") or router.db_for_write(sender, instance=instance)
    transaction.on_commit(partial(announce, instance.publish_at.timestamp()), using=using)


def announce(at: float) -> None:
    """Tell a worker to publish what is due at ``at`` (a Unix time)."""
    layer = get_channel_layer(conf.CHANNEL_LAYER)
    if layer is None:
        return
    try:
        async_to_sync(layer.send)(conf.PERSIST_CHANNEL, {"type": SCHEDULE_EVENT, "at": at})
    except Exception:  # the entry stays scheduled: cron publishes it
        logger.warning("liverooms: could not tell a worker about a scheduled entry", exc_info=True)


class DueTimers:
    """One worker's timers: ``publish_due()`` when a scheduled time comes."""

    def __init__(self) -> None:
        self.handles: dict[int, asyncio.TimerHandle] = {}
        self.tasks: set[asyncio.Future[Any]] = set()
        self.swept = False

    def sweep_once(self) -> None:
        """Publish what is overdue, once per worker (its first event)."""
        if not self.swept:
            self.swept = True
            self.publish()

    def arm(self, at: Any) -> None:
        try:
            at = float(at)
        except (TypeError, ValueError):
            logger.warning("liverooms: a schedule event without a time: %r", at)
            return
        if not math.isfinite(at):
            return
        second = math.ceil(at)  # entries due in the same second share a timer
        if second in self.handles:
            return
        if len(self.handles) >= MAX_TIMERS:
            logger.warning("liverooms: %d entry timers armed; cron publishes the rest", MAX_TIMERS)
            return
        delay = max(0.0, second - time.time()) + LATE_BY
        loop = asyncio.get_running_loop()
        self.handles[second] = loop.call_later(delay, self._fire, second)

    def _fire(self, second: int) -> None:
        self.handles.pop(second, None)
        self.publish()

    def publish(self) -> None:
        task = asyncio.ensure_future(publish_due())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


async def publish_due() -> None:
    try:
        await database_sync_to_async(streams.publish_due)()
    except Exception:
        logger.exception("liverooms: the worker could not publish the due entries")
