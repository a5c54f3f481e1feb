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

A job whose provider pushes its end (a webhook) ends when the provider
finishes, which no plan of the worker's tells. Its reads are planned instead,
from the shop's recent pushed results (:func:`read_plan`, :mod:`.reads`), for
no more reads per job on average than the button's own clock would have made.
Such an answer is marked planned: the button follows it even where it comes
sooner than its clock's read of the same rank. Once the webhook came, the
next read is when the worker usually has the result stored.

The answer is a delay in seconds, counted from the response: the browser's
clock and the server's never have to agree.
"""

import dataclasses
import statistics
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from ..conf import tryon_settings
from ..models import JobStatus, TryOnJob
from ..transitions import ACTIVE_STATUSES
from .reads import LONGEST, PUSH_SAMPLES, ReadPlan, plan_reads

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
# The step from a webhook to the result stored is taken high (this quantile): the read
# that follows a push then finds the result, once.
LATE_QUANTILE = 0.9
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
# which the worker's plan does not tell. Until enough pushed results are known to
# plan its reads, the browser keeps to its own clock (it never reads sooner than
# that, whatever an unplanned hint says).
AWAITING_PUSH = HELD_MIN


@dataclass(frozen=True)
class Learned:
    """The worker's usual durations, in seconds (``None``: too few results yet)."""

    #: From a query's due time to its result stored.
    step: float = DEFAULT_STEP
    #: From a job's creation to its submit.
    pickup: float | None = None
    #: From a job's submit to its first query.
    first_query: float | None = None


@dataclass(frozen=True)
class Hint:
    """The answer's ``check_again_in`` and whether it comes from a read plan."""

    seconds: float | None
    planned: bool = False


_learned: dict[str, tuple[Learned, float]] = {}  # provider ("" for all) -> (learned, read at)
_plans: dict[str, tuple[ReadPlan | None, float]] = {}  # provider -> (read plan, read at)
_learned_lock = threading.Lock()


def check_again_in(job: TryOnJob, now: datetime, learned: Learned | None = None) -> float | None:
    """Seconds after ``now`` at which ``job``'s JSON may have changed; ``None`` once it
    has ended (nothing will change but an erasure). ``learned``: the worker's usual
    durations (by default, from the recent results: :func:`learned_timings`)."""
    return hint_for(job, now, learned).seconds


def hint_for(
    job: TryOnJob,
    now: datetime,
    learned: Learned | None = None,
    plan: ReadPlan | bool | None = True,
) -> Hint:
    """:func:`check_again_in`, and whether it is planned (:func:`read_plan`). ``plan``:
    the read plan for ``job``'s provider (``True``: the one learned from the recent
    pushed results; ``None``: none yet)."""
    if job.status not in ACTIVE_STATUSES:
        return Hint(None)
    held = job.lease_expires_at is not None and job.lease_expires_at > now
    pushed = bool(job.callback_digest) and job.pushed_at is not None
    awaiting_push = bool(job.callback_digest) and not pushed and not held
    may_be_pushed = (
        job.status == JobStatus.PENDING and bool(tryon_settings.WEBHOOK_BASE_URL) and not held
    )
    if pushed or awaiting_push or may_be_pushed:
        # A job not yet submitted has no provider: every provider's pushed results count
        # (none: the shop's jobs are not pushed, and the worker's timings say when).
        if plan is True:
            plan = read_plan(job.provider)
        if isinstance(plan, ReadPlan):
            if pushed:
                assert job.pushed_at is not None
                waited = (now - job.pushed_at).total_seconds()
                return Hint(_after_push(plan, waited), planned=True)
            elapsed = (now - job.created_at).total_seconds()
            return Hint(_clamped(plan.next_after(elapsed), HELD_MIN, LONGEST), planned=True)
    if learned is None:
        learned = learned_timings(job.provider)
    return Hint(_unplanned(job, now, learned))


def _after_push(plan: ReadPlan, waited: float) -> float:
    """Seconds to the next read of a job pushed ``waited`` seconds ago: when the worker
    usually has its result stored, then as long as the overrun so far.

    A planned read that came between the push and the storage counted, in the
    plan, as one that found nothing; this read takes the place of the next
    planned one, sooner.
    """
    step = DEFAULT_STEP if plan.push_step is None else plan.push_step
    return _clamped(abs(step - waited), HELD_MIN, HELD_MAX)


def _unplanned(job: TryOnJob, now: datetime, learned: Learned) -> float | None:
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
    return _remembered(_learned, provider, _learn_timings)


def _learn_timings(provider: str) -> Learned:
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
    return Learned(
        step=_typical(steps, statistics.median, DEFAULT_STEP),
        pickup=_typical(pickups, _early, None),
        first_query=_typical(firsts, _early, None),
    )


def read_plan(provider: str) -> ReadPlan | None:
    """The read plan for jobs of ``provider`` (``""``: any provider, for jobs not yet
    submitted) awaiting their webhook, from its recent pushed results (``None``
    while fewer than ``PUSH_MIN_SAMPLES`` are known)."""
    return _remembered(_plans, provider, _learn_read_plan)


def _learn_read_plan(provider: str) -> ReadPlan | None:
    jobs = TryOnJob.objects.filter(
        status=JobStatus.SUCCEEDED,
        pushed_at__isnull=False,
        finished_at__isnull=False,
    )
    if provider:
        jobs = jobs.filter(provider=provider)
    rows = jobs.order_by("-finished_at").values_list("created_at", "pushed_at", "finished_at")[
        :PUSH_SAMPLES
    ]
    plan = plan_reads(
        [(finished - created).total_seconds() for created, _, finished in rows if finished]
    )
    steps = [
        (finished - pushed).total_seconds() for _, pushed, finished in rows if finished and pushed
    ]
    if plan is None:
        return None
    return dataclasses.replace(plan, push_step=_typical(steps, _late, DEFAULT_STEP))


def _remembered(store, provider, learn):
    """What ``learn(provider)`` answered less than ``CACHE_SECONDS`` ago, or its answer
    now (one query of recent results, for every answer of the next seconds)."""
    now = time.monotonic()
    cached = store.get(provider)
    if cached is not None and now - cached[1] < CACHE_SECONDS:
        return cached[0]
    value = learn(provider)
    with _learned_lock:
        store[provider] = (value, now)
    return value


def forget_timings() -> None:
    """Learn again at the next answer (tests, or after a provider change)."""
    with _learned_lock:
        _learned.clear()
        _plans.clear()


def _typical(values, summary, default):
    values = [seconds for seconds in values if 0 <= seconds <= MAX_SECONDS]
    return summary(values) if len(values) >= MIN_SAMPLES else default


def _early(values):
    return _percentile(values, EARLY_QUANTILE)


def _late(values):
    return _percentile(values, LATE_QUANTILE)


def _percentile(values, quantile):
    return statistics.quantiles(values, n=100, method="inclusive")[int(quantile * 100) - 1]


def _clamped(seconds: float, low: float, high: float) -> float:
    return round(min(high, max(low, seconds)), 3)
