"""The shopper's journey in a real browser: the button, the dialog, the job, the result."""

import io
import json
import os
import re
from pathlib import Path

import pytest
from PIL import Image

from django_tryon.errors import MESSAGES as JOB_MESSAGES

DOCS_IMAGES = Path(__file__).resolve().parent.parent.parent / "docs" / "images"
# The docs' pictures are rewritten only when asked for, so a test run leaves the tree clean.
UPDATE_SCREENSHOTS = os.environ.get("TRYON_UPDATE_SCREENSHOTS") == "1"
RESULT_TIMEOUT = 40_000  # ms: the sandbox takes 2 s, the worker polls every 0.5 s


@pytest.fixture
def screenshot(tmp_path):
    """``screenshot(page, name, width)``: a small palette PNG of the page, for the docs.

    Saved as ``docs/images/button-<name>.png`` with ``TRYON_UPDATE_SCREENSHOTS=1``,
    else in the test's temporary folder.
    """
    folder = DOCS_IMAGES if UPDATE_SCREENSHOTS else tmp_path

    def take(target, name, width):
        image = Image.open(io.BytesIO(target.screenshot())).convert("RGB")
        if image.width > width:
            size = (width, round(image.height * width / image.width))
            image = image.resize(size, Image.LANCZOS)
        image = image.quantize(
            colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"button-{name}.png"
        image.save(path, optimize=True)
        assert image.size[0] == width
        return path

    return take


def events(page):
    return page.evaluate("window.tryonEvents")


def config(page):
    return json.loads(page.locator("[data-tryon]").first.get_attribute("data-tryon-config"))


def open_dialog(page):
    page.get_by_role("button", name="Try it on").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for(state="visible")
    return dialog


def choose_photo(dialog, path):
    dialog.locator("input[type=file]").first.set_input_files(str(path))
    dialog.get_by_role("img", name="Your photo").wait_for(state="visible")


def wait_for_result(dialog):
    result = dialog.locator("[data-tryon-result-image]")
    result.wait_for(state="visible", timeout=RESULT_TIMEOUT)
    dialog.page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=result.element_handle()
    )
    return result


def test_photo_to_result_then_delete(shop, page, person_photo, screenshot):
    page.goto(shop.product_url())
    screenshot(page, "desktop-page", width=1000)
    dialog = open_dialog(page)
    assert dialog.get_by_role("heading").inner_text() == "Try on Breton striped T-shirt"
    # The front camera is offered on phones only.
    assert not dialog.get_by_text("Take a photo").is_visible()
    assert dialog.get_by_role("link", name="How we use your photo").get_attribute("href") == (
        "/privacy/"
    )
    choose_photo(dialog, person_photo)
    dialog.get_by_label("I agree that my photo is sent").check()
    screenshot(page, "desktop-dialog", width=1000)
    dialog.get_by_role("button", name="Send my photo").click()

    progress = dialog.locator("[data-tryon-progress-text]")
    progress.wait_for(state="visible")
    assert progress.inner_text() in {
        "Your photo is on its way…",
        "Waiting for the try-on service…",
        "Making your picture…",
    }
    assert re.fullmatch(r"\d+:\d\d elapsed", dialog.locator("[data-tryon-elapsed]").inner_text())
    screenshot(page, "desktop-progress", width=1000)
    result = wait_for_result(dialog)
    assert result.get_attribute("alt") == "You wearing Breton striped T-shirt"
    assert page.locator("[data-tryon-live]").inner_text() == "Your picture is ready."
    download = dialog.get_by_role("link", name="Download")
    assert download.get_attribute("href") == result.get_attribute("src")
    screenshot(page, "desktop-result", width=1000)

    recorded = events(page)
    assert [event["type"] for event in recorded] == ["tryon:open", "tryon:submit", "tryon:success"]
    job_id = recorded[1]["detail"]["jobId"]
    garment_id = config(page)["garmentId"]
    assert all(event["detail"]["garmentId"] == garment_id for event in recorded)
    assert recorded[2]["detail"]["jobId"] == job_id
    job_url = f"{shop.url}/tryon/api/jobs/{job_id}/"
    assert page.request.get(job_url).json()["status"] == "succeeded"

    dialog.get_by_role("button", name="Delete my photos").click()
    notice = dialog.locator("[data-tryon-notice]")
    notice.wait_for(state="visible")
    assert notice.inner_text() == "Your photos were deleted."
    assert dialog.locator("[data-tryon-step=pick]").is_visible()
    assert page.request.get(job_url).status == 404


