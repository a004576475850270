"""ASGI apps of the bench: ``bench.asgi:liverooms`` and ``bench.asgi:tutorial``
(``ws/chat/<room>/`` as shipped, ``ws/stored/<room>/`` storing each message)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.sessions import SessionMiddlewareStack  # noqa: E402
from django.urls import path  # noqa: E402

from bench.tutorial import ChatConsumer, StoringChatConsumer  # noqa: E402
from django_liverooms.routing import websocket_include  # noqa: E402

liverooms = ProtocolTypeRouter(
    {"websocket": SessionMiddlewareStack(URLRouter([websocket_include("ws/")]))}
)
tutorial = ProtocolTypeRouter(
    {
        "websocket": URLRouter(
            [
                path("ws/chat/<str:room_name>/", ChatConsumer.as_asgi()),
                # The write bench: the same consumer with a raw INSERT per message.
                path("ws/stored/<str:room_name>/", StoringChatConsumer.as_asgi()),
            ]
        )
    }
)
