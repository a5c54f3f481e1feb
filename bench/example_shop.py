"""The example shop running as ``make demo`` runs it, for the browser tests and the
shopper benchmark: ``runserver``, the worker (``tryon_poll``) and the sandbox
provider (``tryon_sandbox``), each its own process over one SQLite file in a
folder of the caller's, on free loopback ports.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PROJECT = ROOT / "example_project"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url, process, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def post_json(url, payload=None):
    request = urllib.request.Request(
        url,
        data=json.dumps(payload or {}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


class ExampleShop:
    """The running example shop: its address, its files, and the sandbox behind it.

    ``settings`` is the settings module (the example shop's own by default);
    ``processing_time`` the sandbox's seconds per task at start; ``provider`` the
    protocol the sandbox and the shop speak (``make demo``'s ``DEMO_PROVIDER``:
    ``"ailab"``, polled, or ``"fashn"``, which calls the shop's web server back).
    """

    def __init__(
        self,
        folder,
        *,
        settings="example_project.settings",
        processing_time=2.0,
        provider="ailab",
    ):
        self.folder = Path(folder)
        self.port, self.sandbox_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.database = self.folder / "shop.sqlite3"
        self.media = self.folder / "media"
        self.processing_time = processing_time
        self.provider = provider
        pushes = provider == "fashn"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": settings,
            "PYTHONPATH": os.pathsep.join([str(EXAMPLE_PROJECT), str(ROOT)]),
            "TRYON_DEMO_DB": str(self.database),
            "TRYON_DEMO_MEDIA": str(self.media),
            "TRYON_SANDBOX_PORT": str(self.sandbox_port),
            "DEMO_PROVIDER": provider,
            # The shop's origin as the sandbox reaches it, or nothing: polling.
            "TRYON_WEBHOOK_BASE_URL": self.url if pushes else "",
        }
        self.processes = []
        self._log = None

    def manage(self, *args):
        """Run a management command to its end (migrations, data, a shell snippet)."""
        return subprocess.run(
            [sys.executable, str(EXAMPLE_PROJECT / "manage.py"), *args],
            cwd=EXAMPLE_PROJECT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )

    def start(self):
        self.manage("migrate", "--noinput")
        self.manage("load_demo_data")
        return self

    def run(self):
        """Start the sandbox, the web server and the worker; wait until both servers answer."""
        self._log = open(self.folder / "processes.log", "w")  # noqa: SIM115  (open while they run)
        sandbox = self._spawn(
            "tryon_sandbox",
            "--port",
            str(self.sandbox_port),
            "--processing-time",
            str(self.processing_time),
            "--protocol",
            self.provider,
        )
        wait_for(self.sandbox_url + "/_sandbox/control", sandbox)
        self._spawn("tryon_poll")
        wait_for(self.url + "/", self._spawn(*self._runserver(self.port)))
        return self

    def add_web(self, settings):
        """Another web server over the same database and worker, with ``settings``
        (another settings module); returns its address."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        wait_for(url + "/", self._spawn(*self._runserver(port), settings=settings))
        return url

    @staticmethod
    def _runserver(port):
        return ["runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"]

    def _spawn(self, *command, settings=None):
        env = self.env if settings is None else {**self.env, "DJANGO_SETTINGS_MODULE": settings}
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLE_PROJECT / "manage.py"), *command],
            cwd=EXAMPLE_PROJECT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def stop(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes = []
        if self._log is not None:
            self._log.close()
            self._log = None

    def product_url(self, slug="breton-tshirt", base=None):
        return f"{base or self.url}/products/{slug}/"

    def control(self, **options):
        """Change the sandbox's options through its control endpoint, as a tester would."""
        return post_json(self.sandbox_url + "/_sandbox/control", options)

    def reset(self):
        """Back to the options the sandbox started with: no faults."""
        return post_json(self.sandbox_url + "/_sandbox/reset")


def launch_chromium(playwright):
    """Debian's Chromium, headless, with the arguments every run here uses."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
