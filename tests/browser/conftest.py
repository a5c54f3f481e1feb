"""Browser tests: Chromium (Debian's, at /usr/bin/chromium) driven by Playwright.

They start real processes and a browser, so they run only when asked for by
path: ``.venv/bin/pytest tests/browser``. A plain ``pytest`` run leaves this
folder alone (and needs neither Playwright nor Chromium).

They drive the example shop (``example_project/``) as ``make demo`` runs it:
``runserver``, the worker (``tryon_poll``) and the sandbox provider
(``tryon_sandbox``), each its own process over one SQLite file in a temporary
folder. Tests turn the sandbox's faults on and off through its control endpoint.
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
EXAMPLE_PROJECT = ROOT / "example_project"
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


def _post(url, payload=None):
    request = urllib.request.Request(
        url,
        data=json.dumps(payload or {}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


class Shop:
    """The running example shop: its address, and the sandbox behind it."""

    def __init__(self, url, sandbox_url):
        self.url = url
        self.sandbox_url = sandbox_url

    def product_url(self, slug="breton-tshirt"):
        return f"{self.url}/products/{slug}/"

    def control(self, **options):
        """Change the sandbox's options through its control endpoint, as a tester would."""
        return _post(self.sandbox_url + "/_sandbox/control", options)

    def reset(self):
        """Back to the options the sandbox started with: no faults."""
        return _post(self.sandbox_url + "/_sandbox/reset")


# A product of the shop without a garment: its page must show no button.
ADD_PRODUCT_WITHOUT_GARMENT = (
    "from shop.models import Product; "
    "Product.objects.get_or_create(slug='gift-card', "
    "defaults={'name': 'Gift card', 'price': '25.00'})"
)


@pytest.fixture(scope="session")
def shop(tmp_path_factory):
    folder = tmp_path_factory.mktemp("example-shop")
    port, sandbox_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "PYTHONPATH": os.pathsep.join([str(EXAMPLE_PROJECT), str(ROOT)]),
        "TRYON_DEMO_DB": str(folder / "shop.sqlite3"),
        "TRYON_DEMO_MEDIA": str(folder / "media"),
        "TRYON_SANDBOX_PORT": str(sandbox_port),
    }
    manage = [sys.executable, str(EXAMPLE_PROJECT / "manage.py")]
    run = {"cwd": EXAMPLE_PROJECT, "env": env, "check": True, "capture_output": True}
    subprocess.run([*manage, "migrate", "--noinput"], **run)
    subprocess.run([*manage, "load_demo_data"], **run)
    subprocess.run([*manage, "shell", "-c", ADD_PRODUCT_WITHOUT_GARMENT], **run)
    log = open(folder / "processes.log", "w")  # noqa: SIM115  (open while the processes run)
    spawn = {"cwd": EXAMPLE_PROJECT, "env": env, "stdout": log, "stderr": subprocess.STDOUT}
    processes = [
        subprocess.Popen(
            [*manage, "tryon_sandbox", "--port", str(sandbox_port), "--processing-time", "2"],
            **spawn,
        ),
        subprocess.Popen(
            [*manage, "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"], **spawn
        ),
        subprocess.Popen([*manage, "tryon_poll"], **spawn),
    ]
    shop = Shop(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sandbox_port}")
    try:
        _wait_for(shop.sandbox_url + "/_sandbox/control", processes[0])
        _wait_for(shop.url + "/", processes[1])
        yield shop
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


@pytest.fixture(autouse=True)
def _sandbox_reset(request):
    """Each test starts with a sandbox that injects no faults."""
    if "shop" in request.fixturenames:
        request.getfixturevalue("shop").reset()


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
