"""``check_again_in`` in the job JSON: when a browser following a job asks again."""

import dataclasses
import itertools
import math
import random
import re
import statistics
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.utils import timezone

from django_tryon.api import reads, timing
from django_tryon.api.reads import ReadPlan, clock_times, lateness, mean_reads, plan_reads
from django_tryon.api.timing import Learned, hint_for, learned_timings, read_plan
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
    # No read plan: the worker's timings, or the clock for a job awaiting its webhook.
    return hint_for(job, NOW, learned, plan=None).seconds


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


# Jobs whose provider pushes its end: reads planned from the pushed results ----------


def lognormal(count, seed, median=10.0, sigma=0.35, offset=0.5):
    """Seconds from creation to result seen: a provider's log-normal times, after a pickup
    and before the storage (``offset``)."""
    rng = random.Random(seed)
    return [offset + median * math.exp(rng.gauss(0.0, sigma)) for _ in range(count)]


def two_modes(count, seed):
    rng = random.Random(seed)
    return [rng.choice((5.0, 25.0)) * math.exp(rng.gauss(0.0, 0.1)) for _ in range(count)]


DISTRIBUTIONS = {
    "log-normal": lambda count, seed: lognormal(count, seed),
    "tight": lambda count, seed: lognormal(count, seed, median=8.0, sigma=0.05),
    "two modes": two_modes,
    "slow": lambda count, seed: lognormal(count, seed, median=45.0, sigma=0.2),
}


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_a_read_plan_spends_no_more_reads_per_job_than_the_clock(name):
    learned = DISTRIBUTIONS[name](reads.PUSH_SAMPLES, 1)
    plan = plan_reads(learned)
    clock = mean_reads(clock_times(max(learned)), learned)
    # The rule kept: on the results it was made from, at most READ_SHARE of the reads
    # the button's clock would have made for them, per job on average.
    assert plan.clock_reads == pytest.approx(clock)
    assert mean_reads(list(plan.times), learned) == pytest.approx(plan.reads)
    assert plan.reads <= reads.READ_SHARE * clock + 1e-9
    # The next results are not the learned ones: within a few percent of the clock.
    fresh = DISTRIBUTIONS[name](2000, 2)
    assert mean_reads(list(plan.times), fresh) <= 1.05 * mean_reads(clock_times(200), fresh)


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_planned_reads_see_results_far_sooner_than_the_clock(name):
    plan = plan_reads(DISTRIBUTIONS[name](reads.PUSH_SAMPLES, 1))
    fresh = DISTRIBUTIONS[name](2000, 2)
    planned, clock = lateness(list(plan.times), fresh), lateness(clock_times(200), fresh)
    assert statistics.mean(planned) < 0.5 * statistics.mean(clock)


def test_planned_reads_are_never_further_apart_than_the_longest_hint():
    # A slow provider: the first read where results begin is far off, but a cancel or an
    # erasure is still heard of within LONGEST; those reads count in the budget.
    plan = plan_reads(DISTRIBUTIONS["slow"](reads.PUSH_SAMPLES, 1))
    gaps = [later - earlier for earlier, later in itertools.pairwise((0.0, *plan.times))]
    assert max(gaps) <= timing.LONGEST + 1e-9
    assert plan.times[0] <= timing.LONGEST and plan.times[-1] > 45.0


def test_lateness_counts_to_the_first_read_at_or_after_each_result():
    assert lateness([2.0, 4.0], [0.5, 2.0, 3.5, 4.5, 11.0]) == pytest.approx(
        [1.5, 0.0, 0.5, 4.5, 3.0]  # past the last read: every 5 s
    )


def test_too_few_pushed_results_plan_nothing():
    assert plan_reads(lognormal(reads.PUSH_MIN_SAMPLES - 1, 1)) is None
    assert plan_reads(lognormal(reads.PUSH_MIN_SAMPLES, 1)) is not None
    # A budget no plan fits (under one read a job): no plan, the clock.
    assert plan_reads(lognormal(reads.PUSH_SAMPLES, 1), share=0.1) is None


PLAN = ReadPlan(times=(6.0, 8.0, 9.0, 10.0), reads=3.0, clock_reads=4.0)


def awaiting_push(created_ago, status="queued", **fields):
    awaiting = job(status, due_in=60, **fields)
    awaiting.callback_digest = "a" * 64
    awaiting.created_at = NOW - timedelta(seconds=created_ago)
    return awaiting


@pytest.mark.parametrize(
    "created_ago, expected",
    [
        (0.0, 6.0),  # the first planned read
        (6.02, 1.98),  # a read arrives a moment after its planned time: the next one
        (8.5, 0.5),
        (9.96, timing.HELD_MIN),
        (10.3, reads.CLOCK_MAX_MS / 1000),  # slower than every learned result: the clock's
    ],
)
def test_a_job_awaiting_its_webhook_is_read_when_planned(created_ago, expected):
    answer = hint_for(awaiting_push(created_ago), NOW, STEP_ONLY, PLAN)
    assert answer.seconds == pytest.approx(expected) and answer.planned


