"""Deleted, unpublished and edited text is served by no read path (issue 13, item 3),
data-protection purges, and long author names (item 7).

Every stored event about a deleted or unpublished object is redacted, and
every stored event about an edited one carries the current text, in the
transaction of the change; seqs and ids stay, so resume has no gap.
"""

import json
from io import StringIO

import pytest
from channels.db import database_sync_to_async
from django.core.management import CommandError, call_command
from django.db import DataError, OperationalError, connection, transaction
from hypothesis import given
from hypothesis import strategies as st

from django_liverooms import broadcast, protocol, streams
from django_liverooms.models import Entry, LiveBlog, Message, Room, display_name
from django_liverooms.streams import Sender

from .factories import make_blog, make_room, make_user, publish_entry
from .test_consumers import client
from .test_sse import open_stream

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "SECRET-original-text"


def stored(stream):
    """The stream's stored frames, decoded, in seq order."""
    return [
        json.loads(text) for text in stream.events.order_by("seq").values_list("frame", flat=True)
    ]


def seqs(frames):
    return [frame["seq"] for frame in frames]


def everything(stream):
    return "".join(stream.events.values_list("frame", flat=True))


def user_sender(user):
    return Sender(user, display_name(user), f"user:{user.pk}")


def guest(key="session:abc"):
    return Sender(user=None, name="Guest 1234", key=key)


def anyone(message):
    return True


# The pure frame functions (protocol.py) ---------------------------------------


def test_redacted_blanks_the_text_and_keeps_everything_else():
    frame = {
        "type": "message",
        "seq": 4,
        "id": 9,
        "slug": "lobby",
        "body": SECRET,
        "author": {"id": 3, "name": "Alice"},
        "created": "t",
        "client_id": "c1",
    }
    assert protocol.redacted(frame) == {**frame, "body": "", "redacted": True}
    purged = protocol.redacted(frame, erase_author=True)
    assert purged["author"] == {"id": None, "name": ""} and purged["body"] == ""
    entry = {"type": "entry", "seq": 1, "id": 2, "title": SECRET, "body": SECRET, "author": {}}
    assert protocol.redacted(entry)["title"] == protocol.redacted(entry)["body"] == ""
    assert protocol.redacted({"type": "goal", "id": 1, "scorer": "K"}, ("scorer",)) == {
        "type": "goal",
        "id": 1,
        "scorer": "",
        "redacted": True,
    }


def test_with_current_text_replaces_what_the_stored_frame_has():
    original = {"type": "entry", "seq": 1, "id": 2, "title": "Old", "body": "old", "published": "p"}
    edit = {"type": "entry.edited", "seq": 5, "id": 2, "title": "New", "body": "new", "edited": "e"}
    assert protocol.with_current_text(original, edit) == {
        **original,
        "title": "New",
        "body": "new",
        "edited": "e",
    }
    earlier_edit = {**edit, "seq": 3, "title": "Mid", "body": "mid", "edited": "d"}
    assert protocol.with_current_text(earlier_edit, edit) == {**edit, "seq": 3}
    gone = protocol.redacted(original)
    assert protocol.with_current_text(gone, edit) == gone  # stays redacted


def test_change_of_a_frame_type():
    assert protocol.change_of("message.deleted") == ("message", "deleted")
    assert protocol.change_of("entry.edited") == ("entry", "edited")
    assert protocol.change_of("host.goal.deleted") == ("host.goal", "deleted")
    for other in ("message", "entry", ".deleted", "message.created", "typing", ""):
        assert protocol.change_of(other) is None


