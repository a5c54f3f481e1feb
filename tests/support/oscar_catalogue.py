"""Oscar catalogue rows for the Oscar integration's tests (Oscar is imported when used)."""

import io

from django.core.files.base import ContentFile
from PIL import Image


def jpeg(size=(600, 800), color=(30, 60, 200)):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    return ContentFile(buffer.getvalue(), name="product.jpg")


class Catalogue:
    """Oscar catalogue rows made as a shop's staff would, each change committed (so the
    receivers' after-commit syncs run)."""

    def __init__(self, capture):
        from oscar.core.loading import get_model

        self.capture = capture
        self.Product = get_model("catalogue", "Product")
        self.ProductClass = get_model("catalogue", "ProductClass")
        self.ProductImage = get_model("catalogue", "ProductImage")

    def committed(self):
        return self.capture(execute=True)

    def category(self, breadcrumbs):
        from oscar.apps.catalogue.categories import create_from_breadcrumbs

        with self.committed():
            return create_from_breadcrumbs(breadcrumbs)

    def product_class(self, name):
        with self.committed():
            return self.ProductClass.objects.get_or_create(name=name)[0]

    def product(
        self,
        title="Breton T-shirt",
        *,
        category="Clothing > Tops",
        product_class="Clothing",
        image=True,
        **fields,
    ):
        product_class = self.product_class(product_class) if product_class else None
        categories = [self.category(category)] if category else []
        with self.committed():
            product = self.Product.objects.create(
                title=title, product_class=product_class, **fields
            )
            for each in categories:
                product.categories.add(each)
            if image:
                self.ProductImage.objects.create(product=product, original=jpeg(), display_order=0)
        return product

    def add_image(self, product, display_order=None, **image):
        with self.committed():
            if display_order is None:
                display_order = product.images.count()
            return self.ProductImage.objects.create(
                product=product, original=jpeg(**image), display_order=display_order
            )

    def save(self, instance, **fields):
        with self.committed():
            for name, value in fields.items():
                setattr(instance, name, value)
            instance.save()
        return instance

    def delete(self, instance):
        with self.committed():
            instance.delete()
