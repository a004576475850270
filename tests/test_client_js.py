"""liverooms.js in headless Chromium, against a scripted fake WebSocket.

No server: the page and the module are served by Playwright's request
routing, and ``window.WebSocket`` is a fake whose sockets the test opens,
feeds frames and closes. The client runs with timings in milliseconds.
Skips without Chromium or Playwright (fails in CI).
"""

import json

import pytest

from .processes import ROOT

pytestmark = [pytest.mark.browser]

STATIC = ROOT / "django_liverooms" / "static" / "django_liverooms"
ORIGIN = "http://liverooms.test"
FAKE_WEBSOCKET = """
window.sockets = [];
class FakeWebSocket {
  constructor(url) {
    this.url = url; this.readyState = 0; this.sent = []; sockets.push(this);
  }
  send(data) { this.sent.push(JSON.parse(data)); }
  close() { this.readyState = 3; }
  open() { this.readyState = 1; this.onopen && this.onopen({}); }
  frame(f) { this.onmessage && this.onmessage({data: JSON.stringify(f)}); }
  shut(code) { this.readyState = 3; this.onclose && this.onclose({code}); }
}
FakeWebSocket.CONNECTING = 0; FakeWebSocket.OPEN = 1; FakeWebSocket.CLOSED = 3;
window.WebSocket = FakeWebSocket;
window.log = [];
window.start = (options) => {
  const c = window.lr.connect({
    url: "/ws/chat/lobby/", historyUrl: "/live/chat/lobby/messages",
    backoffBase: 20, backoffCap: 40, abuseDelay: 60000, pingInterval: 100000,
    pongTimeout: 100, gapTimeout: 100000, ackTimeout: 100000, ...options,
  });
  for (const type of ["status", "message", "ack", "failed", "reset", "error", "presence"]) {
    c.addEventListener(type, (e) => log.push([type, e.detail]));
  }
  window.c = c;
  return c;
};
window.welcome = (seq) => ({type: "welcome", stream: "chat", slug: "lobby", seq,
  user: {id: 1, name: "alice"}, can_post: true, can_moderate: false, version: 1});
window.msg = (seq, extra) => ({type: "message", seq, id: seq, slug: "lobby", body: "m" + seq,
  author: {id: 2, name: "bob"}, created: "2026-01-01T00:00:00Z", client_id: null, ...extra});
window.seqs = () => log.filter(([t]) => t === "message").map(([, f]) => f.seq);
"""


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    history_pages = []

    def serve(route):
        path = route.request.url[len(ORIGIN) :]
        if path.startswith("/static/"):
            body = (STATIC / path.rsplit("/", 1)[1]).read_text()
            return route.fulfill(body=body, content_type="text/javascript")
        if path.startswith(("/live/chat/lobby/messages", "/live/chat/lobby/search")):
            history_pages.append(path)
            answer = page.history.pop(0)
            status = answer.pop("status", 200) if isinstance(answer, dict) else 200
            return route.fulfill(status=status, json=answer, content_type="application/json")
        return route.fulfill(body="<!doctype html><title>t</title>", content_type="text/html")

    page.history = []
    page.history_requests = history_pages
    page.route(f"{ORIGIN}/**", serve)
    page.add_init_script(FAKE_WEBSOCKET)
    page.goto(f"{ORIGIN}/")
    page.evaluate("async () => { window.lr = await import('/static/liverooms.js'); }")
    yield page
    context.close()


def run(page, script):
    return page.evaluate(f"() => {{ {script} }}")


def connect_and_welcome(page, seq=0, items=(), **options):
    run(page, f"start({json.dumps(options)})")
    run(page, "sockets[0].open()")
    run(page, f"sockets[0].frame(welcome({seq}))")
    items = ", ".join(f"msg({i})" for i in items)
    run(page, f"sockets[0].frame({{type: 'history', items: [{items}], complete: true}})")


def test_the_socket_url_follows_the_page(page):
    run(page, "start({})")
    assert run(page, "return sockets[0].url") == "ws://liverooms.test/ws/chat/lobby/"
    assert (
        run(page, "return lr.socketUrl('wss://other.test/ws/', 7)")
        == "wss://other.test/ws/?after=7"
    )


def test_events_come_once_each_in_seq_order(page):
    connect_and_welcome(page, 2, [1, 2])
    run(page, "sockets[0].frame(msg(2))")  # a duplicate
    run(page, "sockets[0].frame(msg(4))")  # early: held
    assert run(page, "return seqs()") == [1, 2]
    run(page, "sockets[0].frame(msg(3))")
    assert run(page, "return seqs()") == [1, 2, 3, 4]
    assert run(page, "return c.lastSeq") == 4


