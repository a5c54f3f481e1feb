"""The shopper's journey in a real browser: the button, the dialog, the job, the result."""

import base64
import io
import itertools
import json
import os
import re
from pathlib import Path

import pytest
from PIL import Image

from bench.photos import CAMERA_MAKE, phone_photo
from django_tryon.errors import MESSAGES as JOB_MESSAGES
from tests.support.browser import RESULT_TIMEOUT, events, open_dialog, wait_for_result

DOCS_IMAGES = Path(__file__).resolve().parent.parent.parent / "docs" / "images"
# The docs' pictures are rewritten only when asked for, so a test run leaves the tree clean.
UPDATE_SCREENSHOTS = os.environ.get("TRYON_UPDATE_SCREENSHOTS") == "1"


@pytest.fixture
def screenshot(tmp_path):
    """``screenshot(page, name, width, height=None)``: a small palette PNG of the page,
    for the docs, ``width`` pixels wide.

    ``height`` makes the page that tall for this picture only (the whole dialog in
    view, the model photos and the send button included), then gives it back its own.
    Saved as ``docs/images/button-<name>.png`` with ``TRYON_UPDATE_SCREENSHOTS=1``,
    else in the test's temporary folder.
    """
    folder = DOCS_IMAGES if UPDATE_SCREENSHOTS else tmp_path

    def take(target, name, width, height=None):
        own_size = target.viewport_size
        if height:
            target.set_viewport_size({"width": own_size["width"], "height": height})
        try:
            image = Image.open(io.BytesIO(target.screenshot())).convert("RGB")
        finally:
            target.set_viewport_size(own_size)
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


def config(page):
    return json.loads(page.locator("[data-tryon]").first.get_attribute("data-tryon-config"))


def choose_photo(dialog, path):
    dialog.locator("input[type=file]").first.set_input_files(str(path))
    dialog.get_by_role("img", name="Your photo").wait_for(state="visible")


def shows_error(page, text):
    """Wait for ``text`` under the photo: the browser judges a photo once it has read it."""
    page.wait_for_function(
        "text => document.querySelector('[data-tryon-error]').textContent === text", arg=text
    )


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
    screenshot(page, "desktop-dialog", width=1000, height=1000)
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

    # A text file dressed as a JPEG: the browser cannot decode it, so neither could the
    # shop. Refused at once, not when the shopper sends it.
    fake = tmp_path / "photo.jpg"
    fake.write_bytes(b"shopping list, not a photo")
    dialog.locator("input[type=file]").first.set_input_files(str(fake))
    page.wait_for_function("window.tryonEvents.length === 3")
    assert error.inner_text() == refusal
    assert not dialog.locator("[data-tryon-preview]").is_visible()
    assert [(e["type"], e["detail"]["code"]) for e in events(page)[1:]] == [
        ("tryon:error", "not_an_image"),
        ("tryon:error", "not_an_image"),
    ]
    # Send now asks for a photo: the refused one is not kept.
    dialog.get_by_role("button", name="Send my photo").click()
    assert error.inner_text() == "Choose a photo first."


# The photo each POST of the page carries, as the bytes handed to fetch (base64).
RECORD_SENT_PHOTOS = """
window.sentPhotos = [];
const fetchBeforePhotos = window.fetch;
window.fetch = function (url, options) {
  const photo = options && options.body instanceof FormData && options.body.get("person_image");
  if (photo) {
    photo.arrayBuffer().then(function (buffer) {
      let text = "";
      new Uint8Array(buffer).forEach(function (byte) { text += String.fromCharCode(byte); });
      window.sentPhotos.push({name: photo.name, type: photo.type, base64: btoa(text)});
    });
  }
  return fetchBeforePhotos.apply(this, arguments);
};
"""


def sent_photos(page):
    """The photos the page sent, as bytes, once every one is read."""
    page.wait_for_function("window.sentPhotos.length > 0")
    return [base64.b64decode(photo["base64"]) for photo in page.evaluate("window.sentPhotos")]


