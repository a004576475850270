"""``manage.py liverooms_kick <username>``: close a user's live connections.

Every server process closes the user's sockets and SSE streams (``error``
``forbidden`` "You were disconnected by a moderator.", then 4403); the user
may reconnect. To keep them out, ban them (a ``Ban``, in the admin or with
``moderation.ban()``). See docs/permissions.md.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import moderation
from ...conf import conf


class Command(BaseCommand):
    help = "Close a user's open chat and live blog connections in every server process."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", nargs="+", help="The user's username. Repeatable.")

    def handle(self, *args: Any, **options: Any) -> None:
        model = get_user_model()
        users = []
        for username in options["username"]:  # every one looked up before any is kicked
            try:
                users.append(model._default_manager.get_by_natural_key(username))
            except model.DoesNotExist:
                raise CommandError(f"There is no user {username!r}.") from None
        for user in users:
            moderation.kick(user)
            self.stdout.write(f"{user.get_username()}: disconnected in every server process")
        if conf.FANOUT != "process":
            self.stderr.write(
                'FANOUT is not "process": sockets have no fan-out hub and stay open; '
                "only SSE streams were closed."
            )
