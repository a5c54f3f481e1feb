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
submit it and query it once; and when the worker is late (busy, or not
running), less and less often.

Three durations are learned from the shop's own recent results found by a
query (cached a while, one query): the finding step, ``finished_at -
next_attempt_at`` (the worker leaves the due time of the finding query on the
row); the pickup, ``submitted_at - created_at``; and the first query's offset,
``next_attempt_at - submitted_at`` of the results found by their first query.
A new job is first asked about after the sum, when its first query may have
found it, rather than in between, when only its submit can have happened.

The answer is a delay in seconds, counted from the response: the browser's
clock and the server's never have to agree.
"""

import statistics
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from ..conf import tryon_settings
from ..models import JobStatus, TryOnJob
from ..transitions import ACTIVE_STATUSES

# The finding step before anything is known: waking, the query, the download and
# the write, for a provider nearby.
DEFAULT_STEP = 0.15
# Learned from this many recent results, once at least MIN_SAMPLES are known;
# durations over MAX_SECONDS (a worker that was stopped) are not the worker's.
# Read again after CACHE_SECONDS.
SAMPLES, MIN_SAMPLES, MAX_SECONDS = 50, 5, 60.0
CACHE_SECONDS = 30.0
# The pickup and the first query's offset are taken low (this quantile): a read
# that comes early costs one request, one that comes late costs the shopper time.
EARLY_QUANTILE = 0.25
# A new job, before anything is learned: the worker takes it up and submits it,
# and what changes next is the first query's answer, seconds later; asking
# sooner than this only costs requests.
PICKUP = 1.0
# While the worker holds the job past the usual step (or submits it): ask again
# after as long as the overrun so far, so a long step costs a few requests and
# the answer is late by at most half of it.
HELD_MIN, HELD_MAX = 0.1, 2.0
# A job overdue (the worker busy, or stopped): back off with how late it is.
LATE_MIN, LATE_MAX = 0.2, 5.0
# A job whose provider pushes its end (a webhook) ends when the provider finishes,
# which the worker's plan does not tell: the browser keeps to its own clock (it
# never reads sooner than that, whatever the hint).
AWAITING_PUSH = HELD_MIN
# However far away the next step (a retry after a fault, a rate-limit pause): the
# shopper's browser still hears of a cancel or an erasure within this.
LONGEST = 10.0


@dataclass(frozen=True)
class Learned:
    """The worker's usual durations, in seconds (``None``: too few results yet)."""

    #: From a query's due time to its result stored.
    step: float = DEFAULT_STEP
    #: From a job's creation to its submit.
    pickup: float | None = None
    #: From a job's submit to its first query.
    first_query: float | None = None


_learned: dict[str, tuple[Learned, float]] = {}  # provider ("" for all) -> (learned, read at)
_learned_lock = threading.Lock()


def check_again_in(job: TryOnJob, now: datetime, learned: Learned | None = None) -> float | None:
    """Seconds after ``now`` at which ``job``'s JSON may have changed; ``None`` once it
    has ended (nothing will change but an erasure). ``learned``: the worker's usual
    durations (by default, from the recent results: :func:`learned_timings`)."""
    if job.status not in ACTIVE_STATUSES:
        return None
    if learned is None:
        learned = learned_timings(job.provider)
    pending = job.status == JobStatus.PENDING
    if job.lease_expires_at is not None and job.lease_expires_at > now:
        held_since = job.lease_expires_at.timestamp() - float(tryon_settings.LEASE_SECONDS)
        held = max(0.0, now.timestamp() - held_since)
        if pending:
            # A submit under way; a provider that answers at once ends the job with it.
            return _clamped(held, HELD_MIN, HELD_MAX)
        if held < learned.step:
            return _clamped(learned.step - held, HELD_MIN, LONGEST)
        return _clamped(held - learned.step, HELD_MIN, HELD_MAX)
    if job.callback_digest and job.pushed_at is None and not pending:
        # Its next query is only the webhook's fallback, far off.
        return AWAITING_PUSH
    until_due = (job.next_attempt_at - now).total_seconds()
    if pending:
        if until_due > 0:  # a submit retried after a fault
            return _clamped(until_due + PICKUP, HELD_MIN, LONGEST)
        if learned.pickup is not None and learned.first_query is not None:
            # When the first query may have stored the result: nothing shows before.
            # A job picked up late is still queried that long after its submit.
            to_submit = max(0.0, learned.pickup + until_due)
            ahead = to_submit + learned.first_query + learned.step
            return _clamped(ahead, PICKUP, LONGEST)
        return _clamped(-until_due, PICKUP, LATE_MAX)
    until_stored = until_due + learned.step
    if until_stored > 0:
        return _clamped(until_stored, HELD_MIN, LONGEST)
    return _clamped(-until_stored, LATE_MIN, LATE_MAX)


def learned_timings(provider: str) -> Learned:
    """The worker's usual durations for ``provider`` (``""``: any provider, for jobs not
    yet submitted), from its recent results found by a query."""
    now = time.monotonic()
    cached = _learned.get(provider)
    if cached is not None and now - cached[1] < CACHE_SECONDS:
        return cached[0]
    jobs = TryOnJob.objects.filter(
        status=JobStatus.SUCCEEDED,
        polls__gt=0,
        finished_at__isnull=False,
        submitted_at__isnull=False,
    )
    if provider:
        jobs = jobs.filter(provider=provider)
    rows = jobs.order_by("-finished_at").values_list(
        "created_at", "submitted_at", "next_attempt_at", "finished_at", "polls"
    )[:SAMPLES]
    steps, pickups, firsts = [], [], []
    for created, submitted, due, finished, polls in rows:
        if finished is None or submitted is None:
            continue
        steps.append((finished - due).total_seconds())
        pickups.append((submitted - created).total_seconds())
        if polls == 1:
            firsts.append((due - submitted).total_seconds())
    learned = Learned(
        step=_typical(steps, statistics.median, DEFAULT_STEP),
        pickup=_typical(pickups, _early, None),
        first_query=_typical(firsts, _early, None),
    )
    with _learned_lock:
        _learned[provider] = (learned, now)
    return learned


def forget_timings() -> None:
    """Learn again at the next answer (tests, or after a provider change)."""
    with _learned_lock:
        _learned.clear()


def _typical(values, summary, default):
    values = [seconds for seconds in values if 0 <= seconds <= MAX_SECONDS]
    return summary(values) if len(values) >= MIN_SAMPLES else default


def _early(values):
    return statistics.quantiles(values, n=100, method="inclusive")[int(EARLY_QUANTILE * 100) - 1]


def _clamped(seconds: float, low: float, high: float) -> float:
    return round(min(high, max(low, seconds)), 3)
