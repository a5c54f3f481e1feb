"""A shopper's try-on on FASHN with a real ``tryon_poll`` process on PostgreSQL, the
sandbox speaking FASHN on loopback, and the shop's webhook endpoint served by a
real server (``live_server``): by polling, by webhook, and with the webhook
faults a provider has (late, repeated and lost deliveries); and one on fal,
ended by its signed webhook."""

from collections import Counter

import pytest
from django.core.files.base import ContentFile

from django_tryon.models import TERMINAL_STATUSES, Garment, TryOnJob
from django_tryon.sandbox import SandboxServer, samples
from django_tryon.sandbox.fal import JWKS_PATH
from tests.support.api import job_url, photo, post_job
from tests.support.processes import process_env, wait_until

# The throttle counts in the cache, which outlives a test: each starts from zero.
pytestmark = pytest.mark.usefixtures("fresh_throttle_cache")

KEY = "fashn-e2e-key"


@pytest.fixture
def sandbox():
    with SandboxServer(protocol="fashn", api_key=KEY, processing_time=1.0, seed=11) as server:
        yield server


@pytest.fixture
def shirt():
    return Garment.objects.create(
        name="Breton T-shirt",
        clothes_type="upper_body",
        image=ContentFile(samples.encode(samples.garment_image("breton-tshirt")), name="shirt.jpg"),
    )


def settings_for(sandbox, webhook_base_url="", **more):
    return {
        "BACKEND": "django_tryon.backends.fashn.FashnBackend",
        "API_KEY": KEY,
        "BASE_URL": sandbox.url,
        "WEBHOOK_BASE_URL": webhook_base_url,
        "POLL_INTERVAL": 0.5,
        "IDLE_INTERVAL": 0.2,
        "CONCURRENCY": 4,
        "READ_TIMEOUT": 20,
        **more,
    }


def start_worker(processes, tryon, media_root):
    worker = processes.manage(
        "worker", "tryon_poll", "-v", "2", env=process_env(tryon=tryon, media_root=media_root)
    )
    worker.wait_for_output("backend fashn")
    return worker


def wait_for_the_end(count, timeout=60):
    wait_until(
        lambda: TryOnJob.objects.filter(status__in=TERMINAL_STATUSES).count() >= count,
        timeout=timeout,
        message=f"{count} job(s) ended",
    )


@pytest.mark.parametrize("mode", ["polling", "webhook"])
def test_a_try_on_on_fashn_by_polling_and_by_webhook(
    client, settings, sandbox, shirt, processes, media_root, live_server, mode
):
    tryon = settings_for(sandbox, live_server.url if mode == "webhook" else "")
    settings.TRYON = tryon
    worker = start_worker(processes, tryon, media_root)

    created = post_job(client, shirt, photo(samples.encode(samples.model_photo("ava"))))
    assert created.status_code == 201, created.content
    wait_for_the_end(1)
    assert worker.stop() == 0

    job = TryOnJob.objects.get()
    assert (job.status, job.provider, job.error_code) == ("succeeded", "fashn", "")
    assert client.get(job_url(job.pk)).json()["result_url"]
    stats = sandbox.stats()
    assert stats["accepted"]["download"] == 1
    if mode == "webhook":
        assert job.pushed_at is not None
        assert stats["webhooks"] == {"sent": 1, "accepted": 1}
        assert stats["accepted"].get("query", 0) == 0
        assert job.polls == 0
    else:
        assert job.callback_digest == ""
        assert stats["accepted"]["query"] >= 1
        assert "webhooks" not in stats or not stats["webhooks"]


