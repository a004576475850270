"""Wire protocol v1: parse inbound frames, build outbound frames.

Pure functions only (no database, no channel layer, no settings), so that
every branch can be tested and fuzzed without a server. The contract lives in
``docs/protocol.md``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

PROTOCOL_VERSION = 1

SLUG_RE = re.compile(r"[a-z0-9_-]{1,64}")
CLIENT_ID_MAX = 64

# Error codes (docs/protocol.md). ``unavailable`` is an addition to v1.
BAD_JSON = "bad_json"
BAD_FRAME = "bad_frame"
UNKNOWN_TYPE = "unknown_type"
TOO_LONG = "too_long"
RATE_LIMITED = "rate_limited"
FORBIDDEN = "forbidden"
UNAVAILABLE = "unavailable"
# Addition: the ``after`` a client resumes from cannot be continued without a
# gap (beyond the stream's seq, or pruned by retention): reload.
HISTORY_GONE = "history_gone"
# Additions (issue 16): the policy's clean_message refused the message (do not
# resend it); the room's slow mode refused it (resend after ``retry_after``).
REJECTED = "rejected"
SLOW_MODE = "slow_mode"

# Close codes. 4503 is an addition: the server lost its channel layer for a
# moment; reconnect (with backoff) and resume with ?after=. Not 1012 (Service
# Restart): daphne (autobahn) only sends 1000 or 3000-4999.
CLOSE_UNAVAILABLE = 4503
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_ABUSE = 4429
# Addition: the socket did not keep up with its frames (outbox.py); resume with ?after=.
CLOSE_TOO_SLOW = 4408


def is_valid_slug(slug: object) -> bool:
    return isinstance(slug, str) and SLUG_RE.fullmatch(slug) is not None


MAX_SEQ = 2**63 - 1  # the database's bigint


def parse_uint(text: str, high: int = MAX_SEQ) -> int:
    """A query-string integer from 0 to ``high`` (a seq, a limit); ValueError otherwise."""
    if not text.isascii() or not text.isdigit() or len(text) > 19 or int(text) > high:
        raise ValueError(text)
    return int(text)


# Inbound ------------------------------------------------------------------


class ProtocolError(Exception):
    """An inbound frame that gets an ``error`` frame back."""

    def __init__(
        self,
        code: str,
        detail: str,
        client_id: str | None = None,
        *,
        close_code: int | None = None,
        retry_after: int | None = None,
    ):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.client_id = client_id
        # Set when the connection is closed after the error frame (4403, 4429).
        self.close_code = close_code
        self.retry_after = retry_after  # seconds (slow_mode)

    def frame(self) -> dict[str, Any]:
        return error(self.code, self.detail, self.client_id, retry_after=self.retry_after)


@dataclass(frozen=True)
class SendMessage:
    body: str
    client_id: str
    # Addition (issue 16): ids of uploaded attachments; () for none.
    attachments: tuple[int, ...] = ()
    # Addition (issue 16): the id of the message it replies to.
    reply_to: int | None = None


@dataclass(frozen=True)
class Typing:
    pass


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class EditMessage:
    id: int
    body: str


@dataclass(frozen=True)
class DeleteMessage:
    id: int


@dataclass(frozen=True)
class Mute:
    user_id: int
    minutes: int | None  # None: until unmuted


@dataclass(frozen=True)
class Unmute:
    user_id: int


@dataclass(frozen=True)
class React:
    """A reader's reaction to a live blog (``entry`` None) or one of its entries."""

    emoji: str
    entry: int | None


@dataclass(frozen=True)
class ReactToMessage:
    """A signed-in reader's reaction to a chat message, set or taken back (issue 16, addition)."""

    id: int
    emoji: str
    on: bool


@dataclass(frozen=True)
class Read:
    """A signed-in reader has read a chat room up to ``seq`` (issue 16, addition)."""

    seq: int


# Flags (issue 16, addition): a signed-in reader reports a chat message to the
# site's moderators (moderation.py); answered to the reporter alone.
FLAG_REASON_MAX = 500  # characters of a flag's optional reason


@dataclass(frozen=True)
class FlagMessage:
    id: int
    reason: str  # "" when none was given


