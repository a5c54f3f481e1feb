"""Benchmark 6, webhooks: from the moment the provider has a result to the moment it
is on storage and visible, when the provider calls the shop back, beside polling.

    python -m bench.webhooks [--jobs 40] [--warmup 20] [--window 40] [--scale 1]
                             [--idle-interval 1] [--seed 1]

The provider is the sandbox speaking FASHN, in this process, each task taking
its own time drawn around FASHN's ``balanced`` mode (log-normal, median 8 s,
clipped to 5-17 s). The shop is a real HTTP server on loopback serving
``tryon/`` (the shopper API and the webhook endpoint); the worker's loop
(``runner.run``) runs in a thread, exactly as ``tryon_poll`` runs it.
``--warmup`` jobs arrive at random over ``--window`` seconds (polling learns
its schedule from them; the figures exclude them), then ``--jobs`` more over
the next ``--window`` seconds.

Two runs, in two child processes (``--one``), at once on SQLite so they see
the same machine load: ``webhook`` (``WEBHOOK_BASE_URL`` set: the sandbox POSTs each
task's end to the shop) and ``polling`` (no webhook: the learned query
schedule). For each measured job: the added latency (the job's
``job_succeeded`` moment minus the sandbox task's own finish time, one clock),
the provider queries it cost, and for webhooks where the time went: from
the provider's finish to the delivery recorded, then from there to the
result visible (the worker's idle wait, the download, storage and write).
``--idle-interval`` is the worker's ``IDLE_INTERVAL``: on SQLite, a job a
webhook made due waits for the worker's next pass, at most that long; on
PostgreSQL (``TRYON_BENCH_DATABASE_URL``) the delivery's commit wakes the
worker (``WAKE_ON_COMMIT``), and the two runs go one after the other, as they
share the database. ``--scale`` below 1 shrinks every provider time, the poll and
the idle interval (figures are divided back to real seconds, so the worker's own
overhead is multiplied by 1/scale: a scaled run can only look worse).
"""

import argparse
import os
import random
import sys
import threading
import time

from bench import common

API_KEY = "bench"
MEDIAN_SECONDS, MIN_SECONDS, MAX_SECONDS = 8.0, 5.0, 17.0
SPREAD = 0.3  # sigma of the log-normal


def on_postgresql():
    return os.environ.get("TRYON_BENCH_DATABASE_URL", "").startswith("postgres")


def provider_times(count, seed):
    rng = random.Random(seed)
    return [
        min(MAX_SECONDS, max(MIN_SECONDS, rng.lognormvariate(0, SPREAD) * MEDIAN_SECONDS))
        for _ in range(count)
    ]


