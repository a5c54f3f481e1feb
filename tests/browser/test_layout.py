"""Layout facts in real Chromium: the example shop on a phone, the admin's lists at
1280 px, the overview's *Ask again*, and the garment's product picker. Element boxes,
never pixels.

The example shop runs here with runserver alone (no provider is needed), over
its own database with a superuser and jobs whose texts are long on purpose.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE_PROJECT = ROOT / "example_project"
PHONE = {"width": 390, "height": 844}
ADMIN_WIDTH = 1280

# Jobs and names as long as real ones get: e-mail owners, both error codes, retries.
LONG_DATA = """
from datetime import timedelta
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.utils import timezone
from django_tryon.models import Garment, TryOnJob
from django_tryon.sandbox import samples

User.objects.create_superuser("admin", "admin@example.com", "layout-test")
shopper = User.objects.create_user("a.shopper.with.a.long.address@example-fashion-store.com")
photo = samples.encode(samples.model_photo("ava"))
now = timezone.now()
for garment in Garment.objects.all():
    garment.name = garment.name + " in organic cotton, limited summer edition"
    garment.save()
    for status, code, provider_code in [
        ("failed", "provider_unavailable", "ERROR_INTERNAL_SERVER_TIMEOUT_EXCEEDED"),
        ("succeeded", "", ""),
        ("pending", "", ""),
    ]:
        TryOnJob.objects.create(
            garment=garment, status=status, error_code=code, provider_error_code=provider_code,
            error_message="The try-on service could not be reached after several attempts.",
            user=shopper, person_image=ContentFile(photo, name="me.jpg"), attempts=4,
            provider_task_id="task-0123456789abcdef0123456789abcdef",
            submitted_at=now - timedelta(seconds=75),
            finished_at=None if status == "pending" else now,
        )