def test_a_photo_the_browser_cannot_read_but_the_shop_can_is_sent_as_it_is(shop, page, tmp_path):
    # HEIC: Chromium decodes none, the shop does (pillow-heif).
    import pillow_heif

    from django_tryon.sandbox import samples

    pillow_heif.register_heif_opener()
    heic = tmp_path / "IMG_0002.heic"
    samples.model_photo("ava").convert("RGB").save(heic, format="HEIF")
    page.add_init_script(RECORD_SENT_PHOTOS)
    page.goto(shop.product_url())
    dialog = open_dialog(page)
    file_input = dialog.locator("input[type=file]").first
    file_input.set_input_files(
        files=[{"name": heic.name, "mimeType": "image/heic", "buffer": heic.read_bytes()}]
    )
    # Nothing to preview, nothing refused: the shopper may send it.
    dialog.locator("[data-tryon-change-text]").wait_for(state="visible")
    assert not dialog.locator("[data-tryon-preview]").is_visible()
    assert not dialog.locator("[data-tryon-error]").is_visible()
    dialog.get_by_label("I agree that my photo is sent").check()
    dialog.get_by_role("button", name="Send my photo").click()
    page.wait_for_function("window.tryonEvents.some(e => e.type === 'tryon:submit')")
    assert sent_photos(page) == [heic.read_bytes()]

    # What the shop cannot read either, it refuses, in the same place.
    dialog.get_by_role("button", name="Delete my photos").or_(
        dialog.get_by_role("button", name="Cancel and delete my photo")
    ).click()
    dialog.locator("[data-tryon-notice]").wait_for(state="visible")
    file_input.set_input_files(
        files=[{"name": "fake.heic", "mimeType": "image/heic", "buffer": b"not a photo at all"}]
    )
    dialog.locator("[data-tryon-change-text]").wait_for(state="visible")
    dialog.get_by_label("I agree that my photo is sent").check()
    dialog.get_by_role("button", name="Send my photo").click()
    page.wait_for_function("window.tryonEvents.at(-1).detail.code === 'not_an_image'")
    assert (
        dialog.locator("[data-tryon-error]").inner_text() == config(page)["messages"]["notAnImage"]
    )


def test_the_browser_checks_size_format_and_pixels_first(shop, page):
    page.goto(shop.product_url())
    dialog = open_dialog(page)
    settings = config(page)
    messages = settings["messages"]
    file_input = dialog.locator("input[type=file]").first
    posts = []
    page.on("request", lambda request: posts.append(request) if request.method == "POST" else None)

    too_large = b"\xff\xd8" + bytes(settings["maxUploadBytes"])
    # 20 MB goes to the page through Playwright's pipe, base64-encoded: slow on a busy machine.
    file_input.set_input_files(
        files=[{"name": "big.jpg", "mimeType": "image/jpeg", "buffer": too_large}],
        timeout=90_000,
    )
    shows_error(page, messages["tooLarge"])
    assert "20 MB" in messages["tooLarge"]

    gif = io.BytesIO()
    Image.new("RGB", (400, 800), (200, 100, 50)).save(gif, format="GIF")
    file_input.set_input_files(
        files=[{"name": "me.gif", "mimeType": "image/gif", "buffer": gif.getvalue()}]
    )
    shows_error(page, messages["unsupported"].replace("{format}", "GIF"))

    small = io.BytesIO()
    Image.new("RGB", (120, 200), (200, 100, 50)).save(small, format="PNG")
    file_input.set_input_files(
        files=[{"name": "small.png", "mimeType": "image/png", "buffer": small.getvalue()}]
    )
    shows_error(page, messages["tooSmall"].replace("{width}", "120").replace("{height}", "200"))
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
    screenshot(page, "desktop-keyboard", width=1000, height=1000)
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
    for _ in range(200):  # the job is read again while the picture is made
        if len(polls) >= 2:
            break
        page.wait_for_timeout(100)
    assert len(polls) >= 2, "polling goes on"
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


