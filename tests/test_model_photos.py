"""Shoppers with no photo at hand try garments on the model photos staff offer: the list,
the pick, the exact refusals, the quota, one paid call shared by every shopper who picks
the same pair, and an erasure that takes only the shopper's own access away."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from django_tryon import shared
from django_tryon.admin.operations import plan_generation
from django_tryon.models import DailyUsage, Garment, ModelPhoto, TryOnJob, TryOnShare
from django_tryon.retention import purge_expired
from django_tryon.signals import job_failed
from tests.support.api import (
    JOBS_URL,
    assert_error,
    job_url,
    photo,
)
from tests.support.images import make_image_bytes
from tests.support.media import stored_files

pytestmark = pytest.mark.usefixtures("fresh_throttle_cache")

MODEL_PHOTOS_URL = "/tryon/api/model-photos/"


def _model_photo(name, *, offered=True, active=True, color=(90, 140, 90)):
    return ModelPhoto.objects.create(
        name=name,
        image=ContentFile(make_image_bytes((400, 800), color), name="model.jpg"),
        offered_to_shoppers=offered,
        is_active=active,
    )


@pytest.fixture
def ava(db):
    return _model_photo("Ava")


def pick(client, garment, model_photo, **extra):
    data = {"garment": garment.pk, "model_photo": getattr(model_photo, "pk", model_photo)}
    data.update(extra)
    return client.post(JOBS_URL, data)


def _succeed(job):
    job.result_image.save("r.png", ContentFile(make_image_bytes(image_format="PNG")), save=False)
    job.status, job.finished_at = "succeeded", timezone.now()
    job.save()
    return job


# --- The list ----------------------------------------------------------------------


def test_the_list_holds_the_offered_active_photos_by_name(client, ava):
    bo = _model_photo("Bo")
    _model_photo("Cy", offered=False)
    _model_photo("Di", active=False)

    response = client.get(MODEL_PHOTOS_URL)

    assert response.status_code == 200
    assert response.json() == [
        {"id": ava.pk, "name": "Ava", "image_url": ava.image.url},
        {"id": bo.pk, "name": "Bo", "image_url": bo.image.url},
    ]
    assert "csrftoken" in response.cookies  # for the POST that follows


def test_the_list_is_empty_until_staff_offer_a_photo(client, db):
    _model_photo("Cy", offered=False)
    assert client.get(MODEL_PHOTOS_URL).json() == []


# --- The pick ------------------------------------------------------------------------


def test_a_pick_starts_a_shop_owned_job_on_a_copy_of_the_photo(client, garment, ava, media_root):
    response = pick(client, garment, ava)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending" and body["reused"] is False
    assert body["model_photo"] == ava.pk and body["garment"] == garment.pk
    job = TryOnJob.objects.get(pk=body["id"])
    assert job.source == "shared" and job.model_photo == ava
    # Nobody's own job: the shop's, reached through the shopper's share.
    assert job.user is None and job.session_key == "" and job.consent_at is None
    share = TryOnShare.objects.get(job=job)
    assert share.session_key and share.user is None
    # Its own copy of the photo: staff replacing or deleting the model photo never touch it.
    assert job.person_image.name != ava.image.name
    assert job.person_image.read() == ava.image.open("rb").read()
    assert client.get(job_url(job.pk)).json()["model_photo"] == ava.pk
    # A guest's pick counts as a try-on on each of their caps.
    assert DailyUsage.objects.get(key__startswith="session:").count == 1
    assert DailyUsage.objects.get(key="guests").count == 1


def test_no_consent_is_asked_for_the_shops_photo(client, garment, ava, settings):
    assert settings.TRYON.get("REQUIRE_CONSENT", True)
    assert pick(client, garment, ava, consent="false").status_code == 201


# --- Exactly one photo, and the same 400 for any photo not offered -----------------------


@pytest.fixture
def nothing_left_behind(garment, media_root):
    before = stored_files(media_root)
    yield
    assert not TryOnJob.objects.exists()
    assert not TryOnShare.objects.exists()
    assert not DailyUsage.objects.filter(count__gt=0).exists()
    assert stored_files(media_root) == before


def test_both_photos_are_refused(client, garment, ava, nothing_left_behind):
    response = client.post(
        JOBS_URL,
        {"garment": garment.pk, "model_photo": ava.pk, "person_image": photo(), "consent": "true"},
    )
    error = assert_error(response, 400, "photo_and_model_photo")
    assert "not both" in error["message"] and "field" not in error


@pytest.mark.parametrize("model_photo", ["", None])
def test_neither_photo_is_refused_as_a_missing_photo(
    model_photo, client, garment, nothing_left_behind
):
    data = {"garment": garment.pk, "consent": "true"}
    if model_photo is not None:
        data["model_photo"] = model_photo
    assert_error(client.post(JOBS_URL, data), 400, "required", field="person_image")


@pytest.mark.parametrize("which", ["not_offered", "inactive", "unknown", "malformed", "negative"])
def test_a_photo_not_offered_is_refused_as_an_unknown_one(which, client, garment, media_root):
    ids = {
        "not_offered": lambda: _model_photo("Cy", offered=False).pk,
        "inactive": lambda: _model_photo("Di", active=False).pk,
        "unknown": lambda: 987654,
        "malformed": lambda: "ava'; --",
        "negative": lambda: -1,
    }
    model_photo_id = ids[which]()
    before = stored_files(media_root)

    response = pick(client, garment, model_photo_id)

    error = assert_error(response, 400, "does_not_exist", field="model_photo")
    assert error["message"] == "This model photo is not offered for try-on."
    assert not TryOnJob.objects.exists() and not TryOnShare.objects.exists()
    assert not DailyUsage.objects.exists()
    assert stored_files(media_root) == before


def test_a_photo_whose_file_is_gone_is_refused_and_logged(client, garment, ava, caplog):
    ava.image.storage.delete(ava.image.name)
    error = assert_error(pick(client, garment, ava), 400, "does_not_exist", field="model_photo")
    assert error["message"] == "This model photo is not offered for try-on."
    assert "Model photo" in caplog.text and "cannot be read" in caplog.text
    assert not TryOnJob.objects.exists() and not TryOnShare.objects.exists()


def test_an_inactive_garment_is_refused_with_a_model_photo_too(client, garment, ava):
    Garment.objects.filter(pk=garment.pk).update(is_active=False)
    assert_error(pick(client, garment, ava), 400, "does_not_exist", field="garment")


# --- One paid call for every shopper who picks the pair ----------------------------------


def test_a_second_shopper_shares_the_running_job_and_is_not_charged(garment, ava, media_root):
    first, second = Client(), Client(REMOTE_ADDR="192.0.2.9")
    started = pick(first, garment, ava).json()
    files = stored_files(media_root)

    response = pick(second, garment, ava)

    assert response.status_code == 200
    assert response.json()["id"] == started["id"] and response.json()["reused"] is True
    assert TryOnJob.objects.count() == 1 and TryOnShare.objects.count() == 2
    assert stored_files(media_root) == files  # no second copy
    assert DailyUsage.objects.get(key="guests").count == 1
    assert second.get(job_url(started["id"])).json()["status"] == "pending"


def test_a_finished_picture_serves_later_shoppers(garment, ava):
    job = _succeed(TryOnJob.objects.get(pk=pick(Client(), garment, ava).json()["id"]))
    # Long after: shopper results' retention does not apply to the shop's picture.
    later = Client()
    body = pick(later, garment, ava).json()
    assert body["id"] == str(job.pk) and body["result_url"] == job.result_image.url


def test_a_pair_picked_again_by_the_same_shopper_is_one_share(client, garment, ava):
    first = pick(client, garment, ava).json()
    again = pick(client, garment, ava)
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert TryOnShare.objects.count() == 1


@pytest.mark.parametrize("change", ["failed", "replaced", "other_photo", "other_garment", "off"])
def test_a_new_job_when_the_pair_has_no_usable_picture(change, garment, ava, settings):
    first = TryOnJob.objects.get(pk=pick(Client(), garment, ava).json()["id"])
    target, model_photo = garment, ava
    if change == "failed":
        TryOnJob.objects.filter(pk=first.pk).update(status="failed", error_code="provider_error")
    elif change == "replaced":  # staff uploaded another picture of the model
        ava.image.save("new.jpg", ContentFile(make_image_bytes((400, 800), (5, 5, 5))))
    elif change == "other_photo":
        model_photo = _model_photo("Bo", color=(200, 10, 10))
    elif change == "other_garment":
        target = Garment.objects.create(
            name="Jeans", clothes_type="lower_body", image=garment.image.name
        )
    else:
        settings.TRYON = {**settings.TRYON, "REUSE_RESULTS": False}

    response = pick(Client(), target, model_photo)

    assert response.status_code == 201
    assert response.json()["id"] != str(first.pk)


def test_a_pick_racing_another_for_a_new_pair_shares_its_job(
    client, garment, ava, media_root, monkeypatch
):
    """The twin request wrote the job between this one's first look and its lock."""
    real_find, real_start = shared.find_shared, shared.start_shared_job
    looks = []

    def find_after_the_twin_wrote(*args):
        looks.append(args)
        if len(looks) == 1:
            twin = _guest("twin-session")
            real_start(twin, garment, ava, now=timezone.now())
            assert twin.shares().count() == 1
            return None
        return real_find(*args)

    monkeypatch.setattr(shared, "find_shared", find_after_the_twin_wrote)
    response = pick(client, garment, ava)

    assert response.status_code == 200 and response.json()["reused"] is True
    assert TryOnJob.objects.count() == 1 and TryOnShare.objects.count() == 2
    job = TryOnJob.objects.get()
    # The loser's copy of the photo is gone; only the job's own is stored.
    photos = {name for name in stored_files(media_root) if name.startswith("tryon/photos/")}
    assert photos == {job.person_image.name}
    assert DailyUsage.objects.get(key="guests").count == 1


