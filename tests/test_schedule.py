"""The adaptive query schedule and the retry backoff."""

import random
import statistics
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from django_tryon.schedule import MIN_SAMPLES, QuerySchedule, quantile, retry_delay

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
