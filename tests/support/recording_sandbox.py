"""The sandbox provider as the end-to-end tests run it: in this process, on loopback,
with one more fault (a share of slow answers) and a timeline of the API requests
it received, to see how fast the workers called it."""

import hashlib
import socketserver
import sys
import threading
import time

from django_tryon.sandbox.server import SandboxServer


class RecordingSandbox(SandboxServer):
    """:class:`SandboxServer` plus ``slow`` (a share of API answers delayed by a random
    0.5 to ``slow_seconds`` seconds, counted as the fault ``slow``) and
    :attr:`timeline`, the monotonic time of every API request."""

    def __init__(self, *, slow=0.0, slow_seconds=3.0, **options):
        super().__init__("127.0.0.1", 0, **options)
        self.slow = slow
        self.slow_seconds = slow_seconds
        self.timeline = []
        self._timeline_lock = threading.Lock()
        self.httpd.handle_error = self._handle_error

    def _handle_error(self, request, client_address):
        # A client that gave up on a slow answer is part of the test, not news.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            socketserver.BaseServer.handle_error(self.httpd, request, client_address)

    def inject_faults(self, kind):
        with self._timeline_lock:
            self.timeline.append(time.monotonic())
        drop_after = super().inject_faults(kind)
        if self.faults.applies_to(kind) and self.faults.chance(self.slow):
            self.counters.fault("slow")
            time.sleep(self.faults.uniform(0.5, self.slow_seconds))
        return drop_after

    def busiest_seconds(self, limit):
        """Requests received in each whole second of the run, and the longest run
        of consecutive seconds with more than ``limit`` requests."""
        with self._timeline_lock:
            times = list(self.timeline)
        if not times:
            return [], 0
        start = times[0]
        buckets = [0] * (int(times[-1] - start) + 1)
        for moment in times:
            buckets[int(moment - start)] += 1
        longest = run = 0
        for count in buckets:
            run = run + 1 if count > limit else 0
            longest = max(longest, run)
        return buckets, longest


def photo_digest(job):
    """The SHA-256 the sandbox files a submit under (``Counters.tasks_by_person``)."""
    with job.person_image.open("rb") as photo:
        return hashlib.sha256(photo.read()).hexdigest()