def test_a_closed_socket_reconnects_and_resumes_after_the_last_seq(page):
    connect_and_welcome(page, 5, [4, 5])
    run(page, "sockets[0].shut(1006)")
    offline = [d for t, d in run(page, "return log") if t == "status" and d["state"] == "offline"]
    assert offline == [
        {
            "state": "offline",
            "transport": "websocket",
            "code": 1006,
            "retryIn": offline[0]["retryIn"],
        }
    ]
    assert 0 <= offline[0]["retryIn"] <= 20  # backoffBase
    page.wait_for_function("sockets.length === 2")
    assert run(page, "return sockets[1].url") == "ws://liverooms.test/ws/chat/lobby/?after=5"
    run(page, "sockets[1].open(); sockets[1].frame(welcome(6))")
    run(page, "sockets[1].frame({type: 'history', items: [msg(5), msg(6)], complete: true})")
    assert run(page, "return seqs()") == [4, 5, 6]


@pytest.mark.parametrize("code", [4503, 4408])  # 4408: too slow, dropped by the server
def test_4503_and_4408_reconnect_with_backoff_and_resume(page, code):
    connect_and_welcome(page, 3, [3])
    run(page, f"sockets[0].shut({code})")
    # The first status after the close (the 20 ms retry may have begun since).
    status = run(page, "return log.filter(([t, d]) => t === 'status' && d.code).at(-1)")[1]
    assert status["state"] == "offline" and status["code"] == code
    assert 0 <= status["retryIn"] <= 20  # backoffBase, first attempt
    page.wait_for_function("sockets.length === 2")
    assert run(page, "return sockets[1].url").endswith("?after=3")
    assert run(page, "return lr.CLOSE_TOO_SLOW") == 4408


@pytest.mark.parametrize("code", [4403, 4404])
def test_4403_and_4404_stop(page, code):
    connect_and_welcome(page)
    run(page, f"sockets[0].shut({code})")
    assert run(page, "return log.at(-1)")[1]["state"] == "closed"
    assert run(page, "return log.at(-1)")[1]["code"] == code
    page.wait_for_timeout(200)  # ten backoff periods: no new socket
    assert run(page, "return sockets.length") == 1


def test_4429_backs_off_longer(page):
    connect_and_welcome(page)
    run(page, "sockets[0].shut(4429)")
    status = run(page, "return log.at(-1)")[1]
    assert status["state"] == "offline" and status["retryIn"] >= 60000
    page.wait_for_timeout(200)
    assert run(page, "return sockets.length") == 1


def test_backoff_grows_with_full_jitter_under_the_cap(page):
    delays = run(
        page,
        "const d = []; for (let a = 0; a < 8; a++) for (let i = 0; i < 200; i++)"
        " d.push([a, lr.backoffDelay(a, 1000, 30000)]); return d;",
    )
    by_attempt = {}
    for attempt, delay in delays:
        by_attempt.setdefault(attempt, []).append(delay)
    for attempt, values in by_attempt.items():
        ceiling = min(30000, 1000 * 2**attempt)
        assert all(0 <= v <= ceiling for v in values)
        assert max(values) > ceiling / 2 and min(values) < ceiling / 2  # spread, not fixed
    assert max(by_attempt[7]) <= 30000


def test_sends_wait_for_the_socket_and_go_again_with_the_same_client_id(page):
    run(page, "start({})")
    client_id = run(page, "return c.send('hello')")
    assert run(page, "return sockets[0].sent") == []  # offline: queued
    run(page, "sockets[0].open(); sockets[0].frame(welcome(0))")
    run(page, "sockets[0].frame({type: 'history', items: [], complete: true})")
    sent = {"type": "message", "body": "hello", "client_id": client_id}
    assert run(page, "return sockets[0].sent") == [sent]

    run(page, "sockets[0].shut(1006)")  # lost before the acknowledgement
    page.wait_for_function("sockets.length === 2")
    run(page, "sockets[1].open(); sockets[1].frame(welcome(0))")
    run(page, "sockets[1].frame({type: 'history', items: [], complete: true})")
    assert run(page, "return sockets[1].sent") == [sent]

    run(page, f"sockets[1].frame(msg(1, {{client_id: {json.dumps(client_id)}}}))")
    assert ["ack", client_id] in run(page, "return log.map(([t, d]) => [t, d.client_id])")
    assert run(page, "return c.pending.size") == 0
    run(page, "sockets[1].shut(1006)")
    page.wait_for_function("sockets.length === 3")
    run(page, "sockets[2].open(); sockets[2].frame(welcome(1))")
    run(page, "sockets[2].frame({type: 'history', items: [], complete: true})")
    assert run(page, "return sockets[2].sent") == []


