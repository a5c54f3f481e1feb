"""The pickup benchmark (``python -m bench.pickup``) runs at a tiny size where the suite
runs on PostgreSQL (as ``.ci/run``'s PostgreSQL phase does), against the database
``TRYON_TEST_DATABASE_URL`` names (its own tables, not the test database). On
SQLite it refuses with a message: nothing can wake a worker there (the idle sleep
that finds jobs instead is tested in tests/test_wakeup.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("TRYON_TEST_DATABASE_URL", "")


def run_bench(*args, database_url):
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env["TRYON_BENCH_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "bench.pickup", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )


def test_the_pickup_bench_needs_postgresql():
    done = run_bench("--jobs", "2", database_url="")
    assert done.returncode == 2
    assert "needs PostgreSQL" in done.stderr


if DATABASE_URL.startswith("postgres"):

    def test_the_pickup_bench_measures_both_behaviours_on_postgresql():
        done = run_bench("--jobs", "3", database_url=DATABASE_URL)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "woken at commit  median" in done.stdout
        assert "idle sleep       median" in done.stdout
        assert "ratio (woken / idle sleep)" in done.stdout
        figures = json.loads(done.stdout.rsplit("BENCH-JSON ", 1)[1])
        assert {mode: r["jobs"] for mode, r in figures.items()} == {
            "woken at commit": 3,
            "idle sleep": 3,
        }
