"""When a job's next step is due: provider queries and retries after faults.

Queries follow a learned schedule. The naive way (a query every
``POLL_INTERVAL``) finds a result half an interval late on average. Instead,
the worker learns how long the provider takes for each kind of job (provider
and clothes type) and spends no more queries than the naive schedule would
(the provider's advice is a query every 5 s), but where they count:

1. What the recent jobs of the kind say about the provider's times
   (:func:`estimate`). A query only tells that a task was done or not, so each
   job is known to have finished within a span: between the last query that
   found it unfinished (or its submission) and the one that found it done.
2. The query times that would find jobs of those times soonest on average,
   for that query budget (:func:`plan_for`): a dynamic programme over
   candidate times, the same for every job of the kind.

A job slower than all of them gets wider steps.
"""

import bisect
import math
import random
import time
from collections import Counter, defaultdict, deque
from datetime import timedelta

from .conf import tryon_settings

# Jobs remembered per kind: recent enough to follow the provider's mood.
WINDOW = 100
# Below this many jobs the schedule is the naive one.
MIN_SAMPLES = 5
# Never query one task twice less than this many seconds apart.
MIN_STEP = 0.5
# Query times a plan chooses from: the estimated times' quantiles at every 1/CANDIDATES.
CANDIDATES = 48
# The span assumed for durations read back from the database, which keeps only the
# middle: about the step of a settled schedule.
STORED_SPREAD = 1.0
# The estimate's grid: at most ESTIMATE_CELLS cells, none shorter than MIN_CELL seconds.
ESTIMATE_CELLS = 80
MIN_CELL = 0.05
# Rounds of the estimate (each shares the spans out again, then smooths).
ESTIMATE_ROUNDS = 20
# The smoothing: each cell's probability spreads over this share of its time either side.
SMOOTH_SHARE = 0.08
# A plan is reused until this many new samples, or one and this many seconds, once
# SETTLED_SAMPLES are known; before, every new sample changes the plan.
SETTLED_SAMPLES = 20
REPLAN_SAMPLES = 10
REPLAN_SECONDS = 5.0
# The share of the naive query count a plan may spend on the estimated times: a
# little under it, as the next jobs are not the learned ones.
BUDGET_SHARE = 0.9
# Steps of the search for the price of a query that meets the budget (see best_times).
PRICE_SEARCH_STEPS = 16


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
        # kind -> recent (after, by) spans: the job finished after `after` seconds
        # and by `by` seconds, counted from its submission.
        self._spans = defaultdict(lambda: deque(maxlen=WINDOW))
        self._clock = clock
        # kind -> (plan, samples learned when it was made, when it was made)
        self._plans = {}
        self._learned = defaultdict(int)

    def learn_span(self, kind, after, by):
        """Remember that a job of ``kind`` finished after ``after`` seconds and by ``by``."""
        if by is None or by < 0:
            return
        after = min(max(0.0, float(after)), float(by))
        self._spans[kind].append((after, float(by)))
        self._learned[kind] += 1

    def learn(self, kind, seconds, spread=STORED_SPREAD):
        """Remember that a job of ``kind`` took ``seconds``, known to within ``spread``
        (the width of the span the provider finished in, centred on ``seconds``)."""
        if seconds is not None and seconds >= 0:
            half = max(0.0, float(spread)) / 2
            self.learn_span(kind, seconds - half, seconds + half)

    def learn_found(self, job, now):
        """Learn from ``job``, found done by the query made at ``now``: it finished after
        the last query that found it unfinished (after its submission, if none did)."""
        if job.submitted_at is None:
            return
        by = (now - job.submitted_at).total_seconds()
        after = 0.0
        if job.last_polled_at is not None and job.last_polled_at > job.submitted_at:
            after = (job.last_polled_at - job.submitted_at).total_seconds()
        self.learn_span(job_kind(job), after, by)

    def replace_samples(self, rows):
        """Start again from ``(kind, seconds)`` rows, newest first (as read from the
        database, which keeps no spread: ``STORED_SPREAD`` is assumed)."""
        self._spans.clear()
        self._plans.clear()
        for kind, seconds in reversed(list(rows)):
            self.learn(kind, seconds)

    def spans(self, kind):
        """The ``(after, by)`` spans learned for ``kind``, oldest first: each job
        finished after ``after`` seconds and by ``by``, counted from its submission."""
        return list(self._spans.get(kind, ()))

    def samples(self, kind):
        """The middles of the spans learned for ``kind``, oldest first."""
        return [(after + by) / 2 for after, by in self._spans.get(kind, ())]

    def plan(self, kind, interval):
        """The plan for ``kind``, or ``None`` while too little is known (naive schedule).

        Planning reads every sample of the kind, so once ``SETTLED_SAMPLES``
        are known a plan is reused until ``REPLAN_SAMPLES`` new ones arrived,
        or one did and ``REPLAN_SECONDS`` passed: at hundreds of results a
        second the worker plans a few times a second, not once per result.
        """
        spans = self._spans.get(kind, ())
        if len(spans) < MIN_SAMPLES:
            return None
        cached = self._plans.get(kind)
        learned, now = self._learned[kind], self._clock()
        if cached is not None:
            plan, learned_then, made_at = cached
            new = learned - learned_then
            settled = len(spans) >= SETTLED_SAMPLES  # early on, every sample counts
            fresh = new == 0 or (
                settled and new < REPLAN_SAMPLES and now - made_at < REPLAN_SECONDS
            )
            if fresh and plan.interval == interval:
                return plan
        times, weights = estimate(spans)
        plan = plan_for(times, weights, interval)
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
        # Never two queries less than MIN_STEP apart, even when a newer plan
        # moved its query times since the last one.
        planned = plan.next_after(elapsed + MIN_STEP)
        if planned is not None:
            return submitted + timedelta(seconds=planned)
        # Slower than every learned job: widen the steps, up to twice the naive interval.
        overtime = elapsed - plan.last
        return now + timedelta(seconds=min(2 * interval, max(plan.step, overtime / 2)))


