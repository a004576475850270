"""``manage.py publish_entry SLUG TITLE``: a host project's own command that saves an entry."""

from django.core.management.base import BaseCommand

from django_liverooms.models import Entry, LiveBlog


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("title")

    def handle(self, slug, title, **options):
        blog = LiveBlog.objects.get(slug=slug)
        Entry.objects.create(blog=blog, title=title, body=f"<p>{title}</p>", status="published")
