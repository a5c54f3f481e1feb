"""Every bad request gets a 4xx with a readable message, and leaves no job and no file."""

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from django_tryon.models import DailyUsage, Garment, TryOnJob
from tests.support.api import (
    GARMENTS_URL,
    JOBS_URL,
    assert_error,
    job_url,
    photo,
    post_job,
)
from tests.support.images import (
    HTML,
    SVG,
    TEXT,
    animated_gif,
    noisy_photo_bytes,
    photo_bytes,
    png_bomb,
    truncated_jpeg,
)
from tests.support.media import stored_files

pytestmark = pytest.mark.usefixtures("fresh_throttle_cache")


@pytest.fixture
def nothing_left_behind(garment, media_root):
    """Asserts, after the test, that it wrote no job, no usage and no file."""
    before = stored_files(media_root)
    yield
    assert not TryOnJob.objects.exists()
    assert not DailyUsage.objects.filter(count__gt=0).exists()
    assert stored_files(media_root) == before


BAD_PHOTOS = {
    "text-named-jpg": (TEXT, "notes.jpg", "not_an_image"),
    "svg": (SVG, "me.svg", "not_an_image"),
    "html": (HTML, "me.html", "not_an_image"),
    "zero-bytes": (b"", "me.jpg", "empty_file"),
    "truncated-jpeg": (truncated_jpeg(), "me.jpg", "truncated_image"),
    "png-bomb": (png_bomb(), "me.png", "too_many_pixels"),
    "animated-gif": (animated_gif(), "me.gif", "animated"),
    "1x1": (photo_bytes((1, 1)), "me.jpg", "too_small"),
}


@pytest.mark.parametrize(("data", "name", "code"), BAD_PHOTOS.values(), ids=BAD_PHOTOS.keys())
def test_bad_photos(data, name, code, client, garment, nothing_left_behind):
    response = post_job(client, garment, photo(data, name=name))
    assert_error(response, 400, code, field="person_image")


def test_the_png_bomb_is_refused_from_its_header(client, garment, nothing_left_behind):
    bomb = png_bomb()
    assert len(bomb) < 1000
    error = assert_error(post_job(client, garment, photo(bomb)), 400, "too_many_pixels")
    assert "over 50 megapixels" in error["message"]


def test_a_missing_photo(client, garment, nothing_left_behind):
    response = client.post(JOBS_URL, {"garment": garment.pk, "consent": "true"})
    error = assert_error(response, 400, "required", field="person_image")
    assert "photo" in error["message"]


def test_a_photo_sent_as_text(client, garment, nothing_left_behind):
    response = client.post(
        JOBS_URL, {"garment": garment.pk, "consent": "true", "person_image": "me.jpg"}
    )
    error = assert_error(response, 400, "invalid", field="person_image")
    assert "as a file" in error["message"]


def test_a_missing_garment(client, garment, nothing_left_behind):
    error = assert_error(post_job(client, None), 400, "required", field="garment")
    assert "garment" in error["message"]


@pytest.mark.parametrize("garment_id", ["999999", "shirt", "inactive"])
def test_an_unknown_or_inactive_garment(garment_id, client, garment, nothing_left_behind):
    if garment_id == "inactive":
        Garment.objects.filter(pk=garment.pk).update(is_active=False)
        garment_id = garment.pk
    error = assert_error(post_job(client, garment_id), 400, "does_not_exist", field="garment")
    assert error["message"] == "This garment is not available for try-on."


@pytest.mark.parametrize("consent", [None, "false", "0", ""])
def test_consent_missing_or_refused(consent, client, garment, nothing_left_behind):
    error = assert_error(post_job(client, garment, consent=consent), 400, "consent_required")
    assert error["field"] == "consent"
    assert "agree" in error["message"]


def test_a_nonsense_consent_value(client, garment, nothing_left_behind):
    assert_error(post_job(client, garment, consent="maybe"), 400, "invalid", field="consent")


def test_several_refused_fields_are_all_listed(client, garment, nothing_left_behind):
    response = client.post(JOBS_URL, {"garment": "999999"})
    error = assert_error(response, 400, "does_not_exist", field="garment")
    assert set(error["fields"]) == {"garment", "person_image", "consent"}


def test_a_broken_multipart_body(client, garment, nothing_left_behind):
    response = client.generic(
        "POST", JOBS_URL, b"--x\r\ngarbage", content_type="multipart/form-data; boundary="
    )
    assert_error(response, 400, "parse_error")


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({f"field{n}": "x" for n in range(1001)}, id="too-many-fields"),
        pytest.param(
            {f"file{n}": SimpleUploadedFile(f"{n}.jpg", b"x") for n in range(100)},
            id="too-many-files",
        ),
        pytest.param({"note": "x" * (3 * 1024 * 1024)}, id="fields-over-the-memory-cap"),
    ],
)
def test_a_body_over_djangos_upload_limits(extra, garment, nothing_left_behind, caplog):
    # Django's DATA_UPLOAD_MAX_NUMBER_FIELDS, _NUMBER_FILES and _MEMORY_SIZE: its parser
    # raises, which gave its HTML "Bad Request" page, not the API's error.
    client = Client(raise_request_exception=False)
    response = client.post(
        JOBS_URL, {"garment": garment.pk, "consent": "true", "person_image": photo(), **extra}
    )
    assert_error(response, 400, "parse_error")
    assert any(record.name.startswith("django.security.") for record in caplog.records)