class Plan:
    """A job's query times, in seconds after its submission, for the usual durations;
    after the last one, queries ``step`` seconds apart at least."""

    def __init__(self, times, interval):
        self.times = tuple(times)
        self.interval = interval
        last_gap = self.times[-1] - self.times[-2] if len(self.times) > 1 else interval
        self.step = max(MIN_STEP, min(interval, last_gap))

    @property
    def first(self):
        return self.times[0]

    @property
    def last(self):
        return self.times[-1]

    def next_after(self, elapsed):
        """The first query time at or after ``elapsed``, or ``None`` past the last."""
        index = bisect.bisect_left(self.times, elapsed - 1e-6)
        return self.times[index] if index < len(self.times) else None

    def __repr__(self):
        times = ", ".join(f"{t:.2f}" for t in self.times)
        return f"Plan(times=[{times}], step={self.step:.2f})"


def naive_queries(duration, interval):
    """Queries the naive schedule makes for a job that takes ``duration`` seconds."""
    return max(1, math.ceil(duration / interval - 1e-9))


def estimate(spans, smooth_share=SMOOTH_SHARE):
    """The provider's times, from jobs each known to have finished within a span
    ``(after, by)``: ``(times, weights)``, times sorted, weights summing to 1
    (``smooth_share``: the smoothing's reach, below).

    A span says a job finished somewhere in it, not where. Beside spans that
    overlap it, it says more: this is Turnbull's self-consistent estimate
    (each span's job shared among the grid cells it covers in proportion to
    their estimated probability, each cell's probability estimated from those
    shares, again until the two agree), smoothed after each round (the EMS
    algorithm) over a few percent of each time either side. The smoothing
    keeps the estimate from piling onto the very cells the last plan queried
    at, as a plan made for such spikes would keep its steps where they are,
    and carries what narrow spans show into the wide ones beside them: a job
    found done by its first query is known only to have finished since the
    submission.
    """
    longest = max(by for _, by in spans)
    cell = max(MIN_CELL, longest / ESTIMATE_CELLS)
    counts: Counter[tuple[int, int]] = Counter()
    for after, by in spans:
        low = max(0, math.floor(after / cell + 1e-9))
        high = max(low + 1, math.ceil(by / cell - 1e-9))
        counts[(low, high)] += 1
    size = max(high for _, high in counts)
    kernels = [_kernel(index, size, smooth_share) for index in range(size)]
    share = [0.0] * size
    for (low, high), count in counts.items():
        for index in range(low, high):
            share[index] += count / (high - low)
    for _ in range(ESTIMATE_ROUNDS):
        shared = [0.0] * size
        for (low, high), count in counts.items():
            part = share[low:high]
            whole = sum(part)
            if whole <= 0:  # smoothed away: share it evenly again
                part, whole = [1.0] * (high - low), float(high - low)
            for offset, value in enumerate(part):
                shared[low + offset] += value * count / whole
        share = [0.0] * size
        for index, value in enumerate(shared):
            if value > 0:
                start, spread = kernels[index]
                for offset, part in enumerate(spread):
                    share[start + offset] += value * part
    total = sum(share)
    times = [(index + 0.5) * cell for index in range(size) if share[index] > 1e-9 * total]
    weights = [value / total for value in share if value > 1e-9 * total]
    return times, weights


def _kernel(index, size, smooth_share):
    """Where cell ``index`` spreads its probability when smoothing: ``(first cell,
    shares)``, a triangle over ``smooth_share`` of its time either side."""
    reach = max(1, round(smooth_share * (index + 0.5)))
    low, high = max(0, index - reach), min(size, index + reach + 1)
    heights = [reach + 1 - abs(other - index) for other in range(low, high)]
    whole = sum(heights)
    return low, [height / whole for height in heights]


def plan_for(sorted_times, weights, interval):
    """The query times that find jobs of these times (and weights) soonest on
    average, for at most ``BUDGET_SHARE`` of the queries a query every
    ``interval`` would make (see :func:`best_times`).
    """
    whole = sum(weights)
    naive = (
        sum(w * naive_queries(t, interval) for t, w in zip(sorted_times, weights, strict=True))
        / whole
    )
    budget = max(1.0, BUDGET_SHARE * naive)
    return Plan(times_within(sorted_times, weights, budget), interval)


