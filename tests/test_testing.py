"""The README's "Testing your project" example, as written there."""

import pytest
from django.contrib.auth import get_user_model

from django_liverooms.models import Room
from django_liverooms.testing import StreamCommunicator

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
        headers=[(b"origin", b"http://localhost")],
    )
    welcome, _ = await chat.open()
    assert welcome["user"]["id"] == user.pk
    await chat.disconnect()
