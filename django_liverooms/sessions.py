"""Close readers whose Django session has ended, without waiting for a write.

A socket (or SSE stream) opened by a signed-in user keeps the user it was
opened with; every write checks the session again (policy.reader_now), but a
reader that never writes would keep reading a private room after logging out.
So each event loop keeps a :class:`Watch` of its readers that came from a
session, and every ``SESSION_CHECK_INTERVAL`` seconds re-validates all their
sessions in ONE database hop (sessions and users loaded in batches, not one
query per socket). A reader whose session was deleted or flushed (logout),
expired, or whose auth hash is stale (password change), or whose user can no
longer sign in (deactivated), is told so and closed: a socket with close code
4403 after a ``forbidden`` error frame, an SSE stream with a ``forbidden``
error event.

Sooner than the interval, in the process that sees it:

- ``user_logged_out``: the readers on that session close at once (the signal
  comes before Django flushes the session, so no database check is needed);
- a password set with ``set_password()`` and saved: every loop of the process
  sweeps at once, after the commit. Other processes close their readers of
  the user's private rooms through revoke.py's re-check events, and the rest
  at their next sweep.

Readers whose user did not come from a session (a token middleware, tests)
are not watched.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.signals import user_logged_out
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext

from . import runtime
from .conf import conf
from .layerwatch import background
from .policy import session_hash_matches, signed_in_by

logger = logging.getLogger(__name__)

BATCH = 500  # keys per ``IN (...)`` query


def ended_detail() -> str:
    return gettext("Your session has ended; sign in and reconnect.")


@dataclass(frozen=True)
class Signed:
    """Who a reader is: a session key and the user pk it signed in (as a string)."""

    session_key: str
    user_pk: str


def signed(user: Any, session: Any) -> Signed | None:
    """The reader's session and user, if its user came from that session."""
    session_key = getattr(session, "session_key", None)
    if user is None or not user.is_authenticated or not session_key:
        return None
    if not signed_in_by(session, user):
        return None
    return Signed(session_key, str(user.pk))


class Watch:
    """One event loop's readers that came from a session, swept periodically.

    A reader is any object with ``async session_ended()``; it is held weakly.
    """

    def __init__(self) -> None:
        self.readers: weakref.WeakKeyDictionary[Any, Signed] = weakref.WeakKeyDictionary()
        self.task: asyncio.Task[None] | None = None
        self.wake = asyncio.Event()

    def add(self, reader: Any, who: Signed) -> None:
        self.readers[reader] = who
        if conf.SESSION_CHECK_INTERVAL and (self.task is None or self.task.done()):
            self.task = asyncio.ensure_future(self._sweep_loop())

    def discard(self, reader: Any) -> None:
        self.readers.pop(reader, None)

    async def _sweep_loop(self) -> None:
        while self.readers:
            # Not asyncio.timeout (Python 3.11+) nor wait_for (which can
            # swallow a cancel before 3.12).
            woken = asyncio.ensure_future(self.wake.wait())
            try:
                await asyncio.wait({woken}, timeout=conf.SESSION_CHECK_INTERVAL or None)
            finally:
                woken.cancel()
            self.wake.clear()
            if not conf.SESSION_CHECK_INTERVAL:
                return
            try:
                await self.sweep()
            except Exception:  # a database outage must not end the sweeps
                logger.exception("liverooms: the session sweep failed")

    async def sweep(self) -> int:
        """Check every watched session now; returns how many readers were closed."""
        readers = list(self.readers.items())
        if not readers:
            return 0
        ended = await database_sync_to_async(ended_sessions)({who for _, who in readers})
        closing = [reader for reader, who in readers if who in ended]
        for reader in closing:
            self.end(reader)
        return len(closing)

    def end(self, reader: Any) -> None:
        if self.readers.pop(reader, None) is not None:
            background(reader.session_ended())

    def end_session(self, session_key: str) -> None:
        """The session ``session_key`` ended (logout): close its readers now."""
        for reader, who in list(self.readers.items()):
            if who.session_key == session_key:
                self.end(reader)


def watch_here() -> Watch:
    """The watch of the running event loop."""
    here = runtime.current()
    if here.sessions is None:
        here.sessions = Watch()
    return here.sessions


def watch(reader: Any, user: Any, session: Any) -> bool:
    """Watch ``reader``'s session (if its user came from one); whether it is watched."""
    who = signed(user, session)
    if who is None:
        return False
    watch_here().add(reader, who)
    return True


def unwatch(reader: Any) -> None:
    watch_here().discard(reader)


