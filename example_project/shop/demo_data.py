"""The demo's catalogue, made from the sandbox's drawn samples: products, their
garments, and model photos for catalogue try-ons, two of them offered to shoppers
with no photo at hand. Safe to run again: what exists is kept, what is missing is
made."""

from dataclasses import dataclass, field

from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.db import transaction

from django_tryon.models import Garment, ModelPhoto
from django_tryon.sandbox import samples

from .models import Product

#: The sample models shoppers may try garments on (the others serve the catalogue only).
OFFERED_MODELS = ("ava", "ben")


@dataclass
class Report:
    created: list = field(default_factory=list)
    kept: int = 0

    def __str__(self):
        made = ", ".join(self.created) if self.created else "nothing new"
        return f"Created: {made}. Already there: {self.kept}."


def _jpeg(image, name):
    return ContentFile(samples.encode(image), name=name)


@transaction.atomic
def load_demo_data():
    """Create the sample products, garments and model photos that are missing."""
    report = Report()
    product_type = ContentType.objects.get_for_model(Product)
    for sample in samples.SAMPLE_GARMENTS:
        product, created = Product.objects.get_or_create(
            slug=sample.slug,
            defaults={
                "name": sample.name,
                "price": sample.price,
                "description": sample.description,
                "image": lambda sample=sample: _jpeg(
                    samples.garment_image(sample.slug), f"{sample.slug}.jpg"
                ),
            },
        )
        _count(report, created, f"product {sample.slug}")
        _, created = Garment.objects.get_or_create(
            content_type=product_type,
            object_id=str(product.pk),
            defaults={
                "name": sample.name,
                "clothes_type": sample.clothes_type,
                "image": lambda sample=sample: _jpeg(
                    samples.garment_image(sample.slug), f"{sample.slug}.jpg"
                ),
            },
        )
        _count(report, created, f"garment {sample.slug}")
    for model in samples.SAMPLE_MODELS:
        _, created = ModelPhoto.objects.get_or_create(
            name=f"Sample model {model.name}",
            defaults={
                "image": lambda model=model: _jpeg(
                    samples.model_photo(model.slug), f"{model.slug}.jpg"
                ),
                "offered_to_shoppers": model.slug in OFFERED_MODELS,
            },
        )
        _count(report, created, f"model photo {model.slug}")
    return report


def _count(report, created, label):
    if created:
        report.created.append(label)
    else:
        report.kept += 1