def test_shown_name_cuts_long_names_with_an_ellipsis():
    assert protocol.shown_name("Alice") == "Alice"
    assert protocol.shown_name("x" * 150) == "x" * 150
    cut = protocol.shown_name("y" * 151)
    assert len(cut) == 150 and cut == "y" * 149 + "\u2026"
    assert protocol.shown_name("abcdef", 3) == "ab\u2026"


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=20)), st.text(min_size=1))
def test_redacted_frames_never_keep_a_text_field(frame, secret):
    frame = {**frame, "type": "message", "body": secret, "title": secret}
    out = protocol.redacted(frame)
    assert out["body"] == out["title"] == "" and out["redacted"] is True
    assert {k: v for k, v in out.items() if k not in ("body", "title", "redacted")} == {
        k: v for k, v in frame.items() if k not in ("body", "title", "redacted")
    }


# Chat messages (streams.py, the bridge) -----------------------------------------


def test_a_deleted_message_loses_its_text_in_every_stored_event():
    room, alice = make_room(), make_user("alice", first_name="Alice")
    posted = streams.post_message(room, user_sender(alice), SECRET, "c1")
    streams.change_message(room, posted.message_id, anyone, body=SECRET + " (edited)")
    streams.post_message(room, guest(), "unrelated", None)
    streams.change_message(room, posted.message_id, anyone)  # delete
    frames = stored(room)
    assert seqs(frames) == [1, 2, 3, 4]
    assert [f["type"] for f in frames] == [
        "message",
        "message.edited",
        "message",
        "message.deleted",
    ]
    assert SECRET not in everything(room)
    original, edit = frames[0], frames[1]
    # A moderator still sees who wrote it; only the text is gone.
    assert original["author"] == {"id": alice.pk, "name": "Alice"}
    assert (original["body"], original["redacted"], original["id"]) == ("", True, posted.message_id)
    assert (edit["body"], edit["redacted"]) == ("", True)
    assert frames[2]["body"] == "unrelated" and "redacted" not in frames[2]
    assert frames[3] == {"type": "message.deleted", "seq": 4, "id": posted.message_id}


def test_an_edited_message_keeps_no_trace_of_the_text_before_the_edit():
    room = make_room()
    posted = streams.post_message(room, guest(), SECRET, "c1")
    streams.change_message(room, posted.message_id, anyone, body="second")
    streams.change_message(room, posted.message_id, anyone, body="third")
    frames = stored(room)
    assert seqs(frames) == [1, 2, 3]
    assert SECRET not in everything(room) and "second" not in everything(room)
    assert [f["body"] for f in frames] == ["third", "third", "third"]
    message = Message.objects.get()
    assert frames[0]["edited"] == frames[2]["edited"] == message.modified.isoformat()
    assert frames[0]["client_id"] == "c1" and "redacted" not in frames[0]


def test_a_hard_deleted_message_loses_its_text():
    room = make_room()
    posted = streams.post_message(room, guest(), SECRET, None)
    Message.objects.get(pk=posted.message_id).delete(soft=False)
    frames = stored(room)
    assert [f["type"] for f in frames] == ["message", "message.deleted"]
    assert frames[0]["body"] == "" and frames[0]["redacted"] is True
    assert SECRET not in everything(room)


def test_a_queryset_delete_is_an_event_per_message_and_redacts():
    room = make_room()
    for n in range(3):
        streams.post_message(room, guest(), f"{SECRET} {n}", None)
    with broadcast.collect() as box:
        assert Message.objects.filter(body__endswith="1").delete()[0] == 1
        assert Message.objects.all().delete()[0] == 2
    assert [json.loads(b.text)["type"] for b in box] == ["message.deleted"] * 3
    assert Message.all_objects.filter(is_removed=True).count() == 3
    assert SECRET not in everything(room) and seqs(stored(room)) == list(range(1, 7))


def test_the_rewrite_rolls_back_with_the_change():
    room = make_room()
    posted = streams.post_message(room, guest(), SECRET, None)

    def delete_then_fail():
        with transaction.atomic():
            Message.objects.get(pk=posted.message_id).delete()
            raise RuntimeError

    with pytest.raises(RuntimeError):
        delete_then_fail()
    [frame] = stored(room)
    assert frame["body"] == SECRET and "redacted" not in frame