def test_a_file_that_is_not_a_photo_is_refused(shop, page, tmp_path):
    page.goto(shop.product_url())
    dialog = open_dialog(page)
    refusal = config(page)["messages"]["notAnImage"]
    error = dialog.locator("[data-tryon-error]")

    # Told at once, by the browser, in the words the server uses.
    dialog.locator("input[type=file]").first.set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"shopping list"}]
    )
    assert error.inner_text() == refusal
    assert not dialog.locator("[data-tryon-preview]").is_visible()

    # A text file dressed as a JPEG passes the browser's check: the server refuses it.
    fake = tmp_path / "photo.jpg"
    fake.write_bytes(b"shopping list, not a photo")
    dialog.locator("input[type=file]").first.set_input_files(str(fake))
    dialog.get_by_label("I agree that my photo is sent").check()
    dialog.get_by_role("button", name="Send my photo").click()
    page.wait_for_function("window.tryonEvents.length === 3")
    assert error.inner_text() == refusal
    assert [(e["type"], e["detail"]["code"]) for e in events(page)[1:]] == [
        ("tryon:error", "not_an_image"),
        ("tryon:error", "not_an_image"),
    ]


def test_the_browser_checks_size_format_and_pixels_first(shop, page):
    page.goto(shop.product_url())
    dialog = open_dialog(page)
    settings = config(page)
    messages = settings["messages"]
    error = dialog.locator("[data-tryon-error]")
    file_input = dialog.locator("input[type=file]").first
    posts = []
    page.on("request", lambda request: posts.append(request) if request.method == "POST" else None)

    too_large = b"\xff\xd8" + bytes(settings["maxUploadBytes"])
    file_input.set_input_files(
        files=[{"name": "big.jpg", "mimeType": "image/jpeg", "buffer": too_large}]
    )
    assert error.inner_text() == messages["tooLarge"]
    assert "20 MB" in messages["tooLarge"]

    gif = io.BytesIO()
    Image.new("RGB", (400, 800), (200, 100, 50)).save(gif, format="GIF")
    file_input.set_input_files(
        files=[{"name": "me.gif", "mimeType": "image/gif", "buffer": gif.getvalue()}]
    )
    assert error.inner_text() == messages["unsupported"].replace("{format}", "GIF")

    small = io.BytesIO()
    Image.new("RGB", (120, 200), (200, 100, 50)).save(small, format="PNG")
    file_input.set_input_files(
        files=[{"name": "small.png", "mimeType": "image/png", "buffer": small.getvalue()}]
    )
    # Known once the picture has loaded: wait for the words.
    too_small = messages["tooSmall"].replace("{width}", "120").replace("{height}", "200")
    page.wait_for_function(
        "text => document.querySelector('[data-tryon-error]').textContent === text",
        arg=too_small,
    )
    assert not dialog.locator("[data-tryon-preview]").is_visible()
    codes = [event["detail"]["code"] for event in events(page)[1:]]
    assert codes == ["too_large_upload", "unsupported_type", "too_small"]
    assert posts == []


def test_consent_is_asked_for(shop, page, person_photo):
    page.goto(shop.product_url())
    dialog = open_dialog(page)
    dialog.get_by_role("button", name="Send my photo").click()
    assert dialog.locator("[data-tryon-error]").inner_text() == "Choose a photo first."
    choose_photo(dialog, person_photo)
    dialog.get_by_role("button", name="Send my photo").click()
    assert dialog.locator("[data-tryon-error]").inner_text() == (
        "Tick the box to agree before sending your photo."
    )
    assert page.evaluate("document.activeElement.type") == "checkbox"
    assert [event["type"] for event in events(page)] == ["tryon:open"]


def test_provider_failure_shows_the_reason_and_retry_works(shop, page, person_photo, screenshot):
    shop.control(no_face=1.0)
    page.goto(shop.product_url())
    dialog = open_dialog(page)
    choose_photo(dialog, person_photo)
    dialog.get_by_label("I agree that my photo is sent").check()
    dialog.get_by_role("button", name="Send my photo").click()

    failure = dialog.locator("[data-tryon-failure-text]")
    failure.wait_for(state="visible", timeout=RESULT_TIMEOUT)
    assert failure.inner_text() == str(JOB_MESSAGES["no_face"])
    error_event = events(page)[-1]
    assert error_event["type"] == "tryon:error"
    assert error_event["detail"]["code"] == "no_face"
    assert error_event["detail"]["jobId"]
    screenshot(page, "desktop-failure", width=1000)

    shop.control(no_face=0.0)
    dialog.get_by_role("button", name="Try again").click()
    wait_for_result(dialog)
    types = [event["type"] for event in events(page)]
    assert types == ["tryon:open", "tryon:submit", "tryon:error", "tryon:submit", "tryon:success"]


