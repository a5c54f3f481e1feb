"""What the benchmarks share: a standalone Django project, sample files, a sandbox
provider in a child process, and small statistics helpers.

Each benchmark runs in its own process (``python -m bench.<name>``), which sets
Django up with :func:`setup_django`: SQLite in a file (so the worker's loop and
the benchmark's own threads share one database), a temporary ``MEDIA_ROOT``.
"""

import atexit
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
# The sandbox's control endpoints take JSON only.
JSON = "application/json"


def database_settings(workdir):
    """SQLite in ``workdir`` (WAL, the usual production settings for SQLite), or the
    PostgreSQL database that ``TRYON_BENCH_DATABASE_URL`` names
    (``postgres://user:password@host:port/name``; its tables are emptied first).

    Either way with the connection settings docs/worker.md gives a worker: a
    connection kept for a minute, checked before each pass.
    """
    worker_connections = {"CONN_MAX_AGE": 60, "CONN_HEALTH_CHECKS": True}
    url = os.environ.get("TRYON_BENCH_DATABASE_URL", "")
    if url.startswith("postgres"):
        parts = urlsplit(url)
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parts.path.lstrip("/"),
            "USER": parts.username or "",
            "PASSWORD": parts.password or "",
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            **worker_connections,
        }
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(workdir / "db.sqlite3"),
        "OPTIONS": {
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
        **worker_connections,
    }


def setup_django(tryon, *, media_root=None, fresh=True):
    """Configure a minimal project with ``TRYON = tryon``; return the temporary directory.

    ``media_root`` shares another process's files; ``fresh=False`` keeps the
    PostgreSQL tables as they are (for a second process on the same data).
    """
    import django
    from django.conf import settings

    workdir = Path(tempfile.mkdtemp(prefix="tryon-bench-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",
        ALLOWED_HOSTS=["*"],
        USE_TZ=True,
        ROOT_URLCONF="bench.urls",
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
        DATABASES={"default": database_settings(workdir)},
        MEDIA_ROOT=media_root or str(workdir / "media"),
        MEDIA_URL="/media/",
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        TRYON=tryon,
        LOGGING={"version": 1, "disable_existing_loggers": False},
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if fresh and settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # With CASCADE: the database may hold other apps' tables that point at
        # these (a test run's admin log at the content types), emptied too.
        call_command("flush", interactive=False, verbosity=0, allow_cascade=True)
    return workdir


def jpeg_bytes(size=(256, 512), color=(120, 90, 60)):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def make_garments():
    """One active garment per clothes type: ``{clothes_type: Garment}``."""
    from django.core.files.base import ContentFile

    from django_tryon.models import ClothesType, Garment

    return {
        kind: Garment.objects.create(
            name=kind,
            clothes_type=kind,
            image=ContentFile(jpeg_bytes((400, 400), (30, 60, 200)), name=f"{kind}.jpg"),
        )
        for kind in ClothesType.values
    }


def shared_photo():
    """A stored person photo that many benchmark jobs point at (its storage name).

    Deleting a job deletes its photo, so take a new one after deleting jobs.
    """
    from django.core.files.base import ContentFile

    from django_tryon.storage import upload_storage

    return upload_storage().save("bench/person.jpg", ContentFile(jpeg_bytes()))


def create_jobs(count, garment, photo_name, **fields):
    """``count`` jobs for ``garment`` sharing the photo ``photo_name``, in one query."""
    from django.utils import timezone

    from django_tryon.models import TryOnJob

    now = timezone.now()
    fields.setdefault("next_attempt_at", now)
    jobs = [
        TryOnJob(garment=garment, person_image=photo_name, created_at=now, **fields)
        for _ in range(count)
    ]
    return TryOnJob.objects.bulk_create(jobs)


class SandboxProcess:
    """The sandbox provider in a child process, so its CPU is not the worker's.

    ``cpus``, if given, is the set of CPUs the child runs on (see
    :func:`split_cpus`).
    """

    def __init__(self, cpus=None, **options):
        self.options = options
        self.cpus = cpus
        self.process = None
        self.url = None

    def __enter__(self):
        code = (
            "import json, sys\n"
            "from django_tryon.sandbox import SandboxServer\n"
            "server = SandboxServer(**json.loads(sys.argv[1]))\n"
            "print(server.url, flush=True)\n"
            "server.serve_forever()\n"
        )
        # The child inherits the CPUs of the thread that starts it.
        previous = os.sched_getaffinity(0) if self.cpus else None
        if self.cpus:
            os.sched_setaffinity(0, self.cpus)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", code, json.dumps(self.options)],
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
        finally:
            if previous is not None:
                os.sched_setaffinity(0, previous)
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            self.process.kill()
            raise RuntimeError("The sandbox did not start.")
        return self

    def __exit__(self, *exc_info):
        self.process.terminate()
        self.process.wait(timeout=10)

    def control(self, **changes):
        """Read (no ``changes``) or change the options; return the sandbox's state."""
        data = json.dumps(changes).encode() if changes else None
        request = urllib.request.Request(
            f"{self.url}/_sandbox/control", data=data, headers={"Content-Type": JSON}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def reset(self):
        request = urllib.request.Request(
            f"{self.url}/_sandbox/reset", data=b"", headers={"Content-Type": JSON}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())


def split_cpus():
    """``(worker CPUs, provider CPUs)``: the last CPU this process may use for the
    sandbox, the others for the worker; ``(None, None)`` with a single CPU.

    A real provider runs on its own machines: on the worker's cores, the
    sandbox would take CPU from the worker and cool its caches, and the
    worker's CPU time per job would count some of the provider's work.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return set(cpus[:-1]), {cpus[-1]}


def percentile(values, q):
    """The ``q``-th percentile (0-100) of ``values``, linearly interpolated."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values):
    return statistics.median(values)


def wait_until(condition, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def emit(result):
    """Print a benchmark's figures as the last line, for ``python -m bench``."""
    print("BENCH-JSON " + json.dumps(result), flush=True)


def run_child(module, args, *, timeout):
    """Run ``python -m bench.<module> args``; return (its printed text, its figures)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )
    text = "\n".join(
        line for line in done.stdout.splitlines() if not line.startswith("BENCH-JSON ")
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.{module} failed:\n{done.stdout}\n{done.stderr}")
    figures = [
        json.loads(line.removeprefix("BENCH-JSON "))
        for line in done.stdout.splitlines()
        if line.startswith("BENCH-JSON ")
    ]
    return text, figures[-1] if figures else {}


def run_parallel(children, *, timeout):
    """Run several ``(module, args)`` children at once; return their (text, figures)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(children)) as pool:
        futures = [pool.submit(run_child, m, a, timeout=timeout) for m, a in children]
        return [future.result() for future in futures]
