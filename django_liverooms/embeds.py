"""Embeds and images of live blog entries.

**Embeds.** An entry's ``embed_url`` from an allow-listed provider (YouTube,
Vimeo, X/Twitter, Instagram; ``EMBED_PROVIDERS`` adds, replaces or removes
providers) is shown as the provider's player: an ``<iframe>`` whose ``src``
is built here from the id found in the URL by the provider's pattern, never
copied from the URL, and never fetched by the server (no oEmbed call at
render or save time). Any other URL stays a plain link. The markup has no
script and no inline style, so it needs no CSP exception beyond
``frame-src`` for the providers' player origins (docs/liveblog.md).

**Images.** An entry's optional image is a ``FileField`` in Django's
storage, checked without Pillow: at most ``ENTRY_IMAGE_MAX_BYTES`` bytes,
a name ending in one of :data:`IMAGE_TYPES`, and the file's first bytes
matching that type (a renamed script is refused).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .conf import conf

# name: (pattern with an ``id`` group, player URL with ``{id}``, or None for a link card)
BUILTIN_PROVIDERS: dict[str, dict[str, Any]] = {
    "youtube": {
        "pattern": r"https?://(?:www\.|m\.)?(?:youtube\.com/(?:watch\?(?:[^#]*&)?v=|shorts/|live/|embed/)|youtu\.be/)(?P<id>[A-Za-z0-9_-]{6,20})(?:[?&#].*)?",
        "player": "https://www.youtube-nocookie.com/embed/{id}",
    },
    "vimeo": {
        "pattern": r"https?://(?:www\.)?vimeo\.com/(?:video/)?(?P<id>[0-9]{1,12})(?:[/?#].*)?",
        "player": "https://player.vimeo.com/video/{id}?dnt=1",
    },
    "x": {
        "pattern": r"https?://(?:www\.|mobile\.)?(?:twitter|x)\.com/[A-Za-z0-9_]{1,15}/status(?:es)?/(?P<id>[0-9]{1,25})(?:[/?#].*)?",
        "player": "https://platform.twitter.com/embed/Tweet.html?id={id}&dnt=true",
    },
    "instagram": {
        "pattern": r"https?://(?:www\.)?instagram\.com/(?:p|reel|tv)/(?P<id>[A-Za-z0-9_-]{5,40})/?(?:[?#].*)?",
        "player": "https://www.instagram.com/p/{id}/embed/",
    },
}

URL_MAX_LENGTH = 500
_WEB_URL = re.compile(r"https?://[^\s<>\"']+\Z", re.IGNORECASE)


EMBED_FRAME_FIELDS = ("embed_url", "embed_provider", "embed_src")
# Entry frame fields blanked with the text when an entry is deleted (redaction).
ENTRY_MEDIA_FRAME_FIELDS = (*EMBED_FRAME_FIELDS, "image", "image_alt")


@dataclass(frozen=True)
class Embed:
    url: str  # as the editor gave it
    provider: str  # "" for a plain link
    player: str  # the iframe's src; "" for a plain link

    def frame_fields(self) -> dict[str, str]:
        return {"embed_url": self.url, "embed_provider": self.provider, "embed_src": self.player}


def providers() -> dict[str, dict[str, Any]]:
    """The built-in providers with ``EMBED_PROVIDERS`` merged over them (None removes one)."""
    merged = dict(BUILTIN_PROVIDERS)
    for name, provider in (conf.EMBED_PROVIDERS or {}).items():
        if provider is None:
            merged.pop(name, None)
        else:
            merged[name] = provider
    return merged


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def embed_for(url: str) -> Embed | None:
    """The embed of ``url``: a provider's player, or a plain link; None for no URL."""
    url = (url or "").strip()
    if not url or len(url) > URL_MAX_LENGTH or not _WEB_URL.match(url):
        return None  # only http(s) links: never a javascript: or data: URL
    for name, provider in providers().items():
        match = _compiled(provider["pattern"]).fullmatch(url)
        if match and provider.get("player"):
            # The id is all that is taken from the URL, and the pattern bounds it.
            return Embed(url, name, provider["player"].format(id=match.group("id")))
    return Embed(url, "", "")


def provider_errors(value: Any) -> list[str]:
    """What is wrong with an ``EMBED_PROVIDERS`` setting (for the system check)."""
    if not isinstance(value, dict):
        return ["it is not a dict"]
    problems = []
    for name, provider in value.items():
        if provider is None:
            continue
        if not isinstance(provider, dict) or not isinstance(provider.get("pattern"), str):
            problems.append(f"{name!r} needs a 'pattern' string")
            continue
        try:
            if "id" not in re.compile(provider["pattern"]).groupindex:
                problems.append(f"{name!r}'s pattern has no (?P<id>...) group")
        except re.error as exc:
            problems.append(f"{name!r}'s pattern does not compile: {exc}")
        player = provider.get("player")
        if player is not None and not (
            isinstance(player, str) and player.startswith("https://") and "{id}" in player
        ):
            problems.append(f"{name!r}'s player must be an https:// URL with {{id}}, or None")
    return problems


# Images ---------------------------------------------------------------------------

# extension: magic bytes at the start of the file
IMAGE_TYPES: dict[str, tuple[bytes, ...]] = {
    "jpg": (b"\xff\xd8\xff",),
    "jpeg": (b"\xff\xd8\xff",),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "gif": (b"GIF87a", b"GIF89a"),
    "webp": (b"RIFF",),  # and "WEBP" at byte 8
}


def _looks_like(head: bytes, extension: str) -> bool:
    if not any(head.startswith(magic) for magic in IMAGE_TYPES[extension]):
        return False
    return extension != "webp" or head[8:12] == b"WEBP"


def validate_image(file: Any) -> None:
    """A FileField validator: size, extension, and the bytes of that type."""
    limit = conf.ENTRY_IMAGE_MAX_BYTES
    if file.size is not None and file.size > limit:
        raise ValidationError(
            _("The image is %(size)d bytes; the limit is %(limit)d."),
            code="too_large",
            params={"size": file.size, "limit": limit},
        )
    extension = file.name.rpartition(".")[2].lower() if "." in file.name else ""
    if extension not in IMAGE_TYPES:
        raise ValidationError(_("Upload a JPEG, PNG, GIF or WebP image."), code="bad_type")
    position = file.tell() if hasattr(file, "tell") else None
    file.seek(0)
    head = file.read(12)
    if position is not None:
        file.seek(position)
    if not _looks_like(head, extension):
        raise ValidationError(
            _("The file is not the image its name says (%(extension)s)."),
            code="bad_content",
            params={"extension": extension},
        )
