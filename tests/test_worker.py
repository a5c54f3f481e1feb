"""A job through the worker's passes, over loopback against a scripted provider: submits,
answers, errors and retries, leases, expiry, cancels, and how few queries a pass makes."""

import re
import time
from datetime import timedelta

from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_tryon.backends import base
from django_tryon.models import TryOnJob
from django_tryon.storage import result_image_name
from django_tryon.worker import Worker
from tests.support import contract
from tests.support.fake_provider import DROP, result_png
from tests.support.jobs import refreshed
from tests.support.media import stored_files


def test_a_job_goes_from_pending_to_a_stored_result(
    worker, provider, make_job, signals, media_root
):
    job = make_job()
    provider.script_query(
        "task-1", (200, contract.query_answer(0)), (200, contract.query_answer(1))
    )

    worker.run_pass()
    job = refreshed(job)
    assert job.status == "queued"
    assert job.provider_task_id == "task-1"
    assert job.provider_request_id == "req-1"
    assert job.provider == "ailabapi"
    assert job.submitted_at is not None
    assert job.submit_started_at is None
    assert job.lease_owner == ""

    headers, body = provider.submits[0]
    assert headers["ailabapi-api-key"] == "test-key"
    assert b'name="clothes_type"\r\n\r\nupper_body' in body
    with job.person_image.open("rb") as photo:
        assert photo.read() in body

    worker.run_pass()
    assert refreshed(job).status == "queued"
    worker.run_pass()
    assert refreshed(job).status == "processing"
    worker.run_pass()
    job = refreshed(job)
    assert job.status == "succeeded"
    assert job.finished_at is not None
    assert job.polls == 3
    assert job.result_image.name == result_image_name(job, "png")
    with job.result_image.open("rb") as result:
        assert result.read() == provider.result_body
    assert signals["succeeded"] == [job.pk]
    assert provider.downloads == ["/results/task-1.png"]

    # Nothing more to do: a terminal job is never claimed again.
    assert worker.run_pass().claimed == 0
    assert len(provider.submits) == 1


def test_rate_limit_then_success_backs_off_without_spending_attempts(worker, provider, make_job):
    job = make_job()
    provider.script_submit(
        (429, contract.error_answer(429, "EXCEEDING_LIMITS")),
    )
    report = worker.run_pass()
    assert report.rate_limited == 1
    job = refreshed(job)
    assert job.status == "pending"
    assert job.attempts == 0
    assert job.lease_owner == ""
    assert worker.rate_pause_remaining == 0  # RETRY_BACKOFF is 0 in these tests

    worker.run_pass()
    assert refreshed(job).status == "queued"
    assert len(provider.submits) == 2


def test_a_429_pauses_every_call_of_the_pass(tryon, settings, provider, make_job):
    settings.TRYON = {**tryon, "RETRY_BACKOFF": 30, "CONCURRENCY": 1}
    jobs = [make_job() for _ in range(4)]
    provider.script_submit((429, contract.error_answer(429, "EXCEEDING_LIMITS")))
    with Worker(worker_id="w") as worker:
        report = worker.run_pass()
    # One call got the 429; the other jobs were not sent at all.
    assert len(provider.submits) == 1
    assert report.released == 3
    now = timezone.now()
    for job in jobs:
        job = refreshed(job)
        assert job.status == "pending"
        assert job.next_attempt_at > now + timedelta(seconds=20)


def test_5xx_until_the_retry_limit_fails_readably(worker, provider, make_job, signals):
    job = make_job()
    provider.script_submit(*[(503, contract.error_answer(503, "ERROR_INSUFFICIENT_RESOURCES"))] * 3)
    worker.run_pass()
    job = refreshed(job)
    assert (job.status, job.attempts) == ("pending", 1)
    worker.run_pass()
    worker.run_pass()
    job = refreshed(job)
    assert job.status == "failed"
    assert job.attempts == 3
    assert job.error_code == "provider_unavailable"
    assert "try again" in job.error_message
    assert job.provider_error_code == "ERROR_INSUFFICIENT_RESOURCES"
    assert signals["failed"] == [(job.pk, "provider_unavailable")]
    assert len(provider.submits) == 3


