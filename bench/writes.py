"""The write path: ``python -m bench writes`` and ``python -m bench storm``.

**writes**: R rooms x K members on one server; every member is a socket
that reads its room and posts ``--rate`` messages a second (a unique
``client_id`` each) for ``--duration`` seconds. The sender's own copy with
its ``client_id`` is its acknowledgement; the other members' copies are
deliveries. After a drain (``--grace``), each load generator checks every
acknowledged message against every other member of its room
(acknowledged-but-not-delivered). Servers: ``floor`` (echoes to the room,
stores nothing), ``tutorial`` (the tutorial consumer plus one raw INSERT
per message, then group_send), ``liverooms`` (the app's ChatConsumer, every
message stored; send limits lifted in bench/settings.py). The database is
SQLite (WAL), or PostgreSQL with ``--database-url`` (default: the
``DATABASE_URL`` environment variable): each case creates a database of its
own there and drops it afterwards.

**storm**: C readers connect at once. For liverooms they resume one live
blog (``?after=<seq>``, ``--behind`` entries of history to catch up on):
the time until every one has its ``welcome`` and ``history``. For the floor
(``welcome``) and the tutorial (bare sockets) the time to open C sockets,
the baseline the issue compares with.

Both print a table and write ``writes.{json,md}`` / ``storm.{json,md}`` into
``--out``. Load generators run as separate processes (bench/loadgen.py);
their CPU is reported (as % of one core, the busiest one) so that a
saturated generator is visible.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.run import PER_PROCESS, PY, ROOT, Server, percentile, raise_file_limit, tree_cpu

WRITE_SERVERS = ("floor", "tutorial", "liverooms")
IDLE = 2.0  # seconds of the server's idle CPU measured before sending


def settings_label(case) -> str:
    return "".join(f" {name}={value}" for name, value in case.settings.items())


def parse_settings(pairs: list[str]) -> dict:
    """``--set NAME=VALUE``: VALUE as JSON (numbers, null, lists), else a string."""
    settings = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            settings[name] = json.loads(value)
        except json.JSONDecodeError:
            settings[name] = value
    return settings


@dataclass
class WriteCase:
    server: str
    rooms: int
    members: int
    rate: float
    duration: float
    database: str  # "sqlite" or "postgresql"
    layer: str = "core"
    processes: int = 1
    settings: dict = field(default_factory=dict)  # --set, liverooms only

    @property
    def label(self) -> str:
        db = "" if self.server == "floor" else f" [{self.database}]"
        procs = f" x{self.processes}" if self.processes > 1 else ""
        name = f"{self.server}{db}{procs}{settings_label(self)}"
        return f"{name} {self.rooms}x{self.members} @{self.rate:g}/s"

    @property
    def offered(self) -> float:
        return self.rooms * self.members * self.rate


@dataclass
class WriteResult:
    case: WriteCase
    opened: int = 0
    sent: int = 0
    acked: int = 0
    acked_in_run: int = 0
    ack_p50_ms: float = math.nan
    ack_p99_ms: float = math.nan
    expected_deliveries: int = 0
    delivered: int = 0
    delivery_p50_ms: float = math.nan
    delivery_p99_ms: float = math.nan
    acked_not_delivered: int = 0
    stored: int = 0
    seq_gaps: int = 0  # liverooms: seqs missing from the rooms' event logs
    server_cpu_ms_per_msg: float = math.nan
    loadgen_cpu_pct: float = math.nan  # the busiest load generator, % of one core
    idle_cpu_pct: float = math.nan  # the server with every socket open, before sending
    notes: list = field(default_factory=list)


@dataclass
class StormCase:
    server: str
    n: int
    behind: int
    database: str
    layer: str = "core"
    processes: int = 1
    settings: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.server == "liverooms":
            procs = f" x{self.processes}" if self.processes > 1 else ""
            name = f"liverooms [{self.database}]{procs}{settings_label(self)}"
            return f"{name} resume C={self.n} behind={self.behind}"
        return f"{self.server} open C={self.n}"


@dataclass
class StormResult:
    case: StormCase
    ready: int = 0
    all_ready_s: float = math.nan
    p50_s: float = math.nan
    p99_s: float = math.nan
    history_items: int = 0
    server_cpu_s: float = math.nan
    loadgen_cpu_pct: float = math.nan
    notes: list = field(default_factory=list)


class BenchServer(Server):
    """A bench server with a database of its own on PostgreSQL, when asked."""

    def __init__(self, case, workdir: Path, redis_url: str, database_url: str | None):
        super().__init__(case, workdir, redis_url)
        self.database_url = database_url if case.database == "postgresql" else None
        if self.database_url:
            self.db_name = self.prefix.replace("-", "_")
            base = self.database_url.rsplit("/", 1)[0]
            self.env["BENCH_DATABASE_URL"] = f"{base}/{self.db_name}"
        self.env["BENCH_LIVEROOMS"] = json.dumps(case.settings)

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as connection:
            connection.execute(sql)

    def start(self, setup: str) -> None:
        if self.database_url and self.uses_django:
            self.admin(f'CREATE DATABASE "{self.db_name}"')
        super().start(setup)

    def stream_url(self, kind: str, slug: str, query: str = "") -> str:
        """The URL of a chat room or live blog of this server."""
        base = f"ws://127.0.0.1:{self.port}"
        if self.case.server == "floor":
            return f"{base}/{kind}/{slug}/{query}"
        if self.case.server == "tutorial":
            return f"{base}/ws/{'stored' if kind == 'chat' else 'chat'}/{slug}/{query}"
        return f"{base}/ws/{kind}/{slug}/{query}"

    def stored(self, code: str) -> int:
        return int(self.django_shell(code).strip().splitlines()[-1])

    def drop_database(self) -> None:
        if self.database_url and self.uses_django:
            try:
                self.admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            except Exception as exc:
                print(f"  (could not drop database {self.db_name}: {exc})")


def loadgen(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [PY, "-m", "bench.loadgen", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def tell(procs: list[subprocess.Popen]) -> None:
    """One line to every load generator, as close together as possible."""
    for proc in procs:
        proc.stdin.write("\n")
        proc.stdin.flush()


def read(proc: subprocess.Popen) -> dict:
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"load generator exited with {proc.wait()}")
    return json.loads(line)


def busiest(procs: list[subprocess.Popen], before: list[float], seconds: float) -> float:
    """CPU of the busiest load generator since ``before``, % of one core."""
    spent = [tree_cpu(p.pid) - b for p, b in zip(procs, before, strict=True)]
    return 100 * max(spent) / seconds if spent and seconds > 0 else math.nan


def stop_all(procs: list[subprocess.Popen], server: BenchServer) -> None:
    for proc in procs:
        proc.kill()
        proc.wait()
    if hasattr(server, "process") and server.process.returncode is None:
        server.stop()
    server.drop_database()


# -- writes -----------------------------------------------------------------


def room_setup(case: WriteCase) -> str:
    rooms = f"[Room.objects.create(slug=f'r{{i}}', title=f'r{{i}}') for i in range({case.rooms})]"
    if case.server == "tutorial":
        return "from bench.tutorial import create_table\ncreate_table()"
    return rooms


# Per room: its greatest seq minus the number of its events (0: no gap).
SEQ_GAPS = (
    "from django.db.models import Count, Max\n"
    "rows = RoomEvent.objects.values('stream').annotate(n=Count('seq'), top=Max('seq'))\n"
    "print(sum(row['top'] - row['n'] for row in rows))"
)
STORED = {
    "liverooms": "print(Message.objects.count())",
    "tutorial": "from bench.tutorial import stored_count\nprint(stored_count())",
}


def start_members(server: BenchServer, case: WriteCase, per_process: int) -> list:
    rooms_per_process = max(1, per_process // case.members)
    slugs = [f"r{i}" for i in range(case.rooms)]
    procs = []
    for number, first in enumerate(range(0, len(slugs), rooms_per_process)):
        cmd = ["members", server.stream_url("chat", "{room}")]
        cmd += ["--rooms", ",".join(slugs[first : first + rooms_per_process])]
        cmd += ["--members", str(case.members), "--rate", str(case.rate)]
        cmd += ["--duration", str(case.duration), "--name", f"g{number}"]
        if server.welcome:
            cmd.append("--welcome")
        procs.append(loadgen(cmd))
    return procs


def run_writes(case: WriteCase, workdir: Path, args) -> WriteResult:
    result = WriteResult(case)
    server = BenchServer(case, workdir, args.redis_url, args.database_url)
    procs: list[subprocess.Popen] = []
    try:
        server.start(room_setup(case))
        time.sleep(1.0 + (case.processes if case.processes > 1 else 0))
        procs = start_members(server, case, args.per_process)
        for proc in procs:
            result.opened += read(proc)["ready"]
        idle_before = tree_cpu(server.process.pid)
        time.sleep(IDLE)  # what the server spends with nothing to do (presence, health ...)
        cpu_before = tree_cpu(server.process.pid)
        result.idle_cpu_pct = 100 * (cpu_before - idle_before) / IDLE
        gen_before = [tree_cpu(p.pid) for p in procs]
        started = time.monotonic()
        tell(procs)
        for proc in procs:
            result.sent += read(proc)["sent"]
        result.loadgen_cpu_pct = busiest(procs, gen_before, time.monotonic() - started)
        time.sleep(args.grace)
        cpu_spent = tree_cpu(server.process.pid) - cpu_before
        tell(procs)
        acks: list[float] = []
        deliveries: list[float] = []
        for proc in procs:
            report = read(proc)
            acks.extend(report["acks"])
            deliveries.extend(report["deliveries"])
            result.acked_in_run += report["acked_in_run"]
            result.expected_deliveries += report["expected_deliveries"]
            result.acked_not_delivered += report["acked_not_delivered"]
            if report["errors"]:
                result.notes.append(f"{report['errors']} sockets failed or closed early")
            for code, count in report["refused"].items():
                result.notes.append(f"{count} error frames {code!r}")
        acks.sort()
        deliveries.sort()
        result.acked, result.delivered = len(acks), len(deliveries)
        result.ack_p50_ms = percentile(acks, 0.50) * 1000
        result.ack_p99_ms = percentile(acks, 0.99) * 1000
        result.delivery_p50_ms = percentile(deliveries, 0.50) * 1000
        result.delivery_p99_ms = percentile(deliveries, 0.99) * 1000
        server.stop()
        if case.server in STORED:
            result.stored = server.stored(STORED[case.server])
        if case.server == "liverooms":
            result.seq_gaps = server.stored(SEQ_GAPS)
        per = result.stored if case.server in STORED else result.acked
        if per:
            result.server_cpu_ms_per_msg = cpu_spent / per * 1000
        if result.opened < case.rooms * case.members:
            result.notes.append(f"only {result.opened}/{case.rooms * case.members} sockets opened")
    except Exception as exc:
        result.notes.append(f"failed: {type(exc).__name__}: {exc}")
    finally:
        stop_all(procs, server)
    return result


WRITE_COLUMNS = [
    ("case", 36),
    ("offered/s", 9),
    ("acked", 20),
    ("acked/s", 8),
    ("ack p50", 8),
    ("ack p99", 8),
    ("dlv p50", 8),
    ("dlv p99", 8),
    ("dlv lost", 8),
    ("acked!dlv", 9),
    ("stored", 7),
    ("seq gaps", 8),
    ("CPU ms/msg", 10),
    ("idle CPU%", 9),
    ("gen CPU%", 8),
]


def write_row(r: WriteResult) -> list[str]:
    pct = f" ({100 * r.acked / r.sent:.1f}%)" if r.sent else ""
    stored = str(r.stored) if r.case.server in STORED else "-"
    return [
        r.case.label,
        f"{r.case.offered:g}",
        f"{r.acked}/{r.sent}{pct}",
        f"{r.acked_in_run / r.case.duration:.0f}",
        f"{r.ack_p50_ms:.1f}",
        f"{r.ack_p99_ms:.1f}",
        f"{r.delivery_p50_ms:.1f}",
        f"{r.delivery_p99_ms:.1f}",
        str(r.expected_deliveries - r.delivered),
        str(r.acked_not_delivered),
        stored,
        str(r.seq_gaps) if r.case.server == "liverooms" else "-",
        f"{r.server_cpu_ms_per_msg:.2f}",
        f"{r.idle_cpu_pct:.1f}",
        f"{r.loadgen_cpu_pct:.0f}",
    ]


# -- storm ------------------------------------------------------------------


def storm_setup(case: StormCase) -> str:
    entries = case.behind + 40  # some older history the readers do not need
    return (
        "blog = LiveBlog.objects.create(slug='storm', title='Storm')\n"
        f"for i in range({entries}):\n"
        "    Entry.objects.create(blog=blog, title=f'e{i}', body=f'<p>entry {i}</p>',"
        " status='published')\n"
    )


def run_storm(case: StormCase, workdir: Path, args) -> StormResult:
    result = StormResult(case)
    server = BenchServer(case, workdir, args.redis_url, args.database_url)
    procs: list[subprocess.Popen] = []
    try:
        server.start(storm_setup(case))
        url = server.stream_url("liveblog", "storm")
        if case.server == "liverooms":
            last = server.stored("print(LiveBlog.objects.get(slug='storm').last_seq)")
            url = server.stream_url("liveblog", "storm", f"?after={last - case.behind}")
        time.sleep(1.0 + (case.processes if case.processes > 1 else 0))
        count = math.ceil(case.n / PER_PROCESS)
        for i in range(count):
            cmd = ["storm", url, str(case.n // count + (1 if i < case.n % count else 0))]
            cmd += ["--in-flight", str(args.in_flight)]
            if server.welcome:
                cmd.append("--welcome")
            if case.server == "liverooms":
                cmd.append("--history")
            procs.append(loadgen(cmd))
        for proc in procs:
            read(proc)  # armed: imports done
        cpu_before = tree_cpu(server.process.pid)
        gen_before = [tree_cpu(p.pid) for p in procs]
        started = time.monotonic()
        tell(procs)
        reports = [read(proc) for proc in procs]
        result.loadgen_cpu_pct = busiest(procs, gen_before, time.monotonic() - started)
        result.server_cpu_s = tree_cpu(server.process.pid) - cpu_before
        go = min(r["go"] for r in reports)
        times = sorted(r["go"] - go + t for r in reports for t in r["times"])
        result.ready = len(times)
        result.all_ready_s = times[-1] if times else math.nan
        result.p50_s = percentile(times, 0.50)
        result.p99_s = percentile(times, 0.99)
        result.history_items = sum(r["history_items"] for r in reports)
        errors = sum(r["errors"] for r in reports)
        if errors:
            result.notes.append(f"{errors} sockets failed")
        if result.ready < case.n:
            result.notes.append(f"only {result.ready}/{case.n} ready")
        if case.server == "liverooms" and result.history_items != result.ready * case.behind:
            result.notes.append(
                f"{result.history_items} history items, expected {result.ready * case.behind}"
            )
        tell(procs)
    except Exception as exc:
        result.notes.append(f"failed: {type(exc).__name__}: {exc}")
    finally:
        stop_all(procs, server)
    return result


STORM_COLUMNS = [
    ("case", 44),
    ("ready", 7),
    ("all ready s", 11),
    ("p50 s", 7),
    ("p99 s", 7),
    ("server CPU s", 12),
    ("gen CPU%", 8),
]


def storm_row(r: StormResult) -> list[str]:
    return [
        r.case.label,
        str(r.ready),
        f"{r.all_ready_s:.2f}",
        f"{r.p50_s:.2f}",
        f"{r.p99_s:.2f}",
        f"{r.server_cpu_s:.2f}",
        f"{r.loadgen_cpu_pct:.0f}",
    ]


# -- tables and the command -------------------------------------------------


TOTALS = {
    "opened",
    "sent",
    "acked",
    "acked_in_run",
    "expected_deliveries",
    "delivered",
    "acked_not_delivered",
    "stored",
    "seq_gaps",
    "ready",
    "history_items",
}


def combine(runs: list):
    """One row for several rounds: totals of counts, medians of the figures."""
    if len(runs) == 1:
        return runs[0]
    result = type(runs[0])(runs[0].case)
    for name, value in asdict(runs[0]).items():
        if name in ("case", "notes"):
            continue
        values = [getattr(r, name) for r in runs]
        if name in TOTALS:
            setattr(result, name, sum(values))
        elif isinstance(value, float):
            setattr(result, name, statistics.median(values))
    result.notes = [note for r in runs for note in r.notes]
    result.notes.append(f"counts: totals of {len(runs)} rounds; figures: medians")
    return result


def table(results: list, columns: list, row, markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(n for n, _ in columns) + " |", "|" + "---|" * len(columns)]
    else:
        lines = ["  ".join(n.ljust(w) for n, w in columns)]
    for r in results:
        cells = row(r)
        if markdown:
            if r.notes:
                cells[0] += " (" + "; ".join(r.notes) + ")"
            lines.append("| " + " | ".join(cells) + " |")
        else:
            lines.append("  ".join(c.ljust(w) for c, (_, w) in zip(cells, columns, strict=True)))
            lines.extend(f"    note: {note}" for note in r.notes)
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="bench", required=True)
    w = sub.add_parser("writes", help="many rooms, every member posting, every message stored")
    w.add_argument("--servers", default=",".join(WRITE_SERVERS))
    w.add_argument("--rooms", type=int, default=20)
    w.add_argument("--members", type=int, default=5)
    w.add_argument("--rate", type=float, default=1, help="messages a second per member")
    w.add_argument("--duration", type=float, default=10, help="seconds of sending")
    w.add_argument("--grace", type=float, default=5, help="seconds to drain after")
    w.add_argument(
        "--per-process",
        type=int,
        default=100,
        help="member sockets per load-generator process (whole rooms)",
    )
    s = sub.add_parser("storm", help="C readers resuming one live blog at once")
    s.add_argument("--servers", default=",".join(WRITE_SERVERS))
    s.add_argument("--n", type=int, default=2000, help="readers (C)")
    s.add_argument("--behind", type=int, default=10, help="entries each reader catches up on")
    s.add_argument(
        "--in-flight", type=int, default=200, help="connects in flight per load generator"
    )
    for x in (w, s):
        x.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
        x.add_argument(
            "--processes", default="1", help="liverooms server processes (uvicorn --workers)"
        )
        x.add_argument("--repeat", type=int, default=1, help="rounds of every case, interleaved")
        x.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a LIVEROOMS setting for the liverooms server (VALUE as JSON); repeatable",
        )
        x.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
        x.add_argument("--out", default=str(ROOT / "bench" / "results"))
    return p


def cases(args) -> list:
    database = "postgresql" if args.database_url else "sqlite"
    settings = parse_settings(args.set)
    out = []
    for server in args.servers.split(","):
        if server not in WRITE_SERVERS:
            raise SystemExit(f"unknown server {server!r}: one of {', '.join(WRITE_SERVERS)}")
        counts = [int(n) for n in args.processes.split(",")] if server == "liverooms" else [1]
        for processes in counts:
            if args.bench == "writes":
                out.append(
                    WriteCase(
                        server,
                        args.rooms,
                        args.members,
                        args.rate,
                        args.duration,
                        database,
                        processes=processes,
                        settings=settings if server == "liverooms" else {},
                    )
                )
            else:
                extra = settings if server == "liverooms" else {}
                out.append(
                    StormCase(
                        server, args.n, args.behind, database, processes=processes, settings=extra
                    )
                )
    return out


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    raise_file_limit()
    run, columns, row = (
        (run_writes, WRITE_COLUMNS, write_row)
        if args.bench == "writes"
        else (run_storm, STORM_COLUMNS, storm_row)
    )
    todo = cases(args)
    rounds: list[list] = [[] for _ in todo]
    with tempfile.TemporaryDirectory(prefix=f"liverooms-{args.bench}-") as workdir:
        for number in range(1, args.repeat + 1):
            for case, runs in zip(todo, rounds, strict=True):
                of = f" (round {number} of {args.repeat})" if args.repeat > 1 else ""
                print(f"running {case.label}{of} ...", flush=True)
                runs.append(run(case, Path(workdir), args))
                print(table(runs[-1:], columns, row, markdown=False).split("\n", 1)[1], flush=True)
    results = [combine(runs) for runs in rounds]
    print("\n" + table(results, columns, row, markdown=False))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.bench}.json").write_text(
        json.dumps(
            [
                {**asdict(r), "label": r.case.label, "rounds": [asdict(x) for x in runs]}
                for r, runs in zip(results, rounds, strict=True)
            ],
            indent=1,
        )
    )
    command = shlex.join(["python", "-m", "bench", *argv])
    markdown = table(results, columns, row, markdown=True)
    (out / f"{args.bench}.md").write_text(f"Command: `{command}`\n\n{markdown}\n")
    print(f"\nwrote {out}/{args.bench}.json, {args.bench}.md")


if __name__ == "__main__":
    main(sys.argv[1:])
