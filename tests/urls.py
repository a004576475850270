from django.contrib import admin
from django.urls import include, path

from tests.hostapp.views import publish_entry

urlpatterns = [
    path("admin/", admin.site.urls),
    path("live/", include("django_liverooms.urls")),
    # Used by tests/test_scaleout.py, from a WSGI server process.
    path("test/publish/<slug:slug>/", publish_entry),
]
