"""The daily quota: counting, its limit, the day boundary, and the credit given back."""

import zoneinfo
from datetime import date, datetime, timedelta

import pytest
from django.utils import timezone

from django_tryon import quota
from django_tryon.errors import SHOPPER_FAULT_CODES
from django_tryon.models import DailyUsage, TryOnJob
from django_tryon.signals import job_failed

NOON = datetime(2026, 3, 14, 12, 0, tzinfo=zoneinfo.ZoneInfo("UTC"))


@pytest.mark.django_db
def test_charges_up_to_the_limit_then_refuses():
    assert quota.charge("session:a", 2, NOON) == date(2026, 3, 14)
    assert quota.charge("session:a", 2, NOON) == date(2026, 3, 14)
    with pytest.raises(quota.QuotaExceeded) as caught:
        quota.charge("session:a", 2, NOON)
    assert caught.value.limit == 2
    assert caught.value.retry_after == 12 * 60 * 60
    assert DailyUsage.objects.get(key="session:a").count == 2
    # Another shopper, and the same shopper tomorrow, start from zero.
    assert quota.charge("session:b", 2, NOON)
    assert quota.charge("session:a", 2, NOON + timedelta(days=1)) == date(2026, 3, 15)


@pytest.mark.django_db
def test_a_limit_of_none_counts_and_never_refuses():
    for _try_on in range(3):
        assert quota.charge("user:1", None, NOON) == date(2026, 3, 14)
    assert DailyUsage.objects.get(key="user:1").count == 3


@pytest.mark.django_db
def test_a_limit_of_zero_refuses_at_once():
    with pytest.raises(quota.QuotaExceeded):
        quota.charge("user:1", 0, NOON)


@pytest.mark.django_db
def test_a_row_created_meanwhile_by_another_request_is_used(monkeypatch):
    """The race for the day's first try-on: the losing insert must not fail the request.

    The update-then-insert way of databases without an upsert (on SQLite and
    PostgreSQL, one ``INSERT ... ON CONFLICT`` leaves no such race).
    """
    monkeypatch.setattr(quota, "UPSERT_VENDORS", set())
    original = DailyUsage.objects.filter

    def exists_check_misses(*args, **kwargs):
        # The other request's row appears between this one's check and insert.
        monkeypatch.setattr(DailyUsage.objects, "filter", original)
        DailyUsage.objects.create(key="session:a", day=NOON.date(), count=1)
        return DailyUsage.objects.none()

    monkeypatch.setattr(DailyUsage.objects, "filter", exists_check_misses)
    quota.charge("session:a", 5, NOON)
    assert DailyUsage.objects.get(key="session:a").count == 2


@pytest.mark.django_db
def test_refund_never_goes_below_zero():
    quota.charge("session:a", 5, NOON)
    assert quota.refund("session:a", NOON.date()) == 1
    assert quota.refund("session:a", NOON.date()) == 0
    assert DailyUsage.objects.get().count == 0
    assert quota.used("session:a", NOON) == 0


def test_the_day_is_the_shops_local_day(settings):
    settings.TIME_ZONE = "Europe/Paris"
    late = datetime(2026, 3, 14, 22, 30, tzinfo=zoneinfo.ZoneInfo("UTC"))  # 23:30 in Paris
    assert timezone.localdate(late) == date(2026, 3, 14)
    assert quota.seconds_until_tomorrow(late) == 30 * 60


def _failed_job(make_job, code):
    day = NOON.date()
    job = make_job(quota_key="session:a", quota_day=day, status="failed", error_code=code)
    DailyUsage.objects.create(key="session:a", day=day, count=3)
    return job


@pytest.mark.parametrize("code", ["provider_unavailable", "out_of_credits", "expired"])
def test_a_failure_that_is_not_the_shoppers_gives_the_credit_back(code, make_job):
    job = _failed_job(make_job, code)

    job_failed.send(sender=TryOnJob, job=job)

    assert DailyUsage.objects.get().count == 2
    job.refresh_from_db()
    assert job.quota_key == ""


def test_the_credit_is_given_back_once_however_often_the_signal_comes(make_job):
    job = _failed_job(make_job, "provider_error")
    job_failed.send(sender=TryOnJob, job=job)
    job_failed.send(sender=TryOnJob, job=job)
    assert DailyUsage.objects.get().count == 2


@pytest.mark.parametrize("code", sorted(SHOPPER_FAULT_CODES))
def test_a_failure_caused_by_the_photo_still_counts(code, make_job):
    job = _failed_job(make_job, code)
    job_failed.send(sender=TryOnJob, job=job)
    assert DailyUsage.objects.get().count == 3


def test_jobs_that_were_never_counted_give_nothing_back(make_job):
    DailyUsage.objects.create(key="session:a", day=NOON.date(), count=3)
    job = make_job(status="failed", error_code="provider_error")  # staff job: no quota key
    job_failed.send(sender=TryOnJob, job=job)
    assert DailyUsage.objects.get().count == 3


@pytest.mark.django_db
@pytest.mark.parametrize("upsert", [True, False], ids=["upsert", "update-then-insert"])
def test_both_ways_of_counting_count_and_refuse_alike(monkeypatch, upsert):
    if not upsert:
        monkeypatch.setattr(quota, "UPSERT_VENDORS", set())
    caps = [quota.Cap("session", "session:a", 2), quota.Cap("guests", "guests", 3)]
    assert quota.charge_caps(caps, NOON) == (["session:a", "guests"], NOON.date())
    assert quota.charge_caps(caps, NOON)[0] == ["session:a", "guests"]
    with pytest.raises(quota.QuotaExceeded) as caught:
        quota.charge_caps(caps, NOON)
    assert caught.value.scope == "session"
    other = [quota.Cap("session", "session:b", 2), quota.Cap("guests", "guests", 3)]
    quota.charge_caps(other, NOON)
    with pytest.raises(quota.QuotaExceeded) as caught:
        quota.charge_caps(other, NOON)  # the guests' cap is used: session:b not counted
    assert caught.value.scope == "guests"
    counts = dict(DailyUsage.objects.values_list("key", "count"))
    assert counts == {"session:a": 2, "session:b": 1, "guests": 3}
