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
    # Alias in CHANNEL_LAYERS that the app talks to.
    "CHANNEL_LAYER": "default",
    # HTML allowed in live blog entry bodies; None keeps nh3's safe defaults.
    "ENTRY_ALLOWED_TAGS": None,
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
