"""Settings of the example shop: a local demo, with the sandbox as the try-on provider.

Environment variables (all optional) let ``make demo`` and the tests move things:
``TRYON_DEMO_DB`` (SQLite file), ``TRYON_DEMO_MEDIA`` (uploads and results),
``TRYON_SANDBOX_PORT`` (where ``manage.py tryon_sandbox`` listens, default 8765),
``TRYON_API_KEY`` and ``TRYON_BASE_URL`` (to use the real provider instead).
"""

import os
from importlib.util import find_spec
from pathlib import Path

import django_tryon

BASE_DIR = Path(__file__).resolve().parent.parent

# A local demo only: never deploy these settings.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-shop-local-demo-only")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_tryon",
    "shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TRYON_DEMO_DB", str(BASE_DIR / "db.sqlite3")),
        # The worker and the web server write at once: wait for the lock, do not fail.
        # IMMEDIATE: a transaction takes the write lock when it begins, so one that
        # reads before it writes waits its turn instead of failing "database is locked".
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
MEDIA_URL = "media/"
MEDIA_ROOT = os.environ.get("TRYON_DEMO_MEDIA", str(BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# The OpenAPI schema of the shopper API, at /tryon/api/schema/, when the `schema` extra
# (drf-spectacular) is installed; `docs/openapi.yaml` is generated from these settings.
if find_spec("drf_spectacular"):
    INSTALLED_APPS.append("drf_spectacular")
    REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
    SPECTACULAR_SETTINGS = {
        "TITLE": "django-tryon shopper API",
        "DESCRIPTION": (
            "The endpoints a shop's product pages use for virtual try-on, under the prefix "
            "the app is included at (here `tryon/`). Guests are identified by their session "
            "cookie; POST and DELETE need the CSRF token in `X-CSRFToken`. Every error is "
            '`{"error": {"code": ..., "message": ...}}`. See docs/api.md.'
        ),
        "VERSION": django_tryon.__version__,
        "LICENSE": {"name": "MIT"},
        "SERVE_INCLUDE_SCHEMA": False,
        # A request component of its own, where the photo is a binary file.
        "COMPONENT_SPLIT_REQUEST": True,
    }

SANDBOX_PORT = int(os.environ.get("TRYON_SANDBOX_PORT", "8765"))

# The provider: "ailab" (AILabAPI, the default) or "fashn" (FASHN); `make demo` starts
# the sandbox speaking the same one (DEMO_PROVIDER=fashn make demo).
DEMO_PROVIDER = os.environ.get("DEMO_PROVIDER", "ailab")
DEMO_BACKENDS = {
    "ailab": "django_tryon.backends.ailab.AILabBackend",
    "fashn": "django_tryon.backends.fashn.FashnBackend",
}

TRYON = {
    "BACKEND": DEMO_BACKENDS[DEMO_PROVIDER],
    # The sandbox accepts any key; a real shop reads its provider's key from the environment.
    "API_KEY": os.environ.get("TRYON_API_KEY", "sandbox-demo-key"),
    "BASE_URL": os.environ.get("TRYON_BASE_URL", f"http://127.0.0.1:{SANDBOX_PORT}"),
    # The sandbox answers in seconds: ask often, so the demo feels quick.
    "POLL_INTERVAL": 1.0,
    # Where the provider calls the shop back when a try-on is ready (FASHN): the shop's
    # public origin. `make demo` sets it to the web server's address on FASHN.
    "WEBHOOK_BASE_URL": os.environ.get("TRYON_WEBHOOK_BASE_URL", ""),
    "PRIVACY_URL": "/privacy/",
}
