"""The learned query schedule and the retry backoff. The figures against the best
schedule are measured by ``python -m bench.latency`` (docs/performance.md); these
tests assert the schedule's properties on simulated jobs."""

import heapq
import itertools
import math
import random
import statistics
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from django_tryon.schedule import (
    MIN_SAMPLES,
    MIN_STEP,
    REPLAN_SAMPLES,
    REPLAN_SECONDS,
    SETTLED_SAMPLES,
    WINDOW,
    QuerySchedule,
    QueryTable,
    best_times,
    estimate,
    naive_queries,
    quantile,
    retry_delay,
)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
KIND = "ailabapi:upper_body"

# Provider times as real ones spread: the three the latency benchmark measures.
DISTRIBUTIONS = {
    "tight": lambda rng: min(30.0, max(5.0, 20.0 * (1 + rng.gauss(0, 0.1)))),
    "log-normal": lambda rng: 10.0 * math.exp(rng.gauss(0, 0.35)),
    "two modes": lambda rng: (
        7.0 * (1 + rng.gauss(0, 0.1)) if rng.random() < 0.6 else 19.0 * (1 + rng.gauss(0, 0.1))
    ),
}


def job(clothes_type="upper_body", last_polled_at=None):
    return SimpleNamespace(
        provider="ailabapi",
        garment=SimpleNamespace(clothes_type=clothes_type),
        submitted_at=T0,
        last_polled_at=last_polled_at,
    )


def query_times(schedule, duration):
    """Query like the worker would until the job is done; return the query times."""
    the_job = job()
    now, times = T0, []
    while True:
        now = schedule.next_query_at(the_job, now)
        times.append((now - T0).total_seconds())
        if times[-1] >= duration:
            return times


@pytest.fixture
def tryon(settings):
    settings.TRYON = {"API_KEY": "k", "POLL_INTERVAL": 5}


def learned(durations, kind=KIND, clock=None):
    """A schedule that learned ``durations`` as spans of half a second."""
    schedule = QuerySchedule(clock=clock) if clock else QuerySchedule()
    for seconds in durations:
        schedule.learn_span(kind, seconds - 0.25, seconds + 0.25)
    return schedule


def test_quantile():
    assert quantile([1, 2, 3, 4], 0) == 1
    assert quantile([1, 2, 3, 4], 1) == 4
    assert quantile([1, 2, 3, 4], 0.5) == 2.5


def test_without_enough_samples_the_schedule_is_naive(tryon):
    schedule = learned([8] * (MIN_SAMPLES - 1))
    assert schedule.next_query_at(job(), T0) == T0 + timedelta(seconds=5)


def test_poll_interval_zero_queries_at_once(settings):
    settings.TRYON = {"API_KEY": "k", "POLL_INTERVAL": 0}
    schedule = learned([8] * 20)
    assert schedule.next_query_at(job(), T0) == T0


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_queries_are_never_closer_than_the_minimum_step(tryon, name):
    rng = random.Random(5)
    schedule = learned(DISTRIBUTIONS[name](rng) for _ in range(WINDOW))
    for _ in range(200):
        times = query_times(schedule, DISTRIBUTIONS[name](rng))
        gaps = [later - earlier for earlier, later in itertools.pairwise([0.0, *times])]
        assert min(gaps) >= MIN_STEP - 1e-6


def test_a_job_queried_just_before_a_planned_query_skips_it(tryon):
    schedule = learned([10, 10.5, 11, 11.5, 12, 12.5, 13] * 3)
    plan = schedule.plan(KIND, 5.0)
    now = T0 + timedelta(seconds=plan.first - 0.1)  # (the plan moved since its last query)
    gap = (schedule.next_query_at(job(), now) - now).total_seconds()
    assert gap >= MIN_STEP - 1e-6
    after = (schedule.next_query_at(job(), now) - T0).total_seconds()
    assert after == pytest.approx(plan.times[1], abs=1e-5)  # (datetimes keep microseconds)


