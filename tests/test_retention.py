"""Retention: what the purge erases, when, what it keeps, and the command."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.utils import timezone

from django_tryon import retention
from django_tryon.models import DailyUsage, TryOnJob
from django_tryon.retention import erase_job, purge_expired
from tests.support.images import make_image_bytes
from tests.support.media import stored_files

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@pytest.fixture
def ended_job(make_job):
    """A finished shopper job with a photo and a result, ended ``ago`` before now."""

    def make(ago, status="succeeded", source="shopper", **fields):
        job = make_job(
            status=status,
            source=source,
            finished_at=timezone.now() - ago,
            photo_digest="d" * 64,
            session_key="s1",
            **fields,
        )
        job.result_image.save("r.png", ContentFile(make_image_bytes(image_format="PNG")))
        return job

    return make


def names(job):
    return {job.person_image.name, job.result_image.name} - {""}


def test_person_photos_go_after_a_day_results_after_thirty(ended_job, media_root):
    fresh = ended_job(23 * HOUR)
    day_old = ended_job(25 * HOUR)
    month_old = ended_job(31 * DAY)
    fresh_files, month_old_files = names(fresh), names(month_old)

    counts = purge_expired()

    assert counts == {"person_images": 2, "results": 1, "usage_rows": 0, "errors": 0}
    files = stored_files(media_root)
    assert fresh_files <= files
    assert day_old.result_image.name in files and day_old.person_image.name not in files
    assert not month_old_files & files
    for job in (fresh, day_old, month_old):
        job.refresh_from_db()
    assert fresh.person_image and fresh.photos_erased_at is None
    assert not day_old.person_image and day_old.result_image and day_old.photos_erased_at
    assert day_old.photo_digest  # still reusable while its result is kept
    assert not month_old.person_image and not month_old.result_image
    assert month_old.photo_digest == ""
    # Nothing left to do: a second purge erases nothing.
    assert purge_expired()["person_images"] == 0


@pytest.mark.parametrize("status", ["failed", "expired", "canceled"])
def test_every_ended_job_loses_its_photo(status, ended_job):
    job = ended_job(2 * DAY, status=status)
    assert purge_expired()["person_images"] == 1
    job.refresh_from_db()
    assert not job.person_image


def test_running_jobs_keep_their_photo_however_old(make_job, media_root):
    job = make_job(status="processing", created_at=timezone.now() - 3 * DAY)
    assert purge_expired()["person_images"] == 0
    assert job.person_image.name in stored_files(media_root)


def test_an_ended_job_without_an_end_time_counts_from_its_last_change(make_job):
    job = make_job(status="canceled")
    TryOnJob.objects.filter(pk=job.pk).update(updated_at=timezone.now() - 2 * DAY)
    assert purge_expired()["person_images"] == 1


def test_admin_made_jobs_are_kept(ended_job, media_root):
    job = ended_job(365 * DAY, source="admin")
    assert purge_expired() == {"person_images": 0, "results": 0, "usage_rows": 0, "errors": 0}
    assert names(job) <= stored_files(media_root)


def test_retention_periods_are_settings_and_none_keeps(ended_job, settings, media_root):
    job = ended_job(2 * HOUR)
    settings.TRYON = {**settings.TRYON, "PERSON_IMAGE_TTL": 3600, "RESULT_TTL": None}
    assert purge_expired()["person_images"] == 1
    older = ended_job(400 * DAY)
    assert purge_expired()["results"] == 0
    assert older.result_image.name in stored_files(media_root)
    settings.TRYON = {**settings.TRYON, "PERSON_IMAGE_TTL": None, "RESULT_TTL": 3600}
    another = ended_job(2 * HOUR)
    assert purge_expired() == {"person_images": 0, "results": 3, "usage_rows": 0, "errors": 0}
    assert another.person_image.name in stored_files(media_root)
    job.refresh_from_db()
    assert not job.result_image


def test_a_row_naming_a_file_already_gone_is_cleared(ended_job, media_root):
    """What a crash between deleting the file and clearing the row leaves behind."""
    job = ended_job(2 * DAY)
    job.person_image.storage.delete(job.person_image.name)
    assert purge_expired()["person_images"] == 1
    job.refresh_from_db()
    assert not job.person_image


def test_a_storage_fault_keeps_the_row_and_is_tried_again(ended_job, monkeypatch, caplog):
    first, second = ended_job(2 * DAY), ended_job(2 * DAY)
    storage = TryOnJob._meta.get_field("person_image").storage
    original = storage.delete
    failing = {first.person_image.name}

    def flaky_delete(name):
        if name in failing:
            raise OSError("storage is down")
        original(name)

    monkeypatch.setattr(storage, "delete", flaky_delete)

    counts = purge_expired()

    assert counts["person_images"] == 1 and counts["errors"] == 1
    assert "will try again" in caplog.text
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.person_image and not second.person_image  # row and file still together
    failing.clear()
    assert purge_expired()["person_images"] == 1


def test_purges_in_batches(ended_job, monkeypatch):
    monkeypatch.setattr(retention, "BATCH_SIZE", 2)
    for _ in range(5):
        ended_job(2 * DAY)
    assert purge_expired()["person_images"] == 5
    assert not TryOnJob.objects.exclude(person_image="").exists()


def test_old_daily_usage_rows_are_removed(db):
    today = timezone.localdate()
    for age in (0, 1, 2, 3, 10):
        DailyUsage.objects.create(key="session:a", day=today - timedelta(days=age), count=1)
    assert purge_expired()["usage_rows"] == 2
    assert DailyUsage.objects.count() == 3


def test_erasing_a_job_whose_result_arrives_meanwhile(ended_job, monkeypatch, media_root):
    """The worker stores a result between the erasure's read and its write: the
    erasure notices (its conditional update misses) and erases the new file too."""
    job = ended_job(HOUR, status="processing")
    TryOnJob.objects.filter(pk=job.pk).update(result_image="")
    storage = TryOnJob._meta.get_field("person_image").storage
    original = storage.delete
    arrived = []

    def delete_while_the_worker_finishes(name):
        original(name)
        if not arrived:
            arrived.append(storage.save("tryon/results/late.png", ContentFile(b"png")))
            TryOnJob.objects.filter(pk=job.pk).update(status="succeeded", result_image=arrived[0])

    monkeypatch.setattr(storage, "delete", delete_while_the_worker_finishes)

    erased = erase_job(job)

    assert not erased.result_image and not erased.person_image
    assert erased.status == "succeeded"
    assert not any("late" in name for name in stored_files(media_root))


def test_erasing_gives_up_on_a_job_that_never_settles(make_job, monkeypatch):
    job = make_job()
    monkeypatch.setattr(retention, "MAX_ERASE_TRIES", 2)
    storage = TryOnJob._meta.get_field("person_image").storage
    monkeypatch.setattr(
        storage,
        "delete",
        lambda name: TryOnJob.objects.filter(pk=job.pk).update(
            status="queued" if TryOnJob.objects.get(pk=job.pk).status != "queued" else "pending"
        ),
    )
    with pytest.raises(retention.EraseConflict):
        erase_job(job)


def test_the_command_purges_and_reports(ended_job, capsys):
    ended_job(2 * DAY)
    ended_job(40 * DAY)

    call_command("tryon_purge")
    out = capsys.readouterr().out
    assert "Erased 2 person photo(s) and 1 result(s)" in out

    ended_job(2 * DAY)
    call_command("tryon_purge", verbosity=0)
    assert capsys.readouterr().out == ""
    assert not TryOnJob.objects.exclude(person_image="").filter(
        finished_at__lt=timezone.now() - DAY
    )


def test_the_command_reports_files_it_could_not_erase(ended_job, monkeypatch, capsys):
    ended_job(2 * DAY)
    storage = TryOnJob._meta.get_field("person_image").storage

    def broken(name):
        raise OSError("down")

    monkeypatch.setattr(storage, "delete", broken)
    call_command("tryon_purge")
    assert "1 file(s) could not be erased" in capsys.readouterr().err


def test_the_clock_can_be_given(ended_job):
    job = ended_job(HOUR)
    assert purge_expired(now=timezone.now() + HOUR)["person_images"] == 0
    assert purge_expired(now=timezone.now() + 2 * DAY)["person_images"] == 1
    job.refresh_from_db()
    assert job.photos_erased_at > timezone.now() + DAY
