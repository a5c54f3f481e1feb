"""The reads of a job whose provider pushes its end (a webhook), planned.

Such a job ends when the provider finishes, which no plan of the worker's
tells: before, a browser read it on its own clock (1 s after sending, then 1.5
times longer each time, up to every 5 s), and saw the result up to 5 s after it
was stored. The shop's recent pushed results say when results come: from a
job's creation to its result stored, most within a few seconds of the median.
The planner the worker uses for its provider queries
(:func:`django_tryon.schedule.times_within`, a dynamic programme over the
smoothed distribution of those times) chooses the read times that see the
results soonest on average, for no more reads per job on average than that
clock would have made for the same results: where the clock reads in the first
seconds, when nothing can have ended, the plan reads where results come.

The budget is the web server's: a read costs one cheap database query, never a
provider call. It holds on average, not for every job: a job slower than most
is read more often than the clock would have, a quick one less.
"""

import bisect
import math
from dataclasses import dataclass

from ..schedule import estimate, times_within

# The button's own clock (tryon.js: CLOCK_FIRST_MS, CLOCK_GROWTH, CLOCK_MAX_MS), in
# milliseconds as it counts them: the reads a plan may not outspend.
CLOCK_FIRST_MS, CLOCK_GROWTH, CLOCK_MAX_MS = 1000, 1.5, 5000
# Read plans are made from this many recent pushed results, once at least
# PUSH_MIN_SAMPLES are known, and spend at most READ_SHARE of the clock's reads on
# them: a little under, as the next jobs are not the learned ones.
PUSH_SAMPLES, PUSH_MIN_SAMPLES = 100, 20
READ_SHARE = 0.95
# The learned times are smoothed wider than the worker's query estimate is (a
# quarter of each time either side), and the planner chooses among twice as many
# candidate times: the next results fall around the learned ones, and a plan
# that reads there too sees the slowest and quickest sooner (about 0.3 s off the
# 95th percentile, at the same reads, on log-normal times of sigma 0.35).
READ_SMOOTH_SHARE = 0.25
READ_CANDIDATES = 96
# Plans made, each for fewer reads, until one is within the budget.
PLAN_ROUNDS = 20
# However far away the next step (a retry after a fault, a rate-limit pause, a
# planned read): the shopper's browser still hears of a cancel or an erasure within
# this.
LONGEST = 10.0


@dataclass(frozen=True)
class ReadPlan:
    """When to read a job whose provider pushes its end, in seconds after its creation;
    after the last, on the clock's longest interval."""

    times: tuple[float, ...]
    #: Reads per job on average over the results it was made from, and the clock's.
    reads: float
    clock_reads: float
    #: From the webhook received to the result stored (the worker's pickup, download
    #: and write), taken high so that a read then finds the result stored; ``None``
    #: until known.
    push_step: float | None = None

    def next_after(self, elapsed: float) -> float:
        """Seconds from ``elapsed`` (after the job's creation) to its next read."""
        index = bisect.bisect_right(self.times, elapsed + 1e-6)
        if index < len(self.times):
            return self.times[index] - elapsed
        return CLOCK_MAX_MS / 1000


def plan_reads(seconds: list[float], share: float = READ_SHARE) -> ReadPlan | None:
    """The read plan for jobs whose results were seen ``seconds`` after their creation
    (``None`` for fewer than ``PUSH_MIN_SAMPLES``).

    The planner spends at most ``share`` of the reads the clock makes for the same
    results, on average per job (a share over 1: what more reads would buy). The
    reads that keep any two ``LONGEST`` apart at most (so a cancel is still heard
    of) are part of the plan, and count: while they take the plan over budget, it
    is made again for less (``None`` if it never fits: the clock, then).
    """
    times = sorted(value for value in seconds if value >= 0)
    if len(times) < PUSH_MIN_SAMPLES:
        return None
    clock = mean_reads(clock_times(times[-1]), times)
    # Smoothed, as the worker's estimate is: a plan fitted to the very times of the
    # last results would leave gaps where the next ones fall.
    grid, weights = estimate([(at, at) for at in times], READ_SMOOTH_SHARE)
    budget = allowed = share * clock
    for _ in range(PLAN_ROUNDS):
        chosen = times_within(grid, weights, budget, levels=READ_CANDIDATES)
        planned = [round(at, 3) for at in _within_longest(chosen)]
        reads = mean_reads(planned, times)
        if reads <= allowed:
            return ReadPlan(tuple(planned), reads, clock)
        budget -= max(reads - allowed, budget / 20)
    return None  # no plan within the clock's reads: the clock


def clock_times(until: float) -> list[float]:
    """The button's own clock's reads, in seconds after sending, up to the first at or
    after ``until``."""
    reads: list[float] = []
    at, interval = 0, CLOCK_FIRST_MS
    while not reads or reads[-1] < until:
        at += interval
        interval = min(CLOCK_MAX_MS, round(interval * CLOCK_GROWTH))
        reads.append(at / 1000)
    return reads


def mean_reads(reads: list[float], seconds: list[float]) -> float:
    """Reads per job on average, reading at ``reads`` (then every ``CLOCK_MAX_MS``)
    until the result is seen, for results seen ``seconds`` after creation."""
    total = 0
    for value in seconds:
        index = bisect.bisect_left(reads, value)
        if index < len(reads):
            total += index + 1
        else:
            total += len(reads) + math.ceil((value - reads[-1]) * 1000 / CLOCK_MAX_MS)
    return total / len(seconds)


def _within_longest(times: list[float]) -> list[float]:
    """``times`` with reads added so that none is more than ``LONGEST`` after the one
    before (or after the creation)."""
    spaced, last = [], 0.0
    for at in times:
        while at - last > LONGEST:
            last += LONGEST
            spaced.append(last)
        spaced.append(at)
        last = at
    return spaced


def lateness(reads: list[float], seconds: list[float]) -> list[float]:
    """How long after each result, seen ``seconds`` after its job's creation, the first
    read at or after it comes, reading at ``reads`` (then every ``CLOCK_MAX_MS``)."""
    late = []
    step = CLOCK_MAX_MS / 1000
    for value in seconds:
        index = bisect.bisect_left(reads, value)
        if index < len(reads):
            late.append(reads[index] - value)
        else:
            late.append(-(value - reads[-1]) % step)
    return late
