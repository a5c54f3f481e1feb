"""Where files go: the storage aliases and the random names files get.

The ``storage=`` arguments of the models are callables, so changing
``UPLOAD_STORAGE`` or ``RESULT_STORAGE`` needs no migration.
"""

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.db.models import Model

from .conf import tryon_settings

if TYPE_CHECKING:
    from .models import TryOnJob

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


def upload_storage() -> Storage:
    return storages[tryon_settings.UPLOAD_STORAGE]


def result_storage() -> Storage:
    return storages[tryon_settings.RESULT_STORAGE]


def _random_name(folder: str, filename: str) -> str:
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"tryon/{folder}/{secrets.token_urlsafe(24)}.{extension}"


def person_image_name(instance: Model | None, filename: str) -> str:
    """A random name: shopper photos must not be guessable or tell whose they are."""
    return _random_name("photos", filename)


def garment_image_name(instance: Model | None, filename: str) -> str:
    return _random_name("garments", filename)


def model_photo_name(instance: Model | None, filename: str) -> str:
    return _random_name("models", filename)


def result_image_name(job: "TryOnJob", extension: str) -> str:
    """The one name a job's result can have: unguessable, but the same on every try.

    A worker that dies after storing the result and before recording it leaves
    a file that the next worker overwrites instead of orphaning.
    """
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"tryon-result:{job.pk}".encode(), hashlib.sha256
    ).hexdigest()[:40]
    return f"tryon/results/{digest}.{extension}"