def test_transient_faults_back_off_exponentially(tryon, settings, provider, make_job):
    settings.TRYON = {**tryon, "RETRY_BACKOFF": 10, "MAX_ATTEMPTS": 10}
    job = make_job()
    provider.script_submit(*[(500, contract.error_answer(500, "PROCESSING_FAILURE"))] * 3)
    delays = []
    with Worker(worker_id="w") as worker:
        for _ in range(3):
            before = timezone.now()
            worker.run_pass()
            job = refreshed(job)
            delays.append((job.next_attempt_at - before).total_seconds())
            TryOnJob.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())
    # Full jitter over [ceiling/2, ceiling] with ceilings 10, 20, 40 s.
    assert 5 <= delays[0] <= 11
    assert 10 <= delays[1] <= 21
    assert 20 <= delays[2] <= 41


def test_no_face_fails_at_once_with_a_message_for_the_shopper(worker, provider, make_job, signals):
    job = make_job()
    provider.script_submit(
        (422, contract.error_answer(422, "ERROR_NO_FACE_IN_FILE", request_id="R7"))
    )
    worker.run_pass()
    job = refreshed(job)
    assert job.status == "failed"
    assert job.error_code == "no_face"
    assert job.error_message.startswith("We could not find a full body in this photo")
    assert job.provider_request_id == "R7"
    assert job.error == {"code": "no_face", "message": job.error_message}
    assert signals["failed"] == [(job.pk, "no_face")]


def test_bad_api_key_fails_as_configuration(worker, provider, make_job, caplog):
    job = make_job()
    provider.script_submit((401, contract.error_answer(401, "ERROR_APPLICATIONS_NOT_EXISTS")))
    worker.run_pass()
    job = refreshed(job)
    assert job.status == "failed"
    assert job.error_code == "configuration"
    assert "not available right now" in job.error_message
    assert any(r.levelname == "ERROR" and "configuration" in r.message for r in caplog.records)
    assert "test-key" not in caplog.text


def test_task_status_3_fails(worker, provider, make_job):
    job = make_job()
    provider.script_query("task-1", (200, contract.query_answer(3)))
    worker.run_pass()
    worker.run_pass()
    job = refreshed(job)
    assert job.status == "failed"
    assert job.error_code == "task_failed"
    assert provider.downloads == []


def test_a_dead_workers_lease_is_taken_over(worker, provider, make_job):
    past = timezone.now() - timedelta(seconds=1)
    orphan = make_job(
        status="processing",
        provider_task_id="task-9",
        submitted_at=past,
        lease_owner="dead-worker:1",
        lease_expires_at=past,
    )
    held = make_job(
        status="processing",
        provider_task_id="task-8",
        submitted_at=past,
        lease_owner="live-worker:2",
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )
    report = worker.run_pass()
    assert report.claimed == 1
    assert provider.queries == ["task-9"]
    assert refreshed(orphan).status == "succeeded"
    assert refreshed(held).status == "processing"
    assert refreshed(held).lease_owner == "live-worker:2"


def test_a_job_not_finished_within_the_expiry_is_expired(worker, provider, make_job, signals):
    long_ago = timezone.now() - timedelta(hours=25)
    job = make_job(status="processing", provider_task_id="task-5", submitted_at=long_ago)
    stale_pending = make_job(created_at=long_ago, started_at=long_ago)
    report = worker.run_pass()
    assert report.expired == 2
    assert provider.queries == []
    assert provider.submits == []
    for expired in (refreshed(job), refreshed(stale_pending)):
        assert expired.status == "expired"
        assert expired.error_code == "expired"
        assert expired.finished_at is not None
    assert sorted(signals["failed"]) == sorted([(job.pk, "expired"), (stale_pending.pk, "expired")])


def test_an_interrupted_submit_is_not_sent_twice(worker, provider, make_job):
    job = make_job(submit_started_at=timezone.now() - timedelta(minutes=10))
    worker.run_pass()
    job = refreshed(job)
    assert job.status == "failed"
    assert job.error_code == "submit_interrupted"
    assert provider.submits == []


def test_an_interrupted_submit_is_resent_when_the_shop_allows(tryon, settings, provider, make_job):
    settings.TRYON = {**tryon, "RESUBMIT_INTERRUPTED": True}
    job = make_job(submit_started_at=timezone.now() - timedelta(minutes=10))
    with Worker(worker_id="w") as worker:
        report = worker.run_pass()
    assert report.resubmitted == 1
    assert refreshed(job).status == "queued"
    assert len(provider.submits) == 1


def test_a_dropped_connection_on_submit_is_in_doubt(worker, provider, make_job):
    job = make_job()
    provider.script_submit(DROP)
    worker.run_pass()
    job = refreshed(job)
    assert job.status == "failed"
    assert job.error_code == "submit_interrupted"
    assert len(provider.submits) == 1


