"""A shopper's try-on on FASHN, from the upload to the stored result, by polling:
the shopper API, the real worker engine and the sandbox speaking FASHN on loopback."""

import io

import pytest
from PIL import Image

from django_tryon.errors import message_for
from django_tryon.models import DailyUsage
from django_tryon.sandbox import SandboxServer
from tests.support.api import job_url, post_job
from tests.support.jobs import run_until_final
from tests.support.samples import breton_shirt, shopper_photo

# The throttle counts in the cache, which outlives a test: each starts from zero.
pytestmark = pytest.mark.usefixtures("fresh_throttle_cache")

KEY = "fashn-job-key"


@pytest.fixture
def sandbox():
    with SandboxServer(protocol="fashn", api_key=KEY, processing_time=0.2, seed=5) as server:
        yield server


@pytest.fixture
def tryon(settings, sandbox):
    settings.TRYON = {
        "BACKEND": "django_tryon.backends.fashn.FashnBackend",
        "API_KEY": KEY,
        "BASE_URL": sandbox.url,
        "OPTIONS": {"mode": "performance", "garment_photo_type": "flat-lay"},
        "POLL_INTERVAL": 0,
        "RETRY_BACKOFF": 0,
        "CONCURRENCY": 2,
        "READ_TIMEOUT": 20,
    }
    return settings.TRYON


@pytest.fixture
def shirt(db):
    return breton_shirt()


@pytest.mark.django_db(transaction=True)
def test_a_try_on_goes_from_upload_to_a_stored_result_on_fashn(client, tryon, sandbox, shirt):
    created = post_job(client, shirt, shopper_photo())
    assert created.status_code == 201, created.content
    job_id = created.json()["id"]

    job = run_until_final(job_id)

    assert job.status == "succeeded"
    assert job.provider == "fashn"
    assert job.error_code == ""
    with job.result_image.open("rb") as stored:
        picture = Image.open(io.BytesIO(stored.read()))
        assert picture.format == "JPEG"
        assert picture.width > 100
    shown = client.get(job_url(job_id)).json()
    assert shown["status"] == "succeeded"
    assert shown["result_url"]
    stats = sandbox.stats()
    assert stats["accepted"]["submit"] == 1
    assert stats["accepted"]["query"] >= 1
    assert stats["accepted"]["download"] == 1
    assert sandbox.counters.duplicate_submits() == {}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("fault", "code", "counted"),
    [
        # The shopper's photo is the cause: the try-on still counts against their day.
        ({"no_face": 1}, "pose_not_detected", 1),
        # The shop's account is: the shopper gets the try-on back.
        ({"credits": 0}, "out_of_credits", 0),
    ],
    ids=["no pose", "out of credits"],
)
def test_a_failure_on_fashn_reaches_the_shopper_and_their_quota(
    client, tryon, sandbox, shirt, fault, code, counted
):
    sandbox.configure(**fault)
    job_id = post_job(client, shirt, shopper_photo()).json()["id"]

    job = run_until_final(job_id)

    assert job.status == "failed"
    assert job.error_code == code
    error = client.get(job_url(job_id)).json()["error"]
    assert error == {"code": code, "message": str(message_for(code))}
    # The guest's, their address's and all guests' counters, alike.
    assert sorted(DailyUsage.objects.values_list("count", flat=True)) == [counted] * 3


@pytest.mark.django_db(transaction=True)
def test_a_try_on_goes_from_upload_to_a_stored_result_on_fashn_by_webhook(
    client, settings, tryon, sandbox, shirt, live_server
):
    # The provider calls the shop (a real server on loopback) as the prediction ends.
    settings.TRYON = {**tryon, "WEBHOOK_BASE_URL": live_server.url}
    sandbox.configure(processing_time=0.5)
    created = post_job(client, shirt, shopper_photo())
    assert created.status_code == 201, created.content
    job_id = created.json()["id"]

    job = run_until_final(job_id)

    assert job.status == "succeeded"
    assert job.pushed_at is not None
    assert job.polls == 0
    stats = sandbox.stats()
    assert stats["accepted"]["submit"] == 1
    assert stats["accepted"].get("query", 0) == 0  # the webhook replaced every query
    assert stats["webhooks"]["accepted"] == 1
    assert stats["accepted"]["download"] == 1
    assert client.get(job_url(job_id)).json()["result_url"]