def test_a_refused_send_is_given_back(page):
    connect_and_welcome(page)
    client_id = run(page, "return c.send('x'.repeat(5000))")
    run(
        page,
        f"sockets[0].frame({{type: 'error', code: 'too_long', detail: 'Too long.', client_id: {json.dumps(client_id)}}})",
    )
    failed = [d for t, d in run(page, "return log") if t == "failed"]
    assert failed == [
        {"client_id": client_id, "body": "x" * 5000, "code": "too_long", "detail": "Too long."}
    ]
    assert run(page, "return c.pending.size") == 0


@pytest.mark.parametrize("code", ["rejected", "slow_mode"])
def test_a_send_refused_by_the_policy_or_slow_mode_is_not_sent_again(page, code):
    connect_and_welcome(page, ackTimeout=100)
    # Refused in the same task as the send, so no ackTimeout can pass in between.
    refusal = {"type": "error", "code": code, "detail": "No."}
    run(
        page,
        f"const id = c.send('darn'); sockets[0].frame({{...{json.dumps(refusal)}, client_id: id}})",
    )
    assert [d["code"] for t, d in run(page, "return log") if t == "failed"] == [code]
    page.wait_for_timeout(500)  # several ackTimeouts: nothing is resent
    assert [f["type"] for f in run(page, "return sockets[0].sent")] == ["message"]


def test_a_missing_seq_makes_it_resume(page):
    connect_and_welcome(page, 2, [1, 2], gapTimeout=100)
    run(page, "sockets[0].frame(msg(4))")  # 3 never comes
    page.wait_for_function("sockets.length === 2")
    assert run(page, "return sockets[1].url").endswith("?after=2")


def test_a_stale_socket_is_replaced(page):
    connect_and_welcome(page, pingInterval=50)
    page.wait_for_function("sockets[0].sent.some(f => f.type === 'ping')")
    page.wait_for_function("sockets.length === 2")  # no pong within pongTimeout


def test_a_pong_keeps_the_socket(page):
    run(page, "start({pingInterval: 50, pongTimeout: 1000})")
    # The server answers every ping at once: set up before the welcome, so
    # that the first ping (50 ms after it) cannot go out unanswered.
    run(
        page,
        "const s = sockets[0], send = s.send.bind(s);"
        " s.send = (data) => { send(data); setTimeout(() => s.frame({type: 'pong'})); };",
    )
    run(page, "sockets[0].open()")
    run(page, "sockets[0].frame(welcome(0))")
    run(page, "sockets[0].frame({type: 'history', items: [], complete: true})")
    page.wait_for_function("sockets[0].sent.filter(f => f.type === 'ping').length >= 3")
    assert run(page, "return sockets.length") == 1


def test_coming_back_online_reconnects_at_once(page):
    connect_and_welcome(page, backoffBase=100000, backoffCap=100000)
    run(page, "sockets[0].shut(1006)")
    page.wait_for_timeout(50)
    assert run(page, "return sockets.length") == 1
    run(page, "window.dispatchEvent(new Event('online'))")
    assert run(page, "return sockets.length") == 2


def test_an_incomplete_resume_pages_the_http_history(page):
    connect_and_welcome(page, 1, [1])
    run(page, "sockets[0].shut(1006)")
    page.wait_for_function("sockets.length === 2")
    page.history.extend(
        [
            {
                "items": [
                    {
                        "type": "message",
                        "seq": 3,
                        "id": 3,
                        "body": "m3",
                        "author": {"id": 2, "name": "bob"},
                        "created": "2026-01-01T00:00:00Z",
                        "client_id": None,
                    }
                ],
                "complete": False,
            },
            {
                "items": [
                    {
                        "type": "message",
                        "seq": 4,
                        "id": 4,
                        "body": "m4",
                        "author": {"id": 2, "name": "bob"},
                        "created": "2026-01-01T00:00:00Z",
                        "client_id": None,
                    }
                ],
                "complete": True,
            },
        ]
    )
    run(page, "sockets[1].open(); sockets[1].frame(welcome(5))")
    run(page, "sockets[1].frame({type: 'history', items: [msg(2)], complete: false})")
    run(page, "sockets[1].frame(msg(5))")  # live, while the pages load
    page.wait_for_function("seqs().length === 5")
    assert run(page, "return seqs()") == [1, 2, 3, 4, 5]
    assert page.history_requests == [
        "/live/chat/lobby/messages?after=2&limit=200",
        "/live/chat/lobby/messages?after=3&limit=200",
    ]


