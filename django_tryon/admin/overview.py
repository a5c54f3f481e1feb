"""The try-on status overview: a page of the job admin, over :mod:`django_tryon.stats`."""

from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import failover, quota, stats
from ..models import JobStatus, TryOnJob
from .charts import charts
from .display import duration


def _merge_codes(windows, attribute):
    """``[(code, [count per window])]`` over every code seen in any window."""
    per_window = [dict(getattr(window, attribute)) for window in windows]
    order = []
    for window in windows:
        for code, _count in getattr(window, attribute):
            if code not in order:
                order.append(code)
    return [(code, [counts.get(code, 0) for counts in per_window]) for code in order]


def overview_context(now=None):
    """Everything the overview shows, ready for the template."""
    now = now or timezone.now()
    windows = stats.overview(now=now)
    backlog = stats.backlog(now=now)
    labels = dict(JobStatus.choices)
    return {
        "now": now,
        "windows": windows,
        "status_rows": [
            (status, labels[status], [window.counts[status] for window in windows])
            for status in JobStatus.values
        ],
        "totals": [window.total for window in windows],
        "success": [window.success_percent for window in windows],
        "p50": [duration(window.p50) for window in windows],
        "p95": [duration(window.p95) for window in windows],
        "samples": [window.sample_size for window in windows],
        "provider_errors": _merge_codes(windows, "provider_errors"),
        "job_errors": _merge_codes(windows, "job_errors"),
        "backlog": [(status, labels[status], count) for status, count in backlog["counts"].items()],
        "overdue": backlog["overdue"],
        "credits": stats.credits_report(),
        "charts": charts(now),
        "caps": _cap_rows(now),
        **_provider_rows(windows),
    }


CAP_LABELS = {
    "user": gettext_lazy("Per signed-in shopper (DAILY_QUOTA_USER)"),
    "session": gettext_lazy("Per guest (DAILY_QUOTA_GUEST)"),
    "address": gettext_lazy("Per client address, guests (DAILY_QUOTA_ADDRESS)"),
    "guests": gettext_lazy("All guests together (DAILY_QUOTA_ALL_GUESTS)"),
}


def _cap_rows(now):
    """``[(label, CapUsage)]`` for the day's quota table, and the guests' cap on its own."""
    usage = quota.usage_today(now)
    return {
        "rows": [(CAP_LABELS[cap.scope], cap) for cap in usage],
        "guests": next(cap for cap in usage if cap.scope == "guests"),
    }


def _provider_rows(windows):
    """The providers' table (share, success, times per window), who is down, and the
    fallbacks' credits."""
    statuses = failover.status()
    names = [provider.name for provider in statuses]
    per_window = [
        stats.provider_figures(TryOnJob.objects.all(), since=window.since, providers=names)
        for window in windows
    ]
    seen = list(dict.fromkeys([*names, *(name for figures in per_window for name in figures)]))
    by_name = {provider.name: provider for provider in statuses}
    rows = []
    for name in seen:
        cells = []
        for figures in per_window:
            found = figures.get(name)
            cells.append(
                {
                    "jobs": found.jobs if found else 0,
                    "share": found.share_percent if found else 0,
                    "success": found.success_percent if found else None,
                    "p50": duration(found.p50 if found else None),
                    "p95": duration(found.p95 if found else None),
                }
            )
        rows.append((name, by_name.get(name), cells))
    return {
        "fallback_credits": [
            (name, stats.credits_report(fallback=index))
            for index, name in failover.fallback_names()
        ],
        "provider_rows": rows,
        # Staff are warned while new jobs do not go where the settings put them first.
        "providers_down": [provider for provider in statuses if not provider.up],
        "serving": next((provider for provider in statuses if provider.serving), None),
        "failover_configured": len(statuses) > 1,
    }


def ask_credits_again():
    """Ask the primary provider and every fallback for their credits now, not from
    the minute's cache."""
    stats.credits_report(refresh=True)
    for index, _name in failover.fallback_names():
        stats.credits_report(refresh=True, fallback=index)


def overview_view(model_admin, request):
    """The page; staff who may view jobs may view it.

    *Ask again* ``POST``s (with the admin's CSRF protection): each ask is a call to
    every provider, which a link any page could make staff follow should not make.
    """
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    if request.method == "POST":
        if request.POST.get("refresh") == "credits":
            ask_credits_again()
        return HttpResponseRedirect(request.path)
    context = {
        **model_admin.admin_site.each_context(request),
        **overview_context(),
        "title": _("Try-on status"),
        "subtitle": None,
        "opts": model_admin.model._meta,
        "media": model_admin.media,
    }
    return TemplateResponse(request, "admin/django_tryon/tryonjob/overview.html", context)
