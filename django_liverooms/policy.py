"""Who may read and post where, and what readers call them.

``LIVEROOMS["POLICY"]`` names the class (default :class:`DefaultPolicy`).
Subclass it to change one rule. Methods run in a database thread, so they may
query the database; ``scope`` is the connection's ASGI scope (an HTTP request
has none), whose ``url_route`` kwargs carry a capturing prefix's values.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

from django.utils.module_loading import import_string
from django.utils.translation import gettext

from .conf import conf
from .models import LiveBlog, Room, Stream, display_name
from .streams import Sender


class DefaultPolicy:
    """The documented defaults.

    - Chat rooms: anyone may read; signed-in users may post, and guests too
      when ``LIVEROOMS["ANONYMOUS_CHAT"]`` is true.
    - Live blogs: anyone may read; nobody posts over the socket. ``can_post``
      tells whether the user may publish entries through Django (the
      ``add_entry`` permission).
    """

    def can_read(self, user: Any, stream: Stream, scope: dict[str, Any] | None = None) -> bool:
        return True

    def can_post(self, user: Any, stream: Stream, scope: dict[str, Any] | None = None) -> bool:
        if isinstance(stream, Room):
            return bool(user.is_authenticated or conf.ANONYMOUS_CHAT)
        if isinstance(stream, LiveBlog):
            return bool(user.is_authenticated and user.has_perm("django_liverooms.add_entry"))
        return False

    def display_name(self, user: Any) -> str:
        """The name readers see for a signed-in user."""
        return display_name(user)

    def guest_name(self, guest_key: str) -> str:
        """The name readers see for an anonymous visitor."""
        return gettext("Guest %(id)s") % {"id": hashlib.sha256(guest_key.encode()).hexdigest()[:4]}


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


@lru_cache(maxsize=8)
def _load(path: str) -> Any:
    return import_string(path)()


def get_policy() -> DefaultPolicy:
    return _load(conf.POLICY)
