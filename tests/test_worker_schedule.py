"""How the worker learns how long the provider takes, and plans its queries from it
(the schedule itself: tests/test_schedule.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from django_tryon.models import TryOnJob
from django_tryon.worker import Worker
from tests.support import contract
from tests.support.jobs import refreshed


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
    (span,) = worker.schedule.spans("ailabapi:upper_body")
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
    (span,) = worker.schedule.spans("ailabapi:upper_body")
    assert span == pytest.approx((15.0, found), abs=1e-3)
    assert job.provider_seconds == pytest.approx((15 + found) / 2, abs=1e-3)


def test_the_first_query_after_a_submit_follows_the_learned_schedule(
    tryon, settings, provider, make_job
):
    settings.TRYON = {**tryon, "POLL_INTERVAL": 5}
    with Worker(worker_id="planned") as worker:
        worker.refresh_schedule()  # read now: the pass below keeps what is learned here
        for seconds in (12.0, 12.2, 12.4, 12.6, 12.8, 13.0):
            worker.schedule.learn("ailabapi:upper_body", seconds, 0.2)
        job = make_job()
        worker.run_pass()
    job = refreshed(job)
    assert job.status == "queued"
    first = (job.next_attempt_at - job.submitted_at).total_seconds()
    assert 11.5 < first < 13.5  # not the naive 5 s
