"""Job state changes: which status may follow which, what each writes, when signals fire."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone, translation

from django_tryon import transitions
from django_tryon.admin import operations
from django_tryon.backends import base
from django_tryon.models import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    DailyUsage,
    JobStatus,
    TryOnJob,
)
from django_tryon.retention import erase_job
from django_tryon.signals import job_failed, job_succeeded


@pytest.fixture
def sent():
    """The (signal name, job pk, job status) of every job signal sent during the test."""
    received = []

    def on_success(sender, job, **kwargs):
        received.append(("succeeded", job.pk, job.status))

    def on_failure(sender, job, **kwargs):
        received.append(("failed", job.pk, job.status))

    job_succeeded.connect(on_success)
    job_failed.connect(on_failure)
    yield received
    job_succeeded.disconnect(on_success)
    job_failed.disconnect(on_failure)


# The table -------------------------------------------------------------------------


def test_every_status_has_its_followers_and_ended_ones_go_back_only_by_retry():
    assert set(transitions.FOLLOWS) == set(JobStatus.values)
    for status in TERMINAL_STATUSES:
        assert transitions.FOLLOWS[status] <= {JobStatus.PENDING}
    for status in ACTIVE_STATUSES:
        # Every job still on its way can end each way, and never goes back to pending.
        assert set(TERMINAL_STATUSES) <= transitions.FOLLOWS[status]
        assert JobStatus.PENDING not in transitions.FOLLOWS[status]
    assert set(transitions.RETRYABLE_STATUSES) == {JobStatus.FAILED, JobStatus.EXPIRED}


def test_the_browser_lists_split_every_status_into_final_and_working():
    lists = transitions.browser_status_lists()
    assert lists == {
        "final": ["succeeded", "failed", "expired", "canceled"],
        "working": ["pending", "queued", "processing"],
    }
    assert set(lists["final"]) | set(lists["working"]) == set(JobStatus.values)
    assert all(type(status) is str for status in lists["final"] + lists["working"])


@pytest.mark.parametrize(
    "state, status",
    [
        (base.QUEUED, JobStatus.QUEUED),
        (base.PROCESSING, JobStatus.PROCESSING),
        (base.SUCCEEDED, JobStatus.SUCCEEDED),
        (base.FAILED, JobStatus.FAILED),
    ],
)
def test_each_backend_state_has_its_job_status(state, status):
    assert transitions.status_for_state(state) == status


@pytest.mark.parametrize("state", ["pending", "canceled", "done", ""])
def test_a_state_the_backend_interface_does_not_define_is_refused(state):
    with pytest.raises(ValueError, match="Unknown provider task state"):
        transitions.status_for_state(state)


def test_a_change_checks_the_status_it_follows(make_job):
    now = timezone.now()
    done = make_job(status="succeeded")
    for change in (
        transitions.sent_back(now),
        transitions.canceled(now),
        transitions.failed("provider_error", now=now),
        transitions.retry_later(attempts=1, next_attempt_at=now),
    ):
        with pytest.raises(transitions.IllegalTransition, match="succeeded cannot become"):
            change.check(done)
    transitions.canceled(now).check(make_job(status="processing"))
    with pytest.raises(transitions.IllegalTransition):
        transitions.moved(JobStatus.SUCCEEDED, next_attempt_at=now)


# Applied without a lease -------------------------------------------------------------


def test_a_change_applies_only_to_jobs_in_a_status_it_follows(make_job):
    now = timezone.now()
    failed, expired, succeeded, running = (
        make_job(status="failed", error_code="provider_error", attempts=3),
        make_job(status="expired", error_code="expired"),
        make_job(status="succeeded"),
        make_job(status="processing", lease_owner="w:1", lease_expires_at=now),
    )
    ids = [job.pk for job in (failed, expired, succeeded, running)]

    changed = transitions.apply(ids, transitions.sent_back(now), now=now)

    assert sorted(changed) == sorted([failed.pk, expired.pk])
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.error_code) == ("pending", 0, "")
    assert (failed.started_at, failed.updated_at) == (now, now)
    assert TryOnJob.objects.get(pk=succeeded.pk).status == "succeeded"
    assert TryOnJob.objects.get(pk=running.pk).lease_owner == "w:1"


def test_a_status_change_ends_the_lease_of_the_worker_holding_the_job(make_job):
    now = timezone.now()
    job = make_job(
        status="queued",
        lease_owner="w:1",
        lease_expires_at=now + timedelta(minutes=5),
        submit_started_at=now,
    )
    assert transitions.apply([job.pk], transitions.canceled(now), now=now) == [job.pk]
    job.refresh_from_db()
    assert (job.status, job.lease_owner, job.lease_expires_at) == ("canceled", "", None)
    assert job.submit_started_at is None
    # ...whereas making a job due leaves a worker's lease as it is.
    held = make_job(status="queued", lease_owner="w:2", lease_expires_at=now)
    assert transitions.apply([held.pk], transitions.made_due(now), now=now) == [held.pk]
    assert TryOnJob.objects.get(pk=held.pk).lease_owner == "w:2"


def test_the_expected_status_and_match_narrow_a_change(make_job):
    now = timezone.now()
    job = make_job(status="queued")
    assert (
        transitions.apply([job.pk], transitions.canceled(now), now=now, expected=["pending"]) == []
    )
    photo = job.person_image.name
    assert (
        transitions.apply([job.pk], transitions.canceled(now), now=now, person_image="other") == []
    )
    assert transitions.apply(
        [job.pk], transitions.canceled(now), now=now, expected=["queued"], person_image=photo
    ) == [job.pk]


def test_a_signal_goes_once_the_change_is_committed_and_never_if_rolled_back(
    make_job, sent, django_capture_on_commit_callbacks
):
    now = timezone.now()
    jobs = [make_job(status="queued") for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        changed = transitions.apply(
            [job.pk for job in jobs], transitions.failed("task_failed", now=now), now=now
        )
        assert sent == []  # not before the commit
    assert sorted(sent) == sorted(("failed", pk, "failed") for pk in changed)
    assert len(changed) == 3

    other = make_job(status="queued")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                transitions.apply([other.pk], transitions.expired(now), now=now)
                raise RuntimeError("the request fails after the change")
        except RuntimeError:
            pass
    assert callbacks == []
    assert len(sent) == 3
    assert TryOnJob.objects.get(pk=other.pk).status == "queued"


def test_a_change_already_made_elsewhere_sends_nothing(
    make_job, sent, django_capture_on_commit_callbacks
):
    now = timezone.now()
    job = make_job(status="failed", error_code="task_failed")
    with django_capture_on_commit_callbacks(execute=True):
        assert transitions.apply([job.pk], transitions.expired(now), now=now) == []
    assert sent == []


# Cancelling: one way, one language -------------------------------------------------


def test_cancel_gives_the_shoppers_credit_back_in_the_same_transaction(make_job):
    now = timezone.now()
    day = timezone.localdate(now)
    DailyUsage.objects.create(key="session:a", day=day, count=2)
    job = make_job(status="pending", quota_key="session:a", quota_day=day)
    try:
        with transaction.atomic():
            transitions.cancel([job.pk], now=now)
            assert DailyUsage.objects.get().count == 1
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    assert DailyUsage.objects.get().count == 2  # neither the cancel nor its credit stayed
    assert transitions.cancel([job.pk], now=now) == [job.pk]
    assert transitions.cancel([job.pk], now=now) == []  # once only
    assert DailyUsage.objects.get().count == 1


@pytest.mark.parametrize("site, shopper", [("en", "fr"), ("fr", "en")])
def test_a_cancel_stores_its_message_in_the_sites_language_whoever_cancels(
    settings, make_job, site, shopper
):
    settings.LANGUAGE_CODE = site
    with translation.override(site):
        expected = str(transitions.message_for("canceled"))
    by_staff, by_shopper = make_job(), make_job()
    with translation.override(shopper):  # the request's language, not the site's
        operations.cancel_jobs(TryOnJob.objects.filter(pk=by_staff.pk))
        erase_job(by_shopper)
    stored = set(TryOnJob.objects.values_list("error_message", flat=True))
    assert stored == {expected}
    with translation.override("fr"):
        french = str(transitions.message_for("canceled"))
    with translation.override("en"):
        assert french != str(transitions.message_for("canceled"))


# What staff read ----------------------------------------------------------------------


def test_an_error_detail_never_holds_the_api_key(settings):
    settings.TRYON = {"API_KEY": "sk-live-123456\n"}  # as read from a secret file
    err = ValueError("Invalid header value b'sk-live-123456\\n' and again sk-live-123456")
    detail = transitions.error_detail(err)
    assert "sk-live" not in detail
    assert detail.count("[redacted]") == 2  # the one redaction (django_tryon.redaction)
    assert transitions.error_detail(ValueError("x" * 5000)) == "x" * transitions.MAX_DETAIL_LENGTH
    assert transitions.error_detail(TimeoutError()) == "TimeoutError"


def test_a_success_or_a_retry_by_staff_clears_the_error_detail(make_job):
    now = timezone.now()
    job = make_job(status="failed", error_code="provider_unavailable", error_detail="refused")
    transitions.apply([job.pk], transitions.sent_back(now), now=now)
    assert TryOnJob.objects.get(pk=job.pk).error_detail == ""
    assert transitions.succeeded(result_name="r.png", now=now).fields["error_detail"] == ""