def test_load_older_pages_back_from_the_oldest_seq_without_emitting(page):
    connect_and_welcome(page, 12, [11, 12])
    author = {"id": 2, "name": "bob"}
    older = [
        {"type": "message", "seq": seq, "id": seq, "slug": "lobby", "body": "old", "author": author}
        for seq in (9, 10)
    ]
    page.history.extend([{"items": older, "complete": False}, {"items": [], "complete": True}])
    first = page.evaluate("() => c.loadOlder({limit: 2})")
    assert [f["seq"] for f in first["items"]] == [9, 10] and first["complete"] is False
    assert run(page, "return c.oldestSeq") == 9
    second = page.evaluate("() => c.loadOlder()")
    assert second == {"items": [], "complete": True}
    assert page.history_requests == [
        "/live/chat/lobby/messages?before=11&limit=2",
        "/live/chat/lobby/messages?before=9&limit=200",
    ]
    assert run(page, "return seqs()") == [11, 12]  # returned, not emitted as live frames


def test_search_pages_back_by_message_id_and_reports_refusals(page):
    connect_and_welcome(page, 3, [1, 2, 3])
    found = [{"type": "message", "seq": 3, "id": 30, "body": "goal!"}]
    refused = {"status": 400, "error": {"code": "bad_frame", "detail": "q must be 1 to 200"}}
    page.history.extend([{"items": found, "complete": False}, refused])
    first = page.evaluate("() => c.search('goal & more', {limit: 1})")
    assert first == {"items": found, "complete": False}
    error = page.evaluate(
        "() => c.search('', {before: 30}).catch((e) => [e.code, e.detail, e.status])"
    )
    assert error == ["bad_frame", "q must be 1 to 200", 400]
    assert page.history_requests == [
        "/live/chat/lobby/search?q=goal+%26+more&limit=1",
        "/live/chat/lobby/search?q=&limit=20&before=30",
    ]


def test_history_gone_resets(page):
    connect_and_welcome(page, 2, [1, 2])
    run(page, "sockets[0].shut(1006)")
    page.wait_for_function("sockets.length === 2")
    run(page, "sockets[1].open(); sockets[1].frame(welcome(90))")
    run(
        page, "sockets[1].frame({type: 'error', code: 'history_gone', detail: '', client_id: null})"
    )
    run(page, "sockets[1].frame({type: 'history', items: [msg(89), msg(90)], complete: false})")
    events = [t for t, _ in run(page, "return log") if t in ("reset", "message")]
    assert events == ["message", "message", "reset", "message", "message"]
    assert run(page, "return seqs()") == [1, 2, 89, 90]
    assert page.history_requests == []  # the latest page, not a gap to fill


def test_without_websockets_a_live_blog_falls_back_to_sse(page):
    page.route(
        f"{ORIGIN}/live/liveblog/match-day/stream**",
        lambda route: route.fulfill(
            body=(
                'data: {"type": "welcome", "stream": "liveblog", "slug": "match-day", "seq": 1,'
                ' "user": {"id": null, "name": "Guest"}, "can_post": false, "can_moderate": false}\n\n'
                'id: 1\ndata: {"type": "entry", "seq": 1, "id": 1, "slug": "match-day", "title": "T",'
                ' "body": "<p>b</p>", "author": {"id": 1, "name": "ed"}, "published": "2026-01-01T00:00:00Z"}\n\n'
            ),
            content_type="text/event-stream",
        ),
    )
    run(page, "delete window.WebSocket")
    run(
        page,
        "start({url: '/ws/liveblog/match-day/', streamUrl: '/live/liveblog/match-day/stream'});"
        " c.addEventListener('entry', (e) => log.push(['entry', e.detail]))",
    )
    page.wait_for_function("log.some(([t]) => t === 'entry')")
    assert run(page, "return c.transport") == "sse"
    assert [d["title"] for t, d in run(page, "return log") if t == "entry"] == ["T"]


def test_a_page_shown_again_reconnects_at_once(page):
    connect_and_welcome(page, backoffBase=100000, backoffCap=100000)
    run(page, "sockets[0].shut(1006)")
    assert run(page, "return document.visibilityState") == "visible"  # a headless page is
    run(page, "document.dispatchEvent(new Event('visibilitychange'))")
    assert run(page, "return sockets.length") == 2


SSE_WELCOME = (
    'data: {"type": "welcome", "stream": "liveblog", "slug": "match-day", "seq": 0,'
    ' "user": {"id": null, "name": "Guest"}, "can_post": false, "can_moderate": false}\n\n'
)


