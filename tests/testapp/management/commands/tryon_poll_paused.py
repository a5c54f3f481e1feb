"""``tryon_poll`` for the crash tests (tests/e2e/test_crash.py): the worker holds at
one point of its pass, so the test can kill it inside a window too short to hit
by timing.

``TRYON_TEST_PAUSE_AT`` names the point (one of ``django_tryon.worker.CHECKPOINTS``:
``submitted``, the provider answered a submit and the task id is not saved yet;
``queried``, a query said succeeded and nothing is downloaded yet;
``result_stored``, the result file is saved and the job not yet recorded).
The pause lasts ``TRYON_TEST_PAUSE_SECONDS`` (default: an hour) and is announced
on stderr as ``tryon-paused-at <name>``. Only this test command reads them.
"""

import os
import sys
import time

from django_tryon.management.commands import tryon_poll


def pause_at(point, seconds):
    def checkpoint(name):
        if name != point:
            return
        sys.stderr.write(f"tryon-paused-at {name}\n")
        sys.stderr.flush()
        time.sleep(seconds)

    return checkpoint


class Command(tryon_poll.Command):
    def make_worker(self, **kwargs):
        point = os.environ.get("TRYON_TEST_PAUSE_AT", "")
        if point:
            seconds = float(os.environ.get("TRYON_TEST_PAUSE_SECONDS", "3600"))
            kwargs["checkpoint"] = pause_at(point, seconds)
        return super().make_worker(**kwargs)
