/**
 * django-liverooms browser client: one live stream (a chat room or a live
 * blog) over the wire protocol v1 (docs/protocol.md), kept open for as long
 * as the page wants it. No dependencies, no build step.
 *
 *   import {connect} from "/static/django_liverooms/liverooms.js";
 *
 *   const room = connect({url: "/ws/chat/lobby/", historyUrl: "/live/chat/lobby/messages"});
 *   room.addEventListener("message", (e) => show(e.detail));   // frames by type
 *   room.addEventListener("status", (e) => console.log(e.detail.state));
 *   room.send("Hello!");                                          // -> client_id
 *
 * What it does for you (docs/client.md):
 * - picks ws: or wss: from the page; reconnects with exponential backoff and
 *   full jitter; resumes with ?after=<last seq>; pages the HTTP history API
 *   when a resumed history is incomplete;
 * - delivers each stream event (a frame with a seq) once and in seq order,
 *   holding early frames briefly and resuming when one went missing;
 * - queues sends while offline and sends them again, with the same
 *   client_id, after every reconnect until the server acknowledges them;
 * - reconnects at once on the "online" event and when the page becomes
 *   visible, and pings an idle socket to find a dead one;
 * - stops on close codes 4403 and 4404, waits longer after 4429, and
 *   resumes after 4503 and 4408 (too slow), as after any other close;
 * - follows a live blog over Server-Sent Events (streamUrl) when WebSockets
 *   are unavailable, with a console warning saying so.
 */

/** Close codes of docs/protocol.md. */
export const CLOSE_FORBIDDEN = 4403;
export const CLOSE_NOT_FOUND = 4404;
export const CLOSE_ABUSE = 4429;
export const CLOSE_UNAVAILABLE = 4503;
export const CLOSE_TOO_SLOW = 4408; // reconnects and resumes like 4503

const DEFAULTS = {
  after: 0,
  backoffBase: 1000, // first retry within 1 s...
  backoffCap: 30000, // ...doubling up to 30 s
  abuseDelay: 60000, // at least this long after 4429
  pingInterval: 25000, // ping a socket that has been quiet this long
  pongTimeout: 10000, // and give up on it if nothing comes back in this
  connectTimeout: 10000, // a handshake slower than this counts as failed
  gapTimeout: 2000, // wait this long for a missing seq before resuming
  ackTimeout: 10000, // send an unacknowledged message again after this
  historyPageSize: 200,
  readInterval: 1000, // at most one "read" frame per this long (markRead)
  fallbackAfter: 2, // failed WebSocket handshakes before falling back to SSE
};

// Errors that will not go away by sending the same message again.
const FINAL_ERRORS = new Set([
  "bad_json", "bad_frame", "unknown_type", "too_long", "forbidden", "rejected", "slow_mode",
]);