def test_a_repeated_send_of_a_deleted_message_is_answered_without_its_text():
    room = make_room()
    posted = streams.post_message(room, guest(), SECRET, "c1")
    streams.change_message(room, posted.message_id, anyone)
    with broadcast.collect() as box:
        again = streams.post_message(room, guest(), SECRET, "c1")
    assert again.duplicate and box == []
    frame = json.loads(again.frame)
    assert (frame["seq"], frame["body"], frame["redacted"]) == (1, "", True)
    # Its event pruned: the frame is rebuilt from the row, without the text too.
    streams.prune_events(room, keep_last=0, older_than=None)
    rebuilt = json.loads(streams.post_message(room, guest(), SECRET, "c1").frame)
    assert (rebuilt["seq"], rebuilt["body"], rebuilt["redacted"]) == (0, "", True)
    assert rebuilt["id"] == posted.message_id and rebuilt["client_id"] == "c1"


def test_an_edited_message_is_rebuilt_with_its_current_text():
    room = make_room()
    posted = streams.post_message(room, guest(), SECRET, "c1")
    streams.change_message(room, posted.message_id, anyone, body="now")
    streams.prune_events(room, keep_last=0, older_than=None)
    rebuilt = json.loads(streams.post_message(room, guest(), "again", "c1").frame)
    assert rebuilt["body"] == "now" and "redacted" not in rebuilt


# Live blog entries ------------------------------------------------------------------


def entry_lifecycle(blog):
    """Entries unpublished, soft-deleted, hard-deleted and edited; returns the edited one."""
    drafted = publish_entry(blog, title=SECRET + "-title-1", body=f"<p>{SECRET} 1</p>")
    removed = publish_entry(blog, title=SECRET + "-title-2", body=f"<p>{SECRET} 2</p>")
    deleted = publish_entry(blog, title=SECRET + "-title-3", body=f"<p>{SECRET} 3</p>")
    edited = publish_entry(blog, title=SECRET + "-title-4", body=f"<p>{SECRET} 4</p>")
    drafted.status = Entry.STATUS.draft
    drafted.save()
    Entry.objects.get(pk=removed.pk).delete()  # soft
    Entry.all_objects.get(pk=deleted.pk).delete(soft=False)
    edited.title, edited.body = "Goal!", "<p>1-0</p>"
    edited.save()
    return edited


def test_unpublished_removed_deleted_and_edited_entries_keep_no_old_text():
    blog = make_blog()
    edited = entry_lifecycle(blog)
    frames = stored(blog)
    assert seqs(frames) == list(range(1, 9))
    assert SECRET not in everything(blog)
    gone = [f for f in frames if f["type"] == "entry" and f["id"] != edited.pk]
    assert len(gone) == 3
    assert all((f["title"], f["body"], f["redacted"]) == ("", "", True) for f in gone)
    [original] = [f for f in frames if f["type"] == "entry" and f["id"] == edited.pk]
    assert (original["title"], original["body"]) == ("Goal!", "<p>1-0</p>")
    assert original["edited"] == Entry.objects.get(pk=edited.pk).modified.isoformat()


def test_a_republished_entry_is_a_new_event_and_the_old_one_stays_redacted():
    blog = make_blog()
    entry = publish_entry(blog, title=SECRET)
    entry.status = Entry.STATUS.draft
    entry.save()
    entry.title = "Rewritten"
    entry.save()  # a draft: no event
    entry.status = Entry.STATUS.published
    entry.save()
    frames = stored(blog)
    assert [f["type"] for f in frames] == ["entry", "entry.deleted", "entry"]
    assert frames[0]["redacted"] is True and frames[2]["title"] == "Rewritten"
    assert SECRET not in everything(blog)


