"""The TRYON setting and the system checks that guard it."""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.checks import Tags, run_checks
from django.core.checks.registry import registry
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_tryon import checks
from django_tryon.backends import base, get_backend
from django_tryon.backends.ailab import AILabBackend
from django_tryon.conf import DEFAULTS, tryon_settings
from django_tryon.models import TryOnJob
from django_tryon.worker import Worker
from tests.support.images import photo_bytes

ROOT = Path(__file__).resolve().parent.parent


def check_ids():
    return {message.id for message in run_checks() if message.id.startswith("django_tryon")}


def test_defaults_apply_and_overrides_are_read_lazily(settings):
    settings.TRYON = {"API_KEY": "k"}
    assert DEFAULTS["POLL_INTERVAL"] == tryon_settings.POLL_INTERVAL
    assert tryon_settings.BASE_URL is None  # the backend's own address
    assert get_backend().base_url == "https://www.ailabapi.com"
    settings.TRYON = {"API_KEY": "k", "POLL_INTERVAL": 0}
    assert tryon_settings.POLL_INTERVAL == 0


def test_no_tryon_setting_at_all_means_defaults(settings):
    del settings.TRYON
    assert tryon_settings.RESULT_STORAGE == "default"


def test_an_unknown_key_is_check_e005_naming_it_and_the_key_meant(settings):
    settings.TRYON = {"API_KEY": "k", "POLL_INTERVALL": 3}
    # Reading never raises: whatever reads a setting first must not beat the check to it.
    assert DEFAULTS["POLL_INTERVAL"] == tryon_settings.POLL_INTERVAL
    (message,) = [m for m in run_checks() if m.id.startswith("django_tryon")]
    assert message.id == "django_tryon.E005"
    assert "'POLL_INTERVALL'" in message.msg
    assert "Did you mean 'POLL_INTERVAL'?" in message.msg


def test_a_tryon_setting_that_is_not_a_dict_is_e005(settings):
    settings.TRYON = [("API_KEY", "k")]
    messages = [m for m in run_checks() if m.id == "django_tryon.E005"]
    assert [m.msg for m in messages] == ["The TRYON setting must be a dict, not list."]


def test_reading_an_unknown_attribute_fails():
    with pytest.raises(AttributeError):
        _ = tryon_settings.NOPE


def test_get_backend_builds_the_configured_backend(settings):
    settings.TRYON = {"API_KEY": "k", "BASE_URL": "http://127.0.0.1:9000/", "READ_TIMEOUT": 9}
    backend = get_backend()
    assert isinstance(backend, AILabBackend)
    assert backend.api_key == "k"
    assert backend.base_url == "http://127.0.0.1:9000"
    assert backend.timeout == (5.0, 9)


def test_a_good_configuration_passes_the_checks():
    assert check_ids() == set()


def test_missing_api_key(settings):
    settings.TRYON = {}
    assert check_ids() == {"django_tryon.E001"}


def test_a_backend_without_a_key_needs_none(settings):
    settings.TRYON = {"BACKEND": "tests.test_worker.SynchronousBackend"}
    assert check_ids() == set()


def test_unknown_storage_alias(settings):
    settings.TRYON = {"API_KEY": "k", "RESULT_STORAGE": "s3"}
    messages = [m for m in run_checks() if m.id == "django_tryon.E002"]
    assert len(messages) == 1
    assert "TRYON['RESULT_STORAGE'] is 's3'" in messages[0].msg
    assert "default" in messages[0].hint


def test_the_model_fields_follow_the_storage_settings(settings, tmp_path):
    """The fields find their storage when used, so a changed alias applies at once."""
    settings.STORAGES = {
        **settings.STORAGES,
        "elsewhere": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "base_url": "/elsewhere/"},
        },
    }
    settings.TRYON = {"API_KEY": "k", "RESULT_STORAGE": "elsewhere"}
    storage = TryOnJob._meta.get_field("result_image").storage
    name = storage.save("tryon/results/x.png", ContentFile(b"picture"))
    assert (tmp_path / name).read_bytes() == b"picture"
    assert storage.url(name) == f"/elsewhere/{name}"
    storage.delete(name)
    assert not (tmp_path / name).exists()
    # The upload storage stayed on "default".
    assert TryOnJob._meta.get_field("person_image").storage.url("a.jpg") == "/media/a.jpg"


