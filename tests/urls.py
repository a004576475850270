from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("live/", include("django_liverooms.urls")),
    # Under a prefix that captures a kwarg, as the WebSocket routes may be.
    path("<slug:site>/live/", include("django_liverooms.urls", namespace="tenant-liverooms")),
]
