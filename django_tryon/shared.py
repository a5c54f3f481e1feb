"""Try-ons of the shop's model photos, shared by the shoppers who pick them.

A shopper with no photo at hand may pick one of the model photos staff offer
(``ModelPhoto.offered_to_shoppers``). A garment on a model photo makes the
same picture for everyone, so it is made once, by a job of ``source="shared"``
that belongs to the shop and carries its own copy of the model photo (as a
catalogue job does: replacing or deleting the model photo never touches it).
Each shopper who picks the pair gets a :class:`~django_tryon.models.TryOnShare`
naming that job, through which the API shows it to them. A shopper's erasure
deletes their share only: the job, its photo and its picture hold nothing of
the shopper's, and stay for everyone else who picked the pair.

Only a pick that starts a new job is a paid call, and only it counts against
the daily quotas, as a new upload does; a pick that the shop's picture (made,
or on its way) answers costs nothing and counts nothing, like any reuse. A
shared job that fails gives its count back whatever the reason (see
:func:`django_tryon.quota.give_credit_back`): the photo was the shop's.
"""

import hashlib
import posixpath

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from . import quota
from .conf import tryon_settings
from .models import ACTIVE_STATUSES, JobSource, JobStatus, ModelPhoto, TryOnJob, TryOnShare
from .redaction import get_logger
from .shopper import delete_photo, photo_kept_with_its_row

logger = get_logger("django_tryon.shared")


class ModelPhotoUnreadable(Exception):
    """The model photo's file cannot be read from storage."""


def read_model_photo(model_photo):
    """The model photo's file as it is now: ``(content, sha256 hex digest)``."""
    try:
        with model_photo.image.open("rb") as handle:
            content = handle.read()
    except (OSError, ValueError) as err:  # ValueError: the row names no file
        logger.error("Model photo %s (%s) cannot be read: %s", model_photo.pk, model_photo, err)
        raise ModelPhotoUnreadable(str(model_photo)) from err
    return content, hashlib.sha256(content).hexdigest()


def find_shared(garment, model_photo, digest):
    """The shop's job of ``garment`` on ``model_photo`` (as its file is now: ``digest``)
    that is still running, or succeeded with its picture kept; else ``None``."""
    if not tryon_settings.REUSE_RESULTS:
        return None
    candidates = TryOnJob.objects.filter(
        source=JobSource.SHARED, garment=garment, model_photo=model_photo, photo_digest=digest
    )
    running = candidates.filter(status__in=ACTIVE_STATUSES)
    succeeded = candidates.filter(status=JobStatus.SUCCEEDED).exclude(result_image="")
    return (running | succeeded).order_by("-created_at").first()


def start_shared_job(owner, garment, model_photo, *, now=None, address=""):
    """Answer a shopper's pick of ``model_photo`` for ``garment``: ``(job, reused)``.

    The shop's job of the pair, when :func:`find_shared` finds one, is shared
    with ``owner`` and returned (``reused`` true, nothing counted). Otherwise a
    try-on is counted against ``owner``'s daily caps (raising
    :class:`~django_tryon.quota.QuotaExceeded` over one), and a ``pending``
    shared job with its own copy of the photo is written with ``owner``'s share.
    Raises :class:`ModelPhotoUnreadable` when the photo's file cannot be read.
    """
    now = now or timezone.now()
    content, digest = read_model_photo(model_photo)
    existing = find_shared(garment, model_photo, digest)
    if existing is not None:
        _share(owner, existing, now)
        return existing, True
    job = TryOnJob(
        garment=garment,
        model_photo=model_photo,
        photo_digest=digest,
        source=JobSource.SHARED,
        created_at=now,
        next_attempt_at=now,
    )
    extension = posixpath.splitext(model_photo.image.name)[1] or ".jpg"
    # Written before the transaction, as a shopper's upload is: the rows locked
    # below are held for a few short writes only.
    job.person_image.save("model" + extension, ContentFile(content), save=False)
    with photo_kept_with_its_row(job, now), transaction.atomic():
        # Picks of the same model photo take turns from here to the commit (the row
        # is locked by a write, which SQLite also waits for), so a pair picked twice
        # at once is paid for once: the second finds the first's job.
        ModelPhoto.objects.filter(pk=model_photo.pk).update(updated_at=F("updated_at"))
        twin = find_shared(garment, model_photo, digest)
        if twin is None:
            keys, day = quota.charge_caps(quota.caps_for(owner, address), now)
            job.quota_key = quota.KEY_SEPARATOR.join(keys)
            job.quota_day = day
            job.save(force_insert=True)
            TryOnShare.objects.create(job=job, created_at=now, **owner.job_fields())
    if twin is not None:
        delete_photo(job)
        _share(owner, twin, now)
        return twin, True
    return job, False


def _share(owner, job, now):
    """Give ``owner`` a share of ``job`` unless they have one."""
    if owner.shares().filter(job=job).exists():
        return
    try:
        with transaction.atomic():
            TryOnShare.objects.create(job=job, created_at=now, **owner.job_fields())
    except IntegrityError:
        pass  # the same pick sent twice at once: the twin request made the share


def release(owner, job):
    """A shopper's erasure of a shared try-on: their share goes, the shop's job and its
    picture stay for the other shoppers. Returns how many shares were deleted."""
    deleted, _by_model = owner.shares().filter(job=job).delete()
    return deleted


def carry_shares_over(guest, user_id):
    """The shares of ``guest`` (an :class:`~django_tryon.shopper.Owner`) become the
    signed-in user's; one the user already has of the same job is not doubled."""
    shares = guest.shares()
    held = TryOnShare.objects.filter(user_id=user_id).values("job_id")
    shares.filter(job_id__in=held).delete()
    shares.update(user_id=user_id, session_key="")
