"""Who may read, post and moderate where, and what readers call them.

``LIVEROOMS["POLICY"]`` names the class (default :class:`DefaultPolicy`).
Subclass it to change one rule. Methods run in a database thread, so they may
query the database; ``scope`` is the connection's ASGI scope (an HTTP request
has none), whose ``url_route`` kwargs carry a capturing prefix's values.

The default rules, as a table, are in docs/permissions.md.
"""

from __future__ import annotations

import contextvars
import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ObjectDoesNotExist
from django.utils.crypto import constant_time_compare
from django.utils.module_loading import import_string
from django.utils.translation import gettext

from . import moderation, protocol, unread
from .conf import conf
from .models import LiveBlog, Message, Room, RoomMember, RoomMute, Stream, display_name
from .streams import Sender, get_stream

# The permission that makes a user a moderator of every chat room (the admin
# permission to change messages); RoomMember.moderator makes one of a room.
MODERATE_PERMISSION = "django_liverooms.change_message"
# Seconds a user object keeps its ban as read (DefaultPolicy.ban): the checks
# of one write ask can_read more than once and share one query.
BAN_TTL = 1.0


class DefaultPolicy:
    """The documented defaults (docs/permissions.md).

    - Chat rooms: a public room is readable by anyone; a private room only by
      its members. Signed-in, active users who may read may post, unless
      muted in the room; guests too in public rooms when
      ``LIVEROOMS["ANONYMOUS_CHAT"]`` is true.
    - Moderators (the ``change_message`` permission, or a room member marked
      moderator) edit and delete any message in the room and mute users;
      authors edit and delete their own messages while they may post.
    - Live blogs: anyone may read; nobody writes over the socket. ``can_post``
      tells whether the user may publish entries through Django (the
      ``add_entry`` permission).
    """

    def can_read(self, user: Any, stream: Stream, scope: dict[str, Any] | None = None) -> bool:
        if isinstance(stream, Room):
            if self.ban(user) is not None:  # banned from every chat room (moderation.py)
                return False
            if stream.private:
                return self.is_member(user, stream)
        return True

    def can_post(self, user: Any, stream: Stream, scope: dict[str, Any] | None = None) -> bool:
        if isinstance(stream, Room):
            if not self.can_read(user, stream, scope):
                return False
            if not user.is_authenticated:
                return bool(conf.ANONYMOUS_CHAT) and not stream.private
            return user.is_active and not self.is_muted(user, stream)
        if isinstance(stream, LiveBlog):
            return bool(
                user.is_authenticated
                and user.is_active
                and user.has_perm("django_liverooms.add_entry")
            )
        return False

    def can_moderate(self, user: Any, stream: Stream, scope: dict[str, Any] | None = None) -> bool:
        if not (user.is_authenticated and user.is_active):
            return False
        if isinstance(stream, Room):
            if not self.can_read(user, stream, scope):
                return False
            return user.has_perm(MODERATE_PERMISSION) or (
                RoomMember.objects.filter(room=stream, user=user, moderator=True).exists()
            )
        if isinstance(stream, LiveBlog):
            return user.has_perm("django_liverooms.change_entry")
        return False

    def can_change_message(
        self, user: Any, message: Message, scope: dict[str, Any] | None = None
    ) -> bool:
        """Edit or delete ``message``: a moderator, or its author who may still post."""
        room = message.room
        if self.can_moderate(user, room, scope):
            return True
        return bool(
            user.is_authenticated
            and message.author_id == user.pk
            and self.can_post(user, room, scope)
        )

    def clean_message(
        self, user: Any, room: Room, body: str, scope: dict[str, Any] | None = None
    ) -> str:
        """The body to store for a chat message (or an edit) from a socket.

        Return it as it is (the default) or rewritten (a word list replaced
        by asterisks); raise :class:`MessageRejected` to refuse it. Asked in
        the transaction that stores it, for every new message and edit, from
        anyone (moderators too). A resend of a stored message (its
        ``client_id``) is answered with it, whatever this says now.
        """
        return body

    def is_member(self, user: Any, room: Room) -> bool:
        if not (user.is_authenticated and user.is_active):
            return False
        facts = _batch.get()
        if facts is not None and (room.pk, user.pk) in facts.asked:
            return (room.pk, user.pk) in facts.members
        return RoomMember.objects.filter(room=room, user=user).exists()

    def is_muted(self, user: Any, room: Room) -> bool:
        facts = _batch.get()
        if facts is not None and (room.pk, user.pk) in facts.asked:
            return (room.pk, user.pk) in facts.muted
        return RoomMute.objects.active().filter(room=room, user=user).exists()

    def ban(self, user: Any) -> Any:
        """``user``'s site-wide ban from chat rooms now (a ``Ban``), or None.

        One query per check: within ``batch_checks`` the batch's, else read
        and kept on the user object for ``BAN_TTL`` seconds, so that the
        checks of one write (``can_read``, then ``can_post`` which asks it
        again) share it.
        """
        if user is None or not user.is_authenticated:
            return None
        facts = _batch.get()
        if facts is not None and user.pk in facts.ban_asked:
            return facts.bans.get(user.pk)
        now = time.monotonic()
        cached = getattr(user, "_liverooms_ban", None)
        if cached is not None and now - cached[0] < BAN_TTL:
            return cached[1]
        found = moderation.active_ban(user)
        user._liverooms_ban = (now, found)
        return found

    def refused_because(
        self, user: Any, stream: Stream, scope: dict[str, Any] | None = None
    ) -> str | None:
        """Why ``user`` may not read ``stream``, asked once ``can_read`` has
        refused: the ``forbidden`` detail the reader is told (also when the
        socket opens), or None for the usual one. The default explains a ban."""
        if isinstance(stream, Room):
            found = self.ban(user)
            if found is not None:
                return moderation.ban_detail(found)
        return None

    def display_name(self, user: Any) -> str:
        """The name readers see for a signed-in user."""
        return display_name(user)

    def guest_name(self, guest_key: str) -> str:
        """The name readers see for an anonymous visitor.

        32 bits of a hash of the guest's key: with 16, another guest bearing
        the same name turned up after a few hundred connections. A name is
        still only a label; the widget tells "mine" by author id or client_id.
        """
        return gettext("Guest %(id)s") % {"id": hashlib.sha256(guest_key.encode()).hexdigest()[:8]}


