"""The Oscar tests: django_tryon.contrib.oscar against django-oscar itself.

They need Oscar installed and their own settings (the example Oscar shop's), so
they run only when asked for by path, with those settings:
``pytest --ds tests.oscar.settings tests/oscar`` (``make test-oscar``). A plain
``pytest`` run leaves this folder alone.
"""

from pathlib import Path

import pytest
from django.conf import settings

from tests.support.collection import asked_for, ignore_unless_asked
from tests.support.oscar_catalogue import Catalogue

HERE = Path(__file__).resolve().parent
SETTINGS = "tests.oscar.settings"
TREEBEARD_WARNING = "treebeard.deprecation.RemovedInTreebeard8Warning"


pytest_ignore_collect = ignore_unless_asked(HERE)


def pytest_collection_modifyitems(config, items):
    if not asked_for(HERE, config):
        return
    if items and settings.SETTINGS_MODULE != SETTINGS:
        raise pytest.UsageError(f"The Oscar tests run with their settings: --ds {SETTINGS}")
    for item in items:
        if HERE in Path(item.fspath).resolve().parents:
            # Oscar 4.2's own code still calls treebeard's deprecated class methods.
            item.add_marker(pytest.mark.filterwarnings(f"ignore::{TREEBEARD_WARNING}"))


@pytest.fixture
def catalogue(db, django_capture_on_commit_callbacks):
    return Catalogue(django_capture_on_commit_callbacks)
