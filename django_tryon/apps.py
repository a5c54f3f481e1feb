from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TryOnConfig(AppConfig):
    name = "django_tryon"
    label = "django_tryon"
    verbose_name = _("Virtual try-on")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Registers system checks and signal receivers: files follow rows (receivers),
        # the daily quota's credit-back (quota), new jobs to Celery if enabled (queueing),
        # a guest's try-ons carried over on sign-in (api.ownership).
        from . import checks, queueing, quota, receivers  # noqa: F401
        from .api import ownership  # noqa: F401
