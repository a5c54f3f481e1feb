"""The ``TRYON`` setting: its defaults, and the one object that reads it.

Every key lives in :data:`DEFAULTS` with its documented default. The settings
are read on every attribute access (not copied at import time), so
``override_settings(TRYON={...})`` in tests takes effect at once.
"""

import difflib
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

MB = 1024 * 1024

DEFAULTS: dict[str, Any] = {
    # Provider
    "BACKEND": "django_tryon.backends.ailab.AILabBackend",
    "API_KEY": "",
    # None: the backend's own address (each backend class knows its provider's).
    "BASE_URL": None,
    # The backend's own options; each backend checks its keys (see docs/providers.md).
    "OPTIONS": {},
    "CONNECT_TIMEOUT": 5.0,
    "READ_TIMEOUT": 30.0,
    # Webhooks: the shop's public origin ("https://shop.example.com"). When set and the
    # backend can push, every submit asks the provider to call a per-job URL under
    # tryon/ when the task ends (see django_tryon.webhooks).
    "WEBHOOK_BASE_URL": "",
    # Seconds between the queries that still end a job whose webhook never came.
    "WEBHOOK_FALLBACK_INTERVAL": 60.0,
    # Failover: further providers, in order, each {BACKEND, API_KEY, BASE_URL, OPTIONS};
    # new jobs go to the first one that is up (see docs/providers.md, "Failover").
    "FALLBACK_BACKENDS": [],
    # Seconds a provider may keep failing transiently (no call answered) before new
    # jobs go to the next one.
    "FAILOVER_AFTER": 60.0,
    # Seconds between two checks (its credits query) of a provider new jobs left.
    "FAILOVER_PROBE_INTERVAL": 60.0,
    # Worker
    "POLL_INTERVAL": 5.0,
    # Longest idle sleep of `tryon_poll`: how soon a new job is picked up when nothing
    # wakes it (see WAKE_ON_COMMIT).
    "IDLE_INTERVAL": 1.0,
    # On PostgreSQL, a new job wakes `tryon_poll` when its row is committed
    # (NOTIFY / LISTEN) instead of waiting for the idle sleep.
    "WAKE_ON_COMMIT": True,
    "CONCURRENCY": 3,
    "BATCH_SIZE": 100,
    "LEASE_SECONDS": 300,
    "MAX_ATTEMPTS": 6,
    "RETRY_BACKOFF": 2.0,
    "RETRY_BACKOFF_MAX": 300.0,
    "JOB_EXPIRY": 24 * 60 * 60,
    "RESUBMIT_INTERRUPTED": False,
    # True: every new job is handed to Celery (django_tryon.tasks) when its row is
    # committed, instead of waiting for `tryon_poll` (needs django-tryon[celery]).
    "CELERY_ENABLED": False,
    # Storage and results
    "RESULT_STORAGE": "default",
    "UPLOAD_STORAGE": "default",
    "RESULT_HOSTS": [],
    "RESULT_MAX_BYTES": 20 * MB,
    # Longest a whole result download may take, in seconds, however steadily the
    # bytes arrive (READ_TIMEOUT bounds each wait for the next bytes only).
    "RESULT_DOWNLOAD_TIMEOUT": 30.0,
    # Intake
    "MAX_UPLOAD_BYTES": 20 * MB,
    "MAX_IMAGE_PIXELS": 50_000_000,
    "MIN_IMAGE_SIDE": 256,
    "PROVIDER_MAX_BYTES": 3 * MB,
    "PROVIDER_MAX_SIDE": 4095,
    # Longest side, in px, intake scales photos down to (capped by PROVIDER_MAX_SIDE):
    # plenty for a try-on, and 12 MP camera photos (4000-4096 px) decode at half scale.
    "INTAKE_MAX_SIDE": 2048,
    # The most memory one photo's intake may hold (its pixels x the bytes per pixel of
    # the mode it decodes to, its decoder's buffers, the copies on the way to
    # INTAKE_MAX_SIDE), reckoned before decoding: a 12 MP HEIC or PNG fits.
    "INTAKE_MAX_DECODED_BYTES": 128 * MB,
    # Decodes larger than a photo at INTAKE_MAX_SIDE that may run at once per process.
    "INTAKE_MAX_PARALLEL_DECODES": 2,
    # Shoppers
    "REQUIRE_CONSENT": True,
    "PRIVACY_URL": "",
    "THROTTLE_RATE": "10/min",
    "DAILY_QUOTA_USER": 20,
    "DAILY_QUOTA_GUEST": 5,
    # Guests' try-ons per client address (all its sessions), and of all guests together.
    "DAILY_QUOTA_ADDRESS": 20,
    "DAILY_QUOTA_ALL_GUESTS": 1000,
    "REUSE_RESULTS": True,
    "PERSON_IMAGE_TTL": 24 * 60 * 60,
    "RESULT_TTL": 30 * 24 * 60 * 60,
    # Admin: the status overview warns when the provider reports fewer credits than this.
    "CREDITS_WARNING_THRESHOLD": 100,
}

