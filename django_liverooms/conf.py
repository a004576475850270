"""The ``LIVEROOMS`` setting: one dict merged over the documented defaults.

This module is the only reader of Django settings in the app. Values are read
on every access, so ``override_settings(LIVEROOMS={...})`` works in tests.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings

DEFAULTS: dict[str, Any] = {
    # Dotted path to the permission policy class (see policy.py).
    "POLICY": "django_liverooms.policy.DefaultPolicy",
    # Let anonymous visitors post in chat rooms, as guests.
    "ANONYMOUS_CHAT": False,
    # Events sent in the ``history`` frame that follows ``welcome``.
    "HISTORY_LIMIT": 50,
    # Largest ``limit`` accepted by the HTTP history API.
    "HTTP_HISTORY_MAX_LIMIT": 200,
    # Longest chat message body, in characters.
    "MAX_BODY_LENGTH": 4000,
    # Largest inbound WebSocket frame, in bytes of UTF-8.
    "MAX_FRAME_BYTES": 16384,
    # "inline": the consumer stores a message before it is acknowledged.
    # "worker": the consumer hands it to PERSIST_CHANNEL, served by runworker.
    "PERSISTENCE": "inline",
    "PERSIST_CHANNEL": "liverooms.persist",
    # Worker mode: seconds after which a sender whose message no worker has
    # handled gets an ``unavailable`` error (so it resends); 0 turns it off.
    # Below channels-redis' ``expiry`` (60 s), which drops it silently.
    "WORKER_ACK_TIMEOUT": 30.0,
    # Worker mode: most messages a worker stores per round (one transaction
    # per room per round); also how many may wait in its memory.
    "PERSIST_BATCH": 100,
    # "process": one channel-layer subscription per server process and stream,
    # written to the local sockets (fanout.py). "consumer": each socket joins
    # the group itself (stock Channels; slower, for comparison and debugging).
    "FANOUT": "process",
    # Alias in CHANNEL_LAYERS that the app talks to.
    "CHANNEL_LAYER": "default",
    # Seconds a channel-layer call (join, broadcast, health check) may take
    # before the layer counts as failed and sockets close with 4503.
    "LAYER_TIMEOUT": 5.0,
    # Seconds between checks of the layer's Redis hosts (down, stalled or
    # restarted); 0 turns the check off. Ignored by non-Redis layers.
    "LAYER_CHECK_INTERVAL": 2.0,
    # Seconds between a server process's reports of its open sockets to Redis,
    # read by ``manage.py liverooms_health`` (health.py); 0 turns them off.
    "HEALTH_INTERVAL": 10.0,
    # HTML allowed in live blog entry bodies; None keeps nh3's safe defaults.
    "ENTRY_ALLOWED_TAGS": None,
    # Presence (see presence.py and docs/presence.md). False: no tracking, no frames.
    "PRESENCE": True,
    # Redis for presence; None uses the channels-redis layer's first host (and
    # this process's memory with the in-memory layer).
    "PRESENCE_REDIS_URL": None,
    # Seconds a connection stays counted after its process's last heartbeat.
    "PRESENCE_TTL": 30,
    # Seconds between a process's heartbeats (must be under PRESENCE_TTL).
    "PRESENCE_HEARTBEAT": 10,
    # Seconds between presence broadcasts to a stream (changes are coalesced).
    "PRESENCE_INTERVAL": 1.0,
    # Users listed in a chat room's presence frame (count is always complete).
    "PRESENCE_USERS_MAX": 50,
    # Rate limits (ratelimit.py): (count, seconds) = bursts of ``count``,
    # refilled at ``count`` per ``seconds``; None turns one off.
    # Any inbound frame, per connection.
    "FRAME_RATE": (100, 10),
    # Writes (message, message.edit, message.delete, mute, unmute), per connection.
    "SEND_RATE": (10, 10),
    # Writes per user (or guest session) over all their connections, per process.
    "USER_SEND_RATE": (20, 10),
    # Typing frames relayed per connection; the excess is dropped silently.
    "TYPING_RATE": (1, 2),
    # Rate-limit refusals a connection may collect before it is closed with 4429.
    "ABUSE_LIMIT": (10, 60),
    # Open sockets and SSE streams per user (or guest session), per process;
    # None: no limit.
    "MAX_CONNECTIONS_PER_USER": 20,
    # Seconds between keep-alive comments on an idle SSE stream, so that
    # proxies do not close it; positive.
    "SSE_KEEPALIVE": 15.0,
    # Milliseconds a browser's EventSource waits before reconnecting (the
    # stream's first ``retry:`` line).
    "SSE_RETRY": 3000,
    # Longest mute, in minutes, a moderator may give over the socket.
    "MAX_MUTE_MINUTES": 60 * 24 * 365,
    # A socket that does not keep up is closed with 4408 (outbox.py): when the
    # frames waiting for it exceed this many bytes (with the server's own
    # write buffer, under uvicorn and daphne), or one send to it has not
    # completed within SEND_TIMEOUT seconds. The client resumes with ?after=.
    "SEND_QUEUE_BYTES": 1024 * 1024,
    "SEND_TIMEOUT": 10.0,
    # Issue 13 (sessions, caps; sessions.py, ratelimit.py, docs/permissions.md).
    # Seconds between re-checks of the sessions of this process's signed-in
    # readers (closed with 4403 once their session ends); 0 turns them off.
    "SESSION_CHECK_INTERVAL": 30.0,
    # Open sockets plus SSE streams of sessionless guests per client address,
    # per process (closed with 4429 / HTTP 429 over it); None: no limit.
    "MAX_CONNECTIONS_PER_ADDRESS": 100,
    # Proxies (IP addresses or CIDR networks) whose X-Forwarded-For is
    # believed: the client is its rightmost hop that is not one of them.
    # Empty: the client is the ASGI peer (scope["client"]).
    "TRUSTED_PROXIES": [],
    # HTTP history pages (messages, entries) read at once per process; over
    # it, 503 ``unavailable`` with Retry-After. None: no limit.
    "HTTP_HISTORY_CONCURRENCY": 8,
    # HTTP history pages per client (user, guest session or address), per
    # process, as a rate (count, seconds); over it, 429 ``rate_limited``. Off by
    # default: readers behind one NAT share an address.
    "HTTP_HISTORY_RATE": None,
    # Group commit (writer.py): a socket's chat message is stored with those
    # that arrive within WRITE_WINDOW seconds (and while the previous batch is
    # being written), at most WRITE_BATCH per transaction.
    "WRITE_WINDOW": 0.002,
    "WRITE_BATCH": 200,
    # Chat search (GET <prefix>chat/<slug>/search?q=): PostgreSQL's text
    # search configuration ("simple" matches words as written; "english"
    # stems them). Other databases match words as substrings.
    "SEARCH_CONFIG": "simple",
    # Where asgi.py mounts websocket_include(), for the template tags' widgets:
    # a path ("/ws/") on this site, or a ws:// or wss:// URL of another host.
    "WEBSOCKET_PREFIX": "/ws/",
    # Issue 14 (live blog publishing; docs/liveblog.md).
    # Where a live blog is shown, for links in its feed: a path or URL with
    # "{slug}" ("/liveblog/{slug}/"). None: the feed links to itself.
    "LIVEBLOG_PAGE_URL": None,
    # Reader reactions (reactions.py): the emoji readers may send; empty turns
    # reactions off. Each connection's reactions as a rate (count, seconds),
    # the excess dropped; None: no limit. Seconds between a stream's
    # ``reactions`` frames from one process (reactions are summed meanwhile).
    "REACTIONS": ["👍", "❤️", "😂", "😮", "😢", "👏"],
    "REACTION_RATE": (5, 10),
    "REACTION_INTERVAL": 1.0,
    # Entry embeds (embeds.py): providers added to (or, with None, removed
    # from) the built-in youtube, vimeo, x and instagram, each
    # {"pattern": regex with (?P<id>...), "player": "https://...{id}..."}.
    "EMBED_PROVIDERS": {},
    # Largest entry image upload, in bytes.
    "ENTRY_IMAGE_MAX_BYTES": 5 * 1024 * 1024,
    # Issue 16: read state (unread.py). A socket's ``read`` frames are stored
    # at most once per READ_INTERVAL seconds (the highest seq), and when it
    # closes; 0: each one. Unread counts look at a room's latest
    # UNREAD_WINDOW events at most (older ones count as read).
    "READ_INTERVAL": 5.0,
    "UNREAD_WINDOW": 1000,
    # Issue 16: chat attachments (attachments.py). Largest upload, in bytes;
    # the content types accepted, as found in the file's bytes (a subset of
    # attachments.KNOWN_TYPES); uploads per user as a rate (count, seconds),
    # per process; None: no limit.
    "ATTACHMENT_MAX_BYTES": 10 * 1024 * 1024,
    "ATTACHMENT_TYPES": [
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/plain",
    ],
    "ATTACHMENT_RATE": (10, 60),
}


class Settings:
    """Attribute access to ``LIVEROOMS`` keys, falling back to ``DEFAULTS``."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown LIVEROOMS setting {name!r}")
        user = self.raw
        return user.get(name, DEFAULTS[name]) if isinstance(user, dict) else DEFAULTS[name]

    @property
    def raw(self) -> Any:
        """``settings.LIVEROOMS`` as given (the system checks validate it)."""
        return getattr(django_settings, "LIVEROOMS", None) or {}


conf = Settings()
