"""Batched reads (reads.py): a reconnect storm shares its database hops and
reads, and each reader still gets exactly its own welcome and history."""

import asyncio

import pytest
from channels.db import database_sync_to_async

from django_liverooms import reads

from .factories import make_blog, publish_entry
from .test_consumers import client

pytestmark = pytest.mark.django_db(transaction=True)


def test_one_batch_reads_each_stream_seq_and_resume_point_once(django_assert_num_queries):
    blog = make_blog()
    for n in range(5):
        publish_entry(blog, title=f"e{n}")
    batch = reads.Batch()
    # The stream by slug once, its seq once, one read per distinct resume point.
    with django_assert_num_queries(4):
        found = [batch.stream("liveblog", "match-day") for _ in range(20)]
        resumed = [batch.history(blog, 3, 50) for _ in range(20)]
        fresh = [batch.history(blog, None, 2) for _ in range(20)]
    assert all(stream.pk == blog.pk for stream in found)
    assert {h.seqs for h in resumed} == {(4, 5)} and resumed[0].through == 5
    assert {h.seqs for h in fresh} == {(4, 5)} and fresh[0].complete is False


def test_a_failing_call_fails_alone():
    def fails(batch):
        raise ValueError("no")

    outcomes = reads.run_batch([(fails, (), None), (lambda batch: 7, (), None)])
    assert outcomes[0][0] is False and isinstance(outcomes[0][1], ValueError)
    assert outcomes[1] == (True, 7)


async def test_connections_that_open_together_share_database_hops(monkeypatch):
    blog = await database_sync_to_async(make_blog)()
    for n in range(3):
        await database_sync_to_async(publish_entry)(blog, title=f"e{n}")
    hops = []
    real = reads.run_batch

    def counting(calls):
        hops.append(len(calls))
        return real(calls)

    monkeypatch.setattr(reads, "run_batch", counting)
    readers = [client("/ws/liveblog/match-day/?after=1") for _ in range(10)]
    opened = await asyncio.gather(*(reader.open() for reader in readers))
    for _welcome, history in opened:
        assert [item["seq"] for item in history["items"]] == [2, 3]
    assert sum(hops) == 20 and len(hops) < 20  # an open and a history read each
    for reader in readers:
        await reader.disconnect()


async def test_a_refused_connection_in_a_batch_does_not_fail_the_others():
    await database_sync_to_async(make_blog)()
    good = [client("/ws/liveblog/match-day/") for _ in range(3)]
    bad = client("/ws/liveblog/no-such-blog/")
    results = await asyncio.gather(*(c.open() for c in good), bad.close_code())
    assert results[-1] == 4404
    assert all(welcome["type"] == "welcome" for welcome, _ in results[:-1])
    for reader in good:
        await reader.disconnect()