def test_falling_back_to_sse_warns_in_the_console(page):
    warnings = []
    page.on("console", lambda m: m.type == "warning" and warnings.append(m.text))
    page.route(
        f"{ORIGIN}/live/liveblog/match-day/stream**",
        lambda route: route.fulfill(body=SSE_WELCOME, content_type="text/event-stream"),
    )
    run(
        page,
        "start({url: '/ws/liveblog/match-day/', streamUrl: '/live/liveblog/match-day/stream'})",
    )
    run(page, "sockets[0].shut(1006)")  # two handshakes refused (runserver without daphne)
    page.wait_for_function("sockets.length === 2")
    assert warnings == []  # one failure is not enough to give up on WebSockets
    run(page, "sockets[1].shut(1006)")
    page.wait_for_function("c.transport === 'sse'")
    [warning] = warnings
    assert "falling back to Server-Sent Events" in warning
    assert "/ws/liveblog/match-day/" in warning and "/live/liveblog/match-day/stream" in warning
    assert "2 failed handshakes" in warning


# widgets.js: which messages the chat widget shows as the reader's own ----------

STRINGS = {
    key: key + " {name}{count}{seconds}"
    for key in [
        "cannot_post", "closed_forbidden", "closed_missing", "deleted", "edited", "error",
        "more", "online", "open_sse", "placeholder", "placeholder_offline", "readers",
        "retrying", "sending", "typing", "you_are",
        "actions", "edit", "delete", "mute", "unmute", "edit_label", "confirm_delete", "muted",
        "unmuted", "not_connected", "error_forbidden", "error_too_long", "error_post_forbidden",
        "report", "report_reason", "flagged",
    ]
}  # fmt: skip


def mount_chat(page, user, can_post=True, can_moderate=False):
    config = {
        "strings": STRINGS,
        "websocket": "/ws/chat/lobby/",
        "history": "/live/chat/lobby/messages",
    }
    run(
        page,
        f"""document.body.innerHTML = `<section data-liverooms="chat">
              <ol data-liverooms-messages></ol>
              <form data-liverooms-form><textarea data-liverooms-input></textarea><button>Send</button></form>
              <p data-liverooms-error></p>
              <script type="application/json">{json.dumps(config)}</script></section>`""",
    )
    page.evaluate("async () => { await import('/static/widgets.js'); }")
    run(page, "sockets[0].open()")
    welcome = {"type": "welcome", "stream": "chat", "slug": "lobby", "seq": 0, "user": user}
    welcome.update(can_post=can_post, can_moderate=can_moderate, version=1)
    run(page, f"sockets[0].frame({json.dumps(welcome)})")
    run(page, "sockets[0].frame({type: 'history', items: [], complete: true})")


def send_from_the_form(page, body):
    run(
        page,
        f"""const form = document.querySelector('[data-liverooms-form]');
            form.querySelector('textarea').value = {json.dumps(body)};
            form.requestSubmit();""",
    )
    return run(page, "return sockets[0].sent.filter((f) => f.type === 'message').at(-1).client_id")


def mine(page):
    return run(
        page,
        """return Array.from(document.querySelectorAll('.liverooms-message:not(.liverooms-pending)'),
              (li) => [li.querySelector('.liverooms-body').textContent,
                       li.classList.contains('liverooms-mine')]);""",
    )


def test_a_guest_bearing_my_guest_name_is_not_me(page):
    me = {"id": None, "name": "Guest 1a2b3c4d"}
    mount_chat(page, me)
    client_id = send_from_the_form(page, "from me")
    run(
        page,
        f"sockets[0].frame(msg(1, {{body: 'from me', author: {json.dumps(me)}, client_id: '{client_id}'}}))",
    )
    # An impostor with the same name, then one also copying my client_id.
    run(page, f"sockets[0].frame(msg(2, {{body: 'same name', author: {json.dumps(me)}}}))")
    run(
        page,
        f"sockets[0].frame(msg(3, {{body: 'copied', author: {json.dumps(me)}, client_id: '{client_id}'}}))",
    )
    assert mine(page) == [["from me", True], ["same name", False], ["copied", False]]


def test_a_signed_in_users_messages_are_mine_by_author_id(page):
    mount_chat(page, {"id": 1, "name": "alice"})
    run(page, "sockets[0].frame(msg(1, {body: 'other tab', author: {id: 1, name: 'alice'}}))")
    run(page, "sockets[0].frame(msg(2, {body: 'namesake', author: {id: 7, name: 'alice'}}))")
    run(page, "sockets[0].frame(msg(3, {body: 'guest', author: {id: null, name: 'alice'}}))")
    assert mine(page) == [["other tab", True], ["namesake", False], ["guest", False]]


