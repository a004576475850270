"""Every handshake under the app's prefix is answered: a stream, or close 4404.

Paths that name no route of the app (an empty rest, an unknown kind, a kind
in the wrong case, dot segments) used to fall through URLRouter with a
ValueError: HTTP 500 and a traceback on every server.
"""

import pytest

from django_liverooms.testing import StreamCommunicator

from .asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = [(b"origin", b"http://localhost")]

# Relative to the app's prefix.
UNROUTED = ["", "foo/", "Chat/lobby/", "chatx/lobby/", "../ws/chat/lobby/", "liveblogs/x/", "x"]
PREFIXES = ["/ws/", "/other/", "/site-a/live/"]


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("rest", UNROUTED)
async def test_unrouted_paths_under_the_prefix_close_with_4404(prefix, rest):
    chat = StreamCommunicator(prefix + rest, application=application, headers=ORIGIN)
    assert await chat.close_code() == 4404


async def test_4404_needs_no_channel_layer(settings):
    # A refusal must not touch the layer: with Redis down it would raise.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "tests.test_routing_404.BrokenLayer"}}
    from channels.layers import channel_layers

    channel_layers.backends = {}
    chat = StreamCommunicator("/ws/foo/", application=application, headers=ORIGIN)
    assert await chat.close_code() == 4404


class BrokenLayer:
    """A channel layer whose every call fails, as with Redis restarting."""

    extensions = ["groups"]

    def __init__(self, **kwargs):
        pass

    async def new_channel(self, prefix="specific."):
        raise ConnectionError("Redis is restarting")

    async def receive(self, channel):
        raise ConnectionError("Redis is restarting")

    async def send(self, channel, message):
        raise ConnectionError("Redis is restarting")

    async def group_add(self, group, channel):
        raise ConnectionError("Redis is restarting")

    async def group_discard(self, group, channel):
        raise ConnectionError("Redis is restarting")

    async def group_send(self, group, message):
        raise ConnectionError("Redis is restarting")
