"""The worker end to end over loopback, against a scripted provider."""

import re
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_tryon import runner
from django_tryon.backends import base
from django_tryon.models import TryOnJob
from django_tryon.results import ResultFetcher, ResultURLForbidden
from django_tryon.signals import job_failed, job_succeeded
from django_tryon.storage import result_image_name
from django_tryon.worker import Worker
from tests.support import contract
from tests.support.fake_provider import DROP, FakeProvider, result_png
from tests.support.media import stored_files


@pytest.fixture
def tryon(settings, provider):
    settings.TRYON = {
        "API_KEY": "test-key",
        "BASE_URL": provider.url,
        "POLL_INTERVAL": 0,
        "RETRY_BACKOFF": 0,
        "MAX_ATTEMPTS": 3,
        "CONCURRENCY": 2,
        "READ_TIMEOUT": 5,
        # No pass here waits long enough on a call to look for more due jobs
        # meanwhile (tests/test_security.py does): query counts stay exact.
        "IDLE_INTERVAL": 60,
    }
    return settings.TRYON


@pytest.fixture
def worker(tryon):
    with Worker(worker_id="test") as worker:
        yield worker


@pytest.fixture
def signals():
    received = {"succeeded": [], "failed": []}

    def on_success(sender, job, **kwargs):
        received["succeeded"].append(job.pk)

    def on_failure(sender, job, **kwargs):
        received["failed"].append((job.pk, job.error_code))

    job_succeeded.connect(on_success)
    job_failed.connect(on_failure)
    yield received
    job_succeeded.disconnect(on_success)
    job_failed.disconnect(on_failure)


def refreshed(job):
    job.refresh_from_db()
    return job


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


@pytest.mark.parametrize(
    "url_template",
    [
        "http://localhost:{port}/stolen.png",  # plain http to an untrusted host name
        "https://127.0.0.2:{port}/stolen.png",  # https, but a loopback address
        "https://169.254.169.254/latest/meta-data",  # link-local cloud metadata
        "ftp://127.0.0.1:{port}/x.png",
    ],
)
def test_result_url_on_a_forbidden_host_fails_without_a_request(
    worker, provider, make_job, url_template, media_root
):
    bystander = FakeProvider().start()
    try:
        port = bystander.server.server_address[1]
        job = make_job()
        provider.script_query("task-1", ("done", url_template.format(port=port)))
        worker.run_pass()
        worker.run_pass()
        job = refreshed(job)
        assert job.status == "failed"
        assert job.error_code == "result_unavailable"
        assert bystander.downloads == []
        assert provider.downloads == []
        assert not any("results" in name for name in stored_files(media_root))
    finally:
        bystander.stop()


def test_a_result_host_that_resolves_elsewhere_once_connecting_is_refused(
    worker, provider, make_job, media_root, caplog
):
    # DNS rebinding: the name looks public when the URL is checked, and leads
    # to loopback when the connection resolves it again.
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    port = listener.getsockname()[1]
    accepted = []  # every connection made to the listener
    done = threading.Event()

    def accept():
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(connection)

    listening = threading.Thread(target=accept)
    listening.start()
    answers = iter(
        [
            [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))],
            [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))],
        ]
    )
    worker.fetcher.resolver = lambda host, port, *args, **kwargs: next(answers)
    try:
        job = make_job()
        provider.script_query("task-1", ("done", f"https://results.example.com:{port}/stolen.png"))
        worker.run_pass()
        worker.run_pass()
    finally:
        done.set()
        listening.join(timeout=15)
        listener.close()
    job = refreshed(job)
    assert (job.status, job.error_code) == ("failed", "result_unavailable")
    # The log tells staff why (the shopper's message stays the general one).
    assert (
        "results.example.com resolves, when connecting, to a non-public address (127.0.0.1)"
        in caplog.text
    )
    # The address was refused before a connection was made to it: none was.
    assert accepted == []
    assert not any("results" in name for name in stored_files(media_root))


