"""What the admin's actions do to jobs, as plain functions over querysets.

Each change of a job goes through :mod:`django_tryon.transitions`: a
conditional ``UPDATE`` on the job's status, so an action never overwrites what
a worker recorded a moment earlier: a job that finished while staff looked at
the list is left as the worker wrote it, and counted as skipped. Clearing a
job's lease also fences off a worker still holding it: the worker's own writes
require its lease (see :mod:`django_tryon.leased_writes`).

Every job an action makes or makes due is handed on once the transaction
commits, as the shopper API's new jobs are: to Celery with ``CELERY_ENABLED``,
else as a wake-up of ``tryon_poll`` on PostgreSQL (see :mod:`django_tryon.queueing`).
"""

import hashlib
import posixpath
from dataclasses import dataclass, field

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .. import transitions
from ..models import ACTIVE_STATUSES, Garment, JobSource, JobStatus, TryOnJob
from ..queueing import jobs_due_now
from ..storage import upload_storage
from ..transitions import RETRYABLE_STATUSES


@dataclass(frozen=True)
class Outcome:
    """How many of the selected jobs an action changed, and why the others were left."""

    changed: int
    wrong_status: int = 0
    no_photo: int = 0


def retry_jobs(jobs, *, now=None):
    """Send failed and expired jobs back to ``pending``, as if new
    (:func:`~django_tryon.transitions.sent_back`).

    A job whose photo was erased (retention, or the shopper's request)
    cannot be made again and is left as it is.
    """
    now = now or timezone.now()
    selected = jobs.count()
    retryable = jobs.filter(status__in=RETRYABLE_STATUSES)
    erased = Q(person_image="") | Q(photos_erased_at__isnull=False)
    no_photo = retryable.filter(erased).count()
    ids = list(retryable.exclude(erased).values_list("pk", flat=True))
    changed = transitions.apply(ids, transitions.sent_back(now), now=now)
    hand_off(changed)
    return Outcome(
        changed=len(changed), wrong_status=selected - len(changed) - no_photo, no_photo=no_photo
    )


def cancel_jobs(jobs, *, now=None):
    """End pending and in-flight jobs as ``canceled`` (:func:`~django_tryon.transitions.cancel`).

    A task already at the provider is recalled where the provider can (fal,
    :mod:`django_tryon.recall`); elsewhere its credits are spent, and the worker
    discards its result if one comes.
    """
    now = now or timezone.now()
    selected = jobs.count()
    ids = list(jobs.filter(status__in=ACTIVE_STATUSES).values_list("pk", flat=True))
    changed = transitions.cancel(ids, now=now)
    return Outcome(changed=len(changed), wrong_status=selected - len(changed))


def make_due(jobs, *, now=None):
    """Make active jobs due at once: the next worker pass submits or queries them.

    A job a worker holds right now keeps its lease and is taken again once free.
    """
    now = now or timezone.now()
    selected = jobs.count()
    ids = list(jobs.filter(status__in=ACTIVE_STATUSES).values_list("pk", flat=True))
    changed = transitions.apply(ids, transitions.made_due(now), now=now)
    hand_off(changed)
    return Outcome(changed=len(changed), wrong_status=selected - len(changed))


# Catalogue pictures ------------------------------------------------------------


@dataclass
class PhotoPlan:
    """What generating pictures with one model photo would do."""

    photo: object
    new: list = field(default_factory=list)  # garments without a result
    with_result: list = field(default_factory=list)  # garments that have one already
    in_progress: list = field(default_factory=list)  # garments with an active job

    def garments_to_make(self, include_existing):
        return self.new + self.with_result if include_existing else list(self.new)


@dataclass
class GenerationPlan:
    """One job per garment and model photo, minus the pairs skipped."""

    photos: list
    include_existing: bool = False

    def pairs(self):
        return [
            (garment, plan.photo)
            for plan in self.photos
            for garment in plan.garments_to_make(self.include_existing)
        ]

    @property
    def call_count(self):
        """Jobs to make: each is one try-on request to the provider."""
        return sum(len(p.garments_to_make(self.include_existing)) for p in self.photos)

    @property
    def skipped_with_result(self):
        return 0 if self.include_existing else sum(len(p.with_result) for p in self.photos)

    @property
    def skipped_in_progress(self):
        return sum(len(p.in_progress) for p in self.photos)


