"""``manage.py liverooms_purge``: data-protection requests (docs/retention.md).

``--user`` erases every message a user wrote (text, name, author) and
redacts every stored event about them; ``--room`` deletes a chat room with
its messages and events. ``--dry-run`` counts and changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import streams
from ...models import Room


class Command(BaseCommand):
    help = (
        "Erase a user's chat messages in every room (--user), or delete a chat room "
        "with its messages and events (--room), for a data-protection request."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--user",
            action="append",
            default=[],
            metavar="ID_OR_USERNAME",
            help="A user's id (digits; works after the user was deleted) or username. Repeatable.",
        )
        parser.add_argument(
            "--room", action="append", default=[], metavar="SLUG", help="A chat room. Repeatable."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would go; change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["user"] and not options["room"]:
            raise CommandError("Give --user ID_OR_USERNAME, --room SLUG, or both.")
        dry_run = options["dry_run"]
        # Everything is looked up before anything is changed.
        user_ids = [(value, self.user_id(value)) for value in options["user"]]
        rooms = [self.room(slug) for slug in options["room"]]
        for value, user_id in user_ids:
            purged = streams.purge_user(user_id, dry_run=dry_run)
            verb = "would erase" if dry_run else "erased"
            self.stdout.write(
                f"user {value}: {verb} {purged.messages} messages in {purged.rooms} rooms "
                f"({purged.deleted} were shown; {purged.events} stored events redacted)"
            )
        for room in rooms:
            done = streams.purge_room(room, dry_run=dry_run)
            verb = "would delete" if dry_run else "deleted"
            self.stdout.write(
                f"{verb} chat room {room.slug}: {done.messages} messages, {done.events} events"
            )
        self.stdout.write(
            self.style.SUCCESS("liverooms_purge: done" + (" (dry run)" if dry_run else ""))
        )

    def user_id(self, value: str) -> int:
        if value.isascii() and value.isdigit():
            return int(value)  # the user row may be gone already; its messages may not
        users = get_user_model()._default_manager
        user = users.filter(**{users.model.USERNAME_FIELD: value}).first()
        if user is None:
            raise CommandError(f"No user {value!r} (give the id of a deleted user).")
        return user.pk

    def room(self, slug: str) -> Room:
        room = streams.get_stream("chat", slug)
        if room is None:
            raise CommandError(f"No chat room {slug!r}.")
        return room
