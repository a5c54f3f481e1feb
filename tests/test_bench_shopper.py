"""The shopper benchmark runs, at a tiny size: ``python -m bench.shopper --quick`` drives
Debian's Chromium through a try-on with the button as it is and as released, and prints
the timeline beside each other. (Its figures are measured by the full run and recorded
in docs/performance.md; timing them here would only test the machine.)"""

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


@pytest.fixture(scope="module")
def quick_run():
    assert Path("/usr/bin/chromium").exists(), "the shopper benchmark needs Debian's chromium"
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.shopper", "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


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
