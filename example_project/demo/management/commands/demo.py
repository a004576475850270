"""``manage.py demo``: migrate, add demo data, and serve on 127.0.0.1:8000.

Safe to run again: the data is only created where it is missing, and an
existing ``admin`` user keeps its password.
"""

import os

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV

from django_liverooms.models import Entry, LiveBlog, Message, Room

ROOMS = [("lobby", "Lobby"), ("random", "Random")]

BLOG = ("match-day", "Match day", "Minute by minute from the big match.")
ENTRIES = [
    ("Kick-off", "<p>We are under way! The home side in <strong>blue</strong>.</p>"),
    (
        "Early chance",
        "<p>A shot from the edge of the box, just wide. <em>The crowd is on its feet.</em></p>",
    ),
]


class Command(BaseCommand):
    help = (
        "Set up the example project (migrate, demo rooms, a live blog and an "
        "admin/admin superuser) and run the development server."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "addrport",
            nargs="?",
            default="127.0.0.1:8000",
            help="Address and port to serve on (default 127.0.0.1:8000).",
        )
        parser.add_argument(
            "--no-serve",
            action="store_true",
            help="Only migrate and create the demo data; do not run the server.",
        )
        parser.add_argument(
            "--noreload",
            action="store_true",
            help="Do not restart the server when code changes.",
        )

    def handle(self, *args, **options):
        # runserver's autoreloader re-runs this command in a child process
        # (with RUN_MAIN set); the set-up has been done by then.
        if os.environ.get(DJANGO_AUTORELOAD_ENV) != "true" or options["no_serve"]:
            call_command("migrate", interactive=False, verbosity=options["verbosity"])
            self.create_demo_data()
            self.stdout.write(
                self.style.WARNING("Superuser admin / password admin: for this local demo only.")
            )
            self.stdout.write(f"Open http://{options['addrport']}/ (admin at /admin/).")
        if options["no_serve"]:
            return
        call_command("runserver", options["addrport"], use_reloader=not options["noreload"])

    @transaction.atomic
    def create_demo_data(self):
        User = get_user_model()
        admin = User.objects.filter(username="admin").first()
        if admin is None:
            admin = User.objects.create_superuser("admin", "admin@example.com", "admin")
            self.stdout.write("Created superuser admin (password admin).")

        for slug, title in ROOMS:
            room, created = Room.objects.get_or_create(slug=slug, defaults={"title": title})
            if created:
                self.stdout.write(f"Created chat room {slug!r}.")
                if slug == "lobby":
                    # Saving a Message (or an Entry) is an event: it is stored
                    # with the room's next seq and broadcast to readers.
                    Message.objects.create(
                        room=room,
                        author=admin,
                        body="Welcome to the lobby! Open this page in two windows and say hello.",
                    )

        slug, title, description = BLOG
        blog, created = LiveBlog.objects.get_or_create(
            slug=slug, defaults={"title": title, "description": description}
        )
        if created:
            self.stdout.write(f"Created live blog {slug!r}.")
            for entry_title, body in ENTRIES:
                Entry.objects.create(
                    blog=blog,
                    author=admin,
                    title=entry_title,
                    body=body,
                    status=Entry.STATUS.published,
                )
