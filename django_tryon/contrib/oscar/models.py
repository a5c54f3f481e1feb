"""What the Oscar integration remembers: which garment was made from which product,
and which gallery image holds which published try-on picture.

Oscar's models are named by their ``app_label.Model`` (``catalogue.Product``),
so a shop's forked catalogue app, which keeps the label, is followed.
"""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ...models import Garment, TryOnJob


class ProductGarment(models.Model):
    """A garment made from an Oscar product's picture, and kept in step with it.

    Garments staff make in the admin and link to a product themselves (say,
    with a flat-lay photo instead of the product's own) have no such row:
    their picture and type are theirs, and only a product's deletion reaches
    them.
    """

    garment = models.OneToOneField(
        Garment,
        on_delete=models.CASCADE,
        related_name="oscar_source",
        verbose_name=_("garment"),
    )
    # The garment outlives its product while its jobs do (see sync.retire_garments):
    # this row goes with the product.
    product = models.OneToOneField(
        "catalogue.Product",
        on_delete=models.CASCADE,
        related_name="tryon_garment_source",
        verbose_name=_("product"),
    )
    source_image = models.ForeignKey(
        "catalogue.ProductImage",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("source image"),
    )
    # The file the garment's picture was made from: a replaced file (same row,
    # new upload) is noticed too.
    source_name = models.CharField(_("source file"), max_length=255, blank=True, default="")
    picture_ok = models.BooleanField(
        _("picture usable"),
        default=False,
        help_text=_("Whether the photo intake accepted the source image as a garment picture."),
    )
    eligible = models.BooleanField(
        _("can be tried on"),
        default=False,
        help_text=_(
            "Whether the product has a usable picture and a clothes type, and is public, "
            "when last checked."
        ),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("garment from a product")
        verbose_name_plural = _("garments from products")

    def __str__(self) -> str:
        return str(self.garment)


class PublishedImage(models.Model):
    """An Oscar ``ProductImage`` that holds a copy of a published try-on picture."""

    product_image = models.OneToOneField(
        "catalogue.ProductImage",
        on_delete=models.CASCADE,
        related_name="tryon_publication",
        verbose_name=_("product image"),
    )
    # A published picture is the gallery's copy: it stays if the job is deleted.
    job = models.OneToOneField(
        TryOnJob,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="oscar_publication",
        verbose_name=_("try-on job"),
    )
    # The copy's file, deleted with the image (Oscar itself leaves image files behind).
    image_name = models.CharField(_("file"), max_length=255, blank=True, default="")
    published_at = models.DateTimeField(_("published at"), default=timezone.now)

    class Meta:
        verbose_name = _("published try-on picture")
        verbose_name_plural = _("published try-on pictures")

    def __str__(self) -> str:
        return str(self.product_image)
