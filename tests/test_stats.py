"""The overview's figures against jobs made with known timings."""

from datetime import timedelta

import pytest
import responses
from django.core.cache import cache
from django.utils import timezone

from django_tryon import stats
from django_tryon.backends.base import Credits, TryOnBackend
from django_tryon.models import JobStatus, TryOnJob
from tests.support import contract

NOW = timezone.now().replace(microsecond=0)
CREDITS_URL = "https://api.tryon.test" + contract.CREDITS_PATH


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def jobs(garment):
    """Jobs at known times: ``make(status, age, seconds=..., ...)``."""

    def make(status, age=timedelta(hours=1), *, seconds=None, **fields):
        created = NOW - age
        if seconds is not None:
            fields.update(submitted_at=created, finished_at=created + timedelta(seconds=seconds))
        return TryOnJob.objects.create(garment=garment, status=status, created_at=created, **fields)

    return make


# Plain figures ------------------------------------------------------------------------------


def test_percentile_interpolates_between_ranks():
    values = [timedelta(seconds=s) for s in range(1, 101)]
    assert stats.percentile(values, 0.5) == timedelta(seconds=50.5)
    assert stats.percentile(values, 0.95) == timedelta(seconds=95.05)
    assert stats.percentile(values, 0) == timedelta(seconds=1)
    assert stats.percentile(values, 1) == timedelta(seconds=100)
    assert stats.percentile([timedelta(seconds=7)], 0.95) == timedelta(seconds=7)
    assert stats.percentile([], 0.5) is None
    with pytest.raises(ValueError):
        stats.percentile(values, 95)


def test_status_counts_name_every_status(jobs):
    jobs(JobStatus.SUCCEEDED)
    jobs(JobStatus.SUCCEEDED)
    jobs(JobStatus.FAILED)
    counts = stats.status_counts(TryOnJob.objects.all())
    assert list(counts) == JobStatus.values
    assert counts[JobStatus.SUCCEEDED] == 2
    assert counts[JobStatus.FAILED] == 1
    assert counts[JobStatus.PENDING] == 0


def test_success_rate_leaves_out_canceled_and_active_jobs(jobs):
    assert stats.success_rate(TryOnJob.objects.all()) is None
    for status in (JobStatus.SUCCEEDED,) * 3 + (JobStatus.FAILED, JobStatus.EXPIRED):
        jobs(status)
    jobs(JobStatus.CANCELED)
    jobs(JobStatus.PROCESSING)
    assert stats.success_rate(TryOnJob.objects.all()) == pytest.approx(0.6)


def test_durations_take_succeeded_jobs_only_and_the_latest_first(jobs):
    for seconds in (30, 10, 20):
        jobs(JobStatus.SUCCEEDED, seconds=seconds)
    jobs(JobStatus.FAILED, seconds=999)
    jobs(JobStatus.SUCCEEDED)  # never submitted: no duration
    old = jobs(JobStatus.SUCCEEDED, age=timedelta(days=3), seconds=500)
    assert stats.durations(TryOnJob.objects.all()) == [
        timedelta(seconds=s) for s in (10, 20, 30, 500)
    ]
    # The sample is bounded to the latest results: the oldest one falls out.
    sample = stats.durations(TryOnJob.objects.all(), limit=3)
    assert timedelta(seconds=500) not in sample and len(sample) == 3
    assert old.duration == timedelta(seconds=500)


def test_error_counts_most_frequent_first(jobs):
    for code in ("ERROR_NO_FACE_IN_FILE", "AI_SERVICE_ERROR", "ERROR_NO_FACE_IN_FILE"):
        jobs(JobStatus.FAILED, provider_error_code=code)
    jobs(JobStatus.SUCCEEDED)
    assert stats.error_counts(TryOnJob.objects.all()) == [
        ("ERROR_NO_FACE_IN_FILE", 2),
        ("AI_SERVICE_ERROR", 1),
    ]


# The windows ------------------------------------------------------------------------------------


def test_the_overview_against_jobs_with_known_timings(jobs):
    # Last 24 hours: 4 results in 10, 20, 30 and 100 s; 1 failure; 1 queued.
    for seconds in (10, 20, 30, 100):
        jobs(JobStatus.SUCCEEDED, age=timedelta(hours=2), seconds=seconds)
    jobs(JobStatus.FAILED, age=timedelta(hours=3), provider_error_code="ERROR_NO_FACE_IN_FILE")
    jobs(JobStatus.QUEUED, age=timedelta(minutes=5))
    # Earlier this week: 1 result in 1000 s, 1 expired, 1 canceled.
    jobs(JobStatus.SUCCEEDED, age=timedelta(days=2), seconds=1000)
    jobs(JobStatus.EXPIRED, age=timedelta(days=3), error_code="expired")
    jobs(JobStatus.CANCELED, age=timedelta(days=4))
    # Older than a week: left out of both windows.
    jobs(JobStatus.FAILED, age=timedelta(days=9), provider_error_code="OLD")

    day, week = stats.overview(now=NOW)

    assert day.counts[JobStatus.SUCCEEDED] == 4
    assert day.counts[JobStatus.FAILED] == 1
    assert day.counts[JobStatus.QUEUED] == 1
    assert day.total == 6
    assert day.success_rate == pytest.approx(4 / 5)
    assert day.success_percent == 80.0
    assert day.p50 == timedelta(seconds=25)
    assert day.p95 == timedelta(seconds=30 + 0.85 * 70)  # rank 2.85 of [10, 20, 30, 100]
    assert day.sample_size == 4
    assert day.provider_errors == [("ERROR_NO_FACE_IN_FILE", 1)]

    assert week.total == 9
    assert week.counts[JobStatus.EXPIRED] == 1 and week.counts[JobStatus.CANCELED] == 1
    assert week.success_rate == pytest.approx(5 / 7)
    assert week.p50 == timedelta(seconds=30)
    assert week.p95 == timedelta(seconds=100 + 0.8 * 900)
    assert week.job_errors == [("expired", 1)]
    assert ("OLD", 1) not in week.provider_errors


