from django.apps import AppConfig


class OscarShopConfig(AppConfig):
    """The example Oscar shop's own app: only its demo catalogue command."""

    name = "oscar_shop"
    verbose_name = "Example Oscar shop"
