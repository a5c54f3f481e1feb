"""Benchmark: accepting a 12-megapixel JPEG through the shopper API, against the
bare cost of decoding the same JPEG with Pillow, in the same run.

    python bench/intake.py [--megapixels 12] [--repeat 5] [--no-rss]

Prints, for both: the median wall time, the peak of Python's heap while it runs
(tracemalloc), and (unless --no-rss) the peak growth of the process's resident
memory, measured in a fresh child process per case so one case's high-water
mark does not hide the other's. Pillow keeps pixels outside Python's heap, so
tracemalloc sees the copies of the upload and of the output, and the resident
figure sees the decoded pixels.

It sets Django up by itself (in-memory SQLite, a temporary MEDIA_ROOT) unless
Django is already configured, as in the test suite.
"""

import argparse
import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

JOBS_URL = "/tryon/api/jobs/"
# No throttle, no quota, no reuse: every request is a full intake.
BENCH_TRYON = {
    "API_KEY": "bench",
    "THROTTLE_RATE": None,
    "DAILY_QUOTA_GUEST": None,
    "DAILY_QUOTA_USER": None,
    "REUSE_RESULTS": False,
}


def setup_django():
    """Configure a minimal project unless Django is configured already."""
    import django
    from django.conf import settings

    if settings.configured:
        return False
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",
        ALLOWED_HOSTS=["*"],
        USE_TZ=True,
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "rest_framework",
            "django_tryon",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        MEDIA_ROOT=tempfile.mkdtemp(prefix="tryon-bench-media-"),
        MEDIA_URL="/media/",
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        TRYON=BENCH_TRYON,
    )
    django.setup()
    from django.core.management import call_command
    from django.urls import include, path

    # This module is the standalone project's URLconf.
    globals()["urlpatterns"] = [path("tryon/", include("django_tryon.urls"))]

    call_command("migrate", verbosity=0)
    return True


def make_jpeg(megapixels=12.0, quality=92, seed=0):
    """A camera-like 4:3 JPEG of about ``megapixels``: a gradient under fine noise."""
    import numpy as np
    from PIL import Image

    height = int((megapixels * 1_000_000 * 3 / 4) ** 0.5)
    width = height * 4 // 3
    rng = np.random.default_rng(seed)
    gradient = np.linspace(0, 190, width, dtype=np.uint8)[None, :, None]
    pixels = rng.integers(0, 64, (height, width, 3), dtype=np.uint8) + gradient
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def bare_decode(data):
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


class Intake:
    """Posts a prepared multipart body to the API with the test client."""

    def __init__(self, data):
        from django.core.files.base import ContentFile
        from django.test import Client
        from django.test.client import BOUNDARY, encode_multipart

        from django_tryon.models import Garment

        self.garment = Garment.objects.create(
            name="Bench shirt",
            clothes_type="upper_body",
            image=ContentFile(make_jpeg(0.3), name="shirt.jpg"),
        )
        upload = io.BytesIO(data)
        upload.name = "photo.jpg"
        # Encoded once, before any measuring: the client's own copy of the body
        # is not the server's cost.
        self.body = encode_multipart(
            BOUNDARY, {"garment": self.garment.pk, "consent": "true", "person_image": upload}
        )
        self.client = Client()

    def prepare(self):
        """The request's WSGI environ. The client's own copy of the body (its
        FakePayload) is made here, outside what is measured."""
        from django.test.client import MULTIPART_CONTENT, FakePayload

        return {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": JOBS_URL,
            "CONTENT_TYPE": MULTIPART_CONTENT,
            "CONTENT_LENGTH": str(len(self.body)),
            "wsgi.input": FakePayload(self.body),
        }

    def accept(self, environ=None):
        response = self.client.request(**(environ or self.prepare()))
        if response.status_code != 201:
            raise RuntimeError(f"The API answered {response.status_code}: {response.content!r}")
        return response.json()["id"]


