"""Per-room slow mode: one message per sender per ``Room.slow_mode_seconds``."""

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db.models import F
from django.test import override_settings

from django_liverooms import protocol, streams, workers, writer
from django_liverooms.models import Message, Room, RoomMember

from .factories import make_room, make_user
from .test_clean_message import persist
from .test_consumers import client
from .test_layers import RunningWorker
from .test_layers import client as layer_client
from .test_layers import redis_layers as redis_layers  # the fixture
from .test_writer import frames, message, open_chats, signed_in_poster

pytestmark = pytest.mark.django_db(transaction=True)

WIDE = override_settings(LIVEROOMS={"WRITE_WINDOW": 0.2, "USER_SEND_RATE": None})


def slow(room, seconds=60):
    Room.objects.filter(pk=room.pk).update(slow_mode_seconds=seconds)


def age_messages(seconds):
    """As if every stored message had been posted ``seconds`` earlier."""
    Message.all_objects.update(created=F("created") - timedelta(seconds=seconds))


async def test_a_second_message_within_the_window_is_refused_then_allowed_after(room):
    await database_sync_to_async(slow)(room)
    [chat] = await open_chats(1)
    await chat.send_frame(message("first", "c1"))
    first = await chat.receive_frame()
    assert first["body"] == "first"
    await chat.send_frame(message("second", "c2"))
    error = await chat.receive_frame()
    assert (error["type"], error["code"], error["client_id"]) == ("error", "slow_mode", "c2")
    assert 59 <= error["retry_after"] <= 60
    assert "60 s" in error["detail"]
    assert await chat.receive_nothing(timeout=0.2)  # never acknowledged
    assert await Message.objects.acount() == 1
    # A resend of the stored message is answered with it, not refused.
    await chat.send_frame(message("first", "c1"))
    assert await chat.receive_frame() == first
    # Later in the window: a shorter wait.
    await database_sync_to_async(age_messages)(45)
    await chat.send_frame(message("second", "c2"))
    error = await chat.receive_frame()
    assert error["code"] == "slow_mode" and 14 <= error["retry_after"] <= 15
    # Once the window has passed, the same send is stored.
    await database_sync_to_async(age_messages)(16)
    await chat.send_frame(message("second", "c2"))
    ack = await chat.receive_frame()
    assert (ack["type"], ack["body"], ack["client_id"], ack["seq"]) == (
        "message",
        "second",
        "c2",
        2,
    )
    await chat.disconnect()


async def test_the_welcome_tells_the_slow_mode(room):
    chat = client("/ws/chat/lobby/")
    welcome, _ = await chat.open()
    assert "slow_mode" not in welcome  # off: the welcome is as before
    await chat.disconnect()
    await database_sync_to_async(slow)(room, 30)
    chat = client("/ws/chat/lobby/")
    welcome, _ = await chat.open()
    assert welcome["slow_mode"] == 30
    await chat.disconnect()


async def test_moderators_are_not_slowed(room):
    await database_sync_to_async(slow)(room)
    moderator = await database_sync_to_async(make_user)("mod")
    await RoomMember.objects.acreate(room=room, user=moderator, moderator=True)
    chat = client("/ws/chat/lobby/", moderator)
    await chat.open()
    for n in range(3):
        await chat.send_frame(message(f"m{n}", f"c{n}"))
        assert (await chat.receive_frame())["body"] == f"m{n}"
    assert await Message.objects.acount() == 3
    await chat.disconnect()


@WIDE
async def test_senders_are_slowed_each_on_their_own(room):
    await database_sync_to_async(slow)(room)
    alice, bob = await open_chats(2)
    await alice.send_frame(message("from alice", "a"))
    await bob.send_frame(message("from bob", "b"))
    got = await frames(alice, 2)
    assert sorted(f["body"] for f in got) == ["from alice", "from bob"]
    assert await frames(bob, 2) == got
    await alice.send_frame(message("alice again", "a2"))
    assert (await alice.receive_frame())["code"] == "slow_mode"
    assert await bob.receive_nothing(timeout=0.3)
    for chat in (alice, bob):
        await chat.disconnect()


@WIDE
async def test_two_tabs_of_one_user_in_one_batch_store_one_message(room, monkeypatch):
    await database_sync_to_async(slow)(room)
    user = await database_sync_to_async(make_user)("alice")
    tabs = [client("/ws/chat/lobby/", user) for _ in range(2)]
    for tab in tabs:
        await tab.open()
    for n, tab in enumerate(tabs):
        await tab.send_frame(message(f"tab {n}", f"t{n}"))
    got = [await tab.receive_frame() for tab in tabs]
    for tab in tabs:  # the refused tab also reads the other's message
        if not await tab.receive_nothing(0.3):
            got.append(await tab.receive_frame())
    assert sorted(f["type"] for f in got) == ["error", "message", "message"]
    [error] = [f for f in got if f["type"] == "error"]
    assert error["code"] == "slow_mode" and error["client_id"] in ("t0", "t1")
    assert await Message.objects.acount() == 1
    for tab in tabs:
        await tab.disconnect()


