"""A socket's outbox (outbox.py): frames in order, nobody waits for a slow reader."""

import asyncio

import pytest
from channels.layers import InMemoryChannelLayer
from django.test import override_settings

from django_liverooms import outbox as outbox_module
from django_liverooms.broadcast import Broadcast
from django_liverooms.fanout import Hub
from django_liverooms.outbox import Outbox, finish, start

from .test_fanout import GROUP, Member, until


def text(n):
    return {"type": "websocket.send", "text": f"frame {n}"}


class Server:
    """An ASGI server's send for one socket: it waits while ``writable`` is clear."""

    def __init__(self):
        self.sent = []
        self.writable = asyncio.Event()
        self.writable.set()

    async def send(self, message):
        await self.writable.wait()
        self.sent.append(message)


class Transport:
    """What _compat.server_transport finds behind uvicorn's and daphne's send."""

    def __init__(self, buffered=0):
        self.buffered_bytes = buffered
        self.aborted = False

    def buffered(self):
        return self.buffered_bytes

    def abort(self):
        self.aborted = True


async def test_a_send_that_does_not_wait_costs_no_task():
    server = Server()
    box = Outbox(server.send, on_slow=pytest.fail)
    for n in range(3):
        box.put(text(n))
    # Written before put() returned, in order, with no task in between.
    assert server.sent == [text(0), text(1), text(2)]
    assert box.writer is None


async def test_frames_wait_in_order_behind_a_send_that_waits():
    server = Server()
    server.writable.clear()
    box = Outbox(server.send, on_slow=pytest.fail)
    for n in range(4):
        box.put(text(n))
    await asyncio.sleep(0.01)
    assert server.sent == []
    assert box.waiting_size == sum(len(f"frame {n}") for n in (1, 2, 3))
    server.writable.set()
    await until(lambda: len(server.sent) == 4)
    assert server.sent == [text(n) for n in range(4)]
    await until(lambda: box.writer is None)
    box.put(text(4))  # idle again: written at once
    assert server.sent[-1] == text(4)


@override_settings(LIVEROOMS={"SEND_QUEUE_BYTES": 1024})
async def test_a_socket_over_its_byte_bound_is_too_slow_once():
    server = Server()
    server.writable.clear()
    slow = []
    box = Outbox(server.send, on_slow=lambda: slow.append(True))
    for _ in range(200):
        box.put({"type": "websocket.send", "text": "y" * 100})
    assert slow == [True]
    assert box.waiting is None and box.closed  # nothing kept, nothing more taken
    server.writable.set()
    await asyncio.sleep(0.01)
    assert server.sent == []  # the waiting write was cancelled


@override_settings(LIVEROOMS={"SEND_TIMEOUT": 0.05})
async def test_a_send_that_waits_past_the_deadline_is_too_slow():
    server = Server()
    server.writable.clear()
    slow = asyncio.Event()
    box = Outbox(server.send, on_slow=slow.set)
    box.put(text(0))
    await asyncio.wait_for(slow.wait(), 5)
    assert box.closed and box.writer is None


@override_settings(LIVEROOMS={"SEND_QUEUE_BYTES": 1024})
async def test_the_servers_own_buffer_counts_where_the_server_shows_it():
    # daphne's send never waits: its write buffer is where a slow reader's bytes pile up.
    server = Server()
    slow = []
    box = Outbox(server.send, on_slow=lambda: slow.append(True))
    box.transport = Transport(buffered=1000)
    box.put(text(0))
    assert server.sent == [text(0)] and not slow
    box.transport.buffered_bytes = 1025
    box.put(text(1))
    assert server.sent == [text(0)] and slow == [True]


async def test_nothing_is_sent_after_a_close():
    server = Server()
    box = Outbox(server.send, on_slow=pytest.fail)
    box.put({"type": "websocket.close", "code": 4403})
    box.put(text(1))
    assert server.sent == [{"type": "websocket.close", "code": 4403}]


async def test_a_send_to_a_closed_socket_ends_the_outbox_quietly():
    async def closed(message):
        raise OSError("gone")

    box = Outbox(closed, on_slow=pytest.fail)
    box.put(text(0))
    box.put(text(1))
    assert box.closed


async def test_close_now_drops_a_connection_whose_bytes_are_stuck(monkeypatch):
    monkeypatch.setattr(outbox_module, "CLOSE_GRACE", 0.01)
    server = Server()
    server.writable.clear()  # not even the close frame gets through
    box = Outbox(server.send, on_slow=pytest.fail)
    box.transport = Transport(buffered=5000)
    box.close_now(4408)
    await until(lambda: box.transport.aborted)
    assert server.sent == []


async def test_close_now_leaves_a_connection_that_took_its_close_frame(monkeypatch):
    monkeypatch.setattr(outbox_module, "CLOSE_GRACE", 0.01)
    server = Server()
    box = Outbox(server.send, on_slow=pytest.fail)
    box.transport = Transport(buffered=0)
    box.close_now(4408)
    assert server.sent == [{"type": "websocket.close", "code": 4408}]
    await asyncio.sleep(0.05)
    assert not box.transport.aborted


async def test_start_and_finish_run_an_awaitable_as_a_task_would():
    steps = []

    async def work():
        steps.append(1)
        await asyncio.sleep(0)
        steps.append(2)
        await asyncio.sleep(0.01)
        steps.append(3)
        return "done"

    suspended = start(work())
    assert steps == [1]
    await finish(suspended)
    assert steps == [1, 2, 3]

    async def quick():
        return 1

    assert start(quick()) is None


async def test_cancelling_finish_closes_the_awaitable():
    closed = []

    async def forever():
        try:
            await asyncio.Event().wait()
        finally:
            closed.append(True)

    task = asyncio.ensure_future(finish(start(forever())))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert closed == [True]


async def test_the_hub_never_waits_for_a_member_that_does_not_read():
    """The bug of issue 13: one member's send that never returns froze the hub."""
    layer = InMemoryChannelLayer()
    hub = Hub(layer)
    stuck, fine = Member("stuck"), Member("fine")
    never = asyncio.Event()

    async def never_returns(message):
        await never.wait()

    stuck.outbox = Outbox(never_returns, on_slow=lambda: None)
    for member in (stuck, fine):
        await hub.join(member)
        await hub.ready(member)
    for seq in range(1, 4):
        await layer.group_send(GROUP, Broadcast(GROUP, seq, f"f{seq}").event())
    await until(lambda: fine.got == ["f1", "f2", "f3"])
    assert stuck.outbox.writer is not None  # its first frame still waits
    for member in (stuck, fine):
        await hub.leave(member)
    stuck.outbox.too_slow()  # cancels its writer
