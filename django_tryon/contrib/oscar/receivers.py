"""Garments kept in step with Oscar's catalogue, through signals on its models.

Every change to a product, its images or its categories syncs the product's
garment once the transaction commits: the dashboard saves a product and its
images in one request, and the garment is made from what was committed (a
rolled-back save changes nothing). A sync that fails is logged and leaves the
shop's own save alone. A deleted product's garments are retired.
"""

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save

from ...models import Garment
from .catalogue import product_category_model, product_image_model, product_model
from .sync import retire_garments, sync_product_id


def connect():
    """Connect the receivers to the shop's catalogue models (called from ``ready()``)."""
    product = product_model()
    post_save.connect(product_saved, sender=product, dispatch_uid="tryon_oscar_product_saved")
    post_delete.connect(product_deleted, sender=product, dispatch_uid="tryon_oscar_product_deleted")
    for model, uid in (
        (product_image_model(), "tryon_oscar_image"),
        (product_category_model(), "tryon_oscar_category"),
    ):
        post_save.connect(product_part_changed, sender=model, dispatch_uid=f"{uid}_saved")
        post_delete.connect(product_part_changed, sender=model, dispatch_uid=f"{uid}_deleted")
    # A garment staff link to a product, or unlink, replaces or gives back the one
    # made from the product's picture.
    pre_save.connect(garment_saving, sender=Garment, dispatch_uid="tryon_oscar_garment_saving")
    post_save.connect(garment_changed, sender=Garment, dispatch_uid="tryon_oscar_garment_saved")
    pre_delete.connect(
        garment_deleting, sender=Garment, dispatch_uid="tryon_oscar_garment_deleting"
    )
    post_delete.connect(garment_changed, sender=Garment, dispatch_uid="tryon_oscar_garment_deleted")
    # categories.add() and .set() write the through rows without saving them one by one.
    m2m_changed.connect(
        categories_changed,
        sender=product.categories.through,
        dispatch_uid="tryon_oscar_categories_changed",
    )


def sync_after_commit(product_id):
    transaction.on_commit(lambda: sync_product_id(product_id), robust=True)


def product_saved(sender, instance, raw=False, **kwargs):
    if not raw:  # fixtures load rows as they are
        sync_after_commit(instance.pk)


def product_part_changed(sender, instance, raw=False, **kwargs):
    if not raw:
        sync_after_commit(instance.product_id)


def garment_saving(sender, instance, raw=False, **kwargs):
    # The product a garment was linked to before this save: it may get its own back.
    if not raw and instance.pk is not None:
        instance._tryon_previous_link = (
            Garment.objects.filter(pk=instance.pk)
            .values_list("content_type_id", "object_id")
            .first()
        )


def garment_deleting(sender, instance, **kwargs):
    # Known before the delete takes the ProductGarment row along.
    instance._tryon_made_from_product = _made_from_product(instance)


def garment_changed(sender, instance, raw=False, **kwargs):
    """A garment staff linked to a product (or unlinked, or deleted): the product's own
    garment steps aside, or comes back."""
    if raw:
        return
    made = getattr(instance, "_tryon_made_from_product", None)
    if made is None:
        made = _made_from_product(instance)
    if made:
        return
    product_type = ContentType.objects.get_for_model(product_model()).pk
    links = {(instance.content_type_id, instance.object_id)}
    links.add(getattr(instance, "_tryon_previous_link", None) or (None, ""))
    for content_type_id, object_id in links:
        if content_type_id == product_type:
            sync_after_commit(object_id)


def _made_from_product(garment):
    try:
        return garment.oscar_source is not None
    except ObjectDoesNotExist:
        return False


def categories_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if action not in ("post_add", "post_remove", "post_clear", "pre_clear"):
        return
    if not reverse:  # product.categories.add(...)
        sync_after_commit(instance.pk)
    elif action == "pre_clear":  # category.product_set.clear(): products known before
        products = product_model().objects.filter(categories=instance)
        for product_id in products.values_list("pk", flat=True):
            sync_after_commit(product_id)
    elif pk_set:  # category.product_set.add(...)
        for product_id in pk_set:
            sync_after_commit(product_id)


def product_deleted(sender, instance, **kwargs):
    content_type_id = ContentType.objects.get_for_model(sender).pk
    product_id = instance.pk
    transaction.on_commit(lambda: retire_garments(content_type_id, product_id), robust=True)
