"""The adaptive query schedule and the retry backoff."""

import heapq
import random
import statistics
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from django_tryon.schedule import (
    MIN_SAMPLES,
    REPLAN_SECONDS,
    WINDOW,
    QuerySchedule,
    quantile,
    retry_delay,
    spread_out,
)
from django_tryon.worker import Worker

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def job(clothes_type="upper_body"):
    return SimpleNamespace(
        provider="ailabapi",
        garment=SimpleNamespace(clothes_type=clothes_type),
        submitted_at=T0,
    )


def simulate(schedule, duration):
    """Query like the worker would; return (queries made, seconds late)."""
    the_job = job()
    now = T0
    queries = 0
    while True:
        now = schedule.next_query_at(the_job, now)
        queries += 1
        elapsed = (now - T0).total_seconds()
        if elapsed >= duration:
            return queries, elapsed - duration


@pytest.fixture
def tryon(settings):
    settings.TRYON = {"API_KEY": "k", "POLL_INTERVAL": 5}


def test_quantile():
    assert quantile([1, 2, 3, 4], 0) == 1
    assert quantile([1, 2, 3, 4], 1) == 4
    assert quantile([1, 2, 3, 4], 0.5) == 2.5


def test_without_enough_samples_the_schedule_is_naive(tryon):
    schedule = QuerySchedule()
    for _ in range(MIN_SAMPLES - 1):
        schedule.learn("ailabapi:upper_body", 8)
    assert schedule.next_query_at(job(), T0) == T0 + timedelta(seconds=5)


def test_poll_interval_zero_queries_at_once(settings):
    settings.TRYON = {"API_KEY": "k", "POLL_INTERVAL": 0}
    schedule = QuerySchedule()
    for _ in range(20):
        schedule.learn("ailabapi:upper_body", 8)
    assert schedule.next_query_at(job(), T0) == T0


@pytest.mark.parametrize("typical", [5, 8, 12, 20, 30])
def test_adaptive_is_later_less_without_more_queries(tryon, typical):
    rng = random.Random(typical)
    schedule = QuerySchedule()
    for _ in range(50):
        schedule.learn("ailabapi:upper_body", typical * rng.uniform(0.9, 1.1))
    naive = QuerySchedule()  # never learns: a query every 5 s

    durations = [typical * rng.uniform(0.9, 1.1) for _ in range(400)]
    adaptive_runs = [simulate(schedule, d) for d in durations]
    naive_runs = [simulate(naive, d) for d in durations]

    adaptive_late = statistics.median(late for _, late in adaptive_runs)
    naive_late = statistics.median(late for _, late in naive_runs)
    assert adaptive_late < 1.0
    assert adaptive_late <= naive_late
    adaptive_queries = statistics.mean(q for q, _ in adaptive_runs)
    naive_queries = statistics.mean(q for q, _ in naive_runs)
    assert adaptive_queries <= naive_queries + 0.25


def test_a_job_slower_than_usual_gets_wider_steps(tryon):
    schedule = QuerySchedule()
    for _ in range(20):
        schedule.learn("ailabapi:upper_body", 8)
    late = T0 + timedelta(seconds=60)
    step = (schedule.next_query_at(job(), late) - late).total_seconds()
    assert 5 < step <= 10


def test_kinds_are_learned_apart(tryon):
    schedule = QuerySchedule()
    for _ in range(20):
        schedule.learn("ailabapi:upper_body", 25)
    # Nothing learned for lower_body: naive.
    assert schedule.next_query_at(job("lower_body"), T0) == T0 + timedelta(seconds=5)
    assert schedule.next_query_at(job("upper_body"), T0) > T0 + timedelta(seconds=20)


def test_replace_samples_keeps_the_newest(tryon):
    schedule = QuerySchedule()
    rows = [("k", float(i)) for i in range(100)]  # newest first
    schedule.replace_samples(rows)
    assert sorted(schedule.samples("k")) == [float(i) for i in range(50)]


def test_retry_delay_grows_and_is_capped(settings):
    settings.TRYON = {"API_KEY": "k", "RETRY_BACKOFF": 2, "RETRY_BACKOFF_MAX": 20}
    rng = random.Random(1)
    ceilings = [2, 4, 8, 16, 20, 20]
    for attempt, ceiling in enumerate(ceilings, start=1):
        delay = retry_delay(attempt, rng=rng).total_seconds()
        assert ceiling / 2 <= delay <= ceiling


# Planning on what was learned (see docs/worker.md) ----------------------------------


def test_a_queried_job_is_not_queried_again_a_moment_later(tryon):
    schedule = QuerySchedule()
    for seconds in (10, 10.5, 11, 11.5, 12, 12.5, 13):
        schedule.learn("ailabapi:upper_body", seconds, 0.5)
    plan = schedule.plan("ailabapi:upper_body", 5.0)
    # A job queried just before the plan's first query (the plan moved since).
    now = T0 + timedelta(seconds=plan.first - 0.05)
    gap = (schedule.next_query_at(job(), now) - now).total_seconds()
    assert gap == pytest.approx(plan.step, abs=1e-3)  # (datetimes keep microseconds)