def test_a_dropped_connection_on_query_is_retried(worker, provider, make_job):
    job = make_job()
    provider.script_query("task-1", DROP)
    worker.run_pass()
    worker.run_pass()
    job = refreshed(job)
    assert (job.status, job.attempts) == ("queued", 1)
    worker.run_pass()
    assert refreshed(job).status == "succeeded"


def test_an_unreachable_provider_is_retried(tryon, settings, make_job):
    settings.TRYON = {**tryon, "BASE_URL": "http://127.0.0.1:9"}  # nothing listens on discard
    job = make_job()
    with Worker(worker_id="w") as worker:
        worker.run_pass()
    job = refreshed(job)
    assert (job.status, job.attempts, job.submit_started_at) == ("pending", 1, None)


def test_a_stale_result_file_from_a_crash_is_replaced_not_duplicated(
    worker, provider, make_job, media_root
):
    job = make_job(status="processing", provider_task_id="task-3", submitted_at=timezone.now())
    name = result_image_name(job, "png")
    job.result_image.storage.save(name, ContentFile(b"left by a dead worker"))
    worker.run_pass()
    job = refreshed(job)
    assert job.result_image.name == name
    results = [n for n in stored_files(media_root) if "results" in n]
    assert results == [name]
    with job.result_image.open("rb") as handle:
        assert handle.read() == provider.result_body


class CancelingBackend(base.TryOnBackend):
    """Succeeds, but the job is canceled while the result is on its way."""

    provider_name = "canceling"
    requires_api_key = False

    def query(self, task_id):
        TryOnJob.objects.filter(provider_task_id=task_id).update(
            status="canceled", lease_owner="", lease_expires_at=None
        )
        return base.TaskState(status=base.SUCCEEDED, result_content=result_png())


def test_a_result_arriving_for_a_canceled_job_is_not_kept(tryon, make_job, media_root, signals):
    job = make_job(status="processing", provider_task_id="t", submitted_at=timezone.now())
    # Inline: the backend writes to the test database.
    with Worker(worker_id="w", backend=CancelingBackend(), executor=_InlineExecutor()) as worker:
        worker.run_pass()
    assert refreshed(job).status == "canceled"
    assert not any("results" in name for name in stored_files(media_root))
    assert signals["succeeded"] == []


class SynchronousBackend(base.TryOnBackend):
    """A provider that answers the picture itself in the submit's answer."""

    provider_name = "sync"
    requires_api_key = False

    def submit(self, request):
        state = base.TaskState(status=base.SUCCEEDED, result_content=result_png((1, 2, 3)))
        return base.Submission(task_id="sync-1", state=state)


def test_a_synchronous_provider_finishes_in_one_pass(tryon, make_job, signals):
    job = make_job()
    with Worker(worker_id="w", backend=SynchronousBackend()) as worker:
        report = worker.run_pass()
    job = refreshed(job)
    assert report.succeeded == 1
    assert job.status == "succeeded"
    assert job.provider_task_id == "sync-1"
    assert job.submitted_at is not None
    assert signals["succeeded"] == [job.pk]


class _InlineExecutor:
    """Runs work on the calling thread (for backends that touch the database in tests)."""

    def submit(self, fn, *args):
        from concurrent.futures import Future

        future = Future()
        future.set_result(fn(*args))
        return future

    def shutdown(self, wait=True):
        pass


def _pass_queries(worker):
    worker.refresh_schedule()  # read before, not in either measured pass
    with CaptureQueriesContext(connection) as captured:
        worker.run_pass()
    return len(captured)


def test_pass_queries_do_not_grow_with_unchanged_jobs(worker, provider, make_job):
    def in_flight(count):
        TryOnJob.objects.all().delete()
        jobs = [
            make_job(status="processing", provider_task_id=f"p-{i}", submitted_at=timezone.now())
            for i in range(count)
        ]
        for job in jobs:
            provider.script_query(job.provider_task_id, (200, contract.query_answer(1)))
        return _pass_queries(worker)

    assert in_flight(3) == in_flight(30)


def test_pass_queries_grow_by_at_most_one_write_per_changed_job(worker, provider, make_job):
    def queries(count, answer):
        TryOnJob.objects.all().delete()
        for i in range(count):
            job = make_job(status="queued", provider_task_id=f"q-{i}", submitted_at=timezone.now())
            provider.script_query(job.provider_task_id, (200, answer))
        return _pass_queries(worker)

    # Still queued: nothing changed, the pass's constant.
    constant = queries(10, contract.query_answer(0))
    for count in (10, 30):
        # Changes that arrive together share a write, so there can be fewer writes.
        assert queries(count, contract.query_answer(1)) <= constant + count
        assert TryOnJob.objects.filter(status="processing").count() == count


