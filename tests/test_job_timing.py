"""``check_again_in`` in the job JSON: when a browser following a job asks again."""

from datetime import timedelta

import pytest
from django.utils import timezone

from django_tryon.api import timing
from django_tryon.api.timing import check_again_in, finding_step
from django_tryon.models import TryOnJob
from django_tryon.worker import Worker
from tests.api_helpers import (
    fresh_throttle_cache,  # noqa: F401  (autouse fixture)
    job_url,
    post_job,
)

NOW = timezone.now()
LEASE = 300
STEP = 0.8  # seconds from a query's due time to its result stored


@pytest.fixture(autouse=True)
def lease(settings):
    settings.TRYON = {**getattr(settings, "TRYON", {}), "LEASE_SECONDS": LEASE}


@pytest.fixture(autouse=True)
def steps_forgotten():
    timing.forget_steps()
    yield
    timing.forget_steps()


def job(status="queued", due_in=0.0, held_for=None):
    """An unsaved job: due ``due_in`` seconds after NOW, held by a worker for
    ``held_for`` seconds (or free)."""
    lease_expires_at = None
    if held_for is not None:
        lease_expires_at = NOW - timedelta(seconds=held_for) + timedelta(seconds=LEASE)
    return TryOnJob(
        status=status,
        provider="ailabapi",
        next_attempt_at=NOW + timedelta(seconds=due_in),
        lease_expires_at=lease_expires_at,
    )


def hint(job):
    return check_again_in(job, NOW, step=STEP)


@pytest.mark.parametrize("status", ["succeeded", "failed", "expired", "canceled"])
def test_an_ended_job_says_nothing_more_will_come(status):
    assert hint(job(status, due_in=3)) is None


@pytest.mark.parametrize("status", ["queued", "processing"])
def test_when_the_next_query_would_have_stored_its_result(status):
    assert hint(job(status, due_in=3)) == 3 + STEP
    assert hint(job(status, due_in=0.5)) == 0.5 + STEP
    # Due a moment ago, the worker waking: still the end of that step.
    assert hint(job(status, due_in=-0.3)) == pytest.approx(STEP - 0.3)


def test_a_far_away_query_is_still_checked_now_and_then():
    # A retry after a fault or a rate-limit pause: a cancel elsewhere is still seen.
    assert hint(job(due_in=600)) == timing.LONGEST


@pytest.mark.parametrize(
    "held_for, expected",
    [
        (0.0, STEP),  # the step just began: its usual end
        (0.5, STEP - 0.5),
        (0.75, timing.HELD_MIN),
        (STEP + 0.1, timing.HELD_MIN),  # past its usual end: soon, then less often
        (STEP + 1.0, 1.0),
        (STEP + 30, timing.HELD_MAX),
    ],
)
def test_while_the_worker_queries_and_stores(held_for, expected):
    assert hint(job(due_in=-held_for, held_for=held_for)) == pytest.approx(expected)


@pytest.mark.parametrize(
    "held_for, expected", [(0.0, timing.HELD_MIN), (0.6, 0.6), (30, timing.HELD_MAX)]
)
def test_while_the_worker_submits_sooner_then_less_often(held_for, expected):
    # A provider may answer the submit with the result: that is worth seeing at once.
    assert hint(job("pending", due_in=-held_for, held_for=held_for)) == expected


def test_a_lease_that_ran_out_is_no_longer_a_step_under_way():
    stale = job(due_in=-5, held_for=LEASE + 10)
    assert hint(stale) == pytest.approx(5 - STEP)


@pytest.mark.parametrize(
    "late, expected",
    [(0.0, timing.PICKUP), (0.5, timing.PICKUP), (2.0, 2.0), (60, timing.LATE_MAX)],
)
def test_a_new_job_after_the_worker_had_time_to_submit_it(late, expected):
    # Then less and less often while no worker takes it (a busy one, or none running).
    assert hint(job("pending", due_in=-late)) == expected


def test_a_submit_retried_later_is_asked_about_after_it():
    assert hint(job("pending", due_in=4)) == 4 + timing.PICKUP


@pytest.mark.parametrize("late, expected", [(STEP + 1, 1.0), (STEP + 60, timing.LATE_MAX)])
def test_a_late_worker_is_asked_about_less_and_less_often(late, expected):
    assert hint(job(due_in=-late)) == pytest.approx(max(timing.LATE_MIN, expected))


def succeeded(make_job, step, provider="ailabapi", polls=2):
    finished = timezone.now()
    return make_job(
        status="succeeded",
        provider=provider,
        polls=polls,
        finished_at=finished,
        next_attempt_at=finished - timedelta(seconds=step),
    )


def test_the_step_is_learned_from_the_providers_recent_results(make_job):
    assert finding_step("ailabapi") == timing.DEFAULT_STEP
    for step in (0.4, 0.5, 0.6, 0.7, 9.0):
        succeeded(make_job, step)
    # Not yet: the step read a moment ago is kept a while.
    assert finding_step("ailabapi") == timing.DEFAULT_STEP
    timing.forget_steps()
    assert finding_step("ailabapi") == 0.6  # the median: one slow download moves nothing
    # Results of another provider, made by the submit alone, or with a stopped worker
    # between the due time and the query are not steps.
    for _ in range(5):
        succeeded(make_job, 3.0, provider="fal")
        succeeded(make_job, 3.0, polls=0)
        succeeded(make_job, timing.MAX_STEP + 5)
    timing.forget_steps()
    assert finding_step("ailabapi") == 0.6
    assert finding_step("fal") == 3.0


def test_the_api_answers_with_it(client, garment):
    created = post_job(client, garment).json()
    assert created["check_again_in"] == timing.PICKUP
    TryOnJob.objects.filter(pk=created["id"]).update(
        status="queued", next_attempt_at=timezone.now() + timedelta(seconds=4)
    )
    seconds = client.get(job_url(created["id"])).json()["check_again_in"]
    assert 3.5 < seconds <= 4 + timing.DEFAULT_STEP
    TryOnJob.objects.filter(pk=created["id"]).update(status="failed", finished_at=timezone.now())
    assert client.get(job_url(created["id"])).json()["check_again_in"] is None


def test_it_follows_the_workers_own_plan_and_steps(client, garment, settings, provider):
    settings.TRYON = {
        "API_KEY": "test-key",
        "BASE_URL": provider.url,
        "POLL_INTERVAL": 3,
        "READ_TIMEOUT": 5,
        "LEASE_SECONDS": LEASE,
    }
    created = post_job(client, garment).json()
    with Worker(worker_id="test") as worker:
        worker.run_pass()  # the submit: the next query is planned
        job = TryOnJob.objects.get(pk=created["id"])
        assert job.status == "queued"
        answer = client.get(job_url(job.pk)).json()
        until_query = (job.next_attempt_at - timezone.now()).total_seconds()
        assert 2 < until_query <= 3
        assert until_query < answer["check_again_in"] <= until_query + timing.DEFAULT_STEP + 0.5

        # The query that finds the result: the row keeps its due time, so the step from
        # it to the result stored can be learned.
        TryOnJob.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())
        worker.run_pass()
    job.refresh_from_db()
    assert job.status == "succeeded"
    step = (job.finished_at - job.next_attempt_at).total_seconds()
    assert 0 < step < 5