@pytest.mark.parametrize(
    "pushed_ago, expected",
    [
        (0.0, 0.6),  # the worker's usual step from the webhook to the result stored
        (0.45, 0.15),
        (0.65, timing.HELD_MIN),  # past it: soon, then less often
        (1.6, 1.0),
        (30.0, timing.HELD_MAX),
    ],
)
def test_a_pushed_job_is_read_when_its_result_is_usually_stored(pushed_ago, expected):
    pushed = awaiting_push(8.5)
    pushed.pushed_at = NOW - timedelta(seconds=pushed_ago)
    plan = dataclasses.replace(PLAN, push_step=0.6)
    # The worker holds it while it downloads and stores: the same.
    for lease in (None, NOW + timedelta(seconds=LEASE)):
        pushed.lease_expires_at = lease
        assert hint_for(pushed, NOW, STEP_ONLY, plan) == timing.Hint(expected, planned=True)


def test_a_job_awaiting_its_webhook_queried_by_the_worker_is_not_planned():
    # Its fallback query, long after the plan's reads: the worker's step, as for any query.
    held = awaiting_push(60.0, held_for=0.0)
    assert hint_for(held, NOW, STEP_ONLY, PLAN) == timing.Hint(STEP)
    assert hint_for(awaiting_push(8.5, "succeeded"), NOW, STEP_ONLY, PLAN) == timing.Hint(None)


def test_a_new_job_follows_the_read_plan_in_a_shop_whose_results_are_pushed(settings):
    new = job("pending")
    new.created_at = NOW
    settings.TRYON = {**settings.TRYON, "WEBHOOK_BASE_URL": "https://shop.example"}
    assert hint_for(new, NOW, STEP_ONLY, PLAN) == timing.Hint(6.0, planned=True)
    # A shop that asks for no webhooks: the worker's timings.
    settings.TRYON = {**settings.TRYON, "WEBHOOK_BASE_URL": ""}
    assert hint_for(new, NOW, STEP_ONLY, PLAN) == timing.Hint(timing.PICKUP)


def pushed_result(garment, provider, seconds, created_ago_minutes, stored_in=0.1):
    """A result the provider pushed, seen ``seconds`` after its creation and stored
    ``stored_in`` seconds after its webhook (unsaved)."""
    created = timezone.now() - timedelta(minutes=created_ago_minutes)
    finished = created + timedelta(seconds=seconds)
    return TryOnJob(
        garment=garment,
        status="succeeded",
        provider=provider,
        person_image="person.jpg",
        created_at=created,
        submitted_at=created + timedelta(seconds=0.3),
        pushed_at=finished - timedelta(seconds=stored_in),
        finished_at=finished,
    )


def test_the_read_plan_is_learned_from_the_providers_recent_pushed_results(garment):
    fashn = lognormal(reads.PUSH_SAMPLES + 10, 3)
    rows = [
        # From the webhook to the result stored: 0.1 to 1 s, evenly.
        pushed_result(garment, "fashn", s, index, stored_in=0.1 * (1 + index % 10))
        for index, s in enumerate(fashn)
    ]
    # Polled results, and another provider's too few pushed ones, are not fashn's.
    rows += [pushed_result(garment, "fal", 3.0, index) for index in range(5)]
    polled = pushed_result(garment, "fashn", 99.0, 0)
    polled.pushed_at = None
    TryOnJob.objects.bulk_create([*rows, polled])
    plan = read_plan("fashn")
    # The newest PUSH_SAMPLES, from creation to the result seen.
    assert plan.times == plan_reads(fashn[: reads.PUSH_SAMPLES]).times
    # The step from the webhook to the result stored: taken high.
    assert plan.push_step == pytest.approx(0.9, abs=0.05)
    assert read_plan("fal") is None
    # A job not yet submitted: every provider's pushed results.
    every = plan_reads((fashn[:5] + [3.0] * 5 + fashn[5:])[: reads.PUSH_SAMPLES])
    assert read_plan("").times == every.times
    # Learned again only after a while: the newest result changes nothing yet.
    TryOnJob.objects.bulk_create([pushed_result(garment, "fal", 3.0, -1) for _ in range(20)])
    assert read_plan("fal") is None
    timing.forget_timings()
    assert read_plan("fal") is not None


def test_the_clock_is_the_buttons():
    # The script the shop serves (the installed package's, under the wheel's suite).
    script = Path(finders.find("django_tryon/tryon.js")).read_text()
    constants = dict(re.findall(r"var (CLOCK_\w+) = ([\d.]+);", script))
    assert float(constants["CLOCK_FIRST_MS"]) == reads.CLOCK_FIRST_MS
    assert float(constants["CLOCK_GROWTH"]) == reads.CLOCK_GROWTH
    assert float(constants["CLOCK_MAX_MS"]) == reads.CLOCK_MAX_MS
    assert clock_times(13.0) == [1.0, 2.5, 4.75, 8.125, 13.125]


def test_the_api_says_when_a_hint_is_planned(client, garment, settings):
    created = post_job(client, garment).json()
    assert created["check_again_planned"] is False
    TryOnJob.objects.filter(pk=created["id"]).update(
        status="queued",
        provider="fashn",
        callback_digest="a" * 64,
        next_attempt_at=timezone.now() + timedelta(seconds=60),
    )
    # Too few pushed results yet: the clock (an unplanned, short hint).
    answer = client.get(job_url(created["id"])).json()
    assert answer["check_again_in"] == timing.AWAITING_PUSH
    assert answer["check_again_planned"] is False
    TryOnJob.objects.bulk_create(
        [pushed_result(garment, "fashn", s, i) for i, s in enumerate(lognormal(30, 4))]
    )
    timing.forget_timings()
    answer = client.get(job_url(created["id"])).json()
    assert answer["check_again_planned"] is True
    assert answer["check_again_in"] > 1.0  # nothing finishes in the first second
