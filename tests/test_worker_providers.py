"""The worker with fal's queue and Vertex AI's synchronous predict, over loopback fakes of
their protocols: a shopper's job from pending to a stored result, and a long predict that
does not hold the worker's other jobs up."""

import time

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from django_tryon.models import TryOnJob
from django_tryon.quota import charge, used
from django_tryon.worker import Worker
from tests.support import contract
from tests.support.fake_provider import FakeProvider
from tests.support.google_credentials import CLIENT_EMAIL, assertion_claims, service_account_file
from tests.support.loopback import DrippingServer
from tests.support.threads import in_thread, wait_for


def run_settings(settings, backend, url, **extra):
    settings.TRYON = {
        "BACKEND": backend,
        "API_KEY": "provider-key",
        "BASE_URL": url,
        "POLL_INTERVAL": 0,
        "RETRY_BACKOFF": 0,
        "CONCURRENCY": 2,
        "READ_TIMEOUT": 5,
        "IDLE_INTERVAL": 60,
        **extra,
    }


@pytest.fixture
def fal(settings):
    provider = FakeProvider(contract.FAL).start()
    run_settings(settings, contract.FAL.backend, provider.url)
    yield provider
    provider.stop()


@pytest.fixture
def vertex(settings, monkeypatch, tmp_path):
    provider = FakeProvider(contract.VERTEX).start()
    key_file = service_account_file(
        tmp_path / "key.json",
        token_uri=provider.url + contract.VERTEX_TOKEN_PATH,
        project_id=contract.VERTEX_PROJECT,
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    run_settings(settings, contract.VERTEX.backend, provider.url)
    yield provider
    provider.stop()


def refreshed(job):
    job.refresh_from_db()
    return job


def test_a_job_on_fal_is_queued_polled_and_its_result_stored(fal, make_job):
    job = make_job()
    fal.script_query("task-1", contract.FAL.in_flight("task-1"))
    with Worker(worker_id="fal") as worker:
        worker.run_pass()  # submitted
        assert (refreshed(job).status, job.provider, job.provider_task_id) == (
            "queued",
            "fal",
            "task-1",
        )
        worker.run_pass()  # in progress
        assert refreshed(job).status == "processing"
        report = worker.run_pass()  # completed: the result is read, then downloaded
    assert report.succeeded == 1
    assert refreshed(job).status == "succeeded"
    assert fal.queries == ["task-1", "task-1"] and fal.results == ["task-1"]
    assert fal.downloads == ["/results/task-1.png"]
    with default_storage.open(job.result_image.name, "rb") as stored:
        assert stored.read() == fal.result_body


def test_a_job_on_vertex_is_done_in_one_predict(vertex, make_job):
    job = make_job()
    with Worker(worker_id="vertex") as worker:
        report = worker.run_pass()
    assert (report.submitted, report.succeeded, report.queried) == (1, 1, 0)
    job = refreshed(job)
    assert (job.status, job.provider) == ("succeeded", "vertex")
    assert job.provider_task_id.startswith("vertex-")
    with default_storage.open(job.result_image.name, "rb") as stored:
        assert stored.read() == contract.VERTEX.picture
    assert vertex.downloads == []  # the picture came in the answer
    (token_request,) = vertex.token_requests  # one token, signed with the key file's key
    assert assertion_claims(token_request["assertion"][0])["iss"] == CLIENT_EMAIL


def test_a_picture_vertex_filtered_fails_the_job_readably_and_gives_the_credit_back(
    vertex, make_job
):
    charge("guest:abc", limit=5)
    job = make_job(quota_key="guest:abc", quota_day=timezone.localdate())
    vertex.script_submit(contract.VERTEX.filtered())
    with Worker(worker_id="vertex") as worker:
        worker.run_pass()
    job = refreshed(job)
    assert (job.status, job.error_code) == ("failed", "result_filtered")
    assert "safety filter" in job.error_message
    assert not job.result_image
    assert used("guest:abc") == 0  # not the shopper's fault: their try-on is given back


def test_a_long_predict_does_not_hold_up_the_jobs_that_come_meanwhile(vertex, make_job, settings):
    # A start window of 3 s after each claim: a job claimed during the held predict
    # still starts, because its window counts from its own claim, not the pass's.
    settings.TRYON["IDLE_INTERVAL"] = 0.05
    with Worker(worker_id="w") as probe:
        budget = probe.call_budget
    settings.TRYON["LEASE_SECONDS"] = budget + 5 + 3
    first = make_job()
    vertex.hold_submits(1)
    with Worker(worker_id="w") as worker:
        result = in_thread(worker.run_pass)
        try:
            wait_for(lambda: len(vertex.submits) == 1, 30, "the first predict")
            time.sleep(4)  # past the first claim's start window
            new = make_job()  # a shopper's try-on, while the first predict runs
            wait_for(
                lambda: TryOnJob.objects.filter(pk=new.pk, status="succeeded").exists(),
                timeout=30,
                what="the new job's picture",
            )
            assert refreshed(first).status == "pending"  # still at the provider
        finally:
            vertex.release_submits.set()
            report = result(timeout=60)
    assert (report.claimed, report.submitted, report.succeeded) == (2, 2, 2)
    assert refreshed(first).status == "succeeded"
    assert first.finished_at > refreshed(new).finished_at
    assert first.finished_at <= timezone.now()


def test_a_vertex_token_service_that_drips_fails_the_try_transiently_and_the_job_retries(
    settings, monkeypatch, tmp_path, make_job
):
    """Its answer a byte every 0.2 s: cut off at the token's deadline (1 s + 1 s), no
    predict sent, the job waiting for its next try with the reason."""
    provider = FakeProvider(contract.VERTEX).start()
    body = b'{"access_token": "ya29.slow", "expires_in": 3600, "token_type": "Bearer"}'
    head = b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
    token_service = DrippingServer(head, body, "body")
    key_file = service_account_file(
        tmp_path / "key.json",
        token_uri=token_service.url + contract.VERTEX_TOKEN_PATH,
        project_id=contract.VERTEX_PROJECT,
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    run_settings(settings, contract.VERTEX.backend, provider.url, CONNECT_TIMEOUT=1, READ_TIMEOUT=1)
    charge("guest:abc", limit=5)
    job = make_job(quota_key="guest:abc", quota_day=timezone.localdate())
    try:
        with Worker(worker_id="vertex") as worker:
            report = worker.run_pass()
    finally:
        token_service.stop()
        provider.stop()
    job = refreshed(job)
    assert (job.status, job.attempts, report.succeeded) == ("pending", 1, 0)
    assert "token service took longer than 2 s in all" in job.error_detail
    assert job.submit_started_at is None  # nothing reached Vertex: tried again in full
    assert provider.submits == [] and token_service.requests == 1
    assert used("guest:abc") == 1  # the shopper's try-on, charged once, still held
