"""Browser tests: Chromium (Debian's, at /usr/bin/chromium) driven by Playwright.

They start real processes (a web server, the worker) and a browser, so they
run only when asked for by path: ``.venv/bin/pytest tests/browser``. A plain
``pytest`` run leaves this folder alone (and needs neither Playwright nor
Chromium).

The shop runs as separate processes over one SQLite file: ``runserver`` with
``tests.browser.settings``, and ``tryon_poll``. The provider is the sandbox,
served from this process so a test can turn its faults on and off.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
API_KEY = "browser-test-key"
# The analytics events, recorded in the page for the tests to read.
RECORD_EVENTS = """
window.tryonEvents = [];
["tryon:open", "tryon:submit", "tryon:success", "tryon:error"].forEach(function (name) {
  document.addEventListener(name, function (event) {
    window.tryonEvents.push({type: event.type, detail: event.detail});
  });
});
"""


def _asked_for(config):
    """Whether this run names tests/browser (or something inside it) on the command line."""
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    if collection_path.resolve() == HERE / "conftest.py":
        return None
    return None if _asked_for(config) else True


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url, process, timeout=30):
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


class Shop:
    """The running shop: its address, its product ids and the sandbox behind it."""

    def __init__(self, url, product_ids, sandbox, env):
        self.url = url
        self.product_ids = product_ids
        self.sandbox = sandbox
        self.env = env

    def product_url(self, index=0):
        return f"{self.url}/products/{self.product_ids[index]}/"

    def control(self, **options):
        """Change the sandbox's options through its control endpoint, as a tester would."""
        request = urllib.request.Request(
            self.sandbox.url + "/_sandbox/control",
            data=json.dumps(options).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)


@pytest.fixture(scope="session")
def shop(tmp_path_factory):
    from django_tryon.sandbox.server import SandboxServer

    folder = tmp_path_factory.mktemp("browser-shop")
    sandbox = SandboxServer(api_key=API_KEY, processing_time=2.0, seed=7).start()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.browser.settings",
        "PYTHONPATH": str(ROOT),
        "TRYON_BROWSER_DB": str(folder / "shop.sqlite3"),
        "TRYON_BROWSER_MEDIA": str(folder / "media"),
        "TRYON_BROWSER_SANDBOX": sandbox.url,
    }
    django = [sys.executable, "-m", "django"]
    run = {"cwd": ROOT, "env": env, "check": True, "capture_output": True, "text": True}
    subprocess.run([*django, "migrate", "--noinput"], **run)
    product_ids = json.loads(
        subprocess.run([sys.executable, "-m", "tests.browser.seed"], **run).stdout
    )
    port = _free_port()
    log = open(folder / "processes.log", "w")  # noqa: SIM115  (open while the processes run)
    spawn = {"cwd": ROOT, "env": env, "stdout": log, "stderr": subprocess.STDOUT}
    server = subprocess.Popen(
        [*django, "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"], **spawn
    )
    worker = subprocess.Popen([*django, "tryon_poll"], **spawn)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url + "/", server)
        yield Shop(url, product_ids, sandbox, env)
    finally:
        for process in (worker, server):
            process.terminate()
        for process in (worker, server):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
        sandbox.stop()


@pytest.fixture(autouse=True)
def _sandbox_reset(request):
    """Each test starts with a sandbox that injects no faults."""
    if "shop" in request.fixturenames:
        request.getfixturevalue("shop").sandbox.reset()
    return


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


def _new_page(browser, **options):
    context = browser.new_context(**options)
    context.set_default_timeout(15_000)
    context.add_init_script(RECORD_EVENTS)
    return context, context.new_page()


@pytest.fixture
def page(browser):
    """A desktop browser tab with its own cookies and session storage."""
    context, page = _new_page(browser, viewport={"width": 1200, "height": 820})
    yield page
    context.close()


@pytest.fixture
def phone(browser):
    """A 360 px wide touch screen."""
    context, page = _new_page(
        browser,
        viewport={"width": 360, "height": 760},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    yield page
    context.close()


@pytest.fixture(scope="session")
def person_photo(tmp_path_factory):
    """A full-body photo of a sample model, as a file."""
    from django_tryon.sandbox import samples

    path = tmp_path_factory.mktemp("photos") / "me.jpg"
    path.write_bytes(samples.encode(samples.model_photo("ava")))
    return path
