"""System checks of the Oscar integration: ``TRYON_OSCAR`` and the order of the apps."""

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from ...models import ClothesType
from .conf import DEFAULTS

SETTINGS_HINT = (
    'TRYON_OSCAR = {"PRODUCT_CLASSES": {"t-shirt": "upper_body"}, '
    '"CATEGORIES": {"trousers": "lower_body"}}; see docs/oscar.md.'
)


def register_checks():
    """Called from the app's ``ready()``: the checks run only where the app is installed
    (importing this module registers nothing)."""
    register(check_oscar_settings, Tags.compatibility)
    register(check_app_order, Tags.templates)


def check_oscar_settings(app_configs, **kwargs):
    value = getattr(settings, "TRYON_OSCAR", None)
    if value is None:
        return []
    if not isinstance(value, dict):
        return [
            Error(
                "The TRYON_OSCAR setting must be a dict.",
                hint=SETTINGS_HINT,
                id="tryon_oscar.E001",
            )
        ]
    errors = []
    for key in sorted(set(value) - set(DEFAULTS)):
        errors.append(
            Error(
                f"Invalid setting {key!r} in TRYON_OSCAR.",
                hint=f"Known settings: {', '.join(sorted(DEFAULTS))}. {SETTINGS_HINT}",
                id="tryon_oscar.E002",
            )
        )
    for name in DEFAULTS:
        errors += _check_mapping(name, value.get(name, {}))
    return errors


def _check_mapping(name, mapping):
    if not isinstance(mapping, dict):
        return [
            Error(
                f"TRYON_OSCAR[{name!r}] must be a dict of slugs to clothes types.",
                hint=SETTINGS_HINT,
                id="tryon_oscar.E003",
            )
        ]
    errors = []
    for slug, clothes_type in mapping.items():
        if not isinstance(slug, str) or not slug.strip("/"):
            errors.append(
                Error(
                    f"TRYON_OSCAR[{name!r}] has the key {slug!r}, which is not a slug.",
                    hint=SETTINGS_HINT,
                    id="tryon_oscar.E003",
                )
            )
        if clothes_type not in ClothesType.values:
            errors.append(
                Error(
                    f"TRYON_OSCAR[{name!r}][{slug!r}] is {clothes_type!r}, "
                    "which is not a clothes type.",
                    hint=f"Use one of: {', '.join(ClothesType.values)}.",
                    id="tryon_oscar.E004",
                )
            )
    return errors


def check_app_order(app_configs, **kwargs):
    """The product page template extends Oscar's own: it must be found first."""
    names = [config.name for config in apps.get_app_configs()]
    if "django_tryon.contrib.oscar" not in names:
        return []
    here = names.index("django_tryon.contrib.oscar")
    errors: list[CheckMessage] = []
    if "django_tryon" not in names:
        errors.append(
            Error(
                "django_tryon.contrib.oscar needs django_tryon in INSTALLED_APPS.",
                hint='Add "django_tryon" to INSTALLED_APPS, before "django_tryon.contrib.oscar".',
                id="tryon_oscar.E005",
            )
        )
    if "oscar" in names and names.index("oscar") < here:
        errors.append(
            Warning(
                "django_tryon.contrib.oscar comes after Oscar in INSTALLED_APPS: its "
                "product page template (with the try-on button) is not used.",
                hint='Move "django_tryon" and "django_tryon.contrib.oscar" above '
                '"oscar.config.Shop" in INSTALLED_APPS.',
                id="tryon_oscar.W001",
            )
        )
    return errors
