"""Benchmark: the photo intake, against the bare cost of decoding the same bytes
with Pillow (open + load, the best possible), in the same run.

    python bench/intake.py [--megapixels 1 2 4 8 12 24] [--browser-side 2048]
                           [--repeat 5] [--no-memory] [--other-libraries]

Speed: for each size, a camera-like JPEG (smooth light, fine sensor noise,
quality 90, as a phone writes them), the same stored turned as a phone stores a
portrait (EXIF orientation 6, a GPS position: the intake must turn it and drop
the position) and the same picture as a PNG; then a
"browser-made" JPEG, as the button sends photos (a 12 MP picture scaled to
``--browser-side`` with Lanczos, quality 85, no metadata). Three things are
timed in turns (median of ``--repeat``), in CPU time with wall time beside it:

- the bare decode of the bytes by Pillow;
- the intake: :func:`django_tryon.images.normalise_image` on the bytes, what
  the server does to a photo (the target: under 2x the bare decode);
- the API request: ``POST tryon/api/jobs/`` through Django's test client,
  the intake plus Django's request work (multipart parsing, the session, the
  job's row, the file's write): context, not the target.

An upload the intake refuses (a PNG over ``MAX_UPLOAD_BYTES``, say) is shown
as refused, with the time of its refusal. Then where the intake's time goes,
in CPU ms: the bare decode beside the intake's own decode, resize (and what a
box filter or Lanczos would cost, and a JPEG's decode at half scale instead),
encode, and the whole of it, with the path each photo took; the least any
intake could spend to store the same picture (its decode, and the encode unless
the photo is copied: everything else free) beside the bare decode, which says
where under 2x can be reached at all; and how much of the finest detail each
filter turns into moire. With --other-libraries, what OpenCV, simplejpeg and
libvips (none a dependency: those installed) would spend on a JPEG just over
``INTAKE_MAX_SIDE``.

Memory (unless --no-memory): the growth of the resident high-water mark
(``VmHWM``) of a fresh child process per case, around one API intake, beside
the same file decoded whole by Pillow (what the intake did before the decode
bound) and beside the intake's own estimate (what ``INTAKE_MAX_DECODED_BYTES``
is compared with). The cases are the largest of each kind the intake accepts,
the 16-bit grey PNG "bomb" of issue 14, and one over the bound; then six of the
bombs at once, in six threads of one process, each waiting as long as it takes
for a decode slot (target: each under 150 MB, six under 400 MB).

It sets Django up by itself (SQLite, a temporary MEDIA_ROOT) unless Django is
already configured, as in the test suite.
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
    "DAILY_QUOTA_ADDRESS": None,
    "DAILY_QUOTA_ALL_GUESTS": None,
    "REUSE_RESULTS": False,
}


def setup_django(database=":memory:"):
    """Configure a minimal project unless Django is configured already. ``database``:
    SQLite's file (threads each open their own connection: an in-memory database
    would be a new, empty one in each)."""
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
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": database}},
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
    """A 4:3 JPEG of about ``megapixels``: a gradient under strong noise, which decodes
    more slowly than a camera photo (kept for the heap figures)."""
    import numpy as np
    from PIL import Image

    height, width = _sides(megapixels)
    rng = np.random.default_rng(seed)
    gradient = np.linspace(0, 190, width, dtype=np.uint8)[None, :, None]
    pixels = rng.integers(0, 64, (height, width, 3), dtype=np.uint8) + gradient
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _sides(megapixels):
    height = max(8, int((megapixels * 1_000_000 * 3 / 4) ** 0.5))
    return height, height * 4 // 3


def camera_picture(megapixels, seed=0):
    """A 4:3 picture like a camera's: smooth light and colour, edges, fine sensor noise."""
    import numpy as np
    from PIL import Image

    height, width = _sides(megapixels)
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    channels = []
    for _ in range(3):
        a, b, phase = rng.uniform(2, 9, 3).astype(np.float32)
        channels.append(
            110
            + 60 * np.sin(a * x * 6.28 + phase) * np.cos(b * y * 6.28)
            + 40 * np.sin((x * b + y * a) * 25)
        )
    pixels = np.stack(channels, -1)
    pixels += rng.normal(0, 4, pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def encode(picture, image_format, **options):
    buffer = io.BytesIO()
    picture.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def phone_jpeg(megapixels, seed=0):
    """A camera-like JPEG: quality 90, 4:2:0, as phones write them."""
    return encode(camera_picture(megapixels, seed), "JPEG", quality=90)


def bare_decode(data):
    from PIL import Image

    from django_tryon.images import heif_available

    heif_available()  # registers pillow-heif's opener, when it is installed

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


class Intake:
    """Posts a prepared multipart body to the API with the test client."""

    def __init__(self, data, name="photo.jpg"):
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
        upload.name = name
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

    def post(self, environ=None):
        """The answer's status and, for a refusal, its error code."""
        response = self.client.request(**(environ or self.prepare()))
        if response.status_code == 201:
            return 201, None
        return response.status_code, response.json()["error"]["code"]

    def accept(self, environ=None):
        status, code = self.post(environ)
        if status != 201:
            raise RuntimeError(f"The API answered {status} ({code}).")
        return status


def timed(steps, repeat, clock=time.perf_counter):
    """Median seconds of each step by ``clock``: ``steps`` are pairs (``run``,
    ``prepare``), timed as ``run(prepare())`` with ``prepare()`` outside the
    measure, all in turns so a busy machine slows each alike."""
    for run, prepare in steps:  # warm-up: imports, first-use caches
        run(prepare())
    times = [[] for _ in steps]
    for _ in range(repeat):
        for (run, prepare), step_times in zip(steps, times, strict=True):
            argument = prepare()
            start = clock()
            run(argument)
            step_times.append(clock() - start)
    return [statistics.median(step_times) for step_times in times]


def intake(data):
    """The intake alone, as the API's serializer calls it: the photo's stored bytes,
    or the refusal's code."""
    from django_tryon.images import ImageRejected, normalise_image

    try:
        return normalise_image(io.BytesIO(data)).content
    except ImageRejected as refusal:
        return refusal.code


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


def measure(data, repeat=5, name="photo.jpg", heap=True):
    """Time (and heap peaks) of the bare decode, of the intake alone and of the API
    request with ``data``. An upload the API refuses is timed all the same, and its
    code noted."""
    from django.test import override_settings

    def nothing():
        return None

    with override_settings(TRYON=BENCH_TRYON):
        request = Intake(data, name)
        status, code = request.post()
        steps = [
            (lambda _: bare_decode(data), nothing),
            (lambda _: intake(data), nothing),
            (request.post, request.prepare),
        ]
        # CPU time first: everything runs in this process, and its CPU time is what
        # it costs whatever else the machine does; wall time beside it.
        decode_cpu, intake_cpu, api_cpu = timed(steps, repeat, time.process_time)
        decode_seconds, intake_seconds, api_seconds = timed(steps, repeat)
        results = {
            "upload_bytes": len(data),
            "status": status,
            "refused": code,
            "decode_cpu": decode_cpu,
            "intake_cpu": intake_cpu,
            "api_cpu": api_cpu,
            "decode_seconds": decode_seconds,
            "intake_seconds": intake_seconds,
            "api_seconds": api_seconds,
        }
        if heap:
            results["decode_heap_peak"] = heap_peak(lambda _: bare_decode(data))
            results["api_heap_peak"] = heap_peak(request.post, request.prepare())
    decode_cpu = max(results["decode_cpu"], 1e-9)
    results["intake_cpu_ratio"] = results["intake_cpu"] / decode_cpu
    results["cpu_ratio"] = results["api_cpu"] / decode_cpu
    results["intake_time_ratio"] = results["intake_seconds"] / results["decode_seconds"]
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


def _rss_bytes():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return _peak_rss_bytes()


def estimate(data):
    """The intake's own reckoning of the memory ``data`` needs (or None when it is
    refused before that)."""
    from django_tryon import images

    figures = []
    prepare = images._prepare_decode

    def spy(image, *args):
        figures.append(None)
        cost = prepare(image, *args)
        figures[-1] = cost
        return cost

    images._prepare_decode = spy
    try:
        with contextlib.suppress(images.ImageRejected):
            images.normalise_image(io.BytesIO(data))
    finally:
        images._prepare_decode = prepare
    return figures[0] if figures and figures[0] is not None else None


def child(case, path, copies=1):
    """Run one case in this (fresh) process and print its resident-memory growth:
    ``copies`` intakes (or whole decodes) at once, in as many threads."""
    from concurrent.futures import ThreadPoolExecutor

    setup_django(str(Path(tempfile.mkdtemp(prefix="tryon-bench-db-")) / "db.sqlite3"))
    from django_tryon import images

    # Every copy is to be decoded, however busy the machine: none may be turned
    # away with 503 intake_busy (which would hold no memory) for waiting too long.
    images.DECODE_WAIT_SECONDS = 3600
    data = Path(path).read_bytes()
    name = Path(path).name
    intakes = [Intake(data, name) for _ in range(copies)] if case == "api" else []
    environs = [intake.prepare() for intake in intakes]
    bare_decode(make_jpeg(0.3))  # load Pillow's decoder before the baseline
    if intakes:
        intakes[0].post(intakes[0].prepare())  # and the API's code paths
        environs = [intake.prepare() for intake in intakes]
    answers = []
    _reset_peak_rss()
    before = _rss_bytes()
    with ThreadPoolExecutor(max_workers=copies) as pool:
        if case == "api":
            pairs = zip(intakes, environs, strict=True)
            answers = list(pool.map(lambda pair: pair[0].post(pair[1]), pairs))
        else:
            list(pool.map(lambda _: bare_decode(data), range(copies)))
    growth = _peak_rss_bytes() - before
    print(json.dumps({"rss_growth": growth, "answers": answers}))


def rss_growth(case, path, copies=1):
    """Resident growth of ``case`` ("decode" or "api") on the file at ``path``."""
    return rss_case(case, path, copies)["rss_growth"]


def rss_case(case, path, copies=1):
    output = subprocess.run(
        [sys.executable, __file__, "--child", case, "--file", str(path), "--copies", str(copies)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": ""},
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def memory_cases():
    """(label, file name, bytes) of the memory cases: the largest of each kind the
    intake accepts with the default settings, the bomb, and one over the bound."""
    from django_tryon.images import heif_available
    from tests.support.images import grey16_png

    cases = [
        ("16-bit grey PNG 7000x7000 (issue 14)", "bomb.png", grey16_png(7000)),
        ("JPEG 12 MP", "photo.jpg", phone_jpeg(12)),
        (
            "JPEG 24 MP progressive",
            "photo.jpg",
            encode(camera_picture(24), "JPEG", quality=90, progressive=True),
        ),
        ("PNG 12 MP", "photo.png", encode(_smooth(12), "PNG")),
        (
            "JPEG 2048 px, copied (quality 95)",
            "photo.jpg",
            encode(camera_picture(3.15).resize((2048, 1536)), "JPEG", quality=95),
        ),
        ("WebP 7 MP", "photo.webp", encode(camera_picture(7), "WEBP", quality=85)),
    ]
    if heif_available():
        cases.append(("HEIC 12 MP", "photo.heic", encode(camera_picture(12), "HEIF", quality=85)))
    cases.append(("PNG 7000x7000 RGB (over the bound)", "big.png", encode(_smooth(49), "PNG")))
    return cases


def _smooth(megapixels):
    """A picture PNG keeps small: light without sensor noise (a screenshot, a render)."""
    from PIL import Image

    height, width = _sides(megapixels)
    if megapixels == 49:
        height = width = 7000
    return Image.linear_gradient("L").resize((width, height)).convert("RGB")


def _mb(size):
    return f"{size / (1024 * 1024):7.1f} MB"


def cpu_ms(function, repeat):
    """Median CPU milliseconds of ``function()`` in this process (less moved by other
    work on the machine than wall time)."""
    function()
    times = []
    for _ in range(repeat):
        start = time.process_time()
        function()
        times.append(time.process_time() - start)
    return statistics.median(times) * 1000


def path_taken(data):
    """How the intake made the stored photo of ``data``: "copied" (a JPEG's own
    compressed data without its metadata) or "re-encoded", after a decode at a DCT
    scale and a resize when they happened."""
    from PIL import Image

    from django_tryon import images, jpeg

    with Image.open(io.BytesIO(data)) as image:
        size = image.size
        orientation = images._orientation(image)
        images._prepare_decode(image, io.BytesIO(data))
        decoded = image.size
    stored = images.normalise_image(io.BytesIO(data))
    if stored.content == jpeg.without_metadata(data, size):
        return "copied"
    # Orientations 5 to 8 turn the picture a quarter: its sides swap.
    shown = decoded[::-1] if orientation in (5, 6, 7, 8) else decoded
    steps = []
    if decoded != size:
        steps.append(f"1/{round(size[0] / decoded[0])} scale")
    if (stored.width, stored.height) != shown:
        steps.append("resized")
    if orientation != 1:
        steps.append("turned")
    return ", ".join([*steps, "re-encoded"])


RESIZE_FILTERS = {
    "resize": None,  # the intake's own
    "resize (box)": "BOX",
    "resize (Lanczos)": "LANCZOS",
}


def stages(data, repeat):
    """Where the intake's time goes, in CPU ms: the bare decode, the intake's own
    decode (reduced scale for a large JPEG), the resize to INTAKE_MAX_SIDE with the
    intake's filter, a box filter and Lanczos, a JPEG's decode at half scale (what
    decoding instead of resizing would cost), the JPEG encode, the whole intake; and
    the least any intake could spend to store the same picture: its decode, and the
    encode unless the photo is copied (every other step free)."""
    from PIL import Image

    from django_tryon import images

    def opened():
        image = Image.open(io.BytesIO(data))
        images._prepare_decode(image, io.BytesIO(data))
        return image

    def decoded():
        image = opened()
        image.load()
        return image

    def half_scale():
        with Image.open(io.BytesIO(data)) as image:
            image.draft(image.mode, (image.width // 2, image.height // 2))
            image.load()

    picture = images._comparable_mode(decoded())
    target = images._fit(picture.size, images._max_side())
    resized = picture.resize(target, images.RESAMPLING) if target != picture.size else picture
    figures = {
        "bare decode": cpu_ms(lambda: bare_decode(data), repeat),
        "intake decode": cpu_ms(decoded, repeat),
        **dict.fromkeys(RESIZE_FILTERS, 0.0),
        "1/2 scale decode": 0.0,
        "encode": cpu_ms(lambda: images._encode(resized.convert("RGB"), False, 90), repeat),
        "normalise_image": cpu_ms(lambda: images.normalise_image(io.BytesIO(data)), repeat),
    }
    if target != picture.size:
        for name, resampling in RESIZE_FILTERS.items():
            chosen = Image.Resampling[resampling] if resampling else images.RESAMPLING
            figures[name] = cpu_ms(
                lambda chosen=chosen: picture.resize(target, chosen, reducing_gap=3.0), repeat
            )
        if picture.size == Image.open(io.BytesIO(data)).size and data[:2] == b"\xff\xd8":
            figures["1/2 scale decode"] = cpu_ms(half_scale, repeat)
    path = path_taken(data)
    least = figures["intake decode"] + (0.0 if path == "copied" else figures["encode"])
    return {**figures, "least possible": least}, path


def other_libraries(megapixels=4.0, repeat=5):
    """CPU ms of what other libraries would do with a JPEG just over INTAKE_MAX_SIDE,
    beside Pillow's bare decode, for those installed (none is a dependency):
    OpenCV's vectorised bilinear resize alone, libjpeg-turbo's 7/8 DCT scale through
    simplejpeg (a decode straight to under 2048 px), libvips' decode, resize and
    encode. ``None`` for a library that is not installed."""
    import importlib.util
    import math

    from PIL import Image

    data = phone_jpeg(megapixels)
    with Image.open(io.BytesIO(data)) as image:
        size = image.size
    target = (2048, round(2048 * size[1] / size[0]))
    figures = {"Pillow bare decode": cpu_ms(lambda: bare_decode(data), repeat)}
    if importlib.util.find_spec("cv2"):
        import cv2
        import numpy as np

        cv2.setNumThreads(1)  # one core, as Pillow's resize
        pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

        def opencv():
            cv2.resize(pixels, target, interpolation=cv2.INTER_LINEAR)

        figures["OpenCV bilinear resize"] = cpu_ms(opencv, repeat)
    else:
        figures["OpenCV bilinear resize"] = None
    if importlib.util.find_spec("simplejpeg"):
        import simplejpeg

        width, height = (math.ceil(side * 7 / 8) for side in size)

        def seven_eighths():
            # The largest reduction that keeps at least these sides: 7/8.
            simplejpeg.decode_jpeg(data, min_width=width, min_height=height)

        figures["simplejpeg 7/8 scale decode"] = cpu_ms(seven_eighths, repeat)
    else:
        figures["simplejpeg 7/8 scale decode"] = None
    if importlib.util.find_spec("pyvips"):
        import pyvips

        def vips():
            picture = pyvips.Image.new_from_buffer(data, "", access="sequential")
            picture.resize(target[0] / size[0], kernel="linear").write_to_buffer(".jpg", Q=90)

        figures["libvips decode, resize, encode"] = cpu_ms(vips, repeat)
    else:
        figures["libvips decode, resize, encode"] = None
    return size, figures


def print_other_libraries(size, figures):
    width, height = size
    bare = figures["Pillow bare decode"]
    print(f"\nOther libraries, on a JPEG of {width}x{height} (CPU ms; - : not installed)")
    for name, value in figures.items():
        cell = "-" if value is None else f"{value:.1f}  ({value / bare:.2f}x the bare decode)"
        print(f"  {name:32}{cell}")


def aliasing(side=2309, target=2048, frequencies=(0.40, 0.45, 0.48)):
    """The amplitude (of 100) left of stripes near the finest detail a resize from
    ``side`` to ``target`` pixels can keep, per filter. Stripes past the target's
    limit (half a cycle per target pixel) that survive come out as moire, false
    coarser stripes: on a striped shirt, a pattern that is not there."""
    import numpy as np
    from PIL import Image

    from django_tryon import images

    filters = {
        f"{images.RESAMPLING.name.lower()} (intake)": images.RESAMPLING,
        "box": Image.Resampling.BOX,
        "Lanczos": Image.Resampling.LANCZOS,
    }
    rows = []
    for frequency in frequencies:
        stripes = 128 + 100 * np.cos(2 * np.pi * frequency * np.arange(side))
        picture = Image.fromarray(np.tile(stripes, (64, 1)).astype(np.uint8))
        amplitudes = {}
        for name, resampling in filters.items():
            row = np.asarray(picture.resize((target, 64), resampling), dtype=float)[32]
            amplitudes[name] = (row - row.mean()).std() * np.sqrt(2)
        rows.append((frequency, frequency * side / target, amplitudes))
    return rows


def print_aliasing(rows):
    print(
        "\nMoire: stripes resized by the factor of a 4 MP photo (2309 -> 2048 px), the "
        "amplitude left of 100 (past 0.50 cycles per output pixel, all of it is moire)"
    )
    for frequency, output, amplitudes in rows:
        cells = "   ".join(f"{name} {value:5.1f}" for name, value in amplitudes.items())
        print(f"  {frequency:.2f} cycles/px ({output:.2f} per output px): {cells}")


def print_stages(rows):
    print("\nWhere the time goes, CPU ms (median): the intake's steps beside the bare decode")
    names = [name for name in rows[0][2] if name != "least possible"]
    print(f"  {'photo':24}" + "".join(f"{name:>17}" for name in names) + "   path")
    for label, (width, height), figures, path in rows:
        cells = "".join(
            f"{figures[name]:17.1f}" if figures[name] else f"{'-':>17}" for name in names
        )
        print(f"  {label + f' {width}x{height}':24}{cells}   {path}")


def print_least_possible(rows):
    print(
        "\nThe least possible: what any intake must spend to store the same picture (its "
        "decode at the intake's scale, and the encode unless the photo is copied: the "
        "resize and all else free), CPU ms, beside the bare decode and the intake"
    )
    print(
        f"  {'photo':24}{'bare decode':>13}{'least possible':>16}{'ratio':>8}"
        f"{'intake':>10}{'ratio':>8}   path"
    )
    for label, (width, height), figures, path in rows:
        bare, least, whole = (
            figures["bare decode"],
            figures["least possible"],
            figures["normalise_image"],
        )
        print(
            f"  {label + f' {width}x{height}':24}{bare:13.1f}{least:16.1f}{least / bare:7.2f}x"
            f"{whole:10.1f}{whole / bare:7.2f}x   {path}"
        )


def print_speed(rows, repeat):
    print(
        "\nSpeed: the intake (normalise_image) and the API request (POST tryon/api/jobs/) "
        f"against a bare Pillow decode of the same bytes, CPU ms, median of {repeat} "
        "(wall-time ratios in brackets). Target: intake < 2x."
    )
    print(
        f"  {'photo':24}{'upload':>9}{'bare decode':>13}{'intake':>10}{'ratio':>16}"
        f"{'API request':>13}{'ratio':>16}"
    )
    for label, (width, height), r in rows:
        head = f"  {label + f' {width}x{height}':24}{_mb(r['upload_bytes']).strip():>9}"
        decode = f"{r['decode_cpu'] * 1000:13.1f}"
        if r["status"] != 201:
            print(
                f"{head}{decode}   refused ({r['status']} {r['refused']}): "
                f"intake {r['intake_cpu'] * 1000:.1f} ms, API {r['api_cpu'] * 1000:.1f} ms"
            )
            continue
        print(
            f"{head}{decode}{r['intake_cpu'] * 1000:10.1f}"
            f"{r['intake_cpu_ratio']:8.2f}x ({r['intake_time_ratio']:.2f}x)"
            f"{r['api_cpu'] * 1000:13.1f}{r['cpu_ratio']:8.2f}x ({r['time_ratio']:.2f}x)"
        )


def speed_cases(megapixels, browser_side):
    """(label, file name, bytes) of the speed cases: a camera-like JPEG, the same
    stored turned as phones store a portrait (EXIF orientation 6, a GPS position) and a
    PNG of each size, then the browser-made JPEG."""
    from PIL import Image

    for size in megapixels:
        picture = camera_picture(size)
        yield "JPEG", "photo.jpg", encode(picture, "JPEG", quality=90)
        yield "turned JPEG", "photo.jpg", encode(picture, "JPEG", quality=90, exif=_phone_exif())
        yield "PNG", "photo.png", encode(picture, "PNG")
    # As the button makes it: a phone photo (12 MP for 2048 px) scaled with a good
    # filter, at quality 0.85, no metadata.
    phone = camera_picture(12 * (browser_side / 2048) ** 2)
    height = round(browser_side * phone.height / phone.width)
    scaled = phone.resize((browser_side, height), Image.Resampling.LANCZOS)
    yield "browser JPEG", "photo.jpg", encode(scaled, "JPEG", quality=85)


def _phone_exif():
    """The EXIF block of a phone's portrait photo: stored sideways, turned to show."""
    from PIL import Image

    from bench.photos import GPS_IFD, GPS_LATITUDE, ORIENTATION_RIGHT_TOP

    exif = Image.Exif()
    exif[0x0112] = ORIENTATION_RIGHT_TOP
    exif.get_ifd(GPS_IFD).update({1: "N", 2: GPS_LATITUDE})
    return exif.tobytes()


def run_memory(copies=6):
    from django_tryon.conf import tryon_settings

    print(
        "\nMemory: resident growth of a fresh process, one intake (target < 150 MB) beside the "
        "same file decoded whole, and the intake's estimate "
        f"(INTAKE_MAX_DECODED_BYTES {_mb(tryon_settings.INTAKE_MAX_DECODED_BYTES).strip()})"
    )
    bomb = None
    with tempfile.TemporaryDirectory(prefix="tryon-bench-") as folder:
        for label, name, data in memory_cases():
            path = Path(folder) / name
            path.write_bytes(data)
            bomb = bomb or path
            cost = estimate(data)
            whole = rss_growth("decode", path)
            api = rss_case("api", path)
            (status, code), growth = api["answers"][0], api["rss_growth"]
            answer = "201" if status == 201 else f"{status} {code}"
            print(
                f"  {label:38} {_mb(len(data))}  decoded whole {_mb(whole)}   "
                f"intake {_mb(growth)} ({answer}, {growth / whole:.2f}x)   "
                f"estimate {_mb(cost) if cost else '      -   '}"
            )
        whole = rss_growth("decode", bomb, copies)
        api = rss_case("api", bomb, copies)
        answers = sorted({f"{status}" for status, _code in api["answers"]})
        print(
            f"  {copies} bombs at once (threads) {'':13} decoded whole {_mb(whole)}   "
            f"intake {_mb(api['rss_growth'])} ({'/'.join(answers)}, "
            f"{api['rss_growth'] / whole:.2f}x)   target < 400 MB"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--megapixels", type=float, nargs="+", default=[1.0, 2.0, 4.0, 8.0, 12.0, 24.0]
    )
    parser.add_argument(
        "--browser-side", type=int, default=2048, help="Longer side of the browser-made JPEG."
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-memory", action="store_true", help="Skip the child processes.")
    parser.add_argument(
        "--other-libraries",
        action="store_true",
        help="Also time OpenCV, simplejpeg and libvips on a 4 MP JPEG, where installed.",
    )
    parser.add_argument("--child", choices=["decode", "api"], help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--copies", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.file, args.copies)
        return

    setup_django()
    from PIL import Image

    print(f"Pillow {Image.__version__}, Python {sys.version.split()[0]}")
    rows, stage_rows = [], []
    for label, name, data in speed_cases(args.megapixels, args.browser_side):
        size = Image.open(io.BytesIO(data)).size
        results = measure(data, args.repeat, name, heap=False)
        rows.append((label, size, results))
        if results["status"] == 201:
            stage_rows.append((label, size, *stages(data, args.repeat)))
    print_speed(rows, args.repeat)
    print_stages(stage_rows)
    print_least_possible(stage_rows)
    print_aliasing(aliasing())
    if args.other_libraries:
        print_other_libraries(*other_libraries(repeat=args.repeat))
    if not args.no_memory:
        run_memory()


if __name__ == "__main__":
    main()