Command = (
    SendMessage
    | Typing
    | Ping
    | EditMessage
    | DeleteMessage
    | Mute
    | Unmute
    | React
    | Read
    | ReactToMessage
    | FlagMessage
)
# Commands that write, and so count against the send rate.
WRITES = (SendMessage, EditMessage, DeleteMessage, Mute, Unmute, ReactToMessage, FlagMessage)

MODERATION_COMMANDS = frozenset({"message.edit", "message.delete", "mute", "unmute"})
CHAT_COMMANDS = (
    frozenset({"message", "typing", "ping", "read", "message.react", "flag"}) | MODERATION_COMMANDS
)
LIVEBLOG_COMMANDS = frozenset({"ping", "reaction"})
EMOJI_MAX_LENGTH = 16  # characters of one allowed reaction (a flag or a ZWJ sequence fits)


@dataclass(frozen=True, slots=True)  # one per connection
class Limits:
    max_frame_bytes: int = 16384
    max_body_length: int = 4000
    max_mute_minutes: int = 60 * 24 * 365


MAX_NUMBER_DIGITS = 64


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_int(text: str) -> int:
    # The same answer on every Python (3.11+ refuses over 4300 digits, 3.10 does not).
    if len(text) > MAX_NUMBER_DIGITS:
        raise ValueError(f"a number of {len(text)} digits is too long")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")) or len(text) > MAX_NUMBER_DIGITS * 2:
        raise ValueError(f"the number {text[:32]}... is out of range")
    return value


