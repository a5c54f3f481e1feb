"""The daily quotas: how many try-ons a shopper, a client address and all guests
together may start per day.

Counted in :class:`~django_tryon.models.DailyUsage`, one row per counter key
and local date, with conditional ``UPDATE``s so two requests racing for the
last try-on of the day cannot both get it. A new try-on counts against every
cap that applies (:func:`caps_for`) in one transaction: refused by one, it is
counted by none. A job that ends failed through no fault of the shopper
(provider down, shop out of credits, expired) gives every credit it took back,
once, through the ``job_failed`` signal; but a failure may have cost the shop a
paid call, so a counter gets back at most its limit a day
(``DailyUsage.refunded``): a try-on that fails every time is not free to repeat.

The first statement of a charge writes: on SQLite, a transaction that reads
before it writes cannot wait for another writer and fails at once with
"database is locked"; one that writes first waits its turn.
"""

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db import IntegrityError, connections, router, transaction
from django.db.models import Count, F, Max, Q
from django.dispatch import receiver
from django.utils import timezone
from django.utils.crypto import salted_hmac

from .addresses import client_group
from .conf import tryon_settings
from .errors import is_shopper_fault
from .models import DailyUsage, JobSource, TryOnJob
from .notices import mail_admins_once_a_day, notice_key
from .redaction import get_logger
from .signals import job_failed

logger = get_logger("django_tryon.quota")

#: The counter of every guest's try-ons together.
ALL_GUESTS_KEY = "guests"
#: The notice that tells staff the guests' cap was reached (see :mod:`.notices`).
GUEST_CAP_NOTICE = "guests-cap"
#: The row whose existence says staff were told today that the guests' cap was reached.
GUEST_CAP_NOTICE_KEY = notice_key(GUEST_CAP_NOTICE)
#: The prefix of each kind of counter, by the scope of its cap.
KEY_PREFIXES = {"user": "user:", "session": "session:", "address": "address:"}
#: The ceiling of a counter whose cap has no limit: the column's largest value.
NO_LIMIT = 2**31 - 1
#: Between a job's counter keys in ``TryOnJob.quota_key``.
KEY_SEPARATOR = " "
#: Databases whose ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` counts in one
#: statement; others take an update, then an insert if there was no row.
UPSERT_VENDORS = {"postgresql", "sqlite"}


@dataclass(frozen=True)
class Cap:
    """One daily limit a new try-on counts against.

    ``scope`` is ``user``, ``session``, ``address`` or ``guests``; ``limit``
    ``None`` means no limit (counted all the same, never refused).
    """

    scope: str
    key: str
    limit: int | None


class QuotaExceeded(Exception):
    """A cap of the day is used. ``retry_after``: seconds until tomorrow; ``scope``:
    which cap (see :class:`Cap`)."""

    def __init__(self, limit, retry_after, scope="session"):
        super().__init__(f"Daily quota of {limit} try-ons used ({scope}).")
        self.limit = limit
        self.retry_after = retry_after
        self.scope = scope


def address_key(address):
    """The counter key of a client address (its ``/64`` for IPv6).

    Keyed by a digest made with the site's ``SECRET_KEY``, so the usage table
    holds no shopper's address.
    """
    group = client_group(address)
    digest = salted_hmac("django_tryon.quota.address", group, algorithm="sha256").hexdigest()
    return KEY_PREFIXES["address"] + digest[:32]


def caps_for(owner, address=""):
    """The caps a new try-on of ``owner`` (a :class:`~django_tryon.shopper.Owner`),
    sent from client ``address``, counts against, the narrowest first.

    A signed-in shopper has their own daily quota; a guest's try-on counts for
    their session, their address and all guests, since a new session costs
    nothing to get.
    """
    if owner.user_id is not None:
        return [Cap("user", owner.quota_key, tryon_settings.DAILY_QUOTA_USER)]
    caps = [Cap("session", owner.quota_key, tryon_settings.DAILY_QUOTA_GUEST)]
    if address:
        caps.append(Cap("address", address_key(address), tryon_settings.DAILY_QUOTA_ADDRESS))
    caps.append(Cap("guests", ALL_GUESTS_KEY, tryon_settings.DAILY_QUOTA_ALL_GUESTS))
    return caps


