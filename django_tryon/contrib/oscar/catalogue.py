"""Oscar's catalogue models, found through Oscar's ``get_model``: a shop that forked
the catalogue app gets its own classes here, never Oscar's originals."""

from django.core.exceptions import ValidationError
from oscar.core.loading import get_model


def product_model():
    return get_model("catalogue", "Product")


def product_image_model():
    return get_model("catalogue", "ProductImage")


def product_category_model():
    return get_model("catalogue", "ProductCategory")


def product_of(garment):
    """The Oscar product ``garment`` is linked to; ``None`` if it is linked to none
    (or to another model). Raises ``LookupError`` if its product was deleted."""
    if garment.content_type_id is None:
        return None
    model = product_model()
    if garment.content_type.model_class() is not model:
        return None
    try:
        product = model.objects.filter(pk=garment.object_id).first()
    except (ValueError, ValidationError):  # an id that cannot be this model's key
        product = None
    if product is None:
        raise LookupError(garment.object_id)
    return product