def timed(decode, accept, prepare, repeat):
    """Median seconds of ``decode()`` and of ``accept(prepare())``, run in turns so a
    busy machine slows both alike."""
    decode()  # warm-up: imports, first-use caches
    accept(prepare())
    decode_times, accept_times = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        decode()
        decode_times.append(time.perf_counter() - start)
        environ = prepare()
        start = time.perf_counter()
        accept(environ)
        accept_times.append(time.perf_counter() - start)
    return statistics.median(decode_times), statistics.median(accept_times)


def heap_peak(function, argument=None):
    """Peak growth of Python's heap while ``function(argument)`` runs, in bytes."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        function(argument)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return max(0, peak - start)


def measure(data, repeat=5):
    """Time and heap peaks of the bare decode and of the API intake of ``data``."""
    from django.test import override_settings

    with override_settings(TRYON=BENCH_TRYON):
        intake = Intake(data)
        decode_seconds, api_seconds = timed(
            lambda: bare_decode(data), intake.accept, intake.prepare, repeat
        )
        results = {
            "upload_bytes": len(data),
            "decode_seconds": decode_seconds,
            "api_seconds": api_seconds,
            "decode_heap_peak": heap_peak(lambda _: bare_decode(data)),
        }
        environ = intake.prepare()
        results["api_heap_peak"] = heap_peak(intake.accept, environ)
    results["time_ratio"] = results["api_seconds"] / results["decode_seconds"]
    return results


# Resident memory, one fresh process per case --------------------------------


def _reset_peak_rss():
    """Restart the resident high-water mark at the current size (Linux >= 4.0)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_bytes():
    """The process's resident high-water mark. VmHWM, not ``ru_maxrss``: after fork
    and exec, ``ru_maxrss`` still carries the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(case, path):
    """Run one case in this (fresh) process and print its resident-memory growth."""
    setup_django()
    data = Path(path).read_bytes()
    intake = Intake(data) if case == "api" else None
    bare_decode(make_jpeg(0.3))  # load Pillow's decoder before the baseline
    environ = intake.prepare() if intake else None
    _reset_peak_rss()
    before = _peak_rss_bytes()
    if case == "api":
        intake.accept(environ)
    else:
        bare_decode(data)
    print(json.dumps({"rss_growth": _peak_rss_bytes() - before}))


def rss_growth(case, path):
    output = subprocess.run(
        [sys.executable, __file__, "--child", case, "--file", str(path)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": ""},
    ).stdout
    return json.loads(output.strip().splitlines()[-1])["rss_growth"]


def _mb(size):
    return f"{size / (1024 * 1024):7.1f} MB"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-rss", action="store_true", help="Skip the child processes.")
    parser.add_argument("--child", choices=["decode", "api"], help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.file)
        return

    setup_django()
    from PIL import Image

    print(f"Pillow {Image.__version__}, Python {sys.version.split()[0]}")
    rows = []
    for quality in (75, 92, 98):
        data = make_jpeg(args.megapixels, quality=quality)
        with Image.open(io.BytesIO(data)) as image:
            size = image.size
        results = measure(data, args.repeat)
        if not args.no_rss:
            with tempfile.NamedTemporaryFile(suffix=".jpg") as file:
                file.write(data)
                file.flush()
                results["decode_rss"] = rss_growth("decode", file.name)
                results["api_rss"] = rss_growth("api", file.name)
        rows.append((quality, size, results))

    for quality, (width, height), r in rows:
        print(
            f"\n{width}x{height} JPEG q{quality}, {_mb(r['upload_bytes']).strip()} "
            f"(median of {args.repeat})"
        )
        print(f"  bare Pillow decode : {r['decode_seconds'] * 1000:7.1f} ms", end="")
        print(f"   heap peak {_mb(r['decode_heap_peak'])}", end="")
        print(f"   RSS growth {_mb(r['decode_rss'])}" if "decode_rss" in r else "")
        print(f"  API intake (201)   : {r['api_seconds'] * 1000:7.1f} ms", end="")
        print(f"   heap peak {_mb(r['api_heap_peak'])}", end="")
        print(f"   RSS growth {_mb(r['api_rss'])}" if "api_rss" in r else "")
        print(f"  ratio API / decode : {r['time_ratio']:.2f}x (target < 2x)")


if __name__ == "__main__":
    main()
