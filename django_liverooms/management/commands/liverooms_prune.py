"""``manage.py liverooms_prune``: delete old events (retention).

Only the events (what history and resume replay) are deleted; messages and
entries stay. A reader resuming from before what is kept is told
``history_gone`` and reloads (docs/retention.md).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ... import streams


class Command(BaseCommand):
    help = (
        "Delete the oldest events of chat rooms and live blogs. An event is kept if any "
        "given rule keeps it (--keep-days, --keep-last). Messages and entries are not deleted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--keep-days", type=int, metavar="N", help="Keep events created in the last N days."
        )
        parser.add_argument(
            "--keep-last", type=int, metavar="N", help="Keep the latest N events of each stream."
        )
        for kind in streams.STREAM_MODELS:
            parser.add_argument(
                f"--{kind}",
                action="append",
                default=[],
                metavar="SLUG",
                help=f"Only this {kind} stream (repeatable). Default: every stream.",
            )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        keep_days, keep_last = options["keep_days"], options["keep_last"]
        if keep_days is None and keep_last is None:
            raise CommandError("Give --keep-days N, --keep-last N, or both.")
        if any(value is not None and value < 0 for value in (keep_days, keep_last)):
            raise CommandError("--keep-days and --keep-last must be 0 or more.")
        older_than = None if keep_days is None else timezone.now() - timedelta(days=keep_days)
        chosen = {kind: options[kind] for kind in streams.STREAM_MODELS if options[kind]}
        total = 0
        for kind, model in streams.STREAM_MODELS.items():
            if chosen and kind not in chosen:
                continue
            queryset = model._default_manager.order_by("pk")
            if chosen:
                missing = set(chosen[kind]) - set(
                    queryset.filter(slug__in=chosen[kind]).values_list("slug", flat=True)
                )
                if missing:
                    raise CommandError(f"No {kind} stream {', '.join(sorted(missing))}.")
                queryset = queryset.filter(slug__in=chosen[kind])
            for stream in queryset.iterator():
                # One transaction per stream: a long run never locks them all.
                pruned = streams.prune_events(
                    stream, keep_last=keep_last, older_than=older_than, dry_run=options["dry_run"]
                )
                if pruned.events:
                    total += pruned.events
                    self.stdout.write(
                        f"{kind} {stream.slug}: {pruned.events} events up to seq {pruned.through}"
                    )
        verb = "would delete" if options["dry_run"] else "deleted"
        self.stdout.write(self.style.SUCCESS(f"liverooms_prune: {verb} {total} events."))