def shop_server():
    """The bench's Django project served on a free port of 127.0.0.1, from a thread."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    httpd = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=False)
    httpd.set_app(WSGIHandler())
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def run_one(mode, *, jobs, warmup, window, scale, idle_interval, seed):
    common.setup_django(
        {
            "BACKEND": "django_tryon.backends.fashn.FashnBackend",
            "API_KEY": API_KEY,
            "BASE_URL": "http://127.0.0.1:1",  # replaced below, once the sandbox listens
            "POLL_INTERVAL": 5.0 * scale,
            "IDLE_INTERVAL": idle_interval * scale,
            "CONCURRENCY": 8,
        }
    )
    from django.conf import settings

    from django_tryon import runner, schedule, worker
    from django_tryon.api.serializers import JobSerializer
    from django_tryon.models import TryOnJob
    from django_tryon.sandbox import SandboxServer
    from django_tryon.signals import job_succeeded

    schedule.MIN_STEP *= scale
    worker.FIRST_QUERY_SPREAD *= scale
    rng = random.Random(seed + 1)
    times = [t * scale for t in provider_times(warmup + jobs, seed)]
    arrivals = sorted(
        [("warmup", rng.uniform(0, window) * scale) for _ in range(warmup)]
        + [("measured", (window + rng.uniform(0, window)) * scale) for _ in range(jobs)],
        key=lambda arrival: arrival[1],
    )
    lock = threading.Lock()

    visible = {}

    def on_success(sender, job, **kwargs):
        data = JobSerializer(TryOnJob.objects.get(pk=job.pk)).data
        if data["status"] == "succeeded" and data["result_url"]:
            visible[job.pk] = time.monotonic()

    job_succeeded.connect(on_success)
    httpd, shop_url = shop_server()
    with SandboxServer(protocol="fashn", api_key=API_KEY, result_mode="plain") as sandbox:
        create = sandbox.store.create

        def timed_create(**kwargs):
            # Each task takes the next planned time (in submit order).
            with lock:
                kwargs["processing_time"] = times.pop()
            return create(**kwargs)

        sandbox.store.create = timed_create
        settings.TRYON = {
            **settings.TRYON,
            "BASE_URL": sandbox.url,
            "WEBHOOK_BASE_URL": shop_url if mode == "webhook" else "",
        }
        garment = common.make_garments()["upper_body"]
        photo = common.shared_photo()
        the_worker = worker.Worker(worker_id=f"bench-{mode}")
        stop = threading.Event()
        loop = threading.Thread(target=runner.run, args=(the_worker,), kwargs={"stop": stop})
        loop.start()
        try:
            start = time.monotonic()
            created = {"warmup": [], "measured": []}
            for phase, at in arrivals:
                delay = start + at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                created[phase] += common.create_jobs(1, garment, photo)
            everything = created["warmup"] + created["measured"]
            timeout = (2 * window + 2 * MAX_SECONDS) * scale + 60
            finished = common.wait_until(
                lambda: all(job.pk in visible for job in everything) or not loop.is_alive(),
                timeout,
            )
            if not finished or not loop.is_alive():
                raise RuntimeError(
                    f"{sum(j.pk not in visible for j in everything)} job(s) unfinished."
                )
        finally:
            stop.set()
            loop.join()
            the_worker.close()
            httpd.shutdown()
        wall_offset = time.time() - time.monotonic()
        rows = []
        for job in TryOnJob.objects.filter(pk__in=[j.pk for j in created["measured"]]):
            task = sandbox.store.get(job.provider_task_id, API_KEY, sandbox.options.result_ttl)
            if task is None:
                raise RuntimeError(f"Job {job.pk} has no task at the sandbox.")
            pushed = job.pushed_at.timestamp() - wall_offset if job.pushed_at else None
            rows.append(
                {
                    "added": (visible[job.pk] - task.finishes_at) / scale,
                    "queries": job.polls,
                    "pushed": job.pushed_at is not None,
                    "delivery": (pushed - task.finishes_at) / scale if pushed else None,
                    "pickup": (visible[job.pk] - pushed) / scale if pushed else None,
                }
            )
        stats = sandbox.stats()
    return {
        "mode": mode,
        **summary(rows),
        "scale": scale,
        "idle_interval": idle_interval,
        "webhooks": stats["webhooks"],
    }


def summary(rows):
    added = [r["added"] for r in rows]
    pushed = [r for r in rows if r["pushed"]]
    deliveries = [r["delivery"] for r in pushed]
    pickups = [r["pickup"] for r in pushed]
    return {
        "jobs": len(rows),
        "median": common.median(added),
        "p95": common.percentile(added, 95),
        "max": max(added),
        "queries_per_job": sum(r["queries"] for r in rows) / len(rows),
        "pushed_jobs": len(pushed),
        "queries_of_pushed_jobs": sum(r["queries"] for r in pushed),
        "delivery_median": common.median(deliveries) if deliveries else None,
        "delivery_p95": common.percentile(deliveries, 95) if deliveries else None,
        "pickup_median": common.median(pickups) if pickups else None,
        "pickup_p95": common.percentile(pickups, 95) if pickups else None,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=40, help="Measured jobs.")
    parser.add_argument("--warmup", type=int, default=20, help="Warm-up jobs.")
    parser.add_argument("--window", type=float, default=40.0, help="Arrival window, seconds.")
    parser.add_argument("--scale", type=float, default=1.0, help="Time scale (1 = real time).")
    parser.add_argument(
        "--idle-interval", type=float, default=1.0, help="The worker's IDLE_INTERVAL, seconds."
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--one", choices=["webhook", "polling"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    options = {
        "jobs": args.jobs,
        "warmup": args.warmup,
        "window": args.window,
        "scale": args.scale,
        "idle_interval": args.idle_interval,
        "seed": args.seed,
    }
    if args.one:
        common.emit(run_one(args.one, **options))
        return
    passed = [f"--{name.replace('_', '-')}={value}" for name, value in options.items()]
    children = [("webhooks", [*passed, f"--one={mode}"]) for mode in ("webhook", "polling")]
    if on_postgresql():
        # One database for both: one after the other (each empties its tables first).
        results = [common.run_child(*child, timeout=900) for child in children]
    else:
        results = common.run_parallel(children, timeout=900)
    webhook, polling = (figures for _, figures in results)
    database = "PostgreSQL, woken at commit" if on_postgresql() else "SQLite"
    print(
        f"Result on storage after the provider finished, FASHN protocol, {webhook['jobs']} jobs "
        f"(provider times 5-17 s, median {MEDIAN_SECONDS:g} s), {database}, IDLE_INTERVAL "
        f"{args.idle_interval:g} s, time scale {args.scale}:"
    )
    for r in (webhook, polling):
        print(
            f"  {r['mode']:8} median {r['median']:.2f} s   p95 {r['p95']:.2f} s   "
            f"max {r['max']:.2f} s   queries/job {r['queries_per_job']:.2f}"
        )
    print(
        f"  webhook / polling: p95 {webhook['p95'] / polling['p95']:.2f}x, median "
        f"{webhook['median'] / polling['median']:.2f}x"
    )
    print(
        f"  webhooks: {webhook['pushed_jobs']} of {webhook['jobs']} jobs pushed, "
        f"{webhook['queries_of_pushed_jobs']} provider queries for them; sandbox deliveries "
        f"{webhook['webhooks']}"
    )
    print(
        f"  where the time goes: the delivery recorded {webhook['delivery_median']:.3f} s "
        f"median ({webhook['delivery_p95']:.3f} s p95) after the provider finished, then the "
        f"worker's pickup, download, storage and write {webhook['pickup_median']:.3f} s "
        f"median ({webhook['pickup_p95']:.3f} s p95)"
    )
    common.emit({"webhook": webhook, "polling": polling})


if __name__ == "__main__":
    sys.exit(main())
