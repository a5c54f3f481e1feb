"""Where files go: the storage aliases and the random names files get.

The ``storage=`` arguments of the models are callables, so changing
``UPLOAD_STORAGE`` or ``RESULT_STORAGE`` needs no migration. They return a
:class:`TryOnStorage`, which looks its alias up in ``STORAGES`` on each use,
not when Django loads the models: an unknown alias is then the system check
``E002`` naming the ``TRYON`` key, not an error that stops every command
before the checks run.
"""

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.db.models import Model

from .conf import tryon_settings

if TYPE_CHECKING:
    from .models import TryOnJob

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


class TryOnStorage(Storage):
    """The storage named by the ``TRYON`` key ``key``, found again on each use.

    Every public method of :class:`~django.core.files.storage.Storage`, and any
    other attribute (a backend's own, such as S3's ``bucket``), goes to
    ``storages[TRYON[key]]``, so ``override_settings`` of the key or of
    ``STORAGES`` applies to the model fields too.
    """

    def __init__(self, key: str) -> None:
        self.key = key

    @property
    def alias(self) -> str:
        return getattr(tryon_settings, self.key)

    @property
    def target(self) -> Storage:
        return storages[self.alias]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "key":
            raise AttributeError(name)
        return getattr(self.target, name)

    def __repr__(self) -> str:
        return f"<TryOnStorage TRYON[{self.key!r}]>"


def _delegated(name: str) -> Any:
    def method(self: TryOnStorage, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.target, name)(*args, **kwargs)

    method.__name__ = name
    return method


for _name in (
    "open",
    "save",
    "get_valid_name",
    "get_alternative_name",
    "get_available_name",
    "generate_filename",
    "path",
    "delete",
    "exists",
    "listdir",
    "size",
    "url",
    "get_accessed_time",
    "get_created_time",
    "get_modified_time",
):
    setattr(TryOnStorage, _name, _delegated(_name))


def upload_storage() -> Storage:
    return TryOnStorage("UPLOAD_STORAGE")


def result_storage() -> Storage:
    return TryOnStorage("RESULT_STORAGE")


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
