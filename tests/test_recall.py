"""A job canceled by staff or erased by the shopper is recalled at its provider where the
provider can (fal), off the request's thread, after the cancel is committed."""

import logging
import threading

import pytest

from django_tryon import recall
from django_tryon.admin.operations import cancel_jobs
from django_tryon.models import TryOnJob
from django_tryon.retention import erase_job
from tests.support import contract
from tests.support.fake_provider import FakeProvider
from tests.support.loopback import DrippingServer
from tests.support.threads import wait_for


@pytest.fixture
def fal(settings):
    provider = FakeProvider(contract.FAL).start()
    settings.TRYON = {
        "BACKEND": contract.FAL.backend,
        "API_KEY": "provider-key",
        "BASE_URL": provider.url,
        "READ_TIMEOUT": 5,
    }
    yield provider
    provider.stop()


def at_fal(make_job, task_id="req-1", status="queued"):
    return make_job(status=status, provider="fal", provider_task_id=task_id)


def test_staff_cancel_recalls_the_request_at_fal_without_waiting_for_it(
    fal, make_job, django_capture_on_commit_callbacks
):
    jobs = [at_fal(make_job, "req-1"), at_fal(make_job, "req-2", "processing"), make_job()]
    fal.cancel_gate = threading.Event()  # fal takes its time to answer
    with django_capture_on_commit_callbacks(execute=True):
        outcome = cancel_jobs(TryOnJob.objects.filter(pk__in=[job.pk for job in jobs]))
    # Returned while fal still holds the first cancel: the request's thread never waits.
    assert outcome.changed == 3
    assert set(TryOnJob.objects.values_list("status", flat=True)) == {"canceled"}
    wait_for(lambda: len(fal.cancels) == 1, 10, "the first recall")
    fal.cancel_gate.set()
    wait_for(lambda: sorted(fal.cancels) == ["req-1", "req-2"], 10, "both recalls")
    assert fal.others == []  # nothing else was asked of fal


def test_a_shoppers_erasure_of_a_job_in_flight_recalls_it_too(
    fal, make_job, django_capture_on_commit_callbacks
):
    job = at_fal(make_job, "req-9")
    with django_capture_on_commit_callbacks(execute=True):
        erase_job(job)
    wait_for(lambda: fal.cancels == ["req-9"], 10, "the recall")


def test_nothing_is_recalled_before_the_cancel_is_committed(
    fal, make_job, django_capture_on_commit_callbacks
):
    job = at_fal(make_job)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        cancel_jobs(TryOnJob.objects.filter(pk=job.pk))
    assert callbacks  # waiting for the commit
    assert fal.cancels == []


def test_jobs_not_at_the_provider_or_at_another_one_are_not_recalled(fal, make_job):
    pending = make_job()
    elsewhere = make_job(status="queued", provider="ailabapi", provider_task_id="t-1")
    assert recall.recall([pending.pk, elsewhere.pk]) is None
    assert fal.cancels == []


def test_a_provider_that_cannot_recall_is_not_asked(settings, provider, make_job):
    settings.TRYON = {"API_KEY": "k", "BASE_URL": provider.url}  # AILabAPI
    job = make_job(status="queued", provider="ailabapi", provider_task_id="t-1")
    assert recall.recall([job.pk]) is None
    assert provider.others == []


def test_a_recall_that_fails_is_logged_and_the_others_go_on(fal, make_job, caplog):
    first, second = at_fal(make_job, "req-1"), at_fal(make_job, "req-2")
    fal.cancel_answer = (500, contract.fal_request_error("internal_error"))
    with caplog.at_level(logging.WARNING, logger="django_tryon.recall"):
        future = recall.recall([first.pk, second.pk])
        assert future.result(timeout=30) == 0
    assert sorted(fal.cancels) == ["req-1", "req-2"]
    assert "was not recalled" in caplog.text
    assert "provider-key" not in caplog.text


def test_a_backend_that_cannot_be_built_fails_no_cancel(
    fal, make_job, settings, django_capture_on_commit_callbacks, caplog
):
    job = at_fal(make_job)
    settings.TRYON["OPTIONS"] = {"model": "fal-ai/unknown"}  # refused by the backend
    with (
        caplog.at_level(logging.ERROR, logger="django_tryon.recall"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        outcome = cancel_jobs(TryOnJob.objects.filter(pk=job.pk))
    assert outcome.changed == 1
    assert TryOnJob.objects.get(pk=job.pk).status == "canceled"
    assert "were not recalled" in caplog.text
    assert fal.cancels == []


def test_a_recall_at_a_provider_that_drips_its_answers_is_cut_off_at_each_calls_deadline(
    settings, make_job, caplog
):
    # Each answer a byte every 0.2 s (a minute in all), each byte within the 1 s timeout.
    body = b'{"padding": "' + b"x" * 300 + b'"}'
    head = b"HTTP/1.1 202 Accepted\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
    slow = DrippingServer(head, body, "body")
    settings.TRYON = {
        "BACKEND": contract.FAL.backend,
        "API_KEY": "provider-key",
        "BASE_URL": slow.url,
        "CONNECT_TIMEOUT": 1,
        "READ_TIMEOUT": 1,
    }
    first, second = at_fal(make_job, "req-1"), at_fal(make_job, "req-2")
    try:
        with caplog.at_level(logging.WARNING, logger="django_tryon.recall"):
            future = recall.recall([first.pk, second.pk])
            assert future.result(timeout=30) == 0  # 2 s each, not a minute each
    finally:
        slow.stop()
    assert slow.requests == 2
    assert caplog.text.count("longer than 2 s in all") == 2
