"""``manage.py liverooms_health``: is the live part of the site working?

Exits 0 when every check passes, 1 otherwise; ``--json`` prints one JSON
object for monitoring. The checks are in django_liverooms/health.py.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import health
from ...streams import STREAM_MODELS


def stream_arg(value: str) -> tuple[str, str]:
    kind, _, slug = value.partition(":")
    if kind not in STREAM_MODELS or not slug:
        raise ValueError(value)
    return kind, slug


class Command(BaseCommand):
    help = (
        "Check the channel layer (a message round trip), stream seqs, the presence store "
        "and open connections per server process. Exit status 1 if anything is unhealthy."
    )
    requires_system_checks: list[Any] = []  # report even when a check would stop the command

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument(
            "--stream",
            action="append",
            default=[],
            metavar="KIND:SLUG",
            help=f"Report this stream ({' or '.join(STREAM_MODELS)}:<slug>; repeatable), "
            "with its presence count. Default: the busiest streams.",
        )
        parser.add_argument(
            "--limit", type=int, default=10, help="Streams of each kind listed (default 10)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            selected = [stream_arg(value) for value in options["stream"]]
        except ValueError as exc:
            raise CommandError(
                f"--stream must be chat:<slug> or liveblog:<slug>, not {exc}"
            ) from None
        if options["limit"] < 0:
            raise CommandError("--limit must be 0 or more.")
        report = health.collect(selected, options["limit"])
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self.write_text(report)
        if not report.healthy:
            raise SystemExit(1)

    def write_text(self, report: health.Report) -> None:
        for name, check in report.checks.items():
            style = self.style.SUCCESS if check.ok else self.style.ERROR
            self.stdout.write(f"{name:<10} {style('ok' if check.ok else 'FAIL'):<4} {check.detail}")
            if name == "layer":
                for host in check.data.get("hosts", []):
                    self.stdout.write(
                        f"{'':<15} host {host['index']}: redis {host['redis']}, run_id {host['run_id']}"
                    )
            elif name == "streams":
                for row in check.data.get("streams", []):
                    self.stdout.write(f"{'':<15} {row['kind']}:{row['slug']} seq {row['last_seq']}")
            elif name == "presence":
                for group, count in check.data.get("counts", {}).items():
                    self.stdout.write(f"{'':<15} {group}: {count} present")
            elif name == "processes":
                for process, entry in check.data.get("processes", {}).items():
                    self.stdout.write(
                        f"{'':<15} {process}: {entry['connections']} connections, "
                        f"{entry['streams']} streams"
                    )
        self.stdout.write("healthy" if report.healthy else "UNHEALTHY")
