"""Replacing an image in the admin leaves no old file behind on storage."""

from typing import TYPE_CHECKING, Any

from django.db import transaction

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

    _Base = ModelAdmin[Any]
else:
    _Base = object


class ReplacedImageCleanupMixin(_Base):
    """A ``ModelAdmin`` mixin for models with an ``image`` file field.

    When a change replaces the image, the previous file is deleted once the
    transaction commits (a rolled-back save still finds it). Deleting the
    whole object is handled by the ``post_delete`` receivers.
    """

    def save_model(self, request, obj, form, change):
        previous = ""
        if change and "image" in form.changed_data:
            previous = (
                type(obj)._default_manager.filter(pk=obj.pk).values_list("image", flat=True).first()
            ) or ""
        super().save_model(request, obj, form, change)
        if previous and previous != obj.image.name:
            storage = obj.image.storage
            transaction.on_commit(lambda: storage.delete(previous))
