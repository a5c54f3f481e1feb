#!/usr/bin/env bash
# The suite at the lowest versions pyproject.toml allows: every dependency's floor
# (">=X" in [project] dependencies) installed exactly ("==X") in a fresh virtual
# environment, then the unit suite. A floor the code has outgrown fails here,
# not at a shop that upgrades nothing.
#
#   scripts/test_floor.sh                 # python3 makes the environment
#   PYTHON=python3.12 scripts/test_floor.sh
#   scripts/test_floor.sh tests/test_backend_ailab.py   # only these tests
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
unset PYTHONPATH

WORK="$(mktemp -d /tmp/tryon-floor.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

# The floors, read from pyproject.toml, as pins (one source of truth).
"$PYTHON" - >"$WORK/floors.txt" <<'EOF'
import re
import tomllib

with open("pyproject.toml", "rb") as file:
    dependencies = tomllib.load(file)["project"]["dependencies"]
for requirement in dependencies:
    match = re.fullmatch(r"([A-Za-z0-9_.\[\]-]+)>=([0-9][0-9A-Za-z.]*)", requirement.replace(" ", ""))
    if not match:
        raise SystemExit(f"pyproject.toml: {requirement!r} has no plain '>=' floor")
    name = re.sub(r"\[.*\]", "", match.group(1))
    print(f"{name}=={match.group(2)}")
EOF
echo "--- Floors: $(tr '\n' ' ' <"$WORK/floors.txt")"

"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet --upgrade pip
# The floors as constraints: the test tools resolve around them, or the install fails.
"$WORK/venv/bin/python" -m pip install --quiet -c "$WORK/floors.txt" -e ".[test,sandbox]"
"$WORK/venv/bin/python" -m pip freeze --all | grep -i -f <(sed 's/==.*//' "$WORK/floors.txt")

status=0
"$WORK/venv/bin/python" -m pytest -q -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no test" >&2
    exit 1
fi
exit "$status"
