import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from django_liverooms import protocol
from django_liverooms.protocol import (
    LIVEBLOG_COMMANDS,
    Limits,
    Ping,
    ProtocolError,
    SendMessage,
    Typing,
    parse,
)


def error_of(text, data=None, **kwargs):
    with pytest.raises(ProtocolError) as info:
        parse(text, data, **kwargs)
    return info.value


def test_parse_message():
    command = parse('{"type": "message", "body": "hello", "client_id": "c1"}')
    assert command == SendMessage(body="hello", client_id="c1")


def test_parse_ping_and_typing():
    assert parse('{"type": "ping"}') == Ping()
    assert parse('{"type": "typing"}') == Typing()


def test_unknown_fields_are_ignored():
    assert parse('{"type": "ping", "extra": [1, 2]}') == Ping()


@pytest.mark.parametrize(
    ("text", "data", "code"),
    [
        (None, b"\x00\x01", "bad_json"),
        ("", None, "bad_json"),
        ("not json", None, "bad_json"),
        ("[1, 2]", None, "bad_json"),
        ('"ping"', None, "bad_json"),
        ("null", None, "bad_json"),
        ('{"type": NaN}', None, "bad_json"),
        ('{"type": "ping", "x": Infinity}', None, "bad_json"),
        ('{"type": "ping", "x": -Infinity}', None, "bad_json"),
        ('{"type": "ping", "x": ' + "9" * 5000 + "}", None, "bad_json"),
        ("[" * 5000 + "]" * 5000, None, "bad_json"),
        ("{}", None, "bad_frame"),
        ('{"type": 1}', None, "bad_frame"),
        ('{"type": null}', None, "bad_frame"),
        ('{"type": "nope"}', None, "unknown_type"),
        ('{"type": "liverooms.frame", "text": "x"}', None, "unknown_type"),
        ('{"type": "websocket.disconnect"}', None, "unknown_type"),
        ('{"type": "message", "body": "x"}', None, "bad_frame"),
        ('{"type": "message", "body": "x", "client_id": ""}', None, "bad_frame"),
        ('{"type": "message", "body": "x", "client_id": 5}', None, "bad_frame"),
        ('{"type": "message", "body": "x", "client_id": "' + "c" * 65 + '"}', None, "bad_frame"),
        ('{"type": "message", "client_id": "c"}', None, "bad_frame"),
        ('{"type": "message", "body": 5, "client_id": "c"}', None, "bad_frame"),
        ('{"type": "message", "body": "   ", "client_id": "c"}', None, "bad_frame"),
        ('{"type": "message", "body": "a\\u0000b", "client_id": "c"}', None, "bad_frame"),
        ('{"type": "message", "body": "\\ud800", "client_id": "c"}', None, "bad_frame"),
        ('{"type": "message", "body": "x", "client_id": "\\udfff"}', None, "bad_frame"),
    ],
)
def test_bad_input_gets_its_error_code(text, data, code):
    assert error_of(text, data).code == code


def test_errors_after_a_valid_client_id_carry_it():
    error = error_of('{"type": "message", "body": 5, "client_id": "abc"}')
    assert error.frame() == {
        "type": "error",
        "code": "bad_frame",
        "detail": "body must be a string.",
        "client_id": "abc",
    }


def test_body_over_the_limit_is_too_long():
    limits = Limits(max_frame_bytes=100_000, max_body_length=10)
    error = error_of(
        json.dumps({"type": "message", "body": "x" * 11, "client_id": "c"}), limits=limits
    )
    assert (error.code, error.client_id) == ("too_long", "c")
    assert parse(json.dumps({"type": "message", "body": "x" * 10, "client_id": "c"}), limits=limits)


def test_frame_over_the_limit_is_too_long_in_utf8_bytes():
    limits = Limits(max_frame_bytes=64, max_body_length=1000)
    frame = '{"type":"message","client_id":"c","body":"' + "é" * 12 + '"}'  # 66 bytes, 54 chars
    assert len(frame) < 64 < len(frame.encode())
    assert error_of(frame, limits=limits).code == "too_long"


