"""Telling the workers that new jobs are waiting, once their rows are committed.

With ``CELERY_ENABLED``, each new job is sent to Celery; otherwise, on
PostgreSQL, ``tryon_poll`` is woken (:mod:`django_tryon.wakeup`). Both happen
after the commit (``on_commit``), so a worker never looks for a job it cannot
see yet, and a rolled-back request sends nothing. Elsewhere ``tryon_poll``
finds the job after its idle sleep. A failure to send is logged, never raised to
the request that made the job: the job is committed, and Celery's sweep (or the
worker's idle sleep) finds it anyway.
"""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from .conf import tryon_settings
from .models import JobStatus, TryOnJob
from .redaction import get_logger
from .wakeup import announce_new_jobs

logger = get_logger("django_tryon.worker")


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
    ids = list(job_ids)
    transaction.on_commit(lambda: send_to_celery(ids), using=using)


def send_to_celery(job_ids):
    """Send each job's first ``process_job`` message.

    A broker out of reach fails neither the shopper's try-on nor the staff's action
    nor a provider's webhook delivery: their jobs are committed, and the sweep
    (``django_tryon.sweep``, every minute with Celery beat) sends them once the broker
    answers. The first failure stops the sending: each would wait as long.
    """
    from .tasks import enqueue  # needs Celery, installed when CELERY_ENABLED is set

    for position, job_id in enumerate(job_ids):
        try:
            enqueue(job_id)
        except Exception as err:  # the broker's or the network's fault
            logger.error(
                "Could not send %d job(s) to Celery (%s: %s): the sweep (django_tryon.sweep) "
                "sends them once the broker answers. Check that the broker runs, and that the "
                "project loads its Celery app with its broker URL (docs/deployment.md).",
                len(job_ids) - position,
                type(err).__name__,
                err,
            )
            return
