"""Starting a shopper's try-on: who owns it, reuse of an earlier result, the quota.

The API turns a request into an :class:`Owner` and a normalised photo; this
module decides whether an earlier job answers the request (reuse, free) or a
new ``pending`` job is written (counted against the daily quota) for the
worker to pick up. Nothing here calls the provider.
"""

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from . import quota
from .conf import tryon_settings
from .models import ACTIVE_STATUSES, JobSource, JobStatus, TryOnJob, TryOnShare


@dataclass(frozen=True)
class Owner:
    """A shopper: a signed-in user (``user_id``) or a guest's session (``session_key``)."""

    user_id: int | None = None
    session_key: str = ""

    @property
    def is_known(self):
        return self.user_id is not None or bool(self.session_key)

    def jobs(self):
        """This shopper's jobs (none for an owner with neither user nor session)."""
        jobs = TryOnJob.objects.filter(source=JobSource.SHOPPER)
        if self.user_id is not None:
            return jobs.filter(user_id=self.user_id)
        if self.session_key:
            return jobs.filter(user__isnull=True, session_key=self.session_key)
        return jobs.none()

    def shares(self):
        """This shopper's :class:`~django_tryon.models.TryOnShare` rows: their access
        to the shop's pictures of model photos."""
        if self.user_id is not None:
            return TryOnShare.objects.filter(user_id=self.user_id)
        if self.session_key:
            return TryOnShare.objects.filter(user__isnull=True, session_key=self.session_key)
        return TryOnShare.objects.none()

    def visible_jobs(self):
        """The jobs this shopper may read: their own, and the shared ones they picked."""
        if not self.is_known:
            return TryOnJob.objects.none()
        shared = TryOnJob.objects.filter(
            source=JobSource.SHARED, pk__in=self.shares().values("job_id")
        )
        return self.jobs() | shared

    @property
    def quota_key(self):
        if self.user_id is not None:
            return f"user:{self.user_id}"
        return f"session:{self.session_key}"

    def job_fields(self):
        if self.user_id is not None:
            return {"user_id": self.user_id, "session_key": ""}
        return {"user_id": None, "session_key": self.session_key}


def find_reusable(owner, garment, digest, now=None):
    """The owner's latest job for this garment and this exact normalised photo that
    is still running, or succeeded with its result still kept; else ``None``."""
    if not tryon_settings.REUSE_RESULTS or not digest or not owner.is_known:
        return None
    now = now or timezone.now()
    candidates = owner.jobs().filter(garment=garment, photo_digest=digest)
    running = candidates.filter(status__in=ACTIVE_STATUSES)
    succeeded = candidates.filter(status=JobStatus.SUCCEEDED).exclude(result_image="")
    if tryon_settings.RESULT_TTL is not None:
        cutoff = now - timedelta(seconds=tryon_settings.RESULT_TTL)
        succeeded = succeeded.filter(finished_at__gt=cutoff)
    return (running | succeeded).order_by("-created_at").first()


def start_job(owner, garment, photo, *, consent_at=None, now=None, address=""):
    """Answer a shopper's try-on request: ``(job, reused)``.

    ``photo`` is a :class:`~django_tryon.images.NormalisedImage`; ``address``
    the client's address (see :func:`django_tryon.addresses.client_address`).
    An earlier job that :func:`find_reusable` finds is returned as it is
    (``reused`` true, nothing counted). Otherwise one try-on is counted against
    every daily cap that applies (raising
    :class:`~django_tryon.quota.QuotaExceeded` over one) and a ``pending`` job
    is written with the photo stored under a random name.
    """
    now = now or timezone.now()
    existing = find_reusable(owner, garment, photo.digest, now)
    if existing is not None:
        return existing, True
    job = TryOnJob(
        garment=garment,
        photo_digest=photo.digest,
        source=JobSource.SHOPPER,
        consent_at=consent_at,
        created_at=now,
        next_attempt_at=now,
        **owner.job_fields(),
    )
    # The photo is written before the transaction, so the counters' rows are
    # locked for a few short writes only, not while a file is stored.
    job.person_image.save("photo." + photo.extension, photo.as_content_file(), save=False)
    with photo_kept_with_its_row(job, now), transaction.atomic():
        keys, day = quota.charge_caps(quota.caps_for(owner, address), now)
        # The same try-on sent twice at once: the twin that counted first
        # holds the counters' rows until it commits (a cap without a limit is
        # counted too), and this one finds its job here and counts nothing.
        twin = find_reusable(owner, garment, photo.digest, now)
        if twin is not None:
            transaction.set_rollback(True)
        else:
            job.quota_key = quota.KEY_SEPARATOR.join(keys)
            job.quota_day = day
            job.save(force_insert=True)
    if twin is not None:
        delete_photo(job)
        return twin, True
    return job, False


@contextmanager
def photo_kept_with_its_row(job, now):
    """Around the writing of a new job whose photo file is stored: if the row is not
    written (a quota refusal, a fault), the file is deleted, so no file is left that
    no row names. Staff are told the first time in a day that the guests' cap refused."""
    try:
        yield
    except BaseException as err:
        delete_photo(job)
        if isinstance(err, quota.QuotaExceeded) and err.scope == "guests":
            quota.tell_staff_guest_cap_reached(err.limit, now)
        raise


def delete_photo(job):
    """Delete the photo file of a job whose row was not written."""
    if job.person_image.name:
        job.person_image.storage.delete(job.person_image.name)
