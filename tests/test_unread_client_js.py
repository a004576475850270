"""liverooms.js: markRead() and the "read" event (issue 16), in headless Chromium
against the scripted fake WebSocket of test_client_js.py."""

import pytest

# The page fixture is test_client_js.py's; tests take it by name (F811).
from .test_client_js import connect_and_welcome, page, run  # noqa: F401

# ruff: noqa: F811

pytestmark = [pytest.mark.browser]


def reads_sent(page, socket=0):
    return run(page, f"return sockets[{socket}].sent.filter((f) => f.type === 'read')")


def test_mark_read_sends_the_greatest_seq_once_per_interval(page):
    connect_and_welcome(page, 5, [4, 5], readInterval=100000)
    run(page, "c.addEventListener('read', (e) => log.push(['read', e.detail]))")
    assert run(page, "return c.markRead()") is True
    assert reads_sent(page) == [{"type": "read", "seq": 5}]
    for seq in (3, 7, 6):  # within the interval: held, the greatest kept
        run(page, f"c.markRead({seq})")
    assert reads_sent(page) == [{"type": "read", "seq": 5}]
    run(page, "sockets[0].frame({type: 'read', read_seq: 5})")
    assert run(page, "return c.readSeq") == 5
    assert run(page, "return log.filter(([t]) => t === 'read').map(([, f]) => f)") == [
        {"type": "read", "read_seq": 5}
    ]
    # A new socket (reconnect) sends what was held, once welcomed.
    run(page, "sockets[0].shut(4503)")
    page.wait_for_function("sockets.length === 2")
    run(page, "sockets[1].open(); sockets[1].frame({...welcome(7), read_seq: 5})")
    run(page, "sockets[1].frame({type: 'history', items: [], complete: true})")
    assert reads_sent(page, 1) == [{"type": "read", "seq": 7}]


def test_mark_read_after_the_interval_and_not_for_what_the_server_has(page):
    connect_and_welcome(page, 5, [4, 5], readInterval=50)
    run(page, "sockets[0].frame({type: 'read', read_seq: 3})")
    run(page, "c.markRead(3)")  # the server has it already
    assert reads_sent(page) == []
    run(page, "c.markRead(4); c.markRead(5)")
    page.wait_for_function("sockets[0].sent.filter((f) => f.type === 'read').length === 2")
    assert reads_sent(page) == [{"type": "read", "seq": 4}, {"type": "read", "seq": 5}]


def test_a_guest_has_no_read_marker(page):
    run(page, "start({})")
    run(page, "sockets[0].open()")
    run(page, "sockets[0].frame({...welcome(3), user: {id: null, name: 'Guest 1'}})")
    run(page, "sockets[0].frame({type: 'history', items: [], complete: true})")
    assert run(page, "return c.markRead(3)") is False
    assert reads_sent(page) == []
