"""The test project as real processes, for tests that need more than one."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, process, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            process.log.seek(0)
            raise RuntimeError(f"server exited with {process.returncode}: {process.log.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {port}")


class Site:
    """The test project run as real processes (manage.py, daphne, runworker).

    ``env`` sets its database (``DATABASE_URL``) and channel layer
    (``REDIS_URL``, ``LIVEROOMS_TEST_LAYER_PREFIX``); see tests/settings.py.
    """

    def __init__(self, **env):
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONPATH": str(ROOT),
            **env,
        }
        self.processes = []
        self.servers = {}  # port -> daphne process

    def manage(self, *args):
        return subprocess.run(
            [sys.executable, "-m", "django", *args],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def shell(self, code):
        return self.manage("shell", "--verbosity=0", "-c", code).stdout

    def start(self, *args):
        # Output goes to a file: an unread pipe would block a chatty server.
        log = tempfile.TemporaryFile("w+")
        process = subprocess.Popen(
            args, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        process.log = log
        self.processes.append(process)
        return process

    def server(self, port=None, application="tests.asgi:application", server="daphne"):
        """``server`` (daphne or uvicorn) serving ``application`` on ``port``
        (a free one by default)."""
        port = port or free_port()
        if server == "uvicorn":
            args = ["uvicorn", "--host", "127.0.0.1", "--port", str(port), "--log-level", "info"]
        else:
            args = ["daphne", "-b", "127.0.0.1", "-p", str(port)]
        process = self.start(sys.executable, "-m", *args, application)
        wait_for_port(port, process)
        self.servers[port] = process
        return port

    def kill_server(self, port):
        """SIGKILL the server on ``port``: no clean shutdown, as in a crash."""
        process = self.servers.pop(port)
        process.kill()
        process.wait()
        self.processes.remove(process)
        process.log.close()

    def stop(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if os.environ.get("LIVEROOMS_TEST_SHOW_LOGS"):  # debugging: the servers' output
                process.log.seek(0)
                sys.stderr.write(process.log.read())
            process.log.close()


class RedisServer:
    """A redis-server of our own on ``port``, to kill, restart and pause.

    Never the shared one: tests that break Redis start their own, with no
    persistence, so a restart loses every group as a real crash without
    persistence would.
    """

    def __init__(self, port=None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--maxclients", "10000"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.process.log = tempfile.TemporaryFile("w+")
        wait_for_port(self.port, self.process)
        return self

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a paused server cannot die
            self.process.kill()
            self.process.wait()
            self.process.log.close()
        self.process = None

    def restart(self):
        self.kill()
        return self.start()

    def pause(self):
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.process.pid, signal.SIGCONT)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()
