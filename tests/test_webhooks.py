"""Webhooks: the submit asks for one, the view takes a delivery, the worker finishes
the job from it without querying the provider.

The provider is the FASHN fake on loopback (tests/fake_provider.py); each job is
submitted by the real worker engine, so the URL a delivery goes to is the one
the provider was given.
"""

import json
import logging
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from django_tryon import callbacks, transitions
from django_tryon.models import DailyUsage, TryOnJob
from django_tryon.worker import Worker
from tests.support import contract
from tests.support.fake_provider import FakeProvider
from tests.support.jobs import refreshed, unchanged
from tests.support.media import stored_files
from tests.support.webhooks import with_secret

ORIGIN = "https://shop.example.com"
FASHN = "django_tryon.backends.fashn.FashnBackend"


@pytest.fixture
def provider():
    fake = FakeProvider(contract.FASHN).start()
    yield fake
    fake.stop()


@pytest.fixture
def tryon(settings, provider):
    settings.TRYON = {
        "BACKEND": FASHN,
        "API_KEY": "fashn-key",
        "BASE_URL": provider.url,
        "WEBHOOK_BASE_URL": ORIGIN,
        "POLL_INTERVAL": 0,
        "RETRY_BACKOFF": 0,
        "READ_TIMEOUT": 5,
        "IDLE_INTERVAL": 60,
    }
    return settings.TRYON


@pytest.fixture
def worker(tryon):
    with Worker(worker_id="webhook-test") as worker:
        yield worker


def webhook_url_sent(provider, index=-1):
    """The ``webhook_url`` the provider was given with a submit."""
    query = parse_qs(urlsplit(provider.submit_urls[index]).query)
    return query["webhook_url"][0]


@pytest.fixture
def submitted(worker, provider, make_job):
    """A job the worker submitted with a webhook: ``(job, the path of its webhook URL)``."""
    job = make_job()
    worker.run_pass()
    job = refreshed(job)
    assert job.status == "queued"
    url = webhook_url_sent(provider)
    assert url.startswith(ORIGIN + "/tryon/webhooks/fashn/")
    return job, urlsplit(url).path


def deliver(path, body, client=None, **extra):
    client = client or Client()
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, data=data, content_type="application/json", **extra)


def done(job, url="https://cdn.fashn.ai/123/output_0.png"):
    return contract.fashn_status_answer(job.provider_task_id, "completed", output=[url])


# The submit ----------------------------------------------------------------------


def test_a_submit_asks_for_a_webhook_at_a_per_job_secret_url(submitted, provider):
    job, path = submitted
    _, _, provider_name, job_id, secret, _ = path.split("/", 6)[1:]
    assert (provider_name, job_id) == ("fashn", str(job.pk))
    assert len(secret) >= 43
    # Only the secret's digest is kept, never the secret.
    assert job.callback_digest == callbacks.digest(secret)
    row = TryOnJob.objects.values().get(pk=job.pk)
    assert secret not in json.dumps(list(row.values()), default=str)


def test_each_submit_gets_its_own_secret(worker, provider, make_job):
    first, second = make_job(), make_job()
    worker.run_pass()
    secrets = {urlsplit(webhook_url_sent(provider, i)).path.split("/")[-2] for i in (0, 1)}
    assert len(secrets) == 2
    assert refreshed(first).callback_digest != refreshed(second).callback_digest


def test_with_a_webhook_the_job_is_queried_only_as_a_slow_fallback(tryon, settings, submitted):
    job, _ = submitted
    wait = (job.next_attempt_at - job.submitted_at).total_seconds()
    assert wait == pytest.approx(60, abs=1)  # WEBHOOK_FALLBACK_INTERVAL, not POLL_INTERVAL (0)


def test_a_missed_webhook_still_ends_the_job_by_the_fallback_query(submitted, worker, provider):
    job, _ = submitted
    TryOnJob.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())
    worker.run_pass()
    job = refreshed(job)
    assert job.status == "succeeded"
    assert provider.queries == [job.provider_task_id]
    assert job.polls == 1


def test_a_fallback_query_finding_the_task_running_comes_back_after_the_fallback_interval(
    submitted, worker, provider
):
    job, _ = submitted
    provider.script_query(job.provider_task_id, contract.FASHN.in_flight(job.provider_task_id))
    TryOnJob.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())
    worker.run_pass()
    job = refreshed(job)
    assert job.status == "processing"
    wait = (job.next_attempt_at - job.last_polled_at).total_seconds()
    assert wait == pytest.approx(60, abs=1)


def test_without_the_setting_no_webhook_is_asked(tryon, settings, provider, make_job):
    settings.TRYON = {**tryon, "WEBHOOK_BASE_URL": ""}
    job = make_job()
    with Worker(worker_id="no-webhook") as worker:
        worker.run_pass()
    assert "webhook_url" not in provider.submit_urls[0]
    assert refreshed(job).callback_digest == ""


