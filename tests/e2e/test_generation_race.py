"""Two generations of the same catalogue pictures at once (two staff, or a double
click on "Generate try-on pictures"), on PostgreSQL: each pair gets one job, so
the provider is paid once per picture, and no copied photo is left behind."""

import threading
import time

from django.core.files.base import ContentFile
from django.db import connection

from django_tryon.admin import operations
from django_tryon.models import Garment, ModelPhoto, TryOnJob
from tests.support.images import make_image_bytes
from tests.support.media import stored_files


def test_two_generations_of_the_same_pairs_at_once_make_one_job_per_pair(media_root, monkeypatch):
    garments = [
        Garment.objects.create(
            name=name,
            clothes_type="upper_body",
            image=ContentFile(make_image_bytes((400, 400)), name="g.jpg"),
        )
        for name in ("Blouse", "Coat", "Shirt")
    ]
    photo = ModelPhoto.objects.create(
        name="Anna", image=ContentFile(make_image_bytes((400, 800)), name="anna.jpg")
    )
    # Both planned before either wrote anything: each sees three pairs to make.
    plan = operations.plan_generation(garments, [photo])
    files_before = stored_files(media_root)

    # The first generation lingers between its check for pairs taken meanwhile and its
    # write, its garments' rows locked: the second arrives then.
    really_write = TryOnJob.objects.bulk_create
    first_checked = threading.Event()

    def linger_then_write(jobs, *args, **kwargs):
        if not first_checked.is_set():
            first_checked.set()
            time.sleep(1.0)  # the other generation arrives while this one writes
        return really_write(jobs, *args, **kwargs)

    monkeypatch.setattr(TryOnJob.objects, "bulk_create", linger_then_write)
    made, errors = [], []

    def generate():
        try:
            made.append(operations.create_jobs(plan))
        except Exception as err:  # reported by the assertions below
            errors.append(err)
        finally:
            connection.close()  # this thread's own connection

    first = threading.Thread(target=generate)
    first.start()
    assert first_checked.wait(timeout=30)
    second = threading.Thread(target=generate)
    second.start()
    first.join(timeout=30)
    second.join(timeout=30)

    assert errors == []
    assert sorted(len(jobs) for jobs in made) == [0, 3]
    assert TryOnJob.objects.filter(model_photo=photo).count() == 3
    kept = {job.person_image.name for job in TryOnJob.objects.all()}
    assert stored_files(media_root) - files_before == kept
