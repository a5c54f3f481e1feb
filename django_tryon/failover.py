"""Failover between providers: which backend a job goes to, and when new jobs switch.

The primary (``TRYON["BACKEND"]``) and its fallbacks (``TRYON["FALLBACK_BACKENDS"]``)
form a :class:`ProviderChain`, in that order. The rules:

- **New jobs** go to the first provider that is up. A provider goes down when
  it refuses our key (:class:`~.backends.base.ConfigurationError`), says the
  account is out of credits (:class:`~.backends.base.OutOfCreditsError`), or
  has failed transiently (timeouts, connection errors, 5xx, unreadable answers;
  not 429, which only asks to slow down) with no call answered for
  ``FAILOVER_AFTER`` seconds. If none is up, new jobs go to the first that is
  down for failing (it may answer again), else to the primary, and end as they
  would without failover.
- **A job stays where it was sent.** Its ``provider`` is written with the mark
  that precedes its submit (:func:`~.transitions.submit_started`), so even a
  worker that dies mid-submit leaves the job naming the provider that may hold
  a task for it. A job whose ``provider`` is set is queried there and, if its
  submit is ever sent again (``RESUBMIT_INTERRUPTED``, staff retrying an
  interrupted one), sent there again: never to a second provider. The worker
  clears ``provider`` only when a submit certainly made no task (an answer that
  refused it), and the job then goes where new jobs go.
- **Back to the primary**: every ``FAILOVER_PROBE_INTERVAL`` seconds one worker
  asks a provider that is down for its credits, the cheapest call, charged
  nothing. An answer with credits left (or any answer, from a backend that
  cannot tell its credits) puts it up again, and new jobs go back to it.

Several worker processes agree without a coordinator: the state lives in
:class:`~.models.ProviderHealth` rows, read once per pass and changed only by
conditional ``UPDATE`` statements. Of two workers that see the same refusal,
one changes the row, and that one logs the switch and mails the site's admins
(the first switch of its kind of the day: :mod:`.notices`).
A chain of one provider (no fallbacks) keeps no state at all.
"""

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When

from . import transitions
from .backends import configured_classes, fallback_class
from .backends.base import (
    ConfigurationError,
    OutOfCreditsError,
    RateLimitedError,
    TransientError,
    TryOnBackend,
)
from .conf import tryon_settings
from .models import DownReason, JobStatus, ProviderHealth, ProviderState, TryOnJob
from .notices import mail_admins_once_a_day
from .redaction import get_logger

logger = get_logger("django_tryon.failover")

#: (connect, read) timeouts of a probe: a worker's pass waits on it.
PROBE_TIMEOUTS = (2.0, 5.0)
#: What each refusal means for the provider that made it.
REFUSALS: tuple[tuple[type[BaseException], str], ...] = (
    (OutOfCreditsError, DownReason.OUT_OF_CREDITS),
    (ConfigurationError, DownReason.CONFIGURATION),
)
#: Staff's words for why a provider is down, in logs and mails.
REASON_WORDS = {
    DownReason.OUT_OF_CREDITS: "is out of credits (top the account up)",
    DownReason.CONFIGURATION: "refused the API key (check its key and account)",
    DownReason.UNAVAILABLE: "has failed for longer than TRYON['FAILOVER_AFTER']",
}


def refusal_reason(err: BaseException | None) -> str:
    """The :class:`~.models.DownReason` a provider's refusal means, or ``""``."""
    return next((reason for kind, reason in REFUSALS if isinstance(err, kind)), "")


def counts_as_failure(err: BaseException | None) -> bool:
    """Whether ``err``, raised by a call to a provider, says the provider is failing.

    A 429 asks to slow down: the provider is there. Errors of the result's
    download are the download's (:mod:`django_tryon.results`), not the API's.
    """
    from .results import InvalidResultError, ResultDownloadError

    return (
        isinstance(err, TransientError)
        and not isinstance(err, (RateLimitedError, ResultDownloadError, InvalidResultError))
        and not refusal_reason(err)
    )


