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
# Each learned duration is tried as this many points across the span it is known within.
SPREAD_POINTS = 5
# Durations known to within this many seconds are precise (see usable()).
PRECISE_SPREAD = 2.0
# The span assumed for durations read back from the database, which keeps only the
# middle: about the step of a settled schedule.
STORED_SPREAD = 1.0
# A plan is made again after this many new samples, or after one and this many seconds.
REPLAN_SAMPLES = 5
# The plan weighs the 95th percentile of delays beside their mean.
TAIL_QUANTILE = 0.95
TAIL_WEIGHT = 0.5
# The share of the naive query count a plan may spend on the replayed jobs.
BUDGET_SHARE = 0.9
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

    def learn(self, kind, seconds, spread=STORED_SPREAD):
        """Remember that a job of ``kind`` took ``seconds``, known to within ``spread``
        (the width of the span the provider finished in, centred on ``seconds``)."""
        if seconds is not None and seconds >= 0:
            self._samples[kind].append((float(seconds), max(0.0, float(spread))))
            self._learned[kind] += 1

    def replace_samples(self, rows):
        """Start again from ``(kind, seconds)`` rows, newest first (as read from the
        database, which keeps no spread: ``STORED_SPREAD`` is assumed)."""
        self._samples.clear()
        self._plans.clear()
        for kind, seconds in reversed(list(rows)):
            self.learn(kind, seconds)

    def samples(self, kind):
        return [seconds for seconds, _ in self._samples.get(kind, ())]

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
        plan = plan_for(spread_out(usable(samples)), interval)
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
        if elapsed < plan.last:
            # Never sooner than a step after the last query, even when the plan
            # moved its first query since: a job is not queried twice in a row
            # a moment apart.
            return max(
                submitted + timedelta(seconds=plan.first), now + timedelta(seconds=plan.step)
            )
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


def usable(samples):
    """The samples to plan on: only the precise ones once there are enough of them.

    Durations found by a coarse schedule (the naive one, before anything was
    learned) are spread over seconds; they stand in until ``MIN_SAMPLES``
    durations known to within ``PRECISE_SPREAD`` replace them.
    """
    precise = [sample for sample in samples if sample[1] <= PRECISE_SPREAD]
    return precise if len(precise) >= MIN_SAMPLES else list(samples)


def spread_out(samples):
    """The durations a plan is tried on, sorted: each ``(seconds, spread)`` sample
    stands for ``SPREAD_POINTS`` durations evenly across its span.

    A duration known only to within a few seconds (found by the naive
    schedule, a query every 5 s) must not be taken for an exact one: a plan
    fitted to exact points would query once, right at them, and then in
    tiny steps for every job that finished a little later.
    """
    points = []
    for seconds, spread in samples:
        if spread <= 0:
            points.append(seconds)
            continue
        for i in range(SPREAD_POINTS):
            offset = spread * ((i + 0.5) / SPREAD_POINTS - 0.5)
            points.append(max(0.0, seconds + offset))
    return sorted(points)


def plan_for(sorted_samples, interval):
    """The first query and step that find recent jobs soonest, on the naive query budget.

    Every candidate plan (a first query at a quantile of the samples, a step
    between ``MIN_STEP`` and ``interval``) is replayed over the recent jobs
    of the kind; of the plans that would have made no more queries on
    average than the naive schedule did for the same jobs (with a margin, as
    the next jobs are not these), the one with the least delay wins: the
    mean, plus half the 95th percentile, so no few shoppers wait a whole step.
    Replaying the samples themselves, rather than assuming a shape, fits a
    narrow peak, a wide spread or a few slow outliers alike.
    """
    count = len(sorted_samples)
    naive = sum(naive_queries(d, interval) for d in sorted_samples) / count
    # A little under the naive count: the next jobs are not the replayed ones.
    budget = max(1.0, BUDGET_SHARE * naive) + 1e-9
    # A first query at the slowest sample makes one query per job, within any
    # budget of at least one, so some plan always qualifies.
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
    tail_index = min(count - 1, math.ceil(TAIL_QUANTILE * count) - 1)
    for first in firsts:
        for step in steps:
            queries = 0.0
            delays = []
            for duration in sorted_samples:
                if duration <= first:
                    queries += 1
                    delays.append(first - duration)
                else:
                    more = math.ceil((duration - first) / step - 1e-9)
                    queries += 1 + more
                    delays.append(first + more * step - duration)
            # The average delay, and the slow tail too: a plan that finds most
            # jobs at once but some a whole step late is not the quickest for
            # the shopper who waits.
            delays.sort()
            cost = sum(delays) / count + TAIL_WEIGHT * delays[tail_index]
            # Of equally quick plans, the one with the fewest queries.
            score = (round(cost, 6), queries)
            if queries / count <= budget and (best is None or score < best[0]):
                best = (score, first, step)
    assert best is not None  # the one-query plan always qualifies
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
