"""The shopper benchmark runs, at a tiny size: ``python -m bench.shopper --quick`` drives
Debian's Chromium through a try-on with the button as it is and as released, and prints
the timeline beside each other; with ``--provider fashn`` the sandbox calls the shop back,
and the planned reads are reported beside the clock and the best possible. (Its figures
are measured by the full run and recorded in docs/performance.md; timing them here would
only test the machine.)"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.shopper import PHASES

# Its own project and database: run in the first suite only (see the marker).
pytestmark = pytest.mark.run_once

ROOT = Path(__file__).resolve().parent.parent


def run_quick(*options):
    assert Path("/usr/bin/chromium").exists(), "the shopper benchmark needs Debian's chromium"
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.shopper", "--quick", "--json", *options],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def quick_run():
    return run_quick()


@pytest.fixture(scope="module")
def quick_push_run():
    return run_quick("--provider", "fashn")


def table_rows(output, header):
    """The rows of the first markdown table from the line ``header`` starts, as cells."""
    lines = output.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start:]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # after the header and the rule


def test_every_phase_is_reported_beside_the_released_button(quick_run):
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in quick_run.splitlines()
        if line.startswith("| ") and not line.startswith("| phase")
    ]
    assert [row[0] for row in rows] == [label for label, _, _ in PHASES]
    for row in rows:
        assert all(row[1:5]), row
        # The provider's time and the worker's pickup are the same for both buttons.
        if not row[0].startswith(("provider", "pickup")):
            assert row[5].endswith("x") and row[6].endswith("x"), row


def test_the_photo_leaves_smaller_than_the_released_button_sends_it(quick_run):
    figures = json.loads(quick_run.strip().splitlines()[-1])
    sent, released = figures["bytes"]["new"][0], figures["bytes"]["baseline"][0]
    # The quick run's photo is 1500 x 2000, under the intake's size: re-encoded only.
    assert 0.1 < sent < released
    # Both buttons' try-ons reached the screen, with the provider's time the same.
    assert figures["provider"]["new"] == figures["provider"]["baseline"]
    assert figures["total"]["new"][0] > figures["provider"]["new"][0]


def test_a_pushing_provider_is_reported_beside_the_clock_and_the_best_possible(quick_push_run):
    rows = table_rows(quick_push_run, "A provider that pushes its end")
    assert [row[0] for row in rows] == [
        "on screen (stored to picture), p50",
        "on screen (stored to picture), p95",
        "browser reads per job, mean",
        "browser reads per job, p50",
        "browser reads per job, p95",
    ]
    for row in rows:
        assert all(row[1:4]) and row[4].endswith("x"), row
    figures = json.loads(quick_push_run.strip().splitlines()[-1])["push"]
    # The best possible: one read, at the very moment the result is stored.
    assert figures["reads"]["best"]["mean"] == 1 and figures["on_screen"]["best"]["p50"] == 0
    # Both shoppers saw the pushed result, each after at least one read.
    assert figures["reads"]["planned"]["mean"] >= 1 and figures["reads"]["clock"]["mean"] >= 1


def test_the_planner_is_shown_at_more_reads_on_the_same_history(quick_push_run):
    rows = table_rows(quick_push_run, "| reads | reads per job")
    assert rows[0][0] == "the clock" and "(the server's)" in rows[1][0]
    shares = json.loads(quick_push_run.strip().splitlines()[-1])["push"]["planner"]
    assert list(shares) == ["0.95", "1.25", "1.5", "2", "3"]