def serving(names: Sequence[str], health: dict[str, ProviderHealth]) -> str:
    """Of the providers ``names`` (in order), the one new jobs go to, given their
    ``health`` rows: the first up; else the first down for failing; else the first."""
    for name in names:
        row = health.get(name)
        if row is None or row.state == ProviderState.UP:
            return name
    for name in names:
        if health[name].reason == DownReason.UNAVAILABLE:
            return name
    return names[0]


class ProviderChain:
    """The primary backend and its fallbacks, and which of them new jobs go to.

    ``backends`` are in order, each with its own ``provider_name`` (the system
    checks refuse two of one name: a job names its provider by it). ``probes``
    are the same providers built with short timeouts, for :meth:`probe`
    (default: ``backends``). One instance per worker process; the state it
    acts on is in the database, read by :meth:`refresh`.
    """

    def __init__(
        self,
        backends: Sequence[TryOnBackend],
        *,
        probes: Sequence[TryOnBackend] | None = None,
    ):
        if not backends:
            raise ValueError("A provider chain needs at least one backend.")
        self.backends = list(backends)
        self.primary = self.backends[0]
        self.by_name = {backend.provider_name: backend for backend in self.backends}
        self.probes = {
            backend.provider_name: probe
            for backend, probe in zip(self.backends, probes or self.backends, strict=True)
        }
        #: The rows as last read, by provider name (none: up, never failed).
        self.health: dict[str, ProviderHealth] = {}
        # When the last idle check was made, by the worker's clock (the one it passes).
        self._idle_checked_at: datetime | None = None

    @property
    def failover(self) -> bool:
        """Whether there is anywhere to switch to (without fallbacks nothing is kept)."""
        return len(self.backends) > 1

    # Which provider ----------------------------------------------------------------

    def backend_for(self, job: TryOnJob) -> TryOnBackend | None:
        """The backend that holds ``job``'s task, or may (its ``provider``); the primary
        for a job that names none; ``None`` if the one it names is not configured."""
        if not job.provider:
            return self.primary
        return self.by_name.get(job.provider)

    def is_up(self, name: str) -> bool:
        row = self.health.get(name)
        return row is None or row.state == ProviderState.UP

    def choose(self) -> TryOnBackend:
        """The backend new jobs go to now (see the module's rules)."""
        return self.by_name[serving(list(self.by_name), self.health)]

    def next_up_after(self, name: str) -> TryOnBackend | None:
        """The first provider up other than ``name``, or ``None``."""
        return next(
            (b for b in self.backends if b.provider_name != name and self.is_up(b.provider_name)),
            None,
        )

    # Reading and writing the shared state -------------------------------------------

    def refresh(self) -> None:
        """Read every provider's row (one query): what the other workers decided."""
        if not self.failover:
            return
        self.health = {
            row.provider: row for row in ProviderHealth.objects.filter(provider__in=self.by_name)
        }

    def _row(self, name: str, now: datetime) -> ProviderHealth:
        row = self.health.get(name)
        if row is None:
            try:
                with transaction.atomic():
                    row, _created = ProviderHealth.objects.get_or_create(
                        provider=name, defaults={"changed_at": now}
                    )
            except IntegrityError:  # another worker made it meanwhile
                row = ProviderHealth.objects.get(provider=name)
            self.health[name] = row
        return row

    def answered(self, name: str, now: datetime) -> None:
        """A call to ``name`` was answered: a run of transient failures, if any, ends."""
        row = self.health.get(name)
        if not self.failover or row is None or row.failing_since is None:
            return
        ProviderHealth.objects.filter(pk=row.pk, failing_since__isnull=False).update(
            failing_since=None
        )
        row.failing_since = None

    def failed(self, name: str, err: BaseException | None, now: datetime) -> bool:
        """A call to ``name`` raised ``err``: count it; return whether the provider
        went down because of it (then new jobs go elsewhere)."""
        if not self.failover or name not in self.by_name:
            return False
        reason = refusal_reason(err)
        if reason:
            return self._switch_away(name, reason, err, now)
        if not counts_as_failure(err):
            return False
        row = self._row(name, now)
        window = timedelta(seconds=float(tryon_settings.FAILOVER_AFTER))
        # A run starts unless one is going on, in the row as every worker wrote it
        # (the earliest start stays): a run also starts again after a quiet spell
        # as long as the window, as two blips an hour apart are not an hour of failing.
        starts = (
            Q(failing_since__isnull=True)
            | Q(last_failure_at__isnull=True)
            | Q(last_failure_at__lt=now - window)
        )
        ProviderHealth.objects.filter(pk=row.pk).update(
            failing_since=Case(When(starts, then=Value(now)), default=F("failing_since")),
            last_failure_at=now,
        )
        row.refresh_from_db(fields=["failing_since", "last_failure_at", "state"])
        since = row.failing_since or now  # cleared meanwhile by an answered call
        if now - since >= window and row.state == ProviderState.UP:
            return self._switch_away(name, DownReason.UNAVAILABLE, err, now)
        return False

    def _switch_away(self, name: str, reason: str, err: Any, now: datetime) -> bool:
        row = self._row(name, now)
        detail = transitions.error_detail(err)
        next_probe = now + timedelta(seconds=float(tryon_settings.FAILOVER_PROBE_INTERVAL))
        switched = ProviderHealth.objects.filter(pk=row.pk, state=ProviderState.UP).update(
            state=ProviderState.DOWN,
            reason=reason,
            detail=detail,
            changed_at=now,
            next_probe_at=next_probe,
        )
        row.state, row.reason, row.detail = ProviderState.DOWN, reason, detail
        if switched:
            row.changed_at, row.next_probe_at = now, next_probe
            self._announce_down(name, reason, detail, now)
        return bool(switched)

    def _announce_down(self, name: str, reason: str, detail: str, now: datetime) -> None:
        successor = self.next_up_after(name)
        where = (
            f"new try-ons go to {successor.provider_name}"
            if successor is not None
            else "no other provider is up: new try-ons fail as they would without failover"
        )
        message = (
            f"The try-on provider {name} {REASON_WORDS[DownReason(reason)]}: {where}. "
            f"Jobs already at {name} stay there. It is checked again every "
            f"{float(tryon_settings.FAILOVER_PROBE_INTERVAL):g} s and takes new try-ons "
            f"again once it answers. The provider said: {detail}"
        )
        logger.error(message)
        _mail_once_a_day(f"down:{name}", f"{name} is down, switched over", message, now)
        if successor is not None:
            # Jobs waiting for a retry at the provider that went down go now.
            waiting = TryOnJob.objects.filter(
                status=JobStatus.PENDING, provider="", next_attempt_at__gt=now
            ).values_list("pk", flat=True)
            transitions.apply(
                list(waiting),
                transitions.made_due(now),
                now=now,
                expected=[JobStatus.PENDING],
                provider="",
            )

    # Switching back -----------------------------------------------------------------

    def check_while_idle(self, now: datetime) -> None:
        """With no job to move, still check the providers that are down, at most once
        per ``FAILOVER_PROBE_INTERVAL``: staff see a provider back as soon as it is,
        not when the next shopper comes."""
        if not self.failover:
            return
        interval = float(tryon_settings.FAILOVER_PROBE_INTERVAL)
        if (
            self._idle_checked_at is not None
            and (now - self._idle_checked_at).total_seconds() < interval
        ):
            return
        self._idle_checked_at = now
        self.refresh()
        self.probe(now)

    def probe(self, now: datetime) -> list[str]:
        """Ask each provider that is down and due for a check whether it is back; return
        the names of those put up again. One worker checks each one per interval."""
        if not self.failover:
            return []
        back = []
        interval = timedelta(seconds=float(tryon_settings.FAILOVER_PROBE_INTERVAL))
        for name, row in list(self.health.items()):
            due = row.next_probe_at is None or row.next_probe_at <= now
            if row.state != ProviderState.DOWN or not due or name not in self.probes:
                continue
            claimed = (
                ProviderHealth.objects.filter(pk=row.pk, state=ProviderState.DOWN)
                .filter(next_probe_at=row.next_probe_at)
                .update(next_probe_at=now + interval)
            )
            row.next_probe_at = now + interval
            if not claimed:
                continue  # another worker checks it this time
            problem = self._check(self.probes[name])
            if problem:
                ProviderHealth.objects.filter(pk=row.pk).update(detail=problem)
                row.detail = problem
                logger.info("Provider %s is still down: %s", name, problem)
                continue
            if self._switch_back(name, row, now):
                back.append(name)
        return back

    @staticmethod
    def _check(backend: TryOnBackend) -> str:
        """Why ``backend`` cannot take new jobs yet, or ``""`` if it can."""
        try:
            credits = backend.credits()
        except Exception as err:  # any fault: still down, and the worker goes on
            return transitions.error_detail(err)
        if credits is not None and credits.remaining <= 0:
            return f"The provider reports {credits.remaining:g} credits."
        return ""

    def _switch_back(self, name: str, row: ProviderHealth, now: datetime) -> bool:
        switched = ProviderHealth.objects.filter(pk=row.pk, state=ProviderState.DOWN).update(
            state=ProviderState.UP,
            reason="",
            detail="",
            changed_at=now,
            failing_since=None,
            last_failure_at=None,
            next_probe_at=None,
        )
        row.state, row.reason, row.detail, row.changed_at = ProviderState.UP, "", "", now
        row.failing_since = row.last_failure_at = row.next_probe_at = None
        if switched:
            message = (
                f"The try-on provider {name} answers again: new try-ons go to "
                f"{self.choose().provider_name}."
            )
            logger.warning(message)
            _mail_once_a_day(f"back:{name}", f"{name} is back", message, now)
        return bool(switched)


