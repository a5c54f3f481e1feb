"""Telling the workers that new jobs are waiting, once their rows are committed.

With ``CELERY_ENABLED``, each new job is sent to Celery; otherwise, on
PostgreSQL, ``tryon_poll`` is woken (:mod:`django_tryon.wakeup`). Both happen
after the commit (``on_commit``), so a worker never looks for a job it cannot
see yet, and a rolled-back request sends nothing. Elsewhere ``tryon_poll``
finds the job after its idle sleep.
"""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from .conf import tryon_settings
from .models import JobStatus, TryOnJob
from .wakeup import announce_new_jobs


@receiver(post_save, sender=TryOnJob, dispatch_uid="tryon_job_to_celery")
def enqueue_new_job(sender, instance, created, using, **kwargs):
    if not created or instance.status != JobStatus.PENDING:
        return
    jobs_due_now([instance.pk], using=using)


def jobs_due_now(job_ids, *, using=None):
    """Hand ``job_ids``, due now, to whatever moves them once the current
    transaction commits: Celery, or a wake-up of ``tryon_poll``.

    ``post_save`` calls it for each new job; code that makes jobs due without
    it (``bulk_create``, ``update()``, a webhook's delivery) calls it itself.
    """
    if not job_ids:
        return
    if not tryon_settings.CELERY_ENABLED:
        announce_new_jobs(using)
        return
    from .tasks import enqueue  # needs Celery, installed when CELERY_ENABLED is set

    ids = list(job_ids)
    transaction.on_commit(lambda: [enqueue(job_id) for job_id in ids], using=using)
