"""Models: linking garments to any product, file names and file clean-up."""

import pytest
from django.core.files.base import ContentFile

from django_tryon.models import Garment, TryOnJob
from django_tryon.storage import result_image_name
from tests.support.images import make_image_bytes
from tests.support.media import stored_files
from tests.testapp.models import Product, UUIDProduct


def _garment(product=None, **fields):
    fields.setdefault("name", "Skirt")
    fields.setdefault("clothes_type", "lower_body")
    garment = Garment(image=ContentFile(make_image_bytes(), name="g.jpg"), **fields)
    if product is not None:
        garment.product = product
    garment.save()
    return garment


@pytest.mark.django_db
@pytest.mark.parametrize("product_model", [Product, UUIDProduct])
def test_a_products_garment_in_one_line(product_model):
    product = product_model.objects.create(name="Denim skirt")
    other = product_model.objects.create(name="Other")
    garment = _garment(product)
    _garment(other)
    assert Garment.objects.get_for(product) == garment
    assert garment.product == product


@pytest.mark.django_db
def test_get_for_ignores_inactive_garments_and_unlinked_products():
    product = Product.objects.create(name="Dress")
    _garment(product, is_active=False)
    assert Garment.objects.get_for(product) is None
    assert Garment.objects.get_for(Product(name="unsaved")) is None
    assert Garment.objects.get_for(None) is None


@pytest.mark.django_db
def test_get_for_accepts_a_garment():
    garment = _garment()
    assert Garment.objects.get_for(garment) == garment
    garment.is_active = False
    assert Garment.objects.get_for(garment) is None


@pytest.mark.django_db
def test_files_get_random_names(make_job):
    first, second = make_job(), make_job()
    assert first.person_image.name.startswith("tryon/photos/")
    assert first.person_image.name != second.person_image.name
    assert "person" not in first.person_image.name


@pytest.mark.django_db
def test_result_names_are_unguessable_but_stable_per_job(make_job):
    job = make_job()
    name = result_image_name(job, "png")
    assert name == result_image_name(job, "png")
    assert str(job.pk) not in name
    assert name != result_image_name(make_job(), "png")


@pytest.mark.django_db(transaction=True)
def test_deleting_a_job_deletes_its_files(make_job, media_root):
    job = make_job()
    job.result_image.save("r.png", ContentFile(make_image_bytes()), save=True)
    assert len(stored_files(media_root)) == 3  # garment, photo, result
    job.delete()
    assert stored_files(media_root) == {job.garment.image.name}


@pytest.mark.django_db(transaction=True)
def test_deleting_a_garment_deletes_its_jobs_and_every_file(make_job, media_root):
    job = make_job()
    job.garment.delete()
    assert TryOnJob.objects.count() == 0
    assert stored_files(media_root) == set()


@pytest.mark.django_db
def test_job_error_and_duration(make_job):
    from datetime import timedelta

    from django.utils import timezone

    job = make_job()
    assert job.error is None
    assert job.duration is None
    job.error_code = "no_face"
    assert job.error["message"].startswith("We could not find")
    job.submitted_at = timezone.now()
    job.finished_at = job.submitted_at + timedelta(seconds=12)
    assert job.duration == timedelta(seconds=12)