def charge_caps(caps, now=None):
    """Count one try-on against each of ``caps`` today: ``(keys counted, day)``.

    All or none: raises :class:`QuotaExceeded` (of the first cap used up) and
    counts nothing. A cap without a limit is counted too, and never refuses:
    the try-on's twins (the same one sent twice at once) wait on its row as on
    any counter's, so that a shopper with no daily limit is not paid for twice.
    """
    now = now or timezone.now()
    day = timezone.localdate(now)
    counted = []
    with transaction.atomic():
        for cap in caps:
            ceiling = NO_LIMIT if cap.limit is None else cap.limit
            if not _count_one(cap.key, day, ceiling):
                raise QuotaExceeded(cap.limit, seconds_until_tomorrow(now), cap.scope)
            counted.append(cap.key)
    return counted, (day if counted else None)


def charge(key, limit, now=None):
    """Count one try-on for ``key`` today and return the day charged.

    ``limit`` ``None`` means unlimited: counted, never refused. Raises
    :class:`QuotaExceeded` when the day's ``limit`` is used.
    """
    return charge_caps([Cap("session", key, limit)], now)[1]


def _count_one(key, day, limit):
    """Add one to ``key``'s count of ``day`` if under ``limit``; whether it was added."""
    if limit <= 0:
        return False
    connection = connections[router.db_for_write(DailyUsage)]
    if connection.vendor in UPSERT_VENDORS:
        return _upsert_one(connection, key, day, limit)
    if DailyUsage.objects.filter(key=key, day=day, count__lt=limit).update(count=F("count") + 1):
        return True
    try:
        # A savepoint, so losing the race to create the row leaves the outer
        # transaction usable.
        with transaction.atomic():
            DailyUsage.objects.create(key=key, day=day, count=1)
        return True
    except IntegrityError:
        # The row exists: used up, or created by another request since the update.
        updated = DailyUsage.objects.filter(key=key, day=day, count__lt=limit).update(
            count=F("count") + 1
        )
        return bool(updated)


