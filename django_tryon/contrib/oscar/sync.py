"""Garments made from Oscar products, and kept in step with them.

A product can be tried on when it is public, not a variant (its parent is
tried on), has a clothes type from ``TRYON_OSCAR`` and a usable picture: its
primary image, leaving out the try-on pictures published to its gallery. Its
garment's picture is a copy of that image, checked and fitted to the
provider's limits by the photo intake, so deleting or replacing either file
never touches the other.

When a product stops qualifying its garment is deactivated (shoppers no longer
see a button), and activated again when it qualifies again; a garment staff
turned off in the admin stays off until the product's eligibility changes.
A deleted product's garments are retired: no new try-on starts, pending ones
are canceled before they reach the provider, those already there finish.
"""

import logging
from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from ...admin.operations import cancel_jobs
from ...images import ImageRejected, IntakeBusy, normalise_image
from ...models import Garment, JobStatus
from .catalogue import product_model
from .conf import oscar_settings
from .models import ProductGarment

logger = logging.getLogger("django_tryon.contrib.oscar")

#: The garment's fields a sync may change.
GARMENT_FIELDS = {"name", "clothes_type", "image", "is_active"}
#: Longest garment name (``Garment.name``); Oscar titles may be longer.
NAME_LENGTH = Garment._meta.get_field("name").max_length or 200


def clothes_type_for(product):
    """The clothes type ``TRYON_OSCAR`` gives ``product``, or ``None``.

    A mapped category (or an ancestor of one of the product's categories) wins
    over the product class: the deepest one, then the first listed.
    """
    by_category = oscar_settings.CATEGORIES
    if by_category:
        listed = {key.strip("/"): index for index, key in enumerate(by_category)}
        types = {key.strip("/"): value for key, value in by_category.items()}
        best = None
        for category in product.categories.all():
            path = []
            for node in category.get_ancestors_and_self():
                path.append(node.slug)
                # The full slug from the ancestors read here (Oscar's own is cached).
                for key in ("/".join(path), node.slug):
                    if key in listed:
                        rank = (-node.depth, listed[key])
                        if best is None or rank < best[0]:
                            best = (rank, types[key])
        if best is not None:
            return best[1]
    product_class = product.get_product_class()
    if product_class is not None:
        return oscar_settings.PRODUCT_CLASSES.get(product_class.slug)
    return None


def garment_picture(product):
    """The product's primary image, leaving out published try-on pictures; or ``None``."""
    return (
        product.images.filter(tryon_publication__isnull=True)
        .exclude(original="")
        .order_by("display_order", "pk")
        .first()
    )


@dataclass
class _Picture:
    source: object  # the ProductImage, or None
    content: object = None  # a ContentFile ready to save, or None if unusable


class _IntakeBusy(Exception):
    """The intake had no room for a large decode: nothing is recorded, so the next
    sync of the product (or ``tryon_oscar_sync``) reads the picture again."""


def _read_picture(product, image):
    if image is None:
        return _Picture(None)
    try:
        with image.original.open("rb") as handle:
            normalised = normalise_image(handle, purpose="garment")
    except IntakeBusy as err:
        logger.warning(
            "Product %s: the photo intake is busy; its garment picture is read at its "
            "next change or by manage.py tryon_oscar_sync.",
            product.pk,
        )
        raise _IntakeBusy from err
    except (ImageRejected, OSError, ValueError) as err:
        logger.warning(
            "Product %s: its picture %s cannot be a garment picture: %s",
            product.pk,
            image.original.name,
            err,
        )
        return _Picture(image)
    return _Picture(image, normalised.as_content_file(name="garment"))


def _source_changed(link, image):
    if image is None:
        return link.source_image_id is not None or bool(link.source_name)
    return link.source_image_id != image.pk or link.source_name != image.original.name


def sync_product(product):
    """Make, update or retire ``product``'s garment; return the garment or ``None``.

    Garments staff linked to the product themselves are left alone.
    """
    link = ProductGarment.objects.select_related("garment").filter(product=product).first()
    clothes_type = None if product.is_child else clothes_type_for(product)
    image = garment_picture(product) if clothes_type else None
    if link is None:
        if not (product.is_public and clothes_type and image):
            return None
        if _staff_garments(product).exists():
            return None  # staff's own garment for this product
        try:
            picture = _read_picture(product, image)
        except _IntakeBusy:
            return None
        if picture.content is None:
            return None
        return _create(product, clothes_type, picture)
    try:
        return _update(link, product, clothes_type, image)
    except _IntakeBusy:
        return link.garment


def _staff_garments(product):
    """Garments staff linked to ``product`` themselves (not made from its picture)."""
    return Garment.objects.for_object(product).filter(oscar_source__isnull=True)