def test_a_batch_reads_the_latest_posts_in_one_query_whatever_its_size(
    django_assert_max_num_queries,
):
    room = make_room()
    slow(room)
    room.refresh_from_db()

    def batch_of(count, tag):
        writes = []
        for n in range(count):
            user = make_user(f"{tag}-{n}")
            command = protocol.SendMessage(body=f"from {n}", client_id=f"{tag}{n}")
            writes.append(writer.Write(signed_in_poster(user, room, n), command, done=None))
        return writes

    def latest_post_reads(queries):
        return [q for q in queries.captured_queries if "MAX(" in q["sql"].upper()]

    small, large = batch_of(2, "s"), batch_of(12, "l")
    with django_assert_max_num_queries(30) as few:
        outcomes, _ = writer.store_batch(small)
    assert [type(o).__name__ for o in outcomes] == ["Posted"] * 2
    with django_assert_max_num_queries(len(few.captured_queries)) as many:
        outcomes, _ = writer.store_batch(large)  # 6x the senders, the same queries
    assert [type(o).__name__ for o in outcomes] == ["Posted"] * 12
    assert len(latest_post_reads(few)) == len(latest_post_reads(many)) == 1
    # Each sender again, at once: all refused, their latest posts read in one query
    # (then each is asked whether it moderates, which would let it through).
    again = [
        writer.Write(w.poster, protocol.SendMessage(body="again", client_id="x"), done=None)
        for w in large
    ]
    with django_assert_max_num_queries(100) as refusing:
        outcomes, _ = writer.store_batch(again)
    assert {o.code for o in outcomes} == {"slow_mode"}
    assert len(latest_post_reads(refusing)) == 1
    assert Message.objects.count() == 14


def test_a_room_without_slow_mode_costs_no_query_more(django_assert_max_num_queries):
    plain, screened = make_room(), make_room("annex", "Annex")
    sender = streams.Sender(user=None, name="Guest", key="session:s")

    class Open:
        exempt = False

        def clean(self, body, client_id):
            return body

    with django_assert_max_num_queries(8) as without:
        streams.post_messages([streams.NewMessage(plain, sender, "m", f"p{n}") for n in range(5)])
    batch = [streams.NewMessage(screened, sender, "m", f"s{n}", Open()) for n in range(5)]
    with django_assert_max_num_queries(len(without.captured_queries)):
        posted, _ = streams.post_messages(batch)
    assert [p.duplicate for p in posted] == [False] * 5


@override_settings(LIVEROOMS={"PERSISTENCE": "worker", "WORKER_ACK_TIMEOUT": 0.3})
async def test_worker_mode_is_slowed_too(redis_layers, room):  # noqa: F811
    await database_sync_to_async(slow)(room)
    alice = await database_sync_to_async(make_user)("alice")
    sender = layer_client("/ws/chat/lobby/", alice)
    await sender.open()
    async with RunningWorker():
        await sender.send_frame(message("first", "w1"))
        await sender.send_frame(message("second", "w2"))
        ack = await sender.receive_frame(timeout=5)
        assert (ack["type"], ack["client_id"]) == ("message", "w1")
        error = await sender.receive_frame(timeout=5)
        assert (error["type"], error["code"], error["client_id"]) == ("error", "slow_mode", "w2")
        assert 59 <= error["retry_after"] <= 60
        # A resend of the stored one is answered with it.
        await sender.send_frame(message("first", "w1"))
        assert await sender.receive_frame(timeout=5) == ack
        assert await sender.receive_nothing(timeout=0.6)  # handled: no "unavailable"
    assert await Message.objects.acount() == 1
    await sender.disconnect()


def test_a_worker_round_slows_each_sender_and_lets_moderators_through():
    lobby = make_room()
    slow(lobby)
    lobby.refresh_from_db()
    moderator = make_user("mod")
    RoomMember.objects.create(room=lobby, user=moderator, moderator=True)
    mod_key = f"user:{moderator.pk}"
    outcomes, _ = workers.store_batch(
        [
            persist(lobby, "a1", "1", "session:a"),
            persist(lobby, "b1", "2", "session:b"),
            persist(lobby, "a2", "3", "session:a"),
            persist(lobby, "m1", "4", mod_key, moderator),
            persist(lobby, "m2", "5", mod_key, moderator),
        ]
    )
    got = [o.code if isinstance(o, Exception) else "stored" for _, o in outcomes]
    assert got == ["stored", "stored", "slow_mode", "stored", "stored"]
    assert Message.objects.count() == 4


def test_the_admin_sets_the_slow_mode():
    from django.test import Client

    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("boss", password="pw"))
    room = make_room()
    url = f"/admin/django_liverooms/room/{room.pk}/change/"
    assert 'name="slow_mode_seconds"' in admin.get(url).content.decode()
    form = {"title": "Lobby", "slug": "lobby", "slow_mode_seconds": "30"}
    for inline in ("memberships", "mutes"):
        form.update({f"{inline}-TOTAL_FORMS": "0", f"{inline}-INITIAL_FORMS": "0"})
    response = admin.post(url, form)
    assert response.status_code == 302, response.content
    room.refresh_from_db()
    assert room.slow_mode_seconds == 30


class Open:
    """A screen that lets everything through (slow mode still applies)."""

    exempt = False

    def clean(self, body, client_id):
        return body


def test_two_processes_cannot_both_let_a_sender_through():
    import threading
    import time

    from django.db import connection, connections, transaction

    if connection.vendor != "postgresql":
        pytest.skip("row locks: run with DATABASE_URL=postgres://... (SQLite locks the database)")
    room = make_room()
    slow(room)
    room.refresh_from_db()
    sender = streams.Sender(user=None, name="Guest", key="session:s")
    inserted = threading.Event()

    def other_process():
        try:
            with transaction.atomic():
                streams.post_messages([streams.NewMessage(room, sender, "a", "a", Open())])
                inserted.set()
                time.sleep(0.5)  # committed only now; the room stays locked until then
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_process)
    thread.start()
    assert inserted.wait(5)
    # Waits for the other's commit, then reads its message: refused.
    posted, _ = streams.post_messages([streams.NewMessage(room, sender, "b", "b", Open())])
    thread.join()
    assert posted[0].code == "slow_mode"
    assert list(Message.objects.values_list("body", flat=True)) == ["a"]
