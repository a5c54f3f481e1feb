"""Every change of a try-on job's state: which status may follow which, what each
change writes, which signal it fires.

A :class:`Change` is built here by one of the functions below (:func:`submitted`,
:func:`failed`, :func:`canceled`, ...): the status it leads to, the fields it
writes (timestamps, error code and message, lease and submit bookkeeping,
counters) and the signal it fires once recorded. Nothing else in the app spells
out a job's status change; the writers only decide *when* to make one and apply
it in one of two ways.

**Under a lease: the worker.** The worker holds a lease on the jobs of its pass
(``lease_owner`` = the pass's token). It applies changes with
:class:`~django_tryon.leased_writes.LeasedWrites`, whose ``UPDATE`` matches
only while the row still names that token *and* is still active. A worker that
lost its lease (it stalled past ``LEASE_SECONDS``, another took the job over)
or a job canceled meanwhile is therefore never overwritten. Every such write
ends the lease. The worker's statements run in autocommit: each one is
committed when it returns, so the worker calls :meth:`Change.announce` right
after its flush reports the write recorded.

**Without a lease: everyone else** (staff actions, the shopper's erasure, and
any future writer such as a webhook view or a failover layer). They call
:func:`apply`: one conditional ``UPDATE ... WHERE status IN (<expected>)``. The
expected statuses are those the change may follow (:data:`FOLLOWS`), narrowed
by the caller if it read the row first. A status change also clears the lease:
the worker still holding the job then finds its fence gone and records
nothing. Signals fire through ``transaction.on_commit``, once per job the
statement changed, so a rolled-back request announces nothing.

**A state pushed by the provider** (a webhook, when a push provider calls the
shop as a task ends) is recorded by such a writer, never fetched again: the view
(:mod:`django_tryon.webhooks`) authenticates the delivery, finds the job by the
id in its URL and checks the body names the job's ``provider_task_id``, maps
the pushed state with :func:`status_for_state`, and applies :func:`moved`
(still at the provider) or :func:`pushed` (done: due now, with the result's
URL in the webhook's own columns), under the expectation that the job is
still in flight and nothing was pushed for it yet. The worker's next pass
claims it like any other due job and, in
:meth:`~django_tryon.worker.Worker.provider_state`, the one place a task's
state is asked for, takes the stored state instead of querying the provider:
zero queries for a job whose push arrived. A pushed failure is simply
:func:`failed`, applied by the view.
A layer that records which provider a job went to (failover) writes
``provider`` in the same way, with :func:`submitted`.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Case, F, Value, When
from django.dispatch import Signal
from django.utils import translation

from .backends import base
from .errors import message_for
from .models import (
    ACTIVE_STATUSES,
    IN_FLIGHT_STATUSES,
    TERMINAL_STATUSES,
    JobStatus,
    TryOnJob,
)
from .quota import give_credit_back
from .recall import recall_on_commit
from .redaction import redact
from .signals import job_failed, job_succeeded

__all__ = [
    "ACTIVE_STATUSES",
    "FOLLOWS",
    "IN_FLIGHT_STATUSES",
    "RETRYABLE_STATUSES",
    "TERMINAL_STATUSES",
    "Change",
    "IllegalTransition",
    "apply",
    "browser_status_lists",
    "cancel",
    "canceled",
    "ends_lease",
    "error_detail",
    "expired",
    "failed",
    "made_due",
    "moved",
    "pushed",
    "rerouted",
    "retry_later",
    "sent_back",
    "site_message",
    "status_for_state",
    "submit_started",
    "submitted",
    "succeeded",
]

S = JobStatus

#: Which status may follow which. A job moves forward only, except that staff may
#: send a failed or expired job back to ``pending`` (:func:`sent_back`), the
#: provider may report a task queued again after it said processing, and a job
#: at the provider whose task id is missing (a row written by hand) is
#: submitted again and stays ``queued``.
FOLLOWS: Mapping[str, frozenset[str]] = {
    S.PENDING: frozenset({S.QUEUED, S.SUCCEEDED, S.FAILED, S.EXPIRED, S.CANCELED}),
    S.QUEUED: frozenset({S.QUEUED, S.PROCESSING, S.SUCCEEDED, S.FAILED, S.EXPIRED, S.CANCELED}),
    S.PROCESSING: frozenset({S.QUEUED, S.SUCCEEDED, S.FAILED, S.EXPIRED, S.CANCELED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset({S.PENDING}),
    S.EXPIRED: frozenset({S.PENDING}),
    S.CANCELED: frozenset(),
}

#: Ended jobs staff may send back to the worker.
RETRYABLE_STATUSES = tuple(status for status in TERMINAL_STATUSES if S.PENDING in FOLLOWS[status])

#: What each state a backend reports (:mod:`django_tryon.backends.base`) means for the job.
_STATUS_FOR_STATE: Mapping[str, str] = {
    base.QUEUED: S.QUEUED,
    base.PROCESSING: S.PROCESSING,
    base.SUCCEEDED: S.SUCCEEDED,
    base.FAILED: S.FAILED,
}

# Fields that end a job's lease and its submit bookkeeping, written by every
# status change made without the lease (the worker's own writes end the lease too).
_FREES_LEASE = {"lease_owner": "", "lease_expires_at": None, "submit_started_at": None}

# A job's webhook columns when no provider state was pushed for its task.
_NOTHING_PUSHED = {"pushed_at": None, "pushed_result_url": ""}


def browser_status_lists() -> dict[str, list[str]]:
    """The statuses the shopper's page needs, for the button's configuration.

    ``final``: the worker will not move the job any more (stop polling, show
    the result or the error); ``working``: the job is still on its way.
    """
    return {
        "final": [str(status) for status in TERMINAL_STATUSES],
        "working": [str(status) for status in ACTIVE_STATUSES],
    }


def status_for_state(state: str) -> str:
    """The job status that a backend's task state means.

    Raises ``ValueError`` for a state the backend interface does not define.
    """
    try:
        return _STATUS_FOR_STATE[state]
    except KeyError:
        raise ValueError(f"Unknown provider task state {state!r}.") from None


class IllegalTransition(ValueError):
    """A change was asked of a job whose status it may not follow."""


@dataclass(frozen=True)
class Change:
    """One change of a job: the status it leads to (``None``: the status stays),
    the fields it writes, and the signal sent once it is recorded."""

    status: str | None
    fields: Mapping[str, Any] = field(default_factory=dict)
    signal: Signal | None = None

    @property
    def expected(self) -> tuple[str, ...]:
        """The statuses this change may be applied to."""
        if self.status is None:
            return tuple(ACTIVE_STATUSES)  # bookkeeping of a job still moving
        return tuple(status for status, after in FOLLOWS.items() if self.status in after)

    def allowed_from(self, status: str) -> bool:
        return status in self.expected

    def check(self, job: TryOnJob) -> None:
        """Raise :class:`IllegalTransition` unless this change may follow ``job``'s status."""
        if not self.allowed_from(job.status):
            raise IllegalTransition(
                f"Job {job.pk}: {job.status} cannot become {self.status or 'itself'}."
            )

    def values(self) -> dict[str, Any]:
        """Every column this change writes."""
        if self.status is None:
            return dict(self.fields)
        return {**self.fields, "status": self.status}

    def plus(self, **fields: Any) -> "Change":
        """This change, writing ``fields`` too."""
        return Change(self.status, {**self.fields, **fields}, self.signal)

    def announce(self, job: TryOnJob) -> None:
        """Send this change's signal for ``job``, once its write is committed."""
        if self.signal is not None:
            self.signal.send(sender=TryOnJob, job=job)