class MessageRejected(Exception):
    """Raised by :meth:`DefaultPolicy.clean_message` to refuse a message.

    Nothing is stored; the sender gets an ``error`` frame with code
    ``rejected``, this ``detail`` and the message's ``client_id``.
    """

    def __init__(self, detail: str = "This message was refused.") -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass
class Screen:
    """The policy on one sender's new messages in a room, as
    ``streams.post_messages`` asks it: the body to store, and whether the
    room's slow mode holds the sender back. Database thread."""

    user: Any
    room: Room
    scope: dict[str, Any] | None

    def clean(self, body: str, client_id: str | None) -> str:
        """``clean_message``'s body; ProtocolError ``rejected`` if it refuses."""
        try:
            return get_policy().clean_message(self.user, self.room, body, self.scope)
        except MessageRejected as refused:
            raise protocol.ProtocolError(protocol.REJECTED, refused.detail, client_id) from None

    @cached_property
    def exempt(self) -> bool:
        """Whether slow mode lets the sender through (a moderator); asked only
        of a message it would refuse, so a batch does not ask everyone."""
        return bool(get_policy().can_moderate(self.user, self.room, self.scope))


def identify(user: Any, scope: dict[str, Any], connection_id: str) -> Sender:
    """The sender behind a connection: its user, or a guest keyed by session.

    A guest without a session is keyed by the connection, so its
    ``client_id`` retries are idempotent on that connection only.
    """
    policy = get_policy()
    if user is not None and user.is_authenticated:
        return Sender(user=user, name=policy.display_name(user), key=f"user:{user.pk}")
    session_key = getattr(scope.get("session"), "session_key", None)
    key = f"session:{session_key}" if session_key else f"conn:{connection_id}"
    return Sender(user=None, name=policy.guest_name(key), key=key)


