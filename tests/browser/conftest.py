"""Browser tests: Chromium (Debian's, at /usr/bin/chromium) driven by Playwright.

They start real processes and a browser, so they run only when asked for by
path: ``.venv/bin/pytest tests/browser``. A plain ``pytest`` run leaves this
folder alone (and needs neither Playwright nor Chromium).

They drive the example shop (``example_project/``) as ``make demo`` runs it:
``runserver``, the worker (``tryon_poll``) and the sandbox provider
(``tryon_sandbox``), each its own process over one SQLite file in a temporary
folder. Tests turn the sandbox's faults on and off through its control endpoint.
"""

from pathlib import Path

import pytest

from bench.example_shop import ExampleShop, launch_chromium
from tests.support.collection import ignore_unless_asked

HERE = Path(__file__).resolve().parent
# The analytics events, recorded in the page for the tests to read.
RECORD_EVENTS = """
window.tryonEvents = [];
["tryon:open", "tryon:submit", "tryon:success", "tryon:error"].forEach(function (name) {
  document.addEventListener(name, function (event) {
    window.tryonEvents.push({type: event.type, detail: event.detail});
  });
});
"""


pytest_ignore_collect = ignore_unless_asked(HERE)


# A product of the shop without a garment: its page must show no button.
ADD_PRODUCT_WITHOUT_GARMENT = (
    "from shop.models import Product; "
    "Product.objects.get_or_create(slug='gift-card', "
    "defaults={'name': 'Gift card', 'price': '25.00'})"
)


@pytest.fixture(scope="session")
def shop(tmp_path_factory):
    shop = ExampleShop(
        tmp_path_factory.mktemp("example-shop"), settings="tests.browser.settings"
    ).start()
    shop.manage("shell", "-c", ADD_PRODUCT_WITHOUT_GARMENT)
    try:
        yield shop.run()
    finally:
        shop.stop()


@pytest.fixture(autouse=True)
def _sandbox_reset(request):
    """Each test starts with a sandbox that injects no faults."""
    if "shop" in request.fixturenames:
        request.getfixturevalue("shop").reset()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
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
