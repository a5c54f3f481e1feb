"""Starting and stopping the real processes of the end-to-end tests."""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"Nothing listens on 127.0.0.1:{port} after {timeout} s.")


def wait_until(condition, timeout, interval=0.2, message="condition"):
    """Call ``condition`` until it returns something true; return that, or raise."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"Still waiting for {message} after {timeout} s.")
        time.sleep(interval)


def process_env(*, tryon, media_root, **extra):
    """The environment of a process that works on this test's database and files."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.e2e.settings",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "TRYON_E2E_DB_NAME": connection.settings_dict["NAME"],
        "TRYON_E2E_MEDIA_ROOT": str(media_root),
        "TRYON_E2E_TRYON": json.dumps(tryon),
    }
    env.update({key: str(value) for key, value in extra.items()})
    return env


class Process:
    """A child process whose output goes to a log file the test can read."""

    def __init__(self, name, args, env, log_dir):
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in wait())
        self.popen = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def output(self):
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text, timeout=30.0):
        def seen():
            if text in self.output:
                return True
            if self.popen.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.popen.returncode} before printing "
                    f"{text!r}:\n{self.output}"
                )
            return False

        wait_until(seen, timeout, interval=0.05, message=f"{text!r} from {self.name}")

    def signal(self, signum):
        self.popen.send_signal(signum)

    def kill(self):
        """SIGKILL: the process gets no chance to clean up."""
        self.popen.kill()
        return self.wait(10)

    def stop(self, timeout=60.0):
        """SIGTERM, then wait for the exit status."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout):
        try:
            return self.popen.wait(timeout)
        finally:
            self._log.close()

    def ensure_dead(self):
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)
        self._log.close()
