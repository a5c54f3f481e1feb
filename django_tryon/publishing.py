"""Publishing catalogue try-on pictures to a shop's product gallery, and taking them back.

The worker never publishes: a picture reaches a product's gallery only when a
member of staff chooses it (the job admin's "Publish" action). Publishing
records the moment in ``TryOnJob.published_at`` and sends
:data:`~django_tryon.signals.result_published`; a shop's receiver places a copy
of the picture in its own gallery (``django_tryon.contrib.oscar`` adds an Oscar
``ProductImage``). Unpublishing clears the moment and sends
:data:`~django_tryon.signals.result_unpublished`.

Only pictures made from the admin with a staff model photo can be published: a
shopper's try-on shows the shopper, and never leaves their own page.

Each job is recorded and announced in one transaction: a receiver that refuses
(:class:`PublishRefused`) or fails rolls the job's record back, so the
``published_at`` of a job always says whether a gallery holds its picture.
"""

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import JobSource, JobStatus, TryOnJob
from .signals import result_published, result_unpublished

#: Jobs whose picture may be published: staff's, succeeded, with a stored result.
PUBLISHABLE = Q(source=JobSource.ADMIN, status=JobStatus.SUCCEEDED, published_at__isnull=True) & ~Q(
    result_image=""
)


class PublishRefused(Exception):
    """Raised by a ``result_published`` receiver that cannot place this picture.

    Its message is shown to the member of staff, so it says what to do (for
    example "link the garment to a product first").
    """


@dataclass
class PublishOutcome:
    """What publishing (or unpublishing) the selected jobs did."""

    changed: int = 0
    #: Selected jobs left as they were: not a staff picture with a result, or
    #: already in the state asked for.
    not_applicable: int = 0
    #: ``(job, reason)`` of the jobs a receiver refused.
    refused: list[tuple[TryOnJob, str]] = field(default_factory=list)


def is_publishable(job: TryOnJob) -> bool:
    """Whether ``job``'s picture may be published now (its page shows the button)."""
    return (
        job.source == JobSource.ADMIN
        and job.status == JobStatus.SUCCEEDED
        and bool(job.result_image)
        and job.published_at is None
    )


def publish(jobs: "QuerySet[TryOnJob]", *, now: datetime | None = None) -> PublishOutcome:
    """Publish the pictures of ``jobs`` that may be published, one transaction each."""
    now = now or timezone.now()
    outcome = PublishOutcome()
    selected = jobs.count()
    for job in jobs.filter(PUBLISHABLE).select_related("garment").order_by("created_at", "pk"):
        try:
            with transaction.atomic():
                # Conditional: a second click, or another member of staff, publishes once.
                if not TryOnJob.objects.filter(PUBLISHABLE, pk=job.pk).update(
                    published_at=now, updated_at=now
                ):
                    continue
                job.published_at = now
                answers = result_published.send(sender=TryOnJob, job=job)
                if not any(answer for _receiver, answer in answers):
                    raise PublishRefused(
                        _(
                            "No gallery took the picture: the shop connects a receiver to "
                            "django_tryon.signals.result_published (see the admin docs)."
                        )
                    )
        except PublishRefused as err:
            job.published_at = None
            outcome.refused.append((job, str(err)))
            continue
        outcome.changed += 1
    outcome.not_applicable = selected - outcome.changed - len(outcome.refused)
    return outcome


def unpublish(jobs: "QuerySet[TryOnJob]", *, now: datetime | None = None) -> PublishOutcome:
    """Take the published pictures of ``jobs`` back out of their galleries."""
    now = now or timezone.now()
    outcome = PublishOutcome()
    selected = jobs.count()
    for job in jobs.filter(published_at__isnull=False).select_related("garment"):
        with transaction.atomic():
            if not TryOnJob.objects.filter(pk=job.pk, published_at=job.published_at).update(
                published_at=None, updated_at=now
            ):
                continue
            result_unpublished.send(sender=TryOnJob, job=job)
        job.published_at = None
        outcome.changed += 1
    outcome.not_applicable = selected - outcome.changed
    return outcome


def forget_publication(job_id: "UUID | str", published_at: datetime | None = None) -> bool:
    """Record that a gallery no longer holds a job's picture, removed on the gallery's
    side (its product deleted, or the image deleted there). No signal is sent: the
    gallery itself took it out. Returns whether the job was marked published."""
    jobs = TryOnJob.objects.filter(pk=job_id, published_at__isnull=False)
    if published_at is not None:
        jobs = jobs.filter(published_at=published_at)
    return bool(jobs.update(published_at=None, updated_at=timezone.now()))
