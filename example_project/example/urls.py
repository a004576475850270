"""URLs: the admin, the app's HTTP API under /live/, and the demo pages.

The WebSocket routes are in asgi.py (under /ws/).
"""

from django.contrib import admin
from django.urls import include, path

from demo import views

urlpatterns = [
    path("admin/", admin.site.urls),
    # GET /live/chat/<slug>/messages and /live/liveblog/<slug>/entries
    path("live/", include("django_liverooms.urls")),
    path("", views.home, name="home"),
    path("chat/<slug:slug>/", views.chat, name="chat"),
    path("liveblog/<slug:slug>/", views.liveblog, name="liveblog"),
]
