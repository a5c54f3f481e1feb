"""fal's webhooks: the submit asks for one (``?fal_webhook=``), the view authenticates
the job's URL, the backend checks fal's Ed25519 signature and reads the body, the
worker stores the result without a status query.

The provider is the fal fake on loopback (tests/fake_provider.py), which publishes
the key its deliveries are signed with (``contract.FAL.signer``) as a JWKS; each
job is submitted by the real worker engine, so the URL a delivery goes to is the
one fal was given. Every refused delivery is a 4xx (or a 503 to come again) that
changes nothing.
"""

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from django_tryon import callbacks
from django_tryon.backends.fal_signature import forget_key_sets
from django_tryon.worker import Worker
from tests.support import contract
from tests.support.fake_provider import FakeProvider
from tests.support.jobs import refreshed, unchanged
from tests.support.webhooks import with_secret

ORIGIN = "https://shop.example.com"
FAL = contract.FAL


@pytest.fixture
def provider():
    forget_key_sets()
    fake = FakeProvider(FAL).start()
    yield fake
    fake.stop()
    forget_key_sets()


@pytest.fixture
def tryon(settings, provider):
    settings.TRYON = {
        "BACKEND": "django_tryon.backends.fal.FalBackend",
        "API_KEY": "fal-key",
        "BASE_URL": provider.url,
        "OPTIONS": FAL.backend_options(provider.url),
        "WEBHOOK_BASE_URL": ORIGIN,
        "POLL_INTERVAL": 0,
        "RETRY_BACKOFF": 0,
        "READ_TIMEOUT": 5,
        "IDLE_INTERVAL": 60,
    }
    return settings.TRYON


@pytest.fixture
def worker(tryon):
    with Worker(worker_id="fal-webhook-test") as worker:
        yield worker


def webhook_path(provider, index=-1):
    """The path of the ``fal_webhook`` URL fal was given with a submit."""
    url = parse_qs(urlsplit(provider.submit_urls[index]).query)["fal_webhook"][0]
    assert url.startswith(ORIGIN + "/tryon/webhooks/fal/")
    return urlsplit(url).path


@pytest.fixture
def submitted(worker, provider, make_job):
    """A job the worker submitted to fal with a webhook: ``(job, its webhook's path)``."""
    job = make_job()
    worker.run_pass()
    job = refreshed(job)
    assert (job.status, job.provider) == ("queued", "fal")
    return job, webhook_path(provider)


def result_url(provider, job):
    return f"{provider.url}/results/{job.provider_task_id}.png"


def done_body(job, url):
    body = contract.fal_webhook_body("OK", contract.fal_fashn_output(url), job.provider_task_id)
    return json.dumps(body).encode()


def deliver(path, body, headers=None, *, request_id=None, **signing):
    """POST ``body`` to ``path``, signed by fal's (the fake's) key unless ``headers``
    are given; ``request_id`` and ``signing`` change what is signed."""
    if headers is None:
        if request_id is None:
            request_id = json.loads(body)["request_id"]
        headers = FAL.signer.headers(body, request_id=request_id, **signing)
    return Client().post(path, data=body, content_type="application/json", headers=headers)


# The submit and an accepted delivery ------------------------------------------------


def test_a_submit_asks_fal_for_a_webhook_at_a_per_job_secret_url(submitted):
    job, path = submitted
    provider_name, job_id, secret = path.strip("/").split("/")[-3:]
    assert (provider_name, job_id) == ("fal", str(job.pk))
    assert job.callback_digest == callbacks.digest(secret)


def test_a_signed_result_is_stored_by_the_worker_without_a_status_query(
    submitted, worker, provider
):
    job, path = submitted

    answered = deliver(path, done_body(job, result_url(provider, job)))

    assert answered.status_code == 200, answered.content
    assert answered.json() == {"status": "recorded as succeeded"}
    assert refreshed(job).pushed_result_url == result_url(provider, job)
    report = worker.run_pass()
    job = refreshed(job)
    assert job.status == "succeeded"
    assert report.pushed == 1 and report.queried == 0
    assert (provider.queries, provider.results) == ([], [])  # neither status nor result asked
    assert provider.downloads == [f"/results/{job.provider_task_id}.png"]
    assert provider.jwks_fetches == 1