def startup_check(tmp_path, settings_source):
    """``manage.py check`` in a new process, on the test settings changed by ``settings_source``."""
    (tmp_path / "startup_settings.py").write_text(
        "from tests.settings import *  # noqa: F403\n" + textwrap.dedent(settings_source)
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "startup_settings",
    }
    return subprocess.run(
        [sys.executable, "-m", "django", "check"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("settings_source", "expected"),
    [
        (
            "TRYON = {'API_KEY': 'k', 'POLL_INTERVALL': 1}",
            "(django_tryon.E005) Invalid setting 'POLL_INTERVALL' in TRYON.",
        ),
        (
            "TRYON = {'API_KEY': 'k', 'RESULT_STORAGE': 's3'}",
            "(django_tryon.E002) TRYON['RESULT_STORAGE'] is 's3'",
        ),
        (
            "INSTALLED_APPS = [a for a in INSTALLED_APPS if a != 'rest_framework']",
            "(django_tryon.E011) 'rest_framework' is not in INSTALLED_APPS",
        ),
        (
            "TRYON = {'API_KEY': 'k', 'LEASE_SECONDS': 60}",
            "(django_tryon.E012) TRYON['LEASE_SECONDS'] is 60",
        ),
    ],
)
def test_a_mistake_stops_start_up_with_its_check_not_a_traceback(
    tmp_path, settings_source, expected
):
    run = startup_check(tmp_path, settings_source)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert expected in run.stderr
    assert "HINT:" in run.stderr


@pytest.mark.parametrize(
    ("tryon", "check_id"),
    [
        ({"API_KEY": "k", "POLL_INTERVALL": 1}, "django_tryon.E005"),
        ({"API_KEY": "k", "LEASE_SECONDS": 30}, "django_tryon.E012"),
    ],
)
def test_the_worker_will_not_start_on_a_mistake(settings, db, tryon, check_id):
    settings.TRYON = tryon
    with pytest.raises(SystemCheckError, match=re.escape(check_id)):
        call_command("tryon_poll", "--once", skip_checks=False)


def test_missing_rest_framework_is_e011(settings):
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "rest_framework"]
    (message,) = [m for m in run_checks() if m.id.startswith("django_tryon")]
    assert message.id == "django_tryon.E011"
    assert "'rest_framework'" in message.hint


@pytest.mark.parametrize("what", ["app", "middleware"])
def test_sessions_off_is_e013(settings, what):
    if what == "app":
        settings.INSTALLED_APPS = [
            a for a in settings.INSTALLED_APPS if a != "django.contrib.sessions"
        ]
    else:
        settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "SessionMiddleware" not in m]
    assert "django_tryon.E013" in check_ids()


def test_missing_staticfiles_is_warned(settings):
    settings.INSTALLED_APPS = [
        a for a in settings.INSTALLED_APPS if a != "django.contrib.staticfiles"
    ]
    assert "django_tryon.W011" in check_ids()


@pytest.mark.parametrize(
    ("lease", "connect", "read", "ok"),
    [
        (300, 5.0, 30.0, True),
        (76, 5.0, 30.0, True),
        (75, 5.0, 30.0, False),  # 2 x (5 + 30) + 5
        (60, 5.0, 30.0, False),
        (60, 2.0, 10.0, True),
    ],
)
def test_a_lease_too_short_for_one_call_is_e012(settings, lease, connect, read, ok):
    settings.TRYON = {
        "API_KEY": "k",
        "LEASE_SECONDS": lease,
        "CONNECT_TIMEOUT": connect,
        "READ_TIMEOUT": read,
    }
    assert check_ids() == (set() if ok else {"django_tryon.E012"})


def test_every_check_is_tagged_django_tryon_and_none_compatibility(settings):
    ours = [c for c in registry.get_checks() if c.__module__.startswith("django_tryon")]
    assert len(ours) >= 9
    for check in ours:
        assert "django_tryon" in check.tags, check.__name__
        assert Tags.compatibility not in check.tags, check.__name__
    settings.TRYON = {"API_KEY": "k", "NOPE": 1}
    assert [m.id for m in run_checks(tags=["django_tryon"])] == ["django_tryon.E005"]


def test_unimportable_backend(settings):
    settings.TRYON = {"API_KEY": "k", "BACKEND": "myshop.tryon.Nope"}
    assert check_ids() == {"django_tryon.E003"}


@pytest.mark.parametrize("url", ["ftp://example.com", "www.ailabapi.com", "", "https://"])
def test_base_url_must_be_http(settings, url):
    settings.TRYON = {"API_KEY": "k", "BASE_URL": url}
    assert check_ids() == {"django_tryon.E004"}


def test_plain_http_off_loopback_is_warned(settings):
    settings.TRYON = {"API_KEY": "k", "BASE_URL": "http://provider.example.com"}
    assert check_ids() == {"django_tryon.W001"}
    settings.TRYON = {"API_KEY": "k", "BASE_URL": "http://127.0.0.1:8765"}
    assert check_ids() == set()


