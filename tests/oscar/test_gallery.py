"""Catalogue try-on pictures published to an Oscar product's gallery (ProductImage) by
staff in the admin, unpublished again, and removed on Oscar's side."""

import pytest
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from django_tryon import publishing
from django_tryon.contrib.oscar.models import PublishedImage
from django_tryon.models import Garment, JobSource, JobStatus, ModelPhoto, TryOnJob
from django_tryon.worker import Worker
from tests.support.images import make_image_bytes
from tests.support.media import stored_files

CHANGELIST = reverse("admin:django_tryon_tryonjob_changelist")


@pytest.fixture
def product(catalogue):
    return catalogue.product("Breton T-shirt")


@pytest.fixture
def picture(product):
    """A catalogue picture of the product's garment, made from the admin."""
    garment = Garment.objects.for_object(product).get()

    def make():
        job = TryOnJob(
            garment=garment,
            status=JobStatus.SUCCEEDED,
            source=JobSource.ADMIN,
            provider_task_id="task-1",
            finished_at=timezone.now(),
        )
        job.person_image.save("model.jpg", ContentFile(make_image_bytes()), save=False)
        job.result_image.save(
            "result.png", ContentFile(make_image_bytes(image_format="PNG")), save=False
        )
        job.save()
        return job

    return make


def publish(admin_client, catalogue, *jobs, action="publish_pictures"):
    with catalogue.committed():
        response = admin_client.post(
            CHANGELIST, {"action": action, "_selected_action": [str(job.pk) for job in jobs]}
        )
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_a_published_picture_joins_the_gallery_after_the_products_own_images(
    admin_client, catalogue, product, picture, media_root
):
    catalogue.add_image(product)  # the product has two images of its own
    job = picture()
    messages = publish(admin_client, catalogue, job)
    assert messages == ["1 picture was published to its product's gallery."]
    images = list(product.images.order_by("display_order"))
    assert [image.display_order for image in images] == [0, 1, 2]
    published = images[-1]
    assert published.caption == "Breton T-shirt, tried on"
    # A copy: the job's result and the gallery's image are separate files.
    assert published.original.name != job.result_image.name
    with published.original.open("rb") as copy, job.result_image.open("rb") as result:
        assert copy.read() == result.read()
    assert PublishedImage.objects.get(job=job).product_image == published
    job.refresh_from_db()
    assert job.published_at is not None
    # Oscar's product page shows it in the gallery: three slides now.
    page = admin_client.get(product.get_absolute_url()).content.decode()
    assert page.count('data-target="#product_gallery" data-slide-to=') == 3


def test_a_published_picture_never_becomes_the_garments_picture(
    admin_client, catalogue, product, picture
):
    garment = Garment.objects.for_object(product).get()
    garment_file = garment.image.name
    publish(admin_client, catalogue, picture())
    catalogue.delete(product.images.filter(tryon_publication__isnull=True).get())
    # Oscar renumbered: the try-on picture is now first, yet no garment picture.
    assert product.primary_image().tryon_publication is not None
    garment.refresh_from_db()
    assert garment.image.name == garment_file
    assert not garment.is_active


def test_unpublishing_removes_the_image_and_its_file(
    admin_client, catalogue, product, picture, media_root
):
    job = picture()
    publish(admin_client, catalogue, job)
    copy = PublishedImage.objects.get(job=job).product_image.original.name
    assert copy in stored_files(media_root)
    messages = publish(admin_client, catalogue, job, action="unpublish_pictures")
    assert messages[-1] == "1 picture was taken out of its product's gallery."
    assert product.images.count() == 1
    assert not PublishedImage.objects.exists()
    assert copy not in stored_files(media_root)
    job.refresh_from_db()
    assert job.published_at is None
    assert job.result_image.name in stored_files(media_root)  # the job keeps its own


def test_an_image_deleted_in_oscar_marks_the_job_unpublished(
    admin_client, catalogue, product, picture, media_root
):
    job = picture()
    publish(admin_client, catalogue, job)
    image = PublishedImage.objects.get(job=job).product_image
    catalogue.delete(image)
    assert image.original.name not in stored_files(media_root)
    job.refresh_from_db()
    assert job.published_at is None
    assert publishing.is_publishable(job)  # may be published again


def test_a_deleted_job_leaves_its_published_copy_in_the_gallery(
    admin_client, catalogue, product, picture, media_root
):
    job = picture()
    publish(admin_client, catalogue, job)
    image = PublishedImage.objects.get(job=job).product_image
    catalogue.delete(job)
    assert product.images.filter(pk=image.pk).exists()
    assert image.original.name in stored_files(media_root)
    assert PublishedImage.objects.get(product_image=image).job is None


def test_a_picture_of_a_deleted_product_is_refused(admin_client, catalogue, product, picture):
    job, product_id = picture(), product.pk
    catalogue.delete(product)  # the garment stays for the job
    messages = publish(admin_client, catalogue, job)
    assert messages[1].endswith(f"its product no longer exists (id {product_id}).")
    job.refresh_from_db()
    assert job.published_at is None


def test_a_garment_of_no_oscar_product_finds_no_gallery(admin_client, catalogue, garment):
    job = TryOnJob.objects.create(
        garment=garment,
        status=JobStatus.SUCCEEDED,
        source=JobSource.ADMIN,
        person_image="tryon/photos/model.jpg",
        result_image="tryon/results/result.png",
    )
    messages = publish(admin_client, catalogue, job)
    assert "No gallery took the picture" in messages[1]


def test_the_worker_never_publishes(settings, provider, catalogue, product, media_root):
    """A catalogue job that succeeds stays out of the gallery until a person chooses it."""
    settings.TRYON = {"API_KEY": "test-key", "BASE_URL": provider.url, "POLL_INTERVAL": 0}
    garment = Garment.objects.for_object(product).get()
    photo = ModelPhoto.objects.create(
        name="Model", image=ContentFile(make_image_bytes(), name="model.jpg")
    )
    job = TryOnJob(garment=garment, source=JobSource.ADMIN, model_photo=photo)
    job.person_image.save("model.jpg", ContentFile(make_image_bytes()), save=False)
    job.save()
    with Worker(worker_id="test") as worker, catalogue.committed():
        worker.run_pass()
        worker.run_pass()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.published_at is None
    assert product.images.count() == 1
    assert not PublishedImage.objects.exists()