@pytest.mark.parametrize("typical", [6.0, 12.0, 25.0])
def test_the_plan_follows_the_learned_times(tryon, typical):
    rng = random.Random(int(typical))
    durations = [typical * rng.uniform(0.9, 1.1) for _ in range(WINDOW)]
    plan = learned(durations).plan(KIND, 5.0)
    # Its queries are where the jobs finish (the estimate smooths each time over a
    # few percent of it), the last after the slowest.
    assert all(0.9 * min(durations) <= t <= 1.1 * max(durations) for t in plan.times)
    assert plan.last >= max(durations) - 0.5
    # A provider 10 s slower: the plan moves with it.
    later = learned(d + 10 for d in durations).plan(KIND, 5.0)
    assert all(0.9 * (min(durations) + 10) <= t <= 1.1 * (max(durations) + 10) for t in later.times)


def test_a_job_slower_than_usual_gets_wider_steps(tryon):
    schedule = learned([8] * 20)
    late = T0 + timedelta(seconds=60)
    step = (schedule.next_query_at(job(), late) - late).total_seconds()
    assert 5 < step <= 10


def test_kinds_are_learned_apart(tryon):
    schedule = learned([25] * 20)
    # Nothing learned for lower_body: naive.
    assert schedule.next_query_at(job("lower_body"), T0) == T0 + timedelta(seconds=5)
    assert schedule.next_query_at(job("upper_body"), T0) > T0 + timedelta(seconds=20)


def test_replace_samples_keeps_the_newest(tryon):
    schedule = QuerySchedule()
    rows = [("k", float(i)) for i in range(1, 2 * WINDOW + 1)]  # newest first
    schedule.replace_samples(rows)
    assert sorted(schedule.samples("k")) == [float(i) for i in range(1, WINDOW + 1)]


def test_a_job_found_by_its_first_query_is_known_from_its_submission(tryon):
    schedule = QuerySchedule()
    schedule.learn_found(job(), T0 + timedelta(seconds=9))
    schedule.learn_found(job(last_polled_at=T0 + timedelta(seconds=7)), T0 + timedelta(seconds=9))
    assert schedule.spans(KIND) == [(0.0, 9.0), (7.0, 9.0)]


def test_wide_spans_are_read_beside_narrow_ones():
    # Most jobs were seen to finish between 7 and 7.5 s; others only somewhere
    # between 7 and 12 s. Where the narrow ones are, the wide ones most likely are too.
    spans = [(7.0, 7.5)] * 30 + [(7.0, 12.0)] * 20
    times, weights = estimate(spans)
    assert sum(weights) == pytest.approx(1.0)
    early = sum(w for t, w in zip(times, weights, strict=True) if t <= 8.5)
    late = sum(w for t, w in zip(times, weights, strict=True) if t > 8.5)
    assert early > 0.8 and late < 0.2


def test_a_settled_plan_is_made_again_after_new_samples_or_time(tryon):
    clock = [0.0]
    schedule = learned([10 + i % 5 for i in range(SETTLED_SAMPLES)], clock=lambda: clock[0])
    plan = schedule.plan(KIND, 5.0)
    schedule.learn_span(KIND, 29.5, 30)
    assert schedule.plan(KIND, 5.0) is plan
    clock[0] += REPLAN_SECONDS
    replanned = schedule.plan(KIND, 5.0)
    assert replanned is not plan
    for _ in range(REPLAN_SAMPLES):
        schedule.learn_span(KIND, 11, 11.5)
    assert schedule.plan(KIND, 5.0) is not replanned


def exhaustive_best(durations, candidates, price, min_gap):
    """The least mean delay + price x queries over every increasing choice of candidates
    (the slow way the dynamic programme must agree with)."""
    lowest = math.inf
    for size in range(1, len(candidates) + 1):
        for times in itertools.combinations(candidates, size):
            if times[-1] < max(durations) or times[0] < min_gap:
                continue
            if any(b - a < min_gap - 1e-9 for a, b in itertools.pairwise(times)):
                continue
            cost = 0.0
            for duration in durations:
                found = next(i for i, t in enumerate(times) if t >= duration)
                cost += times[found] - duration + price * (found + 1)
            lowest = min(lowest, cost / len(durations))
    return lowest


