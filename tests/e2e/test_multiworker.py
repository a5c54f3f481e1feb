"""Four ``tryon_poll`` processes at once on PostgreSQL, against the sandbox, on 500 jobs:
every job succeeds, each photo reaches the provider once, and no job is queried
by two workers in the same lease."""

from collections import Counter, defaultdict
from itertools import pairwise

import pytest

from django_tryon.models import TERMINAL_STATUSES, TryOnJob
from django_tryon.storage import result_image_name
from tests.support.jobs import make_jobs
from tests.support.media import stored_files
from tests.support.processes import process_env, wait_until
from tests.support.recording import read_calls
from tests.support.recording_sandbox import RecordingSandbox, photo_digest

JOBS = 500
WORKERS = 4


@pytest.fixture
def sandbox():
    # Tasks take longer than the workers need to submit all the jobs, so each is
    # queried several times, by whichever worker claims it in that pass.
    server = RecordingSandbox(processing_time=6.0, result_mode="plain", seed=7).start()
    yield server
    server.stop()


def test_four_workers_share_500_jobs_without_overlap(
    sandbox, garment, processes, media_root, tmp_path
):
    jobs = make_jobs(garment, JOBS)
    tryon = {
        "API_KEY": "test-key",
        "BASE_URL": sandbox.url,
        "BACKEND": "tests.support.recording.RecordingBackend",
        "POLL_INTERVAL": 0.5,
        "IDLE_INTERVAL": 0.2,
        "CONCURRENCY": 4,
        # Small batches, so the workers take turns on the same jobs across passes.
        "BATCH_SIZE": 20,
        "LEASE_SECONDS": 60,
        "CONNECT_TIMEOUT": 2.0,
        "READ_TIMEOUT": 10.0,
    }
    logs = [tmp_path / f"calls-{number}.jsonl" for number in range(WORKERS)]
    workers = [
        processes.manage(
            f"worker-{number}",
            "tryon_poll",
            "--worker-id",
            f"worker-{number}",
            env=process_env(
                tryon=tryon,
                media_root=media_root,
                TRYON_E2E_WORKER_ID=f"worker-{number}",
                TRYON_E2E_CALL_LOG=log,
            ),
        )
        for number, log in enumerate(logs)
    ]

    wait_until(
        lambda: not TryOnJob.objects.exclude(status__in=TERMINAL_STATUSES).exists(),
        timeout=300,
        interval=1.0,
        message="every job terminal",
    )
    assert [worker.stop() for worker in workers] == [0] * WORKERS

    assert Counter(TryOnJob.objects.values_list("status", flat=True)) == {"succeeded": JOBS}

    # The provider's side: 500 submits, one task per photo.
    stats = sandbox.stats()
    assert stats["requests"]["submit"] == JOBS
    assert stats["accepted"]["submit"] == JOBS
    assert sandbox.counters.duplicate_submits() == {}
    assert set(stats["tasks_by_person"]) == {photo_digest(job) for job in jobs}
    # Each result fetched once: no job was finished by two workers.
    assert stats["requests"]["download"] == JOBS

    # The workers' side: who called, under which lease.
    calls = read_calls(logs)
    submits = [call for call in calls if call["kind"] == "submit"]
    assert len(submits) == JOBS
    assert len({call["photo"] for call in submits}) == JOBS
    queries = [call for call in calls if call["kind"] == "query"]
    assert len(queries) >= JOBS
    for call in queries:
        # The job was leased to this very worker when its query went out.
        assert call["lease"].startswith(f"{call['worker']}:"), call
    by_task = defaultdict(list)
    for call in queries:
        by_task[call["task"]].append(call)
    for task, task_calls in by_task.items():
        for earlier, later in pairwise(task_calls):
            if earlier["worker"] != later["worker"]:
                assert later["start"] >= earlier["end"], (task, earlier, later)
    per_worker = Counter(call["worker"] for call in queries)
    assert len(per_worker) >= 2, per_worker  # the work really was shared
    handed_over = sum(
        1 for task_calls in by_task.values() if len({call["worker"] for call in task_calls}) > 1
    )
    assert handed_over > 0  # jobs did change hands, so the checks above saw hand-overs

    succeeded = TryOnJob.objects.all()
    results = {name for name in stored_files(media_root) if name.startswith("tryon/results/")}
    assert results == {result_image_name(job, "jpg") for job in succeeded}
    assert results == {job.result_image.name for job in succeeded}
    print(
        f"\n{JOBS} jobs, {WORKERS} workers: queries per worker {dict(sorted(per_worker.items()))}, "
        f"{handed_over} tasks queried by more than one worker (in different leases)"
    )