def test_json_instead_of_multipart(client, garment, nothing_left_behind):
    response = client.post(JOBS_URL, {"garment": garment.pk}, content_type="application/json")
    assert_error(response, 415, "unsupported_media_type")


def test_an_upload_over_the_byte_cap_is_refused_before_the_body_is_read(
    client, garment, settings, nothing_left_behind
):
    settings.TRYON = {**settings.TRYON, "MAX_UPLOAD_BYTES": 100_000}
    big = noisy_photo_bytes((1200, 1600))
    assert len(big) > 100_000 + 64 * 1024
    error = assert_error(post_job(client, garment, photo(big)), 413, "too_large_upload")
    assert "0.095" in error["message"] or "MB" in error["message"]


def test_an_upload_just_over_the_byte_cap_is_refused_from_its_size(
    client, garment, settings, nothing_left_behind
):
    data = photo_bytes((600, 1200))
    settings.TRYON = {**settings.TRYON, "MAX_UPLOAD_BYTES": len(data) - 1}
    assert_error(post_job(client, garment, photo(data)), 400, "too_large_upload", "person_image")


def test_throttle(client, garment, settings, media_root):
    settings.TRYON = {**settings.TRYON, "THROTTLE_RATE": "2/min"}
    assert client.session.session_key  # a returning guest: counted by address all the same
    assert post_job(client, garment, photo(photo_bytes(color=(1, 2, 3)))).status_code == 201
    assert post_job(client, garment, photo(photo_bytes(color=(4, 5, 6)))).status_code == 201
    files = stored_files(media_root)

    response = post_job(client, garment, photo(photo_bytes(color=(7, 8, 9))))

    error = assert_error(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert f"{response['Retry-After']} seconds" in error["message"]
    assert TryOnJob.objects.count() == 2
    assert stored_files(media_root) == files
    job_id = TryOnJob.objects.first().pk
    assert client.get(job_url(job_id)).status_code == 200  # polling is never throttled
    # Guests are counted by address (a new session costs nothing): another
    # address is not slowed, another session from this one is.
    assert Client(REMOTE_ADDR="192.0.2.7").post(JOBS_URL).status_code == 400
    assert_error(Client().post(JOBS_URL), 429, "throttled")


def test_throttle_without_cookies_falls_back_to_the_address(garment, settings):
    settings.TRYON = {**settings.TRYON, "THROTTLE_RATE": "1/min"}
    # A fresh client each time: no session cookie is ever sent back.
    assert Client().post(JOBS_URL).status_code == 400
    assert_error(Client().post(JOBS_URL), 429, "throttled")


def test_daily_quota(client, garment, settings, media_root):
    settings.TRYON = {**settings.TRYON, "DAILY_QUOTA_GUEST": 1}
    assert post_job(client, garment).status_code == 201
    files = stored_files(media_root)

    response = post_job(client, garment, photo(photo_bytes(color=(9, 9, 9))))

    error = assert_error(response, 429, "quota_exceeded")
    assert "your 1 try-on for today" in error["message"] and "tomorrow" in error["message"]
    assert 0 < int(response["Retry-After"]) <= 24 * 60 * 60
    assert TryOnJob.objects.count() == 1
    assert stored_files(media_root) == files
    assert DailyUsage.objects.get(key__startswith="session:").count == 1
    # The same photo again is the running job, not a new try-on: still answered.
    assert post_job(client, garment).json()["reused"] is True


def test_daily_quota_of_signed_in_shoppers(garment, settings):
    settings.TRYON = {**settings.TRYON, "DAILY_QUOTA_USER": 0}
    client = Client()
    client.force_login(get_user_model().objects.create_user("cy"))
    assert_error(post_job(client, garment), 429, "quota_exceeded")
    assert not TryOnJob.objects.exists()


def test_no_quota_when_the_setting_is_none(client, garment, settings):
    settings.TRYON = {**settings.TRYON, "DAILY_QUOTA_GUEST": None}
    for color in [(1, 1, 1), (2, 2, 2)]:
        assert post_job(client, garment, photo(photo_bytes(color=color))).status_code == 201
    # Counted (the overview shows it), never refused.
    assert DailyUsage.objects.get(key__startswith="session:").count == 2


def test_csrf_is_checked_for_guests(garment, nothing_left_behind):
    client = Client(enforce_csrf_checks=True)
    error = assert_error(post_job(client, garment), 403, "csrf_failed")
    assert "Reload the page" in error["message"]


def test_csrf_is_checked_for_signed_in_shoppers(garment, nothing_left_behind):
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.create_user("di"))
    assert_error(post_job(client, garment), 403, "csrf_failed")


def test_csrf_token_from_the_garment_list_lets_the_request_through(garment):
    client = Client(enforce_csrf_checks=True)
    token = client.get(GARMENTS_URL).cookies["csrftoken"].value
    response = post_job(client, garment, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201

    job_id = response.json()["id"]
    assert_error(client.delete(job_url(job_id)), 403, "csrf_failed")
    assert client.delete(job_url(job_id), HTTP_X_CSRFTOKEN=token).status_code == 204


def test_refused_methods(client, db):
    assert_error(client.put(JOBS_URL), 405, "method_not_allowed")
    assert_error(client.post(GARMENTS_URL), 405, "method_not_allowed")


def test_a_garment_file_named_like_a_photo_is_not_trusted_by_name(
    client, garment, nothing_left_behind
):
    upload = SimpleUploadedFile("me.png", photo_bytes(image_format="GIF"), "image/png")
    assert_error(post_job(client, garment, upload), 400, "unsupported_type", "person_image")