def test_another_family_with_the_same_object_id_is_left_alone():
    blog = make_blog()
    entry = publish_entry(blog, title="Kept")
    # A host model's event about its own row with the same pk.
    streams.record_event(blog, {"type": "goal", "id": entry.pk, "body": "kept"}, object_id=entry.pk)
    streams.record_change(blog, protocol.entry_deleted(id=entry.pk), object_id=entry.pk)
    frames = stored(blog)
    assert frames[1] == {"type": "goal", "seq": 2, "id": entry.pk, "body": "kept"}
    assert frames[0]["redacted"] is True


# Every read path ---------------------------------------------------------------------


async def test_websocket_history_resume_and_resend_serve_no_deleted_or_edited_text(room):
    alice = await database_sync_to_async(make_user)("alice", first_name="Alice")
    sender = client("/ws/chat/lobby/", alice)
    await sender.open()
    await sender.send_frame({"type": "message", "body": SECRET, "client_id": "c1"})
    deleted_id = (await sender.receive_frame())["id"]
    await sender.send_frame({"type": "message", "body": SECRET + " typo", "client_id": "c2"})
    edited_id = (await sender.receive_frame())["id"]
    await sender.send_frame({"type": "message.edit", "id": edited_id, "body": "fixed"})
    assert (await sender.receive_frame())["type"] == "message.edited"
    await sender.send_frame({"type": "message.delete", "id": deleted_id})
    assert (await sender.receive_frame())["type"] == "message.deleted"

    for path in ("/ws/chat/lobby/", "/ws/chat/lobby/?after=0"):
        reader = client(path)
        _, history = await reader.open()
        assert SECRET not in json.dumps(history)
        assert seqs(history["items"]) == [1, 2, 3, 4]
        first, second = history["items"][:2]
        assert (first["body"], first["redacted"], first["author"]["id"]) == ("", True, alice.pk)
        assert second["body"] == "fixed" and "edited" in second
        await reader.disconnect()

    # The resend of a deleted message (a reconnecting client) is answered without its text.
    await sender.send_frame({"type": "message", "body": SECRET, "client_id": "c1"})
    answer = await sender.receive_frame()
    assert (answer["id"], answer["seq"], answer["body"], answer["redacted"]) == (
        deleted_id,
        1,
        "",
        True,
    )
    await sender.disconnect()


def test_http_history_serves_no_deleted_or_edited_text(client):
    room = make_room()
    posted = streams.post_message(room, guest(), SECRET, None)
    typo = streams.post_message(room, guest(), SECRET + " typo", None)
    streams.change_message(room, typo.message_id, anyone, body="fixed")
    streams.change_message(room, posted.message_id, anyone)
    response = client.get("/live/chat/lobby/messages")
    assert response.status_code == 200 and SECRET not in response.content.decode()
    assert seqs(response.json()["items"]) == [1, 2, 3, 4]
    before = client.get("/live/chat/lobby/messages?before=3").content.decode()
    assert SECRET not in before and '"redacted":true' in before

    entry_lifecycle(make_blog())
    response = client.get("/live/liveblog/match-day/entries")
    assert response.status_code == 200 and SECRET not in response.content.decode()
    assert seqs(response.json()["items"]) == list(range(1, 9))


async def test_server_sent_events_serve_no_unpublished_deleted_or_edited_text():
    blog = await database_sync_to_async(make_blog)()
    await database_sync_to_async(entry_lifecycle)(blog)
    for query in ("", "after=0"):
        sse = await open_stream(query=query)
        _, welcome = await sse.event()
        got = await sse.events(8)
        assert welcome["seq"] == 8 and [seq for seq, _ in got] == list(range(1, 9))
        assert SECRET not in json.dumps([frame for _, frame in got])
        await sse.close()


# Host models pushed in with bridge.register() are tested in tests/test_bridge.py.


# Data-protection purges ----------------------------------------------------------------


