"""The sandbox's drawn samples as the tests use them."""

from django.core.files.base import ContentFile

from django_tryon.models import Garment
from django_tryon.sandbox import samples
from tests.support.api import photo


def shopper_photo():
    """The sandbox's drawn full-body photo, as a shopper uploads it."""
    return photo(samples.encode(samples.model_photo("ava")))


def breton_shirt():
    """A garment made from the sandbox's drawn Breton T-shirt."""
    return Garment.objects.create(
        name="Breton T-shirt",
        clothes_type="upper_body",
        image=ContentFile(samples.encode(samples.garment_image("breton-tshirt")), name="shirt.jpg"),
    )
