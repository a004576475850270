"""Group commit (writer.py, streams.post_messages): batches store like single writes."""

import pytest
from channels.db import database_sync_to_async
from django.db import IntegrityError
from django.test import override_settings

from django_liverooms import broadcast, protocol, streams
from django_liverooms.models import Message, RoomMute

from .factories import make_room, make_user
from .test_consumers import client

pytestmark = pytest.mark.django_db(transaction=True)

# A window long enough that frames sent together land in one batch.
WIDE = override_settings(LIVEROOMS={"WRITE_WINDOW": 0.2, "USER_SEND_RATE": None})


@pytest.fixture
def batches(monkeypatch):
    """The size of each batch streams.post_messages stored (not those it failed)."""
    sizes = []
    real = streams.post_messages

    def counting(batch):
        stored = real(batch)
        sizes.append(len(batch))
        return stored

    monkeypatch.setattr(streams, "post_messages", counting)
    return sizes


async def open_chats(count, slug="lobby"):
    chats = []
    for n in range(count):
        user = await database_sync_to_async(make_user)(f"{slug}-user{n}")
        chat = client(f"/ws/chat/{slug}/", user)
        await chat.open()
        chats.append(chat)
    return chats


async def frames(chat, count):
    return [await chat.receive_frame() for _ in range(count)]


def message(body, client_id):
    return {"type": "message", "body": body, "client_id": client_id}


@pytest.fixture
def group_sends(monkeypatch):
    """The groups the channel layer was asked to send to."""
    layer, sent = broadcast.layer(), []
    real = layer.group_send

    async def counting(group, message):
        sent.append(group)
        return await real(group, message)

    monkeypatch.setattr(layer, "group_send", counting)
    return sent


@WIDE
async def test_messages_from_many_sockets_and_rooms_are_one_batch_with_contiguous_seqs(
    room, batches, group_sends
):
    await database_sync_to_async(make_room)("annex", "Annex")
    lobby, annex = await open_chats(3), await open_chats(2, "annex")
    group_sends.clear()
    for n, chat in enumerate(lobby + annex):
        await chat.send_frame(message(f"m{n}", f"c{n}"))
    seen_in_lobby = await frames(lobby[0], 3)
    seen_in_annex = await frames(annex[0], 2)
    assert batches == [5]
    # Both rooms' frames in one channel-layer message, to every process's hub.
    assert [g for g in group_sends if not g.startswith("liverooms.presence")] == [
        broadcast.BATCH_GROUP
    ]
    assert [f["seq"] for f in seen_in_lobby] == [1, 2, 3]
    assert [f["seq"] for f in seen_in_annex] == [1, 2]
    assert sorted(f["body"] for f in seen_in_lobby) == ["m0", "m1", "m2"]
    # Every other socket got the same frames: its own copy (the ack) among them.
    for chat in lobby[1:]:
        assert await frames(chat, 3) == seen_in_lobby
    for chat in annex[1:]:
        assert await frames(chat, 2) == seen_in_annex
    assert await lobby[0].receive_nothing(timeout=0.2)  # nothing of the annex's
    for chat in lobby + annex:
        await chat.disconnect()
    history = await database_sync_to_async(streams.read_history)(room, after=None, limit=10)
    assert history.seqs == (1, 2, 3)


@WIDE
async def test_a_client_id_repeated_in_one_batch_is_stored_once_and_answered_twice(room, batches):
    # One socket's frames are handled in turn; the same user's two tabs are not.
    user = await database_sync_to_async(make_user)("alice")
    tabs = [client("/ws/chat/lobby/", user) for _ in range(2)]
    for tab in tabs:
        await tab.open()
    for tab in tabs:
        await tab.send_frame(message("once", "same"))
    got = []
    for tab in tabs:
        got.append(await tab.receive_frame())  # the broadcast
        if not await tab.receive_nothing(0.5):
            got.append(await tab.receive_frame())  # the repeat's answer
    # Both tabs read the one stored message; one of them also got it as its answer.
    assert len(got) == 3 and all(frame == got[0] for frame in got)
    assert got[0]["seq"] == 1 and got[0]["client_id"] == "same"
    assert batches == [2]
    assert await database_sync_to_async(Message.objects.count)() == 1
    for tab in tabs:
        await tab.disconnect()


