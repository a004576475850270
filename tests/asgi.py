"""The test project's ASGI application: the app mounted as a user would."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from django_liverooms.routing import websocket_include, worker_routes  # noqa: E402

websocket_routes = URLRouter(
    [
        websocket_include("ws/"),
        # The same include twice, and under a prefix that captures a kwarg.
        websocket_include("other/"),
        websocket_include("<slug:site>/live/"),
    ]
)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(websocket_routes)),
        "channel": ChannelNameRouter(worker_routes()),
    }
)
