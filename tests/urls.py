from django.contrib import admin
from django.urls import include, path

from tests.hostapp.views import publish_entry

urlpatterns = [
    path("admin/", admin.site.urls),
    path("live/", include("django_liverooms.urls")),
    # Under a prefix that captures a kwarg, as the WebSocket routes may be.
    path("<slug:site>/live/", include("django_liverooms.urls", namespace="tenant-liverooms")),
    # Used by tests/test_scaleout.py, from a WSGI server process.
    path("test/publish/<slug:slug>/", publish_entry),
]
