"""The system checks of the Oscar integration: TRYON_OSCAR's shape and values, and the
order of the apps (the product page template must be found before Oscar's)."""

import importlib
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

from django_tryon.contrib.oscar.checks import check_app_order, check_oscar_settings

ROOT = Path(__file__).resolve().parents[2]


def ids(messages):
    return [message.id for message in messages]


def test_the_example_settings_pass(settings):
    assert check_oscar_settings(None) == []
    assert check_app_order(None) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["tops"], ["tryon_oscar.E001"]),
        ({"CATEGORY": {}}, ["tryon_oscar.E002"]),
        ({"CATEGORIES": ["tops"]}, ["tryon_oscar.E003"]),
        ({"CATEGORIES": {"/": "upper_body"}}, ["tryon_oscar.E003"]),
        ({"PRODUCT_CLASSES": {"shirts": "top"}}, ["tryon_oscar.E004"]),
        ({"PRODUCT_CLASSES": {"shirts": "upper_body"}, "CATEGORIES": {"a/b": "full_body"}}, []),
    ],
)
def test_tryon_oscar_is_checked(settings, value, expected):
    settings.TRYON_OSCAR = value
    messages = check_oscar_settings(None)
    assert ids(messages) == expected
    assert all(message.hint for message in messages)


def test_a_wrong_clothes_type_names_the_right_ones(settings):
    settings.TRYON_OSCAR = {"CATEGORIES": {"tops": "shirt"}}
    [error] = check_oscar_settings(None)
    assert "TRYON_OSCAR['CATEGORIES']['tops'] is 'shirt'" in error.msg
    assert error.hint == "Use one of: upper_body, lower_body, full_body."


def test_the_app_after_oscar_is_warned_about(settings):
    apps = list(settings.INSTALLED_APPS)
    apps.remove("django_tryon.contrib.oscar")
    apps.insert(apps.index("oscar.config.Shop") + 1, "django_tryon.contrib.oscar")
    settings.INSTALLED_APPS = apps
    assert ids(check_app_order(None)) == ["tryon_oscar.W001"]


def test_the_migrations_match_the_models():
    # In a process of its own: this run builds its tables without migrations.
    result = subprocess.run(
        [sys.executable, "-m", "django", "makemigrations", "--check", "--dry-run"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.oscar.settings"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


def test_every_check_is_documented():
    source = (ROOT / "django_tryon" / "contrib" / "oscar" / "checks.py").read_text()
    docs = (ROOT / "docs" / "oscar.md").read_text()
    used = set(re.findall(r'id="(tryon_oscar\.[EW]\d{3})"', source))
    documented = set(re.findall(r"^\| `(tryon_oscar\.[EW]\d{3})` \|", docs, flags=re.MULTILINE))
    assert used == documented


def test_every_module_of_the_app_imports():
    import django_tryon.contrib.oscar as package

    names = [
        module.name
        for module in pkgutil.walk_packages(package.__path__, "django_tryon.contrib.oscar.")
    ]
    assert "django_tryon.contrib.oscar.management.commands.tryon_oscar_sync" in names
    for name in names:
        importlib.import_module(name)
