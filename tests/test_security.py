"""The app tried as an attacker would (issue 14): one test or more per item, named
``test_item<N>_...``, each failing before its fix."""

import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.db import connections
from django.utils import timezone
from PIL import Image

from django_tryon.conf import tryon_settings
from django_tryon.images import normalise_image
from django_tryon.models import TryOnJob
from django_tryon.worker import Worker
from tests.fake_provider import result_png
from tests.images import grey16_png
from tests.loopback import LoopbackServer, QuietHandler

ROOT = Path(__file__).resolve().parent.parent

# Runs one intake in a fresh process and prints how far its resident memory rose
# above what it was just before: Pillow's and libpng's buffers are counted, which
# tracemalloc would not see.
INTAKE_PEAK = """
import io, json, sys
from pathlib import Path
import django
django.setup()
from django_tryon.images import normalise_image

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

data = Path(sys.argv[1]).read_bytes()
Path("/proc/self/clear_refs").write_text("5")  # the high-water mark restarts here
before = status("VmRSS")
result = normalise_image(io.BytesIO(data))
print(json.dumps({"growth": status("VmHWM") - before, "size": [result.width, result.height]}))
"""


def test_item5_a_95_kb_16_bit_grey_png_is_decoded_within_its_bound(monkeypatch, tmp_path):
    """7000 x 7000 16-bit grey, under the pixel cap: 98 MB of 16-bit pixels, and 465 MB
    with the copies its conversion made. It is now decoded straight to 8-bit grey: the
    decoder never asks for the 16-bit picture, and the whole intake stays under both
    that size and INTAKE_MAX_DECODED_BYTES."""
    data = grey16_png(7000)
    sixteen_bit_bytes = 7000 * 7000 * 2
    assert len(data) < 150 * 1024

    asked = []
    new = Image.core.new

    def spy(mode, size):
        asked.append((mode, size))
        return new(mode, size)

    monkeypatch.setattr(Image.core, "new", spy)
    result = normalise_image(io.BytesIO(data))
    monkeypatch.undo()
    assert (result.width, result.height) == (2048, 2048)
    assert asked == [("L", (7000, 7000))]  # one byte a pixel: 49 MB, not 98

    photo = tmp_path / "grey16.png"
    photo.write_bytes(data)
    child = subprocess.run(
        [sys.executable, "-c", INTAKE_PEAK, str(photo)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        check=True,
    )
    peak = json.loads(child.stdout.strip().splitlines()[-1])
    assert peak["size"] == [2048, 2048]
    assert peak["growth"] < sixteen_bit_bytes
    assert peak["growth"] < tryon_settings.INTAKE_MAX_DECODED_BYTES


# Item 6: one slow download stops the worker ------------------------------------------


class TricklingResult:
    """A result URL that sends one byte at a time until the test releases it."""

    def __init__(self, body):
        self.body = body
        self.serving = threading.Event()  # a download has started
        self.release = threading.Event()  # the test lets the rest go
        self.sent = 0
        trickle = self

        class Handler(QuietHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(trickle.body)))
                self.end_headers()
                trickle.serving.set()
                # Less than the whole picture until released, a byte at a time;
                # then, at the latest after a minute, the rest.
                while not trickle.release.wait(0.05) and trickle.sent < len(trickle.body) - 1:
                    self._write(trickle.body[trickle.sent : trickle.sent + 1])
                trickle.release.wait(60)
                self._write(trickle.body[trickle.sent :])

            def _write(self, chunk):
                self.wfile.write(chunk)
                self.wfile.flush()
                trickle.sent += len(chunk)

        self.server = LoopbackServer(Handler)
        self.url = self.server.url

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc_info):
        self.release.set()
        self.server.stop()


def _in_thread(function):
    """Run ``function`` on a thread that shares this test's database connection (the
    test's rows are visible to it, on SQLite in memory as on PostgreSQL)."""
    connection = connections["default"]
    connection.inc_thread_sharing()
    outcome = {}

    def target():
        connections["default"] = connection
        try:
            outcome["value"] = function()
        except BaseException as err:  # handed to the test
            outcome["error"] = err

    thread = threading.Thread(target=target)
    thread.start()

    def result(timeout):
        thread.join(timeout)
        connection.dec_thread_sharing()
        assert not thread.is_alive(), "the worker's pass did not end"
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    return result


def _wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what} after {timeout} s"
        time.sleep(0.05)


def test_item6_worker_takes_new_jobs_while_a_slow_download_is_served(settings, provider, make_job):
    settings.TRYON = {
        "API_KEY": "test-key",
        "BASE_URL": provider.url,
        "POLL_INTERVAL": 600,  # the new job is not queried again within the test
        "IDLE_INTERVAL": 0.05,
        "RETRY_BACKOFF": 0,
        "CONCURRENCY": 2,
        "READ_TIMEOUT": 30,
    }
    body = result_png()
    with TricklingResult(body) as trickle, Worker(worker_id="w") as worker:
        slow = make_job(status="processing", provider_task_id="slow", submitted_at=timezone.now())
        provider.script_query("slow", ("done", f"{trickle.url}/slow.png"))
        result = _in_thread(worker.run_pass)
        try:
            assert trickle.serving.wait(30), "the slow download never started"
            new = make_job()  # a shopper's new try-on, while the download trickles
            _wait_for(
                lambda: TryOnJob.objects.filter(pk=new.pk, status="queued").exists(),
                timeout=30,
                what="the new job at the provider",
            )
            # Still being served: the pass did not wait for the slow call to end.
            assert not trickle.release.is_set() and trickle.sent < len(body)
        finally:
            trickle.release.set()
            report = result(timeout=60)
    assert (report.claimed, report.submitted, report.succeeded) == (2, 1, 1)
    assert TryOnJob.objects.get(pk=slow.pk).status == "succeeded"
    new = TryOnJob.objects.get(pk=new.pk)
    assert (new.status, new.lease_owner) == ("queued", "")
    assert len(provider.submits) == 1
