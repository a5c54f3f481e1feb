from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TryOnConfig(AppConfig):
    name = "django_tryon"
    label = "django_tryon"
    verbose_name = _("Virtual try-on")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks, receivers  # noqa: F401  (registers checks and signal receivers)
        from . import quota  # noqa: F401  (the daily quota's credit-back receiver)
