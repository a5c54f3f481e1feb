"""Jobs in a test: pending ones in bulk, read again, unchanged, or run until final."""

import time

from django.core.files.base import ContentFile

from django_tryon.models import TryOnJob
from django_tryon.worker import Worker
from tests.support.images import make_image_bytes


def make_jobs(garment, count, first=0):
    """``count`` pending jobs, each with its own photo (the sandbox tells photos apart),
    numbered from ``first``: calls with ranges apart never share a photo."""
    return [
        TryOnJob.objects.create(
            garment=garment,
            person_image=ContentFile(
                # PNG: lossless, so no two colours give the same bytes.
                make_image_bytes((96, 192), (number % 256, number // 256, 90), "PNG"),
                name="person.png",
            ),
        )
        for number in range(first, first + count)
    ]


def refreshed(job):
    job.refresh_from_db()
    return job


def run_until_final(job_id, timeout=30):
    """Worker passes, as ``tryon_poll`` runs them, until the job is final."""
    deadline = time.monotonic() + timeout
    with Worker(worker_id="fashn-test") as worker:
        while time.monotonic() < deadline:
            worker.run_pass()
            job = TryOnJob.objects.get(pk=job_id)
            if job.status in ("succeeded", "failed", "expired", "canceled"):
                return job
            time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job.status} after {timeout} s")


def unchanged(job):
    """A check that ``job``'s row is still as it is now."""
    before = TryOnJob.objects.values().get(pk=job.pk)
    return lambda: TryOnJob.objects.values().get(pk=job.pk) == before