def test_redacted_and_edited_stored_messages_show_as_deleted_and_edited(page):
    mount_chat(page, {"id": 1, "name": "alice"})
    bob = {"id": 2, "name": "bob"}
    run(page, f"sockets[0].frame(msg(1, {{body: '', redacted: true, author: {json.dumps(bob)}}}))")
    run(
        page,
        f"sockets[0].frame(msg(2, {{body: 'fixed', edited: '2026-12-01T10:00:00+00:00', author: {json.dumps(bob)}}}))",
    )
    rows = run(
        page,
        """return Array.from(document.querySelectorAll('.liverooms-message'),
              (li) => [li.querySelector('.liverooms-body').textContent,
                       li.classList.contains('liverooms-deleted'),
                       !!li.querySelector('.liverooms-edited')]);""",
    )
    assert rows == [["deleted {name}{count}{seconds}", True, False], ["fixed", False, True]]


# The moderation frames: the client's methods, the chat widget's message menu ---------


def test_moderation_methods_send_the_protocols_frames(page):
    run(page, "start({})")
    # Not connected: not sent, and not queued (there is no client_id to ack them).
    assert (
        run(page, "return [c.editMessage(1, 'x'), c.deleteMessage(1), c.mute(2), c.unmute(2)]")
        == [False] * 4
    )
    run(page, "sockets[0].open(); sockets[0].frame(welcome(0))")
    run(page, "sockets[0].frame({type: 'history', items: [], complete: true})")
    assert run(page, "return sockets[0].sent") == []
    sent = run(
        page,
        "return [c.editMessage(7, 'fixed'), c.deleteMessage(7), c.mute(2), c.mute(2, 10),"
        " c.unmute(2)]",
    )
    assert sent == [True] * 5
    assert run(page, "return sockets[0].sent") == [
        {"type": "message.edit", "id": 7, "body": "fixed"},
        {"type": "message.delete", "id": 7},
        {"type": "mute", "user_id": 2, "minutes": None},
        {"type": "mute", "user_id": 2, "minutes": 10},
        {"type": "unmute", "user_id": 2},
    ]


def test_reactions_and_replies_send_the_protocols_frames(page):
    run(page, "start({})")
    assert run(page, "return c.react(7, '👍')") is False  # not connected: not queued
    reply = run(page, "return c.send('at three', 'r1', {replyTo: 7})")  # queued
    run(page, "sockets[0].open(); sockets[0].frame(welcome(0))")
    run(page, "sockets[0].frame({type: 'history', items: [], complete: true})")
    assert run(page, "return [c.react(7, '👍'), c.react(7, '👍', false)]") == [True, True]
    assert run(page, "return sockets[0].sent") == [
        {"type": "message", "body": "at three", "client_id": reply, "reply_to": 7},
        {"type": "message.react", "id": 7, "emoji": "👍", "on": True},
        {"type": "message.react", "id": 7, "emoji": "👍", "on": False},
    ]


ALICE = {"id": 1, "name": "alice"}
BOB = {"id": 2, "name": "bob"}
GUEST = {"id": None, "name": "Guest 1a2b3c4d"}


def show(page, seq, body, author, **extra):
    frame = {"body": body, "author": author, **extra}
    run(page, f"sockets[0].frame(msg({seq}, {json.dumps(frame)}))")


def item(body):
    return (
        "[...document.querySelectorAll('.liverooms-message')]"
        f".find((li) => li.querySelector('.liverooms-body').textContent === {json.dumps(body)})"
    )


def offered(page, body):
    """The actions the menu of the message showing ``body`` offers ([]: no menu)."""
    return run(
        page,
        f"""const li = {item(body)};
            const toggle = li.querySelector('.liverooms-menu-button');
            if (!toggle || toggle.hidden) return [];
            toggle.click();
            const actions = Array.from(li.querySelectorAll('.liverooms-menu-item'), (b) => b.dataset.action);
            toggle.click();
            return actions;""",
    )


def choose(page, body, action):
    run(
        page,
        f"""const li = {item(body)};
            li.querySelector('.liverooms-menu-button').click();
            li.querySelector('.liverooms-menu-item[data-action="{action}"]').click();""",
    )


def moderation_sent(page):
    """What the page sent but messages and read markers (the widget marks what it shows read)."""
    return run(page, "return sockets[0].sent.filter((f) => !['message', 'read'].includes(f.type))")


