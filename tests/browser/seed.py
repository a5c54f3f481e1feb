"""Fill the browser tests' shop: a few products, each with a garment drawn by the sandbox.

Run as ``python -m tests.browser.seed`` with the browser settings; prints the
product ids as JSON, in the order of :data:`GARMENTS`.
"""

import json

import django

GARMENTS = ("breton-tshirt", "gingham-shirt", "straight-jeans")


def seed():
    from django.core.files.base import ContentFile

    from django_tryon.models import Garment
    from django_tryon.sandbox import samples
    from tests.testapp.models import Product

    sample_by_slug = {sample.slug: sample for sample in samples.SAMPLE_GARMENTS}
    ids = []
    for slug in GARMENTS:
        sample = sample_by_slug[slug]
        product = Product.objects.create(name=sample.name)
        image = samples.encode(samples.garment_image(slug))
        garment = Garment(name=sample.name, clothes_type=sample.clothes_type, product=product)
        garment.image.save(f"{slug}.jpg", ContentFile(image), save=False)
        garment.save()
        ids.append(product.pk)
    # A product without a garment: its page shows no button.
    ids.append(Product.objects.create(name="Gift card").pk)
    return ids


if __name__ == "__main__":
    django.setup()
    print(json.dumps(seed()))
