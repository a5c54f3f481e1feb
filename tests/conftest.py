import shutil
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile

from django_tryon.models import Garment, TryOnJob
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
