"""The Oscar shop in Chromium: ``make demo-oscar``'s runner started for real, driven
through Oscar's own pages by a shopper and by staff.

Like ``tests/browser``, these start real processes and a browser, so they run only
when named on the command line: ``pytest --ds tests.oscar.settings tests/oscar/browser``
(the browser phase of ``.ci/run``).
"""

import importlib.util
import sys
from pathlib import Path

import pytest

from bench.example_shop import launch_chromium
from tests.support.collection import ignore_unless_asked

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


pytest_ignore_collect = ignore_unless_asked(HERE)


def _demo_smoke():
    """scripts/demo_smoke.py: starts the demo runner on free ports, and stops it."""
    spec = importlib.util.spec_from_file_location("demo_smoke", ROOT / "scripts" / "demo_smoke.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Demo:
    def __init__(self, url, process, output):
        self.url = url.rstrip("/")
        self.process = process
        self.output = output  # the runner's lines so far


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """``scripts/demo.py --shop oscar`` (what ``make demo-oscar`` runs), on free ports."""
    smoke = _demo_smoke()
    workdir = tmp_path_factory.mktemp("oscar-demo")
    process, url, output = smoke.start_demo(
        [sys.executable, "scripts/demo.py", "--shop", "oscar"], workdir
    )
    try:
        yield Demo(url, process, output)
    finally:
        exit_code = smoke.stop_demo(process)
    # Ctrl-C stops the web server, the worker and the sandbox, and the runner ends well.
    assert exit_code == 0, "".join(output[-30:])


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="session")
def person_photo(tmp_path_factory):
    from django_tryon.sandbox import samples

    path = tmp_path_factory.mktemp("photos") / "me.jpg"
    path.write_bytes(samples.encode(samples.model_photo("ava")))
    return path
