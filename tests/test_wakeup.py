"""Waking the worker when a job is committed (django_tryon.wakeup), and the idle sleep
where nothing can wake it. The tests of a real listening worker process are in
tests/e2e/test_wakeup.py; these run on the suite's own database, SQLite or
PostgreSQL, each testing what that database does."""

import threading
import time

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction

from django_tryon import runner
from django_tryon.admin.operations import make_due
from django_tryon.backends import base
from django_tryon.models import JobStatus, TryOnJob
from django_tryon.wakeup import CHANNEL, Listener, Wakeup, job_database
from django_tryon.worker import Worker

ON_POSTGRESQL = django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
# Far longer than anything here takes: a wait that lasts this long was not woken.
LONG = 30.0

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tryon(settings):
    settings.TRYON = {"API_KEY": "k", "BASE_URL": "http://127.0.0.1:9", "IDLE_INTERVAL": 0.2}
    return settings.TRYON


def test_a_stop_request_ends_the_wait_at_once(tryon):
    stop = threading.Event()
    wakeup = Wakeup(stop)  # no listener: the stop request alone
    try:
        threading.Timer(0.1, stop.set).start()
        started = time.monotonic()
        assert wakeup.wait(LONG) is False
        assert stop.is_set() and time.monotonic() - started < LONG / 2
    finally:
        wakeup.close()


def test_no_wake_up_when_turned_off_or_with_celery(tryon, settings):
    settings.TRYON = {**tryon, "WAKE_ON_COMMIT": False}
    assert Wakeup.for_worker(threading.Event()) is None
    settings.TRYON = {**tryon, "CELERY_ENABLED": True}
    assert Wakeup.for_worker(threading.Event()) is None


class FirstSubmitWaits(base.TryOnBackend):
    """A provider whose first submit answers only once ``release`` is set."""

    provider_name = "waits"
    requires_api_key = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.release = threading.Event()
        self.submits = 0

    def submit(self, request):
        self.submits += 1
        if self.submits == 1:
            assert self.release.wait(LONG), "never released"
        return base.Submission(task_id=f"task-{self.submits}")


def test_a_job_announced_during_a_pass_joins_it(tryon, make_job):
    first = make_job()
    backend = FirstSubmitWaits()
    announced = []

    def more_due():
        # Asked while the first submit is at the provider: a shopper sends a job.
        if announced:
            return False
        announced.append(make_job())
        backend.release.set()
        return True

    with Worker(worker_id="w", backend=backend) as worker:
        report = worker.run_pass(more_due=more_due)
    assert (report.claimed, report.submitted) == (2, 2)
    for job in (first, *announced):
        job.refresh_from_db()
        assert job.status == JobStatus.QUEUED and job.lease_owner == ""


if not ON_POSTGRESQL:

    def test_on_sqlite_the_worker_finds_new_jobs_by_its_idle_sleep(tryon, make_job):
        # Nothing can wake a worker on SQLite: the loop sleeps on its stop event.
        assert Wakeup.for_worker(threading.Event()) is None
        worker = Worker(worker_id="sqlite")
        stop = threading.Event()
        passes = []
        loop = threading.Thread(
            target=runner.run, args=(worker,), kwargs={"stop": stop, "on_pass": passes.append}
        )
        loop.start()
        try:
            deadline = time.monotonic() + LONG
            while not passes and time.monotonic() < deadline:
                time.sleep(0.01)
            job = make_job()
            # The next pass after the idle sleep (0.2 s) claims it; the provider is
            # unreachable, so the submit is retried later: the claim is what counts.
            while TryOnJob.objects.get(pk=job.pk).attempts == 0:
                assert time.monotonic() < deadline, "the idle sleep never ended"
                time.sleep(0.05)
        finally:
            stop.set()
            loop.join()
            worker.close()
        assert any(report.claimed for report in passes)


if ON_POSTGRESQL:

    @pytest.fixture
    def wakeup(tryon):
        stop = threading.Event()
        listener = Listener(job_database())
        assert listener.listening
        wakeup = Wakeup(stop, listener)
        yield wakeup
        wakeup.close()

    def test_a_committed_job_wakes_a_listening_worker(wakeup, make_job):
        make_job()
        assert wakeup.wait(LONG) is True

    def test_a_rolled_back_job_wakes_nobody(wakeup, make_job):
        with pytest.raises(RuntimeError), transaction.atomic():
            make_job()
            raise RuntimeError("the request failed")
        assert not TryOnJob.objects.exists()
        # The NOTIFY would have been sent at the commit, at once; there was none.
        assert wakeup.wait(0.5) is False
        make_job()
        assert wakeup.wait(LONG) is True

    def test_jobs_made_due_by_staff_wake_the_worker(wakeup, make_job):
        job = make_job(status=JobStatus.QUEUED, provider_task_id="t-1")  # (wakes nobody)
        make_due(TryOnJob.objects.filter(pk=job.pk))
        assert wakeup.wait(LONG) is True

    def test_a_lost_listening_connection_is_made_again(wakeup, make_job):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query = %s",
                [f"LISTEN {CHANNEL}"],
            )
        # The closed connection ends the wait; the next wait listens again at once,
        # and wakes the loop for a pass (jobs may have come meanwhile).
        assert wakeup.wait(LONG) is True
        assert not wakeup.listener.listening
        assert wakeup.wait(LONG) is True
        assert wakeup.listener.listening
        make_job()
        assert wakeup.wait(LONG) is True
