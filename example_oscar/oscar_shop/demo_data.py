"""The example Oscar shop's catalogue: the sandbox's drawn sample garments as Oscar
products (with a category each, a price and stock), one product that is not a
garment, and model photos for catalogue try-ons. Safe to run again: what exists is
kept, what is missing is made.

The garments are not made here: the try-on app makes them from the products, as
it would in any Oscar shop (see ``TRYON_OSCAR`` in the settings).
"""

from dataclasses import dataclass, field
from decimal import Decimal

from django.core.files.base import ContentFile
from oscar.apps.catalogue.categories import create_from_breadcrumbs
from oscar.core.loading import get_model
from PIL import Image, ImageDraw

from django_tryon.models import ModelPhoto
from django_tryon.sandbox import samples

Product = get_model("catalogue", "Product")
ProductClass = get_model("catalogue", "ProductClass")
ProductImage = get_model("catalogue", "ProductImage")
Partner = get_model("partner", "Partner")
StockRecord = get_model("partner", "StockRecord")

#: The category of each clothes type: TRYON_OSCAR maps these categories back.
CATEGORIES = {
    "upper_body": "Clothing > Tops",
    "lower_body": "Clothing > Trousers and skirts",
    "full_body": "Clothing > Dresses",
}
#: A product that is not a garment: it has no try-on button.
TOTE_BAG = ("canvas-tote", "Canvas tote bag", "A sturdy natural canvas bag.", "18.00")


@dataclass
class Report:
    created: list = field(default_factory=list)
    kept: int = 0

    def __str__(self):
        made = ", ".join(self.created) if self.created else "nothing new"
        return f"Created: {made}. Already there: {self.kept}."

    def count(self, created, label):
        if created:
            self.created.append(label)
        else:
            self.kept += 1


def load_demo_data():
    """Create the sample products and model photos that are missing."""
    report = Report()
    partner, _ = Partner.objects.get_or_create(name="Demo warehouse")
    clothing, _ = ProductClass.objects.get_or_create(
        name="Clothing", defaults={"track_stock": False}
    )
    for sample in samples.SAMPLE_GARMENTS:
        _product(
            report,
            partner,
            clothing,
            CATEGORIES[sample.clothes_type],
            (sample.slug, sample.name, sample.description, sample.price),
            lambda sample=sample: samples.garment_image(sample.slug),
        )
    accessories, _ = ProductClass.objects.get_or_create(
        name="Accessories", defaults={"track_stock": False}
    )
    _product(report, partner, accessories, "Accessories", TOTE_BAG, _tote_bag)
    for model in samples.SAMPLE_MODELS:
        _, created = ModelPhoto.objects.get_or_create(
            name=f"Sample model {model.name}",
            defaults={
                "image": lambda model=model: _jpeg(samples.model_photo(model.slug), model.slug)
            },
        )
        report.count(created, f"model photo {model.slug}")
    return report


def _product(report, partner, product_class, breadcrumbs, details, draw):
    slug, title, description, price = details
    product = Product.objects.filter(slug=slug).first()
    report.count(product is None, f"product {slug}")
    if product is not None:
        return product
    # Saved in this order, each on its own: the try-on app makes the garment as soon
    # as the product has a category and a picture, as after a dashboard save.
    product = Product.objects.create(
        slug=slug, title=title, description=description, product_class=product_class
    )
    StockRecord.objects.create(
        product=product,
        partner=partner,
        partner_sku=slug,
        price=Decimal(price),
        num_in_stock=100,
    )
    product.categories.add(create_from_breadcrumbs(breadcrumbs))
    ProductImage.objects.create(product=product, original=_jpeg(draw(), slug), display_order=0)
    return product


def _jpeg(image, name):
    return ContentFile(samples.encode(image), name=f"{name}.jpg")


def _tote_bag():
    """A flat drawing of a tote bag: a product picture that is not a garment."""
    image = Image.new("RGB", (800, 800), (236, 232, 224))
    draw = ImageDraw.Draw(image)
    draw.rectangle((200, 300, 600, 700), fill=(214, 196, 160))
    draw.arc((290, 150, 510, 420), 180, 360, fill=(150, 120, 80), width=24)
    return image
