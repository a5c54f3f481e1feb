"""The suite's own layout: shared helpers live in ``tests/support``, test modules and
conftests import nothing from one another, and no test reaches into a private name of
``django_tryon`` (a seam is added to the code instead).

A walk over every module's syntax tree, so it holds for tests added later too. The
private names are read from the ``django_tryon`` that is imported (the checkout, or the
installed wheel in ``scripts/test_wheel.sh``).
"""

import ast
from pathlib import Path

import pytest

import django_tryon

TESTS = Path(__file__).resolve().parent
PACKAGE = Path(django_tryon.__file__).resolve().parent
# Modules of tests/ that are neither tests nor helpers: the settings of each kind of
# run, their URLs, the end-to-end tests' Celery app.
CONFIGURATION = {"settings.py", "urls.py", "celery_app.py"}
# Private by their spelling, public by their library's word: Django documents a
# model's ``_meta`` (the Model _meta API).
DOCUMENTED = {"_meta"}


def is_private(name):
    """``_name``: neither ``__dunder__`` nor a bare ``_``."""
    return name[:1] == "_" and name[1:2].isalpha()


def private_names(package=PACKAGE):
    """Every private name ``django_tryon`` defines: module-level functions, classes and
    variables, their methods and class attributes, and attributes set on ``self``."""
    names = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.split(".")[0])
    return {name for name in names if is_private(name)} - DOCUMENTED


def module_name(path, root=TESTS.parent):
    return ".".join(path.relative_to(root).with_suffix("").parts)


def is_test_module(dotted):
    last = dotted.rsplit(".", 1)[-1]
    return last == "conftest" or last.startswith("test_")


def imported_modules(tree, dotted):
    """``(line, module)`` of every import in ``tree``, relative ones made absolute."""
    package = dotted.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def problems(source, dotted, private=None):
    """What is wrong with the test-suite module ``dotted`` whose code is ``source``."""
    private = private_names() if private is None else private
    tree = ast.parse(source)
    found = []
    for line, module in imported_modules(tree, dotted):
        if module.startswith("tests.") and is_test_module(module):
            found.append(f"{line}: imports from {module}: move what it shares to tests/support")
        if module.startswith("django_tryon.") and any(map(is_private, module.split("."))):
            found.append(f"{line}: imports {module}, a private name of django_tryon")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in private:
            receiver = node.value
            if not (isinstance(receiver, ast.Name) and receiver.id in {"self", "cls"}):
                found.append(
                    f"{node.lineno}: reads .{node.attr}, a private name of django_tryon: "
                    "test through a public seam (add one to the code if there is none)"
                )
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            words = node.value.split(".")
            if node.value in private or (
                words[0] == "django_tryon" and any(map(is_private, words))
            ):
                found.append(f"{node.lineno}: names {node.value!r}, a private name of django_tryon")
    return sorted(set(found), key=lambda problem: int(problem.split(":")[0]))


def suite_modules():
    """Every module of the suite but this one, which spells private names to test
    the walk."""
    return sorted(path for path in TESTS.rglob("*.py") if path != Path(__file__).resolve())


def test_shared_helpers_live_in_tests_support():
    """Outside tests/support (and the test app), a module is a test module, a conftest,
    a package's ``__init__`` or the configuration of a kind of run."""
    misplaced = [
        str(path.relative_to(TESTS))
        for path in suite_modules()
        if not is_test_module(module_name(path))
        and path.name != "__init__.py"
        and path.name not in CONFIGURATION
        and not {"support", "testapp"} & set(path.relative_to(TESTS).parts)
    ]
    assert misplaced == []


def test_no_module_of_the_suite_imports_a_test_module_or_reaches_into_privates():
    private = private_names()
    found = {}
    for path in suite_modules():
        listed = problems(path.read_text(encoding="utf-8"), module_name(path), private)
        if listed:
            found[str(path.relative_to(TESTS))] = listed
    assert found == {}


def test_the_private_names_are_found_in_django_tryon():
    private = private_names()
    # A module function, a method, an attribute set on self, a module variable.
    assert {"_without_credentials", "_normalise", "_spans", "_prepared_urls"} <= private
    assert not any(name.startswith("__") for name in private)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from tests.conftest import stored_files", "imports from tests.conftest:"),
        ("from tests.test_sandbox import KEY", "imports from tests.test_sandbox"),
        ("from tests.e2e import test_multiworker", "imports from tests.e2e.test_multiworker"),
        ("from .conftest import jpeg", "imports from tests.oscar.conftest"),
        ("import tests.test_api", "imports from tests.test_api"),
        ("from django_tryon.images import _normalise", "django_tryon.images._normalise"),
        ("worker._schedule_read_at = None", "reads ._schedule_read_at"),
        ("assert schedule._spans['k']", "reads ._spans"),
        ("images._normalise(image)", "reads ._normalise"),
        ("monkeypatch.setattr(images, '_encode', spy)", "names '_encode'"),
        ("mock.patch('django_tryon.tasks._local')", "names 'django_tryon.tasks._local'"),
    ],
)
def test_each_kind_of_reach_is_found(source, expected):
    private = {"_schedule_read_at", "_spans", "_normalise", "_encode", "_local"}
    (problem,) = problems(source, "tests.oscar.test_example", private)
    assert expected in problem


@pytest.mark.parametrize(
    "source",
    [
        "from tests.support.images import photo_bytes",
        "from tests.support import contract",
        "from tests.testapp.models import Product",
        "from tests.settings import DATABASES",
        "from django_tryon.images import normalise_image",
        "self._spans = {}",  # a test's own double keeps its own state
        "field = Garment._meta.get_field('image')",
        "worker.schedule.spans('ailabapi:upper_body')",
    ],
)
def test_what_the_suite_may_do_is_not_reported(source):
    private = {"_spans", "_normalise"}
    assert problems(source, "tests.test_example", private) == []
