"""Settings of the page the browser tests drive: the test settings, served for real.

A file database and media folder (the web server and the worker are separate
processes), the provider at the sandbox's address, limits a test run never meets.
The addresses and folders come from the environment the fixtures set.
"""

import os

from tests.settings import *  # noqa: F403

DEBUG = True
ROOT_URLCONF = "tests.browser.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["TRYON_BROWSER_DB"],
        "OPTIONS": {"timeout": 20},
    }
}
MEDIA_ROOT = os.environ["TRYON_BROWSER_MEDIA"]
TEMPLATES[0]["DIRS"] = [os.path.join(os.path.dirname(__file__), "templates")]  # noqa: F405
TRYON = {
    "API_KEY": "browser-test-key",
    "BASE_URL": os.environ["TRYON_BROWSER_SANDBOX"],
    "POLL_INTERVAL": 0.5,
    "IDLE_INTERVAL": 0.3,
    "THROTTLE_RATE": "1000/min",
    "DAILY_QUOTA_GUEST": 1000,
    "REUSE_RESULTS": False,
    "PRIVACY_URL": "/privacy/",
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