@WIDE
async def test_a_client_id_stored_before_is_answered_with_its_frame(room, batches):
    [chat] = await open_chats(1)
    await chat.send_frame(message("first", "again"))
    [stored] = await frames(chat, 1)
    await chat.send_frame(message("first", "again"))
    await chat.send_frame(message("second", "new"))
    repeat, new = await frames(chat, 2)
    assert repeat == stored
    assert new["seq"] == 2 and new["body"] == "second"
    assert await database_sync_to_async(Message.objects.count)() == 2
    await chat.disconnect()


@WIDE
async def test_a_refused_write_does_not_fail_the_others_in_its_batch(room, batches):
    allowed, muted = await open_chats(2)
    await database_sync_to_async(RoomMute.objects.create)(room=room, user=muted.scope["user"])
    await muted.send_frame(message("no", "m"))
    await allowed.send_frame(message("yes", "a"))
    # The muted reader gets its refusal and, as a reader, the other's message.
    got = {frame["type"]: frame for frame in await frames(muted, 2)}
    assert (got["error"]["code"], got["error"]["client_id"]) == ("forbidden", "m")
    assert got["message"]["body"] == "yes"
    ack = await allowed.receive_frame()
    assert ack["body"] == "yes" and ack["seq"] == 1
    assert batches == [1]  # the refused write is not part of the insert
    for chat in (allowed, muted):
        await chat.disconnect()


@WIDE
async def test_a_batch_that_fails_is_stored_one_by_one(room, monkeypatch):
    def raced(batch):
        raise IntegrityError("another process stored one of these client_ids")

    monkeypatch.setattr(streams, "post_messages", raced)
    a, b = await open_chats(2)
    await a.send_frame(message("from a", "a"))
    await b.send_frame(message("from b", "b"))
    got = await frames(a, 2)
    assert sorted(f["body"] for f in got) == ["from a", "from b"]
    assert [f["seq"] for f in got] == [1, 2]
    for chat in (a, b):
        await chat.disconnect()


@override_settings(LIVEROOMS={"WRITE_WINDOW": 0.2, "USER_SEND_RATE": None, "FANOUT": "consumer"})
async def test_a_batch_reaches_sockets_that_read_the_layer_themselves(room, batches):
    reader, *senders = await open_chats(3)
    for n, chat in enumerate(senders):
        await chat.send_frame(message(f"m{n}", f"c{n}"))
    got = await frames(reader, 2)
    assert [f["seq"] for f in got] == [1, 2]
    assert batches == [2]
    for chat in (reader, *senders):
        await chat.disconnect()


@WIDE
async def test_a_sender_that_leaves_mid_batch_does_not_hang_the_writer(room, batches):
    leaving, staying = await open_chats(2)
    await leaving.send_frame(message("bye", "l"))
    await leaving.disconnect()
    await staying.send_frame(message("still here", "s"))
    got = await frames(staying, 2)
    assert {f["body"] for f in got} == {"bye", "still here"}
    assert sum(batches) == 2
    await staying.disconnect()


def test_a_batch_costs_the_same_statements_whatever_it_holds(django_assert_max_num_queries):
    from django_liverooms.streams import NewMessage, Sender

    rooms = [make_room(f"room-{n}", f"Room {n}") for n in range(3)]
    senders = [Sender(user=None, name=f"Guest {n}", key=f"session:{n}") for n in range(5)]
    batch = [NewMessage(rooms[n % 3], senders[n % 5], f"body {n}", f"c{n}") for n in range(30)]
    # The repeat lookup, the room locks, the seq update and read, two inserts
    # (and the transaction's own statements on some databases).
    with django_assert_max_num_queries(8):
        posted, frames = streams.post_messages(batch)
    assert [p.duplicate for p in posted] == [False] * 30
    # Nothing broadcast from here: the frames per room, in seq order, for the caller.
    assert {g: [seq for seq, _ in f] for g, f in frames.items()} == {
        room.group_name: list(range(1, 11)) for room in rooms
    }
    for room in rooms:
        history = streams.read_history(room, after=None, limit=50)
        assert history.seqs == tuple(range(1, 11))


