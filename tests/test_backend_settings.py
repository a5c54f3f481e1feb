"""A backend's settings: TRYON's keys, each overridden by a keyword argument; its own
address and options' defaults; its options checked at start-up (E020) and when built."""

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from django_tryon.backends import get_backend
from django_tryon.backends.ailab import AILabBackend
from django_tryon.backends.base import Option, TryOnBackend, backend_setting
from django_tryon.backends.fashn import FashnBackend

FASHN = "django_tryon.backends.fashn.FashnBackend"


def option_errors():
    return [message for message in run_checks() if message.id == "django_tryon.E020"]


def test_keywords_override_the_settings_key_by_key(settings):
    settings.TRYON = {"API_KEY": "from-settings", "BASE_URL": "https://proxy.example.com/"}
    backend = get_backend(api_key="from-keyword", read_timeout=3)
    assert backend.api_key == "from-keyword"
    assert backend.base_url == "https://proxy.example.com"
    assert backend.timeout == (5.0, 3.0)


def test_a_keyword_given_as_none_is_the_backends_own_never_the_settings(settings):
    # A backend built for another provider must not inherit this one's key or address.
    settings.TRYON = {"API_KEY": "primary-key", "BASE_URL": "https://primary.example.com"}
    backend = FashnBackend(api_key=None, base_url=None, options=None)
    assert backend.api_key == ""
    assert backend.base_url == "https://api.fashn.ai"
    assert backend.options["mode"] == "balanced"


def test_without_base_url_each_backend_has_its_providers_address(settings):
    settings.TRYON = {"API_KEY": "k"}
    assert get_backend().base_url == "https://www.ailabapi.com"
    settings.TRYON = {"API_KEY": "k", "BACKEND": FASHN}
    assert get_backend().base_url == "https://api.fashn.ai"


def test_an_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="api_secret"):
        AILabBackend(api_key="k", api_secret="s")


def test_a_setting_without_a_default_must_be_given(settings):
    settings.TRYON = {"API_KEY": "k"}
    with pytest.raises(ImproperlyConfigured, match="TRYON\\['BASE_URL'\\]"):
        backend_setting("BASE_URL", {})
    assert backend_setting("BASE_URL", {}, "fallback") == "fallback"
    assert backend_setting("BASE_URL", {"base_url": "https://x"}) == "https://x"


def test_options_are_the_defaults_then_the_settings(settings):
    settings.TRYON = {"API_KEY": "k", "BACKEND": FASHN, "OPTIONS": {"mode": "quality"}}
    options = get_backend().options
    assert options["mode"] == "quality"
    assert options["model_name"] == "tryon-v1.6"
    assert get_backend(options={"mode": "performance"}).options["mode"] == "performance"


def test_a_backend_without_options_refuses_any(settings):
    settings.TRYON = {"API_KEY": "k", "OPTIONS": {"mode": "quality"}}
    (error,) = option_errors()
    assert error.msg == (
        "Invalid setting 'mode' for AILabBackend in TRYON['OPTIONS'] (its options: none)."
    )
    assert error.hint == "AILabBackend's options: none; see docs/providers.md."
    with pytest.raises(ImproperlyConfigured, match="'mode'"):
        get_backend()


def test_every_wrong_option_is_one_error_with_the_allowed_values(settings):
    settings.TRYON = {
        "API_KEY": "k",
        "BACKEND": FASHN,
        "OPTIONS": {"mode": "fast", "moderation": "none", "seed": "7"},
    }
    messages = sorted(error.msg for error in option_errors())
    assert messages == [
        "Invalid setting 'moderation' for FashnBackend in TRYON['OPTIONS'] (its options: "
        "garment_photo_type, mode, model_name, moderation_level, output_format, seed, "
        "segmentation_free).",
        "Invalid value '7' for FashnBackend's option 'seed' in TRYON['OPTIONS']: it must be "
        "a whole number.",
        "Invalid value 'fast' for FashnBackend's option 'mode' in TRYON['OPTIONS']: it must be "
        "one of 'performance', 'balanced', 'quality'.",
    ]


@pytest.mark.parametrize("options", [["mode"], "mode=quality", 3])
def test_options_must_be_a_dict(settings, options):
    settings.TRYON = {"API_KEY": "k", "BACKEND": FASHN, "OPTIONS": options}
    (error,) = option_errors()
    assert "must be a dict" in error.msg


def test_good_options_pass_the_checks(settings):
    settings.TRYON = {
        "API_KEY": "k",
        "BACKEND": FASHN,
        "OPTIONS": {"mode": "quality", "segmentation_free": False, "seed": None},
    }
    assert [m.id for m in run_checks() if m.id.startswith("django_tryon")] == []


@pytest.mark.parametrize(
    ("option", "value", "problem"),
    [
        (Option("a", choices=("a", "b")), "c", "must be one of 'a', 'b'"),
        (Option(1, choices=(1, 2)), True, "must be one of 1, 2"),
        (Option(True, kind=bool), 1, "must be True or False"),
        (Option(0, kind=int), True, "must be a whole number"),
        (Option(0.5, kind=(int, float)), "0.5", "must be a whole number or a number"),
        (Option("x"), "  ", "must not be empty"),
        (Option("x"), None, ""),
        (Option(0.5, kind=(int, float)), 2, ""),
    ],
)
def test_option_values(option, value, problem):
    assert option.problem(value) == problem


def test_a_third_party_backend_on_the_bare_interface_gets_the_same_settings(settings):
    class Bare(TryOnBackend):
        provider_name = "bare"
        default_base_url = "https://bare.example"

    settings.TRYON = {"API_KEY": "k", "CONNECT_TIMEOUT": 2}
    backend = Bare()
    assert (backend.api_key, backend.base_url, backend.timeout) == (
        "k",
        "https://bare.example",
        (2.0, 30.0),
    )