def site_message(code: str) -> str:
    """The shopper's message for ``code``, as stored on the job: in the site's
    language (``LANGUAGE_CODE``), whoever's request or process makes the change.
    The job JSON shows the shopper their own language from the code."""
    with translation.override(settings.LANGUAGE_CODE):
        return str(message_for(code))


# The changes -------------------------------------------------------------------


def _given(**fields: Any) -> dict[str, Any]:
    """``fields`` less those not known (``None`` or empty): what a change leaves as is."""
    return {name: value for name, value in fields.items() if value is not None and value != ""}


def submit_started(now: datetime, *, provider: str) -> Change:
    """A submit to ``provider`` is leaving: until its task id is saved, the provider may
    have a task the job does not name (a crash in between is found from this mark,
    and ``provider`` says where: a submit in doubt is never sent elsewhere)."""
    return Change(None, {"submit_started_at": now, "provider": provider})


def rerouted(*, now: datetime, detail: str = "") -> Change:
    """The provider refused the submit with an answer, so it made no task (out of
    credits, key refused): the job no longer names it, and goes where new jobs go
    (:mod:`django_tryon.failover`) at once. Not an attempt: nothing failed that a
    retry of the same call would mend."""
    fields = {
        "provider": "",
        "next_attempt_at": now,
        "submit_started_at": None,
        "error_detail": detail,
    }
    return Change(None, fields)


