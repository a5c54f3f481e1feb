"""The worker's fenced writes: only while the lease holds, batched, exact about which landed."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_tryon.leased_writes import Increment, LeasedWrites
from django_tryon.models import TryOnJob
from django_tryon.transitions import submit_started

TOKEN = "worker-1:pass"


def _held(make_job, count, **fields):
    return [make_job(lease_owner=TOKEN, status="queued", **fields) for _ in range(count)]


def _writes():
    return LeasedWrites(TOKEN, clock=timezone.now)


def _recorder():
    seen = {}

    def on_done_for(job):
        return lambda recorded: seen.__setitem__(job.pk, recorded)

    return seen, on_done_for


def test_writes_queued_together_go_in_one_statement(make_job):
    jobs = _held(make_job, 5)
    writes, (seen, on_done_for) = _writes(), _recorder()
    for number, job in enumerate(jobs):
        writes.add(
            job, {"status": "processing", "provider_task_id": f"T-{number}"}, on_done_for(job)
        )

    with CaptureQueriesContext(connection) as captured:
        writes.flush()

    (query,) = captured.captured_queries
    assert "UPDATE" in query["sql"]
    assert seen == {job.pk: True for job in jobs}
    for number, job in enumerate(jobs):
        stored = TryOnJob.objects.get(pk=job.pk)
        assert (stored.status, stored.provider_task_id) == ("processing", f"T-{number}")
        assert (stored.lease_owner, stored.lease_expires_at) == ("", None)
        # The instance says what the row says, for signal receivers.
        assert (job.status, job.provider_task_id, job.lease_owner) == (
            "processing",
            f"T-{number}",
            "",
        )
        assert job.updated_at == stored.updated_at


def test_a_job_whose_lease_was_lost_is_left_alone_and_reported(make_job):
    kept, lost, also_kept = _held(make_job, 3)
    TryOnJob.objects.filter(pk=lost.pk).update(lease_owner="worker-2:pass")
    writes, (seen, on_done_for) = _writes(), _recorder()
    for job in (kept, lost, also_kept):
        writes.add(job, {"status": "processing"}, on_done_for(job))

    writes.flush()

    assert seen == {kept.pk: True, lost.pk: False, also_kept.pk: True}
    lost_row = TryOnJob.objects.get(pk=lost.pk)
    assert (lost_row.status, lost_row.lease_owner) == ("queued", "worker-2:pass")
    assert lost.status == "queued"  # the instance is not changed either
    assert TryOnJob.objects.get(pk=kept.pk).status == "processing"


def test_a_job_canceled_meanwhile_is_not_written(make_job):
    (job,) = _held(make_job, 1)
    TryOnJob.objects.filter(pk=job.pk).update(status="canceled")
    writes, (seen, on_done_for) = _writes(), _recorder()
    writes.add(
        job, {"status": "succeeded", "result_image": "tryon/results/x.jpg"}, on_done_for(job)
    )

    writes.flush()

    assert seen == {job.pk: False}
    stored = TryOnJob.objects.get(pk=job.pk)
    assert (stored.status, stored.result_image.name) == ("canceled", "")


def test_an_increment_adds_to_what_the_row_holds(make_job):
    (job,) = _held(make_job, 1, polls=2)
    TryOnJob.objects.filter(pk=job.pk).update(polls=5)  # the instance is out of date
    writes = _writes()
    writes.add(job, {"polls": Increment()})

    writes.flush()

    assert TryOnJob.objects.get(pk=job.pk).polls == 6


def test_each_set_of_columns_has_its_own_statement(make_job):
    first, second, third = _held(make_job, 3)
    writes = _writes()
    writes.add(first, {"status": "processing"})
    writes.add(second, {"status": "processing"})
    writes.add(third, {"status": "failed", "error_code": "expired"})

    with CaptureQueriesContext(connection) as captured:
        writes.flush()

    assert len(captured) == 2
    assert TryOnJob.objects.get(pk=third.pk).error_code == "expired"


def test_a_second_write_of_a_job_is_not_batched_with_the_first(make_job):
    (job,) = _held(make_job, 1)
    writes, (seen, on_done_for) = _writes(), _recorder()
    writes.add(job, {"status": "processing"}, on_done_for(job))
    outcomes = []
    writes.add(job, {"status": "failed"}, outcomes.append)

    writes.flush()

    # The first write ended the lease, so the second finds the job no longer held.
    assert seen == {job.pk: True}
    assert outcomes == [False]
    assert TryOnJob.objects.get(pk=job.pk).status == "processing"


def test_flushes_are_stamped_apart_even_on_a_stopped_clock(make_job):
    first, second = _held(make_job, 2)
    instant = timezone.now()
    writes = LeasedWrites(TOKEN, clock=lambda: instant)
    writes.add(first, {"status": "processing"})
    writes.flush()
    writes.add(second, {"status": "processing"})
    writes.flush()

    stamps = [TryOnJob.objects.get(pk=job.pk).updated_at for job in (first, second)]
    assert stamps == [instant, instant + datetime.timedelta(microseconds=1)]


def test_nothing_queued_sends_nothing(db):
    writes = _writes()
    with CaptureQueriesContext(connection) as captured:
        writes.flush()
    assert not writes
    assert len(captured) == 0


def test_a_mark_keeps_the_lease_and_skips_jobs_no_longer_held(make_job):
    held, lost, canceled = _held(make_job, 3)
    TryOnJob.objects.filter(pk=lost.pk).update(lease_owner="worker-2:pass")
    TryOnJob.objects.filter(pk=canceled.pk).update(status="canceled")
    moment = timezone.now()

    with CaptureQueriesContext(connection) as captured:
        marked = _writes().mark([held, lost, canceled], submit_started(moment, provider="ailabapi"))

    assert marked == [held]
    assert held.submit_started_at == moment
    assert len(captured) == 2  # the mark, then which jobs it reached
    rows = {job.pk: job for job in TryOnJob.objects.all()}
    assert (rows[held.pk].submit_started_at, rows[held.pk].lease_owner) == (moment, TOKEN)
    assert (held.provider, rows[held.pk].provider) == ("ailabapi", "ailabapi")
    assert rows[lost.pk].submit_started_at is None
    assert rows[canceled.pk].submit_started_at is None


def test_a_mark_of_every_held_job_is_one_statement(make_job):
    jobs = _held(make_job, 4)
    with CaptureQueriesContext(connection) as captured:
        marked = _writes().mark(jobs, submit_started(timezone.now(), provider="ailabapi"))
    assert marked == jobs
    assert len(captured) == 1


def test_no_write_is_taken_once_the_pass_is_over(make_job):
    # Every write is fenced on a pass's lease: once the pass ends, there is none.
    (job,) = _held(make_job, 1)
    writes = _writes()
    writes.add(job, {"status": "processing"})
    writes.flush()
    writes.close()
    for write in (
        lambda: writes.add(job, {"status": "failed"}),
        lambda: writes.mark([job], submit_started(timezone.now(), provider="ailabapi")),
        lambda: writes.claim(TryOnJob.objects.all(), now=timezone.now(), lease_seconds=60, limit=1),
    ):
        with pytest.raises(RuntimeError, match="within a pass"):
            write()
    assert TryOnJob.objects.get(pk=job.pk).status == "processing"