def test_the_photo_leaves_small_upright_and_without_metadata(shop, page, tmp_path):
    photo = tmp_path / "IMG_0001.jpg"
    photo.write_bytes(phone_photo())  # 12 MP, stored sideways, with a camera and a GPS position
    assert len(photo.read_bytes()) > 3_000_000
    posts = []
    page.on("request", lambda request: posts.append(request) if request.method == "POST" else None)
    page.add_init_script(RECORD_SENT_PHOTOS)
    page.goto(shop.product_url())
    dialog = open_dialog(page)
    choose_photo(dialog, photo)
    # The preview is what will be sent.
    preview = dialog.get_by_role("img", name="Your photo")
    assert preview.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [1536, 2048]
    dialog.get_by_label("I agree that my photo is sent").check()
    dialog.get_by_role("button", name="Send my photo").click()
    page.wait_for_function("window.tryonEvents.some(e => e.type === 'tryon:submit')")

    # What the server received, all of it: the request's length.
    assert int(posts[0].all_headers()["content-length"]) < 1_200_000
    (sent,) = sent_photos(page)
    image = Image.open(io.BytesIO(sent))
    # The intake's size (INTAKE_MAX_SIDE), turned as the camera meant it.
    assert (image.format, image.size) == ("JPEG", (1536, 2048))
    assert not image.getexif()
    assert b"Exif" not in sent and CAMERA_MAKE.encode() not in sent
    # Upright: the sample's dark hair at the top, the light floor at the bottom.
    grey = image.convert("L").resize((3, 8))
    assert grey.getpixel((1, 0)) < grey.getpixel((1, 7))
    wait_for_result(dialog)


def test_a_result_that_does_not_load_says_so_and_loads_again(shop, page, person_photo):
    results = "**/media/tryon/results/**"
    page.route(results, lambda route: route.abort())
    posts = []
    page.on("request", lambda request: posts.append(request) if request.method == "POST" else None)
    page.goto(shop.product_url())
    dialog = open_dialog(page)
    choose_photo(dialog, person_photo)
    dialog.get_by_label("I agree that my photo is sent").check()
    dialog.get_by_role("button", name="Send my photo").click()

    failure = dialog.locator("[data-tryon-failure-text]")
    failure.wait_for(state="visible", timeout=RESULT_TIMEOUT)
    message = config(page)["messages"]["resultFailed"]
    assert failure.inner_text() == message
    # Never "ready" over a picture that is not there.
    assert not dialog.locator("[data-tryon-result-image]").is_visible()
    assert page.locator("[data-tryon-live]").inner_text() == message
    error = events(page)[-1]
    assert (error["type"], error["detail"]["code"]) == ("tryon:error", "result_not_loaded")
    assert error["detail"]["jobId"] == events(page)[1]["detail"]["jobId"]

    # Trying again loads the same job's picture: no new job, nothing paid twice.
    page.unroute(results)
    dialog.get_by_role("button", name="Try again").click()
    wait_for_result(dialog)
    assert len(posts) == 1
    success = events(page)[-1]
    assert success["type"] == "tryon:success"
    assert success["detail"]["jobId"] == error["detail"]["jobId"]


# Each answer of the shopper API to the page, with when it was asked for and when it came.
RECORD_API_ANSWERS = """
window.apiAnswers = [];
const originalFetch = window.fetch;
window.fetch = function (url, options) {
  const started = performance.now();
  return originalFetch.apply(this, arguments).then(function (response) {
    const ended = performance.now();
    response.clone().json().then(function (body) {
      window.apiAnswers.push({method: (options && options.method) || "GET", started, ended,
                              status: body.status, checkAgainIn: body.check_again_in});
    }, function () {});
    return response;
  });
};
"""


def clock_read(n):
    """Milliseconds after sending of the released button's ``n``-th read (n >= 1): 1 s,
    then 1.5 times longer each time, up to 5 s."""
    at, interval = 0, 1000
    for _ in range(n):
        at += interval
        interval = min(5000, round(interval * 1.5))
    return at


