"""Schemathesis hooks for fuzzing the shopper API of a running example shop.

Loaded by ``scripts/fuzz_api.py`` through ``SCHEMATHESIS_HOOKS=fuzz_hooks``; the shop's
address comes in ``TRYON_FUZZ_URL``.

- Every request speaks for one guest, as a browser would: the session cookie and the CSRF
  token (``X-CSRFToken``) are set on each case, so POST and DELETE reach the views instead
  of all ending in 403 ``csrf_failed``. Each new try-on of a guest gives the session a new
  key (a cookie planted before cannot follow it): the newest key the shop set is sent,
  as a browser keeps it, so the job just made is found by the requests after it.
- Some try-on requests carry real photos and real garment ids, so the fuzzer reaches 201,
  the reused 200 and the photo checks, not only "not an image" and "no such garment".
"""

import io
import json
import os
import threading
from http.cookies import SimpleCookie

import requests
import schemathesis
from hypothesis import strategies as st
from PIL import Image

BASE_URL = os.environ["TRYON_FUZZ_URL"].rstrip("/")
# Where each error answer's status and code are written, one JSON line each.
CODES_FILE = os.environ.get("TRYON_FUZZ_CODES")
JOBS_PATH = "/tryon/api/jobs/"
TIMEOUT = 30


def _garment_ids():
    answer = requests.get(f"{BASE_URL}/tryon/api/garments/", timeout=TIMEOUT)
    answer.raise_for_status()
    ids = [garment["id"] for garment in answer.json()]
    if not ids:
        raise RuntimeError("The shop has no active garment: load the demo data first.")
    return ids


def _photo(fmt, size, colour):
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


def _fixed_photos():
    """The shop's drawn sample photo, and pictures the intake refuses."""
    answer = requests.get(f"{BASE_URL}/sample-photos/ava.jpg", timeout=TIMEOUT)
    answer.raise_for_status()
    return [
        answer.content,
        _photo("JPEG", (100, 100), (10, 10, 10)),  # 400 too_small
        _photo("GIF", (300, 300), (0, 120, 0)),  # 400 unsupported_type
    ]


GARMENT_IDS = _garment_ids()
FIXED_PHOTOS = _fixed_photos()
# Photos of many colours: each is a new photo to the API, so a new job, not a reused one.
PHOTOS = st.one_of(
    st.sampled_from(FIXED_PHOTOS),
    st.builds(
        _photo,
        st.sampled_from(["JPEG", "PNG", "WEBP"]),
        st.just((300, 520)),
        st.tuples(*[st.integers(0, 255)] * 3),
    ),
)


# The session key the shop set last (see after_call), over the one the guest began with.
_latest_cookies: dict[str, str] = {}
_cookies_lock = threading.Lock()


@schemathesis.auth(refresh_interval=3600)  # one guest for the whole run
class GuestSession:
    """One guest for the whole run: the ``csrftoken`` cookie from the garment list (as the
    button gets it), and the session that the guest's first try-on starts."""

    def get(self, case, ctx):
        with requests.Session() as browser:
            browser.get(f"{BASE_URL}/tryon/api/garments/", timeout=TIMEOUT).raise_for_status()
            token = browser.cookies["csrftoken"]
            answer = browser.post(
                f"{BASE_URL}{JOBS_PATH}",
                data={"garment": GARMENT_IDS[0], "consent": "true"},
                files={"person_image": ("me.jpg", FIXED_PHOTOS[0], "image/jpeg")},
                headers={"X-CSRFToken": token},
                timeout=TIMEOUT,
            )
            if answer.status_code != 201:
                raise RuntimeError(f"A guest's first try-on failed: {answer.status_code}")
            return {"csrftoken": token, "sessionid": browser.cookies["sessionid"]}

    def set(self, case, data, ctx):
        with _cookies_lock:
            data = {**data, **_latest_cookies}
        case.cookies = {**(case.cookies or {}), **data}
        case.headers = {**(case.headers or {}), "X-CSRFToken": data["csrftoken"]}


@schemathesis.hook("flatmap_body").apply_to(method="POST", path=JOBS_PATH)
def real_garments_and_photos(ctx, body):
    """Swap a generated garment id for a real one three times in four, a generated photo
    for a real one and a false consent for a true one half the time. Only values of the
    documented type are swapped, so a deliberately invalid field stays invalid."""
    if not isinstance(body, dict):
        return st.just(body)
    fields = {key: st.just(value) for key, value in body.items()}
    garment = body.get("garment")
    if isinstance(garment, int) and not isinstance(garment, bool):
        real = st.sampled_from(GARMENT_IDS)
        fields["garment"] = st.one_of(st.just(garment), real, real, real)
    if isinstance(body.get("person_image"), bytes | str):
        fields["person_image"] = st.one_of(st.just(body["person_image"]), PHOTOS)
    if body.get("consent") is False:
        fields["consent"] = st.booleans()
    return st.fixed_dictionaries(fields)


_codes_lock = threading.Lock()


def _keep_session_cookie(response):
    headers = response.headers
    for header in (
        value for name in headers if name.lower() == "set-cookie" for value in headers[name]
    ):
        cookie = SimpleCookie()
        cookie.load(header)
        if "sessionid" in cookie and cookie["sessionid"].value:
            with _cookies_lock:
                _latest_cookies["sessionid"] = cookie["sessionid"].value


@schemathesis.hook
def after_call(ctx, case, response):
    """Keep the session key the shop set; note the error code of each 4xx answer, for
    the run's summary."""
    _keep_session_cookie(response)
    if CODES_FILE is None or not 400 <= response.status_code < 500:
        return
    try:
        code = json.loads(response.content)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = None
    line = json.dumps([case.method, case.operation.path, response.status_code, code])
    with _codes_lock, open(CODES_FILE, "a") as codes:
        codes.write(line + "\n")
