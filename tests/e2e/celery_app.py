"""The Celery app of the end-to-end tests, as a shop would write its own.

The broker is Redis at ``TRYON_TEST_REDIS_URL``; django_tryon's tasks are
found by ``autodiscover_tasks`` in ``django_tryon/tasks.py``.
"""

import os

import django
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.e2e.settings")
django.setup()

app = Celery("tryon_e2e")
app.conf.update(
    broker_url=os.environ.get("TRYON_TEST_REDIS_URL", ""),
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
app.autodiscover_tasks(["django_tryon"])