@pytest.mark.parametrize(
    ("key", "value"),
    [("CONCURRENCY", 0), ("POLL_INTERVAL", -1), ("LEASE_SECONDS", "60"), ("MAX_ATTEMPTS", True)],
)
def test_bad_numbers(settings, key, value):
    settings.TRYON = {"API_KEY": "k", key: value}
    assert check_ids() == {"django_tryon.E006"}


def test_result_hosts_must_be_a_list(settings):
    settings.TRYON = {"API_KEY": "k", "RESULT_HOSTS": "cdn.example.com"}
    assert check_ids() == {"django_tryon.E007"}


class AnsweringBackend(base.TryOnBackend):
    """A provider that answers the picture in the submit's answer: one call per job."""

    provider_name = "answering"
    requires_api_key = False

    def submit(self, request):
        picture = photo_bytes((64, 64), image_format="PNG")
        state = base.TaskState(status=base.SUCCEEDED, result_content=picture)
        return base.Submission(task_id="answered", state=state)


@pytest.mark.parametrize(("extra_seconds", "calls_start"), [(0, False), (30, True)])
def test_the_lease_check_draws_the_line_where_the_worker_does(
    settings, make_job, extra_seconds, calls_start
):
    """E012's figure is the worker's: at it, a pass starts no call; above it, it does."""
    settings.TRYON = {"API_KEY": "k", "CONNECT_TIMEOUT": 1.0, "READ_TIMEOUT": 2.0}
    settings.TRYON["LEASE_SECONDS"] = checks.lease_needed() + extra_seconds
    assert ("django_tryon.E012" in check_ids()) is not calls_start
    job = make_job()
    with Worker(worker_id="lease", backend=AnsweringBackend()) as worker:
        worker.run_pass()
    job.refresh_from_db()
    assert job.status == ("succeeded" if calls_start else "pending")


# Webhooks -----------------------------------------------------------------------

FASHN = {"API_KEY": "k", "BACKEND": "django_tryon.backends.fashn.FashnBackend"}


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example.com",
        "https://shop.example.com/",
        "https://shop.example.com:8443",
        "http://127.0.0.1:8000",
    ],
)
def test_a_webhook_origin_passes(settings, url):
    settings.TRYON = {**FASHN, "WEBHOOK_BASE_URL": url}
    assert check_ids() == set()


@pytest.mark.parametrize(
    "url",
    [
        "shop.example.com",
        "ftp://shop.example.com",
        "https://",
        "https://shop.example.com/tryon/",
        "https://shop.example.com?x=1",
        "https://shop.example.com#top",
        "https://user:pass@shop.example.com",
        "https://shop.example.com:99999",
        42,
    ],
)
def test_a_webhook_base_url_that_is_not_an_origin_is_e030(settings, url):
    settings.TRYON = {**FASHN, "WEBHOOK_BASE_URL": url}
    assert check_ids() == {"django_tryon.E030"}


def test_a_plain_http_webhook_origin_off_loopback_is_w030(settings):
    settings.TRYON = {**FASHN, "WEBHOOK_BASE_URL": "http://shop.example.com"}
    assert check_ids() == {"django_tryon.W030"}


def test_webhooks_for_a_backend_that_cannot_push_are_w031(settings):
    settings.TRYON = {"API_KEY": "k", "WEBHOOK_BASE_URL": "https://shop.example.com"}
    assert check_ids() == {"django_tryon.W031"}


def test_webhooks_without_the_apps_urls_are_e031(settings):
    settings.ROOT_URLCONF = "tests.testapp.urls_without_tryon"
    settings.TRYON = {**FASHN, "WEBHOOK_BASE_URL": "https://shop.example.com"}
    assert check_ids() == {"django_tryon.E031", "django_tryon.W014"}


def test_the_apps_urls_left_out_are_w014(settings):
    # Without them the button's page failed with a bare NoReverseMatch, and
    # manage.py check said nothing.
    settings.ROOT_URLCONF = "tests.testapp.urls_without_tryon"
    settings.TRYON = {"API_KEY": "k"}
    (warning,) = [m for m in run_checks() if m.id == "django_tryon.W014"]
    assert warning.msg == (
        "django_tryon.urls is not included in the URLconf: the shopper API has no address, "
        "and a page with the try-on button cannot be rendered."
    )
    assert warning.hint.startswith('Add path("tryon/", include("django_tryon.urls"))')
    settings.ROOT_URLCONF = "tests.urls"
    assert "django_tryon.W014" not in check_ids()