@pytest.mark.parametrize(
    ("user", "can_post", "can_moderate", "expected"),
    [
        # own, another user's, a guest's; signed-in readers report others' (a flag)
        (ALICE, True, False, [["edit", "delete"], ["report"], ["report"]]),
        (ALICE, False, False, [[], ["report"], ["report"]]),  # may read, not post (muted, say)
        (
            ALICE,
            True,
            True,
            [["edit", "delete"], ["delete", "mute", "unmute", "report"], ["delete", "report"]],
        ),
        (
            ALICE,
            False,
            True,
            [["edit", "delete"], ["delete", "mute", "unmute", "report"], ["delete", "report"]],
        ),
        # A guest's messages have no author id: the server lets no guest change them.
        (GUEST, True, False, [[], [], []]),
    ],
)
def test_the_message_menu_offers_what_the_server_allows(
    page, user, can_post, can_moderate, expected
):
    mount_chat(page, user, can_post=can_post, can_moderate=can_moderate)
    if user["id"] is None:
        client_id = send_from_the_form(page, "own")
        show(page, 1, "own", user, client_id=client_id)
        assert mine(page) == [["own", True]]
    else:
        show(page, 1, "own", user)
    show(page, 2, "theirs", BOB)
    show(page, 3, "a guest's", GUEST)
    assert [offered(page, body) for body in ["own", "theirs", "a guest's"]] == expected
    show(page, 4, "", BOB, redacted=True)  # deleted since: no menu
    assert run(page, "return document.querySelectorAll('.liverooms-actions').length") == 3


def test_a_welcome_that_takes_posting_away_takes_the_menu_with_it(page):
    mount_chat(page, ALICE)
    show(page, 1, "own", ALICE)
    assert offered(page, "own") == ["edit", "delete"]
    run(page, "sockets[0].shut(1006)")
    page.wait_for_function("sockets.length === 2", timeout=5000)
    welcome = {"type": "welcome", "stream": "chat", "slug": "lobby", "seq": 1, "user": ALICE}
    welcome.update(can_post=False, can_moderate=False, version=1)
    run(page, f"sockets[1].open(); sockets[1].frame({json.dumps(welcome)})")
    assert offered(page, "own") == []


def test_edit_in_place_with_the_keyboard(page):
    mount_chat(page, ALICE)
    show(page, 1, "helo\nworld", ALICE)
    toggle = page.locator(".liverooms-menu-button")
    assert toggle.get_attribute("aria-label") == "actions alice"
    assert toggle.get_attribute("aria-expanded") == "false"
    toggle.focus()
    page.keyboard.press("Enter")
    assert toggle.get_attribute("aria-expanded") == "true"
    focused = "return document.activeElement.dataset.action || document.activeElement.className"
    assert run(page, focused) == "edit"
    page.keyboard.press("ArrowRight")
    assert run(page, focused) == "delete"
    page.keyboard.press("ArrowDown")  # round again
    assert run(page, focused) == "edit"
    page.keyboard.press("Escape")
    assert run(page, focused) == "liverooms-menu-button"
    assert page.locator(".liverooms-menu").is_hidden()

    # Escape cancels: nothing sent, the body is back.
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")  # "Edit"
    editor = page.locator("textarea.liverooms-edit")
    assert editor.input_value() == "helo\nworld"  # the Enter that chose "Edit" is not typed
    assert run(page, focused) == "liverooms-edit"
    page.keyboard.type(" and more")
    page.keyboard.press("Escape")
    assert editor.count() == 0 and page.locator(".liverooms-body").is_visible()
    assert moderation_sent(page) == []
    assert run(page, focused) == "liverooms-menu-button"

    # Enter saves; the text shown changes when the server's message.edited comes.
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    editor.fill("hello")
    page.keyboard.press("Shift+Enter")  # a new line, as in the send box
    page.keyboard.type("world")
    page.keyboard.press("Enter")
    assert moderation_sent(page) == [{"type": "message.edit", "id": 1, "body": "hello\nworld"}]
    assert editor.count() == 0
    edited = {"type": "message.edited", "seq": 2, "id": 1, "body": "hello\nworld"}
    run(page, f"sockets[0].frame({json.dumps({**edited, 'edited': '2026-01-01T00:01:00Z'})})")
    assert page.locator(".liverooms-body").text_content() == "hello\nworld"
    # The "edited" mark goes before the menu.
    classes = run(
        page,
        "return Array.from(document.querySelector('.liverooms-message').children, (n) => n.className)",
    )
    assert classes[-2:] == ["liverooms-edited", "liverooms-actions"]

    # Unchanged or blank text sends nothing.
    page.keyboard.press("Enter")  # the menu (focus went back to its button)
    page.keyboard.press("Enter")  # "Edit"
    page.keyboard.press("Enter")  # saved unchanged
    assert editor.count() == 0
    choose(page, "hello\nworld", "edit")
    editor.fill("   ")
    page.keyboard.press("Enter")
    assert len(moderation_sent(page)) == 1