def test_endpoint_accepts_only_its_types():
    error = error_of(
        '{"type": "message", "body": "x", "client_id": "c"}', accepts=LIVEBLOG_COMMANDS
    )
    assert error.code == "unknown_type"
    assert parse('{"type": "ping"}', accepts=LIVEBLOG_COMMANDS) == Ping()


@pytest.mark.parametrize("slug", ["a", "lobby", "match-day_2", "x" * 64, "0"])
def test_valid_slugs(slug):
    assert protocol.is_valid_slug(slug)


@pytest.mark.parametrize("slug", ["", "Lobby", "x" * 65, "a b", "a/b", "é", "a.b", None, 5, "a\n"])
def test_invalid_slugs(slug):
    assert not protocol.is_valid_slug(slug)


def test_with_seq_puts_seq_after_type():
    frame = protocol.with_seq(protocol.message_deleted(id=3), 7)
    assert list(frame) == ["type", "seq", "id"]
    assert frame == {"type": "message.deleted", "seq": 7, "id": 3}


def test_with_seq_needs_a_type():
    with pytest.raises(ValueError, match="type"):
        protocol.with_seq({"id": 1}, 1)


def test_encode_is_compact_utf8_and_rejects_nan():
    assert protocol.encode({"type": "pong", "x": "é"}) == '{"type":"pong","x":"é"}'
    with pytest.raises(ValueError, match="JSON compliant"):
        protocol.encode({"x": float("nan")})


def test_history_text_embeds_encoded_items():
    items = [
        protocol.encode({"type": "message", "seq": 1}),
        protocol.encode({"type": "entry", "seq": 2}),
    ]
    assert json.loads(protocol.history_text(items, True)) == {
        "type": "history",
        "items": [{"type": "message", "seq": 1}, {"type": "entry", "seq": 2}],
        "complete": True,
    }
    assert json.loads(protocol.page_text([], False)) == {"items": [], "complete": False}


def test_outbound_frames_have_the_protocol_fields():
    author = protocol.user_info(None, "Guest")
    assert set(protocol.welcome("chat", "lobby", 0, author, False)) >= {
        "type",
        "stream",
        "slug",
        "seq",
        "user",
        "can_post",
    }
    message = protocol.message(id=1, slug="s", body="b", author=author, created="t", client_id=None)
    assert set(message) == {"type", "id", "slug", "body", "author", "created", "client_id"}
    entry = protocol.entry(id=1, slug="s", title="t", body="b", author=author, published="p")
    assert set(entry) == {"type", "id", "slug", "title", "body", "author", "published"}
    assert set(protocol.entry_edited(id=1, title="t", body="b", edited="e")) == {
        "type",
        "id",
        "title",
        "body",
        "edited",
    }
    assert protocol.entry_deleted(id=1) == {"type": "entry.deleted", "id": 1}
    assert protocol.message_edited(id=1, body="b", edited="e")["type"] == "message.edited"
    assert protocol.pong() == {"type": "pong"}


def parse_or_error(text):
    try:
        return parse(text), None
    except ProtocolError as exc:
        return None, exc


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
frames = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["message", "typing", "ping", "entry", "liverooms.frame"])
        | json_values,
        "body": st.text() | json_values,
        "client_id": st.text(max_size=70) | json_values,
    },
)


@settings(max_examples=1000)
@given(frames)
def test_fuzz_generated_frames_parse_or_raise_protocol_error(frame):
    command, error = parse_or_error(json.dumps(frame))
    if error is not None:
        assert error.code in {"bad_json", "bad_frame", "unknown_type", "too_long"}
        assert protocol.encode(error.frame())  # always encodable
    else:
        assert frame["type"] in {"message", "typing", "ping"}
        if isinstance(command, SendMessage):
            assert command.body == frame["body"] and command.client_id == frame["client_id"]


@settings(max_examples=1000)
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("utf-8", "replace")))
def test_fuzz_arbitrary_text_never_escapes_as_another_exception(text):
    # Any other exception propagates and fails the test.
    command, error = parse_or_error(text)
    assert (command is None) != (error is None)
    if error is not None:
        assert protocol.encode(error.frame())


