"""Pending jobs in bulk, for the tests that run several workers."""

from django.core.files.base import ContentFile

from django_tryon.models import TryOnJob
from tests.support.images import make_image_bytes


def make_jobs(garment, count):
    """``count`` pending jobs, each with its own photo (the sandbox tells photos apart)."""
    return [
        TryOnJob.objects.create(
            garment=garment,
            person_image=ContentFile(
                # PNG: lossless, so no two colours give the same bytes.
                make_image_bytes((96, 192), (number % 256, number // 256, 90), "PNG"),
                name="person.png",
            ),
        )
        for number in range(count)
    ]


def refreshed(job):
    job.refresh_from_db()
    return job
