"""When a browser following a job should ask about it again: the job JSON's
``check_again_in``.

A browser polling on its own clock sees a result late by half its interval on
average. The worker knows better: ``next_attempt_at`` is when it will next ask
the provider, and the query that finds the task done is followed by the
result's download and storage, a step that takes about as long from one job to
the next. So the server tells the browser to ask when that step would end: a
query that finds nothing has long ended by then (no request is spent on it), and
one that finds the result has just stored it. If the step runs longer, the
browser asks again soon; a new job is asked about once the worker had time to
submit it; and when the worker is late (busy, or not running), less and less
often.

How long the step takes is learned from the shop's own recent results: for a job
found by a query, ``finished_at - next_attempt_at`` (the worker leaves the due
time of the finding query on the row).

The answer is a delay in seconds, counted from the response: the browser's
clock and the server's never have to agree.
"""

import statistics
import threading
import time
from datetime import datetime

from ..conf import tryon_settings
from ..models import ACTIVE_STATUSES, JobStatus, TryOnJob

# The finding step before anything is known: waking, the query, the download and
# the write, for a provider nearby.
DEFAULT_STEP = 0.15
# The step is the median over this many recent results of the provider, once at
# least MIN_SAMPLES are known; steps over MAX_STEP (a worker that was stopped) are
# not steps. Read again after CACHE_SECONDS.
SAMPLES, MIN_SAMPLES, MAX_STEP = 50, 5, 60.0
CACHE_SECONDS = 30.0
# A new job: the worker takes it up and submits it, and what changes next is the
# first query's answer, seconds later; asking sooner than this only costs requests.
PICKUP = 1.0
# While the worker holds the job past the usual step (or submits it): ask again
# after as long as the overrun so far, so a long step costs a few requests and
# the answer is late by at most half of it.
HELD_MIN, HELD_MAX = 0.1, 2.0
# A job overdue (the worker busy, or stopped): back off with how late it is.
LATE_MIN, LATE_MAX = 0.2, 5.0
# However far away the next step (a retry after a fault, a rate-limit pause): the
# shopper's browser still hears of a cancel or an erasure within this.
LONGEST = 10.0

_steps: dict[str, tuple[float, float]] = {}  # provider -> (seconds, read at)
_steps_lock = threading.Lock()


def check_again_in(job: TryOnJob, now: datetime, step: float | None = None) -> float | None:
    """Seconds after ``now`` at which ``job``'s JSON may have changed; ``None`` once it
    has ended (nothing will change but an erasure). ``step``: seconds from a query's
    due time to its result stored (by default, learned: :func:`finding_step`)."""
    if job.status not in ACTIVE_STATUSES:
        return None
    pending = job.status == JobStatus.PENDING
    if job.lease_expires_at is not None and job.lease_expires_at > now:
        held_since = job.lease_expires_at.timestamp() - float(tryon_settings.LEASE_SECONDS)
        held = max(0.0, now.timestamp() - held_since)
        if pending:
            # A submit under way; a provider that answers at once ends the job with it.
            return _clamped(held, HELD_MIN, HELD_MAX)
        step = finding_step(job.provider) if step is None else step
        if held < step:
            return _clamped(step - held, HELD_MIN, LONGEST)
        return _clamped(held - step, HELD_MIN, HELD_MAX)
    if pending:
        # Nothing to see before the submit (unless the provider answers it at once).
        until_due = (job.next_attempt_at - now).total_seconds()
        if until_due > 0:  # a retry after a fault
            return _clamped(until_due + PICKUP, HELD_MIN, LONGEST)
        return _clamped(-until_due, PICKUP, LATE_MAX)
    step = finding_step(job.provider) if step is None else step
    until_stored = (job.next_attempt_at - now).total_seconds() + step
    if until_stored > 0:
        return _clamped(until_stored, HELD_MIN, LONGEST)
    return _clamped(-until_stored, LATE_MIN, LATE_MAX)


def finding_step(provider: str) -> float:
    """Seconds from the due time of the query that finds a result to the result stored:
    the median over the provider's recent results found by a query."""
    now = time.monotonic()
    cached = _steps.get(provider)
    if cached is not None and now - cached[1] < CACHE_SECONDS:
        return cached[0]
    rows = (
        TryOnJob.objects.filter(
            status=JobStatus.SUCCEEDED,
            provider=provider,
            polls__gt=0,
            finished_at__isnull=False,
        )
        .order_by("-finished_at")
        .values_list("finished_at", "next_attempt_at")[:SAMPLES]
    )
    steps = [(finished - due).total_seconds() for finished, due in rows if finished is not None]
    steps = [seconds for seconds in steps if 0 <= seconds <= MAX_STEP]
    seconds = statistics.median(steps) if len(steps) >= MIN_SAMPLES else DEFAULT_STEP
    with _steps_lock:
        _steps[provider] = (seconds, now)
    return seconds


def forget_steps() -> None:
    """Read the steps again at the next answer (tests, or after a provider change)."""
    with _steps_lock:
        _steps.clear()


def _clamped(seconds: float, low: float, high: float) -> float:
    return round(min(high, max(low, seconds)), 3)