@override_settings(LIVEROOMS={"ANONYMOUS_CHAT": True})
def test_the_checks_of_a_batch_read_each_room_once_whatever_the_rooms(
    django_assert_max_num_queries,
):
    from django.contrib.auth.models import AnonymousUser

    from django_liverooms import writer
    from django_liverooms.consumers import ChatConsumer
    from django_liverooms.policy import CachedVerdict
    from django_liverooms.streams import Sender

    def poster(room, n):
        chat = ChatConsumer()
        chat.user, chat.stream, chat.scope = AnonymousUser(), room, {"type": "websocket"}
        chat.may_post = CachedVerdict(True)
        chat.sender = Sender(user=None, name=f"Guest {n}", key=f"session:{n}")
        return chat

    def batch_of(rooms):
        writes = []
        for n in range(20):
            command = protocol.SendMessage(body=f"body {n}", client_id=f"c{n}-{len(rooms)}")
            writes.append(writer.Write(poster(rooms[n % len(rooms)], n), command, done=None))
        return writes

    rooms = [make_room(f"room-{n}", f"Room {n}") for n in range(10)]
    # The rooms read in one query, then the statements of post_messages (and
    # the transaction's own) whatever the number of rooms.
    for some in (rooms[:1], rooms):
        with django_assert_max_num_queries(9):
            outcomes, _ = writer.store_batch(batch_of(some))
        assert not [o for o in outcomes if isinstance(o, Exception)]


def test_a_batch_is_one_event_per_quarter_megabyte_under_process_fanout(settings):
    frames = {f"liverooms.chat.{n}": [(1, "x" * 100_000), (2, "y")] for n in range(5)}
    events = [b.event() for b in broadcast.batch_events(frames)]
    # Split between rooms once the text passes BATCH_EVENT_BYTES, never inside one.
    assert [[g for g, _ in e["groups"]] for e in events] == [
        ["liverooms.chat.0", "liverooms.chat.1", "liverooms.chat.2"],
        ["liverooms.chat.3", "liverooms.chat.4"],
    ]
    assert events[0]["type"] == broadcast.BATCH_EVENT
    assert events[0]["groups"][0][1] == [[1, "x" * 100_000], [2, "y"]]
    # Under consumer fan-out the sockets are the group members: one per group.
    settings.LIVEROOMS = {"FANOUT": "consumer"}
    by_group = broadcast.batch_events(frames)
    assert [b.group for b in by_group] == list(frames)
    assert by_group[0].event()["type"] == broadcast.FRAMES_EVENT


def signed_in_poster(user, room, n):
    """A chat connection of ``user``, signed in through a stored session."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from django_liverooms.consumers import ChatConsumer
    from django_liverooms.policy import CachedVerdict
    from django_liverooms.streams import Sender

    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    session = SessionStore(session_key=store.session_key)
    session.load()  # as the socket's session was, when it opened
    session._session_cache = session.load()
    chat = ChatConsumer()
    chat.user, chat.stream = user, room
    chat.scope = {"type": "websocket", "session": session}
    chat.may_post = CachedVerdict(True)
    chat.sender = Sender(user=user, name=user.username, key=f"user:{user.pk}")
    return chat


def test_a_batch_checks_signed_in_users_in_fixed_queries_and_still_refuses(
    django_assert_max_num_queries,
):
    from django.contrib.sessions.models import Session

    from django_liverooms import writer
    from django_liverooms.models import RoomMember

    room = make_room("private", "Private")
    room.private = True
    room.save()

    def batch_of(count, tag):
        writes = []
        for n in range(count):
            user = make_user(f"{tag}-{n}")
            RoomMember.objects.create(room=room, user=user)
            poster = signed_in_poster(user, room, n)
            command = protocol.SendMessage(body=f"from {n}", client_id=f"{tag}{n}")
            writes.append(writer.Write(poster, command, done=None))
        return writes

    small, large = batch_of(2, "s"), batch_of(12, "l")
    with django_assert_max_num_queries(16) as few:
        outcomes, _ = writer.store_batch(small)
    assert not [o for o in outcomes if isinstance(o, Exception)]
    with django_assert_max_num_queries(len(few.captured_queries)):
        outcomes, _ = writer.store_batch(large)  # 6x the users, the same queries
    assert not [o for o in outcomes if isinstance(o, Exception)]

    # Still checked per connection: a session ended, a mute, a membership gone.
    ended, muted, left, fine = batch_of(4, "r")
    Session.objects.filter(session_key=ended.poster.scope["session"].session_key).delete()
    RoomMute.objects.create(room=room, user=muted.poster.user)
    RoomMember.objects.filter(room=room, user=left.poster.user).delete()
    outcomes, _ = writer.store_batch([ended, muted, left, fine])
    refused = [o.code if isinstance(o, protocol.ProtocolError) else "ok" for o in outcomes]
    assert refused == ["forbidden", "forbidden", "forbidden", "ok"]
    assert outcomes[0].close_code == protocol.CLOSE_FORBIDDEN  # the session ended: closed
