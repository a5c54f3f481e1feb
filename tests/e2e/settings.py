"""Settings of the processes the end-to-end tests start (workers, Celery).

They share the test run's database and media folder, and take ``TRYON`` from
the environment, so one test can start several real processes on the same data:

- ``TRYON_E2E_DB_NAME``: the test database pytest created (PostgreSQL);
- ``TRYON_E2E_MEDIA_ROOT``: the test's media folder;
- ``TRYON_E2E_TRYON``: the ``TRYON`` setting as JSON;
- ``TRYON_E2E_MAIL_DIR``: where mail to the site's admins is written, one file each;
- ``TRYON_TEST_REDIS_URL``: the Celery broker.
"""

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES

if os.environ.get("TRYON_E2E_DB_NAME"):
    DATABASES["default"]["NAME"] = os.environ["TRYON_E2E_DB_NAME"]

if os.environ.get("TRYON_E2E_MEDIA_ROOT"):
    MEDIA_ROOT = os.environ["TRYON_E2E_MEDIA_ROOT"]

if os.environ.get("TRYON_E2E_TRYON"):
    TRYON = json.loads(os.environ["TRYON_E2E_TRYON"])

CELERY_BROKER_URL = os.environ.get("TRYON_TEST_REDIS_URL", "")
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django_tryon": {"handlers": ["stderr"], "level": "INFO"}},
}

# Mail to the site's admins (the failover's warnings) lands in files the test reads.
if os.environ.get("TRYON_E2E_MAIL_DIR"):
    ADMINS = [("Staff", "staff@example.com")]
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = os.environ["TRYON_E2E_MAIL_DIR"]
