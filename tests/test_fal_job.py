"""A shopper's try-on on fal, from the upload to the stored result: the shopper API, the
real worker engine and the sandbox speaking fal's queue on loopback; and a shopper's
erasure of a try-on still queued, recalled at fal."""

import io
import time

import pytest
from PIL import Image

from django_tryon.errors import message_for
from django_tryon.models import DailyUsage, TryOnJob
from django_tryon.sandbox import SandboxServer
from django_tryon.sandbox.fal import JWKS_PATH
from django_tryon.worker import Worker
from tests.support.api import job_url, post_job
from tests.support.jobs import run_until_final
from tests.support.samples import breton_shirt, shopper_photo

# The throttle counts in the cache, which outlives a test: each starts from zero.
pytestmark = pytest.mark.usefixtures("fresh_throttle_cache")

KEY = "fal-job-key"


@pytest.fixture
def shirt(db):
    return breton_shirt()


@pytest.fixture
def sandbox():
    with SandboxServer(protocol="fal", api_key=KEY, processing_time=0.2, seed=5) as server:
        yield server


@pytest.fixture
def tryon(settings, sandbox):
    settings.TRYON = {
        "BACKEND": "django_tryon.backends.fal.FalBackend",
        "API_KEY": KEY,
        "BASE_URL": sandbox.url,
        "OPTIONS": {"mode": "performance", "jwks_url": sandbox.url + JWKS_PATH},
        "POLL_INTERVAL": 0,
        "RETRY_BACKOFF": 0,
        "CONCURRENCY": 2,
        "READ_TIMEOUT": 20,
    }
    return settings.TRYON


@pytest.mark.django_db(transaction=True)
def test_a_try_on_goes_from_upload_to_a_stored_result_on_fal(client, tryon, sandbox, shirt):
    created = post_job(client, shirt, shopper_photo())
    assert created.status_code == 201, created.content
    job_id = created.json()["id"]

    job = run_until_final(job_id)

    assert (job.status, job.provider, job.error_code) == ("succeeded", "fal", "")
    with job.result_image.open("rb") as stored:
        assert Image.open(io.BytesIO(stored.read())).format == "JPEG"
    assert client.get(job_url(job_id)).json()["result_url"]
    stats = sandbox.stats()
    assert (stats["accepted"]["submit"], stats["accepted"]["result"]) == (1, 1)
    assert stats["accepted"]["download"] == 1
    assert sandbox.counters.duplicate_submits() == {}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("fault", "code", "counted"),
    [({"no_face": 1}, "no_face", 1), ({"credits": 0}, "out_of_credits", 0)],
    ids=["no face", "out of credits"],
)
def test_a_failure_on_fal_reaches_the_shopper_and_their_quota(
    client, tryon, sandbox, shirt, fault, code, counted
):
    sandbox.configure(**fault)
    job_id = post_job(client, shirt, shopper_photo()).json()["id"]

    job = run_until_final(job_id)

    assert (job.status, job.error_code) == ("failed", code)
    error = client.get(job_url(job_id)).json()["error"]
    assert error == {"code": code, "message": str(message_for(code))}
    # The guest's, their address's and all guests' counters, alike.
    assert sorted(DailyUsage.objects.values_list("count", flat=True)) == [counted] * 3


@pytest.mark.django_db(transaction=True)
def test_a_try_on_erased_while_queued_at_fal_is_recalled_there(client, tryon, sandbox, shirt):
    sandbox.configure(processing_time=60)
    job_id = post_job(client, shirt, shopper_photo()).json()["id"]
    with Worker(worker_id="fal-test") as worker:
        worker.run_pass()
    assert TryOnJob.objects.get(pk=job_id).status == "queued"

    assert client.delete(job_url(job_id)).status_code == 204

    deadline = time.monotonic() + 10
    while sandbox.stats()["accepted"].get("cancel", 0) < 1:
        assert time.monotonic() < deadline, "fal was never asked to cancel"
        time.sleep(0.05)
    assert sandbox.stats()["faults"]["canceled"] == 1  # it was still running: it stopped
    assert TryOnJob.objects.get(pk=job_id).status == "canceled"
