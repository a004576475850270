"""HTTP URLs; mount with ``path("live/", include("django_liverooms.urls"))``."""

from django.urls import path

from . import views

app_name = "liverooms"

urlpatterns = [
    path("chat/unread", views.unread_counts, name="unread"),
    path("chat/<str:slug>/messages", views.messages, name="messages"),
    path("chat/<str:slug>/search", views.search, name="search"),
    path("chat/<str:slug>/attachments", views.upload_attachment, name="attachments"),
    path("chat/<str:slug>/attachments/<int:attachment_id>", views.attachment, name="attachment"),
    path("liveblog/<str:slug>/entries", views.entries, name="entries"),
    path("liveblog/<str:slug>/stream", views.stream, name="stream"),
    path("liveblog/<str:slug>/feed/", views.feed, name="feed"),
    path("liveblog/<str:slug>/feed/atom/", views.atom_feed, name="atom_feed"),
]