def test_a_pass_can_be_limited_to_some_jobs(worker, provider, make_job):
    chosen, other = make_job(), make_job()
    report = worker.run_pass(job_ids=[chosen.pk])
    assert report.claimed == 1
    assert refreshed(chosen).status == "queued"
    assert refreshed(other).status == "pending"


# Performance (docs/performance.md) ------------------------------------------------


def test_a_dispatch_group_marks_its_submits_in_one_query(tryon, settings, make_job):
    # Every pending job fits in the first dispatch group: one marker write for all,
    # then at most one write per job for its task id (fewer when answers arrive together).
    settings.TRYON = {**tryon, "CONCURRENCY": 40}
    marker = re.compile(r"UPDATE \S+ SET \W?submit_started_at\W? = ")

    def submitted(count):
        TryOnJob.objects.all().delete()
        for _ in range(count):
            make_job()
        with Worker(worker_id="group") as worker, CaptureQueriesContext(connection) as captured:
            worker.run_pass()
        assert TryOnJob.objects.filter(status="queued").count() == count
        assert TryOnJob.objects.filter(submit_started_at__isnull=False).count() == 0
        marks = [query for query in captured if marker.match(query["sql"])]
        assert len(marks) == 1
        task_id_writes = [
            query
            for query in captured
            if "UPDATE" in query["sql"] and "provider_task_id" in query["sql"]
        ]
        assert 1 <= len(task_id_writes) <= count

    submitted(10)
    submitted(30)


def test_a_lost_lease_is_not_marked_nor_submitted(tryon, provider, make_job):
    held, lost = make_job(), make_job()

    def lose_one_once_claimed(point):
        if point == "claimed":
            TryOnJob.objects.filter(pk=lost.pk).update(lease_owner="someone-else")

    with Worker(worker_id="w", checkpoint=lose_one_once_claimed) as worker:
        report = worker.run_pass()
    assert report.submitted == 1
    assert refreshed(held).status == "queued"
    lost = refreshed(lost)
    assert lost.status == "pending" and lost.submit_started_at is None


def test_a_job_canceled_after_the_claim_is_never_submitted(tryon, provider, make_job):
    kept, canceled = make_job(), make_job()

    def cancel_one_once_claimed(point):
        if point == "claimed":
            # A cancel that leaves the row's lease as it was: only the status tells.
            TryOnJob.objects.filter(pk=canceled.pk).update(status="canceled", error_code="canceled")

    with Worker(worker_id="w", checkpoint=cancel_one_once_claimed) as worker:
        report = worker.run_pass()

    assert report.submitted == 1
    assert len(provider.submits) == 1  # no paid task for the canceled job
    assert refreshed(kept).status == "queued"
    canceled = refreshed(canceled)
    assert (canceled.status, canceled.provider_task_id) == ("canceled", "")


def test_out_of_credits_fails_and_alerts_staff(worker, provider, make_job, caplog):
    job = make_job()
    provider.script_submit((429, contract.error_answer(429, "ERROR_NOT_ENOUGH_CREDITS")))
    worker.run_pass()
    job = refreshed(job)
    assert (job.status, job.error_code) == ("failed", "out_of_credits")
    assert any(r.levelname == "ERROR" and "out of credits" in r.message for r in caplog.records)


def test_calls_that_finish_while_one_is_recorded_free_their_places_together(
    settings, tryon, provider, make_job
):
    """Every finished call is recorded before more are started, so the places they
    free are filled by one group of submits: one submit mark, not one per place."""
    settings.TRYON = {**tryon, "CONCURRENCY": 4}
    for _ in range(8):
        make_job()
    recordings = []

    def slow_first_recording(point):
        if point == "recording":
            if not recordings:
                time.sleep(0.5)  # meanwhile the first group's other submits come back
            recordings.append(point)

    worker = Worker(worker_id="groups", checkpoint=slow_first_recording)
    with worker, CaptureQueriesContext(connection) as captured:
        report = worker.run_pass()
    assert report.submitted == 8
    marks = [
        query["sql"]
        for query in captured.captured_queries
        if query["sql"].startswith("UPDATE") and 'SET "submit_started_at"' in query["sql"]
    ]
    assert len(marks) == 2  # the first four, then the four that follow together
