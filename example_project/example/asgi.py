"""The ASGI application: Django's HTTP views plus the app's WebSockets.

Served by ``manage.py runserver`` (Daphne's, as "daphne" is first in
INSTALLED_APPS), or in production by e.g. ``daphne example.asgi:application``
or ``uvicorn example.asgi:application`` run from this project's directory.
"""

import os

from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")

# Set up Django before importing anything that imports models. Static files
# (the widgets' script and stylesheet, the admin's) are served from the app
# directories by Django, also under daphne or uvicorn: fine for this demo; a
# real site serves them with WhiteNoise or its web server after collectstatic.
django_asgi_app = ASGIStaticFilesHandler(get_asgi_application())

from channels.auth import AuthMiddlewareStack  # noqa: E402

from django_liverooms.routing import websocket_include, worker_routes  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # /ws/chat/<slug>/ and /ws/liveblog/<slug>/. The origin check refuses
        # pages of other sites (and clients that send no Origin header);
        # AuthMiddlewareStack gives consumers the session and user.
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter([websocket_include("ws/")]))
        ),
        # Only used with LIVEROOMS["PERSISTENCE"] = "worker", served by
        # `manage.py runworker liverooms.persist`.
        "channel": ChannelNameRouter(worker_routes()),
    }
)
