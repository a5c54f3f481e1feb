"""Handing new jobs to Celery when ``CELERY_ENABLED`` is set.

The message is sent once the job's row is committed (``on_commit``), so a
Celery worker never looks for a job it cannot see yet, and a rolled-back
request sends nothing. Without the setting nothing is sent and ``tryon_poll``
picks the job up.
"""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from .conf import tryon_settings
from .models import JobStatus, TryOnJob


@receiver(post_save, sender=TryOnJob, dispatch_uid="tryon_job_to_celery")
def enqueue_new_job(sender, instance, created, **kwargs):
    if not created or instance.status != JobStatus.PENDING:
        return
    if not tryon_settings.CELERY_ENABLED:
        return
    from .tasks import enqueue

    job_id = instance.pk
    transaction.on_commit(lambda: enqueue(job_id))