def two_rooms_with_alice():
    alice, bob = make_user("alice", first_name="Alice"), make_user("bob")
    lobby, help_ = make_room(), make_room("help", "Help")
    streams.post_message(lobby, user_sender(alice), SECRET + " live", "c1")
    edited = streams.post_message(lobby, user_sender(alice), SECRET + " edited", "c2")
    streams.change_message(lobby, edited.message_id, anyone, body=SECRET + " after edit")
    removed = streams.post_message(help_, user_sender(alice), SECRET + " removed", "c1")
    streams.change_message(help_, removed.message_id, anyone)
    streams.post_message(lobby, user_sender(bob), "bob stays", "c1")
    return alice, bob, lobby, help_


def test_purge_user_erases_every_message_and_its_events():
    alice, bob, lobby, help_ = two_rooms_with_alice()
    with broadcast.collect() as box:
        purged = streams.purge_user(alice.pk)
    assert purged == streams.Purged(messages=3, deleted=2, events=4, rooms=2)
    # Live readers drop the two messages that were still shown.
    assert sorted(json.loads(b.text)["type"] for b in box) == ["message.deleted"] * 2
    for room in (lobby, help_):
        text = everything(room)
        assert (
            SECRET not in text
            and "Alice" not in text
            and f'"author":{{"id":{alice.pk},' not in text
        )
    frames = stored(lobby)
    assert seqs(frames) == [1, 2, 3, 4, 5, 6]
    assert frames[0]["author"] == {"id": None, "name": ""} and frames[0]["redacted"] is True
    assert frames[3]["author"] == {"id": bob.pk, "name": "bob"} and frames[3]["body"] == "bob stays"
    assert seqs(stored(help_)) == [1, 2]  # already deleted: no second message.deleted
    for message in Message.all_objects.exclude(author=bob):
        assert (message.body, message.author_name, message.author_id) == ("", "", None)
        assert message.is_removed and message.sender_key == message.client_id == ""
    assert Message.objects.get(author=bob).body == "bob stays"
    assert streams.purge_user(alice.pk) == streams.Purged(0, 0, 0, 0)


def test_purge_user_dry_run_counts_and_changes_nothing():
    alice, _, lobby, _ = two_rooms_with_alice()
    before = everything(lobby)
    assert streams.purge_user(alice.pk, dry_run=True) == streams.Purged(3, 2, 4, 2)
    assert everything(lobby) == before and Message.objects.filter(author=alice).count() == 2


def test_purge_user_finds_the_messages_of_a_deleted_user_by_sender_key():
    alice, _, lobby, _ = two_rooms_with_alice()
    alice_id = alice.pk
    alice.delete()  # author becomes NULL; the sender key remembers
    assert streams.purge_user(alice_id).messages == 3
    assert SECRET not in everything(lobby)


def test_purge_room_deletes_the_room_its_messages_and_events():
    _, _, lobby, help_ = two_rooms_with_alice()
    assert streams.purge_room(lobby, dry_run=True) == streams.RoomPurged(messages=3, events=4)
    assert Room.objects.filter(pk=lobby.pk).exists()
    with broadcast.collect() as box:
        assert streams.purge_room(lobby) == streams.RoomPurged(messages=3, events=4)
    assert box == []  # no event: there is no stream left to tell
    assert not Room.objects.filter(pk=lobby.pk).exists()
    assert not Message.all_objects.filter(room_id=lobby.pk).exists()
    assert Room.objects.filter(pk=help_.pk).exists()


async def test_a_purged_room_closes_its_readers_with_4404(room):
    reader = client("/ws/chat/lobby/")
    await reader.open()
    await database_sync_to_async(streams.purge_room)(room)
    error = await reader.receive_frame()
    assert (error["code"], error["detail"]) == ("forbidden", "This stream no longer exists.")
    assert (await reader.receive_output())["code"] == 4404


