"""The AILabAPI backend, writing down every provider call a worker process makes.

A witness for the tests that run several workers: the sandbox counts what it
received, this log says who sent it and under which lease. Set
``TRYON['BACKEND'] = "tests.support.recording.RecordingBackend"`` and, per
process, ``TRYON_E2E_CALL_LOG`` (a file path) and ``TRYON_E2E_WORKER_ID``.

Each line is JSON: ``{"kind", "worker", "photo" | "task", "lease", "start", "end"}``.
``lease`` is the job's ``lease_owner`` read from the database just before the
query went out: the lease this worker held it under, or not.
"""

import json
import os
import threading
import time

from django_tryon.backends.ailab import AILabBackend
from django_tryon.models import TryOnJob


class RecordingBackend(AILabBackend):
    def __init__(self, **options):
        super().__init__(**options)
        self.worker_id = os.environ["TRYON_E2E_WORKER_ID"]
        self._log = open(os.environ["TRYON_E2E_CALL_LOG"], "a", buffering=1)  # noqa: SIM115
        self._lock = threading.Lock()

    def _record(self, **fields):
        line = json.dumps({"worker": self.worker_id, **fields})
        with self._lock:
            self._log.write(line + "\n")

    def submit(self, request):
        start = time.time()
        try:
            return super().submit(request)
        finally:
            self._record(
                kind="submit", photo=request.person_image.filename, start=start, end=time.time()
            )

    def query(self, task_id):
        lease = (
            TryOnJob.objects.filter(provider_task_id=task_id)
            .values_list("lease_owner", flat=True)
            .first()
        )
        start = time.time()
        try:
            return super().query(task_id)
        finally:
            self._record(kind="query", task=task_id, lease=lease, start=start, end=time.time())

    def close(self):
        super().close()
        self._log.close()


def read_calls(paths):
    """Every call recorded in the log files ``paths``, in order of start time."""
    calls = []
    for path in paths:
        with open(path) as log:
            calls.extend(json.loads(line) for line in log if line.strip())
    return sorted(calls, key=lambda call: call["start"])