def test_a_backend_that_cannot_push_is_polled_whatever_the_setting(settings, make_job):
    ailab = FakeProvider().start()
    try:
        settings.TRYON = {
            "API_KEY": "k",
            "BASE_URL": ailab.url,
            "WEBHOOK_BASE_URL": ORIGIN,
            "POLL_INTERVAL": 0,
            "IDLE_INTERVAL": 60,
        }
        job = make_job()
        with Worker(worker_id="ailab") as worker:
            worker.run_pass()
            worker.run_pass()
        job = refreshed(job)
        assert job.status == "succeeded"
        assert job.callback_digest == ""
        assert "webhook" not in ailab.submit_urls[0]
    finally:
        ailab.stop()


# A delivery that is accepted ----------------------------------------------------


def test_a_result_pushed_is_stored_by_the_worker_without_a_query(
    submitted, worker, provider, media_root
):
    job, path = submitted
    result = f"{provider.url}/results/{job.provider_task_id}.png"

    answered = deliver(path, done(job, result))

    assert answered.status_code == 200
    assert answered.json() == {"status": "recorded as succeeded"}
    pushed = refreshed(job)
    assert pushed.status == "queued"  # the worker stores the result, not the request
    assert pushed.pushed_result_url == result
    assert pushed.next_attempt_at <= timezone.now()
    assert provider.downloads == []

    report = worker.run_pass()

    job = refreshed(job)
    assert job.status == "succeeded"
    assert report.pushed == 1 and report.queried == 0
    assert provider.queries == []  # zero queries for a job whose webhook arrived
    assert job.polls == 0
    assert provider.downloads == [f"/results/{job.provider_task_id}.png"]
    assert any("results" in name for name in stored_files(media_root))
    assert job.provider_seconds == pytest.approx(
        (pushed.pushed_at - job.submitted_at).total_seconds()
    )


def test_a_repeated_delivery_changes_nothing(submitted):
    job, path = submitted
    deliver(path, done(job))
    first = refreshed(job)

    again = deliver(path, done(job, "https://cdn.fashn.ai/other.png"))

    assert again.status_code == 200
    assert again.json() == {"status": "already recorded"}
    assert refreshed(job).pushed_at == first.pushed_at
    assert refreshed(job).pushed_result_url == first.pushed_result_url


def test_a_late_delivery_after_the_job_ended_changes_nothing(submitted, worker, provider):
    job, path = submitted
    deliver(path, done(job, f"{provider.url}/results/{job.provider_task_id}.png"))
    worker.run_pass()
    finished = refreshed(job)
    assert finished.status == "succeeded"

    late = deliver(
        path, contract.fashn_failed_answer(job.provider_task_id, "PipelineError", "Late.")
    )

    assert late.status_code == 200
    assert late.json() == {"status": "already recorded"}
    job = refreshed(job)
    assert (job.status, job.error_code, job.updated_at) == ("succeeded", "", finished.updated_at)


def test_a_pushed_failure_ends_the_job_and_gives_the_credit_back_when_not_the_shoppers(
    submitted, django_capture_on_commit_callbacks
):
    job, path = submitted
    DailyUsage.objects.create(key="guest:s", day=timezone.localdate(), count=1)
    TryOnJob.objects.filter(pk=job.pk).update(quota_key="guest:s", quota_day=timezone.localdate())

    with django_capture_on_commit_callbacks(execute=True):
        answered = deliver(
            path, contract.fashn_failed_answer(job.provider_task_id, "PipelineError", "Boom.")
        )

    assert answered.status_code == 200
    assert answered.json() == {"status": "recorded as failed"}
    job = refreshed(job)
    assert (job.status, job.error_code, job.provider_error_code) == (
        "failed",
        "task_failed",
        "PipelineError",
    )
    assert "Boom." in job.error_detail
    assert job.lease_owner == ""
    assert DailyUsage.objects.get().count == 0


def test_a_pushed_photo_failure_is_the_shoppers_to_fix(submitted):
    job, path = submitted
    deliver(
        path,
        contract.fashn_failed_answer(
            job.provider_task_id, "PoseError", "Unable to detect body pose in the model image."
        ),
    )
    job = refreshed(job)
    assert (job.status, job.error_code) == ("failed", "pose_not_detected")


def test_a_pushed_state_still_running_moves_the_job_and_keeps_the_fallback(submitted):
    job, path = submitted
    answered = deliver(path, contract.fashn_status_answer(job.provider_task_id, "processing"))
    assert answered.json() == {"status": "recorded as processing"}
    job = refreshed(job)
    assert job.status == "processing"
    assert job.next_attempt_at - timezone.now() > timedelta(seconds=50)


