from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TryOnOscarConfig(AppConfig):
    name = "django_tryon.contrib.oscar"
    # Not "oscar": that label is Oscar's own app's.
    label = "tryon_oscar"
    verbose_name = _("Virtual try-on for Oscar")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # System checks; receivers on Oscar's catalogue models (found with Oscar's
        # get_model, so a shop's forked catalogue is followed) and on publishing.
        from . import checks, gallery, receivers

        checks.register_checks()
        receivers.connect()
        gallery.connect()
