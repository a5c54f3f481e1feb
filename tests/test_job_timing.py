"""``check_again_in`` in the job JSON: when a browser following a job asks again."""

from datetime import timedelta

import pytest
from django.utils import timezone

from django_tryon.api import timing
from django_tryon.api.timing import Learned, check_again_in, learned_timings
from django_tryon.models import TryOnJob
from django_tryon.worker import Worker
from tests.support.api import (
    job_url,
    photo,
    post_job,
)
from tests.support.images import noisy_photo_bytes

pytestmark = pytest.mark.usefixtures("fresh_throttle_cache")

NOW = timezone.now()
LEASE = 300
STEP = 0.8  # seconds from a query's due time to its result stored


@pytest.fixture(autouse=True)
def lease(settings):
    settings.TRYON = {**getattr(settings, "TRYON", {}), "LEASE_SECONDS": LEASE}


@pytest.fixture(autouse=True)
def timings_forgotten():
    timing.forget_timings()
    yield
    timing.forget_timings()


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


STEP_ONLY = Learned(step=STEP)


def hint(job, learned=STEP_ONLY):
    return check_again_in(job, NOW, learned)


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


USUAL = Learned(step=STEP, pickup=0.4, first_query=7.5)


@pytest.mark.parametrize("age", [0.0, 0.3])
def test_a_new_job_when_its_first_query_may_have_stored_the_result(age):
    # Before, only the submit can have happened: a read would show nothing.
    assert hint(job("pending", due_in=-age), USUAL) == pytest.approx(0.4 + 7.5 + STEP - age)


@pytest.mark.parametrize("age", [1.0, 30.0])
def test_a_new_job_picked_up_late_is_still_queried_that_long_after_its_submit(age):
    assert hint(job("pending", due_in=-age), USUAL) == pytest.approx(7.5 + STEP)


@pytest.mark.parametrize("late, expected", [(STEP + 1, 1.0), (STEP + 60, timing.LATE_MAX)])
def test_a_late_worker_is_asked_about_less_and_less_often(late, expected):
    assert hint(job(due_in=-late)) == pytest.approx(max(timing.LATE_MIN, expected))


def succeeded(make_job, step, provider="ailabapi", polls=2, pickup=0.5, first_query=8.0):
    finished = timezone.now()
    due = finished - timedelta(seconds=step)
    submitted = due - timedelta(seconds=first_query if polls == 1 else first_query + 2.5)
    return make_job(
        status="succeeded",
        provider=provider,
        polls=polls,
        created_at=submitted - timedelta(seconds=pickup),
        submitted_at=submitted,
        next_attempt_at=due,
        finished_at=finished,
    )


def test_the_timings_are_learned_from_the_providers_recent_results(make_job):
    assert learned_timings("ailabapi") == Learned()
    for step, pickup in ((0.4, 0.2), (0.5, 0.3), (0.6, 0.6), (0.7, 0.9), (9.0, 1.0)):
        succeeded(make_job, step, pickup=pickup)
    # Not yet: what was learned a moment ago is kept a while.
    assert learned_timings("ailabapi") == Learned()
    timing.forget_timings()
    learned = learned_timings("ailabapi")
    # The step: the median (one slow download moves nothing). The pickup: taken low.
    assert learned.step == 0.6 and learned.pickup == pytest.approx(0.3)
    # The first query's offset: from results found by their first query only.
    assert learned.first_query is None
    for first_query in (7.0, 7.5, 8.0, 8.0, 8.5):
        succeeded(make_job, 0.5, polls=1, first_query=first_query)
    timing.forget_timings()
    assert learned_timings("ailabapi").first_query == pytest.approx(7.5)
    # Results of another provider, made by the submit alone, or with a stopped worker
    # between the due time and the query are not the worker's.
    for _ in range(5):
        succeeded(make_job, 3.0, provider="fal")
        succeeded(make_job, 3.0, polls=0)
        succeeded(make_job, timing.MAX_SECONDS + 5)
    timing.forget_timings()
    assert learned_timings("ailabapi").step == 0.5
    assert learned_timings("fal").step == 3.0
    # A job not yet submitted has no provider: every provider's results count.
    assert learned_timings("").step == 0.6


def test_the_api_answers_with_it(client, garment, make_job):
    created = post_job(client, garment).json()
    assert created["check_again_in"] == timing.PICKUP
    for _ in range(5):
        succeeded(make_job, 0.2, polls=1, pickup=0.5, first_query=6.0)
    timing.forget_timings()
    created = post_job(client, garment, image=photo(noisy_photo_bytes((600, 1000)))).json()
    assert 6.0 < created["check_again_in"] <= 0.5 + 6.0 + 0.2
    TryOnJob.objects.filter(pk=created["id"]).update(
        status="queued", next_attempt_at=timezone.now() + timedelta(seconds=4)
    )
    seconds = client.get(job_url(created["id"])).json()["check_again_in"]
    assert 3.5 < seconds <= 4 + 0.2  # the step learned from the results above
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


@pytest.mark.parametrize("status", ["queued", "processing"])
def test_a_job_awaiting_its_webhook_is_followed_on_the_browsers_clock(status):
    # Its next query is the webhook's fallback, a minute off; the push may come now.
    awaiting = job(status, due_in=60)
    awaiting.callback_digest = "a" * 64
    assert hint(awaiting) == timing.AWAITING_PUSH < 1
    # Once pushed, the worker stores it on its next step, as after a query.
    awaiting.pushed_at, awaiting.next_attempt_at = NOW, NOW
    assert hint(awaiting) == STEP
