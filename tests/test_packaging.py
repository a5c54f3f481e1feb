"""The wheel carries what a shop needs at run time."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("django_tryon-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield set(archive.namelist())


@pytest.mark.parametrize("app", ["django_tryon", "django_tryon/contrib/oscar"])
def test_the_wheel_lists_the_migrations(wheel, app):
    migrations = {p.name for p in (ROOT / app / "migrations").glob("0*.py")}
    assert migrations
    for name in migrations:
        assert f"{app}/migrations/{name}" in wheel


@pytest.mark.parametrize("app", ["django_tryon", "django_tryon/contrib/oscar"])
def test_the_wheel_carries_templates_and_static_files(wheel, app):
    for folder in ("templates", "static"):
        shipped = {
            str(p.relative_to(ROOT)) for p in (ROOT / app / folder).rglob("*") if p.is_file()
        }
        assert shipped <= wheel
    assert any(name.startswith(f"{app}/templates/") for name in wheel)


def test_the_wheel_does_not_carry_tests_or_the_examples(wheel):
    examples = ("tests/", "example_project/", "example_oscar/")
    assert not any(name.startswith(examples) for name in wheel)
