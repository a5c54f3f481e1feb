"""A product deleted in Oscar while try-ons of it are on their way: no new try-on
starts, the ones not yet at the provider end canceled with a reason the shopper
reads, the ones already there finish, and no file is left that no row names."""

import pytest
from django.core.files.base import ContentFile

from django_tryon.models import Garment, JobSource, JobStatus, TryOnJob
from django_tryon.worker import Worker
from tests.support.images import make_image_bytes
from tests.support.media import stored_files


def tryon_files(root):
    """The try-on app's files (Oscar leaves its own product images behind by design)."""
    return {name for name in stored_files(root) if name.startswith("tryon/")}


@pytest.fixture
def product(catalogue):
    return catalogue.product("Breton T-shirt")


def new_job(garment, **fields):
    job = TryOnJob(garment=garment, session_key="shopper-session", **fields)
    job.person_image.save("person.jpg", ContentFile(make_image_bytes()), save=False)
    job.save()
    return job


def test_a_product_without_try_ons_takes_its_garment_and_picture_along(
    catalogue, product, media_root
):
    garment = Garment.objects.for_object(product).get()
    assert garment.image.name in tryon_files(media_root)
    catalogue.delete(product)
    assert not Garment.objects.filter(pk=garment.pk).exists()
    assert tryon_files(media_root) == set()


def test_a_product_deleted_while_try_ons_run(settings, provider, catalogue, product, media_root):
    settings.TRYON = {"API_KEY": "test-key", "BASE_URL": provider.url, "POLL_INTERVAL": 0}
    garment = Garment.objects.for_object(product).get()
    at_provider = new_job(garment)
    with Worker(worker_id="test") as worker, catalogue.committed():
        worker.run_pass()  # submitted: the provider is making the picture
    at_provider.refresh_from_db()
    assert at_provider.status == JobStatus.QUEUED
    waiting = new_job(garment)  # not yet sent to the provider

    catalogue.delete(product)

    garment.refresh_from_db()
    assert not garment.is_active  # no button, no new try-on
    waiting.refresh_from_db()
    assert waiting.status == JobStatus.CANCELED
    assert waiting.error == {"code": "canceled", "message": "This try-on was canceled."}

    with Worker(worker_id="test") as worker, catalogue.committed():
        worker.run_pass()  # the paid try-on at the provider still reaches its shopper
    at_provider.refresh_from_db()
    assert at_provider.status == JobStatus.SUCCEEDED
    assert at_provider.result_image.name in tryon_files(media_root)
    assert len(provider.submits) == 1  # the canceled one never left

    # Every file is named by a row; deleting the retired garment takes them all.
    named = {garment.image.name}
    for job in TryOnJob.objects.all():
        named |= {job.person_image.name, job.result_image.name} - {""}
    assert tryon_files(media_root) == named
    with catalogue.committed():
        garment.delete()
    assert tryon_files(media_root) == set()


def test_a_staff_garment_of_a_deleted_product_is_retired_too(catalogue, garment, media_root):
    product = catalogue.product("Plain top", image=False)
    garment.product = product
    garment.save()
    job = new_job(garment, source=JobSource.SHOPPER, status=JobStatus.SUCCEEDED)
    catalogue.delete(product)
    garment.refresh_from_db()
    assert not garment.is_active
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED  # ended jobs are left as they are
