"""When a job's next step is due: provider queries and retries after faults.

Queries follow an adaptive schedule. The naive way (a query every
``POLL_INTERVAL``) finds a result half an interval late on average. Instead,
the worker learns how long the provider takes for each kind of job (provider
and clothes type) and spends no more queries where they count: it replays
candidate plans (a first query, then a fixed step) over the recent jobs of
the kind and keeps the one that would have found them soonest on the naive
query budget; a job slower than all of them gets wider steps.
"""

import math
import random
import time
from collections import defaultdict, deque
from datetime import timedelta

from .conf import tryon_settings

# Durations remembered per kind: recent enough to follow the provider's mood.
WINDOW = 50
# Below this many samples the schedule is the naive one.
MIN_SAMPLES = 5
# Never query one task more often than this, in seconds.
MIN_STEP = 0.5
# Candidate plans tried: first queries at every 1/FIRST_CANDIDATES quantile of the
# samples, steps spaced evenly on a log scale from MIN_STEP to the naive interval.
FIRST_CANDIDATES = 20
STEP_CANDIDATES = 12
# A plan is made again after this many new samples, or after one and this many seconds.
REPLAN_SAMPLES = 5
REPLAN_SECONDS = 1.0


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

    def __init__(self, clock=time.monotonic):
        self._samples = defaultdict(lambda: deque(maxlen=WINDOW))
        self._clock = clock
        # kind -> (plan, samples learned when it was made, when it was made)
        self._plans = {}
        self._learned = defaultdict(int)

    def learn(self, kind, seconds):
        if seconds is not None and seconds >= 0:
            self._samples[kind].append(float(seconds))
            self._learned[kind] += 1

    def replace_samples(self, rows):
        """Start again from ``(kind, seconds)`` rows, newest first (as read from the database)."""
        self._samples.clear()
        self._plans.clear()
        for kind, seconds in reversed(list(rows)):
            self.learn(kind, seconds)

    def samples(self, kind):
        return list(self._samples.get(kind, ()))

    def plan(self, kind, interval):
        """The plan for ``kind``, or ``None`` while too little is known (naive schedule).

        Planning reads every sample of the kind, so once ``WINDOW`` samples are
        known a plan is reused until ``REPLAN_SAMPLES`` new ones arrived, or one
        did and ``REPLAN_SECONDS`` passed: at hundreds of results a second the
        worker plans a few times a second, not once per result.
        """
        samples = self._samples.get(kind, ())
        if len(samples) < MIN_SAMPLES:
            return None
        cached = self._plans.get(kind)
        learned, now = self._learned[kind], self._clock()
        if cached is not None:
            plan, learned_then, made_at = cached
            new = learned - learned_then
            settled = len(samples) >= WINDOW  # early on, every sample changes the plan
            fresh = new == 0 or (
                settled and new < REPLAN_SAMPLES and now - made_at < REPLAN_SECONDS
            )
            if fresh and plan.interval == interval:
                return plan
        plan = plan_for(sorted(samples), interval)
        self._plans[kind] = (plan, learned, now)
        return plan

    def next_query_at(self, job, now):
        """The time of the next query of ``job``, which is at the provider."""
        interval = float(tryon_settings.POLL_INTERVAL)
        submitted = job.submitted_at or now
        plan = self.plan(job_kind(job), interval) if interval > 0 else None
        if plan is None:
            return now + timedelta(seconds=interval)
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

    def __init__(self, first, step, last, interval=None):
        self.first, self.step, self.last = first, step, last
        self.interval = interval

    def __repr__(self):
        return f"Plan(first={self.first:.2f}, step={self.step:.2f}, last={self.last:.2f})"


def naive_queries(duration, interval):
    """Queries the naive schedule makes for a job that takes ``duration`` seconds."""
    return max(1, math.ceil(duration / interval - 1e-9))


def plan_for(sorted_samples, interval):
    """The first query and step that find recent jobs soonest, on the naive query budget.

    Every candidate plan (a first query at a quantile of the samples, a step
    between ``MIN_STEP`` and ``interval``) is replayed over the recent jobs
    of the kind; of the plans that would have made no more queries on
    average than the naive schedule did for the same jobs, the one with the
    least average delay wins. Replaying the samples themselves, rather than
    assuming a shape, fits a narrow peak, a wide spread or a few slow
    outliers alike.
    """
    count = len(sorted_samples)
    budget = sum(naive_queries(d, interval) for d in sorted_samples) / count + 1e-9
    # The naive plan (first query and step both ``interval``) is among the
    # candidates and meets the budget exactly, so some plan always qualifies.
    firsts = sorted(
        {interval}
        | {
            max(MIN_STEP, quantile(sorted_samples, i / FIRST_CANDIDATES))
            for i in range(FIRST_CANDIDATES + 1)
        }
    )
    low_step = min(MIN_STEP, interval)
    steps = [
        low_step * (interval / low_step) ** (i / (STEP_CANDIDATES - 1))
        for i in range(STEP_CANDIDATES)
    ]
    best = None
    for first in firsts:
        for step in steps:
            queries = delay = 0.0
            for duration in sorted_samples:
                if duration <= first:
                    queries += 1
                    delay += first - duration
                else:
                    more = math.ceil((duration - first) / step - 1e-9)
                    queries += 1 + more
                    delay += first + more * step - duration
            # Of equally quick plans, the one with the fewest queries.
            score = (round(delay, 6), queries)
            if queries / count <= budget and (best is None or score < best[0]):
                best = (score, first, step)
    _, first, step = best
    return Plan(
        first=first, step=step, last=max(first, sorted_samples[-1]) + step, interval=interval
    )


def retry_delay(attempts, *, rng=random):
    """Exponential backoff with full jitter after the ``attempts``-th transient fault.

    Jitter spreads the retries of many jobs that failed together (a provider
    outage), so they do not return in one burst.
    """
    base = tryon_settings.RETRY_BACKOFF
    cap = tryon_settings.RETRY_BACKOFF_MAX
    ceiling = min(cap, base * (2 ** max(0, attempts - 1)))
    return timedelta(seconds=ceiling / 2 + rng.uniform(0, ceiling / 2))
