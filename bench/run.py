"""Run the fan-out benchmark: ``python -m bench`` (options: ``--help``).

Each case starts one server on loopback, opens N subscriber sockets from
load-generator processes, posts ``rate`` chat messages a second for
``duration`` seconds from one more socket, and measures every delivery.
Prints a table, and writes results.json, results.md (paste into
docs/performance.md) and results.png into ``--out``.

Servers: ``floor`` (bare websockets + broadcast()), ``asgi-floor`` (the
same broadcast as a bare ASGI app on uvicorn), ``tutorial`` (the
Channels tutorial consumer, uvicorn defaults), ``liverooms`` (uvicorn,
per-message deflate off, every message stored in SQLite WAL before it is
broadcast), and for "what each optimisation bought": ``liverooms-consumer``
(LIVEROOMS FANOUT="consumer"), ``liverooms-deflate`` (uvicorn's default
compression on), ``liverooms-daphne`` and ``liverooms-granian``.

``--processes 1,2,4`` runs each uvicorn case with that many server processes
sharing one listening socket (``uvicorn --workers N``): clients spread over
them as behind a load balancer, and every broadcast reaches each process
through Redis.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PER_PROCESS = 1700  # subscribers per load-generator process
WARM_UP = 20  # sockets opened and closed before RSS is measured
FLOORS = {"floor", "asgi-floor"}  # no Django, no database, no channel layer
# Always one process: the floors broadcast to the sockets of their own
# process only; daphne and granian are compared with uvicorn on one process.
SINGLE_PROCESS = {"floor", "asgi-floor", "liverooms-daphne", "liverooms-granian"}


@dataclass
class Case:
    server: str
    n: int
    rate: float
    duration: float
    layer: str
    processes: int = 1  # uvicorn --workers: server processes sharing one listening socket

    @property
    def label(self) -> str:
        layer = f" [{self.layer}]" if self.server.startswith(("liverooms", "tutorial")) else ""
        procs = f" x{self.processes}" if self.processes > 1 else ""
        return f"{self.server}{layer}{procs} N={self.n} @{self.rate:g}/s"


@dataclass
class Result:
    case: Case
    opened: int = 0
    sent: int = 0
    expected: int = 0
    delivered: int = 0
    lost: int = 0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan
    deliveries_per_s: float = 0.0
    cpu_s_per_1000: float = math.nan
    rss_kib_per_conn: float = math.nan
    notes: list = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {port}")


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def tree_cpu(pid: int) -> float:
    total = 0.0
    for p in tree(pid):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def tree_rss(pid: int) -> int:
    total = 0
    for p in tree(pid):
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


class Server:
    def __init__(self, case: Case, workdir: Path, redis_url: str, ws: str = "auto"):
        self.case = case
        self.ws = ws
        self.port = free_port()
        self.prefix = f"liverooms-bench-{uuid.uuid4().hex[:8]}"
        self.redis_url = redis_url
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "BENCH_DB": str(workdir / f"{self.prefix}.sqlite3"),
            "BENCH_LAYER": case.layer,
            "BENCH_PREFIX": self.prefix,
            "BENCH_REDIS_URL": redis_url,
            "BENCH_FANOUT": "consumer" if case.server == "liverooms-consumer" else "process",
        }
        self.log = open(workdir / f"{self.prefix}.log", "w+")

    @property
    def url(self) -> str:
        if self.case.server == "floor":
            return f"ws://127.0.0.1:{self.port}/"
        return f"ws://127.0.0.1:{self.port}/ws/chat/bench/"

    @property
    def uses_django(self) -> bool:
        return self.case.server not in FLOORS

    @property
    def welcome(self) -> bool:
        return self.case.server != "tutorial"

    def command(self) -> list[str]:
        port = str(self.port)
        uvicorn = [PY, "-m", "uvicorn", "--host", "127.0.0.1", "--port", port]
        uvicorn += ["--log-level", "warning", "--backlog", "4096"]
        if self.case.processes > 1:
            # One socket, N processes: the kernel hands each connection to one
            # of them, as behind a load balancer. Each process subscribes on its own.
            uvicorn += ["--workers", str(self.case.processes)]
        server = self.case.server
        if server.startswith("liverooms") and self.ws != "auto":
            uvicorn += ["--ws", self.ws]
        if server == "floor":
            return [PY, "-m", "bench.floor", "--port", port]
        if server == "asgi-floor":
            return [*uvicorn, "--ws-per-message-deflate", "false", "bench.asgi_floor:app"]
        if server == "tutorial":
            return [*uvicorn, "bench.asgi:tutorial"]
        if server == "liverooms-deflate":
            return [*uvicorn, "bench.asgi:liverooms"]
        if server == "liverooms-daphne":
            return [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", port, "bench.asgi:liverooms"]
        if server == "liverooms-granian":
            granian = [PY, "-m", "granian", "--interface", "asginl", "--host", "127.0.0.1"]
            granian += ["--port", port, "--log-level", "warning", "--backlog", "4096"]
            return [*granian, "bench.asgi:liverooms"]
        return [*uvicorn, "--ws-per-message-deflate", "false", "bench.asgi:liverooms"]

    def django_shell(self, code: str) -> str:
        """Run ``code`` in ``manage.py shell`` with the server's settings; its stdout."""
        out = subprocess.run(
            [PY, "-m", "django", "shell", "-v0", "-c", code],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout

    def start(self, setup: str = "Room.objects.create(slug='bench', title='Bench')") -> None:
        """Migrate and run ``setup`` (Django shell code, the models imported) when
        the server uses Django, then start it and wait for its port."""
        if self.uses_django:
            manage = [PY, "-m", "django"]
            subprocess.run([*manage, "migrate", "-v0"], env=self.env, cwd=ROOT, check=True)
            self.django_shell(f"from django_liverooms.models import *\n{setup}")
        self.process = subprocess.Popen(
            self.command(), env=self.env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT
        )
        wait_for_port(self.port, self.process)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        if self.uses_django:
            self.clean_redis()

    def clean_redis(self) -> None:
        """Delete this case's keys (its own prefix only) from the shared Redis."""
        try:
            import redis

            client = redis.Redis.from_url(self.redis_url)
            keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        except Exception as exc:  # a benchmark must not fail on housekeeping
            print(f"  (could not clean Redis keys: {exc})")


def start_subscribers(server: Server, n: int) -> list[subprocess.Popen]:
    procs = []
    count = math.ceil(n / PER_PROCESS)
    for i in range(count):
        share = n // count + (1 if i < n % count else 0)
        cmd = [PY, "-m", "bench.loadgen", "subscribe", server.url, str(share)]
        if server.welcome:
            cmd.append("--welcome")
        procs.append(
            subprocess.Popen(
                cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
        )
    return procs


def warm_up(server: Server) -> None:
    """Open and close WARM_UP sockets, so that one-time costs (lazy imports,
    the first database connection) are not counted as per-connection RSS."""
    (proc,) = start_subscribers(server, WARM_UP)
    json.loads(proc.stdout.readline())
    proc.terminate()
    proc.wait()
    time.sleep(1.0)


def run_case(case: Case, workdir: Path, redis_url: str, grace: float, ws: str) -> Result:
    result = Result(case)
    server = Server(case, workdir, redis_url, ws)
    subscribers: list[subprocess.Popen] = []
    try:
        server.start()
        # uvicorn's workers import Django after the port is already open.
        time.sleep(1.0 + (case.processes if case.processes > 1 else 0))
        warm_up(server)
        rss_before = tree_rss(server.process.pid)
        subscribers = start_subscribers(server, case.n)
        for proc in subscribers:
            result.opened += json.loads(proc.stdout.readline())["ready"]
        time.sleep(1.0)
        rss_idle = tree_rss(server.process.pid)
        if result.opened:
            result.rss_kib_per_conn = (rss_idle - rss_before) / result.opened / 1024
        cpu_before = tree_cpu(server.process.pid)
        sender = [PY, "-m", "bench.loadgen", "send", server.url]
        sender += ["--rate", str(case.rate), "--duration", str(case.duration)]
        if server.welcome:
            sender.append("--welcome")
        out = subprocess.run(sender, cwd=ROOT, capture_output=True, text=True, check=True)
        result.sent = json.loads(out.stdout.strip().splitlines()[-1])["sent"]
        time.sleep(grace)
        cpu_spent = tree_cpu(server.process.pid) - cpu_before
        latencies: list[float] = []
        for proc in subscribers:
            proc.stdin.write("\n")
            proc.stdin.flush()
        for proc in subscribers:
            report = json.loads(proc.stdout.readline())
            latencies.extend(report["latencies"])
            if report["errors"]:
                result.notes.append(f"{report['errors']} sockets closed early")
        latencies.sort()
        result.delivered = len(latencies)
        result.expected = result.sent * result.opened
        result.lost = result.expected - result.delivered
        result.p50_ms = percentile(latencies, 0.50) * 1000
        result.p99_ms = percentile(latencies, 0.99) * 1000
        result.max_ms = (latencies[-1] * 1000) if latencies else math.nan
        result.deliveries_per_s = result.delivered / case.duration
        if result.delivered:
            result.cpu_s_per_1000 = cpu_spent / result.delivered * 1000
        if result.opened < case.n:
            result.notes.append(f"only {result.opened}/{case.n} sockets opened")
    except Exception as exc:
        result.notes.append(f"failed: {type(exc).__name__}: {exc}")
    finally:
        for proc in subscribers:
            proc.kill()
            proc.wait()
        if hasattr(server, "process"):
            server.stop()
    return result


def median(runs: list[Result]) -> Result:
    """One row for several rounds of a case: totals of what was delivered
    and lost, medians of the figures."""
    if len(runs) == 1:
        return runs[0]
    result = Result(runs[0].case)
    for name in ("opened", "sent", "expected", "delivered", "lost"):
        setattr(result, name, sum(getattr(r, name) for r in runs))
    for name in (
        "p50_ms",
        "p99_ms",
        "max_ms",
        "deliveries_per_s",
        "cpu_s_per_1000",
        "rss_kib_per_conn",
    ):
        setattr(result, name, statistics.median(getattr(r, name) for r in runs))
    cpu = sorted(r.cpu_s_per_1000 for r in runs)
    result.notes = [note for r in runs for note in r.notes]
    result.notes.append(f"median of {len(runs)} rounds; CPU s/1k {cpu[0]:.4f}-{cpu[-1]:.4f}")
    return result


COLUMNS = [
    ("case", 34),
    ("delivered", 12),
    ("lost", 8),
    ("p50 ms", 8),
    ("p99 ms", 8),
    ("max ms", 8),
    ("deliv/s", 8),
    ("CPU s/1k", 8),
    ("RSS KiB/conn", 12),
]


def row(r: Result) -> list[str]:
    pct = f"{100 * r.delivered / r.expected:.1f}%" if r.expected else "-"
    return [
        r.case.label,
        f"{r.delivered} ({pct})",
        str(r.lost),
        f"{r.p50_ms:.1f}",
        f"{r.p99_ms:.1f}",
        f"{r.max_ms:.0f}",
        f"{r.deliveries_per_s:.0f}",
        f"{r.cpu_s_per_1000:.4f}",
        f"{r.rss_kib_per_conn:.1f}",
    ]


def text_table(results: list[Result]) -> str:
    lines = ["  ".join(name.ljust(width) for name, width in COLUMNS)]
    for r in results:
        cells = row(r)
        lines.append("  ".join(c.ljust(w) for c, (_, w) in zip(cells, COLUMNS, strict=True)))
        for note in r.notes:
            lines.append(f"    note: {note}")
    return "\n".join(lines)


def markdown_table(results: list[Result]) -> str:
    lines = [
        "| " + " | ".join(name for name, _ in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for r in results:
        cells = row(r)
        if r.notes:
            cells[0] += " (" + "; ".join(r.notes) + ")"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chart(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r.case.label for r in results]
    fig, axes = plt.subplots(1, 3, figsize=(18, 0.45 * len(results) + 2), sharey=True)
    series = [
        ("p99 latency, ms (log)", [r.p99_ms for r in results], True),
        ("server CPU-s per 1,000 deliveries", [r.cpu_s_per_1000 for r in results], False),
        ("RSS KiB per idle connection", [r.rss_kib_per_conn for r in results], False),
    ]
    for ax, (title, values, log) in zip(axes, series, strict=True):
        values = [0 if math.isnan(v) else v for v in values]
        ax.barh(labels, values, color=["#888" if "floor" in x else "#3a7" for x in labels])
        ax.set_title(title)
        if log:
            ax.set_xscale("log")
        ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft < want:  # children inherit it: servers and load generators
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--servers", default="floor,asgi-floor,tutorial,liverooms")
    parser.add_argument("--n", default="100,1000,5000", help="subscriber counts")
    parser.add_argument("--rate", type=float, default=10, help="messages per second")
    parser.add_argument("--duration", type=float, default=10, help="seconds of sending")
    parser.add_argument("--grace", type=float, default=8, help="seconds to drain after")
    parser.add_argument("--layer", default="core", choices=["core", "pubsub"])
    parser.add_argument(
        "--extra",
        default="liverooms:5000:2",
        help="more cases, server:N:rate[:layer], comma-separated ('' for none)",
    )
    parser.add_argument(
        "--ws",
        default="auto",
        choices=["auto", "websockets", "websockets-sansio", "wsproto"],
        help="uvicorn's WebSocket implementation for the liverooms servers",
    )
    parser.add_argument(
        "--processes",
        default="1",
        help="server processes behind one port (uvicorn --workers), comma-separated, e.g. 1,2,4",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of every case, interleaved; the table shows totals and medians",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()

    raise_file_limit()

    # The tutorial runs on the layer the tutorial uses: RedisChannelLayer.
    # --processes applies to the uvicorn cases that use Django (SINGLE_PROCESS).
    counts = [int(p) for p in args.processes.split(",")]
    cases = [
        Case(
            server,
            int(n),
            args.rate,
            args.duration,
            "core" if server == "tutorial" else args.layer,
            processes,
        )
        for server in args.servers.split(",")
        for n in args.n.split(",")
        for processes in (counts if server not in SINGLE_PROCESS else [1])
    ]
    for spec in filter(None, args.extra.split(",")):
        server, n, rate, *layer = spec.split(":")
        cases.append(
            Case(server, int(n), float(rate), args.duration, layer[0] if layer else args.layer)
        )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rounds: list[list[Result]] = [[] for _ in cases]
    with tempfile.TemporaryDirectory(prefix="liverooms-bench-") as workdir:
        # Round by round, so that a slow spell of the machine hits every case.
        for number in range(1, args.repeat + 1):
            for case, runs in zip(cases, rounds, strict=True):
                of = f" (round {number} of {args.repeat})" if args.repeat > 1 else ""
                print(f"running {case.label}{of} ...", flush=True)
                runs.append(run_case(case, Path(workdir), args.redis_url, args.grace, args.ws))
                print(text_table(runs[-1:]).splitlines()[-1], flush=True)
    results = [median(runs) for runs in rounds]

    table = text_table(results)
    print("\n" + table)
    (out / "results.json").write_text(
        json.dumps(
            [
                {**asdict(r), "label": r.case.label, "rounds": [asdict(x) for x in runs]}
                for r, runs in zip(results, rounds, strict=True)
            ],
            indent=1,
        )
    )
    command = shlex.join(["python", "-m", "bench", *sys.argv[1:]])
    (out / "results.md").write_text(f"Command: `{command}`\n\n{markdown_table(results)}\n")
    chart(results, out / "results.png")
    print(f"\nwrote {out}/results.json, results.md, results.png")


if __name__ == "__main__":
    main()