def _guest(session_key):
    from django_tryon.shopper import Owner

    return Owner(session_key=session_key)


# --- Erasure: the shopper's access goes, the picture stays for the others ---------------


def test_an_erasure_takes_only_the_shoppers_access_away(garment, ava, media_root):
    ana, bo = Client(), Client(REMOTE_ADDR="192.0.2.9")
    job = _succeed(TryOnJob.objects.get(pk=pick(ana, garment, ava).json()["id"]))
    pick(bo, garment, ava)
    files = {job.person_image.name, job.result_image.name}

    assert ana.delete(job_url(job.pk)).status_code == 204

    assert_error(ana.get(job_url(job.pk)), 404, "not_found")
    assert_error(ana.delete(job_url(job.pk)), 404, "not_found")
    seen_by_bo = bo.get(job_url(job.pk)).json()
    assert seen_by_bo["result_url"] == job.result_image.url
    assert files <= stored_files(media_root)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.photos_erased_at is None
    # Nothing names Ana any more; picking the pair again shares the same picture.
    assert TryOnShare.objects.count() == 1
    assert pick(ana, garment, ava).json()["id"] == str(job.pk)


def test_erasing_a_running_shared_job_does_not_cancel_it_for_the_others(garment, ava):
    ana, bo = Client(), Client(REMOTE_ADDR="192.0.2.9")
    job_id = pick(ana, garment, ava).json()["id"]
    pick(bo, garment, ava)

    assert ana.delete(job_url(job_id)).status_code == 204

    assert TryOnJob.objects.get(pk=job_id).status == "pending"
    assert bo.get(job_url(job_id)).json()["status"] == "pending"