def test_the_same_running_state_again_changes_nothing(submitted):
    job, path = submitted
    running = contract.fashn_status_answer(job.provider_task_id, "processing")
    deliver(path, running)
    same = unchanged(job)
    again = deliver(path, running)
    assert again.json() == {"status": "already recorded"}
    assert same()


def test_a_push_ends_the_lease_of_a_worker_querying_the_job_meanwhile(submitted):
    job, path = submitted
    TryOnJob.objects.filter(pk=job.pk).update(
        lease_owner="other:1", lease_expires_at=timezone.now() + timedelta(minutes=5)
    )
    deliver(path, done(job))
    job = refreshed(job)
    assert job.lease_owner == "" and job.lease_expires_at is None
    assert TryOnJob.objects.due().filter(pk=job.pk).exists()


def test_a_delivery_needs_no_csrf_token_and_starts_no_session(submitted):
    job, path = submitted
    answered = deliver(path, done(job), client=Client(enforce_csrf_checks=True))
    assert answered.status_code == 200
    assert "Set-Cookie" not in answered.headers
    assert not answered.cookies


def test_a_delivery_hands_the_job_to_celery_once_committed(
    submitted, settings, tryon, monkeypatch, django_capture_on_commit_callbacks
):
    settings.TRYON = {**tryon, "CELERY_ENABLED": True}
    sent = []
    monkeypatch.setattr("django_tryon.tasks.enqueue", lambda job_id, due=None: sent.append(job_id))
    job, path = submitted
    with django_capture_on_commit_callbacks(execute=True):
        deliver(path, done(job))
    assert sent == [job.pk]


# Deliveries refused: nothing changes -----------------------------------------------


def with_job(path, job_id):
    parts = path.split("/")
    parts[-3] = str(job_id)
    return "/".join(parts)


@pytest.mark.parametrize(
    "forge",
    [
        lambda path: with_secret(path, "x" * 43),
        lambda path: with_secret(path, path.split("/")[-2][:-1]),
        lambda path: with_secret(path, "a" * 5000),
        lambda path: with_secret(path, "%C3%A9%00%ED%A0%80"),
        lambda path: with_job(path, "00000000-0000-4000-8000-000000000000"),
        lambda path: with_job(path, "not-a-uuid"),
        lambda path: with_job(path, "%E2%80%AE" + path.split("/")[-3]),
    ],
    ids=[
        "wrong secret",
        "secret cut short",
        "huge secret",
        "escaped bytes in the secret",
        "unknown job",
        "malformed job id",
        "escaped bytes in the job id",
    ],
)
def test_a_forged_delivery_is_refused(submitted, forge, caplog):
    job, path = submitted
    same = unchanged(job)
    caplog.set_level(logging.WARNING, logger="django_tryon.webhooks")

    answered = deliver(forge(path), done(job))

    assert answered.status_code == 403
    assert "not valid" in answered.json()["error"]
    assert same()
    assert path.split("/")[-2] not in caplog.text  # the real secret is never logged


def test_one_jobs_url_authenticates_nothing_about_another(worker, provider, make_job):
    first, second = make_job(), make_job()
    worker.run_pass()
    first, second = refreshed(first), refreshed(second)
    by_job = {}
    for i in (0, 1):
        path = urlsplit(webhook_url_sent(provider, i)).path
        by_job[path.split("/")[-3]] = path
    first_path = by_job[str(first.pk)]
    same = unchanged(second)

    # The first job's secret on the second job's id.
    answered = deliver(with_job(first_path, second.pk), done(second))

    assert answered.status_code == 403
    assert same()


def test_a_delivery_for_another_task_replayed_at_a_jobs_url_is_refused(submitted):
    job, path = submitted
    same = unchanged(job)
    answered = deliver(
        path, contract.fashn_status_answer("another-task", "completed", ["https://x.test/r.png"])
    )
    assert answered.status_code == 400
    assert "another task" in answered.json()["error"]
    assert same()


MALFORMED = {
    "not json": b"<xml/>",
    "a json list": b"[]",
    "no id": json.dumps({"status": "completed", "output": ["https://x.test/r.png"]}).encode(),
    "unknown status": None,
    "completed without output": None,
    "output not a URL": None,
    "nested too deep": b"[" * 50_000 + b"]" * 50_000,
}


def malformed_body(kind, job):
    if kind == "unknown status":
        return contract.fashn_status_answer(job.provider_task_id, "exploded")
    if kind == "completed without output":
        return contract.fashn_status_answer(job.provider_task_id, "completed", output=[])
    if kind == "output not a URL":
        return contract.fashn_status_answer(job.provider_task_id, "completed", ["javascript:x"])
    return MALFORMED[kind]