def submitted(
    *,
    provider: str,
    task_id: str,
    now: datetime,
    request_id: str = "",
    next_attempt_at=None,
    callback_digest: str = "",
) -> Change:
    """The provider took the job as task ``task_id``; ``callback_digest`` is the digest
    of the secret in the webhook URL it was given (:mod:`django_tryon.callbacks`), or
    ``""`` when no webhook was asked. A state pushed for an earlier task is forgotten."""
    fields = {
        "provider": provider,
        "provider_task_id": task_id,
        "submitted_at": now,
        "submit_started_at": None,
        "callback_digest": callback_digest,
        **_NOTHING_PUSHED,
        **_given(provider_request_id=request_id, next_attempt_at=next_attempt_at),
    }
    return Change(S.QUEUED, fields)


def moved(status: str, *, next_attempt_at: datetime, request_id: str = "") -> Change:
    """The provider reports the task ``queued`` or ``processing`` (a job status)."""
    if status not in IN_FLIGHT_STATUSES:
        raise IllegalTransition(f"{status} is not a status of a task at the provider.")
    fields = {"next_attempt_at": next_attempt_at, **_given(provider_request_id=request_id)}
    return Change(status, fields)


#: The longest error detail stored on a job (the start of the text is kept).
MAX_DETAIL_LENGTH = 2000


def error_detail(err: BaseException | None) -> str:
    """What ``err`` says, for staff (``TryOnJob.error_detail``): the provider's or the
    network's words and what was tried, with the API key never in it."""
    if err is None:
        return ""
    return redact(str(err) or type(err).__name__)[:MAX_DETAIL_LENGTH]


def succeeded(
    *,
    result_name: str,
    now: datetime,
    provider_seconds: float | None = None,
    request_id: str = "",
) -> Change:
    """The result is on storage as ``result_name``."""
    fields = {
        "result_image": result_name,
        "finished_at": now,
        "submit_started_at": None,
        "error_code": "",
        "error_message": "",
        "error_detail": "",
        "provider_error_code": "",
        **_given(provider_seconds=provider_seconds, provider_request_id=request_id),
    }
    return Change(S.SUCCEEDED, fields, job_succeeded)


def failed(
    code: str,
    *,
    now: datetime,
    provider_code: str = "",
    request_id: str = "",
    attempts: int | None = None,
    detail: str = "",
) -> Change:
    """The job ends ``failed`` with the stable error ``code`` (:mod:`django_tryon.errors`);
    ``detail`` is :func:`error_detail` of what caused it."""
    fields = {
        "error_code": code,
        "error_message": site_message(code),
        "error_detail": detail,
        "provider_error_code": provider_code[:100],
        "finished_at": now,
        "submit_started_at": None,
        **_given(provider_request_id=request_id, attempts=attempts),
    }
    return Change(S.FAILED, fields, job_failed)


def expired(now: datetime) -> Change:
    """The job was not finished within ``JOB_EXPIRY``."""
    fields = {
        "error_code": "expired",
        "error_message": site_message("expired"),
        "finished_at": now,
        "submit_started_at": None,
    }
    return Change(S.EXPIRED, fields, job_failed)


def retry_later(
    *, attempts: int, next_attempt_at: datetime, provider_code: str = "", detail: str = ""
) -> Change:
    """A transient fault: the job stays as it is, tried again at ``next_attempt_at``;
    staff see what failed (``detail``) meanwhile."""
    fields = {
        "attempts": attempts,
        "next_attempt_at": next_attempt_at,
        "submit_started_at": None,
        "provider_error_code": provider_code[:100],
        "error_detail": detail,
    }
    return Change(None, fields)


def canceled(now: datetime) -> Change:
    """Staff, the shopper or the shop stopped the job.

    No signal: a cancel is nobody's failure. A task already at the provider is
    recalled once the cancel is committed, by a provider that can
    (:mod:`django_tryon.recall`); the worker discards its result whatever happens.
    """
    fields = {
        "error_code": "canceled",
        "error_message": site_message("canceled"),
        "finished_at": now,
        **_FREES_LEASE,
    }
    return Change(S.CANCELED, fields)


