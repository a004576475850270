"""layerwatch.cancel(): a layer call whose cancel is swallowed still ends."""

import asyncio

from django_liverooms import layerwatch


async def stubborn(swallowed):
    """Swallows its first cancel, as redis-py 8 can in a blocking read."""
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        swallowed.append(True)
    await asyncio.sleep(30)


async def test_cancel_repeats_until_the_call_has_ended():
    swallowed = []
    task = asyncio.ensure_future(stubborn(swallowed))
    await asyncio.sleep(0)
    layerwatch.cancel(task)
    await asyncio.wait({task}, timeout=5)
    assert swallowed == [True]
    assert task.cancelled()
