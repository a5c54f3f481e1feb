"""The figures of the job status overview, as plain functions over job querysets.

Every function takes the jobs to count (a ``TryOnJob`` queryset, already
narrowed to a time window by the caller), so each figure is testable on its own
and usable outside the admin.

Percentiles are computed in Python over a bounded sample (the latest
:data:`DURATION_SAMPLE_SIZE` results of the window), not in the database: the
app supports every database Django does, and only PostgreSQL has an ordered-set
aggregate (``percentile_cont``); SQLite and MySQL have none. The sample keeps
the page's cost flat however busy the shop is: ten thousand pairs of
timestamps are read in one query and sorted in a few milliseconds.
"""

import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from .backends import get_backend, get_fallback_backends
from .backends.base import TryOnError
from .conf import tryon_settings
from .models import ACTIVE_STATUSES, JobStatus, TryOnJob
from .redaction import get_logger, redact

logger = get_logger("django_tryon.stats")

#: Most recent results whose durations the percentiles are taken over.
DURATION_SAMPLE_SIZE = 10_000
#: Statuses whose jobs count in the success rate (a canceled job says nothing
#: about the provider).
ENDED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.EXPIRED)
#: How long the provider's credits answer is reused, in seconds.
CREDITS_CACHE_SECONDS = 60
#: (connect, read) timeouts of the credits query: the overview page waits on it.
CREDITS_TIMEOUT = (2.0, 3.0)


# Counting --------------------------------------------------------------------


def status_counts(jobs):
    """``{status: count}`` for every status, zero included, in the order of :class:`JobStatus`."""
    found = dict(jobs.order_by().values_list("status").annotate(n=Count("pk")))
    return {status: found.get(status, 0) for status in JobStatus.values}


def success_rate(jobs):
    """The share of ended jobs that succeeded (0..1), or ``None`` when none ended.

    Canceled and still active jobs are left out.
    """
    counts = status_counts(jobs.filter(status__in=ENDED_STATUSES))
    ended = sum(counts.values())
    if not ended:
        return None
    return counts[JobStatus.SUCCEEDED] / ended


def durations(jobs, limit=DURATION_SAMPLE_SIZE):
    """Submission-to-result times of the latest ``limit`` succeeded jobs, shortest first."""
    rows = (
        jobs.filter(
            status=JobStatus.SUCCEEDED,
            submitted_at__isnull=False,
            finished_at__isnull=False,
        )
        .order_by("-finished_at")
        .values_list("submitted_at", "finished_at")[:limit]
    )
    return sorted(finished - submitted for submitted, finished in rows)


def percentile(sorted_values, fraction):
    """The ``fraction`` (0..1) percentile of ascending values, ``None`` if there are none.

    Linear interpolation between the two nearest ranks, as PostgreSQL's
    ``percentile_cont`` and NumPy's default do.
    """
    if not sorted_values:
        return None
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be within 0 and 1, not {fraction!r}")
    position = (len(sorted_values) - 1) * fraction
    lower, upper = math.floor(position), math.ceil(position)
    low, high = sorted_values[lower], sorted_values[upper]
    return low + (high - low) * (position - lower)


def error_counts(jobs, field_name="provider_error_code"):
    """``[(code, count), ...]`` of a code field's non-empty values, most frequent first."""
    rows = (
        jobs.exclude(**{field_name: ""}).order_by().values_list(field_name).annotate(n=Count("pk"))
    )
    return sorted(rows, key=lambda row: (-row[1], row[0]))


# The overview's windows -------------------------------------------------------


@dataclass(frozen=True)
class WindowFigures:
    """The figures of the jobs created within one time window."""

    label: str
    since: datetime
    counts: dict
    success_rate: float | None
    p50: timedelta | None
    p95: timedelta | None
    sample_size: int
    provider_errors: list = field(default_factory=list)
    job_errors: list = field(default_factory=list)

    @property
    def total(self):
        return sum(self.counts.values())

    @property
    def success_percent(self):
        return None if self.success_rate is None else round(self.success_rate * 100, 1)


def window_figures(jobs, *, label, since):
    """The figures of the jobs in ``jobs`` created at or after ``since``."""
    window = jobs.filter(created_at__gte=since)
    sample = durations(window)
    return WindowFigures(
        label=label,
        since=since,
        counts=status_counts(window),
        success_rate=success_rate(window),
        p50=percentile(sample, 0.50),
        p95=percentile(sample, 0.95),
        sample_size=len(sample),
        provider_errors=error_counts(window, "provider_error_code"),
        job_errors=error_counts(window, "error_code"),
    )


@dataclass(frozen=True)
class ProviderFigures:
    """What one provider made of the jobs sent to it within one time window."""

    provider: str
    jobs: int
    #: Its part of the jobs sent to any provider in the window (0..1).
    share: float
    success_rate: float | None
    p50: timedelta | None
    p95: timedelta | None

    @property
    def share_percent(self):
        return round(self.share * 100, 1)

    @property
    def success_percent(self):
        return None if self.success_rate is None else round(self.success_rate * 100, 1)