def plan_generation(garments, photos, *, include_existing=False):
    """Which garment x photo pairs get a job.

    A pair that has a stored result is skipped unless ``include_existing``; a
    pair with a job still active is always skipped (a second one would pay
    the provider twice for the same picture).
    """
    garments = list(garments)
    photos = list(photos)
    has_result, active = set(), set()
    # Shoppers' pictures of offered model photos (source "shared") are theirs to see,
    # not the catalogue's: they neither count as a pair's result nor hold it up.
    rows = TryOnJob.objects.filter(
        garment__in=[g.pk for g in garments],
        model_photo__in=[p.pk for p in photos],
        source=JobSource.ADMIN,
    ).values_list("garment_id", "model_photo_id", "status", "result_image")
    for garment_id, photo_id, status, result in rows:
        if status in ACTIVE_STATUSES:
            active.add((garment_id, photo_id))
        elif status == JobStatus.SUCCEEDED and result:
            has_result.add((garment_id, photo_id))
    plans = []
    for photo in photos:
        plan = PhotoPlan(photo=photo)
        for garment in garments:
            pair = (garment.pk, photo.pk)
            if pair in active:
                plan.in_progress.append(garment)
            elif pair in has_result:
                plan.with_result.append(garment)
            else:
                plan.new.append(garment)
        plans.append(plan)
    return GenerationPlan(photos=plans, include_existing=include_existing)


class PhotoUnreadable(Exception):
    """A model photo's file cannot be read from storage."""

    def __init__(self, photo, error):
        super().__init__(f"{photo}: {error}")
        self.photo = photo
        self.error = error


def create_jobs(plan, *, now=None):
    """Make the plan's jobs: ``source=admin``, each with its own copy of the model photo.

    The copy makes the job independent of the model photo: deleting either,
    or erasing the job's photo, never touches the other. Files are written
    first and deleted again if the rows cannot be written, so nothing is left
    orphaned on storage.

    Returns the jobs made: fewer than the plan's when another generation of
    the same pairs (another member of staff, or a second click on the same
    button) made its jobs meanwhile, since a pair never gets a second active
    job. The generations of the same garments take turns: the garments' rows
    are locked (``SELECT ... FOR UPDATE``) while the pairs are checked again
    and the jobs written.
    """
    now = now or timezone.now()
    pairs = plan.pairs()
    if not pairs:
        return []
    contents = {}
    for photo in {photo.pk: photo for _garment, photo in pairs}.values():
        try:
            with photo.image.open("rb") as handle:
                contents[photo.pk] = handle.read()
        except OSError as err:
            raise PhotoUnreadable(photo, err) from err
    digests = {pk: hashlib.sha256(content).hexdigest() for pk, content in contents.items()}
    field_ = TryOnJob._meta.get_field("person_image")
    storage = upload_storage()
    saved = []
    jobs = []
    try:
        for garment, photo in pairs:
            content = contents[photo.pk]
            extension = posixpath.splitext(photo.image.name)[1] or ".jpg"
            name = storage.save(
                # The upload_to of person_image ignores the instance: there is none yet.
                field_.generate_filename(None, f"model{extension}"),  # type: ignore[arg-type]
                ContentFile(content),
            )
            saved.append(name)
            jobs.append(
                TryOnJob(
                    garment=garment,
                    model_photo=photo,
                    person_image=name,
                    photo_digest=digests[photo.pk],
                    source=JobSource.ADMIN,
                    status=JobStatus.PENDING,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        with transaction.atomic():
            taken = _pairs_taken_meanwhile(pairs)
            made = [job for job in jobs if (job.garment_id, job.model_photo_id) not in taken]
            TryOnJob.objects.bulk_create(made)
    except BaseException:
        for name in saved:
            storage.delete(name)
        raise
    made_ids = {job.pk for job in made}
    for job, name in zip(jobs, saved, strict=True):
        if job.pk not in made_ids:  # its pair was taken: its copy of the photo goes
            storage.delete(name)
    hand_off([job.pk for job in made])
    return made


def _pairs_taken_meanwhile(pairs):
    """The (garment id, photo id) of ``pairs`` that have an active job now.

    Called in the transaction that writes the new jobs: the garments' rows are
    locked first, so a generation of the same garments running at the same
    time waits for this one's commit and then sees its jobs here.
    """
    garment_ids = sorted({garment.pk for garment, _photo in pairs})
    photo_ids = {photo.pk for _garment, photo in pairs}
    locked = Garment.objects.select_for_update().filter(pk__in=garment_ids).order_by("pk")
    list(locked.values_list("pk", flat=True))
    return set(
        TryOnJob.objects.filter(
            garment_id__in=garment_ids,
            model_photo_id__in=photo_ids,
            status__in=ACTIVE_STATUSES,
            source=JobSource.ADMIN,
        ).values_list("garment_id", "model_photo_id")
    )


def hand_off(job_ids):
    """Tell the workers that ``job_ids`` are due now, once committed: a Celery message
    each when ``CELERY_ENABLED``, else a wake-up of ``tryon_poll`` on PostgreSQL.

    ``bulk_create`` and ``update`` send no ``post_save``, so the hand-off of
    :mod:`django_tryon.queueing` does not see these jobs by itself. A message
    for a job that is not due (or changed meanwhile) claims nothing and ends.
    """
    jobs_due_now(job_ids)
