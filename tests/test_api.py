"""The shopper API: starting, reading and erasing try-ons, ownership, reuse, garments."""

import uuid
from datetime import timedelta

import pytest
import responses
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from django_tryon.api.ownership import GUEST_SESSION_KEY
from django_tryon.models import DailyUsage, Garment, TryOnJob
from tests.support.api import (
    GARMENTS_URL,
    assert_error,
    job_url,
    photo,
    post_job,
)
from tests.support.images import make_image_bytes, noisy_photo_bytes, photo_bytes
from tests.support.media import stored_files

pytestmark = pytest.mark.usefixtures("fresh_throttle_cache")

JOB_KEYS = {
    "id",
    "status",
    "garment",
    "model_photo",
    "result_url",
    "error",
    "created_at",
    "finished_at",
    "reused",
    "check_again_in",
    "check_again_planned",
}


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("ana", password="pw")


@pytest.fixture
def user_client(user):
    client = Client()
    client.force_login(user)
    return client


def test_starting_a_try_on_answers_at_once_with_a_pending_job(client, garment, media_root):
    before = stored_files(media_root)
    with responses.RequestsMock() as provider:  # nothing may leave for the provider
        # A stem no random name can hold: spaces and apostrophes are not in its alphabet.
        response = post_job(client, garment, photo(name="Ana's holiday.jpg"))

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == JOB_KEYS
    assert body["status"] == "pending"
    assert body["model_photo"] is None  # the shopper's own photo
    assert body["garment"] == garment.pk
    assert body["result_url"] is None and body["error"] is None and body["finished_at"] is None
    assert body["reused"] is False
    assert response["Location"] == f"http://testserver{job_url(body['id'])}"
    assert len(provider.calls) == 0

    job = TryOnJob.objects.get(pk=body["id"])
    assert job.status == "pending" and job.source == "shopper"
    assert job.next_attempt_at <= timezone.now()
    assert job.consent_at is not None
    # The guest's try-ons are named by the session's key when the first one was
    # started; the session itself has a new key since (a planted cookie is dead).
    assert job.session_key == client.session[GUEST_SESSION_KEY] != ""
    assert client.session.session_key != job.session_key
    assert job.user is None
    assert len(job.photo_digest) == 64
    new_files = stored_files(media_root) - before
    assert new_files == {job.person_image.name}
    assert job.person_image.name.endswith(".jpg")
    assert "Ana's holiday" not in job.person_image.name  # random, not the shopper's file name
    assert DailyUsage.objects.get(key=f"session:{job.session_key}").count == 1


def test_the_stored_photo_is_the_normalised_one(client, garment):
    data = noisy_photo_bytes((3000, 4000))
    response = post_job(client, garment, photo(data))
    job = TryOnJob.objects.get(pk=response.json()["id"])
    from PIL import Image

    with Image.open(job.person_image.path) as stored:
        assert stored.size == (1500, 2000)
        assert not stored.getexif()


def test_a_signed_in_shopper_owns_the_job_from_any_session(user, user_client, garment):
    response = post_job(user_client, garment)
    job = TryOnJob.objects.get(pk=response.json()["id"])
    assert job.user == user and job.session_key == ""
    assert DailyUsage.objects.get(key=f"user:{user.pk}").count == 1

    other_browser = Client()
    other_browser.force_login(user)
    assert other_browser.get(job_url(job.pk)).json()["id"] == str(job.pk)


def test_signing_in_carries_the_guests_try_ons_over(user, client, garment):
    started = post_job(client, garment).json()
    someone_else = Client()
    theirs = post_job(someone_else, garment).json()
    guest_session = client.session.session_key

    client.login(username="ana", password="pw")

    assert client.session.session_key != guest_session  # a new session, as Django does
    job = TryOnJob.objects.get(pk=started["id"])
    assert (job.user, job.session_key) == (user, "")
    assert client.get(job_url(job.pk)).json()["status"] == "pending"
    # The same photo again is the same try-on, now the user's.
    again = post_job(client, garment)
    assert again.status_code == 200 and again.json()["id"] == started["id"]
    # From any of the user's browsers; and another guest's try-ons stay theirs.
    other_browser = Client()
    other_browser.force_login(user)
    assert other_browser.get(job_url(job.pk)).status_code == 200
    assert other_browser.get(job_url(theirs["id"])).status_code == 404
    assert someone_else.get(job_url(theirs["id"])).status_code == 200
    assert TryOnJob.objects.get(pk=theirs["id"]).user is None