@pytest.mark.parametrize("kind", MALFORMED)
def test_a_malformed_delivery_is_refused(submitted, kind):
    job, path = submitted
    same = unchanged(job)
    answered = deliver(path, malformed_body(kind, job))
    assert answered.status_code in (400, 413)
    assert answered.json()["error"]
    assert same()


def test_an_oversized_delivery_is_refused_unread(submitted):
    job, path = submitted
    same = unchanged(job)
    body = json.dumps({**done(job), "pad": "x" * 70_000}).encode()
    answered = deliver(path, body)
    assert answered.status_code == 413
    assert same()


def test_a_result_url_longer_than_any_real_one_is_refused(submitted):
    job, path = submitted
    same = unchanged(job)
    answered = deliver(path, done(job, "https://cdn.fashn.ai/" + "a" * 5000 + ".png"))
    assert answered.status_code == 400
    assert same()


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "head", "options"])
def test_another_method_is_refused(submitted, method, caplog):
    job, path = submitted
    same = unchanged(job)
    answered = getattr(Client(), method)(path)
    assert answered.status_code == 405
    assert answered.headers["Allow"] == "POST"
    assert same()
    assert path.split("/")[-2] not in caplog.text


def test_a_delivery_before_the_submit_is_recorded_is_asked_again_later(tryon, make_job, provider):
    job = make_job()
    TryOnJob.objects.filter(pk=job.pk).update(submit_started_at=timezone.now())
    path = f"/tryon/webhooks/fashn/{job.pk}/{callbacks.new_secret()}/"

    answered = deliver(
        path, contract.fashn_status_answer("task-1", "completed", ["https://x.test/r.png"])
    )

    assert answered.status_code == 503
    assert answered.headers["Retry-After"] == "5"
    assert refreshed(job).pushed_at is None


def test_a_job_made_by_another_provider_is_refused(submitted):
    job, path = submitted
    TryOnJob.objects.filter(pk=job.pk).update(provider="ailabapi")
    same = unchanged(job)
    answered = deliver(path, done(job))
    assert answered.status_code == 403
    assert same()


def test_a_shop_no_longer_on_the_provider_refuses_its_deliveries(submitted, settings, tryon):
    job, path = submitted
    settings.TRYON = {**tryon, "BACKEND": "django_tryon.backends.ailab.AILabBackend"}
    same = unchanged(job)
    answered = deliver(path, done(job))
    assert answered.status_code == 404
    assert same()


# The pushed result URL is no more trusted than a queried one ---------------------------


def test_a_pushed_result_url_on_a_forbidden_host_fails_the_job_without_a_request(
    submitted, worker, provider, media_root
):
    job, path = submitted
    bystander = FakeProvider().start()
    try:
        port = bystander.server.server_address[1]
        # Plain http to a host that is neither the provider's nor in RESULT_HOSTS.
        deliver(path, done(job, f"http://localhost:{port}/results/x.png"))
        worker.run_pass()
        job = refreshed(job)
        assert (job.status, job.error_code) == ("failed", "result_unavailable")
        assert bystander.downloads == []
        assert provider.queries == []
        assert not any("results" in name for name in stored_files(media_root))
    finally:
        bystander.stop()


# A job sent back by staff starts again with a new secret -------------------------------


def test_a_job_sent_back_forgets_its_webhook(submitted, worker, provider):
    job, path = submitted
    deliver(path, contract.fashn_failed_answer(job.provider_task_id, "PipelineError"))
    now = timezone.now()
    assert transitions.apply([job.pk], transitions.sent_back(now), now=now)
    job = refreshed(job)
    assert (job.callback_digest, job.pushed_at, job.pushed_result_url) == ("", None, "")

    # The old URL no longer works; the new submit has its own.
    assert deliver(path, done(job)).status_code == 403
    worker.run_pass()
    assert urlsplit(webhook_url_sent(provider)).path != path


def test_a_failure_inside_the_view_is_a_500_that_never_logs_the_secret(
    submitted, monkeypatch, caplog
):
    job, path = submitted

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("django_tryon.transitions.apply", broken)
    answered = deliver(path, done(job))
    assert answered.status_code == 500
    assert "the database went away" in caplog.text  # staff see the cause
    assert path.split("/")[-2] not in caplog.text
    assert refreshed(job).pushed_at is None


def test_a_pushed_result_wakes_tryon_poll_and_nothing_else_does(submitted, monkeypatch):
    job, path = submitted
    woken = []
    monkeypatch.setattr("django_tryon.queueing.announce_new_jobs", woken.append)
    running = contract.fashn_status_answer(job.provider_task_id, "processing")
    deliver(path, running)
    assert woken == []  # still running: nothing for the worker to do
    deliver(path, done(job))
    assert len(woken) == 1  # the result: the worker is woken at the commit
    deliver(path, done(job))
    assert len(woken) == 1  # a repeat changes nothing, wakes nobody