def test_a_signed_error_ends_the_job_with_the_model_s_reason(submitted):
    job, path = submitted
    error = contract.fal_model_error("face_detection_error", "model_image", "No face found.")
    body = contract.fal_webhook_body(
        "ERROR", error, job.provider_task_id, error="Invalid status code: 422"
    )

    answered = deliver(path, json.dumps(body).encode())

    assert answered.json() == {"status": "recorded as failed"}
    job = refreshed(job)
    assert (job.status, job.error_code, job.provider_error_code) == (
        "failed",
        "no_face",
        "face_detection_error",
    )


def test_a_result_fal_could_not_attach_is_asked_for_at_once(submitted, worker, provider):
    job, path = submitted
    body = {
        **contract.fal_webhook_body("OK", None, job.provider_task_id),
        "payload_error": "Payload too large",
    }

    answered = deliver(path, json.dumps(body).encode())

    assert answered.status_code == 200
    assert refreshed(job).next_attempt_at <= timezone.now()  # not the slow fallback
    worker.run_pass()
    job = refreshed(job)
    assert job.status == "succeeded"
    assert provider.queries == [job.provider_task_id]
    assert provider.results == [job.provider_task_id]


# Refused deliveries: a 4xx, nothing changed ------------------------------------------


def test_a_delivery_signed_with_another_key_is_refused(submitted, provider):
    job, path = submitted
    same = unchanged(job)
    body = done_body(job, result_url(provider, job))
    forged = contract.FalSigner().headers(body, request_id=job.provider_task_id)

    answered = deliver(path, body, forged)

    assert answered.status_code == 400
    assert "does not verify" in answered.json()["error"]
    assert same()


def test_a_delivery_signed_long_ago_is_refused(submitted, provider):
    job, path = submitted
    same = unchanged(job)

    answered = deliver(
        path, done_body(job, result_url(provider, job)), timestamp=int(time.time()) - 600
    )

    assert answered.status_code == 400
    assert "five minutes" in answered.json()["error"]
    assert same()


def test_a_body_changed_after_signing_is_refused(submitted, provider):
    job, path = submitted
    same = unchanged(job)
    signed = done_body(job, result_url(provider, job))
    headers = FAL.signer.headers(signed, request_id=job.provider_task_id)
    changed = done_body(job, "https://attacker.example.net/r.png")

    answered = deliver(path, changed, headers)

    assert answered.status_code == 400
    assert "does not verify" in answered.json()["error"]
    assert same()


def test_another_job_s_signed_delivery_replayed_at_this_job_s_url_is_refused(
    worker, provider, make_job
):
    first, second = make_job(), make_job()
    worker.run_pass()
    first, second = refreshed(first), refreshed(second)
    paths = {webhook_path(provider, i).split("/")[-3]: webhook_path(provider, i) for i in (0, 1)}
    # fal's genuine delivery for the first job, captured and sent to the second's URL.
    body = done_body(first, result_url(provider, first))
    headers = FAL.signer.headers(body, request_id=first.provider_task_id)
    same_first, same_second = unchanged(first), unchanged(second)

    answered = deliver(paths[str(second.pk)], body, headers)

    assert answered.status_code == 400
    assert "another task" in answered.json()["error"]
    assert same_first() and same_second()
    # The same delivery at its own job's URL is taken.
    assert deliver(paths[str(first.pk)], body, headers).status_code == 200


def test_a_signed_delivery_at_a_url_with_a_wrong_secret_fetches_no_key(submitted, provider):
    job, path = submitted
    same = unchanged(job)

    answered = deliver(with_secret(path, "x" * 43), done_body(job, result_url(provider, job)))

    assert answered.status_code == 403
    assert same()
    assert provider.jwks_fetches == 0  # a forger without the URL makes the shop fetch nothing


def test_a_delivery_that_cannot_be_verified_now_is_asked_again_later(
    submitted, provider, settings, tryon
):
    job, path = submitted
    same = unchanged(job)
    settings.TRYON = {**tryon, "OPTIONS": {"jwks_url": provider.url + "/no-keys-here"}}

    answered = deliver(path, done_body(job, result_url(provider, job)))

    assert answered.status_code == 503
    assert answered["Retry-After"]
    assert same()
