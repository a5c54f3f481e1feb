"""Benchmark 4, memory: the worker's peak memory while it downloads and stores a
1 MB and a 20 MB result.

    python -m bench.memory [--sizes 1,20]

The results are JPEGs of about the given size in megabytes (noise, so they do
not compress), served by ``python -m http.server`` on loopback in a child
process. For each size a fresh worker process runs one pass over one job
whose provider task is done, with a backend that answers the query with the
result's URL; everything else (URL policy, streamed download to a spooled
temporary file, the image check, storage, the job's write) is the worker's
own path. Measured around that pass: the peak of Python's heap (tracemalloc,
every thread) and the growth of the process's resident high-water mark
(``VmHWM``, reset first). A warm-up job with a small result runs first, so
imports and first connections are not counted.

The baseline is the 1 MB result: the worker's memory should not follow the
result's size (a worker that read the result into memory would need at least
its size on the heap).
"""

import argparse
import atexit
import io
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import common

MB = 1024 * 1024


def noise_jpeg(target_bytes, seed=0):
    """A JPEG of about ``target_bytes``: noise at quality 95 does not compress much."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)

    def encode(side):
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
        return buffer.getvalue()

    sample = encode(256)
    side = int(256 * (target_bytes / len(sample)) ** 0.5)
    return encode(max(16, side))


def _vm_status(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"No {field} in /proc/self/status.")


def _reset_peak_rss():
    """Reset VmHWM to the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def child(url, warmup_url):
    """In a fresh process: one warm-up job, then the measured one; print the figures."""
    import tracemalloc

    common.setup_django(
        {
            "API_KEY": "bench",
            "BASE_URL": "http://127.0.0.1:1",
            "RESULT_HOSTS": ["127.0.0.1"],
            "RESULT_MAX_BYTES": 64 * MB,
            "CONCURRENCY": 1,
        }
    )
    from django.utils import timezone

    from django_tryon.backends.base import SUCCEEDED, TaskState, TryOnBackend
    from django_tryon.models import TryOnJob
    from django_tryon.worker import Worker

    class DoneBackend(TryOnBackend):
        """A provider whose every task is done, its result at the task id (a URL)."""

        provider_name = "ailabapi"

        def query(self, task_id):
            return TaskState(status=SUCCEEDED, result_url=task_id)

    garment = next(iter(common.make_garments().values()))
    photo = common.shared_photo()
    worker = Worker(backend=DoneBackend(), worker_id="bench-memory")

    def one_job(result_url):
        (job,) = common.create_jobs(
            1,
            garment,
            photo,
            status="queued",
            provider="ailabapi",
            provider_task_id=result_url,
            submitted_at=timezone.now(),
        )
        return job

    one_job(warmup_url)
    report = worker.run_pass()
    assert report.succeeded == 1, report
    job = one_job(url)
    hwm_reset = _reset_peak_rss()
    rss_before = _vm_status("VmRSS")
    tracemalloc.start()
    report = worker.run_pass()
    heap_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss_growth = _vm_status("VmHWM") - rss_before if hwm_reset else None
    assert report.succeeded == 1, report
    job = TryOnJob.objects.get(pk=job.pk)
    worker.close()
    print(
        json.dumps(
            {
                "heap_peak": heap_peak,
                "rss_growth": rss_growth,
                "stored_bytes": job.result_image.size,
            }
        )
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,20", help="Result sizes in MB.")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return
    sizes = [float(size) for size in args.sizes.split(",")]
    served = Path(tempfile.mkdtemp(prefix="tryon-bench-results-"))
    atexit.register(shutil.rmtree, served, ignore_errors=True)
    (served / "warmup.jpg").write_bytes(noise_jpeg(16 * 1024))
    files = {}
    for size in sizes:
        data = noise_jpeg(int(size * MB), seed=int(size))
        files[size] = f"result-{size:g}mb.jpg"
        (served / files[size]).write_bytes(data)
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "0"],
        cwd=served,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        port = server.stdout.readline().split(" port ")[1].split()[0]
        base = f"http://127.0.0.1:{port}"
        results = []
        for size in sizes:
            text, _ = common.run_child(
                "memory",
                ["--child", f"{base}/{files[size]}", f"{base}/warmup.jpg"],
                timeout=300,
            )
            figures = json.loads(text.strip().splitlines()[-1])
            figures["size_mb"] = size
            figures["result_bytes"] = (served / files[size]).stat().st_size
            if figures["stored_bytes"] != figures["result_bytes"]:
                raise RuntimeError(f"The stored result is not the served one: {figures}")
            results.append(figures)
    finally:
        server.terminate()
        server.wait(timeout=10)
    print("Worker memory while downloading and storing one result:")
    for r in results:
        rss = "n/a" if r["rss_growth"] is None else f"{r['rss_growth'] / MB:.1f} MB"
        print(
            f"  {r['result_bytes'] / MB:5.1f} MB result: heap peak {r['heap_peak'] / MB:.2f} MB"
            f"   RSS growth {rss}"
        )
    common.emit({"sizes": results})


if __name__ == "__main__":
    sys.exit(main())
