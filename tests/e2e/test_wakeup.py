"""A new job wakes ``tryon_poll`` at its commit, on PostgreSQL (``NOTIFY`` / ``LISTEN``).

Every worker here sleeps an hour when idle (``IDLE_INTERVAL``), so a job can
only be submitted within the tests' timeouts if its commit woke the worker.
"""

import signal

import pytest
from django.core.files.base import ContentFile
from django.db import connection

from django_tryon.models import TERMINAL_STATUSES, JobStatus, TryOnJob
from django_tryon.wakeup import CHANNEL
from tests.support.images import make_image_bytes
from tests.support.processes import process_env, wait_until
from tests.support.recording_sandbox import RecordingSandbox

AN_HOUR = 3600
# Far under the idle sleep: a job picked up within this was woken up.
PROMPTLY = 60


@pytest.fixture
def sandbox():
    server = RecordingSandbox(processing_time=0.3, result_mode="plain", seed=3).start()
    yield server
    server.stop()


def start_worker(processes, name, sandbox, media_root):
    tryon = {
        "API_KEY": "test-key",
        "BASE_URL": sandbox.url,
        "POLL_INTERVAL": 0.2,
        "IDLE_INTERVAL": AN_HOUR,
        "CONCURRENCY": 2,
    }
    worker = processes.manage(
        name,
        "tryon_poll",
        "-v",
        "2",
        "--worker-id",
        name,
        env=process_env(tryon=tryon, media_root=media_root),
    )
    worker.wait_for_output("Listening for new jobs")
    worker.wait_for_output("Pass: nothing due")  # its first pass is over: it sleeps
    return worker


def new_job(garment, number=0):
    return TryOnJob.objects.create(
        garment=garment,
        person_image=ContentFile(
            make_image_bytes((96, 192), (number % 256, 40, 90), "PNG"), name="person.png"
        ),
    )


def finished(job):
    job.refresh_from_db()
    return job.status in TERMINAL_STATUSES


def listening_backends():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND query = %s AND pid <> pg_backend_pid()",
            [f"LISTEN {CHANNEL}"],
        )
        return [pid for (pid,) in cursor.fetchall()]


def test_each_new_job_wakes_the_sleeping_worker(sandbox, garment, processes, media_root):
    worker = start_worker(processes, "worker", sandbox, media_root)
    for number in range(5):
        # Only one job at a time: with nothing else due, the worker sleeps an hour
        # between them unless the new job wakes it.
        job = new_job(garment, number)
        wait_until(lambda job=job: finished(job), PROMPTLY, 0.05, f"job {number} finished")
        assert job.status == JobStatus.SUCCEEDED
    assert sandbox.stats()["requests"]["submit"] == 5
    assert worker.stop() == 0


def test_a_dropped_listening_connection_is_made_again(sandbox, garment, processes, media_root):
    worker = start_worker(processes, "worker", sandbox, media_root)
    [listener] = listening_backends()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [listener])
    worker.wait_for_output("was lost", timeout=PROMPTLY)
    wait_until(
        lambda: worker.output.count("Listening for new jobs") == 2,
        PROMPTLY,
        0.05,
        "listening again",
    )
    assert listening_backends() not in ([], [listener])
    job = new_job(garment)
    wait_until(lambda: finished(job), PROMPTLY, 0.05, "the job finished")
    assert job.status == JobStatus.SUCCEEDED
    assert worker.stop() == 0


def test_several_listening_workers_submit_each_job_once(sandbox, garment, processes, media_root):
    workers = [start_worker(processes, f"worker-{n}", sandbox, media_root) for n in range(3)]
    assert len(listening_backends()) == 3
    jobs = [new_job(garment, number) for number in range(10)]
    wait_until(lambda: all(finished(job) for job in jobs), PROMPTLY, 0.05, "every job finished")
    assert {job.status for job in jobs} == {JobStatus.SUCCEEDED}
    stats = sandbox.stats()
    assert stats["requests"]["submit"] == 10
    assert stats["requests"]["download"] == 10
    assert [worker.stop() for worker in workers] == [0, 0, 0]


def test_ctrl_c_stops_a_sleeping_worker_at_once(sandbox, processes, media_root):
    worker = start_worker(processes, "worker", sandbox, media_root)
    worker.signal(signal.SIGINT)
    # Far under its hour of sleep: the stop request ended the wait.
    assert worker.wait(PROMPTLY) == 0
    assert "Stopping after the current pass" in worker.output
