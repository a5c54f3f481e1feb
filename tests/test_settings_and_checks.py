"""The TRYON setting and the system checks that guard it."""

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from django_tryon.backends import get_backend
from django_tryon.backends.ailab import AILabBackend
from django_tryon.conf import DEFAULTS, tryon_settings


def check_ids():
    return {message.id for message in run_checks() if message.id.startswith("django_tryon")}


def test_defaults_apply_and_overrides_are_read_lazily(settings):
    settings.TRYON = {"API_KEY": "k"}
    assert DEFAULTS["POLL_INTERVAL"] == tryon_settings.POLL_INTERVAL
    assert tryon_settings.BASE_URL == "https://www.ailabapi.com"
    settings.TRYON = {"API_KEY": "k", "POLL_INTERVAL": 0}
    assert tryon_settings.POLL_INTERVAL == 0


def test_no_tryon_setting_at_all_means_defaults(settings):
    del settings.TRYON
    assert tryon_settings.RESULT_STORAGE == "default"


def test_an_unknown_key_is_an_error_naming_it(settings):
    settings.TRYON = {"API_KEY": "k", "POLL_INTERVALL": 3}
    with pytest.raises(ImproperlyConfigured, match="'POLL_INTERVALL'"):
        _ = tryon_settings.POLL_INTERVAL
    assert check_ids() == {"django_tryon.E005"}


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
    assert "'s3'" in messages[0].msg
    assert "default" in messages[0].hint


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
