"""A reader whose session ends is closed without writing (sessions.py).

Logout (the session deleted or flushed), expiry and a password change close
a signed-in socket with 4403, and end a signed-in SSE stream, within
``SESSION_CHECK_INTERVAL``; a logout and a ``set_password()`` in this process
at once.
"""

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import logout
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_liverooms import sessions

from .factories import make_blog, make_room, make_user
from .test_policy import session_client, session_cookie
from .test_sse import open_stream

pytestmark = pytest.mark.django_db(transaction=True)

ENDED = "Your session has ended; sign in and reconnect."


@pytest.fixture
def member():
    """A member of the private room "secret" (and the public "lobby" exists)."""
    from django_liverooms.models import RoomMember

    make_room("lobby")
    secret = make_room("secret", "Secret")
    secret.private = True
    secret.save()
    user = make_user("member")
    RoomMember.objects.create(room=secret, user=user)
    return user


def sweep_every(settings, seconds):
    settings.LIVEROOMS = {**settings.LIVEROOMS, "SESSION_CHECK_INTERVAL": seconds}


async def open_as(user, path="/ws/chat/secret/"):
    key = await database_sync_to_async(session_cookie)(user)
    socket = session_client(path, key)
    welcome, _ = await socket.open()
    assert welcome["user"]["id"] == user.pk
    return socket, key


async def assert_closed_for_the_session(socket, timeout=3):
    """The forbidden error, then close 4403, with no client frame sent."""
    error = await socket.receive_frame(timeout)
    assert (error["type"], error["code"], error["detail"]) == ("error", "forbidden", ENDED)
    assert (await socket.receive_output(timeout))["code"] == 4403


def delete_session(key):
    Session.objects.filter(session_key=key).delete()


def expire_session(key):
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(1))


def change_password_behind_djangos_back(user):
    # No set_password(): no signal says so, only the sweep notices.
    from django.contrib.auth.hashers import make_password

    type(user).objects.filter(pk=user.pk).update(password=make_password("other"))


def deactivate(user):
    type(user).objects.filter(pk=user.pk).update(is_active=False)


@pytest.mark.parametrize(
    "end",
    [delete_session, expire_session, "password", "inactive"],
    ids=["logged out elsewhere", "expired", "password changed", "deactivated"],
)
async def test_the_sweep_closes_a_private_room_reader_without_a_write(settings, member, end):
    sweep_every(settings, 0.2)
    socket, key = await open_as(member)
    assert await socket.receive_nothing(timeout=0.5)  # valid sessions stay open
    if end == "password":
        await database_sync_to_async(change_password_behind_djangos_back)(member)
    elif end == "inactive":
        await database_sync_to_async(deactivate)(member)
    else:
        await database_sync_to_async(end)(key)
    await assert_closed_for_the_session(socket)


async def test_a_public_room_reader_is_closed_too_and_a_guest_is_not(settings, member):
    sweep_every(settings, 0.2)
    signed_in, key = await open_as(member, "/ws/chat/lobby/")
    guest = session_client("/ws/chat/lobby/", "no-such-session")
    await guest.open()
    await database_sync_to_async(delete_session)(key)
    await assert_closed_for_the_session(signed_in)
    assert await guest.receive_nothing(timeout=0.5)
    await guest.disconnect()


async def test_a_logout_in_this_process_closes_at_once(settings, member):
    sweep_every(settings, 3600)  # only the signal can close it in time
    socket, key = await open_as(member)

    def log_out():
        request = RequestFactory().get("/")
        request.session, request.user = SessionStore(key), member
        logout(request)

    await database_sync_to_async(log_out)()
    await assert_closed_for_the_session(socket)


async def test_set_password_in_this_process_closes_at_once(settings, member):
    sweep_every(settings, 3600)
    socket, _ = await open_as(member, "/ws/chat/lobby/")  # not via revoke's room re-check

    def change_password():
        member.set_password("a new one")
        member.save()

    await database_sync_to_async(change_password)()
    await assert_closed_for_the_session(socket)


async def test_off_means_only_writes_notice(settings, member):
    sweep_every(settings, 0)
    socket, key = await open_as(member, "/ws/chat/lobby/")
    await database_sync_to_async(delete_session)(key)
    assert await socket.receive_nothing(timeout=0.5)
    await socket.disconnect()


async def test_one_sweep_is_one_batch_of_queries_for_any_number_of_sockets(settings, member):
    sweep_every(settings, 3600)
    users = [member] + [await database_sync_to_async(make_user)(f"u{i}") for i in range(4)]
    sockets = [(await open_as(user, "/ws/chat/lobby/"))[0] for user in users]
    sockets.append((await open_as(member, "/ws/chat/lobby/"))[0])  # a second session
    watch = sessions.watch_here()
    assert len(watch.readers) == 6
    hops = 0
    real = sessions.database_sync_to_async

    def counting(func):
        def call(*args):
            nonlocal hops
            hops += 1
            return real(func)(*args)

        return call

    sessions.database_sync_to_async = counting
    try:
        closed = await watch.sweep()
    finally:
        sessions.database_sync_to_async = real
    assert (closed, hops) == (0, 1)
    for socket in sockets:
        await socket.disconnect()


def test_ended_sessions_queries_sessions_and_users_once_each(member):
    others = [make_user(f"u{i}") for i in range(5)]
    watched = {sessions.Signed(session_cookie(user), str(user.pk)) for user in [member, *others]}
    with CaptureQueriesContext(connection) as queries:
        assert sessions.ended_sessions(watched) == set()
    assert len(queries) == 2
    gone = next(iter(watched))
    delete_session(gone.session_key)
    assert sessions.ended_sessions(watched) == {gone}


async def test_a_signed_in_sse_reader_is_ended(settings):
    sweep_every(settings, 0.2)
    await database_sync_to_async(make_blog)()
    user = await database_sync_to_async(make_user)("alice")
    key = await database_sync_to_async(session_cookie)(user)
    sse = await open_stream(session=key)
    _, welcome = await sse.event()
    assert welcome["user"]["id"] == user.pk
    await database_sync_to_async(delete_session)(key)
    rest = await sse.expect_end()
    assert [frame for _, frame in rest if frame["type"] == "error"] == [
        {"type": "error", "code": "forbidden", "detail": ENDED, "client_id": None}
    ]
