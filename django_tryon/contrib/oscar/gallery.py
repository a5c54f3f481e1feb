"""Published try-on pictures in Oscar product galleries.

The receivers of :data:`~django_tryon.signals.result_published` and
``result_unpublished`` for garments made from (or linked to) Oscar products:
publishing adds a ``ProductImage`` holding a copy of the picture after the
product's own images, so it never becomes the primary image by itself;
unpublishing deletes that image and its file. An image removed on Oscar's side
(in the dashboard, or with its product) takes its file along and marks the
job unpublished.
"""

import posixpath

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max
from django.db.models.signals import post_delete
from django.utils import translation
from django.utils.translation import gettext as _

from ...models import TryOnJob
from ...publishing import PublishRefused, forget_publication
from ...signals import result_published, result_unpublished
from .catalogue import product_image_model, product_of
from .models import PublishedImage


def connect():
    result_published.connect(
        place_in_gallery, sender=TryOnJob, dispatch_uid="tryon_oscar_place_in_gallery"
    )
    result_unpublished.connect(
        remove_from_gallery, sender=TryOnJob, dispatch_uid="tryon_oscar_remove_from_gallery"
    )
    post_delete.connect(
        publication_deleted, sender=PublishedImage, dispatch_uid="tryon_oscar_publication_deleted"
    )


def place_in_gallery(sender, job, **kwargs):
    """Add ``job``'s picture to its product's gallery; ``None`` for non-Oscar garments."""
    try:
        product = product_of(job.garment)
    except LookupError as err:
        raise PublishRefused(
            _("its product no longer exists (id %(id)s).") % {"id": err.args[0]}
        ) from err
    if product is None:
        return None  # not an Oscar product's garment: another gallery's business
    try:
        with job.result_image.open("rb") as handle:
            content = handle.read()
    except OSError as err:
        raise PublishRefused(
            _("its picture cannot be read from storage (%(error)s).") % {"error": err}
        ) from err
    last = product.images.aggregate(last=Max("display_order"))["last"]
    image = product_image_model()(
        product=product,
        caption=_caption(product),
        display_order=0 if last is None else last + 1,
    )
    extension = posixpath.splitext(job.result_image.name)[1] or ".jpg"
    image.original.save(f"tryon-{job.pk.hex[:12]}{extension}", ContentFile(content), save=False)
    try:
        with transaction.atomic():
            image.save()
            PublishedImage.objects.create(
                product_image=image,
                job=job,
                image_name=image.original.name,
                published_at=job.published_at,
            )
    except BaseException:
        image.original.storage.delete(image.original.name)
        raise
    return image


def _caption(product):
    # Shoppers read the caption: in the shop's language, whoever clicked.
    with translation.override(settings.LANGUAGE_CODE):
        return _("%(product)s, tried on") % {"product": product.get_title()}


def remove_from_gallery(sender, job, **kwargs):
    """Delete the gallery images holding ``job``'s picture (their files follow)."""
    removed = 0
    for publication in PublishedImage.objects.filter(job=job).select_related("product_image"):
        # Oscar's own delete() keeps the gallery's display order without gaps.
        publication.product_image.delete()
        removed += 1
    return removed


def publication_deleted(sender, instance, **kwargs):
    """A published image is gone (unpublished, deleted in the dashboard, or with its
    product): delete its file once committed, and the job is no longer published."""
    storage = product_image_model()._meta.get_field("original").storage
    name = instance.image_name
    if name:
        transaction.on_commit(lambda: storage.delete(name))
    if instance.job_id is not None:
        forget_publication(instance.job_id, instance.published_at)
