"""The faults soak: 1,000 jobs through the sandbox with a fifth of its answers faulty
(429, 5xx, dropped connections, slow answers) and a hard rate limit.

Every job must end within a bounded time; each task the provider accepted and
the worker recorded must end ``succeeded``; the only other ending is
``submit_interrupted``, for a submit whose answer was lost (the provider may
have made that task: it is never sent twice); nothing is left in flight, no
file is orphaned, and the workers back off on 429 instead of hammering the
limit. The figures are printed at the end.
"""

import time
from collections import Counter

import pytest

from django_tryon.models import ACTIVE_STATUSES, TERMINAL_STATUSES, TryOnJob
from tests.support.jobs import make_jobs
from tests.support.media import stored_files
from tests.support.processes import process_env, wait_until
from tests.support.recording_sandbox import RecordingSandbox, photo_digest

JOBS = 1000
WORKERS = 2
MAX_RPS = 60
# Shares of API answers (submits and queries) that are faulty: 20 % together.
FAULTS = {"rate_limited": 0.05, "server_errors": 0.07, "drop": 0.045}
SLOW = 0.055  # answered after 0.5 to 3 s, some past the read timeout
TIME_BOUND = 420  # seconds for every job to end


@pytest.fixture
def sandbox():
    server = RecordingSandbox(
        processing_time=1.0,
        result_mode="plain",
        seed=11,
        max_rps=MAX_RPS,
        slow=SLOW,
        slow_seconds=3.0,
        **FAULTS,
    ).start()
    yield server
    server.stop()


def test_1000_jobs_through_a_faulty_rate_limited_provider(
    sandbox, garment, processes, media_root, capsys
):
    make_jobs(garment, JOBS)
    tryon = {
        "API_KEY": "test-key",
        "BASE_URL": sandbox.url,
        "POLL_INTERVAL": 0.5,
        "IDLE_INTERVAL": 0.2,
        "CONCURRENCY": 4,
        "BATCH_SIZE": 50,
        "MAX_ATTEMPTS": 8,
        "RETRY_BACKOFF": 0.5,
        "RETRY_BACKOFF_MAX": 5.0,
        "CONNECT_TIMEOUT": 1.0,
        "READ_TIMEOUT": 2.0,
        "LEASE_SECONDS": 30,
    }
    started = time.monotonic()
    workers = [
        processes.manage(
            f"worker-{number}",
            "tryon_poll",
            "--worker-id",
            f"worker-{number}",
            env=process_env(tryon=tryon, media_root=media_root),
        )
        for number in range(WORKERS)
    ]
    wait_until(
        lambda: not TryOnJob.objects.filter(status__in=ACTIVE_STATUSES).exists(),
        timeout=TIME_BOUND,
        interval=1.0,
        message="every job terminal",
    )
    duration = time.monotonic() - started
    assert [worker.stop() for worker in workers] == [0] * WORKERS

    finished = list(TryOnJob.objects.all())
    assert len(finished) == JOBS
    assert all(job.status in TERMINAL_STATUSES for job in finished)
    assert not TryOnJob.objects.exclude(lease_owner="").exists()
    assert not TryOnJob.objects.exclude(submit_started_at=None).exists()
    endings = Counter((job.status, job.error_code) for job in finished)

    stats = sandbox.stats()
    tasks = stats["tasks_by_person"]
    # Never paid twice: no photo became two tasks.
    assert sandbox.counters.duplicate_submits() == {}
    recorded = [job for job in finished if job.provider_task_id]
    in_doubt = [job for job in finished if job.error_code == "submit_interrupted"]
    # Every task the worker knows of was made by the provider and ended succeeded.
    assert all(job.status == "succeeded" for job in recorded), endings
    assert {photo_digest(job) for job in recorded} <= set(tasks)
    # A task the worker does not know of is one whose submit answer was lost.
    unknown_tasks = set(tasks) - {photo_digest(job) for job in recorded}
    assert unknown_tasks <= {photo_digest(job) for job in in_doubt}
    # The only other ending: a submit whose answer was lost, never resent.
    assert set(endings) <= {("succeeded", ""), ("failed", "submit_interrupted")}, endings
    # Each of those is explained by a dropped or slow (timed out) answer.
    assert len(in_doubt) <= stats["faults"].get("drop", 0) + stats["faults"].get("slow", 0)

    # No file orphaned: one result per succeeded job, and nothing else.
    succeeded = [job for job in finished if job.status == "succeeded"]
    results = {name for name in stored_files(media_root) if name.startswith("tryon/results/")}
    assert results == {job.result_image.name for job in succeeded}
    assert not any(job.result_image for job in finished if job.status != "succeeded")

    # The rate limit: refusals stay a small share, and bursts over it are short.
    api_requests = sum(stats["requests"].get(kind, 0) for kind in ("submit", "query"))
    refused = stats["faults"].get("max_rps", 0)
    per_second, longest_over = sandbox.busiest_seconds(MAX_RPS)
    assert refused < api_requests * 0.1, (refused, api_requests)
    assert longest_over <= 3, per_second

    faults = {kind: count for kind, count in stats["faults"].items() if kind != "max_rps"}
    # Transient faults the jobs met and retried (429s are paused for, not counted).
    retries = sum(job.attempts for job in finished)
    with capsys.disabled():
        print(
            f"\nSoak: {JOBS} jobs, {WORKERS} workers x CONCURRENCY {tryon['CONCURRENCY']}, "
            f"done in {duration:.1f} s (bound {TIME_BOUND} s)\n"
            f"  endings: {dict(endings)}\n"
            f"  provider requests: {stats['requests']}\n"
            f"  faults injected: {sum(faults.values())} {faults} "
            f"(share of API requests {sum(faults.values()) / api_requests:.1%})\n"
            f"  rate limit {MAX_RPS}/s: {refused} requests refused "
            f"({refused / api_requests:.1%}), busiest second {max(per_second)}, "
            f"longest run over the limit {longest_over} s\n"
            f"  retries after transient faults: {retries}; "
            f"tasks the provider made: {len(tasks)}, of which {len(unknown_tasks)} "
            f"with a lost submit answer"
        )