# The access checks of one group-commit batch (writer.py) share their reads.
@dataclass
class BatchFacts:
    sessions: dict[str, Any] = field(default_factory=dict)  # session key -> its user, or None
    asked: set[tuple[Any, Any]] = field(default_factory=set)  # (room pk, user pk) looked up
    members: set[tuple[Any, Any]] = field(default_factory=set)
    muted: set[tuple[Any, Any]] = field(default_factory=set)
    ban_asked: set[Any] = field(default_factory=set)  # user pks whose bans were read
    bans: dict[Any, Any] = field(default_factory=dict)  # user pk -> its Ban


_batch: contextvars.ContextVar[BatchFacts | None] = contextvars.ContextVar(
    "liverooms_batch_facts", default=None
)


@contextmanager
def batch_checks(connections: list[tuple[Any, dict[str, Any] | None, Any]]) -> Iterator[None]:
    """Within the block, the checks of these connections (user, scope, room)
    read what they need in a few queries for all of them, not a few each:
    the signed-in users' sessions and users (with the database session
    engine and Django's ModelBackend; others are read one by one as before),
    and the default policy's memberships, mutes and bans. Database thread, inside
    the transaction the writes are checked in.
    """
    facts = BatchFacts()
    signed_in = [(u, sc, r) for u, sc, r in connections if u is not None and u.is_authenticated]
    facts.sessions = _session_users(
        {
            _session_key(sc)
            for u, sc, _ in signed_in
            if _session_key(sc) and signed_in_by(sc["session"], u)
        }
    )
    users = {u.pk for u, _, _ in signed_in}
    rooms = {r.pk for _, _, r in signed_in if isinstance(r, Room)}
    if users and rooms:
        facts.asked = {(room, user) for room in rooms for user in users}
        facts.members = set(
            RoomMember.objects.filter(room__in=rooms, user__in=users).values_list("room", "user")
        )
        facts.muted = set(
            RoomMute.objects.active()
            .filter(room__in=rooms, user__in=users)
            .values_list("room", "user")
        )
        facts.ban_asked = users
        facts.bans = moderation.active_bans(users)
    token = _batch.set(facts)
    try:
        yield
    finally:
        _batch.reset(token)


def _session_key(scope: dict[str, Any] | None) -> str | None:
    return getattr((scope or {}).get("session"), "session_key", None)


def _session_users(keys: set[str]) -> dict[str, Any]:
    """The users of these sessions, as :func:`_session_user` finds them, in
    two queries when the session engine stores sessions in the database and
    the backend is Django's ModelBackend; {} otherwise (read one by one)."""
    from django.contrib.auth.backends import ModelBackend
    from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
    from django.utils import timezone

    store = import_string(settings.SESSION_ENGINE).SessionStore
    if not keys or not issubclass(store, DatabaseStore):
        return {}
    rows = store.get_model_class()._default_manager.filter(
        session_key__in=keys, expire_date__gt=timezone.now()
    )
    decoded = {row.session_key: store().decode(row.session_data) for row in rows}
    user_model = auth.get_user_model()
    users: dict[str, Any] = dict.fromkeys(keys)  # None: not signed in any more
    wanted: dict[str, tuple[Any, Any]] = {}  # session key -> (user pk, its backend)
    for key, data in decoded.items():
        backend_path = data.get(auth.BACKEND_SESSION_KEY)
        if auth.SESSION_KEY not in data or backend_path not in settings.AUTHENTICATION_BACKENDS:
            continue
        backend = auth.load_backend(backend_path)
        if type(backend).get_user is not ModelBackend.get_user:
            return {}  # a backend of its own: one by one, through it
        wanted[key] = (user_model._meta.pk.to_python(data[auth.SESSION_KEY]), backend)
    ids = {pk for pk, _ in wanted.values()}
    found = {user.pk: user for user in user_model._default_manager.filter(pk__in=ids)}
    for key, (pk, backend) in wanted.items():
        user = found.get(pk)
        if (
            user is not None
            and backend.user_can_authenticate(user)
            and session_hash_matches(decoded[key].get(auth.HASH_SESSION_KEY), user)
        ):
            users[key] = user
    return users


