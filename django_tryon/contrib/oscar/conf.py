"""The ``TRYON_OSCAR`` setting: which Oscar products are garments, and of which type.

Read on every access, like ``TRYON`` (see :mod:`django_tryon.conf`), so
``override_settings`` takes effect at once. It is a setting of its own rather
than keys of ``TRYON``: the core knows nothing of Oscar, and refuses keys it
does not know.

``PRODUCT_CLASSES`` maps a product class's slug to a clothes type;
``CATEGORIES`` maps a category's slug (every category of that slug) or its full
slug (``"women/dresses"``: that one only) to a clothes type, and covers the
category's subcategories too. A product's categories win over its class, the
deepest mapped category first; between equally deep ones, the first listed in
the setting wins.
"""

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "PRODUCT_CLASSES": {},
    "CATEGORIES": {},
}


class OscarSettings:
    PRODUCT_CLASSES: dict[str, str]
    CATEGORIES: dict[str, str]

    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, "TRYON_OSCAR", None) or {}
        # Shape errors are reported by the system checks (tryon_oscar.E001-E003);
        # here an unusable value reads as "nothing mapped".
        return value if isinstance(value, dict) else {}

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Invalid TRYON_OSCAR setting: {name!r}")
        value = self.user_settings().get(name, DEFAULTS[name])
        return value if isinstance(value, dict) else {}


oscar_settings = OscarSettings()
