"""The README's "Testing your project" example, as written there."""

import pytest
from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.contrib.auth import get_user_model
from django.test import override_settings

from django_liverooms.models import Room
from django_liverooms.routing import websocket_include
from django_liverooms.testing import HandshakeRejected, StreamCommunicator

from .asgi import application


@pytest.fixture
def user():
    return get_user_model().objects.create_user("alice")


@pytest.fixture
def lobby():
    return Room.objects.create(slug="lobby", title="Lobby")


@pytest.mark.django_db(transaction=True)  # consumers query from another thread
async def test_lobby(user, lobby):
    chat = StreamCommunicator("/chat/lobby/", user=user)
    welcome, history = await chat.open()
    await chat.send_frame({"type": "message", "body": "hi", "client_id": "1"})
    assert (await chat.receive_frame())["body"] == "hi"
    await chat.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_through_the_project_application_with_an_origin(user, lobby):
    chat = StreamCommunicator(
        "/ws/chat/lobby/",
        user=user,
        application=application,
        headers=[(b"origin", b"http://testserver")],
    )
    welcome, _ = await chat.open()
    assert welcome["user"]["id"] == user.pk
    await chat.disconnect()


def through_the_project(origin, user=None):
    # Built here: AllowedHostsOriginValidator reads ALLOWED_HOSTS when it is built.
    project_app = AllowedHostsOriginValidator(
        AuthMiddlewareStack(URLRouter([websocket_include("ws/")]))
    )
    return StreamCommunicator(
        "/ws/chat/lobby/", user=user, application=project_app, headers=[(b"origin", origin)]
    )


# What Django's test runner leaves of a new project's settings (ALLOWED_HOSTS = []).
NEW_PROJECT = {"DEBUG": False, "ALLOWED_HOSTS": ["testserver"]}


@override_settings(**NEW_PROJECT)
@pytest.mark.django_db(transaction=True)
async def test_in_a_new_project_the_readme_origin_is_admitted(user, lobby):
    chat = through_the_project(b"http://testserver", user)
    welcome, _ = await chat.open()
    assert welcome["user"]["id"] == user.pk
    await chat.disconnect()


@override_settings(**NEW_PROJECT)
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("method", ["open", "close_code"])
async def test_a_refused_origin_says_so(lobby, method):
    chat = through_the_project(b"http://localhost")
    with pytest.raises(HandshakeRejected) as refused:
        await getattr(chat, method)()
    message = str(refused.value)
    assert "handshake rejected (HTTP 403" in message
    assert "Origin" in message and "ALLOWED_HOSTS" in message and "http://testserver" in message
    assert isinstance(refused.value, AssertionError)  # as open() always raised