def _create(product, clothes_type, picture):
    garment = Garment(
        name=product.get_title()[:NAME_LENGTH],
        clothes_type=clothes_type,
        product=product,
        is_active=True,
    )
    try:
        with transaction.atomic():
            garment.image.save(picture.content.name, picture.content, save=False)
            garment.save()
            ProductGarment.objects.create(
                garment=garment,
                product=product,
                source_image=picture.source,
                source_name=picture.source.original.name,
                picture_ok=True,
                eligible=True,
            )
    except BaseException as err:
        if garment.image.name:
            garment.image.storage.delete(garment.image.name)
        if isinstance(err, IntegrityError):
            # Another process made this product's garment at the same moment.
            link = ProductGarment.objects.select_related("garment").filter(product=product).first()
            if link is not None:
                return link.garment
        raise
    logger.info("Product %s: garment %s made.", product.pk, garment.pk)
    return garment


def _update(link, product, clothes_type, image):
    garment = link.garment
    read_source = (link.source_image_id, link.source_name)
    changed = set()
    name = product.get_title()[:NAME_LENGTH]
    if garment.name != name:
        garment.name = name
        changed.add("name")
    if clothes_type and garment.clothes_type != clothes_type:
        garment.clothes_type = clothes_type
        changed.add("clothes_type")
    previous_file = ""
    if _source_changed(link, image):
        link.source_image = image
        link.source_name = image.original.name if image is not None else ""
        link.picture_ok = False
        changed.add("source")
        if image is not None:
            picture = _read_picture(product, image)
            if picture.content is not None:
                link.picture_ok = True
                previous_file = garment.image.name
                garment.image.save(picture.content.name, picture.content, save=False)
                changed.add("image")
    # An unusable picture is read again only when the product's picture changes.
    usable = image is not None and link.picture_ok
    eligible = bool(product.is_public and clothes_type and usable)
    if eligible and _staff_garments(product).exclude(pk=garment.pk).exists():
        eligible = False  # a garment staff linked to the product takes its place
    if eligible != link.eligible:
        link.eligible = eligible
        garment.is_active = eligible
        changed.update({"eligible", "is_active"})
    if not changed:
        return garment
    try:
        with transaction.atomic():
            # Another sync of this product may have finished meanwhile (two processes
            # saving it): only the first to get here writes, the other's copy goes.
            locked = ProductGarment.objects.select_for_update().filter(pk=link.pk)
            if locked.values_list("source_image_id", "source_name").first() != read_source:
                raise _Superseded
            garment.save(update_fields=[*sorted(changed & GARMENT_FIELDS), "updated_at"])
            link.save()
    except BaseException as err:
        if "image" in changed:
            garment.image.storage.delete(garment.image.name)
        if isinstance(err, _Superseded):
            return Garment.objects.get(pk=garment.pk)
        raise
    if previous_file and previous_file != garment.image.name:
        storage = garment.image.storage
        transaction.on_commit(lambda: storage.delete(previous_file))
    return garment


class _Superseded(Exception):
    """Another sync of the same product wrote first."""


def sync_product_id(pk):
    """:func:`sync_product` for the product with ``pk``, if it still exists."""
    try:
        product = product_model().objects.filter(pk=pk).first()
    except (ValueError, ValidationError):  # a garment's text id that is no product key
        return None
    if product is None:
        return None
    return sync_product(product)


def retire_garments(content_type_id, object_id, *, now=None):
    """A product was deleted: retire every garment linked to it.

    Each is deactivated first, so no new try-on starts; its pending jobs are
    canceled before they reach the provider (the shopper reads why); jobs
    already at the provider finish and keep their garment and files. A garment
    left without any job is deleted, its picture with it.
    Returns ``(deactivated, deleted)``.
    """
    now = now or timezone.now()
    garments = Garment.objects.filter(content_type_id=content_type_id, object_id=str(object_id))
    garments.filter(is_active=True).update(is_active=False, updated_at=now)
    deactivated = deleted = 0
    for garment in garments:
        cancel_jobs(garment.jobs.filter(status=JobStatus.PENDING), now=now)
        if garment.jobs.exists():
            deactivated += 1
        else:
            garment.delete()
            deleted += 1
    return deactivated, deleted


def product_content_type():
    return ContentType.objects.get_for_model(product_model())


@dataclass
class CatalogueReport:
    made: int = 0
    kept: int = 0
    skipped: int = 0


def sync_catalogue():
    """Sync every product (the ``tryon_oscar_sync`` command): after installing the
    app on an existing catalogue, or after changing ``TRYON_OSCAR``."""
    report = CatalogueReport()
    known = set(ProductGarment.objects.values_list("product_id", flat=True))
    for product in product_model().objects.exclude(structure="child").iterator():
        had = product.pk in known
        garment = sync_product(product)
        if garment is None:
            report.skipped += 1
        elif had:
            report.kept += 1
        else:
            report.made += 1
    return report