def test_keyboard_only(shop, page, person_photo, screenshot):
    # File choosers are intercepted from the start: the subscription that
    # expect_file_chooser would make on entry reaches Chromium on its own path,
    # and a key press sent right after it can overtake it (the chooser then
    # opens natively, and the test never sees it).
    page.on("filechooser", lambda chooser: None)
    page.goto(shop.product_url())
    opener = page.get_by_role("button", name="Try it on")
    for _ in range(10):
        page.keyboard.press("Tab")
        if opener.evaluate("element => element === document.activeElement"):
            break
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    dialog.wait_for(state="visible")
    # The photo chooser opens from the keyboard.
    assert page.evaluate("document.activeElement.type") == "file"
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(str(person_photo))
    dialog.get_by_role("img", name="Your photo").wait_for(state="visible")

    # Focus stays in the dialog, however far one tabs.
    for _ in range(12):
        page.keyboard.press("Tab")
        assert page.evaluate("document.querySelector('dialog').contains(document.activeElement)")

    def tab_to(predicate):
        for _ in range(12):
            if page.evaluate(f"(element => {predicate})(document.activeElement)"):
                return
            page.keyboard.press("Tab")
        raise AssertionError(f"Tab never reached {predicate}")

    tab_to("element.type === 'checkbox'")
    page.keyboard.press("Space")
    screenshot(page, "desktop-keyboard", width=1000)
    tab_to("element.type === 'submit'")
    page.keyboard.press("Enter")
    wait_for_result(dialog)
    # The result's heading takes focus, so a screen reader reads it first.
    assert page.evaluate("document.activeElement.textContent") == "Your picture is ready"

    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert opener.evaluate("element => element === document.activeElement")


def test_phone_360px(shop, phone, person_photo, screenshot):
    phone.goto(shop.product_url())
    screenshot(phone, "phone-page", width=360)
    dialog = open_dialog(phone)
    assert dialog.get_by_text("Take a photo").is_visible()
    assert dialog.locator("input[capture=user]").count() == 1
    choose_photo(dialog, person_photo)
    dialog.get_by_label("I agree that my photo is sent").check()
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 360
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(phone, "phone-dialog", width=360)
    dialog.get_by_role("button", name="Send my photo").click()
    wait_for_result(dialog)
    assert dialog.get_by_role("button", name="Try another photo").is_visible()
    screenshot(phone, "phone-result", width=360)


def test_a_running_job_survives_a_reload(shop, page, person_photo):
    shop.control(processing_time=6.0)
    page.goto(shop.product_url())
    dialog = open_dialog(page)
    choose_photo(dialog, person_photo)
    dialog.get_by_label("I agree that my photo is sent").check()
    dialog.get_by_role("button", name="Send my photo").click()
    page.wait_for_function("window.tryonEvents.some(e => e.type === 'tryon:submit')")
    job_id = events(page)[-1]["detail"]["jobId"]
    dialog.locator("[data-tryon-progress-text]").wait_for(state="visible")

    page.reload()
    dialog = page.get_by_role("dialog")
    dialog.locator("[data-tryon-progress-text]").wait_for(state="visible")
    wait_for_result(dialog)
    success = events(page)[-1]
    assert success["type"] == "tryon:success"
    assert success["detail"]["jobId"] == job_id


def test_polling_stops_when_the_dialog_closes(shop, page, person_photo):
    shop.control(processing_time=8.0)
    polls = []
    page.on(
        "request",
        lambda request: (
            polls.append(request.url)
            if request.method == "GET" and "/tryon/api/jobs/" in request.url
            else None
        ),
    )
    page.goto(shop.product_url())
    dialog = open_dialog(page)
    choose_photo(dialog, person_photo)
    dialog.get_by_label("I agree that my photo is sent").check()
    dialog.get_by_role("button", name="Send my photo").click()
    page.wait_for_function("window.tryonEvents.some(e => e.type === 'tryon:submit')")
    # 1 s, then 1.5 s later: two polls within 3.5 s of sending.
    page.wait_for_timeout(3500)
    assert len(polls) >= 2, "polling starts quickly"
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    before = len(polls)
    page.wait_for_timeout(3000)
    assert len(polls) == before
    # Opening again picks the job up where it is.
    open_dialog(page)
    wait_for_result(page.get_by_role("dialog"))