# Keys whose value is a dotted path to import.
IMPORT_STRINGS = {"BACKEND"}


class TryOnSettings:
    """Attribute access to ``settings.TRYON`` merged over :data:`DEFAULTS`.

    The annotations below type each key for type checkers (and say what a shop may
    set); they hold no value, so every read still goes through ``__getattr__``.
    """

    # Provider
    BACKEND: str
    API_KEY: str
    BASE_URL: str | None
    OPTIONS: dict[str, Any]
    CONNECT_TIMEOUT: float
    READ_TIMEOUT: float
    WEBHOOK_BASE_URL: str
    WEBHOOK_FALLBACK_INTERVAL: float
    FALLBACK_BACKENDS: list[dict[str, Any]]
    FAILOVER_AFTER: float
    FAILOVER_PROBE_INTERVAL: float
    # Worker
    POLL_INTERVAL: float
    IDLE_INTERVAL: float
    WAKE_ON_COMMIT: bool
    CONCURRENCY: int
    BATCH_SIZE: int
    LEASE_SECONDS: float
    MAX_ATTEMPTS: int
    RETRY_BACKOFF: float
    RETRY_BACKOFF_MAX: float
    JOB_EXPIRY: float
    RESUBMIT_INTERRUPTED: bool
    CELERY_ENABLED: bool
    # Storage and results
    RESULT_STORAGE: str
    UPLOAD_STORAGE: str
    RESULT_HOSTS: list[str]
    RESULT_MAX_BYTES: int
    RESULT_DOWNLOAD_TIMEOUT: float
    # Intake
    MAX_UPLOAD_BYTES: int
    MAX_IMAGE_PIXELS: int
    MIN_IMAGE_SIDE: int
    PROVIDER_MAX_BYTES: int
    PROVIDER_MAX_SIDE: int
    INTAKE_MAX_SIDE: int
    INTAKE_MAX_DECODED_BYTES: int
    INTAKE_MAX_PARALLEL_DECODES: int
    # Shoppers (None: no throttle, no quota, kept forever)
    REQUIRE_CONSENT: bool
    PRIVACY_URL: str
    THROTTLE_RATE: str | None
    DAILY_QUOTA_USER: int | None
    DAILY_QUOTA_GUEST: int | None
    DAILY_QUOTA_ADDRESS: int | None
    DAILY_QUOTA_ALL_GUESTS: int | None
    REUSE_RESULTS: bool
    PERSON_IMAGE_TTL: float | None
    RESULT_TTL: float | None
    # Admin
    CREDITS_WARNING_THRESHOLD: float

    def user_settings(self) -> dict[str, Any]:
        """The shop's ``TRYON`` dict, keys this version does not know left out.

        Reading never raises: a wrong ``TRYON`` (not a dict, or a key that does
        not exist) is the system check ``E005``, which names it and stops
        ``runserver``, ``migrate`` and the worker before they start, instead of
        a traceback from whatever read a setting first.
        """
        value = getattr(settings, "TRYON", None) or {}
        if not isinstance(value, dict):
            return {}
        return {key: item for key, item in value.items() if key in DEFAULTS}

    def problems(self) -> list[str]:
        """What is wrong with the shape of ``settings.TRYON``, in words (empty: nothing)."""
        value = getattr(settings, "TRYON", None) or {}
        if not isinstance(value, dict):
            return [f"The TRYON setting must be a dict, not {type(value).__name__}."]
        return [
            f"Invalid setting {key!r} in TRYON.{_closest(key)}"
            for key in sorted(value, key=str)
            if key not in DEFAULTS
        ]

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Invalid TRYON setting: {name!r}")
        return self.user_settings().get(name, DEFAULTS[name])

    def import_path(self, name: str) -> Any:
        """Import the object named by the dotted-path setting ``name``."""
        path = getattr(self, name)
        try:
            return import_string(path)
        except ImportError as err:
            raise ImproperlyConfigured(
                f"TRYON[{name!r}] is {path!r}, which cannot be imported: {err}"
            ) from err


def _closest(key: object) -> str:
    """``" Did you mean 'X'?"`` for a key close to a known one, else ``""``."""
    matches = difflib.get_close_matches(str(key), DEFAULTS, n=1)
    return f" Did you mean {matches[0]!r}?" if matches else ""


tryon_settings = TryOnSettings()
