"""Mount the app's WebSocket routes under any prefix, with one call.

In the project's ``asgi.py``::

    from django_liverooms.routing import websocket_include

    application = ProtocolTypeRouter({
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter([websocket_include("ws/")]))
        ),
    })

The prefix may capture kwargs (``"<slug:site>/live/"``); they reach the
consumers in ``scope["url_route"]["kwargs"]`` and the policy. Calling it
twice with two prefixes mounts the routes twice.
"""

from __future__ import annotations

from typing import Any

from channels.routing import URLRouter
from django.urls import path, re_path

from .conf import conf
from .consumers import ChatConsumer, LiveBlogConsumer, NotFoundConsumer
from .workers import PersistWorker


def websocket_urlpatterns() -> list[Any]:
    """The app's routes, relative to wherever they are mounted.

    Any slug-shaped path segment matches, so that a slug outside the
    protocol's alphabet is refused by the consumer with close code 4404
    rather than falling through to a routing error.
    """
    return [
        re_path(r"^chat/(?P<slug>[^/]+)/?$", ChatConsumer.as_asgi()),
        re_path(r"^liveblog/(?P<slug>[^/]+)/?$", LiveBlogConsumer.as_asgi()),
        # Any other path under the app's prefix (an empty rest, an unknown
        # kind, extra segments, dot segments) closes with 4404 too, instead
        # of URLRouter's "No route found" (HTTP 500 and a traceback).
        re_path(r"^[\s\S]*$", NotFoundConsumer.as_asgi()),
    ]


def websocket_include(prefix: str = "") -> Any:
    """``path(prefix, URLRouter(...))`` over fresh copies of the app's routes."""
    return path(prefix, URLRouter(websocket_urlpatterns()))


def worker_routes() -> dict[str, Any]:
    """The ``"channel"`` routes of worker persistence mode::

        "channel": ChannelNameRouter(worker_routes()),

    served by ``python manage.py runworker liverooms.persist``.
    """
    return {conf.PERSIST_CHANNEL: PersistWorker.as_asgi()}