def test_an_empty_window_has_no_rate_and_no_percentiles(db):
    day, _week = stats.overview(now=NOW)
    assert day.total == 0
    assert day.success_rate is None and day.success_percent is None
    assert day.p50 is None and day.p95 is None


def test_backlog_counts_active_jobs_and_overdue_ones(jobs):
    jobs(JobStatus.PENDING, next_attempt_at=NOW - timedelta(minutes=10))
    jobs(JobStatus.QUEUED, next_attempt_at=NOW + timedelta(seconds=5))
    jobs(JobStatus.PROCESSING, age=timedelta(days=30), next_attempt_at=NOW)
    jobs(JobStatus.FAILED, next_attempt_at=NOW - timedelta(days=1))
    # Held by a worker right now: being moved, not overdue.
    jobs(
        JobStatus.PENDING,
        next_attempt_at=NOW - timedelta(minutes=10),
        lease_owner="worker-1",
        lease_expires_at=NOW + timedelta(minutes=4),
    )
    backlog = stats.backlog(now=NOW)
    assert backlog["counts"] == {
        JobStatus.PENDING: 2,
        JobStatus.QUEUED: 1,
        JobStatus.PROCESSING: 1,
    }
    assert backlog["overdue"] == 1


# Credits ----------------------------------------------------------------------------------------


@responses.activate
def test_credits_from_the_provider_are_cached_for_a_minute(db):
    responses.get(CREDITS_URL, json={**contract.public_fields(), "data": {"credits": 1234}})
    report = stats.credits_report()
    assert report.remaining == 1234 and report.problem == "" and not report.low
    assert responses.calls[0].request.headers[contract.API_KEY_HEADER] == "test-key"
    stats.credits_report()
    assert len(responses.calls) == 1
    stats.credits_report(refresh=True)
    assert len(responses.calls) == 2


@responses.activate
def test_low_credits_are_flagged(settings):
    settings.TRYON = {**settings.TRYON, "CREDITS_WARNING_THRESHOLD": 50}
    responses.get(CREDITS_URL, json={**contract.public_fields(), "data": {"credits": 12}})
    report = stats.credits_report()
    assert report.remaining == 12 and report.low and report.threshold == 50


@responses.activate
def test_a_failing_credits_query_gives_a_readable_line_and_is_cached(db):
    responses.get(CREDITS_URL, status=503, json=contract.error_answer(503, "AI_SERVICE_ERROR"))
    report = stats.credits_report()
    assert report.remaining is None and not report.low
    assert report.problem.startswith("The provider did not tell the remaining credits:")
    assert "HTTP 503" in report.problem
    stats.credits_report()
    assert len(responses.calls) == 1


@responses.activate
def test_a_refused_api_key_is_said_plainly(db):
    responses.get(CREDITS_URL, status=401, json=contract.error_answer(401, "ERROR_USER_NOT_EXISTS"))
    report = stats.credits_report()
    assert "refused the API key" in report.problem


class SilentBackend(TryOnBackend):
    """A provider that cannot tell its balance."""

    provider_name = "silent"


class BrokenBackend(TryOnBackend):
    provider_name = "broken"

    def credits(self):
        raise KeyError("balance")


class RichBackend(TryOnBackend):
    provider_name = "rich"
    timeouts = []

    def credits(self):
        RichBackend.timeouts.append(self.timeout)
        return Credits(remaining=10_000)


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        ("SilentBackend", "The silent backend does not report remaining credits."),
        ("BrokenBackend", "The provider did not tell the remaining credits: KeyError: 'balance'"),
        ("NoSuchBackend", "The try-on backend cannot be built:"),
    ],
)
def test_backends_that_cannot_say(settings, backend, expected):
    settings.TRYON = {**settings.TRYON, "BACKEND": f"tests.test_stats.{backend}"}
    report = stats.credits_report()
    assert report.remaining is None
    assert report.problem.startswith(expected)


def test_the_credits_query_uses_short_timeouts(settings):
    settings.TRYON = {**settings.TRYON, "BACKEND": "tests.test_stats.RichBackend"}
    assert stats.credits_report().remaining == 10_000
    assert RichBackend.timeouts[-1] == stats.CREDITS_TIMEOUT


def test_the_cache_belongs_to_one_account(settings):
    settings.TRYON = {**settings.TRYON, "BACKEND": "tests.test_stats.RichBackend"}
    assert stats.credits_report().remaining == 10_000
    settings.TRYON = {**settings.TRYON, "BACKEND": "tests.test_stats.SilentBackend"}
    assert stats.credits_report().remaining is None