def _logged_out(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        session_ended(session_key)


def connect_signals() -> None:
    """Called from revoke.connect_signals() (AppConfig.ready())."""
    user_logged_out.connect(_logged_out, dispatch_uid="liverooms.sessions.logout")


# From any thread (signal receivers): reach every event loop of the process. ----


def _each_loop(call: str, *args: Any) -> None:
    pairs = [
        (loop, here.sessions) for loop, here in runtime.every_loop() if here.sessions is not None
    ]
    for loop, current in pairs:
        if loop.is_closed():
            continue
        try:
            loop.call_soon_threadsafe(getattr(current, call) if call else current.wake.set, *args)
        except RuntimeError:
            pass  # the loop closed meanwhile


def session_ended(session_key: str) -> None:
    """Close this process's readers on ``session_key`` (thread-safe)."""
    _each_loop("end_session", session_key)


def sweep_soon() -> None:
    """Make every loop of this process sweep now (thread-safe)."""
    _each_loop("")


# The database side: one call per sweep. ----------------------------------------


def ended_sessions(watched: Iterable[Signed]) -> set[Signed]:
    """Which of ``watched`` no longer sign in their user. Database thread."""
    watched = set(watched)
    data = load_sessions({who.session_key for who in watched})
    ids_by_backend: dict[str, set[Any]] = {}
    for who in watched:
        session = data.get(who.session_key) or {}
        backend = session.get(auth.BACKEND_SESSION_KEY)
        if str(session.get(auth.SESSION_KEY)) == who.user_pk and backend:
            ids_by_backend.setdefault(backend, set()).add(session[auth.SESSION_KEY])
    users: dict[tuple[str, str], Any] = {}
    for backend, ids in ids_by_backend.items():
        if backend in settings.AUTHENTICATION_BACKENDS:
            for user in load_users(backend, ids):
                users[(backend, str(user.pk))] = user
    ended = set()
    for who in watched:
        session = data.get(who.session_key) or {}
        user = users.get((session.get(auth.BACKEND_SESSION_KEY, ""), who.user_pk))
        if user is None or str(session.get(auth.SESSION_KEY)) != who.user_pk:
            ended.add(who)
        elif not session_hash_matches(session.get(auth.HASH_SESSION_KEY), user):
            ended.add(who)
    return ended


def load_sessions(keys: set[str]) -> dict[str, dict[str, Any]]:
    """The live sessions among ``keys``, decoded; a missing key has ended.

    Database-backed engines (``db``, ``cached_db``) in one query per
    ``BATCH`` keys; any other engine one load per key, without writing.
    """
    store_class = import_string(settings.SESSION_ENGINE).SessionStore
    from django.contrib.sessions.backends.db import SessionStore as DatabaseStore

    if issubclass(store_class, DatabaseStore):
        model = store_class.get_model_class()
        decoder = store_class()
        found: dict[str, dict[str, Any]] = {}
        ordered = sorted(keys)
        now = timezone.now()
        for start in range(0, len(ordered), BATCH):
            rows = model.objects.filter(
                session_key__in=ordered[start : start + BATCH], expire_date__gt=now
            ).values_list("session_key", "session_data")
            found.update((key, decoder.decode(data)) for key, data in rows)
        return found
    return {key: store_class(key).load() for key in keys}


def load_users(backend_path: str, ids: set[Any]) -> list[Any]:
    """The users ``ids`` that ``backend_path`` still lets sign in."""
    from django.contrib.auth.backends import ModelBackend

    backend = auth.load_backend(backend_path)
    if isinstance(backend, ModelBackend):  # one query instead of get_user() per id
        model = auth.get_user_model()
        pks = [model._meta.pk.to_python(pk) for pk in ids]
        return [
            user
            for start in range(0, len(pks), BATCH)
            for user in model._default_manager.filter(pk__in=pks[start : start + BATCH])
            if backend.user_can_authenticate(user)
        ]
    users = (backend.get_user(model_pk) for model_pk in ids)
    return [user for user in users if user is not None]


# SSE: a streaming body that ends when its session does. -------------------------


class _Reader:
    def __init__(self) -> None:
        self.ended = asyncio.Event()

    async def session_ended(self) -> None:
        self.ended.set()


async def until_session_ends(
    body: AsyncIterator[str], user: Any, session: Any, farewell: str
) -> AsyncIterator[str]:
    """``body``, ended with ``farewell`` when the reader's session ends.

    For a reader that did not come from a session, ``body`` unchanged.
    """
    reader = _Reader()
    if not watch(reader, user, session):
        try:
            async for chunk in body:
                yield chunk
        finally:
            await _aclose(body)
        return
    ended = asyncio.ensure_future(reader.ended.wait())
    step: asyncio.Future[str] | None = None
    try:
        while True:
            step = asyncio.ensure_future(anext(body))
            await asyncio.wait({step, ended}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                break
            try:
                chunk = step.result()
            except StopAsyncIteration:
                return
            step = None
            yield chunk
        yield farewell
    finally:
        unwatch(reader)
        ended.cancel()
        if step is not None and not step.done():
            step.cancel()
            await asyncio.wait({step})
        await _aclose(body)


async def _aclose(body: Any) -> None:
    aclose = getattr(body, "aclose", None)
    if aclose is not None:
        await aclose()