def test_one_script_and_one_stylesheet(shop, page):
    # The shop loads them in <head> with {% tryon_assets %}: the button adds none.
    page.goto(shop.product_url("gingham-shirt"))
    assert page.locator("script[src$='django_tryon/tryon.js']").count() == 1
    assert page.locator("link[href$='django_tryon/tryon.css']").count() == 1
    assert page.locator("head script[src$='django_tryon/tryon.js']").count() == 1
    dialog = open_dialog(page)
    assert dialog.get_by_role("heading").inner_text() == "Try on Red gingham shirt"
    # A click on the veil beside the dialog closes it; one inside does not.
    dialog.get_by_role("heading").click()
    assert dialog.is_visible()
    page.mouse.click(20, 400)
    dialog.wait_for(state="hidden")


def test_no_button_without_a_garment(shop, page):
    page.goto(shop.product_url("gift-card"))
    assert page.get_by_role("heading", name="Gift card").is_visible()
    assert page.locator("[data-tryon]").count() == 0


@pytest.mark.parametrize("motion", ["reduce", "no-preference"])
def test_reduced_motion_stills_the_spinner(shop, page, motion):
    page.emulate_media(reduced_motion=motion)
    page.goto(shop.product_url())
    spinner = page.locator(".tryon-progress__spinner")
    name = spinner.evaluate("element => getComputedStyle(element).animationName")
    assert (name == "none") == (motion == "reduce")


def test_cancel_while_the_picture_is_made(shop, page, person_photo):
    shop.control(processing_time=20.0)
    page.goto(shop.product_url())
    dialog = open_dialog(page)
    choose_photo(dialog, person_photo)
    dialog.get_by_label("I agree that my photo is sent").check()
    dialog.get_by_role("button", name="Send my photo").click()
    page.wait_for_function("window.tryonEvents.some(e => e.type === 'tryon:submit')")
    job_id = events(page)[-1]["detail"]["jobId"]
    dialog.get_by_role("button", name="Cancel and delete my photo").click()
    notice = dialog.locator("[data-tryon-notice]")
    notice.wait_for(state="visible")
    assert notice.inner_text() == "Your photos were deleted."
    assert page.request.get(f"{shop.url}/tryon/api/jobs/{job_id}/").status == 404
    assert page.evaluate("sessionStorage.length") == 0
    assert [event["type"] for event in events(page)] == ["tryon:open", "tryon:submit"]


def test_theming_with_custom_properties(shop, page, screenshot):
    page.emulate_media(reduced_motion="reduce")  # no colour transition to wait for
    page.goto(shop.product_url("gingham-shirt"))
    page.add_style_tag(
        content=":root { --tryon-accent: #8a2846; --tryon-button-radius: 6px;"
        " --tryon-radius: 4px; }"
    )
    opener = page.get_by_role("button", name="Try it on")
    style = opener.evaluate(
        "element => [getComputedStyle(element).backgroundColor,"
        " getComputedStyle(element).borderTopLeftRadius]"
    )
    assert style == ["rgb(138, 40, 70)", "6px"]
    dialog = open_dialog(page)
    send = dialog.get_by_role("button", name="Send my photo")
    assert send.evaluate("element => getComputedStyle(element).backgroundColor") == (
        "rgb(138, 40, 70)"
    )
    screenshot(page, "desktop-themed", width=1000)


def test_widgets_added_later_are_set_up_once(shop, page):
    page.goto(shop.product_url())
    # A widget arriving with content loaded later, set up by the shop's own script.
    page.evaluate(
        """() => {
          const copy = document.querySelector("[data-tryon]").cloneNode(true);
          copy.id = "later";
          copy.querySelector("dialog").id = "later-dialog";
          document.body.append(copy);
          DjangoTryOn.init(copy);
          DjangoTryOn.init(document);
        }"""
    )
    page.locator("#later [data-tryon-open]").click()
    page.locator("#later-dialog").wait_for(state="visible")
    assert [event["type"] for event in events(page)] == ["tryon:open"]
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Try it on").first.click()
    assert [event["type"] for event in events(page)] == ["tryon:open", "tryon:open"]
