"""Handwritten bad inputs, each with the exact frame the server answers.

Shared by tests/test_bad_input.py (in process) and tests/test_live.py (a real
daphne server). Each case is sent on its own connection, to the chat room
``lobby`` by a moderator of it (so moderation frames get past the policy and
their fields are what is judged), or to the live blog ``match-day``.
"""

import json

MAX = 9223372036854775807
ID_RANGE = f"id must be an integer from 1 to {MAX}."
USER_ID_RANGE = f"user_id must be an integer from 1 to {MAX}."
MINUTES_RANGE = "minutes must be null or an integer from 1 to 525600."
BINARY = "Frames must be text, not binary."
NOT_OBJECT = "A frame must be a JSON object."
TYPE_NOT_STRING = "type must be a string."
CLIENT_ID_RANGE = "client_id must be a string of 1 to 64 characters."


def error(code, detail, client_id=None):
    return {"type": "error", "code": code, "detail": detail, "client_id": client_id}


def unknown(kind_repr):
    return error("unknown_type", f"This endpoint does not accept {kind_repr} frames.")


def message(**fields):
    return json.dumps({"type": "message", **fields})


def frame(kind, **fields):
    return json.dumps({"type": kind, **fields})


BIG_FRAME = json.dumps({"type": "ping", "pad": "x" * 16400})
BIG_UTF8_FRAME = json.dumps({"type": "ping", "pad": "é" * 8200}, ensure_ascii=False)
LONG_TYPE = "t" * 1000