def test_late_repeated_and_lost_webhooks_end_every_job_once(
    settings, sandbox, shirt, processes, media_root, live_server
):
    count = 12
    sandbox.configure(webhook_duplicate=0.5, webhook_missing=0.25, webhook_delay=0.3)
    # A lost webhook's job is found by the fallback query, three seconds on (a
    # delivered one, late by 0.3 s, comes well before). One submit at a time, so
    # the sandbox draws each task's faults in the same order on every run.
    tryon = settings_for(sandbox, live_server.url, WEBHOOK_FALLBACK_INTERVAL=3, CONCURRENCY=1)
    settings.TRYON = tryon
    jobs = [
        TryOnJob.objects.create(
            garment=shirt,
            person_image=ContentFile(samples.encode(samples.model_photo("ava")), name="p.jpg"),
        )
        for _ in range(count)
    ]
    worker = start_worker(processes, tryon, media_root)

    wait_for_the_end(count)
    assert worker.stop() == 0

    ended = TryOnJob.objects.filter(pk__in=[job.pk for job in jobs])
    assert Counter(ended.values_list("status", flat=True)) == {"succeeded": count}
    stats = sandbox.stats()
    lost = stats["faults"].get("webhook_missing", 0)
    assert 0 < lost < count  # (seed 11: some lost, most delivered)
    # Each result downloaded once, however often it was delivered.
    assert stats["accepted"]["download"] == count
    assert stats["faults"].get("webhook_duplicate", 0) > 0
    # Only the jobs whose webhook was lost were queried.
    pushed = ended.filter(pushed_at__isnull=False)
    assert pushed.count() == count - lost
    assert set(pushed.values_list("polls", flat=True)) == {0}
    assert ended.filter(pushed_at__isnull=True, polls__gte=1).count() == lost


def test_a_pushed_result_wakes_the_sleeping_worker(
    client, settings, sandbox, shirt, processes, media_root, live_server
):
    # An idle sleep far longer than the test: only the delivery's NOTIFY, at its
    # commit, can make the worker take the result in time.
    tryon = settings_for(sandbox, live_server.url, IDLE_INTERVAL=60)
    settings.TRYON = tryon
    worker = start_worker(processes, tryon, media_root)
    worker.wait_for_output("Listening for new jobs")
    worker.wait_for_output("Pass: nothing due")  # its first pass is over: it sleeps

    created = post_job(client, shirt, photo(samples.encode(samples.model_photo("ava"))))
    assert created.status_code == 201, created.content
    wait_for_the_end(1, timeout=30)
    assert worker.stop() == 0

    job = TryOnJob.objects.get()
    assert job.status == "succeeded"
    assert job.polls == 0
    assert (job.finished_at - job.pushed_at).total_seconds() < 5


def test_a_try_on_on_fal_ends_by_its_signed_webhook(
    client, settings, shirt, processes, media_root, live_server
):
    # The sandbox speaks fal's queue and signs each delivery with its own key,
    # published as fal publishes its keys; the backend is pointed at that JWKS.
    with SandboxServer(protocol="fal", api_key=KEY, processing_time=1.0, seed=11) as sandbox:
        tryon = {
            **settings_for(sandbox, live_server.url),
            "BACKEND": "django_tryon.backends.fal.FalBackend",
            "OPTIONS": {"jwks_url": sandbox.url + JWKS_PATH},
        }
        settings.TRYON = tryon
        worker = processes.manage(
            "worker", "tryon_poll", "-v", "2", env=process_env(tryon=tryon, media_root=media_root)
        )
        worker.wait_for_output("backend fal")

        created = post_job(client, shirt, photo(samples.encode(samples.model_photo("ava"))))
        assert created.status_code == 201, created.content
        wait_for_the_end(1)
        assert worker.stop() == 0
        stats = sandbox.stats()

    job = TryOnJob.objects.get()
    assert (job.status, job.provider, job.error_code) == ("succeeded", "fal", "")
    assert client.get(job_url(job.pk)).json()["result_url"]
    assert job.pushed_at is not None and job.polls == 0
    assert stats["webhooks"] == {"sent": 1, "accepted": 1}
    # Neither a status query nor a result request: the signed delivery carried it.
    assert stats["accepted"].get("query", 0) == 0
    assert stats["accepted"].get("result", 0) == 0
    assert (stats["accepted"]["submit"], stats["accepted"]["download"]) == (1, 1)