"""


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("layout-shop")
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "PYTHONPATH": os.pathsep.join([str(EXAMPLE_PROJECT), str(ROOT)]),
        "TRYON_DEMO_DB": str(folder / "shop.sqlite3"),
        "TRYON_DEMO_MEDIA": str(folder / "media"),
        "TRYON_SANDBOX_PORT": str(_free_port()),
    }
    manage = [sys.executable, str(EXAMPLE_PROJECT / "manage.py")]
    run = {"cwd": EXAMPLE_PROJECT, "env": env, "check": True, "capture_output": True}
    subprocess.run([*manage, "migrate", "--noinput"], **run)
    subprocess.run([*manage, "load_demo_data"], **run)
    subprocess.run([*manage, "shell", "-c", LONG_DATA], **run)
    with open(folder / "runserver.log", "w") as log:
        server = subprocess.Popen(
            [*manage, "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
            cwd=EXAMPLE_PROJECT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (
                    folder / "runserver.log"
                ).read_text()
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def phone(browser):
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def admin_page(browser, site):
    context = browser.new_context(viewport={"width": ADMIN_WIDTH, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(site + "/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "layout-test")
    page.click("input[type=submit]")
    page.wait_for_url(site + "/admin/")
    yield page
    context.close()


def lines_of(page, selector):
    """How many lines the text of each element matching ``selector`` takes."""
    return page.eval_on_selector_all(
        selector,
        """elements => elements.map(element => {
            const range = document.createRange();
            range.selectNodeContents(element);
            const tops = new Set([...range.getClientRects()]
                .filter(rect => rect.width > 0).map(rect => Math.round(rect.top)));
            return tops.size;
        })""",
    )


def no_sideways_scroll(page):
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def test_the_shop_header_stays_on_one_line_on_a_phone(site, phone):
    phone.goto(site + "/")
    header = phone.locator(".site-header").bounding_box()
    boxes = [
        phone.locator(selector).bounding_box()
        for selector in (".brand", ".site-header nav a >> nth=0", ".site-header nav a >> nth=-1")
    ]
    # Brand and links side by side, each on one line, inside the header's height.
    middles = [box["y"] + box["height"] / 2 for box in boxes]
    assert max(middles) - min(middles) < 8
    assert lines_of(phone, ".brand, .site-header nav a") == [1, 1, 1, 1]
    assert header["height"] < 70
    assert boxes[2]["x"] + boxes[2]["width"] <= PHONE["width"]
    assert no_sideways_scroll(phone)


def test_a_phone_shows_more_than_one_product_per_screen(site, phone):
    phone.goto(site + "/")
    cards = [phone.locator(".card").nth(i).bounding_box() for i in range(4)]
    on_first_screen = [box for box in cards if box["y"] + box["height"] <= PHONE["height"]]
    assert len(on_first_screen) >= 2
    # Two to a row.
    assert cards[0]["y"] == cards[1]["y"] and cards[1]["x"] > cards[0]["x"] + cards[0]["width"]
    assert no_sideways_scroll(phone)


def test_button_labels_do_not_wrap_on_a_phone(site, phone):
    phone.goto(site + "/products/breton-tshirt/")
    assert lines_of(phone, ".buy, .tryon-open__label") == [1, 1]
    for selector in (".buy", ".tryon-open"):
        box = phone.locator(selector).bounding_box()
        assert box["x"] + box["width"] <= PHONE["width"]
    assert no_sideways_scroll(phone)


@pytest.mark.parametrize("model", ["tryonjob", "garment"])
def test_the_admin_lists_fit_1280_px(site, admin_page, model):
    admin_page.goto(f"{site}/admin/django_tryon/{model}/")
    sizes = admin_page.eval_on_selector(
        "#changelist .results",
        "results => ({scroll: results.scrollWidth, client: results.clientWidth,"
        " rows: results.querySelectorAll('tbody tr').length})",
    )
    assert sizes["rows"] >= 5
    assert sizes["scroll"] <= sizes["client"], sizes
    assert no_sideways_scroll(admin_page)


def test_a_garment_is_linked_to_a_product_by_searching_for_it(site, admin_page, tmp_path):
    from django_tryon.sandbox import samples

    picture = tmp_path / "garment.png"
    picture.write_bytes(samples.encode(samples.garment_image("gingham-shirt"), "PNG"))
    admin_page.goto(f"{site}/admin/django_tryon/garment/add/")
    admin_page.fill("#id_name", "Gingham shirt, second colour")
    admin_page.set_input_files("#id_image", str(picture))
    admin_page.select_option("#id_clothes_type", "upper_body")
    # The picker: a select2 box that searches the shop's products as staff type.
    admin_page.locator("#id_linked_product + .select2").click()
    admin_page.keyboard.type("gingham")
    from playwright.sync_api import expect

    options = admin_page.locator(".select2-results__option")
    expect(options).to_have_count(1)  # the search's answer, not the first page of all
    expect(options).to_have_text("Red gingham shirt")
    options.click()
    admin_page.click("input[name=_continue]")
    admin_page.wait_for_selector(".messagelist .success")
    chosen = admin_page.locator("#id_linked_product option:checked")
    assert chosen.inner_text().startswith("Red gingham shirt")
    assert chosen.get_attribute("value").startswith("shop.product:")


def test_ask_again_reads_as_a_link_on_its_line_and_asks_the_providers_again(site, admin_page):
    overview = f"{site}/admin/django_tryon/tryonjob/overview/"
    admin_page.goto(overview)
    help_text = admin_page.locator("#tryon-credits .help")
    asked_first = help_text.inner_text()
    # A form (it calls the providers), shown as the link it reads as, after the text.
    assert lines_of(admin_page, "#tryon-credits .help") == [1]
    look = admin_page.eval_on_selector(
        "#tryon-credits button[name=refresh]",
        """button => {
            const style = getComputedStyle(button);
            return [style.textDecorationLine, style.borderTopWidth, style.backgroundColor];
        }""",
    )
    assert look == ["underline", "0px", "rgba(0, 0, 0, 0)"]
    time.sleep(1.1)  # the answer's time is shown to the second
    with admin_page.expect_navigation():
        admin_page.click("#tryon-credits button[name=refresh]")
    assert admin_page.url == overview
    assert help_text.inner_text() != asked_first