def provider_figures(jobs, *, since, providers=()):
    """``{provider: ProviderFigures}`` of the jobs in ``jobs`` created at or after ``since``
    that went to a provider (``TryOnJob.provider``), with a row for each of
    ``providers`` (the configured ones) even without jobs."""
    window = jobs.filter(created_at__gte=since).exclude(provider="")
    rows = window.order_by().values_list("provider", "status").annotate(n=Count("pk"))
    counts: dict[str, dict[str, int]] = {name: {} for name in providers}
    for provider, status, count in rows:
        counts.setdefault(provider, {})[status] = count
    sent = sum(sum(by_status.values()) for by_status in counts.values())
    figures = {}
    for provider, by_status in counts.items():
        total = sum(by_status.values())
        ended = sum(by_status.get(status, 0) for status in ENDED_STATUSES)
        sample = durations(window.filter(provider=provider)) if total else []
        figures[provider] = ProviderFigures(
            provider=provider,
            jobs=total,
            share=total / sent if sent else 0.0,
            success_rate=by_status.get(JobStatus.SUCCEEDED, 0) / ended if ended else None,
            p50=percentile(sample, 0.50),
            p95=percentile(sample, 0.95),
        )
    return figures


def overview(jobs=None, *, now=None):
    """The figures of the last 24 hours and of the last 7 days."""
    jobs = TryOnJob.objects.all() if jobs is None else jobs
    now = now or timezone.now()
    return [
        window_figures(jobs, label=_("Last 24 hours"), since=now - timedelta(days=1)),
        window_figures(jobs, label=_("Last 7 days"), since=now - timedelta(days=7)),
    ]


def backlog(jobs=None, *, now=None):
    """The jobs still active, whenever made: ``{status: count}`` and how many are overdue.

    Overdue jobs have been due for more than a minute with no worker holding
    them: a worker should have taken them already, so a growing number means
    no worker is running.
    """
    jobs = TryOnJob.objects.all() if jobs is None else jobs
    now = now or timezone.now()
    active = jobs.filter(status__in=ACTIVE_STATUSES)
    counts = status_counts(active)
    return {
        "counts": {status: counts[status] for status in ACTIVE_STATUSES},
        # A job a worker holds is being moved, however long ago it fell due.
        "overdue": active.due(now).filter(next_attempt_at__lt=now - timedelta(minutes=1)).count(),
    }


# The provider's credits ---------------------------------------------------------


@dataclass(frozen=True)
class CreditsReport:
    """The account's balance, or why it is unknown.

    ``remaining`` is ``None`` when the balance is unknown; ``problem`` then
    says why, in words staff can act on.
    """

    remaining: float | None
    problem: str
    threshold: float
    checked_at: datetime

    @property
    def low(self):
        return self.remaining is not None and self.remaining < self.threshold


def _cache_key(fallback=None):
    # The answer belongs to one account: a changed key or backend asks again.
    if fallback is None:
        account = (tryon_settings.BACKEND, tryon_settings.BASE_URL, tryon_settings.API_KEY)
    else:
        entry = tryon_settings.FALLBACK_BACKENDS[fallback]
        account = ("fallback", *(entry.get(key) for key in ("BACKEND", "BASE_URL", "API_KEY")))
    identity = "|".join(str(value) for value in account)
    return "django_tryon:credits:" + hashlib.sha256(identity.encode()).hexdigest()[:32]


def _ask_provider(fallback=None):
    """``(remaining, problem)`` from the configured backend (or the ``fallback``-th of
    ``FALLBACK_BACKENDS``), with short timeouts."""
    timeouts = {"connect_timeout": CREDITS_TIMEOUT[0], "read_timeout": CREDITS_TIMEOUT[1]}
    try:
        if fallback is None:
            backend = get_backend(**timeouts)
        else:
            backend = get_fallback_backends(**timeouts)[fallback]
    except (ImproperlyConfigured, TypeError) as err:
        return None, _("The try-on backend cannot be built: %(error)s") % {"error": err}
    provider = backend.provider_name or tryon_settings.BACKEND
    try:
        answer = backend.credits()
    except (TryOnError, ImproperlyConfigured) as err:
        logger.warning("The credits query failed: %s", err)
        return None, _("The provider did not tell the remaining credits: %(error)s") % {
            "error": err
        }
    except Exception as err:  # a third-party backend's fault must not break the page
        logger.exception("The credits query of %s failed unexpectedly.", provider)
        return None, _("The provider did not tell the remaining credits: %(error)s") % {
            "error": f"{type(err).__name__}: {err}"
        }
    finally:
        backend.close()
    if answer is None:
        return None, _("The %(provider)s backend does not report remaining credits.") % {
            "provider": provider
        }
    return answer.remaining, ""


def credits_report(*, refresh=False, fallback=None):
    """The account's remaining credits, asked at most once a minute: the primary's,
    or that of the ``fallback``-th entry of ``FALLBACK_BACKENDS``.

    Failures are cached as well, so a provider that is down does not slow down
    every load of the page. ``refresh`` asks again at once.
    """
    key = _cache_key(fallback)
    cached = None if refresh else cache.get(key)
    if cached is None:
        remaining, problem = _ask_provider(fallback)
        cached = {"remaining": remaining, "problem": redact(problem), "checked_at": timezone.now()}
        cache.set(key, cached, CREDITS_CACHE_SECONDS)
    return CreditsReport(
        remaining=cached["remaining"],
        problem=cached["problem"],
        threshold=tryon_settings.CREDITS_WARNING_THRESHOLD,
        checked_at=cached["checked_at"],
    )