def test_a_coarse_duration_is_planned_on_across_its_span(tryon):
    assert spread_out([(20.0, 5.0)]) == pytest.approx([18.0, 19.0, 20.0, 21.0, 22.0])
    assert spread_out([(3.0, 0.0)]) == [3.0]


def test_precise_durations_replace_coarse_ones(tryon):
    schedule = QuerySchedule()
    for _ in range(10):
        schedule.learn("ailabapi:upper_body", 17.5, 5.0)  # found by a query every 5 s
    coarse = schedule.plan("ailabapi:upper_body", 5.0)
    # Planned over the whole span the durations may be in (15-20 s).
    assert coarse.first <= 16.5 and coarse.last >= 19.5
    for seconds in (16.2, 16.4, 16.6, 16.8, 17.0):
        schedule.learn("ailabapi:upper_body", seconds, 0.5)
    precise = schedule.plan("ailabapi:upper_body", 5.0)
    assert precise.first >= 15.9 and precise.last <= 18.5


def test_a_settled_plan_is_made_again_once_a_second(tryon):
    clock = [0.0]
    schedule = QuerySchedule(clock=lambda: clock[0])
    for i in range(WINDOW):
        schedule.learn("k:upper_body", 10 + i % 5, 0.5)
    plan = schedule.plan("k:upper_body", 5.0)
    schedule.learn("k:upper_body", 30, 0.5)
    assert schedule.plan("k:upper_body", 5.0) is plan
    clock[0] += REPLAN_SECONDS
    assert schedule.plan("k:upper_body", 5.0) is not plan


def simulate_shop(typical_times, *, learn, seed, jobs=20, window=40.0):
    """Jobs of each kind arrive at random over ``window`` seconds after as many warm-up
    jobs (the figures exclude those) and are queried as the worker would, learning
    each duration as the worker estimates it. Returns (median late, p95 late,
    mean queries) of the measured jobs."""
    rng = random.Random(seed)
    clock = [0.0]
    schedule = QuerySchedule(clock=lambda: clock[0])
    runs = []
    for phase, start in (("warmup", 0.0), ("measured", window)):
        for _ in range(jobs):
            for kind, typical in typical_times.items():
                duration = min(30, max(5, typical * (1 + rng.gauss(0, 0.1))))
                at = start + rng.uniform(0, window)
                runs.append(
                    SimpleNamespace(
                        phase=phase,
                        duration=duration,
                        provider="ailabapi",
                        garment=SimpleNamespace(clothes_type=kind),
                        submitted_at=T0 + timedelta(seconds=at),
                        last_polled_at=None,
                        queries=0,
                        late=None,
                    )
                )
    events = [((r.submitted_at - T0).total_seconds(), i) for i, r in enumerate(runs)]
    heapq.heapify(events)
    while events:
        at, i = heapq.heappop(events)
        clock[0] = at
        run, now = runs[i], T0 + timedelta(seconds=at)
        if now > run.submitted_at:  # a query
            run.queries += 1
            if (now - run.submitted_at).total_seconds() >= run.duration:
                run.late = (now - run.submitted_at).total_seconds() - run.duration
                if learn:
                    kind = f"ailabapi:{run.garment.clothes_type}"
                    schedule.learn(kind, *Worker._provider_seconds(run, now))
                continue
            run.last_polled_at = now
        when = schedule.next_query_at(run, now)
        heapq.heappush(events, ((when - T0).total_seconds(), i))
    measured = [r for r in runs if r.phase == "measured"]
    late = sorted(r.late for r in measured)
    return (
        statistics.median(late),
        late[int(0.95 * (len(late) - 1))],
        statistics.mean(r.queries for r in measured),
    )


def test_a_shop_gets_results_sooner_for_no_more_queries(tryon):
    # Kinds typical of the provider's 5-30 s, each with 10 % jitter, jobs overlapping.
    shops = [
        {"upper_body": 28.0, "lower_body": 6.1, "full_body": 20.4},
        {"upper_body": 11.0, "lower_body": 19.0, "full_body": 14.0},
        {"upper_body": 25.0, "lower_body": 8.5, "full_body": 16.0},
    ]
    adaptive, naive = [], []
    for seed, shop in enumerate(shops):
        adaptive.append(simulate_shop(shop, learn=True, seed=seed))
        naive.append(simulate_shop(shop, learn=False, seed=seed))
    for (a_median, a_p95, _), (n_median, _, _) in zip(adaptive, naive, strict=True):
        assert a_median < 1.0 < n_median
        assert a_p95 < 2.5
    assert statistics.mean(q for *_, q in adaptive) <= statistics.mean(q for *_, q in naive)
