"""The test project as real processes, for tests that need more than one."""

import os
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

    def server(self):
        port = free_port()
        process = self.start(
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "tests.asgi:application",
        )
        wait_for_port(port, process)
        return port

    def stop(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.log.close()
