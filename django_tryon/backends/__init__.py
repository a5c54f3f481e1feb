"""Try-on providers. :func:`get_backend` builds the one the settings name;
:func:`get_backends` builds it and its fallbacks (``TRYON["FALLBACK_BACKENDS"]``)."""

import contextlib
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ..conf import tryon_settings

#: The keys of one entry of ``TRYON["FALLBACK_BACKENDS"]``.
FALLBACK_KEYS = ("BACKEND", "API_KEY", "BASE_URL", "OPTIONS")


def get_backend(**overrides):
    """An instance of ``TRYON['BACKEND']``, configured from ``TRYON``.

    ``overrides`` (lowercase setting names: ``api_key``, ``base_url``,
    ``options``, ``connect_timeout``, ``read_timeout``) replace the settings of
    the same name; see :func:`~django_tryon.backends.base.backend_setting`.
    """
    backend_class = tryon_settings.import_path("BACKEND")
    return backend_class(**overrides)


def fallback_class(entry: Any, position: int) -> Any:
    """The backend class an entry of ``FALLBACK_BACKENDS`` names (``position`` from 1)."""
    where = f"TRYON['FALLBACK_BACKENDS'][{position - 1}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("BACKEND"), str):
        raise ImproperlyConfigured(f"{where} must be a dict with a 'BACKEND' dotted path.")
    try:
        return import_string(entry["BACKEND"])
    except ImportError as err:
        raise ImproperlyConfigured(
            f"{where}['BACKEND'] is {entry['BACKEND']!r}, which cannot be imported: {err}"
        ) from err


def get_fallback_backends(**overrides):
    """An instance of each entry of ``TRYON['FALLBACK_BACKENDS']``, in order.

    Each entry's ``API_KEY``, ``BASE_URL`` and ``OPTIONS`` are its own: a key
    left out is the backend's own default, never the primary's value (the
    primary's key is not sent to another provider). The timeouts are the
    ``TRYON`` ones; ``overrides`` replace them as for :func:`get_backend`.
    """
    return [
        _fallback(entry, position, overrides)
        for position, entry in enumerate(tryon_settings.FALLBACK_BACKENDS or (), start=1)
    ]


def _fallback(entry: dict, position: int, overrides: dict):
    """The backend of one entry of ``FALLBACK_BACKENDS``, with its own settings."""
    own = {key.lower(): entry.get(key) for key in FALLBACK_KEYS if key != "BACKEND"}
    return fallback_class(entry, position)(**{**own, **overrides})


def get_backends(**overrides):
    """The primary backend, then its fallbacks: the order new jobs try them in."""
    return [get_backend(**overrides), *get_fallback_backends(**overrides)]


def backend_named(provider: str, **overrides):
    """The configured backend (``BACKEND`` or one of ``FALLBACK_BACKENDS``) whose
    ``provider_name`` is ``provider``, built alone; ``None`` if none is (or it
    cannot be imported: the system checks say why).

    For what must reach the provider that made a job (``TryOnJob.provider``),
    primary or fallback, without building the others.
    """
    with contextlib.suppress(ImproperlyConfigured):
        if tryon_settings.import_path("BACKEND").provider_name == provider:
            return get_backend(**overrides)
    entries = tryon_settings.FALLBACK_BACKENDS
    for position, entry in enumerate(entries if isinstance(entries, (list, tuple)) else (), 1):
        with contextlib.suppress(ImproperlyConfigured):
            if fallback_class(entry, position).provider_name == provider:
                return _fallback(entry, position, overrides)
    return None


def configured_classes() -> list[Any]:
    """The classes of ``BACKEND`` and of each ``FALLBACK_BACKENDS`` entry, in order,
    without building any; those that cannot be imported are left out (the system
    checks name them: E003, E050)."""
    classes = []
    with contextlib.suppress(ImproperlyConfigured):
        classes.append(tryon_settings.import_path("BACKEND"))
    entries = tryon_settings.FALLBACK_BACKENDS
    for position, entry in enumerate(entries if isinstance(entries, (list, tuple)) else (), 1):
        with contextlib.suppress(ImproperlyConfigured):
            classes.append(fallback_class(entry, position))
    return classes
