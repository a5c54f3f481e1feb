"""Keep storage in step with the database: a deleted row leaves no file behind."""

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import Garment, ModelPhoto, TryOnJob


def _delete_after_commit(fieldfile):
    if not fieldfile:
        return
    storage, name = fieldfile.storage, fieldfile.name
    # After commit: a rolled-back delete must still find its files.
    transaction.on_commit(lambda: storage.delete(name))


@receiver(post_delete, sender=TryOnJob, dispatch_uid="tryon_job_files")
def delete_job_files(sender, instance, **kwargs):
    _delete_after_commit(instance.person_image)
    _delete_after_commit(instance.result_image)


@receiver(post_delete, sender=Garment, dispatch_uid="tryon_garment_files")
@receiver(post_delete, sender=ModelPhoto, dispatch_uid="tryon_model_photo_files")
def delete_image_file(sender, instance, **kwargs):
    _delete_after_commit(instance.image)