def sent_back(now: datetime) -> Change:
    """Staff send an ended job back to the worker, as if new.

    Counters, errors and the provider's task are cleared, and ``started_at``
    becomes now: ``JOB_EXPIRY`` counts from it for a job not yet submitted,
    so an old job would otherwise expire again at once. The provider is
    cleared too (the job goes where new jobs go), except for a job whose submit
    was interrupted: that provider may hold a task for it, and a submit in
    doubt is only ever sent again to the same provider.
    """
    fields = {
        "provider": Case(
            When(error_code="submit_interrupted", then=F("provider")),
            default=Value(""),
            output_field=models.CharField(),
        ),
        "attempts": 0,
        "polls": 0,
        "error_code": "",
        "error_message": "",
        "error_detail": "",
        "provider_error_code": "",
        "provider_task_id": "",
        "provider_request_id": "",
        "submitted_at": None,
        "finished_at": None,
        "last_polled_at": None,
        "provider_seconds": None,
        "next_attempt_at": now,
        "started_at": now,
        "callback_digest": "",
        **_NOTHING_PUSHED,
        **_FREES_LEASE,
    }
    return Change(S.PENDING, fields)


def made_due(now: datetime) -> Change:
    """The job's next step is due now (a lease a worker holds is kept)."""
    return Change(None, {"next_attempt_at": now})


def pushed(now: datetime, *, result_url: str = "") -> Change:
    """The provider pushed that the job's task is done (a webhook): the worker is to
    take the result from ``result_url`` at once, without querying the provider.

    With no URL (a provider that pushed the picture itself, which is not kept in
    the database) the worker queries the task as usual, now. The lease of a worker
    querying the job at this moment ends: its answer, older than the push, is not
    recorded, and the next pass takes the job up from the pushed state.
    """
    fields = {"pushed_at": now, "pushed_result_url": result_url, **_FREES_LEASE}
    return made_due(now).plus(**fields)


def ends_lease(change: Change) -> Change:
    """``change``, ending the lease of a worker that holds the job (for a change
    applied without it, whose status leaves the worker nothing to record)."""
    return change.plus(lease_owner="", lease_expires_at=None)


# Applying a change without a lease ---------------------------------------------


def apply(
    pks: Iterable[Any],
    change: Change,
    *,
    now: datetime,
    expected: Iterable[str] | None = None,
    **match: Any,
) -> list[Any]:
    """Apply ``change`` to the jobs ``pks`` that are still in a status it may follow.

    ``expected`` narrows those statuses (the status the caller read, say);
    ``match`` adds conditions (``person_image=name``: only if the photo is the
    one read). One conditional ``UPDATE``: a job that changed meanwhile (the
    worker finished it) is left as it is. Returns the primary keys of the jobs
    changed; the change's signal is sent for each once the transaction commits.
    """
    statuses = set(change.expected)
    if expected is not None:
        statuses &= set(expected)
    pks = list(pks)
    if len(pks) > 1:
        # Only the candidates are written, so that the rows this statement
        # changed are known: all of them, or those carrying its values after.
        pks = list(
            TryOnJob.objects.filter(pk__in=pks, status__in=statuses, **match).values_list(
                "pk", flat=True
            )
        )
    if not pks or not statuses:
        return []
    written = TryOnJob.objects.filter(pk__in=pks, status__in=statuses, **match).update(
        **change.values(), updated_at=now
    )
    if written == len(pks):
        done = pks
    elif not written:
        done = []
    else:  # some changed between the read and the write (rare)
        done = list(
            TryOnJob.objects.filter(pk__in=pks, updated_at=now, **_status_of(change)).values_list(
                "pk", flat=True
            )
        )
    if change.signal is not None and done:
        _announce_on_commit(change, done)
    if change.status == S.CANCELED and done:
        # A task the provider still runs is recalled where it can be (fal).
        recall_on_commit(done)
    return done


def cancel(pks: Iterable[Any], *, now: datetime, **match: Any) -> list[Any]:
    """Cancel the jobs ``pks`` still on their way; return those canceled.

    A shopper whose try-on is canceled (by staff, or by the shop when its
    product goes) gets the daily quota credit back, as for any failure that
    is not theirs, in the same transaction as the cancel.
    """
    with transaction.atomic():
        done = apply(pks, canceled(now), now=now, **match)
        for job in TryOnJob.objects.filter(pk__in=done).exclude(quota_key=""):
            give_credit_back(sender=TryOnJob, job=job)
    return done


def _status_of(change: Change) -> dict[str, Any]:
    return {} if change.status is None else {"status": change.status}


def _announce_on_commit(change: Change, pks: list[Any]) -> None:
    def announce() -> None:
        for job in TryOnJob.objects.filter(pk__in=pks):
            change.announce(job)

    transaction.on_commit(announce)
