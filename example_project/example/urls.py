"""URLs: the admin, the app's HTTP API under /live/, and the demo pages.

The WebSocket routes are in asgi.py (under /ws/, LIVEROOMS["WEBSOCKET_PREFIX"]'s default).
"""

from django.contrib import admin
from django.urls import include, path

from demo import views

urlpatterns = [
    path("admin/", admin.site.urls),
    # The language switcher posts to /i18n/setlang/.
    path("i18n/", include("django.conf.urls.i18n")),
    # /live/chat/<slug>/messages, /live/liveblog/<slug>/entries and .../stream
    path("live/", include("django_liverooms.urls")),
    path("", views.home, name="home"),
    path("chat/<slug:slug>/", views.chat, name="chat"),
    path("liveblog/<slug:slug>/", views.liveblog, name="liveblog"),
]
