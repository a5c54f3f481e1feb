"""Worker processes killed in the middle of a pass, then restarted: nothing lost,
nothing saved twice, and the only resubmissions are jobs whose task id was never
stored.

The windows are hit on purpose: a worker started as ``tryon_poll_paused`` with
``TRYON_TEST_PAUSE_AT`` stops at that point of a pass (see
``tests/testapp/management/commands/tryon_poll_paused.py``) and the test kills
it there with SIGKILL.
"""

import re
from collections import Counter

import pytest

from django_tryon.models import TERMINAL_STATUSES, TryOnJob
from django_tryon.storage import result_image_name
from tests.support.media import stored_files
from tests.support.processes import process_env, wait_until

PERSON_FILENAME = re.compile(rb'name="person_image"; filename="([^"]+)"')


def crash_settings(provider, **overrides):
    return {
        "API_KEY": "test-key",
        "BASE_URL": provider.url,
        "POLL_INTERVAL": 0,
        "IDLE_INTERVAL": 0.2,
        "RETRY_BACKOFF": 0.2,
        "CONCURRENCY": 1,
        "BATCH_SIZE": 1,
        # A killed worker's lease must run out within the test; the lease still
        # has to exceed 2 x (connect + read timeout) + 5 s for the pass to start calls.
        "LEASE_SECONDS": 12,
        "CONNECT_TIMEOUT": 1.0,
        "READ_TIMEOUT": 2.0,
        **overrides,
    }


def submits_per_job(provider):
    """How many times the provider received each job's photo, by the photo's file name."""
    names = []
    for _headers, body in provider.submits:
        match = PERSON_FILENAME.search(body)
        assert match, "a submit without a person photo"
        names.append(match.group(1).decode())
    return Counter(names)


def photo_name(job):
    return job.person_image.name.rsplit("/", 1)[-1]


def result_files(media_root):
    return {name for name in stored_files(media_root) if name.startswith("tryon/results/")}


@pytest.mark.parametrize("resubmit", [False, True], ids=["default", "resubmit_interrupted"])
def test_workers_killed_in_every_window_lose_nothing(
    resubmit, provider, make_job, processes, media_root
):
    jobs = [make_job() for _ in range(6)]
    tryon = crash_settings(provider, RESUBMIT_INTERRUPTED=resubmit)

    def start(name, pause_at=None):
        extra = {"TRYON_TEST_PAUSE_AT": pause_at} if pause_at else {}
        env = process_env(tryon=tryon, media_root=media_root, **extra)
        command = "tryon_poll_paused" if pause_at else "tryon_poll"
        return processes.manage(name, command, "--worker-id", name, "-v", "2", env=env)

    # 1. Killed after the provider accepted a submit, before the task id is saved.
    worker = start("crash-after-submit", "submitted")
    worker.wait_for_output("tryon-paused-at submitted")
    worker.kill()
    in_doubt = TryOnJob.objects.get(submit_started_at__isnull=False)
    assert in_doubt.provider_task_id == ""
    assert sum(submits_per_job(provider).values()) == 1

    # 2. Killed after a query said "done", before the result is downloaded.
    worker = start("crash-after-query", "queried")
    worker.wait_for_output("tryon-paused-at queried")
    worker.kill()
    queried = TryOnJob.objects.get(provider_task_id=provider.queries[-1])
    assert queried.status == "queued"
    assert not queried.result_image

    # 3. Killed after the result file is stored, before the job records it.
    worker = start("crash-after-store", "result_stored")
    worker.wait_for_output("tryon-paused-at result_stored")
    worker.kill()
    stored = TryOnJob.objects.get(provider_task_id=provider.queries[-1])
    assert stored.pk != queried.pk
    assert not stored.result_image
    assert result_files(media_root) == {result_image_name(stored, "png")}

    # 4. A healthy worker takes over once the dead workers' leases run out.
    worker = start("survivor")
    wait_until(
        lambda: not TryOnJob.objects.exclude(status__in=TERMINAL_STATUSES).exists(),
        timeout=60,
        message="every job terminal",
    )
    assert worker.stop() == 0

    finished = {job.pk: job for job in TryOnJob.objects.all()}
    assert set(finished) == {job.pk for job in jobs}
    assert not TryOnJob.objects.exclude(submit_started_at=None).exists()
    assert not TryOnJob.objects.exclude(lease_owner="").exists()

    submits = submits_per_job(provider)
    resubmitted = {name for name, count in submits.items() if count > 1}
    if resubmit:
        # The one job whose task id was never stored went to the provider again,
        # and nothing else did.
        assert resubmitted == {photo_name(in_doubt)}
        assert submits[photo_name(in_doubt)] == 2
        assert "resubmitted 1" in worker.output
        assert all(job.status == "succeeded" for job in finished.values())
    else:
        # It cannot be known whether the provider is making it: it fails, unpaid twice.
        assert resubmitted == set()
        assert finished[in_doubt.pk].status == "failed"
        assert finished[in_doubt.pk].error_code == "submit_interrupted"
        others = [job for pk, job in finished.items() if pk != in_doubt.pk]
        assert all(job.status == "succeeded" for job in others)
    assert sum(submits.values()) == len(jobs) + len(resubmitted)
    assert set(submits) == {photo_name(job) for job in jobs}

    # One result file per succeeded job, under its own name: none saved twice,
    # none left behind by the worker killed after storing one.
    succeeded = [job for job in finished.values() if job.status == "succeeded"]
    assert result_files(media_root) == {job.result_image.name for job in succeeded}
    assert {job.result_image.name for job in succeeded} == {
        result_image_name(job, "png") for job in succeeded
    }


def test_sigterm_finishes_the_pass_and_exits_0(provider, make_job, processes, media_root):
    jobs = [make_job() for _ in range(3)]
    tryon = crash_settings(provider, BATCH_SIZE=10, LEASE_SECONDS=60)
    # The worker holds for 1.5 s right after the provider accepted the first
    # submit: the signal arrives while that call's answer is not yet recorded.
    env = process_env(
        tryon=tryon,
        media_root=media_root,
        TRYON_TEST_PAUSE_AT="submitted",
        TRYON_TEST_PAUSE_SECONDS=1.5,
    )
    worker = processes.manage("worker", "tryon_poll_paused", "--worker-id", "w", env=env)
    worker.wait_for_output("tryon-paused-at submitted")
    assert worker.stop(timeout=30) == 0
    assert "Stopping after the current pass" in worker.output

    assert len(provider.submits) == 1
    statuses = Counter(TryOnJob.objects.values_list("status", flat=True))
    assert statuses == {"queued": 1, "pending": len(jobs) - 1}
    submitted = TryOnJob.objects.get(status="queued")
    assert submitted.provider_task_id == "task-1"
    # Everything the pass held is handed back: another worker can go on at once.
    assert not TryOnJob.objects.exclude(submit_started_at=None).exists()
    assert not TryOnJob.objects.exclude(lease_owner="").exists()
