"""Live blog entry bodies are HTML; this is where it is made safe.

nh3 (Rust's ammonia) does the work: a maintained allow-list sanitiser, which
regexes are not.
"""

from __future__ import annotations

import nh3

from .conf import conf


def clean_html(html: str) -> str:
    tags = conf.ENTRY_ALLOWED_TAGS
    if tags is None:
        return nh3.clean(html)
    return nh3.clean(html, tags=set(tags))