def times_within(sorted_times, weights, budget, min_gap=MIN_STEP, levels=CANDIDATES):
    """The times to look at jobs of these times (and weights) that find them soonest on
    average, for at most ``budget`` looks per job on average, at least ``min_gap``
    apart (see :func:`best_times`). The candidate times are quantiles of the times
    (at every ``1/levels``), as a look is only worth making where jobs finish.
    """
    whole = sum(weights)
    cumulative, level, candidates = 0.0, 0, {max(min_gap, sorted_times[-1])}
    for time_, weight in zip(sorted_times, weights, strict=True):
        cumulative += weight
        while level <= levels and cumulative >= whole * level / levels - 1e-12:
            candidates.add(max(min_gap, time_))
            level += 1
    table = QueryTable(sorted_times, weights, sorted(candidates))
    times, _queries, _delay = best_times(table, budget, min_gap)
    return times


def best_times(table, budget, min_gap):
    """Of the query times taken from ``table``'s candidates, at least ``min_gap``
    apart, the first at ``min_gap`` or later, those with the least mean delay
    for at most ``budget`` queries per job on average. Returns ``(times,
    queries per job, mean delay)``.

    Each query is given a price (the delay one query is worth): for a price,
    :meth:`QueryTable.solve` finds the times that cost least, and the price
    is searched for the lowest one within the budget. A query at the last
    candidate alone finds every job for one query each, so some plan is
    always within a budget of one.
    """
    # One query at the last candidate: the plan of last resort. Prices are searched
    # from near zero (every candidate bought) up, on a log scale.
    last = table.candidates[-1]
    chosen = ([last], 1.0, last - table.total[-1] / table.whole)
    low, high = 1e-4, 1e3 * (last + 1.0)
    for _ in range(PRICE_SEARCH_STEPS):
        middle = math.sqrt(low * high)
        plan = table.solve(middle, min_gap)
        if plan[1] <= budget + 1e-9:
            chosen, high = plan, middle
        else:
            low = middle
    return chosen


class QueryTable:
    """Weighted job times and candidate query times (sorted; the last at or after the
    longest time), with the weight and weighted sum of the times done by each
    candidate: what the dynamic programme of :meth:`solve` reads."""

    def __init__(self, sorted_times, weights, candidates):
        self.candidates = candidates
        self.whole = sum(weights)
        weight_before, sum_before = [0.0], [0.0]
        for time_, weight in zip(sorted_times, weights, strict=True):
            weight_before.append(weight_before[-1] + weight)
            sum_before.append(sum_before[-1] + weight * time_)
        counts = [bisect.bisect_right(sorted_times, c) for c in candidates]
        self.done = [weight_before[n] for n in counts]
        self.total = [sum_before[n] for n in counts]

    def solve(self, price, min_gap):
        """The times that minimise mean delay + ``price`` x queries per job:
        ``(times, queries per job, mean delay)``.

        Going back from the latest candidate, the best cost from each
        candidate on (given a query there) is the cheapest next query: the
        delay of the jobs it finds, plus the price once for every job not
        found yet, plus the best cost from there.
        """
        candidates, done, total, whole = self.candidates, self.done, self.total, self.whole
        size = len(candidates)
        origin = size  # the submission: time 0, nothing done
        best = [0.0] * (size + 1)
        follow = [-1] * (size + 1)
        for i in [*range(size - 1, -1, -1), origin]:
            at, done_i, total_i = (
                (0.0, 0.0, 0.0) if i == origin else (candidates[i], done[i], total[i])
            )
            left = whole - done_i
            if left <= 1e-9 * whole:
                continue  # every job found: no more queries
            lowest, choice = math.inf, -1
            for j in range(0 if i == origin else i + 1, size):
                when = candidates[j]
                if when - at < min_gap - 1e-9:
                    continue
                cost = when * (done[j] - done_i) - (total[j] - total_i) + price * left + best[j]
                if cost < lowest:
                    lowest, choice = cost, j
            best[i], follow[i] = lowest, choice
        times, queries, delay = [], 0.0, 0.0
        i, done_i, total_i = origin, 0.0, 0.0
        while follow[i] != -1:
            j = follow[i]
            queries += whole - done_i
            delay += candidates[j] * (done[j] - done_i) - (total[j] - total_i)
            times.append(candidates[j])
            i, done_i, total_i = j, done[j], total[j]
        return times, queries / whole, delay / whole


def retry_delay(attempts, *, rng=random):
    """Exponential backoff with equal jitter after the ``attempts``-th transient fault:
    half the capped exponential delay, plus a random share of the other half.

    The jitter spreads the retries of many jobs that failed together (a
    provider outage), so they do not return in one burst; the fixed half
    keeps a job from coming back at once after a fault, as full jitter (a
    random share of the whole) would now and then.
    """
    base = tryon_settings.RETRY_BACKOFF
    cap = tryon_settings.RETRY_BACKOFF_MAX
    ceiling = min(cap, base * (2 ** max(0, attempts - 1)))
    return timedelta(seconds=ceiling / 2 + rng.uniform(0, ceiling / 2))