def test_admin_purge_action_and_room_deletion(admin_client):
    alice, bob, lobby, help_ = two_rooms_with_alice()
    selected = Message.objects.filter(author=alice).values_list("pk", flat=True)[:1]
    response = admin_client.post(
        "/admin/django_liverooms/message/",
        {"action": "purge_authors", "_selected_action": list(selected)},
    )
    assert response.status_code == 302
    assert SECRET not in everything(lobby) + everything(help_)
    assert Message.objects.get(author=bob).body == "bob stays"
    response = admin_client.post(
        f"/admin/django_liverooms/room/{help_.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302 and not Room.objects.filter(pk=help_.pk).exists()


def test_purge_command():
    alice, _, lobby, _ = two_rooms_with_alice()
    out = StringIO()
    call_command("liverooms_purge", "--user", "alice", "--dry-run", stdout=out)
    assert "would erase 3 messages" in out.getvalue() and SECRET in everything(lobby)
    out = StringIO()
    call_command("liverooms_purge", "--user", str(alice.pk), stdout=out)
    assert "erased 3 messages" in out.getvalue() and SECRET not in everything(lobby)
    out = StringIO()
    call_command("liverooms_purge", "--room", "help", stdout=out)
    assert "deleted chat room help" in out.getvalue()
    assert not Room.objects.filter(slug="help").exists()


def test_purge_command_refuses_what_it_cannot_find():
    make_room()
    with pytest.raises(CommandError, match="--user"):
        call_command("liverooms_purge")
    with pytest.raises(CommandError, match="No user"):
        call_command("liverooms_purge", "--user", "nobody")
    with pytest.raises(CommandError, match="No chat room"):
        call_command("liverooms_purge", "--room", "nowhere")
    assert LiveBlog.objects.count() == 0 and Room.objects.count() == 1


# Long author names (item 7) ------------------------------------------------------------


def test_a_long_name_is_cut_wherever_a_sender_or_message_gets_it():
    long_name = "N" * 400
    user = make_user("long", first_name="F" * 150, last_name="L" * 150)
    assert len(display_name(user)) == 150 and display_name(user).endswith("\u2026")
    assert Sender(None, long_name, "k").name == "N" * 149 + "\u2026"
    message = Message.objects.create(room=make_room(), author_name=long_name, body="hi")
    message.refresh_from_db()
    assert len(message.author_name) == 150


@pytest.mark.postgres
async def test_a_user_with_a_very_long_name_can_post_on_postgresql(room):
    if connection.vendor != "postgresql":
        pytest.skip("run the suite with DATABASE_URL=postgres://... for this test")
    user = await database_sync_to_async(make_user)(
        "long", first_name="F" * 150, last_name="L" * 150
    )
    chat = client("/ws/chat/lobby/", user)
    welcome, _ = await chat.open()
    await chat.send_frame({"type": "message", "body": "hello", "client_id": "c1"})
    ack = await chat.receive_frame()  # before: DataError, the consumer died (1011)
    assert ack["type"] == "message" and ack["body"] == "hello"
    assert ack["author"]["name"] == welcome["user"]["name"] == "F" * 149 + "\u2026"
    await chat.disconnect()


@pytest.mark.parametrize(
    ("failure", "code"),
    [(DataError("value too long"), "bad_frame"), (OperationalError("gone"), "unavailable")],
)
async def test_a_database_error_in_a_write_answers_the_sender_and_keeps_the_socket(
    room, monkeypatch, failure, code
):
    def fail(*args, **kwargs):
        raise failure

    # The batch (group commit) fails, then the write stored on its own.
    monkeypatch.setattr(streams, "post_messages", fail)
    monkeypatch.setattr(streams, "post_message", fail)
    user = await database_sync_to_async(make_user)("alice")
    chat = client("/ws/chat/lobby/", user)
    await chat.open()
    await chat.send_frame({"type": "message", "body": "hello", "client_id": "c1"})
    error = await chat.receive_frame()
    assert (error["type"], error["code"], error["client_id"]) == ("error", code, "c1")
    await chat.send_frame({"type": "ping"})
    assert await chat.receive_frame() == {"type": "pong"}
    await chat.disconnect()
