"""When a job's next step is due: provider queries and retries after faults.

Queries follow an adaptive schedule. The naive way (a query every
``POLL_INTERVAL``) finds a result half an interval late on average. Instead,
the worker learns how long the provider takes for each kind of job (provider
and clothes type) and spends the same number of queries where they count:
the first one near the earliest usual finish, short steps through the usual
range, longer ones for a job slower than usual.
"""

import math
import random
from collections import defaultdict, deque
from datetime import timedelta

from .conf import tryon_settings

# Durations remembered per kind: recent enough to follow the provider's mood.
WINDOW = 50
# Below this many samples the schedule is the naive one.
MIN_SAMPLES = 5
# Never query one task more often than this, in seconds.
MIN_STEP = 0.5
LOW_QUANTILE = 0.05
HIGH_QUANTILE = 0.95


def job_kind(job):
    return f"{job.provider}:{job.garment.clothes_type}"


def quantile(sorted_values, q):
    """Linear-interpolated quantile of an already sorted, non-empty sequence."""
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = math.ceil(position)
    fraction = position - low
    return sorted_values[low] * (1 - fraction) + sorted_values[high] * fraction


class QuerySchedule:
    """Plans the next query of each in-flight job from what the provider took lately."""

    def __init__(self):
        self._samples = defaultdict(lambda: deque(maxlen=WINDOW))

    def learn(self, kind, seconds):
        if seconds is not None and seconds >= 0:
            self._samples[kind].append(float(seconds))

    def replace_samples(self, rows):
        """Start again from ``(kind, seconds)`` rows, newest first (as read from the database)."""
        self._samples.clear()
        for kind, seconds in reversed(list(rows)):
            self.learn(kind, seconds)

    def samples(self, kind):
        return list(self._samples.get(kind, ()))

    def next_query_at(self, job, now):
        """The time of the next query of ``job``, which is at the provider."""
        interval = float(tryon_settings.POLL_INTERVAL)
        samples = sorted(self._samples.get(job_kind(job), ()))
        submitted = job.submitted_at or now
        if interval <= 0 or len(samples) < MIN_SAMPLES:
            return now + timedelta(seconds=interval)
        plan = plan_for(samples, interval)
        elapsed = (now - submitted).total_seconds()
        # (The tolerance absorbs datetime's microsecond rounding.)
        if elapsed + 1e-3 < plan.first:
            return submitted + timedelta(seconds=plan.first)
        if elapsed < plan.last:
            return now + timedelta(seconds=plan.step)
        # Slower than usual: widen the steps, up to twice the naive interval.
        overtime = elapsed - plan.last
        return now + timedelta(seconds=min(2 * interval, max(plan.step, overtime / 2)))


class Plan:
    """First query, step and end of the usual range, in seconds after submission."""

    def __init__(self, first, step, last):
        self.first, self.step, self.last = first, step, last


def plan_for(sorted_samples, interval):
    low = quantile(sorted_samples, LOW_QUANTILE)
    high = quantile(sorted_samples, HIGH_QUANTILE)
    # Queries the naive schedule makes for a job of each past duration.
    naive = sum(math.ceil(max(d, 1e-9) / interval) for d in sorted_samples) / len(sorted_samples)
    # A job stops at its result, so on average it meets half the steps of
    # the range, plus the first query and the one that finds the result: the
    # range can hold about 2 x (naive - 1.5) steps for the same count.
    in_range = 2 * (naive - 1.5)
    if in_range < 1:
        # Too few queries to spread over the range: one query where nearly
        # every job of this kind is done.
        step = min(interval, max(MIN_STEP, high - low))
        return Plan(first=max(MIN_STEP, high), step=step, last=high + step)
    step = min(interval, max(MIN_STEP, (high - low) / in_range))
    first = max(MIN_STEP, low)
    return Plan(first=first, step=step, last=high + step)


def retry_delay(attempts, *, rng=random):
    """Exponential backoff with full jitter after the ``attempts``-th transient fault.

    Jitter spreads the retries of many jobs that failed together (a provider
    outage), so they do not return in one burst.
    """
    base = tryon_settings.RETRY_BACKOFF
    cap = tryon_settings.RETRY_BACKOFF_MAX
    ceiling = min(cap, base * (2 ** max(0, attempts - 1)))
    return timedelta(seconds=ceiling / 2 + rng.uniform(0, ceiling / 2))