def test_a_sign_in_without_a_session_carries_nothing_over(user, client, garment):
    from django.contrib.auth.signals import user_logged_in

    started = post_job(client, garment).json()
    # As code that signs users in without a browser (a token view) may send it.
    user_logged_in.send(sender=type(user), request=None, user=user)
    assert TryOnJob.objects.get(pk=started["id"]).user is None


def test_reading_a_job_shows_its_progress_result_and_error(client, garment):
    job = TryOnJob.objects.get(pk=post_job(client, garment).json()["id"])
    assert client.get(job_url(job.pk)).json()["status"] == "pending"

    job.status = "processing"
    job.result_image.save("r.png", ContentFile(make_image_bytes(image_format="PNG")), save=False)
    job.save()
    assert client.get(job_url(job.pk)).json()["result_url"] is None  # not until succeeded

    job.status, job.finished_at = "succeeded", timezone.now()
    job.save()
    body = client.get(job_url(job.pk)).json()
    assert body["result_url"] == job.result_image.url
    assert body["finished_at"] is not None and body["reused"] is False

    job.status, job.error_code, job.error_message = "failed", "no_face", ""
    job.save()
    error = client.get(job_url(job.pk)).json()["error"]
    assert error["code"] == "no_face"
    assert "whole body" in error["message"]


def test_deleting_erases_the_photo_and_result_at_once(client, garment, media_root):
    job = TryOnJob.objects.get(pk=post_job(client, garment).json()["id"])
    job.result_image.save("r.png", ContentFile(make_image_bytes(image_format="PNG")))
    TryOnJob.objects.filter(pk=job.pk).update(
        status="succeeded", finished_at=timezone.now(), lease_owner=""
    )
    files = {job.person_image.name, job.result_image.name}
    assert files <= stored_files(media_root)

    response = client.delete(job_url(job.pk))

    assert response.status_code == 204
    assert not files & stored_files(media_root)
    job.refresh_from_db()
    assert job.status == "succeeded"
    assert not job.person_image and not job.result_image and not job.photo_digest
    assert job.photos_erased_at is not None
    assert job.session_key == "" and job.user is None
    assert_error(client.get(job_url(job.pk)), 404, "not_found")
    assert_error(client.delete(job_url(job.pk)), 404, "not_found")


def test_deleting_a_running_job_cancels_it_and_frees_its_lease(client, garment, media_root):
    job = TryOnJob.objects.get(pk=post_job(client, garment).json()["id"])
    TryOnJob.objects.filter(pk=job.pk).update(
        status="processing",
        provider_task_id="t1",
        lease_owner="worker:1",
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )

    assert client.delete(job_url(job.pk)).status_code == 204

    job.refresh_from_db()
    assert job.status == "canceled" and job.error_code == "canceled"
    assert job.lease_owner == "" and job.lease_expires_at is None
    assert job.finished_at is not None
    assert not TryOnJob.objects.due(timezone.now() + timedelta(days=1)).filter(pk=job.pk)
    assert not job.person_image
    assert not any(name.startswith("tryon/photos/") for name in stored_files(media_root))


@pytest.mark.parametrize("method", ["get", "delete"])
def test_someone_elses_job_is_not_found(method, client, user_client, garment, make_job, user):
    guest_job = TryOnJob.objects.get(pk=post_job(client, garment).json()["id"])
    user_job = make_job(user=user)
    second_guest = Client()
    second_guest.get(GARMENTS_URL)  # has a session of its own
    stranger = Client()
    stranger.force_login(get_user_model().objects.create_user("bo"))

    for visitor, job in [
        (second_guest, guest_job),
        (user_client, guest_job),
        (client, user_job),
        (stranger, user_job),
    ]:
        error = assert_error(getattr(visitor, method)(job_url(job.pk)), 404, "not_found")
        assert "another browser" in error["message"]

    for job in (guest_job, user_job):
        job.refresh_from_db()
        assert job.person_image and job.status == "pending"


def test_admin_jobs_are_nobodys_to_read(user, user_client, make_job):
    job = make_job(user=user, source="admin")
    assert_error(user_client.get(job_url(job.pk)), 404, "not_found")