def _mail_once_a_day(notice: str, subject: str, message: str, now: datetime) -> None:
    """Mail a switch to ``ADMINS``, the first of its kind (a provider down, or back)
    of the day: a provider that comes and goes all day fills the log, not the inbox."""
    message += (
        "\n\nThis mail is sent once a day for each provider and direction: later "
        "switches today are logged (logger django_tryon.failover) and shown on the "
        "admin's status overview."
    )
    mail_admins_once_a_day(f"provider-{notice}", f"Virtual try-on: {subject}", message, now)


# What staff see ------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderStatus:
    """One configured provider as the admin overview shows it."""

    name: str
    #: 0 for the primary, then each fallback's place (1, 2, ...).
    position: int
    up: bool
    #: Whether new jobs go to it now.
    serving: bool
    reason: str = ""
    #: When it went down (or came back).
    changed_at: datetime | None = None
    detail: str = ""
    next_check_at: datetime | None = None

    @property
    def reason_label(self) -> str:
        return str(DownReason(self.reason).label) if self.reason else ""


def configured_names() -> list[str]:
    """The provider names of ``BACKEND`` and ``FALLBACK_BACKENDS``, in order, without
    building any backend (those that cannot be imported are left out: the system
    checks name them)."""
    return list(dict.fromkeys(cls.provider_name for cls in configured_classes()))