def test_the_last_shoppers_erasure_leaves_the_shops_picture(client, garment, ava, media_root):
    job = _succeed(TryOnJob.objects.get(pk=pick(client, garment, ava).json()["id"]))
    assert client.delete(job_url(job.pk)).status_code == 204
    assert not TryOnShare.objects.exists()
    assert job.result_image.name in stored_files(media_root)
    # And the next shopper is served by it without a new paid call.
    assert pick(Client(), garment, ava).json()["id"] == str(job.pk)


def test_a_shopper_who_did_not_pick_the_pair_can_neither_read_nor_erase_it(client, garment, ava):
    job_id = pick(client, garment, ava).json()["id"]
    stranger = Client()
    stranger.get(MODEL_PHOTOS_URL)  # has a session of its own
    signed_in = Client()
    signed_in.force_login(get_user_model().objects.create_user("eve"))
    for visitor in (stranger, signed_in):
        assert_error(visitor.get(job_url(job_id)), 404, "not_found")
        assert_error(visitor.delete(job_url(job_id)), 404, "not_found")
    assert TryOnShare.objects.count() == 1
    assert client.get(job_url(job_id)).status_code == 200


def test_retention_never_erases_the_shops_picture(garment, ava, settings, media_root):
    settings.TRYON = {**settings.TRYON, "PERSON_IMAGE_TTL": 60, "RESULT_TTL": 60}
    job = _succeed(TryOnJob.objects.get(pk=pick(Client(), garment, ava).json()["id"]))
    TryOnJob.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(days=30))

    counts = purge_expired()

    assert counts["person_images"] == counts["results"] == 0
    assert {job.person_image.name, job.result_image.name} <= stored_files(media_root)


