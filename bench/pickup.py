"""Pickup: from a job's creation to its submit reaching the provider, with a real
``tryon_poll`` process on PostgreSQL, woken at the job's commit against the idle
sleep alone, in the same run.

    TRYON_BENCH_DATABASE_URL=postgres://user@host:port/name python -m bench.pickup --jobs 40

Jobs are created one at a time, as shoppers send them: each a random 0.05 to
1.5 s after the previous one reached the provider, so creations fall anywhere
in the worker's idle sleep. Each is created the way the shopper API creates it
(``TryOnJob.objects.create``: its ``post_save`` announces it once committed).
The provider is the sandbox, in this process; the moment a submit reaches it
is read on the same clock as the job's ``created_at``. The jobs finish in
0.5 s, so the worker also has queries to make while new jobs come.

Both behaviours run the same jobs, one after the other, each with its own
worker process: ``WAKE_ON_COMMIT`` on (the default), then off (the idle sleep,
``IDLE_INTERVAL`` 1 s, finds the job).
"""

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time

from bench import common

API_KEY = "bench"
PROCESSING_SECONDS = 0.5
IDLE_INTERVAL = 1.0
MODES = {"woken at commit": True, "idle sleep": False}


def tryon_setting(base_url, wake):
    return {
        "API_KEY": API_KEY,
        "BASE_URL": base_url,
        "POLL_INTERVAL": 0.5,
        "IDLE_INTERVAL": IDLE_INTERVAL,
        "CONCURRENCY": 4,
        "WAKE_ON_COMMIT": wake,
    }


def run_worker(tryon, media_root):
    """The worker process: ``manage.py tryon_poll`` on the benchmark's database."""
    common.setup_django(tryon, media_root=media_root, fresh=False)
    from django.core.management import call_command

    call_command("tryon_poll", verbosity=2, worker_id="bench-pickup")


def measure(mode, wake, *, jobs, rng, sandbox, garment, photo, media_root):
    from django_tryon.models import TryOnJob

    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.pickup",
            "--worker",
            json.dumps(tryon_setting(sandbox.url, wake)),
            "--media-root",
            media_root,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=common.ROOT,
        env={**os.environ, "PYTHONPATH": str(common.ROOT)},
    )
    try:
        # Its first pass is over (nothing due): from here it sleeps between passes.
        for line in child.stdout:
            if line.startswith("Pass:"):
                break
        else:
            raise RuntimeError(f"The {mode} worker exited before its first pass.")
        output = threading.Thread(target=child.stdout.read, daemon=True)
        output.start()
        pickups = []
        for _ in range(jobs):
            time.sleep(rng.uniform(0.05, 1.5))
            sandbox.arrived.clear()
            job = TryOnJob.objects.create(garment=garment, person_image=photo)
            if not sandbox.arrived.wait(30):
                raise RuntimeError(f"The {mode} worker did not submit a job within 30 s.")
            pickups.append(sandbox.arrived_at - job.created_at.timestamp())
        return pickups
    finally:
        child.terminate()
        child.wait(timeout=60)


def timed_sandbox():
    """The sandbox, noting when each submit reaches it (``arrived_at``, on the wall
    clock, as ``created_at``) and saying so (``arrived``)."""
    from django_tryon.sandbox import SandboxServer

    class TimedSandbox(SandboxServer):
        def submit(self, *args, **kwargs):
            self.arrived_at = time.time()
            self.arrived.set()
            return super().submit(*args, **kwargs)

    sandbox = TimedSandbox(processing_time=PROCESSING_SECONDS, result_mode="plain")
    sandbox.arrived, sandbox.arrived_at = threading.Event(), 0.0
    return sandbox


def figures(pickups):
    return {
        "jobs": len(pickups),
        "median": common.median(pickups),
        "p95": common.percentile(pickups, 95),
        "max": max(pickups),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=40, help="Jobs per behaviour.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--media-root", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(json.loads(args.worker), args.media_root)
        return 0
    if not os.environ.get("TRYON_BENCH_DATABASE_URL", "").startswith("postgres"):
        print(
            "bench.pickup needs PostgreSQL (new jobs wake the worker through NOTIFY): "
            "set TRYON_BENCH_DATABASE_URL=postgres://user:password@host:port/name.",
            file=sys.stderr,
        )
        return 2
    common.setup_django(tryon_setting("http://127.0.0.1:1", True))
    from django.conf import settings

    results = {}
    with timed_sandbox() as sandbox:
        garment = common.make_garments()["upper_body"]
        photo = common.shared_photo()
        for mode, wake in MODES.items():
            rng = random.Random(args.seed)  # the same gaps for both
            pickups = measure(
                mode,
                wake,
                jobs=args.jobs,
                rng=rng,
                sandbox=sandbox,
                garment=garment,
                photo=photo,
                media_root=settings.MEDIA_ROOT,
            )
            results[mode] = figures(pickups)
    woken, idle = results["woken at commit"], results["idle sleep"]
    print(
        f"Pickup, job created to submit at the provider, {args.jobs} jobs each, "
        f"PostgreSQL, one tryon_poll process (IDLE_INTERVAL {IDLE_INTERVAL:g} s):"
    )
    for mode, r in results.items():
        print(
            f"  {mode:16} median {r['median'] * 1000:6.1f} ms   p95 {r['p95'] * 1000:6.1f} ms"
            f"   max {r['max'] * 1000:6.1f} ms"
        )
    print(
        f"  ratio (woken / idle sleep): median {woken['median'] / idle['median']:.2f}x,"
        f" p95 {woken['p95'] / idle['p95']:.2f}x"
    )
    common.emit(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