@pytest.mark.parametrize("job_id", ["42", "not-a-uuid", str(uuid.uuid4())])
def test_malformed_or_unknown_ids_are_json_404s(client, job_id, db):
    assert_error(client.get(f"/tryon/api/jobs/{job_id}/"), 404, "not_found")


def test_the_same_photo_and_garment_reuses_the_running_job(client, garment, media_root):
    first = post_job(client, garment, photo(name="a.jpg")).json()
    files = stored_files(media_root)

    again = post_job(client, garment, photo(name="renamed.jpg"))

    assert again.status_code == 200
    assert again.json()["id"] == first["id"] and again.json()["reused"] is True
    assert again["Location"].endswith(job_url(first["id"]))
    assert TryOnJob.objects.count() == 1
    assert stored_files(media_root) == files
    assert DailyUsage.objects.get(key__startswith="session:").count == 1


def test_a_succeeded_job_is_reused_while_its_result_is_kept(client, garment, settings):
    job = TryOnJob.objects.get(pk=post_job(client, garment).json()["id"])
    job.result_image.save("r.png", ContentFile(make_image_bytes(image_format="PNG")), save=False)
    job.status, job.finished_at = "succeeded", timezone.now() - timedelta(days=2)
    job.save()

    assert post_job(client, garment).json()["id"] == str(job.pk)

    settings.TRYON = {**settings.TRYON, "RESULT_TTL": 24 * 60 * 60}
    assert post_job(client, garment).json()["id"] != str(job.pk)


@pytest.mark.parametrize("change", ["failed", "other_garment", "other_photo", "off", "owner"])
def test_no_reuse_when_anything_differs(change, client, garment, settings):
    first = TryOnJob.objects.get(pk=post_job(client, garment).json()["id"])
    image, visitor, target = None, client, garment
    if change == "failed":
        TryOnJob.objects.filter(pk=first.pk).update(status="failed", error_code="provider_error")
    elif change == "other_garment":
        target = Garment.objects.create(
            name="Jeans", clothes_type="lower_body", image=first.garment.image.name
        )
    elif change == "other_photo":
        image = photo(photo_bytes(color=(10, 10, 10)))
    elif change == "off":
        settings.TRYON = {**settings.TRYON, "REUSE_RESULTS": False}
    else:
        visitor = Client()

    response = post_job(visitor, target, image)

    assert response.status_code == 201
    assert response.json()["id"] != str(first.pk) and response.json()["reused"] is False


def test_consent_is_not_needed_when_the_shop_turns_it_off(client, garment, settings):
    settings.TRYON = {**settings.TRYON, "REQUIRE_CONSENT": False}
    response = post_job(client, garment, consent=None)
    assert response.status_code == 201
    assert TryOnJob.objects.get().consent_at is None


@pytest.mark.parametrize("value", ["true", "1", "on", "yes", "True"])
def test_consent_accepts_the_usual_truthy_values(client, garment, value):
    assert post_job(client, garment, consent=value).status_code == 201


def test_garments_lists_the_active_ones(client, garment):
    Garment.objects.create(
        name="Old coat", clothes_type="full_body", image=garment.image.name, is_active=False
    )
    response = client.get(GARMENTS_URL)
    assert response.status_code == 200
    assert response.json() == [
        {
            "id": garment.pk,
            "name": "Striped T-shirt",
            "clothes_type": "upper_body",
            "image_url": garment.image.url,
        }
    ]
    assert "csrftoken" in response.cookies  # for the POST that follows


def test_the_api_keeps_its_policies_whatever_the_shop_sets(client, garment, settings):
    settings.REST_FRAMEWORK = {
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
        "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
        "PAGE_SIZE": 1,
    }
    assert isinstance(client.get(GARMENTS_URL).json(), list)
    assert post_job(client, garment).status_code == 201


def test_with_atomic_requests_a_later_failure_leaves_no_photo_without_its_job(
    client, garment, media_root, monkeypatch
):
    from django.db import connection

    from django_tryon.api import views

    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)

    def broken_answer(*args, **kwargs):
        raise RuntimeError("the answer could not be made")

    monkeypatch.setattr(views, "JobSerializer", broken_answer)
    with pytest.raises(RuntimeError):
        post_job(client, garment)

    # The job was written in its own transaction, so its photo has its row.
    photos = {name for name in stored_files(media_root) if name.startswith("tryon/photos/")}
    assert len(photos) == 1
    assert set(TryOnJob.objects.values_list("person_image", flat=True)) == photos
