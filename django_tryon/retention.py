"""Erasing shoppers' photos: after their retention period, and at once on request.

Shopper person photos are erased ``PERSON_IMAGE_TTL`` seconds after the job
ended, shopper results ``RESULT_TTL`` seconds after it ended; ``None`` keeps
them. Jobs made by staff in the admin keep both.

The order of each erasure is: delete the file, then clear the row's name with
an update conditional on that name. A crash in between leaves a row naming a
file that is gone, which the next pass clears (deleting a missing file is a
no-op); never a file that no row names, which nothing would ever find again.
"""

from datetime import timedelta
from typing import cast

from django.db.models import FileField, Q
from django.utils import timezone

from . import transitions
from .conf import tryon_settings
from .models import ACTIVE_STATUSES, TERMINAL_STATUSES, DailyUsage, JobSource, TryOnJob
from .redaction import get_logger

logger = get_logger("django_tryon.retention")

BATCH_SIZE = 200
# How many times a shopper's erasure re-reads a job the worker changed meanwhile.
MAX_ERASE_TRIES = 10
# Usage rows older than this many days no longer count for anything.
USAGE_KEEP_DAYS = 2


def purge_expired(now=None):
    """Erase what has outlived its retention period; return counts by kind.

    ``{"person_images": n, "results": n, "usage_rows": n, "errors": n}``.
    A file the storage fails to delete is logged, counted in ``errors`` and
    tried again on the next call; the rest goes on.
    """
    now = now or timezone.now()
    counts = {"person_images": 0, "results": 0, "usage_rows": 0, "errors": 0}
    person_ttl = tryon_settings.PERSON_IMAGE_TTL
    if person_ttl is not None:
        due = _ended_before(now - timedelta(seconds=person_ttl)).exclude(person_image="")
        _erase_field(due, "person_image", now, counts, "person_images")
    result_ttl = tryon_settings.RESULT_TTL
    if result_ttl is not None:
        due = _ended_before(now - timedelta(seconds=result_ttl)).exclude(result_image="")
        # Without its result, the digest kept for reuse has no purpose left.
        _erase_field(due, "result_image", now, counts, "results", photo_digest="")
    oldest_kept = timezone.localdate(now) - timedelta(days=USAGE_KEEP_DAYS)
    counts["usage_rows"], _ = DailyUsage.objects.filter(day__lt=oldest_kept).delete()
    return counts


def _ended_before(cutoff):
    """Shopper jobs that ended at or before ``cutoff``."""
    return TryOnJob.objects.filter(
        Q(finished_at__lte=cutoff) | Q(finished_at__isnull=True, updated_at__lte=cutoff),
        source=JobSource.SHOPPER,
        status__in=TERMINAL_STATUSES,
    )


def _erase_field(queryset, field, now, counts, kind, **extra):
    storage = cast(FileField, TryOnJob._meta.get_field(field)).storage
    last_pk = None
    while True:
        page = queryset.order_by("pk")
        if last_pk is not None:
            page = page.filter(pk__gt=last_pk)
        rows = list(page.values_list("pk", field)[:BATCH_SIZE])
        if not rows:
            return
        last_pk = rows[-1][0]
        for pk, name in rows:
            try:
                storage.delete(name)
            except Exception:  # one storage fault must not stop the whole purge
                logger.exception("Could not erase %s of job %s; will try again.", field, pk)
                counts["errors"] += 1
                continue
            counts[kind] += TryOnJob.objects.filter(pk=pk, **{field: name}).update(
                **{field: "", "photos_erased_at": now, "updated_at": now}, **extra
            )


class EraseConflict(RuntimeError):
    """The job kept changing while it was being erased."""


def erase_job(job, now=None):
    """A shopper's erasure of their try-on: photo and result deleted at once.

    A job still in progress is canceled (:func:`~django_tryon.transitions.canceled`:
    the worker updates only jobs in an active status, so it leaves it alone from
    then on). The row is kept, detached from its owner, so counts stay right,
    but nothing in it points at the shopper or their photos any more. Returns
    the updated job.
    """
    now = now or timezone.now()
    for _attempt in range(MAX_ERASE_TRIES):
        current = TryOnJob.objects.get(pk=job.pk)
        person, result = current.person_image.name or "", current.result_image.name or ""
        if person:
            current.person_image.storage.delete(person)
        if result:
            current.result_image.storage.delete(result)
        erased = {
            "person_image": "",
            "result_image": "",
            "photo_digest": "",
            "photos_erased_at": now,
            "error_detail": "",  # may name the result's address at the provider
            "user": None,
            "session_key": "",
            "quota_key": "",
            "lease_owner": "",
            "lease_expires_at": None,
        }
        # Only if nothing changed since it was read: a result the worker stored
        # meanwhile is found and deleted on the next round.
        unchanged = {"person_image": person, "result_image": result}
        if current.status in ACTIVE_STATUSES:
            change = transitions.canceled(now).plus(**erased)
            written = bool(
                transitions.apply(
                    [current.pk], change, now=now, expected=[current.status], **unchanged
                )
            )
        else:  # ended already: only the erasure is written, the status stays
            written = (
                TryOnJob.objects.filter(pk=current.pk, status=current.status, **unchanged).update(
                    **erased, updated_at=now
                )
                > 0
            )
        if written:
            current.refresh_from_db()
            return current
    raise EraseConflict(f"Job {job.pk} kept changing while being erased.")
