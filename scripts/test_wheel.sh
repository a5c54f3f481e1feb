#!/usr/bin/env bash
# The release as a shop gets it: build the sdist and the wheel (the wheel from the
# sdist), check them, install the wheel into a fresh virtual environment, and run
# the test suite there against the installed package, not the checkout.
#
# The suite runs from a temporary copy of the checkout without django_tryon/, so
# `import django_tryon` can only find the installed wheel: a module, template,
# static file or translation missing from the wheel fails the run.
#
#   scripts/test_wheel.sh            # uses .venv/bin/python to build (needs build, hatchling, twine)
#   PYTHON=python3 scripts/test_wheel.sh
#   scripts/test_wheel.sh -m "not run_once"   # arguments go to pytest
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

BUILD_PYTHON="${BUILD_PYTHON:-$ROOT/.venv/bin/python}"
PYTHON="${PYTHON:-python3}"
unset PYTHONPATH

# Tests that need the checkout itself, run by the usual suite instead:
# test_packaging.py builds a wheel from the checkout's django_tryon/ (this script
# builds and checks the archives itself, below).
CHECKOUT_ONLY=(tests/test_packaging.py)

WORK="$(mktemp -d /tmp/tryon-wheel.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
DIST="$WORK/dist"
VENV="$WORK/venv"
SUITE="$WORK/suite"

VERSION="$("$BUILD_PYTHON" -c '
import re, sys
text = open("django_tryon/__init__.py", encoding="utf-8").read()
print(re.search(r"^__version__ = \"([^\"]+)\"$", text, re.M).group(1))
')"
echo "--- Building django-tryon $VERSION (sdist, then the wheel from it)"
"$BUILD_PYTHON" -m build --no-isolation --outdir "$DIST" . >"$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log" >&2; exit 1; }
WHEEL="$DIST/django_tryon-$VERSION-py3-none-any.whl"
SDIST="$DIST/django_tryon-$VERSION.tar.gz"
ls "$DIST"
for file in "$WHEEL" "$SDIST"; do
    [ -f "$file" ] || { echo "expected $file: the file name must carry __version__" >&2; exit 1; }
done
[ "$(find "$DIST" -type f | wc -l)" -eq 2 ] || { echo "unexpected files in $DIST" >&2; exit 1; }

echo "--- twine check"
"$BUILD_PYTHON" -m twine check --strict "$DIST"/*

echo "--- What the archives carry"
"$BUILD_PYTHON" - "$WHEEL" "$SDIST" "$VERSION" <<'PY'
import sys
import tarfile
import zipfile

wheel_path, sdist_path, version = sys.argv[1:]
wheel = set(zipfile.ZipFile(wheel_path).namelist())
prefix = f"django_tryon-{version}/"
with tarfile.open(sdist_path) as archive:
    sdist = {name.removeprefix(prefix) for name in archive.getnames()}

needed = [
    "django_tryon/py.typed",
    "django_tryon/locale/django.pot",
    "django_tryon/locale/fr/LC_MESSAGES/django.po",
    "django_tryon/locale/fr/LC_MESSAGES/django.mo",
    "django_tryon/migrations/0001_initial.py",
    "django_tryon/templates/django_tryon/button.html",
    "django_tryon/static/django_tryon/tryon.js",
]
problems = [f"wheel lacks {name}" for name in needed if name not in wheel]
problems += [f"sdist lacks {name}" for name in [*needed, "LICENSE", "README.md"] if name not in sdist]
dist_info = f"django_tryon-{version}.dist-info/"
problems += [f"wheel lacks {dist_info}{n}" for n in ("METADATA", "licenses/LICENSE") if dist_info + n not in wheel]
stray = [
    name
    for name in wheel | sdist
    if "__pycache__" in name
    or name.endswith((".pyc", ".sqlite3"))
    or "/media/" in name
    or name.startswith(("tests/", "example_project/")) and name in wheel
]
problems += [f"should not ship: {name}" for name in sorted(stray)]
if problems:
    sys.exit("\n".join(problems))
print(f"wheel: {len(wheel)} files, sdist: {len(sdist)} files")
PY

# The extras `make test` installs in the checkout (test,sandbox), so both runs have
# the same dependencies.
EXTRAS="$(sed -n 's/.*pip install --quiet -e "\.\[\([a-z0-9,_-]*\)\]".*/\1/p' Makefile | head -n 1)"
EXTRAS="${EXTRAS:-test,sandbox}"
echo "--- A fresh virtual environment with the wheel and its extras [$EXTRAS]"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "${WHEEL}[${EXTRAS}]"

echo "--- The suite, from a copy of the checkout without django_tryon/"
mkdir "$SUITE"
git ls-files -z --cached --others --exclude-standard \
    | grep -zv '^django_tryon/' \
    | while IFS= read -r -d '' path; do
        [ -e "$path" ] || continue # deleted in the work tree, not yet committed
        mkdir -p "$SUITE/$(dirname "$path")"
        cp -p "$path" "$SUITE/$path"
    done
[ ! -e "$SUITE/django_tryon" ]

# pyproject.toml's [tool.pytest.ini_options] as a pytest.ini, which pytest reads first.
"$BUILD_PYTHON" - "$ROOT/pyproject.toml" "$SUITE/pytest.ini" <<'PY'
import sys
import tomllib

with open(sys.argv[1], "rb") as file:
    options = tomllib.load(file)["tool"]["pytest"]["ini_options"]
lines = ["[pytest]"]
for key, value in options.items():
    if key == "testpaths":
        value = " ".join(value)
    elif isinstance(value, list):
        value = "".join(f"\n    {item}" for item in value)
    lines.append(f"{key} = {value}")
with open(sys.argv[2], "w", encoding="utf-8") as file:
    file.write("\n".join(lines) + "\n")
PY
cat "$SUITE/pytest.ini"

# Checked again inside the pytest run, where the tests import it.
cat >"$SUITE/conftest.py" <<PY
import sysconfig
from pathlib import Path

import django_tryon

LOCATION = Path(django_tryon.__file__).resolve()
print(f"django_tryon imported from {LOCATION}")
if Path("$ROOT") in LOCATION.parents or not LOCATION.is_relative_to(
    Path(sysconfig.get_paths()["purelib"]).resolve()
):
    raise SystemExit(f"django_tryon comes from {LOCATION}, not from the installed wheel")
PY

cd "$SUITE"
"$VENV/bin/python" - "$VERSION" "$ROOT" <<'PY'
import sys
from importlib import metadata
from pathlib import Path

import django_tryon

version, root = sys.argv[1:]
location = Path(django_tryon.__file__).resolve()
print(f"django_tryon {django_tryon.__version__} from {location}")
if Path(root) in location.parents or "site-packages" not in location.parts:
    sys.exit(f"django_tryon comes from {location}, not from the installed wheel")
if django_tryon.__version__ != version or metadata.version("django-tryon") != version:
    sys.exit(f"installed {metadata.version('django-tryon')}, __version__ {django_tryon.__version__}")
PY

ignores=()
for path in "${CHECKOUT_ONLY[@]}"; do ignores+=(--ignore="$path"); done
status=0
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "${ignores[@]}" "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no test" >&2
    exit 1
fi
exit "$status"
