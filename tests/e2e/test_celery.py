"""A real Celery worker on a real Redis broker moves jobs from creation to result,
with no ``tryon_poll`` running; the sweep recovers a job whose message was lost."""

import os
from collections import Counter

import pytest
from django.db import transaction

from django_tryon.models import TERMINAL_STATUSES, TryOnJob
from tests.support import contract
from tests.support.processes import process_env, wait_until

POLL_INTERVAL = 0.5


@pytest.fixture
def redis_url():
    url = os.environ.get("TRYON_TEST_REDIS_URL", "")
    if not url:
        pytest.fail("The Celery test needs Redis: set TRYON_TEST_REDIS_URL (bash .ci/run does).")
    return url


@pytest.fixture
def celery_app(redis_url):
    """This process's side of Celery: it sends the messages when jobs are created."""
    from tests.e2e.celery_app import app

    app.conf.broker_url = redis_url
    app.set_current()
    app.set_default()
    with app.connection_for_write() as connection:
        connection.default_channel.client.flushdb()  # nothing left from an earlier run
    return app


@pytest.fixture
def tryon(settings, provider):
    settings.TRYON = {
        "API_KEY": "test-key",
        "BASE_URL": provider.url,
        "POLL_INTERVAL": POLL_INTERVAL,
        "CONCURRENCY": 1,
        "CELERY_ENABLED": True,
    }
    return settings.TRYON


@pytest.fixture
def celery_worker(celery_app, tryon, processes, media_root, redis_url):
    env = process_env(tryon=tryon, media_root=media_root, TRYON_TEST_REDIS_URL=redis_url)
    worker = processes.python(
        "celery",
        "-m",
        "celery",
        "--app",
        "tests.e2e.celery_app",
        "worker",
        "--pool",
        "threads",
        "--concurrency",
        "4",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        env=env,
    )
    worker.wait_for_output("ready.", timeout=60)
    yield worker
    assert worker.stop(timeout=30) == 0


def all_terminal():
    return not TryOnJob.objects.exclude(status__in=TERMINAL_STATUSES).exists()


def test_jobs_go_from_creation_to_result_through_celery(
    celery_worker, provider, make_job, media_root
):
    count = 12
    # Each task is found "processing" once, then done: every job needs a
    # second message, sent by the first with a countdown.
    for number in range(1, count + 1):
        provider.script_query(f"task-{number}", (200, contract.query_answer(1)))

    jobs = [make_job() for _ in range(count)]  # each sends its message on commit

    wait_until(all_terminal, timeout=90, message="every job terminal")
    statuses = Counter(TryOnJob.objects.values_list("status", flat=True))
    assert statuses == {"succeeded": count}
    assert len(provider.submits) == count
    # Two queries per task, no more: one chain of messages per job.
    assert Counter(Counter(provider.queries).values()) == {2: count}
    for job in TryOnJob.objects.filter(pk__in=[job.pk for job in jobs]):
        assert job.result_image
        # The second query waited for the countdown, not sent at once.
        assert (job.finished_at - job.submitted_at).total_seconds() >= POLL_INTERVAL
    assert "django_tryon.process_job" in celery_worker.output


def test_the_sweep_recovers_a_job_whose_message_was_lost(
    celery_worker, celery_app, provider, make_job, tryon, settings
):
    from django_tryon import tasks

    settings.TRYON = {**tryon, "CELERY_ENABLED": False}
    with transaction.atomic():
        lost = make_job()  # no message: as if the broker lost it
    settings.TRYON = tryon
    assert provider.submits == []

    tasks.sweep.delay(grace_seconds=0)

    wait_until(all_terminal, timeout=60, message="the lost job terminal")
    lost.refresh_from_db()
    assert lost.status == "succeeded"
    assert len(provider.submits) == 1