def test_the_browser_asks_again_when_the_job_json_says(shop, page, person_photo):
    shop.control(processing_time=5.0)
    page.add_init_script(RECORD_API_ANSWERS)
    page.goto(shop.product_url())
    dialog = open_dialog(page)
    choose_photo(dialog, person_photo)
    dialog.get_by_label("I agree that my photo is sent").check()
    dialog.get_by_role("button", name="Send my photo").click()
    wait_for_result(dialog)

    answers = page.evaluate("window.apiAnswers")
    assert answers[0]["method"] == "POST" and answers[-1]["status"] == "succeeded"
    assert answers[-1]["checkAgainIn"] is None
    sent = answers[0]["ended"]
    for read, (before, after) in enumerate(itertools.pairwise(answers), start=1):
        # Never sooner than the answer said, nor than the released clock's same read:
        # never more reads than the released button made in the same time.
        assert after["started"] - before["ended"] >= before["checkAgainIn"] * 1000 - 50, answers
        assert after["started"] - sent >= clock_read(read) - 50, answers


def send_with_reads_answered(shop, page, person_photo, rewrite):
    """Send a try-on of a 30 s job whose every read is answered with the job JSON as
    ``rewrite`` changes it (in place), recording the API's answers; returns the dialog."""
    shop.control(processing_time=30.0)

    def answer(route):
        if route.request.method != "GET":
            route.continue_()
            return
        job = route.fetch().json()
        rewrite(job)
        route.fulfill(json=job)

    page.route("**/tryon/api/jobs/*-*/", answer)
    page.add_init_script(RECORD_API_ANSWERS)
    page.goto(shop.product_url())
    dialog = open_dialog(page)
    choose_photo(dialog, person_photo)
    dialog.get_by_label("I agree that my photo is sent").check()
    dialog.get_by_role("button", name="Send my photo").click()
    return dialog


def test_a_server_that_says_when_is_followed_and_one_that_does_not_gets_the_clock(
    shop, page, person_photo
):
    said = {"checkAgainIn": 2.5}

    def rewrite(job):
        if said["checkAgainIn"] is None:
            job.pop("check_again_in")
        else:
            job["check_again_in"] = said["checkAgainIn"]

    dialog = send_with_reads_answered(shop, page, person_photo, rewrite)
    page.wait_for_function("window.apiAnswers.length >= 3", timeout=30_000)  # POST, 2 reads
    said["checkAgainIn"] = None  # an older server: the next reads say nothing
    page.wait_for_function("window.apiAnswers.length >= 6", timeout=30_000)
    dialog.get_by_role("button", name="Cancel and delete my photo").click()
    dialog.locator("[data-tryon-notice]").wait_for(state="visible")
    answers = page.evaluate("window.apiAnswers")
    gaps = [after["started"] - before["ended"] for before, after in itertools.pairwise(answers)]
    # Each read waits the 2.5 s the one before said...
    assert 2450 <= gaps[1] <= 4000 and 2450 <= gaps[2] <= 4000, gaps
    # ...then, told nothing, the clock: 1 s, then 1.5 s.
    assert 950 <= gaps[3] <= 2500 and 1450 <= gaps[4] <= 3000, gaps


def test_a_planned_time_is_followed_sooner_than_the_clock(shop, page, person_photo):
    # A provider that pushes its end: the server plans the reads where results come, and
    # keeps them within the clock's per job on average; the button follows them as said.
    def rewrite(job):
        job["check_again_in"], job["check_again_planned"] = 0.3, True

    dialog = send_with_reads_answered(shop, page, person_photo, rewrite)
    page.wait_for_function("window.apiAnswers.length >= 6", timeout=30_000)  # POST, 5 reads
    dialog.get_by_role("button", name="Cancel and delete my photo").click()
    dialog.locator("[data-tryon-notice]").wait_for(state="visible")
    answers = page.evaluate("window.apiAnswers")
    sent = answers[0]["ended"]
    # The first read as the POST's answer said (not planned); each next one 0.3 s after
    # the answer before, where the clock would have waited 1.5 s, then 2.25 s, then more.
    for before, after in itertools.pairwise(answers[1:6]):
        assert after["started"] - before["ended"] >= 250, answers
    assert answers[5]["started"] - sent < clock_read(3), answers