def test_delete_asks_first_and_a_deleted_message_loses_its_menu(page):
    mount_chat(page, ALICE)
    show(page, 1, "oops", ALICE)
    answers = [False, True]
    dialogs = []

    def answer(dialog):
        dialogs.append(dialog.message)
        if answers.pop(0):
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", answer)
    choose(page, "oops", "delete")
    assert moderation_sent(page) == []
    choose(page, "oops", "delete")
    assert dialogs == ["confirm_delete {name}{count}{seconds}"] * 2
    assert moderation_sent(page) == [{"type": "message.delete", "id": 1}]
    run(page, "document.querySelector('[data-liverooms-messages]').tabIndex = 0")
    run(page, "document.querySelector('.liverooms-menu-button').focus()")
    run(page, "sockets[0].frame({type: 'message.deleted', seq: 2, id: 1})")
    assert run(page, "return document.querySelectorAll('.liverooms-actions').length") == 0
    assert run(page, "return document.activeElement.matches('[data-liverooms-messages]')")
    assert page.locator(".liverooms-deleted .liverooms-body").text_content().startswith("deleted")


def test_mute_and_unmute_answers_and_errors_are_shown(page):
    mount_chat(page, ALICE, can_moderate=True)
    show(page, 1, "spam", BOB)
    error = page.locator("[data-liverooms-error]")
    choose(page, "spam", "mute")
    assert moderation_sent(page) == [{"type": "mute", "user_id": 2, "minutes": None}]
    run(page, "sockets[0].frame({type: 'muted', user_id: 2, until: null})")
    assert error.text_content() == "muted bob"
    assert error.get_attribute("class") == "liverooms-notice"
    assert offered(page, "spam") == ["delete", "unmute", "report"]  # known muted now
    choose(page, "spam", "unmute")
    assert moderation_sent(page)[-1] == {"type": "unmute", "user_id": 2}
    run(page, "sockets[0].frame({type: 'unmuted', user_id: 2})")
    assert error.text_content() == "unmuted bob"
    assert offered(page, "spam") == ["delete", "mute", "report"]

    # Refusals come as error frames without a client_id.
    run(
        page, "sockets[0].frame({type: 'error', code: 'forbidden', detail: 'No.', client_id: null})"
    )
    assert error.text_content().startswith("error_forbidden")
    assert error.get_attribute("class") == ""
    run(
        page,
        "sockets[0].frame({type: 'error', code: 'too_long', detail: 'Long.', client_id: null})",
    )
    assert error.text_content().startswith("error_too_long")

    # Not connected: said so, nothing sent.
    run(page, "sockets[0].shut(1006)")
    choose(page, "spam", "mute")
    assert error.text_content().startswith("not_connected")
    assert len(moderation_sent(page)) == 2


def test_a_send_refused_as_forbidden_shows_the_muted_notice(page):
    mount_chat(page, ALICE)
    client_id = send_from_the_form(page, "am I muted?")
    run(
        page,
        "sockets[0].frame({type: 'error', code: 'forbidden', detail: 'You may not post in this room.',"
        f" client_id: {json.dumps(client_id)}}})",
    )
    assert page.locator("[data-liverooms-error]").text_content().startswith("error_post_forbidden")
    assert page.locator("[data-liverooms-input]").input_value() == "am I muted?"


# Flags (issue 16; moderation.py): the client's flag(), the menu's "Report" ---------


def test_flag_sends_the_frame_now_or_not_at_all(page):
    run(page, "start({})")
    assert run(page, "return c.flag(7, 'spam')") is False  # not queued
    run(page, "sockets[0].open(); sockets[0].frame(welcome(0))")
    run(page, "sockets[0].frame({type: 'history', items: [], complete: true})")
    assert run(page, "return [c.flag(7, 'spam'), c.flag(8)]") == [True, True]
    assert run(page, "return sockets[0].sent") == [
        {"type": "flag", "id": 7, "reason": "spam"},
        {"type": "flag", "id": 8, "reason": ""},
    ]


def test_report_asks_for_a_reason_and_thanks_on_flagged(page):
    mount_chat(page, ALICE)
    show(page, 1, "spam", BOB)
    answers = [None, "advert"]  # cancelled, then a reason
    prompts = []

    def answer(dialog):
        prompts.append(dialog.message)
        reason = answers.pop(0)
        if reason is None:
            dialog.dismiss()
        else:
            dialog.accept(reason)

    page.on("dialog", answer)
    choose(page, "spam", "report")
    assert moderation_sent(page) == []
    choose(page, "spam", "report")
    assert prompts == ["report_reason {name}{count}{seconds}"] * 2
    assert moderation_sent(page) == [{"type": "flag", "id": 1, "reason": "advert"}]
    run(page, "sockets[0].frame({type: 'flagged', id: 1})")
    error = page.locator("[data-liverooms-error]")
    assert error.text_content().startswith("flagged")
    assert error.get_attribute("class") == "liverooms-notice"