@pytest.mark.parametrize("seed", range(4))
def test_the_dynamic_programme_finds_the_best_query_times(seed):
    rng = random.Random(seed)
    durations = sorted(rng.uniform(3, 12) for _ in range(9))
    candidates = sorted({*durations, 0.5, 6.0})
    table = QueryTable(durations, [1.0] * len(durations), candidates)
    for price in (0.05, 0.5, 2.0):
        _times, queries, delay = table.solve(price, 0.5)
        assert delay + price * queries == pytest.approx(
            exhaustive_best(durations, candidates, price, 0.5)
        )


def test_best_times_keep_within_the_budget_and_use_it():
    rng = random.Random(3)
    durations = sorted(10 * math.exp(rng.gauss(0, 0.35)) for _ in range(300))
    candidates = sorted({max(0.5, quantile(durations, i / 60)) for i in range(61)})
    table = QueryTable(durations, [1.0] * len(durations), candidates)
    delays = []
    for budget in (1.0, 1.5, 2.5, 4.0):
        _times, queries, delay = best_times(table, budget, 0.5)
        assert queries <= budget + 1e-9
        delays.append(delay)
    assert delays == sorted(delays, reverse=True) and delays[-1] < delays[0] / 3


def test_retry_delay_grows_and_is_capped(settings):
    settings.TRYON = {"API_KEY": "k", "RETRY_BACKOFF": 2, "RETRY_BACKOFF_MAX": 20}
    rng = random.Random(1)
    ceilings = [2, 4, 8, 16, 20, 20]
    for attempt, ceiling in enumerate(ceilings, start=1):
        delay = retry_delay(attempt, rng=rng).total_seconds()
        assert ceiling / 2 <= delay <= ceiling


def test_retry_delay_is_equal_jitter(settings):
    # Half the ceiling for sure, the other half at random: never sooner, and
    # spread evenly over the upper half.
    settings.TRYON = {"API_KEY": "k", "RETRY_BACKOFF": 8, "RETRY_BACKOFF_MAX": 300}
    rng = random.Random(2)
    delays = [retry_delay(1, rng=rng).total_seconds() for _ in range(2000)]
    assert min(delays) >= 4.0 and max(delays) <= 8.0
    assert sum(d < 5.0 for d in delays) == pytest.approx(500, rel=0.2)
    assert sum(d > 7.0 for d in delays) == pytest.approx(500, rel=0.2)


def simulate_shop(make_duration, *, learn, seed, warmup=WINDOW, jobs=200):
    """Jobs arrive about once a second and are queried as the worker would, the
    schedule learning each one as the worker does once it is found (a warm-up
    first: a shop in production has history). Returns the measured jobs'
    (durations, seconds late, queries)."""
    rng = random.Random(seed)
    clock = [0.0]
    schedule = QuerySchedule(clock=lambda: clock[0])
    runs, at = [], 0.0
    for number in range(warmup + jobs):
        at += rng.expovariate(1.0)
        runs.append(
            SimpleNamespace(
                measured=number >= warmup,
                duration=make_duration(rng),
                provider="ailabapi",
                garment=SimpleNamespace(clothes_type="upper_body"),
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
                    schedule.learn_found(run, now)
                continue
            run.last_polled_at = now
        when = schedule.next_query_at(run, now)
        heapq.heappush(events, ((when - T0).total_seconds(), i))
    measured = [r for r in runs if r.measured]
    return (
        [r.duration for r in measured],
        [r.late for r in measured],
        [r.queries for r in measured],
    )


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_a_shop_gets_results_sooner_for_fewer_queries_than_every_5_s(tryon, name):
    durations, late, queries = simulate_shop(DISTRIBUTIONS[name], learn=True, seed=1)
    _, naive_late, naive_queries_made = simulate_shop(DISTRIBUTIONS[name], learn=False, seed=1)
    assert naive_queries_made == [naive_queries(d, 5.0) for d in durations]
    # Never more queries than a query every 5 s (the provider's advice) would make.
    assert statistics.mean(queries) <= statistics.mean(naive_queries_made)
    assert statistics.mean(late) < 0.7 * statistics.mean(naive_late)
    assert statistics.median(late) < 2.0
