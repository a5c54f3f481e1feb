"""The Celery hand-off and tasks, without a broker (tests/e2e/test_celery.py runs a
real worker on Redis): what is enqueued, when, and which messages end their chain."""

from datetime import timedelta
from importlib import util as importlib_util

import pytest
from django.core import checks
from django.utils import timezone
from kombu.exceptions import OperationalError

from django_tryon import tasks
from django_tryon.models import TryOnJob
from tests.support import contract
from tests.support.api import post_job


@pytest.fixture
def sent(monkeypatch):
    """The messages the code sends, as (job id, due) pairs."""
    messages = []
    monkeypatch.setattr(tasks, "enqueue", lambda job_id, due=None: messages.append((job_id, due)))
    return messages


@pytest.fixture
def celery_tryon(settings, provider):
    settings.TRYON = {
        "API_KEY": "test-key",
        "BASE_URL": provider.url,
        "POLL_INTERVAL": 5,
        "CELERY_ENABLED": True,
    }
    yield settings.TRYON
    tasks.close_worker()


def test_new_jobs_are_not_sent_when_celery_is_off(
    make_job, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        make_job()
    assert sent == []


def test_a_new_job_is_sent_once_its_row_is_committed(
    celery_tryon, make_job, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = make_job()
        assert sent == []  # not before the commit: a worker could not see the row
    assert len(callbacks) == 1
    assert sent == [(job.pk, None)]
    job.save()  # an update is not a new job
    assert len(sent) == 1


def test_a_step_schedules_the_next_one_when_it_is_due(celery_tryon, make_job, sent, provider):
    job, other = make_job(), make_job()

    assert tasks.process_job(str(job.pk)) == 1

    job.refresh_from_db()
    assert job.status == "queued"
    assert sent == [(str(job.pk), job.next_attempt_at)]
    assert job.next_attempt_at - job.submitted_at >= timedelta(seconds=4)
    assert TryOnJob.objects.get(pk=other.pk).status == "pending"
    assert len(provider.submits) == 1


def test_the_last_step_sends_nothing_more(celery_tryon, make_job, sent, provider):
    job = make_job(status="queued", provider_task_id="task-9")
    provider.script_query(
        "task-9", (200, contract.query_answer(2, f"{provider.url}/results/x.png"))
    )

    assert tasks.process_job(str(job.pk)) == 1

    assert TryOnJob.objects.get(pk=job.pk).status == "succeeded"
    assert sent == []


def test_a_message_that_claims_nothing_ends_its_chain(celery_tryon, make_job, sent, provider):
    now = timezone.now()
    leased = make_job(lease_owner="other:1", lease_expires_at=now + timedelta(minutes=5))
    not_due = make_job(next_attempt_at=now + timedelta(minutes=5))
    finished = make_job(status="succeeded")

    for job in (leased, not_due, finished):
        assert tasks.process_job(str(job.pk)) == 0

    assert sent == []
    assert provider.submits == []


def test_sweep_sends_overdue_jobs_with_a_free_lease(celery_tryon, make_job, sent):
    now = timezone.now()
    lost = make_job(next_attempt_at=now - timedelta(minutes=2))
    lost_lease = make_job(
        next_attempt_at=now - timedelta(minutes=2),
        lease_owner="dead:1",
        lease_expires_at=now - timedelta(seconds=1),
    )
    make_job(next_attempt_at=now - timedelta(seconds=5))  # its message is likely on its way
    make_job(
        next_attempt_at=now - timedelta(minutes=2),
        lease_owner="alive:1",
        lease_expires_at=now + timedelta(minutes=5),
    )
    make_job(status="failed", next_attempt_at=now - timedelta(minutes=2))

    assert tasks.sweep() == 2

    assert {job_id for job_id, _due in sent} == {lost.pk, lost_lease.pk}


def test_celery_enabled_without_celery_installed_is_a_check_error(settings, monkeypatch):
    settings.TRYON = {**settings.TRYON, "CELERY_ENABLED": True}
    real_find_spec = importlib_util.find_spec
    monkeypatch.setattr(
        importlib_util,
        "find_spec",
        lambda name, *args: None if name == "celery" else real_find_spec(name, *args),
    )
    errors = [e for e in checks.run_checks() if e.id == "django_tryon.E010"]
    assert len(errors) == 1
    assert "django-tryon[celery]" in errors[0].hint


@pytest.mark.django_db(transaction=True)
def test_a_broker_out_of_reach_fails_no_try_on(celery_tryon, client, garment, caplog, monkeypatch):
    """The shopper's try-on is committed before its message is sent: a broker that
    cannot be reached is logged, and the request still answers with the job (it was a
    500 after the job was made, and a shopper who tried again made another)."""
    attempts = []

    def refused(job_id, due=None):
        attempts.append(job_id)
        raise OperationalError("[Errno 111] Connection refused")

    monkeypatch.setattr(tasks, "enqueue", refused)
    with caplog.at_level("ERROR", logger="django_tryon.worker"):
        answer = post_job(client, garment)
    assert answer.status_code == 201, answer.content
    job = TryOnJob.objects.get(pk=answer.json()["id"])
    assert job.status == "pending" and attempts == [job.pk]
    (record,) = [r for r in caplog.records if r.name == "django_tryon.worker"]
    assert record.getMessage() == (
        "Could not send 1 job(s) to Celery (OperationalError: [Errno 111] Connection refused): "
        "the sweep (django_tryon.sweep) sends them once the broker answers. Check that the "
        "broker runs, and that the project loads its Celery app with its broker URL "
        "(docs/deployment.md)."
    )