MAX_DEPTH = 32  # nesting levels; no valid frame comes close
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def _nesting(text: str) -> int:
    """How deep the arrays and objects of ``text`` nest (strings ignored)."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _decode(text: str | None, data: bytes | None) -> dict[str, Any]:
    if text is None:
        raise ProtocolError(BAD_JSON, "Frames must be text, not binary.")
    if not text:
        raise ProtocolError(BAD_JSON, "Empty frame.")
    # Checked before parsing: whether json.loads hits a RecursionError on deep
    # input differs between Pythons (3.13 parses 5,000 levels).
    if _nesting(text) > MAX_DEPTH:
        raise ProtocolError(BAD_JSON, f"Not valid JSON: nested deeper than {MAX_DEPTH} levels.")
    try:
        value = json.loads(
            text, parse_constant=_reject_constant, parse_int=_parse_int, parse_float=_parse_float
        )
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(BAD_JSON, f"Not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError(BAD_JSON, "A frame must be a JSON object.")
    return value


def _clean_text(value: str, field: str, client_id: str | None) -> str:
    # json.loads lets lone surrogates and NUL through; neither can be stored
    # (PostgreSQL rejects both) or sent back as valid UTF-8.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError(
            BAD_FRAME, f"{field} contains an unpaired surrogate.", client_id
        ) from None
    if "\x00" in value:
        raise ProtocolError(BAD_FRAME, f"{field} contains a NUL character.", client_id)
    return value


def _client_id(frame: dict[str, Any]) -> str:
    client_id = frame.get("client_id")
    if client_id is None:
        raise ProtocolError(BAD_FRAME, "client_id is required.")
    if not isinstance(client_id, str) or not 1 <= len(client_id) <= CLIENT_ID_MAX:
        raise ProtocolError(
            BAD_FRAME, f"client_id must be a string of 1 to {CLIENT_ID_MAX} characters."
        )
    return _clean_text(client_id, "client_id", None)


def _body(frame: dict[str, Any], limits: Limits, client_id: str | None) -> str:
    body = frame.get("body")
    if not isinstance(body, str):
        raise ProtocolError(BAD_FRAME, "body must be a string.", client_id)
    body = _clean_text(body, "body", client_id)
    if not body.strip():
        raise ProtocolError(BAD_FRAME, "body must not be blank.", client_id)
    if len(body) > limits.max_body_length:
        raise ProtocolError(
            TOO_LONG,
            f"body is {len(body)} characters; the limit is {limits.max_body_length}.",
            client_id,
        )
    return body


def _send_message(frame: dict[str, Any], limits: Limits) -> SendMessage:
    client_id = _client_id(frame)
    attachments = _attachment_ids(frame, client_id)
    body = frame.get("body")
    if attachments and isinstance(body, str) and not body.strip():
        body = ""  # addition (issue 16): a message of attachments alone
    else:
        body = _body(frame, limits, client_id)
    reply_to = frame.get("reply_to")
    if reply_to is not None:
        try:
            reply_to = _positive_id(frame, "reply_to")
        except ProtocolError as exc:
            raise ProtocolError(BAD_FRAME, exc.detail, client_id) from None
    return SendMessage(body=body, client_id=client_id, attachments=attachments, reply_to=reply_to)


MAX_ATTACHMENTS = 4  # attachment ids in one ``message`` (addition, issue 16)


def _attachment_ids(frame: dict[str, Any], client_id: str | None) -> tuple[int, ...]:
    """A ``message`` frame's ``attachments``: absent, null or [] for none, else
    1 to MAX_ATTACHMENTS distinct integer ids."""
    ids = frame.get("attachments")
    if ids is None or ids == []:
        return ()
    if (
        not isinstance(ids, list)
        or len(ids) > MAX_ATTACHMENTS
        or not all(
            isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= MAX_SEQ for i in ids
        )
        or len(set(ids)) != len(ids)
    ):
        raise ProtocolError(
            BAD_FRAME,
            f"attachments must be a list of at most {MAX_ATTACHMENTS} distinct attachment ids.",
            client_id,
        )
    return tuple(ids)


def _positive_id(frame: dict[str, Any], field: str) -> int:
    value = frame.get(field)
    # bool is an int in Python, not in JSON; 1.0 is a float in JSON.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SEQ:
        raise ProtocolError(BAD_FRAME, f"{field} must be an integer from 1 to {MAX_SEQ}.")
    return value


def _minutes(frame: dict[str, Any], limits: Limits) -> int | None:
    value = frame.get("minutes")
    if value is None:
        return None
    high = limits.max_mute_minutes
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise ProtocolError(BAD_FRAME, f"minutes must be null or an integer from 1 to {high}.")
    return value


def _moderation(kind: str, frame: dict[str, Any], limits: Limits) -> Command:
    if kind == "message.edit":
        message_id = _positive_id(frame, "id")
        return EditMessage(id=message_id, body=_body(frame, limits, None))
    if kind == "message.delete":
        return DeleteMessage(id=_positive_id(frame, "id"))
    if kind == "mute":
        return Mute(user_id=_positive_id(frame, "user_id"), minutes=_minutes(frame, limits))
    return Unmute(user_id=_positive_id(frame, "user_id"))


def parse(
    text: str | None,
    data: bytes | None = None,
    *,
    accepts: Iterable[str] = CHAT_COMMANDS,
    limits: Limits = Limits(),
) -> Command:
    """Turn one inbound WebSocket frame into a Command, or raise ProtocolError.

    ``accepts`` is the set of ``type`` values this endpoint takes.
    """
    if text is not None and len(text) * 4 > limits.max_frame_bytes:
        # Cheap bound first; the exact UTF-8 size only for frames near it.
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > limits.max_frame_bytes:
            raise ProtocolError(
                TOO_LONG,
                f"Frame is {size} bytes; the limit is {limits.max_frame_bytes}.",
            )
    frame = _decode(text, data)
    kind = frame.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(BAD_FRAME, "type must be a string.")
    if kind not in accepts:
        raise ProtocolError(UNKNOWN_TYPE, f"This endpoint does not accept {kind[:64]!r} frames.")
    if kind == "message":
        return _send_message(frame, limits)
    if kind == "typing":
        return Typing()
    if kind in MODERATION_COMMANDS:
        return _moderation(kind, frame, limits)
    if kind == "reaction":
        return _reaction(frame)
    if kind == "message.react":
        return _message_reaction(frame)
    if kind == "read":
        return Read(seq=_positive_id(frame, "seq"))
    if kind == "flag":
        return _flag(frame)
    return Ping()


def _reaction(frame: dict[str, Any]) -> React:
    emoji = frame.get("emoji")
    if not isinstance(emoji, str) or not 0 < len(emoji) <= EMOJI_MAX_LENGTH:
        raise ProtocolError(
            BAD_FRAME, f"emoji must be a string of 1 to {EMOJI_MAX_LENGTH} characters."
        )
    entry = frame.get("entry")
    if entry is not None:
        entry = _positive_id(frame, "entry")
    return React(emoji=emoji, entry=entry)


def _message_reaction(frame: dict[str, Any]) -> ReactToMessage:
    emoji = frame.get("emoji")
    if not isinstance(emoji, str) or not 0 < len(emoji) <= EMOJI_MAX_LENGTH:
        raise ProtocolError(
            BAD_FRAME, f"emoji must be a string of 1 to {EMOJI_MAX_LENGTH} characters."
        )
    on = frame.get("on", True)
    if not isinstance(on, bool):
        raise ProtocolError(BAD_FRAME, "on must be true (react) or false (take it back).")
    return ReactToMessage(id=_positive_id(frame, "id"), emoji=emoji, on=on)


def _flag(frame: dict[str, Any]) -> FlagMessage:
    message_id = _positive_id(frame, "id")
    reason = frame.get("reason")
    if reason is None:
        reason = ""
    if not isinstance(reason, str) or len(reason) > FLAG_REASON_MAX:
        raise ProtocolError(
            BAD_FRAME, f"reason must be null or a string of at most {FLAG_REASON_MAX} characters."
        )
    return FlagMessage(id=message_id, reason=_clean_text(reason, "reason", None).strip())


def flagged(*, id: int) -> dict[str, Any]:
    """The answer to a ``flag``, to the reporter alone (not a stream event: no seq)."""
    return {"type": "flagged", "id": id}


# Outbound -----------------------------------------------------------------


def encode(frame: dict[str, Any]) -> str:
    """The one JSON encoding of an outbound frame.

    DjangoJSONEncoder lets host frames carry datetimes, decimals and UUIDs.
    """
    return json.dumps(
        frame, ensure_ascii=False, separators=(",", ":"), allow_nan=False, cls=DjangoJSONEncoder
    )


def user_info(user_id: int | None, name: str) -> dict[str, Any]:
    return {"id": user_id, "name": name}


def welcome(
    stream: str,
    slug: str,
    seq: int,
    user: dict[str, Any],
    can_post: bool,
    can_moderate: bool = False,
    slow_mode: int = 0,
    read_seq: int | None = None,
) -> dict[str, Any]:
    frame = {
        "type": "welcome",
        "stream": stream,
        "slug": slug,
        "seq": seq,
        "user": user,
        "can_post": can_post,
        "can_moderate": can_moderate,
        "version": PROTOCOL_VERSION,
    }
    if slow_mode:  # addition (issue 16), present only when on
        frame["slow_mode"] = slow_mode
    if read_seq is not None:  # addition (issue 16): a signed-in user's read marker
        frame["read_seq"] = read_seq
    return frame


def resume_errors(
    after: int | None, bad_after: str | None, gone: bool, *, source: str = "after"
) -> list[dict[str, Any]]:
    """The ``error`` that follows ``welcome`` when the resume point was unusable.

    ``bad_after`` is the refused value (the latest history is sent instead);
    ``gone``: the events after ``after`` are no longer kept. ``source`` names
    where the value came from (``after``, or SSE's ``Last-Event-ID or after``).
    """
    if bad_after is not None:
        return [
            error(
                BAD_FRAME,
                f"{source} must be a seq (a non-negative integer), not {bad_after!r}; "
                "sending the latest history instead.",
            )
        ]
    if gone:
        return [
            error(
                HISTORY_GONE,
                f"Events after seq {after} are no longer kept (or never existed); "
                "reload: the history that follows is the latest, not a continuation.",
            )
        ]
    return []


def history_text(item_texts: Iterable[str], complete: bool) -> str:
    """A ``history`` frame built from already-encoded frames, without decoding them."""
    return '{"type":"history",' + _items_and_complete(item_texts, complete)


def page_text(item_texts: Iterable[str], complete: bool) -> str:
    """The HTTP history API's ``{"items": [...], "complete": bool}`` body."""
    return "{" + _items_and_complete(item_texts, complete)


def _items_and_complete(item_texts: Iterable[str], complete: bool) -> str:
    return f'"items":[{",".join(item_texts)}],"complete":{"true" if complete else "false"}}}'


def message(
    *,
    id: int,
    slug: str,
    body: str,
    author: dict[str, Any],
    created: str,
    client_id: str | None,
    attachments: list[dict[str, Any]] | None = None,
    reply_to: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``message`` frame without its seq (the stream assigns it on commit)."""
    frame = {
        "type": "message",
        "id": id,
        "slug": slug,
        "body": body,
        "author": author,
        "created": created,
        "client_id": client_id,
    }
    if attachments:  # addition (issue 16), present only when there are some
        frame["attachments"] = attachments
    if reply_to is not None:  # addition (issue 16): the quoted message (quote())
        frame["reply_to"] = reply_to
    return _with_mentions(frame, body)


def attachment(*, id: int, name: str, type: str, size: int, url: str) -> dict[str, Any]:
    """An attachment as a ``message`` frame (and the upload's answer) describe it."""
    return {"id": id, "name": name, "type": type, "size": size, "url": url}


# Replies (issue 16, addition): a message quotes the one it answers.
QUOTE_LENGTH = 200  # characters of the quoted body


def quote(*, id: int, author: dict[str, Any], body: str, removed: bool = False) -> dict[str, Any]:
    """What a reply's ``reply_to`` shows of the message it answers: its id,
    author and the start of its body; only the id (``redacted``) once removed."""
    if removed:
        return {"id": id, "redacted": True}
    cut = body if len(body) <= QUOTE_LENGTH else body[: QUOTE_LENGTH - 1] + "\u2026"
    return {"id": id, "author": author, "body": cut}


def with_quote(frame: dict[str, Any], quoted: dict[str, Any]) -> dict[str, Any]:
    """A stored reply showing the message it answers as it is now (``quoted``
    from :func:`quote`): edited, or removed."""
    current = frame.get("reply_to")
    if not isinstance(current, dict) or current.get("id") != quoted["id"]:
        return frame
    return {**frame, "reply_to": quoted}


# Reactions to chat messages (issue 16, addition): stored, one per user,
# emoji and message; readers get the counts, coalesced (message_reactions.py).
REACTION_USERS_MAX = 20  # user ids listed per emoji (count is always complete)


def message_reactions(*, id: int, reactions: list[dict[str, Any]]) -> dict[str, Any]:
    """A message's reactions now: ``[{"emoji", "count", "users": [ids]}]``."""
    return {"type": "message.reactions", "id": id, "reactions": reactions}


def with_current_reactions(frame: dict[str, Any], reacted: dict[str, Any]) -> dict[str, Any]:
    """A stored ``message`` frame carrying a later ``message.reactions``' counts
    (``reactions`` present only when there are some)."""
    if frame.get("type") != "message" or frame.get("redacted"):
        return frame
    out = dict(frame)
    if reacted["reactions"]:
        out["reactions"] = reacted["reactions"]
    else:
        out.pop("reactions", None)
    return out


def message_edited(*, id: int, body: str, edited: str) -> dict[str, Any]:
    return _with_mentions(
        {"type": "message.edited", "id": id, "body": body, "edited": edited}, body
    )


# Mentions (issue 16, addition): ``@username`` in a chat message's body.
MAX_MENTIONS = 10  # names taken from one message
MENTION_NAME_MAX = 150  # Django's username length
# "@" at the start or after a character that cannot be part of a username
# (so "bob@example.com" mentions nobody), then a name ending in a word character.
_MENTION = re.compile(r"(?<![\w.+@-])@(\w[\w.+-]*)")


def mentions(body: str) -> list[str]:
    """The usernames ``@named`` in ``body``: in order, each once, at most
    ``MAX_MENTIONS``; trailing ``.``, ``+`` and ``-`` are punctuation."""
    names: list[str] = []
    for match in _MENTION.finditer(body):
        name = match.group(1).rstrip(".+-")
        if len(name) <= MENTION_NAME_MAX and name not in names:
            names.append(name)
            if len(names) == MAX_MENTIONS:
                break
    return names


def _with_mentions(frame: dict[str, Any], body: str) -> dict[str, Any]:
    named = mentions(body)
    if named:  # present only when the body names someone: v1 frames stay as they were
        frame["mentions"] = named
    return frame


def read(read_seq: int) -> dict[str, Any]:
    """A signed-in reader's read marker in a chat room now (not a stream event: no seq)."""
    return {"type": "read", "read_seq": read_seq}


def message_deleted(*, id: int) -> dict[str, Any]:
    return {"type": "message.deleted", "id": id}


def entry(
    *,
    id: int,
    slug: str,
    title: str,
    body: str,
    author: dict[str, Any],
    published: str,
    pinned: bool = False,
    key: bool = False,
    media: dict[str, str] | None = None,
) -> dict[str, Any]:
    frame = {
        "type": "entry",
        "id": id,
        "slug": slug,
        "title": title,
        "body": body,
        "author": author,
        "published": published,
    }
    # Additions (issue 14), present only when true: v1 frames stay as they were.
    if pinned:
        frame["pinned"] = True
    if key:
        frame["key"] = True
    frame.update(media or {})  # embed_url, embed_provider, embed_src, image, image_alt
    return frame


def entry_edited(
    *, id: int, title: str, body: str, edited: str, media: dict[str, str] | None = None
) -> dict[str, Any]:
    frame = {"type": "entry.edited", "id": id, "title": title, "body": body, "edited": edited}
    frame.update(media or {})  # additions: the entry's embed and image fields
    return frame


def entry_deleted(*, id: int) -> dict[str, Any]:
    return {"type": "entry.deleted", "id": id}


# Live blog publishing (issue 14; additions to v1, docs/protocol.md) -----------

LIVEBLOG_STATUSES = ("upcoming", "live", "ended")


def liveblog_status(
    *, status: str, coverage_start: str | None, coverage_end: str | None
) -> dict[str, Any]:
    """A live blog's coverage is upcoming, live or ended (a stream event)."""
    return {
        "type": "liveblog.status",
        "status": status,
        "coverage_start": coverage_start,
        "coverage_end": coverage_end,
    }


def entry_marked(*, id: int, pinned: bool, key: bool) -> dict[str, Any]:
    """A live entry was pinned or unpinned, marked a key entry or not."""
    return {"type": "entry.marked", "id": id, "pinned": pinned, "key": key}


def reactions(counts: list[dict[str, Any]]) -> dict[str, Any]:
    """Reactions received since the last such frame (not a stream event: no seq)."""
    return {"type": "reactions", "counts": counts}


def with_seq(frame: dict[str, Any], seq: int) -> dict[str, Any]:
    """The frame with ``seq`` placed right after ``type``."""
    if not isinstance(frame.get("type"), str) or not frame["type"]:
        raise ValueError("A stream frame needs a non-empty string 'type'.")
    return {
        "type": frame["type"],
        "seq": seq,
        **{k: v for k, v in frame.items() if k not in ("type", "seq")},
    }


# Stored frames after a change (redaction) -------------------------------------
#
# A stored event about an object (a message, an entry, a host model's row) is
# rewritten when the object is deleted, unpublished or edited, so that no read
# path serves text that is gone. Frames of one object form a *family* by type:
# ``message``, ``message.edited``, ``message.deleted``.

# The text fields blanked when their object is deleted or unpublished.
REDACTED_FIELDS = ("body", "title")
# Names shown to readers are cut to this many characters (Message.author_name).
NAME_MAX_LENGTH = 150


def shown_name(name: str, limit: int = NAME_MAX_LENGTH) -> str:
    """``name`` cut to ``limit`` (at least 1) characters, an ellipsis marking the cut."""
    if len(name) <= limit:
        return name
    return name[: limit - 1] + "\u2026"


def change_of(frame_type: str) -> tuple[str, str] | None:
    """``("message", "deleted")`` for ``"message.deleted"``; None unless the
    type ends in ``.deleted``, ``.edited``, ``.marked`` or ``.reactions``."""
    family, dot, change = frame_type.rpartition(".")
    if dot and family and change in ("deleted", "edited", "marked", "reactions"):
        return family, change
    return None


def redacted(
    frame: dict[str, Any],
    fields: Iterable[str] = REDACTED_FIELDS,
    *,
    erase_author: bool = False,
) -> dict[str, Any]:
    """A stored frame of a deleted object: its text fields ``""``, ``"redacted": true``.

    Every other field (type, seq, id, slug, times) is kept, so resume and the
    client's bookkeeping are unchanged. ``erase_author``: the author too
    (id null, name ""), for a data-protection purge.
    """
    out = dict(frame)
    for field in fields:
        if isinstance(out.get(field), str):
            out[field] = ""
    if erase_author and isinstance(out.get("author"), dict):
        out["author"] = user_info(None, "")
    if "body" in fields:
        out.pop("mentions", None)  # who the body named goes with it
        out.pop("attachments", None)  # and its files (no longer served)
        out.pop("reactions", None)  # and who reacted to it
        out.pop("reply_to", None)  # and what it quoted
    out["redacted"] = True
    return out


def with_current_text(frame: dict[str, Any], edit: dict[str, Any]) -> dict[str, Any]:
    """A stored frame of an edited object, carrying the ``edit`` frame's text.

    Each field of ``edit`` (a ``*.edited`` frame) the stored frame has is
    replaced, and ``edited`` is set to the edit's time, so the text from
    before the edit is nowhere. A redacted frame stays redacted.
    """
    if frame.get("redacted"):
        return frame
    out = dict(frame)
    for key, value in edit.items():
        if key not in ("type", "seq", "id", "edited") and key in out:
            out[key] = value
    if "edited" in edit:
        out["edited"] = edit["edited"]
    if out.get("type") in ("message", "message.edited") and "body" in edit:
        out.pop("mentions", None)  # the names of the current body, if any
        if edit.get("mentions"):
            out["mentions"] = edit["mentions"]
    return out


def with_current_marks(frame: dict[str, Any], marked: dict[str, Any]) -> dict[str, Any]:
    """A stored ``entry`` frame carrying the marks of a later ``entry.marked``
    (``pinned`` and ``key`` present only when true, as :func:`entry` has them)."""
    if frame.get("type") != "entry" or frame.get("redacted"):
        return frame
    out = dict(frame)
    for mark in ("pinned", "key"):
        if marked.get(mark):
            out[mark] = True
        else:
            out.pop(mark, None)
    return out


def rewrite_text(text: str, rewrite: Any) -> str:
    """Apply ``rewrite`` (a frame -> frame function) to an encoded frame."""
    return encode(rewrite(json.loads(text)))


def typing(user: dict[str, Any]) -> dict[str, Any]:
    return {"type": "typing", "user": user}


def presence(count: int, users: list[dict[str, Any]]) -> dict[str, Any]:
    """``count`` is every distinct user; ``users`` may be a capped list of them."""
    return {"type": "presence", "count": count, "users": users}


def muted(*, user_id: int, until: str | None) -> dict[str, Any]:
    """The answer to a moderator's ``mute`` (an addition to v1)."""
    return {"type": "muted", "user_id": user_id, "until": until}


def unmuted(*, user_id: int) -> dict[str, Any]:
    return {"type": "unmuted", "user_id": user_id}


def pong() -> dict[str, Any]:
    return {"type": "pong"}


def error(
    code: str, detail: str, client_id: str | None = None, *, retry_after: int | None = None
) -> dict[str, Any]:
    frame = {"type": "error", "code": code, "detail": detail, "client_id": client_id}
    if retry_after is not None:  # addition (issue 16): slow_mode's wait, in seconds
        frame["retry_after"] = retry_after
    return frame


# Server-Sent Events (the live blog's ``/stream``) -----------------------------

SSE_KEEPALIVE = ": keep-alive\n\n"


def sse_retry(milliseconds: int) -> str:
    """How long a browser's EventSource waits before it reconnects."""
    return f"retry: {milliseconds}\n\n"


def sse_event(text: str, seq: int | None = None) -> str:
    """One SSE event carrying an encoded frame; its id is the frame's seq, if any.

    ``encode()`` never writes a raw line break, so the frame is one ``data:`` line.
    """
    if seq is None:
        return f"data: {text}\n\n"
    return f"id: {seq}\ndata: {text}\n\n"
