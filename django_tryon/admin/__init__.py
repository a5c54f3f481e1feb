"""The try-on admin: garments, model photos, jobs and the status overview.

Importing the package registers the model admins on Django's default site.
"""

from .garments import GarmentAdmin
from .jobs import TryOnJobAdmin
from .photos import ModelPhotoAdmin

__all__ = ["GarmentAdmin", "ModelPhotoAdmin", "TryOnJobAdmin"]