def current_user(user: Any, scope: dict[str, Any] | None) -> Any:
    """The connection's user as the database has it now, or AnonymousUser.

    A socket keeps the user it was opened with; this reloads it, so a user
    logged out elsewhere (session flushed), whose password changed (session
    hash), who was deactivated or deleted, is no longer taken for signed in.
    For a user who came from a session the session is read again, as
    Django's own ``auth.get_user()`` does for a request.
    """
    if user is None or not user.is_authenticated:
        return AnonymousUser()
    session = (scope or {}).get("session")
    session_key = getattr(session, "session_key", None)
    if session_key and signed_in_by(session, user):
        facts = _batch.get()
        if facts is not None and session_key in facts.sessions:
            fresh = facts.sessions[session_key]
        else:
            fresh = _session_user(session_key)
        return fresh if fresh is not None and fresh.pk == user.pk else AnonymousUser()
    # A user put in the scope another way (token middleware, tests).
    fresh = type(user)._default_manager.filter(pk=user.pk).first()
    return fresh if fresh is not None and fresh.is_active else AnonymousUser()


def signed_in_by(session: Any, user: Any) -> bool:
    """Whether the connection's session (as read when it opened) holds this user."""
    try:
        return str(session.get(auth.SESSION_KEY)) == str(user.pk)
    except Exception:
        return False


def _session_user(session_key: str) -> Any:
    """The user a stored session is signed in as, checked as ``auth.get_user()``
    checks it (backend, active, password hash), but without writing to the
    session: a socket's check must not flush or cycle the browser's session."""
    engine = import_string(settings.SESSION_ENGINE)
    session = engine.SessionStore(session_key)
    try:
        user_id = auth.get_user_model()._meta.pk.to_python(session[auth.SESSION_KEY])
        backend_path = session[auth.BACKEND_SESSION_KEY]
    except KeyError:
        return None
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    user = auth.load_backend(backend_path).get_user(user_id)
    if user is None or not session_hash_matches(session.get(auth.HASH_SESSION_KEY), user):
        return None
    return user


def session_hash_matches(session_hash: Any, user: Any) -> bool:
    """Whether a session's auth hash is still ``user``'s (a password change
    makes it stale), as ``auth.get_user()`` checks it."""
    if not hasattr(user, "get_session_auth_hash"):
        return True
    if not session_hash:
        return False
    fallbacks = getattr(user, "get_session_auth_fallback_hash", lambda: [])
    hashes = [user.get_session_auth_hash(), *fallbacks()]
    return any(constant_time_compare(session_hash, h) for h in hashes)


class Refused(Exception):
    """A stream a reader may not open; ``close_code`` and ``status`` say why."""

    def __init__(self, close_code: int, detail: str, *, tell: bool = False):
        super().__init__(detail)
        self.close_code = close_code
        self.detail = detail
        # A socket is told ``detail`` (an ``error`` frame) before the close at
        # open: the policy explained it (refused_because: a ban).
        self.tell = tell

    @property
    def status(self) -> int:
        return 404 if self.close_code == protocol.CLOSE_NOT_FOUND else 403


def readable_stream(
    kind: str,
    slug: str,
    user: Any,
    scope: dict[str, Any] | None = None,
    *,
    find: Callable[[str, str], Stream | None] = get_stream,
) -> Stream:
    """The stream ``slug`` if ``user`` may read it; raises :class:`Refused`.

    The one read check of every transport: the WebSocket consumers, the HTTP
    history API, and any other reader (an SSE stream) call it. It runs in a
    database thread. ``find`` looks the stream up (reads.py shares lookups
    between connections opening together).
    """
    stream = find(kind, slug)
    if stream is None:
        raise Refused(protocol.CLOSE_NOT_FOUND, f"No {kind} stream {slug[:64]!r}.")
    policy = get_policy()
    forget_ban(user)  # a new check reads the ban again
    if not policy.can_read(user, stream, scope):
        because = policy.refused_because(user, stream, scope)
        raise Refused(
            protocol.CLOSE_FORBIDDEN,
            because or "You may not read this stream.",
            tell=because is not None,
        )
    return stream


def forget_ban(user: Any) -> None:
    """Drop the ban kept on ``user`` (DefaultPolicy.ban): a check that starts
    with this object (an opening, a page of unread counts) reads it afresh."""
    try:
        del user._liverooms_ban
    except AttributeError:
        pass


