"""System checks: a misconfigured ``TRYON`` is reported at start-up, with a hint."""

import importlib.util
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from .conf import DEFAULTS, tryon_settings

LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}

POSITIVE_NUMBERS = (
    "CONCURRENCY",
    "BATCH_SIZE",
    "LEASE_SECONDS",
    "MAX_ATTEMPTS",
    "CONNECT_TIMEOUT",
    "READ_TIMEOUT",
    "JOB_EXPIRY",
    "RESULT_MAX_BYTES",
    "MAX_UPLOAD_BYTES",
    "MAX_IMAGE_PIXELS",
)
NON_NEGATIVE_NUMBERS = (
    "POLL_INTERVAL",
    "IDLE_INTERVAL",
    "CREDITS_WARNING_THRESHOLD",
    "RETRY_BACKOFF",
    "RETRY_BACKOFF_MAX",
)


@register(Tags.compatibility)
def check_tryon_settings(app_configs, **kwargs):
    try:
        tryon_settings.user_settings()
    except ImproperlyConfigured as err:
        return [
            Error(
                str(err),
                hint="Remove or correct the key; see docs/settings.md.",
                id="django_tryon.E005",
            )
        ]
    errors = []
    errors += _check_backend()
    errors += _check_base_url()
    errors += _check_storages()
    errors += _check_numbers()
    errors += _check_celery()
    return errors


def _check_celery():
    if not tryon_settings.CELERY_ENABLED or importlib.util.find_spec("celery") is not None:
        return []
    return [
        Error(
            "TRYON['CELERY_ENABLED'] is True but Celery is not installed.",
            hint='Install it with: pip install "django-tryon[celery]", '
            "or set TRYON['CELERY_ENABLED'] to False and run manage.py tryon_poll.",
            id="django_tryon.E010",
        )
    ]


def _check_backend():
    try:
        backend_class = tryon_settings.import_path("BACKEND")
    except ImproperlyConfigured as err:
        return [
            Error(
                str(err),
                hint=f"Set TRYON['BACKEND'] to a dotted path such as {DEFAULTS['BACKEND']!r}.",
                id="django_tryon.E003",
            )
        ]
    if getattr(backend_class, "requires_api_key", False) and not tryon_settings.API_KEY:
        return [
            Error(
                f"The try-on backend {tryon_settings.BACKEND!r} needs an API key.",
                hint="Set TRYON['API_KEY'], for example from an environment variable.",
                id="django_tryon.E001",
            )
        ]
    return []


def _check_base_url():
    url = tryon_settings.BASE_URL
    parts = urlsplit(url) if isinstance(url, str) else None
    if not parts or parts.scheme not in ("http", "https") or not parts.hostname:
        return [
            Error(
                f"TRYON['BASE_URL'] is {url!r}, which is not an http(s) URL.",
                hint=f"Set it to the provider's address, such as {DEFAULTS['BASE_URL']!r}.",
                id="django_tryon.E004",
            )
        ]
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        return [
            Warning(
                f"TRYON['BASE_URL'] ({url}) is plain http: the API key and "
                "shoppers' photos would cross the network unencrypted.",
                hint="Use https, except for a sandbox on loopback.",
                id="django_tryon.W001",
            )
        ]
    return []


def _check_storages():
    configured = getattr(settings, "STORAGES", {}) or {}
    errors = []
    for key in ("UPLOAD_STORAGE", "RESULT_STORAGE"):
        alias = getattr(tryon_settings, key)
        if alias not in configured:
            errors.append(
                Error(
                    f"TRYON[{key!r}] is {alias!r}, which is not an alias in STORAGES.",
                    hint=f"Use one of: {', '.join(sorted(configured)) or '(none)'}, "
                    "or add it to STORAGES.",
                    id="django_tryon.E002",
                )
            )
    return errors


def _check_numbers():
    errors = []
    for key in POSITIVE_NUMBERS + NON_NEGATIVE_NUMBERS:
        value = getattr(tryon_settings, key)
        lowest_ok = 0 if key in NON_NEGATIVE_NUMBERS else 1e-9
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < lowest_ok:
            wanted = "a number >= 0" if key in NON_NEGATIVE_NUMBERS else "a number > 0"
            errors.append(
                Error(
                    f"TRYON[{key!r}] is {value!r}; it must be {wanted}.",
                    hint=f"The default is {DEFAULTS[key]!r}.",
                    id="django_tryon.E006",
                )
            )
    hosts = tryon_settings.RESULT_HOSTS
    if isinstance(hosts, str) or not all(isinstance(h, str) for h in hosts):
        errors.append(
            Error(
                "TRYON['RESULT_HOSTS'] must be a list of host names.",
                hint="For example ['results.example.com'].",
                id="django_tryon.E007",
            )
        )
    return errors