def test_signing_in_carries_the_guests_picks_over(client, garment, ava):
    user = get_user_model().objects.create_user("ana", password="pw")
    first = pick(client, garment, ava).json()
    # The user had picked the same pair from another browser already.
    other_browser = Client()
    other_browser.force_login(user)
    pick(other_browser, garment, ava)
    bo = _model_photo("Bo", color=(1, 2, 3))
    second = pick(client, garment, bo).json()

    client.login(username="ana", password="pw")

    assert set(TryOnShare.objects.values_list("user_id", "session_key")) == {(user.pk, "")}
    assert TryOnShare.objects.count() == 2  # one share per job, not one per pick
    for job_id in (first["id"], second["id"]):
        assert other_browser.get(job_url(job_id)).status_code == 200


# --- Quota and throttle: a pick that starts a paid call is a try-on ----------------------


def test_the_daily_quota_refuses_a_pick_that_would_pay_and_stores_nothing(
    client, garment, ava, settings, media_root
):
    settings.TRYON = {**settings.TRYON, "DAILY_QUOTA_GUEST": 1}
    assert pick(client, garment, ava).status_code == 201
    files = stored_files(media_root)
    bo = _model_photo("Bo", color=(1, 2, 3))
    files |= {bo.image.name}

    response = pick(client, garment, bo)

    assert_error(response, 429, "quota_exceeded")
    assert TryOnJob.objects.count() == 1
    assert stored_files(media_root) == files  # no copy of Bo's photo left behind
    # A pair whose picture exists costs nothing: still answered.
    assert pick(client, garment, ava).json()["reused"] is True


def test_the_guests_cap_refuses_a_pick_too(client, garment, ava, settings):
    settings.TRYON = {**settings.TRYON, "DAILY_QUOTA_ALL_GUESTS": 0}
    assert_error(pick(client, garment, ava), 429, "guest_quota_exceeded")
    assert not TryOnJob.objects.exists()


def test_picks_are_throttled_as_uploads_are(client, garment, ava, settings):
    settings.TRYON = {**settings.TRYON, "THROTTLE_RATE": "1/min"}
    assert pick(client, garment, ava).status_code == 201
    assert_error(pick(client, garment, ava), 429, "throttled")


@pytest.mark.parametrize("code", ["no_face", "provider_unavailable"])
def test_a_failed_shared_job_gives_the_count_back_whatever_the_reason(code, client, garment, ava):
    job = TryOnJob.objects.get(pk=pick(client, garment, ava).json()["id"])
    TryOnJob.objects.filter(pk=job.pk).update(status="failed", error_code=code)
    job.refresh_from_db()

    job_failed.send(sender=TryOnJob, job=job)

    # The photo was the shop's: a "photo" fault is not the shopper's.
    assert DailyUsage.objects.get(key__startswith="session:").count == 0


# --- The admin -----------------------------------------------------------------------


def test_staff_offer_photos_from_the_list(admin_client, ava):
    bo = _model_photo("Bo", offered=False)
    changelist = "/admin/django_tryon/modelphoto/"
    page = admin_client.get(changelist)
    assert 'name="form-0-offered_to_shoppers"' in page.content.decode()

    rows = {0: ava, 1: bo}
    data = {
        "form-TOTAL_FORMS": "2",
        "form-INITIAL_FORMS": "2",
        "_save": "Save",
    }
    for index, model_photo in rows.items():
        data[f"form-{index}-id"] = str(model_photo.pk)
    data["form-1-offered_to_shoppers"] = "on"  # Bo offered, Ava no longer
    response = admin_client.post(changelist, data)

    assert response.status_code == 302
    assert list(ModelPhoto.objects.offered()) == [bo]


def test_shoppers_pictures_do_not_fill_the_catalogue(client, garment, ava):
    _succeed(TryOnJob.objects.get(pk=pick(client, garment, ava).json()["id"]))
    plan = plan_generation([garment], [ava])
    assert plan.photos[0].new == [garment] and not plan.photos[0].with_result