@dataclass(frozen=True)
class Opening:
    """What a reader that may open a stream is told in its ``welcome``."""

    stream: Stream
    sender: Sender
    can_post: bool
    can_moderate: bool = False
    read_seq: int | None = None  # a signed-in user's read marker in a chat room

    def welcome(self, kind: str, seq: int) -> dict[str, Any]:
        return protocol.welcome(
            kind,
            self.stream.slug,
            seq,
            self.sender.info,
            self.can_post,
            self.can_moderate,
            slow_mode=getattr(self.stream, "slow_mode_seconds", 0),
            read_seq=self.read_seq,
        )


def open_stream(
    kind: str,
    slug: str,
    user: Any,
    scope: dict[str, Any] | None,
    connection_id: str,
    *,
    moderation: bool,
    session: Any = None,
    find: Callable[[str, str], Stream | None] = get_stream,
) -> Opening:
    """Check ``user`` may read ``slug`` (:class:`Refused` if not) and say what
    they may do there; ``moderation``: the transport accepts moderation frames.

    Shared by the WebSocket consumers and the SSE stream, so that both send the
    same ``welcome``. An HTTP reader has no ``scope``; its ``session`` names a
    guest as a socket's scope session does. Runs in a database thread.
    """
    stream = readable_stream(kind, slug, user, scope, find=find)
    policy = get_policy()
    return Opening(
        stream=stream,
        sender=identify(user, _session_scope(scope, session), connection_id),
        can_post=policy.can_post(user, stream, scope),
        can_moderate=moderation and policy.can_moderate(user, stream, scope),
        read_seq=unread.read_seq(user, stream)
        if isinstance(stream, Room) and user is not None and user.is_authenticated
        else None,
    )


def reader_now(
    user: Any,
    stream: Stream,
    scope: dict[str, Any] | None,
    *,
    session: Any = None,
    streams_now: dict[tuple[type, int], Stream] | None = None,
) -> tuple[Any, Stream]:
    """An open reader's user and stream as the database has them now.

    Raises :class:`Refused` when the user may no longer read it: logged out
    or deactivated elsewhere, the stream deleted, or the policy now refuses.
    Run on every write and on a re-check event (revoke.py); database thread.
    ``streams_now`` shares the streams read within one transaction (a batch
    of group commit), so each is read once.
    """
    fresh = current_user(user, _session_scope(scope, session))
    if user.is_authenticated and not fresh.is_authenticated:
        raise Refused(protocol.CLOSE_FORBIDDEN, "Your session has ended; sign in and reconnect.")
    key = (type(stream), stream.pk)
    current = streams_now.get(key) if streams_now is not None else None
    if current is None:
        try:
            current = type(stream)._default_manager.get(pk=stream.pk)
        except ObjectDoesNotExist:
            raise Refused(protocol.CLOSE_NOT_FOUND, "This stream no longer exists.") from None
        if streams_now is not None:
            streams_now[key] = current
    policy = get_policy()
    if not policy.can_read(fresh, current, scope):
        because = policy.refused_because(fresh, current, scope)
        raise Refused(protocol.CLOSE_FORBIDDEN, because or "You may no longer read this stream.")
    return fresh, current


def _session_scope(scope: dict[str, Any] | None, session: Any) -> dict[str, Any]:
    """Where identify() and current_user() find the session: the scope's, or an HTTP request's."""
    return {"session": session} if session is not None else scope or {}


class CachedVerdict:
    """A connection's "may post" as last seen, trusted for ``ttl`` seconds.

    Typing frames are relayed only from connections that may post; checking
    the policy (a mute is a query) on every typing frame would be a database
    hop per keystroke burst, so the verdict from the ``welcome`` or the last
    write is reused, and looked up again at most every ``ttl`` seconds.
    """

    ttl = 5.0

    def __init__(self, value: bool, clock: Any = time.monotonic) -> None:
        self.clock = clock
        self.set(value)

    def set(self, value: bool) -> None:
        self.value, self.at = bool(value), self.clock()

    def stale(self) -> bool:
        return self.clock() - self.at >= self.ttl


@lru_cache(maxsize=8)
def _load(path: str) -> Any:
    return import_string(path)()


def get_policy() -> DefaultPolicy:
    return _load(conf.POLICY)
