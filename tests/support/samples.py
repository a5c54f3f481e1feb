"""The sandbox's drawn samples as the tests use them."""

from django_tryon.sandbox import samples
from tests.support.api import photo


def shopper_photo():
    """The sandbox's drawn full-body photo, as a shopper uploads it."""
    return photo(samples.encode(samples.model_photo("ava")))
