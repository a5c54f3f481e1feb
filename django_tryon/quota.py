"""The daily quota: how many try-ons one shopper may start per day.

Counted in :class:`~django_tryon.models.DailyUsage`, one row per shopper key
and local date, with conditional ``UPDATE``s so two requests racing for the
last try-on of the day cannot both get it. A job that ends failed through no
fault of the shopper (provider down, shop out of credits, expired) gives its
credit back once, through the ``job_failed`` signal.
"""

import math
from datetime import datetime, time, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.dispatch import receiver
from django.utils import timezone

from .errors import is_shopper_fault
from .models import DailyUsage, TryOnJob
from .signals import job_failed


class QuotaExceeded(Exception):
    """The shopper has used the day's try-ons. ``retry_after``: seconds until tomorrow."""

    def __init__(self, limit, retry_after):
        super().__init__(f"Daily quota of {limit} try-ons used.")
        self.limit = limit
        self.retry_after = retry_after


def charge(key, limit, now=None):
    """Count one try-on for ``key`` today and return the day charged.

    ``limit`` ``None`` means unlimited: nothing is counted and ``None`` is
    returned. Raises :class:`QuotaExceeded` when the day's ``limit`` is used.
    """
    if limit is None:
        return None
    now = now or timezone.now()
    day = timezone.localdate(now)
    _ensure_row(key, day)
    charged = DailyUsage.objects.filter(key=key, day=day, count__lt=limit).update(
        count=F("count") + 1
    )
    if not charged:
        raise QuotaExceeded(limit, seconds_until_tomorrow(now))
    return day


def _ensure_row(key, day):
    if DailyUsage.objects.filter(key=key, day=day).exists():
        return
    try:
        # A savepoint, so losing the race to create the row leaves an outer
        # transaction usable.
        with transaction.atomic():
            DailyUsage.objects.create(key=key, day=day, count=0)
    except IntegrityError:
        pass  # another request created it first: it exists now


def refund(key, day):
    """Give back one try-on counted for ``key`` on ``day`` (never below zero)."""
    return DailyUsage.objects.filter(key=key, day=day, count__gt=0).update(count=F("count") - 1)


def used(key, now=None):
    """How many try-ons ``key`` has used today."""
    day = timezone.localdate(now or timezone.now())
    row = DailyUsage.objects.filter(key=key, day=day).values_list("count", flat=True).first()
    return row or 0


def seconds_until_tomorrow(now=None):
    """Whole seconds from ``now`` to the next local midnight, when the quota resets."""
    now = now or timezone.now()
    local = timezone.localtime(now)
    midnight = datetime.combine(local.date() + timedelta(days=1), time.min)
    midnight = timezone.make_aware(midnight, local.tzinfo)
    return max(1, math.ceil((midnight - now).total_seconds()))


@receiver(job_failed, sender=TryOnJob, dispatch_uid="tryon_quota_credit_back")
def give_credit_back(sender, job, **kwargs):
    """A job that failed through no fault of the shopper does not count.

    The job's ``quota_key`` is cleared by the same conditional update that
    decides the refund, so a job is refunded at most once even if the signal
    is sent twice.
    """
    if is_shopper_fault(job.error_code) or not job.quota_key or job.quota_day is None:
        return
    with transaction.atomic():
        claimed = TryOnJob.objects.filter(pk=job.pk, quota_key=job.quota_key).update(quota_key="")
        if claimed:
            refund(job.quota_key, job.quota_day)