@pytest.mark.parametrize(
    "host, address, allowed",
    [
        ("cdn.example", "93.184.216.34", True),
        ("cdn.example", "2606:2800:220:1::1", True),
        ("cdn.example", "127.0.0.1", False),
        ("cdn.example", "10.1.2.3", False),
        ("cdn.example", "::ffff:127.0.0.1", False),  # loopback, spelled as IPv6
        ("cdn.example", "fe80::1%eth0", False),  # link-local, with its interface
        ("cdn.example", "224.0.0.1", False),
        ("Results.Internal", "10.1.2.3", True),  # listed in RESULT_HOSTS
        ("[fd00::5]", "fd00::5", True),  # listed, and spelled as in a URL
        ("127.0.0.1", "127.0.0.1", True),  # BASE_URL's host
    ],
)
def test_a_connection_goes_on_only_at_an_address_the_host_may_have(host, address, allowed):
    fetcher = ResultFetcher(
        base_url="http://127.0.0.1:8000/api",
        extra_hosts=["results.internal", "fd00::5"],
        max_bytes=1000,
        timeout=1,
    )
    if allowed:
        fetcher.check_peer(host, address)
    else:
        with pytest.raises(ResultURLForbidden, match="when connecting, to a non-public address"):
            fetcher.check_peer(host, address)


def test_result_host_listed_in_settings_is_allowed(tryon, settings, provider, make_job):
    bystander = FakeProvider().start()
    try:
        settings.TRYON = {**tryon, "RESULT_HOSTS": ["localhost"]}
        port = bystander.server.server_address[1]
        job = make_job()
        provider.script_query("task-1", ("done", f"http://localhost:{port}/results/x.png"))
        with Worker(worker_id="w") as worker:
            worker.run_pass()
            worker.run_pass()
        assert refreshed(job).status == "succeeded"
        assert bystander.downloads == ["/results/x.png"]
    finally:
        bystander.stop()


def test_a_result_that_is_not_an_image_retries_then_fails(worker, provider, make_job, media_root):
    provider.result_body = b"<html>not a picture</html>"
    job = make_job()
    for _ in range(4):
        worker.run_pass()
    job = refreshed(job)
    assert job.status == "failed"
    assert job.error_code == "result_unavailable"
    assert len(provider.downloads) == 3
    assert not any("results" in name for name in stored_files(media_root))


def test_an_oversized_result_is_refused(tryon, settings, provider, make_job):
    settings.TRYON = {**tryon, "RESULT_MAX_BYTES": 1000, "MAX_ATTEMPTS": 1}
    provider.result_body = result_png(size=(800, 800)) + b"\0" * 2000
    job = make_job()
    with Worker(worker_id="w") as worker:
        worker.run_pass()
        worker.run_pass()
    assert refreshed(job).error_code == "result_unavailable"


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
    worker._schedule_read_at = None  # both measured passes re-read the schedule
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


def test_a_pass_can_be_limited_to_some_jobs(worker, provider, make_job):
    chosen, other = make_job(), make_job()
    report = worker.run_pass(job_ids=[chosen.pk])
    assert report.claimed == 1
    assert refreshed(chosen).status == "queued"
    assert refreshed(other).status == "pending"


def test_the_worker_learns_how_long_the_provider_takes(worker, provider, make_job):
    job = make_job()
    provider.script_query("task-1", (200, contract.query_answer(1)))
    worker.run_pass()  # submit
    worker.run_pass()  # processing
    worker.run_pass()  # done
    job = refreshed(job)
    assert job.status == "succeeded"
    assert job.last_polled_at is not None
    assert 0 <= job.provider_seconds <= (job.finished_at - job.submitted_at).total_seconds()
    assert worker.schedule.samples("ailabapi:upper_body") == [job.provider_seconds]


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


def test_a_task_found_done_by_its_first_query_finished_just_before_it(worker, provider, make_job):
    submitted = timezone.now() - timedelta(seconds=20)
    make_job(
        status="queued", provider="ailabapi", provider_task_id="t-first", submitted_at=submitted
    )
    worker.run_pass()
    job = TryOnJob.objects.get()
    found = (job.finished_at - submitted).total_seconds()
    # Not halfway since the submit (10 s), but within a second before the query.
    assert found - 1.0 <= job.provider_seconds <= found
    # The schedule learns what is known: the task finished since the submit.
    (span,) = worker.schedule._spans["ailabapi:upper_body"]
    assert span == pytest.approx((0.0, found), abs=1e-3)