def test_parse_moderation_frames():
    assert parse('{"type": "message.edit", "id": 3, "body": "fixed"}') == protocol.EditMessage(
        id=3, body="fixed"
    )
    assert parse('{"type": "message.delete", "id": 3}') == protocol.DeleteMessage(id=3)
    assert parse('{"type": "mute", "user_id": 7, "minutes": 10}') == protocol.Mute(7, 10)
    assert parse('{"type": "mute", "user_id": 7}') == protocol.Mute(7, None)
    assert parse('{"type": "unmute", "user_id": 7}') == protocol.Unmute(7)


def test_moderation_frames_are_not_accepted_by_live_blogs():
    assert error_of('{"type": "message.delete", "id": 3}', accepts=LIVEBLOG_COMMANDS).code == (
        "unknown_type"
    )


def test_numbers_are_judged_the_same_on_every_python():
    # Python 3.11+ refuses integers over 4300 digits, 3.10 does not; we refuse over 64.
    assert parse('{"type": "ping", "x": ' + "9" * 64 + "}") == Ping()
    assert error_of('{"type": "ping", "x": ' + "9" * 65 + "}").code == "bad_json"
    assert error_of('{"type": "ping", "x": 1e400}').code == "bad_json"


def test_protocol_error_carries_a_close_code():
    error = ProtocolError("rate_limited", "slow down", "c", close_code=4429)
    assert error.close_code == 4429 and error.frame()["client_id"] == "c"


positive_ids = st.integers(min_value=1, max_value=protocol.MAX_SEQ)
moderation_frames = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(protocol.MODERATION_COMMANDS))},
    optional={
        "id": positive_ids | json_values,
        "user_id": positive_ids | json_values,
        "minutes": st.integers(min_value=-10, max_value=10**7) | json_values,
        "body": st.text() | json_values,
    },
)


@settings(max_examples=1000)
@given(moderation_frames)
def test_fuzz_moderation_frames_parse_to_valid_commands_or_errors(frame):
    command, error = parse_or_error(json.dumps(frame))
    if error is not None:
        assert error.code in {"bad_json", "bad_frame", "too_long"}
        assert error.client_id is None
        assert protocol.encode(error.frame())
        return
    kind = frame["type"]
    if kind in ("message.edit", "message.delete"):
        assert type(frame["id"]) is int and 1 <= frame["id"] <= protocol.MAX_SEQ
        assert command.id == frame["id"]
    if kind == "message.edit":
        assert command.body == frame["body"] and frame["body"].strip()
    if kind in ("mute", "unmute"):
        assert type(frame["user_id"]) is int and command.user_id == frame["user_id"]
    if kind == "mute":
        minutes = frame.get("minutes")
        assert command.minutes == minutes
        assert minutes is None or (type(minutes) is int and 1 <= minutes <= 525600)


def test_resume_errors_name_the_refused_value_or_the_lost_events():
    assert protocol.resume_errors(5, None, False) == []
    [bad] = protocol.resume_errors(None, "x1", False, source="Last-Event-ID or after")
    assert bad["code"] == protocol.BAD_FRAME
    assert bad["detail"].startswith("Last-Event-ID or after must be a seq")
    [gone] = protocol.resume_errors(7, None, True)
    assert gone["code"] == protocol.HISTORY_GONE
    assert "after seq 7" in gone["detail"]


def test_slow_mode_additions_are_present_only_when_set():
    user = protocol.user_info(1, "a")
    assert "slow_mode" not in protocol.welcome("chat", "lobby", 0, user, True)
    assert protocol.welcome("chat", "lobby", 0, user, True, slow_mode=30)["slow_mode"] == 30
    assert "retry_after" not in protocol.error(protocol.REJECTED, "No.", "c1")
    refused = protocol.ProtocolError(protocol.SLOW_MODE, "Wait.", "c2", retry_after=12)
    assert refused.frame() == {
        "type": "error",
        "code": "slow_mode",
        "detail": "Wait.",
        "client_id": "c2",
        "retry_after": 12,
    }
