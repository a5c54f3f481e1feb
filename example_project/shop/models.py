"""The example shop's catalogue: its own Product model, linked to garments generically."""

from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from django_tryon.models import Garment


class Product(models.Model):
    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), unique=True)
    price = models.DecimalField(_("price"), max_digits=8, decimal_places=2)
    description = models.TextField(_("description"), blank=True)
    image = models.ImageField(_("image"), upload_to="products/", blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("shop:product", kwargs={"slug": self.slug})

    @property
    def garment(self):
        """The active garment shoppers try on for this product, or ``None``."""
        return Garment.objects.get_for(self)