def test_a_duration_is_learned_with_the_span_it_is_known_within(worker, provider, make_job):
    submitted = timezone.now() - timedelta(seconds=20)
    make_job(
        status="processing",
        provider="ailabapi",
        provider_task_id="t-span",
        submitted_at=submitted,
        last_polled_at=submitted + timedelta(seconds=15),
    )
    worker.run_pass()
    job = TryOnJob.objects.get()
    found = (job.finished_at - submitted).total_seconds()
    (span,) = worker.schedule._spans["ailabapi:upper_body"]
    assert span == pytest.approx((15.0, found), abs=1e-3)
    assert job.provider_seconds == pytest.approx((15 + found) / 2, abs=1e-3)


def test_downloads_read_the_proxy_environment_once_per_host(monkeypatch):
    import requests.sessions

    from django_tryon.http import EnvironmentCachingSession

    calls = []
    real = requests.sessions.get_environ_proxies

    def counting(url, no_proxy=None):
        calls.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counting)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    session = EnvironmentCachingSession()
    for _ in range(3):
        merged = session.merge_environment_settings(
            "https://cdn.example/a.jpg", {}, True, None, None
        )
    assert merged["proxies"]["https"] == "http://proxy.internal:3128"
    assert len(calls) == 1
    session.merge_environment_settings("https://other.example/b.jpg", {}, True, None, None)
    assert len(calls) == 2
    # A caller's own proxies are never cached over.
    own = session.merge_environment_settings(
        "https://cdn.example/a.jpg", {"https": "http://mine:1"}, True, None, None
    )
    assert own["proxies"]["https"] == "http://mine:1"


def test_the_first_query_after_a_submit_follows_the_learned_schedule(
    tryon, settings, provider, make_job
):
    settings.TRYON = {**tryon, "POLL_INTERVAL": 5}
    with Worker(worker_id="planned") as worker:
        for seconds in (12.0, 12.2, 12.4, 12.6, 12.8, 13.0):
            worker.schedule.learn("ailabapi:upper_body", seconds, 0.2)
        worker._schedule_read_at = time.monotonic()  # keep what was learned above
        job = make_job()
        worker.run_pass()
    job = refreshed(job)
    assert job.status == "queued"
    first = (job.next_attempt_at - job.submitted_at).total_seconds()
    assert 11.5 < first < 13.5  # not the naive 5 s


def test_out_of_credits_fails_and_alerts_staff(worker, provider, make_job, caplog):
    job = make_job()
    provider.script_submit((429, contract.error_answer(429, "ERROR_NOT_ENOUGH_CREDITS")))
    worker.run_pass()
    job = refreshed(job)
    assert (job.status, job.error_code) == ("failed", "out_of_credits")
    assert any(r.levelname == "ERROR" and "out of credits" in r.message for r in caplog.records)


def test_sessions_look_for_netrc_credentials_once_per_host(monkeypatch, tmp_path):
    import requests

    from django_tryon import http

    netrc = tmp_path / "netrc"
    netrc.write_text("machine cdn.example login shop password s3cret\n")
    monkeypatch.setenv("NETRC", str(netrc))
    calls = []
    real = http.get_netrc_auth

    def counting(url, raise_errors=False):
        calls.append(url)
        return real(url, raise_errors=raise_errors)

    monkeypatch.setattr(http, "get_netrc_auth", counting)
    session = http.EnvironmentCachingSession()
    request = requests.Request("GET", "https://cdn.example/a.jpg")
    for _ in range(3):
        prepared = session.prepare_request(request)
        # The credentials are still sent, as Requests sends them from netrc.
        assert prepared.headers["Authorization"] == requests.auth._basic_auth_str("shop", "s3cret")
    assert len(calls) == 1
    assert request.auth is None  # the caller's request is left as it was
    other = session.prepare_request(requests.Request("GET", "https://other.example/b.jpg"))
    assert "Authorization" not in other.headers
    assert len(calls) == 2
    session.prepare_request(requests.Request("GET", "https://other.example/c.jpg"))
    assert len(calls) == 2
    # A request's own credentials are never replaced.
    own = session.prepare_request(
        requests.Request("GET", "https://cdn.example/a.jpg", auth=("me", "mine"))
    )
    assert own.headers["Authorization"] == requests.auth._basic_auth_str("me", "mine")


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