/** A random client_id: crypto.randomUUID where available (secure contexts only). */
export function newClientId() {
  if (globalThis.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  if (globalThis.crypto && crypto.getRandomValues) crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** An absolute ws:/wss: URL for a path, in the scheme of the page. */
export function socketUrl(url, after) {
  let absolute = url;
  if (!/^wss?:\/\//.test(url)) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    absolute = scheme + location.host + (url.startsWith("/") ? url : "/" + url);
  }
  return withAfter(absolute, after);
}

function withAfter(url, after) {
  if (!after) return url;
  return url + (url.includes("?") ? "&" : "?") + "after=" + after;
}

/** The value of Django's CSRF cookie ("csrftoken"), for uploads; "" without one. */
export function csrfCookie(name = "csrftoken") {
  if (typeof document === "undefined") return "";
  const found = document.cookie.split(/;\s*/).find((c) => c.startsWith(name + "="));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
}

/** The delay before reconnect attempt number `attempt` (0-based): full jitter. */
export function backoffDelay(attempt, base, cap) {
  return Math.random() * Math.min(cap, base * 2 ** attempt);
}

/**
 * A live stream. Events (each a CustomEvent whose `detail` is the frame):
 * - one per frame type: "welcome", "message", "message.edited",
 *   "message.deleted", "entry", "entry.edited", "entry.deleted", "presence",
 *   "typing", "error", "muted", "unmuted", "read", "flagged", and any type a host project adds;
 *   stream events (frames with a seq) come once each, in seq order;
 * - "frame": every frame, before the above;
 * - "status": `{state, code, retryIn, transport}` where state is
 *   "connecting", "open", "offline" (retrying in `retryIn` ms) or "closed"
 *   (given up: `code` 4403 or 4404, or close() was called);
 * - "reset": the client could not resume without a gap (history_gone):
 *   drop what you show; the latest events follow;
 * - "ack": `{client_id, frame}` a send was stored;
 * - "failed": `{client_id, body, code, detail}` a send was refused for good.
 */
export class Connection extends EventTarget {
  constructor(options) {
    super();
    if (!options || !(options.url || options.streamUrl)) {
      throw new TypeError("connect() needs a url (or a streamUrl)");
    }
    this.options = {...DEFAULTS, ...options};
    /** The greatest seq delivered. */
    this.lastSeq = Number(this.options.after) || 0;
    /** The smallest seq delivered or loaded by loadOlder() (0: none yet). */
    this.oldestSeq = 0;
    /** welcome.user, welcome.can_post and welcome.can_moderate of the current connection. */
    this.user = null;
    this.canPost = false;
    this.canModerate = false;
    /** The read marker in a chat room (welcome.read_seq, then "read" frames); 0: none. */
    this.readSeq = 0;
    /** "websocket" or "sse". */
    this.transport = this.options.url && typeof WebSocket !== "undefined" ? "websocket" : "sse";
    /** Sends not yet acknowledged: client_id -> {body, sentAt}. */
    this.pending = new Map();
    this.state = "connecting";
    this._socket = null;
    this._source = null;
    this._attempt = 0;
    this._failedHandshakes = 0;
    this._everOpen = false;
    this._ready = false; // welcomed, history delivered, paging done
    this._resuming = false; // this connection asked for ?after=
    this._early = new Map(); // seq -> frame that came before its predecessor
    this._timers = {};
    this._closed = false;
    this._onOnline = () => this._wake();
    this._onVisible = () => {
      if (document.visibilityState === "visible") this._wake();
    };
    if (typeof window !== "undefined") window.addEventListener("online", this._onOnline);
    if (typeof document !== "undefined") {
      document.addEventListener("visibilitychange", this._onVisible);
    }
    this._open();
  }

  /**
   * Send a chat message; returns its client_id. Queued while offline.
   * `attachments`: ids (or the objects upload() resolves to) of files you
   * uploaded to this room; the body may then be empty.
   */
  send(body, clientId = newClientId(), {attachments = [], replyTo = null} = {}) {
    const ids = attachments.map((item) => (typeof item === "object" ? item.id : item));
    this.pending.set(clientId, {body, attachments: ids, replyTo, sentAt: 0});
    this._flush();
    return clientId;
  }

  /**
   * Upload a file to this chat room (signed-in users who may post there).
   * Resolves to the attachment, {id, name, type, size, url}: pass it to
   * send(). Rejects with an Error carrying the server's `code` and `detail`
   * ("too_large", "unsupported_type", "forbidden", "rate_limited"...) and
   * the HTTP `status`.
   */
  async upload(file) {
    const url = this.options.uploadUrl || (this.options.historyUrl || "").replace(/messages$/, "attachments");
    if (!url || url === this.options.historyUrl) throw new TypeError("upload() needs the uploadUrl option");
    const form = new FormData();
    form.append("file", file, file.name || "file");
    let response, answer = null;
    try {
      response = await fetch(url, {
        method: "POST",
        body: form,
        credentials: "same-origin",
        headers: {Accept: "application/json", "X-CSRFToken": this.options.csrfToken || csrfCookie()},
      });
      answer = await response.json();
    } catch (_error) {
      // offline, or an answer that is not JSON (a proxy's, Django's CSRF page)
    }
    if (response && response.status === 201 && answer) return answer;
    const detail = (answer && answer.error) || {};
    const error = new Error(detail.detail || (response ? "HTTP " + response.status : "network error"));
    error.code = detail.code || (response ? "http_" + response.status : "network");
    error.status = response ? response.status : 0;
    throw error;
  }

  /** Tell the room you are typing (chat only; the server throttles it). */
  typing() {
    return this.sendFrame({type: "typing"});
  }

  // Moderation (chat only; docs/protocol.md, "Moderation"). Sent now or not
  // at all (false when not connected): there is no client_id, so they are
  // not queued. The answer is a message.edited / message.deleted event for
  // every reader, a "muted" / "unmuted" frame for the moderator, or an
  // "error" (client_id null: forbidden, bad_frame, too_long...).

  /** Edit message `id` (yours, or anyone's as a moderator). */
  editMessage(id, body) {
    return this.sendFrame({type: "message.edit", id, body});
  }

  /** Delete message `id` (yours, or anyone's as a moderator). */
  deleteMessage(id) {
    return this.sendFrame({type: "message.delete", id});
  }

  /** Mute user `userId` in this room for `minutes` (null: until unmuted); moderators only. */
  mute(userId, minutes = null) {
    return this.sendFrame({type: "mute", user_id: userId, minutes});
  }

  /** Unmute user `userId` in this room; moderators only. */
  unmute(userId) {
    return this.sendFrame({type: "unmute", user_id: userId});
  }

  /**
   * Report message `id` to the site's moderators, with an optional `reason`
   * (signed-in readers, others' messages). Answered to you alone by a
   * "flagged" frame (also when reported before) or an "error".
   */
  flag(id, reason = "") {
    return this.sendFrame({type: "flag", id, reason: reason || ""});
  }

  /** React to message `id` with `emoji` (one of REACTIONS), or take it back (`on` false); chat only. */
  react(id, emoji, on = true) {
    return this.sendFrame({type: "message.react", id, emoji, on});
  }

  // Read markers (chat rooms, signed-in users; docs/protocol.md, "Read state").

  /**
   * Mark the room read up to `seq` (default: lastSeq). Coalesced: at most one
   * "read" frame per readInterval ms, carrying the greatest seq asked; held
   * while offline and sent once connected. False for a guest (no marker).
   * The server answers with a "read" event (readSeq follows it).
   */
  markRead(seq = this.lastSeq) {
    if (this.user && this.user.id == null) return false;
    if (seq > (this._readAsked || 0)) this._readAsked = seq;
    if (!this._timers.read) this._sendRead();
    return true;
  }

  _sendRead() {
    if (!this.user || this.user.id == null) return;
    if (!(this._readAsked > Math.max(this._readSent || 0, this.readSeq))) return;
    if (!this.sendFrame({type: "read", seq: this._readAsked})) return; // sent once connected
    this._readSent = this._readAsked;
    this._timer("read", this.options.readInterval, () => this._sendRead());
  }

  /** Send any frame now (e.g. message.edit, message.delete); false when not connected. */
  sendFrame(frame) {
    if (!this._ready || !this._socket || this._socket.readyState !== WebSocket.OPEN) return false;
    this._socket.send(JSON.stringify(frame));
    return true;
  }

  /** Close for good: no more reconnects or events after the "closed" status. */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._teardown();
    if (typeof window !== "undefined") window.removeEventListener("online", this._onOnline);
    if (typeof document !== "undefined") {
      document.removeEventListener("visibilitychange", this._onVisible);
    }
    this._status("closed", {code: null});
  }

  // -- transports ------------------------------------------------------

  _open() {
    if (this._closed) return;
    this._teardown();
    this._ready = false;
    this._resuming = this.lastSeq > 0;
    for (const sent of this.pending.values()) sent.sentAt = 0; // a new socket: send again
    this._status("connecting");
    if (this.transport === "sse") this._openEventSource();
    else this._openSocket();
  }

  _openSocket() {
    let socket;
    try {
      socket = new WebSocket(socketUrl(this.options.url, this.lastSeq));
    } catch (_error) {
      return this._handshakeFailed();
    }
    this._socket = socket;
    let opened = false;
    this._timer("connect", this.options.connectTimeout, () => this._drop(socket));
    socket.onopen = () => {
      opened = true;
      this._everOpen = true;
      this._failedHandshakes = 0;
      this._clear("connect");
      this._heard();
    };
    socket.onmessage = (event) => {
      this._heard();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (_error) {
        return;
      }
      if (frame && typeof frame.type === "string") this._receive(frame);
    };
    socket.onclose = (event) => {
      if (this._socket !== socket) return; // replaced already
      this._socket = null;
      if (!opened) return this._handshakeFailed();
      this._closedWith(event.code);
    };
  }

  _openEventSource() {
    const url = this.options.streamUrl;
    if (!url || typeof EventSource === "undefined") {
      return this._status("closed", {code: null});
    }
    const source = new EventSource(withAfter(url, this.lastSeq), {withCredentials: true});
    this._source = source;
    source.onmessage = (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (_error) {
        return;
      }
      if (!frame || typeof frame.type !== "string") return;
      if (frame.type === "welcome") {
        // A reconnect by EventSource itself resumes with Last-Event-ID.
        this._resuming = this.lastSeq > 0;
      }
      this._receive(frame);
      if (frame.type === "welcome") this._historyDone(); // SSE sends events one by one
    };
    source.onerror = () => {
      if (this._source !== source) return;
      if (source.readyState === EventSource.CLOSED) {
        // Refused (4xx/5xx): EventSource gives up; we retry with backoff.
        this._source = null;
        this._closedWith(1006);
      } else {
        this._ready = false;
        this._status("offline", {retryIn: null}); // EventSource is reconnecting
      }
    };
  }

  _handshakeFailed() {
    this._failedHandshakes += 1;
    const fallback =
      this.options.streamUrl &&
      (typeof WebSocket === "undefined" ||
        (!this._everOpen && this._failedHandshakes >= this.options.fallbackAfter));
    if (fallback) {
      // Say so: the widget only shows "Live (streaming)", and a server that
      // serves no WebSockets at all (runserver without daphne) is a mistake.
      console.warn(
        `liverooms: WebSocket ${this.options.url || ""} unavailable` +
          (typeof WebSocket === "undefined"
            ? " (no WebSocket in this browser)"
            : ` (${this._failedHandshakes} failed handshakes)`) +
          `; falling back to Server-Sent Events at ${this.options.streamUrl}.` +
          " Is the ASGI server serving WebSockets (daphne in INSTALLED_APPS for runserver)?",
      );
      this.transport = "sse";
      this._attempt = 0;
      return this._open();
    }
    this._closedWith(1006);
  }

  _closedWith(code) {
    this._ready = false;
    this._clear("ping", "pong", "gap", "connect", "ack");
    if (code === CLOSE_FORBIDDEN || code === CLOSE_NOT_FOUND) {
      this._closed = true;
      return this._status("closed", {code});
    }
    let delay = backoffDelay(this._attempt, this.options.backoffBase, this.options.backoffCap);
    if (code === CLOSE_ABUSE) delay += this.options.abuseDelay;
    this._attempt += 1;
    this._status("offline", {code, retryIn: Math.round(delay)});
    this._timer("retry", delay, () => this._open());
  }

  // Back online, or the page is visible again: retry now, or check the socket.
  _wake() {
    if (this._closed) return;
    if (this._timers.retry) {
      this._clear("retry");
      this._open();
    } else if (this._socket && this._ready) {
      this._ping();
    }
  }

  _drop(socket) {
    // A socket that is stale or never opened may take minutes to report its
    // close; stop listening to it and reconnect now.
    if (this._socket !== socket) return;
    this._socket = null;
    socket.onopen = socket.onmessage = socket.onclose = null;
    try {
      socket.close();
    } catch (_error) {
      // already closed
    }
    if (!this._everOpen) this._handshakeFailed();
    else this._closedWith(1006);
  }

  _teardown() {
    for (const name of Object.keys(this._timers)) this._clear(name);
    if (this._socket) {
      const socket = this._socket;
      this._socket = null;
      socket.onopen = socket.onmessage = socket.onclose = null;
      socket.close();
    }
    if (this._source) {
      this._source.close();
      this._source = null;
    }
  }

  // Any frame proves the socket alive; ping it after a quiet spell.
  _heard() {
    this._clear("pong");
    this._timer("ping", this.options.pingInterval, () => this._ping());
  }

  _ping() {
    const socket = this._socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({type: "ping"}));
    this._timer("pong", this.options.pongTimeout, () => this._drop(socket));
  }

  // -- frames ----------------------------------------------------------

  _receive(frame) {
    this._emit("frame", frame);
    switch (frame.type) {
      case "welcome":
        this.user = frame.user || null;
        this.canPost = Boolean(frame.can_post);
        this.canModerate = Boolean(frame.can_moderate);
        this.readSeq = Math.max(this.readSeq, frame.read_seq || 0);
        this._attempt = 0;
        this._emit("welcome", frame);
        return;
      case "history": {
        // Without ?after= (or after a reset) this is the latest page, not a gap.
        const resumed = this._resuming;
        if (!resumed) this._early.clear();
        for (const item of frame.items || []) this._accept(item, true);
        if (resumed && frame.complete === false) {
          this._catchUp().then(
            () => this._historyDone(),
            () => this._resync(),
          );
        } else {
          this._historyDone();
        }
        return;
      }
      case "read":
        this.readSeq = Math.max(this.readSeq, frame.read_seq || 0);
        this._emit("read", frame);
        return;
      case "error":
        return this._error(frame);
      case "pong":
        return;
      default:
        if (typeof frame.seq === "number") this._accept(frame, false);
        else this._emit(frame.type, frame);
    }
  }

  _historyDone() {
    this._ready = true;
    this._status("open");
    this._drain();
    this._flush();
    this._sendRead();
  }

  // One stream event: delivered once, in seq order.
  _accept(frame, fromHistory) {
    if (frame.seq === 0) return this._ack(frame); // an acknowledgement only
    if (frame.seq <= this.lastSeq) return this._ack(frame); // seen already
    // History is in order as sent; a first connection (or one after a
    // reset) starts wherever the server starts.
    if (fromHistory || this.lastSeq === 0 || frame.seq === this.lastSeq + 1) {
      this._deliver(frame);
      this._drain();
      return;
    }
    this._early.set(frame.seq, frame);
    if (this._ready && !this._timers.gap) {
      this._timer("gap", this.options.gapTimeout, () => this._resync());
    }
  }

  _drain() {
    let next;
    while ((next = this._early.get(this.lastSeq + 1))) {
      this._early.delete(next.seq);
      this._deliver(next);
    }
    for (const seq of this._early.keys()) if (seq <= this.lastSeq) this._early.delete(seq);
    if (this._early.size === 0) this._clear("gap");
    else if (this._ready && !this._timers.gap) {
      this._timer("gap", this.options.gapTimeout, () => this._resync());
    }
  }

  _deliver(frame) {
    this.lastSeq = frame.seq;
    if (!this.oldestSeq || frame.seq < this.oldestSeq) this.oldestSeq = frame.seq;
    this._ack(frame);
    this._emit(frame.type, frame);
  }

  _ack(frame) {
    if (frame.type !== "message" || !frame.client_id || !this.pending.has(frame.client_id)) return;
    this.pending.delete(frame.client_id);
    this._emit("ack", {client_id: frame.client_id, frame});
  }

  _error(frame) {
    if (frame.code === "history_gone") {
      this.lastSeq = 0;
      this.oldestSeq = 0;
      this._resuming = false;
      this._early.clear();
      this._emit("reset", frame);
      return;
    }
    const sent = frame.client_id && this.pending.get(frame.client_id);
    if (sent && FINAL_ERRORS.has(frame.code)) {
      this.pending.delete(frame.client_id);
      const failed = {client_id: frame.client_id, body: sent.body, code: frame.code, detail: frame.detail};
      if (sent.attachments && sent.attachments.length) failed.attachments = sent.attachments;
      this._emit("failed", failed);
    }
    // unavailable, rate_limited: kept in pending, sent again after ackTimeout.
    this._emit("error", frame);
  }

  // A frame went missing (or paging failed): reconnect and resume after lastSeq.
  _resync() {
    this._clear("gap");
    this._early.clear();
    this._open();
  }

  // A resumed history was capped: page the HTTP API up to the present.
  async _catchUp() {
    if (!this.options.historyUrl) return;
    for (;;) {
      const query = "after=" + this.lastSeq + "&limit=" + this.options.historyPageSize;
      const response = await this._historyPage(query);
      if (response.status === 410) {
        // Pruned meanwhile: start again from the latest.
        this._error({type: "error", code: "history_gone", detail: "", client_id: null});
        throw new Error("history_gone");
      }
      if (!response.ok) throw new Error("history: HTTP " + response.status);
      const page = await response.json();
      for (const item of page.items) this._accept(item, true);
      if (page.complete || page.items.length === 0) return;
    }
  }

  // One request to the HTTP history API (catching up, or scrolling back).
  _historyPage(query) {
    const url = this.options.historyUrl;
    return fetch(url + (url.includes("?") ? "&" : "?") + query, {
      credentials: "same-origin",
      headers: {Accept: "application/json"},
    });
  }

  /**
   * Scroll-back: the `limit` events before seq `before` (default: the oldest
   * seen), oldest first, from the HTTP history API. Resolves to
   * {items, complete}; `complete` is true when nothing older is kept. The
   * items are returned, not emitted: live frames keep their order.
   */
  async loadOlder({before = this.oldestSeq, limit = this.options.historyPageSize} = {}) {
    if (!this.options.historyUrl) throw new TypeError("loadOlder() needs the historyUrl option");
    if (!before || before <= 1) return {items: [], complete: true};
    const response = await this._historyPage("before=" + before + "&limit=" + limit);
    if (!response.ok) throw new Error("history: HTTP " + response.status);
    const page = await response.json();
    if (page.items.length && (!this.oldestSeq || page.items[0].seq < this.oldestSeq)) {
      this.oldestSeq = page.items[0].seq;
    }
    return {items: page.items, complete: Boolean(page.complete) || page.items.length === 0};
  }

  /**
   * Chat search (docs/protocol.md, "Search"): the room's messages matching
   * `q`, newest first, older than message `before` (an id) if given.
   * Resolves to {items, complete}; rejects with an Error carrying the
   * server's `code` and `detail` and the HTTP `status`.
   */
  async search(q, {before = null, limit = 20} = {}) {
    const url = (this.options.historyUrl || "").replace(/messages$/, "search");
    if (!url || url === this.options.historyUrl) throw new TypeError("search() needs a chat historyUrl");
    const query = new URLSearchParams({q, limit: String(limit)});
    if (before) query.set("before", String(before));
    const response = await fetch(url + "?" + query, {
      credentials: "same-origin",
      headers: {Accept: "application/json"},
    });
    const answer = await response.json().catch(() => null);
    if (!response.ok) {
      const error = new Error((answer && answer.error && answer.error.detail) || "search: HTTP " + response.status);
      error.code = answer && answer.error ? answer.error.code : "unavailable";
      error.detail = error.message;
      error.status = response.status;
      throw error;
    }
    return {items: answer.items, complete: Boolean(answer.complete)};
  }

  // Send whatever is pending (on connect, and again after ackTimeout).
  _flush() {
    if (!this._ready || !this._socket) return;
    const now = Date.now();
    for (const [clientId, sent] of this.pending) {
      if (now - sent.sentAt < this.options.ackTimeout) continue;
      const frame = {type: "message", body: sent.body, client_id: clientId};
      if (sent.attachments && sent.attachments.length) frame.attachments = sent.attachments;
      if (sent.replyTo) frame.reply_to = sent.replyTo;
      if (!this.sendFrame(frame)) return;
      sent.sentAt = now;
    }
    if (this.pending.size) this._timer("ack", this.options.ackTimeout, () => this._flush());
  }

  // -- plumbing --------------------------------------------------------

  _status(state, extra = {}) {
    this.state = state;
    this._emit("status", {state, transport: this.transport, code: null, retryIn: null, ...extra});
  }

  _emit(type, detail) {
    if (this._closed && type !== "status") return;
    this.dispatchEvent(new CustomEvent(type, {detail}));
  }

  _timer(name, delay, fn) {
    this._clear(name);
    this._timers[name] = setTimeout(() => {
      delete this._timers[name];
      fn();
    }, delay);
  }

  _clear(...names) {
    for (const name of names) {
      clearTimeout(this._timers[name]);
      delete this._timers[name];
    }
  }
}

/**
 * Open a stream. Options:
 * - url: the WebSocket path ("/ws/chat/lobby/") or a full ws:/wss: URL;
 * - historyUrl: the HTTP history API for this stream (to page a capped resume);
 * - streamUrl: a live blog's SSE stream, used when WebSockets fail;
 * - uploadUrl: a chat room's attachments endpoint (upload(); default: the
 *   historyUrl with "attachments" for "messages"), and csrfToken (default:
 *   the csrftoken cookie's value);
 * - after: resume after this seq; and the timings in DEFAULTS above.
 */
export function connect(options) {
  return new Connection(options);
}
