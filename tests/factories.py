"""Small helpers to make test data."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from django_liverooms.models import Entry, LiveBlog, Room


def make_room(slug="lobby", title="Lobby"):
    return Room.objects.create(slug=slug, title=title)


def make_blog(slug="match-day", title="Match day"):
    return LiveBlog.objects.create(slug=slug, title=title)


def make_user(username="alice", editor=False, **kwargs):
    user = get_user_model().objects.create_user(username=username, password="pw", **kwargs)
    if editor:
        user.user_permissions.add(
            *Permission.objects.filter(codename__in=["add_entry", "change_entry"])
        )
        user = get_user_model().objects.get(pk=user.pk)  # fresh permission cache
    return user


def publish_entry(blog, title="Kick-off", body="<p>We are under way.</p>", **kwargs):
    return Entry.objects.create(
        blog=blog, title=title, body=body, status=Entry.STATUS.published, **kwargs
    )
