import shutil
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile

from django_tryon.models import Garment, TryOnJob
from django_tryon.signals import job_failed, job_succeeded
from django_tryon.worker import Worker
from tests.support.fake_provider import FakeProvider
from tests.support.images import make_image_bytes


def pytest_collection_modifyitems(config, items):
    """Tests marked ``own_phase`` run only when their file is named on the command line.

    They take minutes (a wheel, a virtual environment, real processes), so
    ``make test`` leaves them out and ``.ci/run`` runs each in a phase of its own.
    """
    named = {Path(arg.split("::")[0]).resolve() for arg in config.args}
    kept, deselected = [], []
    for item in items:
        if item.get_closest_marker("own_phase") and Path(item.path).resolve() not in named:
            deselected.append(item)
        else:
            kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Each test gets its own empty MEDIA_ROOT, so it can assert what files exist."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    yield tmp_path / "media"
    shutil.rmtree(tmp_path / "media", ignore_errors=True)


@pytest.fixture
def garment(db):
    return Garment.objects.create(
        name="Striped T-shirt",
        clothes_type="upper_body",
        image=ContentFile(make_image_bytes((500, 500), (30, 60, 200)), name="shirt.jpg"),
    )


@pytest.fixture
def make_job(db, garment):
    def make(**fields):
        fields.setdefault("garment", garment)
        if "person_image" not in fields:
            fields["person_image"] = ContentFile(make_image_bytes(), name="person.jpg")
        return TryOnJob.objects.create(**fields)

    return make


@pytest.fixture
def provider():
    """A scripted AILabAPI stand-in on loopback (see tests/support/fake_provider.py)."""
    fake = FakeProvider().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def person_jpeg():
    """A drawn full-body photo, as a shopper would upload (the sandbox's samples)."""
    from django_tryon.sandbox import samples

    return samples.encode(samples.model_photo("ava"))


@pytest.fixture(scope="session")
def garment_jpeg():
    """A drawn flat-lay T-shirt on a plain background (the sandbox's samples)."""
    from django_tryon.sandbox import samples

    return samples.encode(samples.garment_image("breton-tshirt"))


@pytest.fixture
def fresh_throttle_cache():
    """The throttle counts in the cache: each test starts from zero (the API tests ask for
    it with ``pytestmark = pytest.mark.usefixtures("fresh_throttle_cache")``)."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def tryon(settings, provider):
    """The worker tests' settings: AILabAPI's protocol at ``provider``, no wait between
    attempts, three attempts, two calls at once."""
    settings.TRYON = {
        "API_KEY": "test-key",
        "BASE_URL": provider.url,
        "POLL_INTERVAL": 0,
        "RETRY_BACKOFF": 0,
        "MAX_ATTEMPTS": 3,
        "CONCURRENCY": 2,
        "READ_TIMEOUT": 5,
        # No pass here waits long enough on a call to look for more due jobs
        # meanwhile (tests/test_security.py does): query counts stay exact.
        "IDLE_INTERVAL": 60,
    }
    return settings.TRYON


@pytest.fixture
def worker(tryon):
    """A worker on ``tryon``'s settings, closed after the test."""
    with Worker(worker_id="test") as worker:
        yield worker


@pytest.fixture
def signals():
    """The jobs ``job_succeeded`` and ``job_failed`` were sent for, while the test runs."""
    received = {"succeeded": [], "failed": []}

    def on_success(sender, job, **kwargs):
        received["succeeded"].append(job.pk)

    def on_failure(sender, job, **kwargs):
        received["failed"].append((job.pk, job.error_code))

    job_succeeded.connect(on_success)
    job_failed.connect(on_failure)
    yield received
    job_succeeded.disconnect(on_success)
    job_failed.disconnect(on_failure)
