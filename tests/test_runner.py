"""The loop of tryon_poll (runner.run): passes until asked to stop, and the
housekeeping between them."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from django_tryon import runner
from django_tryon.models import TryOnJob
from tests.support.jobs import refreshed
from tests.support.media import stored_files


# The loop closes stale connections between passes, as it must in production;
# on PostgreSQL that needs a test outside one wrapping transaction.
@pytest.mark.django_db(transaction=True)
def test_runner_stops_after_the_current_pass(worker, make_job, provider):
    make_job()
    stop = threading.Event()
    reports = []

    def on_pass(report):
        reports.append(report)
        stop.set()  # as if SIGTERM arrived during the pass

    passes = runner.run(worker, stop=stop, on_pass=on_pass)
    assert passes == 1
    assert reports[0].submitted == 1
    assert TryOnJob.objects.get().status == "queued"


# The loop closes stale connections between passes, as it must in production;
# on PostgreSQL that needs a test outside one wrapping transaction.
@pytest.mark.django_db(transaction=True)
def test_the_loop_erases_photos_past_their_retention(worker, make_job, media_root):
    ended = timezone.now() - timedelta(days=2)
    old = make_job(status="failed", finished_at=ended, error_code="no_face")
    fresh = make_job(status="failed", finished_at=timezone.now(), error_code="no_face")
    old_photo = old.person_image.name
    runner.run(worker, once=True)
    assert refreshed(old).person_image.name == ""
    assert old_photo not in stored_files(media_root)
    assert refreshed(fresh).person_image.name != ""
