"""``manage.py liverooms_publish_due``: publish the scheduled entries that are due.

Run it from cron (every minute), or as a long-running process with
``--every SECONDS``. Each due entry goes live as if an editor published it
then: its ``entry`` event is recorded and broadcast at that moment. Overlapping
runs publish each entry once (docs/liveblog.md).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import streams


class Command(BaseCommand):
    help = (
        "Publish the scheduled live blog entries whose publish time has come. "
        "Suitable for cron; --every SECONDS keeps running."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--every",
            type=float,
            metavar="SECONDS",
            help="Keep running, checking every SECONDS (at least 0.5) until interrupted.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List the due entries; publish nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        every = options["every"]
        if every is not None and every < 0.5:
            raise CommandError("--every must be at least 0.5 seconds.")
        if options["dry_run"]:
            due = streams.due_entries()
            self.stdout.write(f"{len(due)} entries due: {', '.join(map(str, due)) or '-'}")
            return
        while True:
            for entry in streams.publish_due():
                self.stdout.write(f"Published entry {entry.pk} in {entry.blog.slug}.")
            if every is None:
                return
            try:
                time.sleep(every)
            except KeyboardInterrupt:
                return