def fallback_names() -> list[tuple[int, str]]:
    """``(index in FALLBACK_BACKENDS, provider name)`` of each entry whose backend can
    be imported, without building it."""
    entries = tryon_settings.FALLBACK_BACKENDS
    found = []
    for index, entry in enumerate(entries if isinstance(entries, (list, tuple)) else ()):
        with contextlib.suppress(ImproperlyConfigured):
            found.append((index, fallback_class(entry, index + 1).provider_name))
    return found


def status() -> list[ProviderStatus]:
    """Every configured provider, in order, with its state as the workers recorded it.

    Without fallbacks no state is kept (nothing to switch to): a row left from a time
    the shop had some is stale, never checked again, and not shown.
    """
    names = configured_names()
    if not names:
        return []
    health = (
        {row.provider: row for row in ProviderHealth.objects.filter(provider__in=names)}
        if len(names) > 1
        else {}
    )
    chosen = serving(names, health)
    statuses = []
    for position, name in enumerate(names):
        row = health.get(name)
        up = row is None or row.state == ProviderState.UP
        statuses.append(
            ProviderStatus(
                name=name,
                position=position,
                up=up,
                serving=name == chosen,
                reason="" if up or row is None else row.reason,
                changed_at=row.changed_at if row is not None else None,
                detail="" if row is None else row.detail,
                next_check_at=None if up or row is None else row.next_probe_at,
            )
        )
    return statuses