def _upsert_one(connection, key, day, limit):
    """:func:`_count_one` in one statement: the row inserted at 1, or its count raised
    if under ``limit``. The statement changes a row (its row count is 1) or not."""
    meta = DailyUsage._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    columns = {field.name: quote(field.column) for field in meta.concrete_fields}
    key_column, day_column, count_column, refunded_column = (
        columns[name] for name in ("key", "day", "count", "refunded")
    )
    sql = (
        f"INSERT INTO {table} ({key_column}, {day_column}, {count_column}, {refunded_column}) "
        "VALUES (%s, %s, 1, 0) "
        f"ON CONFLICT ({key_column}, {day_column}) DO UPDATE "
        f"SET {count_column} = {table}.{count_column} + 1 WHERE {table}.{count_column} < %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [key, connection.ops.adapt_datefield_value(day), limit])
        return cursor.rowcount == 1


def tell_staff_guest_cap_reached(limit, now=None):
    """Log an error, and mail the site's ``ADMINS``, the first time a day that the
    guests' cap refuses a try-on; later refusals that day say nothing.

    Returns whether staff were told now: once a day, one worker or many
    (:func:`~django_tryon.notices.mail_admins_once_a_day`).
    """
    day = timezone.localdate(now or timezone.now())
    message = (
        f"The daily cap on guests' try-ons (TRYON['DAILY_QUOTA_ALL_GUESTS'] = {limit}) "
        f"was reached on {day.isoformat()}: guests are refused until midnight. "
        "Signed-in shoppers are not affected. Raise the cap if this is real demand."
    )
    subject = "Virtual try-on: the guests' daily cap is reached"
    if not mail_admins_once_a_day(GUEST_CAP_NOTICE, subject, message, now):
        return False
    logger.error(message)
    return True


@dataclass(frozen=True)
class CapUsage:
    """How much of one cap was used today, for the admin overview.

    For per-shopper and per-address caps, ``used`` is the busiest counter's
    count and ``at_limit`` how many counters reached the limit; for the
    guests' cap, ``used`` is the guests' total.
    """

    scope: str
    limit: int | None
    used: int
    counters: int
    at_limit: int

    @property
    def reached(self):
        return self.limit is not None and self.used >= self.limit

    @property
    def percent(self):
        if not self.limit:
            return None
        return min(100, round(100 * self.used / self.limit))


def usage_today(now=None):
    """A :class:`CapUsage` per cap: ``user``, ``session``, ``address``, ``guests``."""
    day = timezone.localdate(now or timezone.now())
    today = DailyUsage.objects.filter(day=day)
    limits = _limits()
    usage = []
    for scope, prefix in KEY_PREFIXES.items():
        limit = limits[scope]
        # With no limit, no counter is at it.
        at_limit = Q(count__gte=limit) if limit is not None else Q(pk__in=[])
        figures = today.filter(key__startswith=prefix).aggregate(
            busiest=Max("count"), counters=Count("pk"), at_limit=Count("pk", filter=at_limit)
        )
        usage.append(
            CapUsage(
                scope=scope,
                limit=limit,
                used=figures["busiest"] or 0,
                counters=figures["counters"],
                at_limit=figures["at_limit"] or 0,
            )
        )
    guests = today.filter(key=ALL_GUESTS_KEY).values_list("count", flat=True).first() or 0
    usage.append(
        CapUsage(
            scope="guests",
            limit=tryon_settings.DAILY_QUOTA_ALL_GUESTS,
            used=guests,
            counters=1 if guests else 0,
            at_limit=0,
        )
    )
    return usage


def refund(key, day):
    """Give back one try-on counted for ``key`` on ``day`` (never below zero)."""
    return DailyUsage.objects.filter(key=key, day=day, count__gt=0).update(count=F("count") - 1)


def limit_of(key):
    """The daily limit, as set now, of the counter ``key`` (``None``: no limit)."""
    if key == ALL_GUESTS_KEY:
        return tryon_settings.DAILY_QUOTA_ALL_GUESTS
    limits = _limits()
    for scope, prefix in KEY_PREFIXES.items():
        if key.startswith(prefix):
            return limits[scope]
    return None


def _limits():
    """The per-counter limits, by scope (``guests``, one counter, is apart)."""
    return {
        "user": tryon_settings.DAILY_QUOTA_USER,
        "session": tryon_settings.DAILY_QUOTA_GUEST,
        "address": tryon_settings.DAILY_QUOTA_ADDRESS,
    }


def refund_within_limit(key, day):
    """Give back one try-on counted for ``key`` on ``day``, if ``key`` was given back
    fewer than its limit that day (``DailyUsage.refunded``); whether it was.

    So a counter spends at most twice its limit a day, however often its try-ons
    fail: each failure may have been a paid call.
    """
    rows = DailyUsage.objects.filter(key=key, day=day, count__gt=0)
    limit = limit_of(key)
    if limit is not None:
        rows = rows.filter(refunded__lt=limit)
    return bool(rows.update(count=F("count") - 1, refunded=F("refunded") + 1))


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

    Every counter the job was charged to (``quota_key`` lists them) gets its
    try-on back, up to its limit a day (:func:`refund_within_limit`). A job of a
    model photo the shop offers always does: its photo was the shop's, not the
    shopper's. The job's ``quota_key`` is cleared by the same conditional
    update that decides the refund, so a job is refunded at most once even if
    the signal is sent twice.
    """
    if not job.quota_key or job.quota_day is None:
        return
    if job.source != JobSource.SHARED and is_shopper_fault(job.error_code):
        return
    with transaction.atomic():
        claimed = TryOnJob.objects.filter(pk=job.pk, quota_key=job.quota_key).update(quota_key="")
        if claimed:
            for key in job.quota_key.split(KEY_SEPARATOR):
                refund_within_limit(key, job.quota_day)