# (name, stream, payload (str: a text frame, bytes: a binary frame), answer)
# ``answer`` is the exact frame, or (code, detail prefix) where the detail
# quotes a message that differs between Python versions.
CASES = [
    # Not text, not JSON, not an object.
    ("binary", "chat", b"\x00\x01", error("bad_json", BINARY)),
    ("empty binary", "chat", b"", error("bad_json", BINARY)),
    ("json in binary", "chat", b'{"type": "ping"}', error("bad_json", BINARY)),
    ("invalid utf-8 in binary", "chat", b"\xff\xfe\xc3(", error("bad_json", BINARY)),
    ("empty text", "chat", "", error("bad_json", "Empty frame.")),
    (
        "blank text",
        "chat",
        " ",
        error("bad_json", "Not valid JSON: Expecting value: line 1 column 2 (char 1)"),
    ),
    (
        "not json",
        "chat",
        "{nope",
        error(
            "bad_json",
            "Not valid JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
    ),
    (
        "single quotes",
        "chat",
        "{'type': 'ping'}",
        error(
            "bad_json",
            "Not valid JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
    ),
    (
        "truncated",
        "chat",
        '{"type": "ping"',
        error("bad_json", "Not valid JSON: Expecting ',' delimiter: line 1 column 16 (char 15)"),
    ),
    (
        "two objects",
        "chat",
        '{"type": "ping"}{"type": "ping"}',
        error("bad_json", "Not valid JSON: Extra data: line 1 column 17 (char 16)"),
    ),
    ("array", "chat", "[]", error("bad_json", NOT_OBJECT)),
    ("array of a frame", "chat", '[{"type": "ping"}]', error("bad_json", NOT_OBJECT)),
    ("string", "chat", '"ping"', error("bad_json", NOT_OBJECT)),
    ("null", "chat", "null", error("bad_json", NOT_OBJECT)),
    ("true", "chat", "true", error("bad_json", NOT_OBJECT)),
    ("number", "chat", "42", error("bad_json", NOT_OBJECT)),
    (
        "NaN",
        "chat",
        '{"type": "ping", "x": NaN}',
        error("bad_json", "Not valid JSON: NaN is not valid JSON"),
    ),
    (
        "Infinity",
        "chat",
        '{"type": "ping", "x": Infinity}',
        error("bad_json", "Not valid JSON: Infinity is not valid JSON"),
    ),
    (
        "-Infinity",
        "chat",
        '{"type": "ping", "x": -Infinity}',
        error("bad_json", "Not valid JSON: -Infinity is not valid JSON"),
    ),
    (
        "huge integer",
        "chat",
        '{"type": "ping", "x": ' + "9" * 100 + "}",
        error("bad_json", "Not valid JSON: a number of 100 digits is too long"),
    ),
    (
        "huge negative integer",
        "chat",
        '{"type": "ping", "x": -' + "9" * 5000 + "}",
        error("bad_json", "Not valid JSON: a number of 5001 digits is too long"),
    ),
    (
        "float overflow",
        "chat",
        '{"type": "ping", "x": 1e999}',
        error("bad_json", "Not valid JSON: the number 1e999... is out of range"),
    ),
    (
        "negative float overflow",
        "chat",
        '{"type": "ping", "x": -1e999}',
        error("bad_json", "Not valid JSON: the number -1e999... is out of range"),
    ),
    ("deep arrays", "chat", "[" * 5000 + "]" * 5000, ("bad_json", "Not valid JSON: ")),
    ("deep objects", "chat", '{"a":' * 2500 + "1" + "}" * 2500, ("bad_json", "Not valid JSON: ")),
    (
        "frame over the byte limit",
        "chat",
        BIG_FRAME,
        error("too_long", f"Frame is {len(BIG_FRAME)} bytes; the limit is 16384."),
    ),
    (
        "frame over the byte limit in UTF-8 only",
        "chat",
        BIG_UTF8_FRAME,
        error("too_long", f"Frame is {len(BIG_UTF8_FRAME.encode())} bytes; the limit is 16384."),
    ),
    # The type field.
    ("no type", "chat", "{}", error("bad_frame", TYPE_NOT_STRING)),
    ("numeric type", "chat", '{"type": 1}', error("bad_frame", TYPE_NOT_STRING)),
    ("null type", "chat", '{"type": null}', error("bad_frame", TYPE_NOT_STRING)),
    ("list type", "chat", '{"type": ["ping"]}', error("bad_frame", TYPE_NOT_STRING)),
    ("object type", "chat", '{"type": {"ping": 1}}', error("bad_frame", TYPE_NOT_STRING)),
    ("boolean type", "chat", '{"type": true}', error("bad_frame", TYPE_NOT_STRING)),
    ("unknown type", "chat", frame("nope"), unknown("'nope'")),
    ("empty type", "chat", frame(""), unknown("''")),
    ("upper-case type", "chat", frame("PING"), unknown("'PING'")),
    ("type with a space", "chat", frame("ping "), unknown("'ping '")),
    ("lone surrogate type", "chat", '{"type": "\\ud800"}', unknown("'\\ud800'")),
    ("long type", "chat", frame(LONG_TYPE), unknown(repr("t" * 64))),
    # A type naming an internal handler never chooses the handler.
    (
        "internal frame event",
        "chat",
        frame("liverooms.frame", seq=None, text='{"type":"message"}'),
        unknown("'liverooms.frame'"),
    ),
    (
        "internal reply event",
        "chat",
        frame("liverooms.reply", text="x"),
        unknown("'liverooms.reply'"),
    ),
    ("internal recheck event", "chat", frame("liverooms.recheck"), unknown("'liverooms.recheck'")),
    ("internal persist event", "chat", frame("liverooms.persist"), unknown("'liverooms.persist'")),
    ("handler name", "chat", frame("liverooms_frame", text="x"), unknown("'liverooms_frame'")),
    (
        "websocket.disconnect",
        "chat",
        frame("websocket.disconnect"),
        unknown("'websocket.disconnect'"),
    ),
    (
        "websocket.receive",
        "chat",
        frame("websocket.receive", text='{"type":"ping"}'),
        unknown("'websocket.receive'"),
    ),
    ("websocket.connect", "chat", frame("websocket.connect"), unknown("'websocket.connect'")),
    ("a server frame", "chat", frame("welcome"), unknown("'welcome'")),
    ("an entry", "chat", frame("entry", title="t", body="b"), unknown("'entry'")),
    ("a deletion event", "chat", frame("message.deleted", id=1), unknown("'message.deleted'")),
    # message frames.
    ("no client_id", "chat", message(body="x"), error("bad_frame", "client_id is required.")),
    (
        "null client_id",
        "chat",
        message(body="x", client_id=None),
        error("bad_frame", "client_id is required."),
    ),
    (
        "empty client_id",
        "chat",
        message(body="x", client_id=""),
        error("bad_frame", CLIENT_ID_RANGE),
    ),
    (
        "numeric client_id",
        "chat",
        message(body="x", client_id=5),
        error("bad_frame", CLIENT_ID_RANGE),
    ),
    (
        "list client_id",
        "chat",
        message(body="x", client_id=["c"]),
        error("bad_frame", CLIENT_ID_RANGE),
    ),
    (
        "long client_id",
        "chat",
        message(body="x", client_id="c" * 65),
        error("bad_frame", CLIENT_ID_RANGE),
    ),
    (
        "surrogate client_id",
        "chat",
        '{"type": "message", "body": "x", "client_id": "\\udfff"}',
        error("bad_frame", "client_id contains an unpaired surrogate."),
    ),
    (
        "NUL client_id",
        "chat",
        message(body="x", client_id="a\x00"),
        error("bad_frame", "client_id contains a NUL character."),
    ),
    (
        "no body",
        "chat",
        message(client_id="c1"),
        error("bad_frame", "body must be a string.", "c1"),
    ),
    (
        "null body",
        "chat",
        message(body=None, client_id="c1"),
        error("bad_frame", "body must be a string.", "c1"),
    ),
    (
        "numeric body",
        "chat",
        message(body=5, client_id="c1"),
        error("bad_frame", "body must be a string.", "c1"),
    ),
    (
        "object body",
        "chat",
        message(body={"x": 1}, client_id="c1"),
        error("bad_frame", "body must be a string.", "c1"),
    ),
    (
        "list body",
        "chat",
        message(body=["hi"], client_id="c1"),
        error("bad_frame", "body must be a string.", "c1"),
    ),
    (
        "blank body",
        "chat",
        message(body="   ", client_id="c1"),
        error("bad_frame", "body must not be blank.", "c1"),
    ),
    (
        "whitespace body",
        "chat",
        message(body="\n\t\u3000", client_id="c1"),
        error("bad_frame", "body must not be blank.", "c1"),
    ),
    (
        "empty body",
        "chat",
        message(body="", client_id="c1"),
        error("bad_frame", "body must not be blank.", "c1"),
    ),
    (
        "NUL body",
        "chat",
        message(body="a\x00b", client_id="c1"),
        error("bad_frame", "body contains a NUL character.", "c1"),
    ),
    (
        "high surrogate body",
        "chat",
        '{"type": "message", "body": "\\ud83d", "client_id": "c1"}',
        error("bad_frame", "body contains an unpaired surrogate.", "c1"),
    ),
    (
        "low surrogate body",
        "chat",
        '{"type": "message", "body": "a\\ude00b", "client_id": "c1"}',
        error("bad_frame", "body contains an unpaired surrogate.", "c1"),
    ),
    (
        "body over the limit",
        "chat",
        message(body="x" * 4001, client_id="c1"),
        error("too_long", "body is 4001 characters; the limit is 4000.", "c1"),
    ),
    # Moderation frames.
    ("edit without id", "chat", frame("message.edit", body="x"), error("bad_frame", ID_RANGE)),
    (
        "edit with a string id",
        "chat",
        frame("message.edit", id="1", body="x"),
        error("bad_frame", ID_RANGE),
    ),
    ("edit with id 0", "chat", frame("message.edit", id=0, body="x"), error("bad_frame", ID_RANGE)),
    (
        "edit with a negative id",
        "chat",
        frame("message.edit", id=-1, body="x"),
        error("bad_frame", ID_RANGE),
    ),
    (
        "edit with a float id",
        "chat",
        frame("message.edit", id=1.0, body="x"),
        error("bad_frame", ID_RANGE),
    ),
    (
        "edit with a boolean id",
        "chat",
        frame("message.edit", id=True, body="x"),
        error("bad_frame", ID_RANGE),
    ),
    (
        "edit with id 2**63",
        "chat",
        frame("message.edit", id=2**63, body="x"),
        error("bad_frame", ID_RANGE),
    ),
    (
        "edit without body",
        "chat",
        frame("message.edit", id=1),
        error("bad_frame", "body must be a string."),
    ),
    (
        "edit with a blank body",
        "chat",
        frame("message.edit", id=1, body=" "),
        error("bad_frame", "body must not be blank."),
    ),
    (
        "edit with a long body",
        "chat",
        frame("message.edit", id=1, body="y" * 4001),
        error("too_long", "body is 4001 characters; the limit is 4000."),
    ),
    (
        "edit of no such message",
        "chat",
        frame("message.edit", id=999999, body="x"),
        error("bad_frame", "There is no message 999999 in this room."),
    ),
    (
        "delete with a null id",
        "chat",
        frame("message.delete", id=None),
        error("bad_frame", ID_RANGE),
    ),
    (
        "delete with a list id",
        "chat",
        frame("message.delete", id=[1]),
        error("bad_frame", ID_RANGE),
    ),
    (
        "delete of no such message",
        "chat",
        frame("message.delete", id=999999),
        error("bad_frame", "There is no message 999999 in this room."),
    ),
    ("mute without user_id", "chat", frame("mute", minutes=5), error("bad_frame", USER_ID_RANGE)),
    (
        "mute with a string user_id",
        "chat",
        frame("mute", user_id="x"),
        error("bad_frame", USER_ID_RANGE),
    ),
    (
        "mute for 0 minutes",
        "chat",
        frame("mute", user_id=1, minutes=0),
        error("bad_frame", MINUTES_RANGE),
    ),
    (
        "mute for negative minutes",
        "chat",
        frame("mute", user_id=1, minutes=-5),
        error("bad_frame", MINUTES_RANGE),
    ),
    (
        "mute for string minutes",
        "chat",
        frame("mute", user_id=1, minutes="10"),
        error("bad_frame", MINUTES_RANGE),
    ),
    (
        "mute for fractional minutes",
        "chat",
        frame("mute", user_id=1, minutes=1.5),
        error("bad_frame", MINUTES_RANGE),
    ),
    (
        "mute for too long",
        "chat",
        frame("mute", user_id=1, minutes=10**9),
        error("bad_frame", MINUTES_RANGE),
    ),
    (
        "mute of no such user",
        "chat",
        frame("mute", user_id=999999, minutes=5),
        error("bad_frame", "There is no user 999999."),
    ),
    (
        "unmute with a boolean user_id",
        "chat",
        frame("unmute", user_id=False),
        error("bad_frame", USER_ID_RANGE),
    ),
    # Live blogs take nothing but ping over the socket.
    ("message to a live blog", "liveblog", message(body="x", client_id="c"), unknown("'message'")),
    ("typing in a live blog", "liveblog", frame("typing"), unknown("'typing'")),
    (
        "edit in a live blog",
        "liveblog",
        frame("message.edit", id=1, body="x"),
        unknown("'message.edit'"),
    ),
    ("mute in a live blog", "liveblog", frame("mute", user_id=1), unknown("'mute'")),
    ("binary to a live blog", "liveblog", b"\x00", error("bad_json", BINARY)),
]

# Handshakes that must be refused with close code 4404 (and HTTP 404), never
# a server error: slugs outside the alphabet or over 64 characters, and
# paths under the app's prefix that name no stream.
BAD_STREAM_PATHS = [
    "chat/Lobby/",
    "chat/" + "a" * 65 + "/",
    "chat/" + "a" * 5000 + "/",
    "chat/%C3%A9/",
    "chat/a%20b/",
    "chat/a.b/",
    "chat/a%00b/",
    "chat/a%0Ab/",
    "chat/%F0%9F%92%A9/",
    "chat/nowhere/",
    "chat/lobby/extra/",
    "chat//",
    "chat/",
    "chat",
    "liveblog/lobby/",
    "liveblog/MATCH-DAY/",
]


def matches(answer, expected):
    if isinstance(expected, tuple):
        code, prefix = expected
        return (
            answer.get("type") == "error"
            and answer.get("code") == code
            and answer.get("detail", "").startswith(prefix)
            and answer.get("client_id") is None
        )
    return answer == expected
