"""What a release carries, checked on whichever ``django_tryon`` is imported: the
checkout in the usual run, the installed wheel in ``scripts/test_wheel.sh`` (where
a module, a template or a static file left out of the wheel fails here)."""

import importlib
import pkgutil
import re
import types
import typing
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.template.loader import get_template

import django_tryon
from django_tryon.conf import DEFAULTS, TryOnSettings

PACKAGE = Path(django_tryon.__file__).resolve().parent

# Public release segments only (1.2.3, 1.2.3rc1, 1.2.3.post1): what an index accepts.
PEP440 = re.compile(r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?")

STATIC_REFERENCE = re.compile(r"""["'](django_tryon/[\w./-]+\.(?:js|css|svg|png|jpg))["']""")
TEMPLATE_REFERENCE = re.compile(r"""["']((?:admin/)?django_tryon/[\w./-]+\.html)["']""")


def package_sources():
    for path in sorted(PACKAGE.rglob("*")):
        if path.suffix in (".py", ".html") and path.is_file():
            yield path, path.read_text(encoding="utf-8")


def test_the_version_is_a_release_version():
    assert PEP440.fullmatch(django_tryon.__version__), django_tryon.__version__


def test_every_module_of_the_package_imports():
    names = [module.name for module in pkgutil.walk_packages([str(PACKAGE)], "django_tryon.")]
    # The parts a shop uses: a wheel missing any of them shows here.
    for expected in (
        "django_tryon.models",
        "django_tryon.migrations.0001_initial",
        "django_tryon.api.views",
        "django_tryon.admin.jobs",
        "django_tryon.backends.ailab",
        "django_tryon.management.commands.tryon_poll",
        "django_tryon.sandbox.server",
        "django_tryon.templatetags.tryon",
    ):
        assert expected in names
    for name in names:
        # A framework's integration imports where its app is installed, with the
        # framework (tests/oscar imports django_tryon.contrib.oscar's modules).
        if not name.startswith("django_tryon.contrib."):
            importlib.import_module(name)


def test_the_package_says_it_is_typed():
    # PEP 561: without the marker, type checkers ignore the package's hints.
    assert (PACKAGE / "py.typed").is_file()


def test_every_static_file_the_package_refers_to_is_shipped():
    referenced = set()
    for _path, text in package_sources():
        referenced.update(STATIC_REFERENCE.findall(text))
    assert {
        "django_tryon/tryon.js",
        "django_tryon/tryon.css",
        "django_tryon/example-pose.svg",
        "django_tryon/admin/tryon_admin.css",
        "django_tryon/admin/generate.js",
    } <= referenced
    for name in sorted(referenced):
        found = finders.find(name)
        assert found, f"{name} is referred to but no static file has that name"
        assert Path(found).resolve().is_relative_to(PACKAGE / "static"), found


@pytest.mark.parametrize(
    "name",
    [
        "admin/django_tryon/tryonjob/change_form.html",
        "admin/django_tryon/tryonjob/change_list.html",
    ],
)
def test_the_admin_overrides_are_shipped(name):
    # The admin finds these by their path, never by a name written in the code.
    assert Path(get_template(name).origin.name).resolve().is_relative_to(PACKAGE)


def test_every_template_the_package_refers_to_is_shipped():
    referenced = set()
    for _path, text in package_sources():
        referenced.update(TEMPLATE_REFERENCE.findall(text))
    assert {
        "django_tryon/button.html",
        "django_tryon/widget/pick.html",
        "admin/django_tryon/tryonjob/overview.html",
    } <= referenced
    for name in sorted(referenced):
        origin = Path(get_template(name).origin.name).resolve()
        assert origin.is_relative_to(PACKAGE), (name, origin)


def _fits(value, hint):
    """Whether ``value`` is of the (simple) type ``hint``: bool is not a number here."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if origin is dict:
        key_hint, value_hint = typing.get_args(hint)
        return isinstance(value, dict) and all(
            _fits(k, key_hint) and _fits(v, value_hint) for k, v in value.items()
        )
    if hint is typing.Any:
        return True
    if hint is type(None):
        return value is None
    if hint in (int, float):
        numbers = (int,) if hint is int else (int, float)
        return isinstance(value, numbers) and not isinstance(value, bool)
    return isinstance(value, hint)


def test_every_setting_is_typed_and_its_default_fits_its_type():
    hints = typing.get_type_hints(TryOnSettings)
    missing = sorted(set(DEFAULTS) - set(hints))
    assert missing == [], f"annotate these keys in TryOnSettings (conf.py): {missing}"
    assert sorted(set(hints) - set(DEFAULTS)) == []
    for name, default in DEFAULTS.items():
        assert _fits(default, hints[name]), (name, default, hints[name])


def test_the_type_check_of_defaults_can_fail():
    assert not _fits(True, int)
    assert not _fits("5", float)
    assert not _fits(["a", 1], list[str])
    assert _fits(None, int | None)
    assert _fits(3, float)
