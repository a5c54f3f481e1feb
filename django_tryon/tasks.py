"""Celery tasks: the worker engine, one job per task, for shops that run Celery.

``process_job`` moves one job one step (submit, or query and store the result)
with the same :class:`~django_tryon.worker.Worker` as ``tryon_poll``, under the
same lease, so both may even run side by side. While the job is still active
afterwards the task enqueues itself again, due when the job's next step is
(``countdown``). A message that claims nothing (the job is leased by someone
else, not due, or finished) ends its chain: each job has one chain at a time.

``sweep`` re-enqueues jobs whose message was lost (a broker restart, a purge,
jobs written without ``post_save``, such as ``bulk_create``): run it
periodically with Celery beat, e.g. every minute.

Importing this module needs Celery: ``pip install "django-tryon[celery]"``.
"""

import threading
from datetime import timedelta

from celery import shared_task
from django.db.models import Q
from django.utils import timezone

from .models import TryOnJob
from .worker import Worker, default_worker_id

# A job due for longer than this with a free lease has most likely lost its message.
SWEEP_GRACE_SECONDS = 30
# At most this many jobs re-enqueued by one sweep; the next sweep takes the rest.
SWEEP_LIMIT = 1000

_local = threading.local()


def _worker():
    """This thread's engine: kept across tasks, so connections and the 429 pause persist."""
    worker = getattr(_local, "worker", None)
    if worker is None:
        worker = _local.worker = Worker(worker_id=f"celery:{default_worker_id()}"[:40])
    return worker


def close_worker():
    """Close this thread's engine, if it has one (its thread pool and provider
    connections): for a process that stops using the tasks, and for tests that
    change the settings it was made with."""
    worker = getattr(_local, "worker", None)
    if worker is not None:
        del _local.worker
        worker.close()


@shared_task(name="django_tryon.process_job", ignore_result=True)
def process_job(job_id):
    """Move job ``job_id`` one step; enqueue the next step while it is active.

    Returns the number of jobs this message moved (0 or 1).
    """
    # Celery's Django integration closes stale database connections around each task.
    report = _worker().run_pass(job_ids=[job_id])
    if not report.claimed:
        return 0
    job = TryOnJob.objects.active().filter(pk=job_id).values("next_attempt_at").first()
    if job is not None:
        enqueue(job_id, due=job["next_attempt_at"])
    return 1


@shared_task(name="django_tryon.sweep", ignore_result=True)
def sweep(grace_seconds=SWEEP_GRACE_SECONDS):
    """Enqueue every active job overdue by ``grace_seconds`` with a free lease.

    A job whose message was only late gets a second message; the one that
    arrives second claims nothing and ends. Returns the number enqueued.
    """
    now = timezone.now()
    overdue = (
        TryOnJob.objects.active()
        .filter(
            Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now),
            next_attempt_at__lte=now - timedelta(seconds=grace_seconds),
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    ids = list(overdue)
    for job_id in ids:
        enqueue(job_id)
    return len(ids)


def enqueue(job_id, due=None):
    """Send ``process_job`` for ``job_id``, to run at ``due`` (a datetime) or now."""
    countdown = 0.0
    if due is not None:
        countdown = max(0.0, (due - timezone.now()).total_seconds())
    process_job.apply_async(args=[str(job_id)], countdown=countdown)
