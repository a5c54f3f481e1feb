"""Benchmark 1, added latency: from the moment the provider has a result to the moment
it is on storage and visible in the job's JSON, adaptive schedule against naive.

    python -m bench.latency [--jobs 20] [--warmup 20] [--window 40] [--scale 1] [--seed 1]

The provider is the sandbox, in this process, where each kind of job (the
three clothes types) has its own typical processing time drawn from 5-30 s,
and each job its own jitter around it (normal, 10 % standard deviation,
clipped to 5-30 s). ``--warmup`` jobs per kind arrive at random over
``--window`` seconds (a shop in production has history; the figures exclude
them), then ``--jobs`` jobs per kind over the next ``--window`` seconds. The worker's loop
(``runner.run``) runs in a thread, exactly as ``tryon_poll`` runs it.

"Visible" is the moment ``job_succeeded`` is sent, i.e. the row is saved,
checked by serialising the job as the API does (its ``result_url`` set).
The provider's moment is the sandbox task's own finish time, on the same
clock. ``--scale`` below 1 shrinks every duration (processing times, poll
interval, minimum step) to run faster; figures are divided by it back to
real seconds, which also multiplies the worker's own overhead by 1/scale,
so a scaled run can only look worse than a real-time one.

Both schedules run at once, in two child processes (``--one``), so they see
the same machine load.
"""

import argparse
import random
import sys
import threading
import time

from bench import common

API_KEY = "bench"
KINDS = ("upper_body", "lower_body", "full_body")
MIN_SECONDS, MAX_SECONDS = 5.0, 30.0
JITTER = 0.10


def typical_times(seed):
    """Each kind's typical processing time: one from each third of 5-30 s, shuffled."""
    rng = random.Random(seed)
    third = (MAX_SECONDS - MIN_SECONDS) / 3
    times = [MIN_SECONDS + third * (i + rng.random()) for i in range(3)]
    rng.shuffle(times)
    return dict(zip(KINDS, times, strict=True))


def job_time(typical, rng):
    return min(MAX_SECONDS, max(MIN_SECONDS, typical * (1 + rng.gauss(0, JITTER))))


def run_one(schedule_name, *, jobs, warmup, window, scale, seed):
    poll = 5.0 * scale
    common.setup_django(
        {
            "API_KEY": API_KEY,
            "BASE_URL": "http://127.0.0.1:1",  # replaced below, once the sandbox listens
            "POLL_INTERVAL": poll,
            "IDLE_INTERVAL": 1.0 * scale,
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
    typical = typical_times(seed)
    # The same jobs (times and arrivals) for both schedules: the warm-up's arrive
    # over the first window, the measured ones over the next.
    rng = random.Random(seed + 1)
    planned = []
    for phase, count, start in (("warmup", warmup, 0.0), ("measured", jobs, window)):
        for _ in range(count):
            for kind in KINDS:
                at = (start + rng.uniform(0, window)) * scale
                planned.append((at, phase, kind, job_time(typical[kind], rng) * scale))
    planned.sort()

    pending_times = []  # processing times for the next submits, in submit order per kind
    lock = threading.Lock()

    class KindTimedSandbox(SandboxServer):
        """Each task takes the time planned for the next job of its clothes type."""

        def submit(self, *args, **kwargs):
            task = super().submit(*args, **kwargs)
            with lock:
                index = next(
                    (i for i, (kind, _) in enumerate(pending_times) if kind == task.clothes_type),
                    None,
                )
                if index is None:
                    raise RuntimeError("A submit that the benchmark did not plan.")
                _, seconds = pending_times.pop(index)
            task.processing_time = seconds
            return task

    visible = {}

    def on_success(sender, job, **kwargs):
        data = JobSerializer(TryOnJob.objects.get(pk=job.pk)).data
        if data["status"] == "succeeded" and data["result_url"]:
            visible[job.pk] = time.monotonic()

    job_succeeded.connect(on_success)
    garments_photo = None
    with KindTimedSandbox(processing_time=MAX_SECONDS, result_mode="plain") as sandbox:
        settings.TRYON = {**settings.TRYON, "BASE_URL": sandbox.url}
        garments = common.make_garments()
        garments_photo = common.shared_photo()
        the_worker = worker.Worker(worker_id=f"bench-{schedule_name}")
        if schedule_name == "naive":
            the_worker.schedule = NaiveSchedule()
        stop = threading.Event()
        loop = threading.Thread(target=runner.run, args=(the_worker,), kwargs={"stop": stop})
        loop.start()
        try:
            start = time.monotonic()
            created = {"warmup": [], "measured": []}
            for at, phase, kind, seconds in planned:
                delay = start + at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                created[phase] += submit_jobs(
                    [(kind, seconds)], garments, garments_photo, pending_times, lock
                )
            measured = created["measured"]
            timeout = (2 * MAX_SECONDS + 30) * scale + 30
            wait_for(created["warmup"] + measured, visible, timeout, loop)
        finally:
            stop.set()
            loop.join()
            the_worker.close()
        # The sandbox's clock is time.monotonic(); the jobs' times are wall-clock.
        wall_offset = time.time() - time.monotonic()
        rows = []
        for job in TryOnJob.objects.filter(pk__in=[j.pk for j in measured]).select_related(
            "garment"
        ):
            task = sandbox.store.get(job.provider_task_id, API_KEY, sandbox.options.result_ttl)
            if task is None or job.pk not in visible:
                raise RuntimeError(f"Job {job.pk} did not finish: {job.status} {job.error_code}")
            # A finished job keeps the time its last query was planned for.
            planned = job.next_attempt_at.timestamp() - wall_offset
            rows.append(
                {
                    "kind": job.garment.clothes_type,
                    "added": (visible[job.pk] - task.finishes_at) / scale,
                    "waiting": max(0.0, planned - task.finishes_at) / scale,
                    "engine": (visible[job.pk] - max(planned, task.finishes_at)) / scale,
                    "queries": job.polls,
                }
            )
    result = summary(rows)
    result.update(
        schedule=schedule_name,
        typical_seconds={kind: round(value, 1) for kind, value in typical.items()},
        scale=scale,
        kinds={kind: summary([r for r in rows if r["kind"] == kind]) for kind in KINDS},
    )
    return result


def summary(rows):
    added = [r["added"] for r in rows]
    return {
        "jobs": len(rows),
        "median": common.median(added),
        "p95": common.percentile(added, 95),
        "max": max(added),
        "queries_per_job": sum(r["queries"] for r in rows) / len(rows),
        # Where the added time goes: waiting for the planned query, then the
        # engine (the pass starting, the query, download, storage, the write).
        "waiting_median": common.median([r["waiting"] for r in rows]),
        "engine_median": common.median([r["engine"] for r in rows]),
        "engine_p95": common.percentile([r["engine"] for r in rows], 95),
    }


class NaiveSchedule:
    """The baseline: a query every POLL_INTERVAL, whatever the provider took before."""

    def learn(self, kind, seconds, spread=0.0):
        pass

    def replace_samples(self, rows):
        pass

    def next_query_at(self, job, now):
        from datetime import timedelta

        from django_tryon.conf import tryon_settings

        return now + timedelta(seconds=float(tryon_settings.POLL_INTERVAL))


def submit_jobs(planned, garments, photo, pending_times, lock):
    created = []
    for kind, seconds in planned:
        with lock:
            pending_times.append((kind, seconds))
        created += common.create_jobs(1, garments[kind], photo)
    return created


def wait_for(jobs, visible, timeout, loop):
    def finished():
        if not loop.is_alive():
            raise RuntimeError("The worker's loop died.")
        return all(job.pk in visible for job in jobs)

    if not common.wait_until(finished, timeout):
        raise RuntimeError(f"{sum(j.pk not in visible for j in jobs)} job(s) never finished.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20, help="Measured jobs per kind.")
    parser.add_argument("--warmup", type=int, default=20, help="Warm-up jobs per kind.")
    parser.add_argument("--window", type=float, default=40.0, help="Arrival window, seconds.")
    parser.add_argument("--scale", type=float, default=1.0, help="Time scale (1 = real time).")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--one", choices=["adaptive", "naive"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    options = {
        "jobs": args.jobs,
        "warmup": args.warmup,
        "window": args.window,
        "scale": args.scale,
        "seed": args.seed,
    }
    if args.one:
        common.emit(run_one(args.one, **options))
        return
    passed = [f"--{name}={value}" for name, value in options.items()]
    results = common.run_parallel(
        [("latency", [*passed, f"--one={name}"]) for name in ("adaptive", "naive")],
        timeout=900,
    )
    adaptive, naive = (figures for _, figures in results)
    print(
        f"Added latency, provider times per kind {adaptive['typical_seconds']} s "
        f"(+/- {JITTER:.0%}), {adaptive['jobs']} jobs each, time scale {args.scale}:"
    )
    for r in (adaptive, naive):
        print(
            f"  {r['schedule']:8} median {r['median']:.2f} s   p95 {r['p95']:.2f} s   "
            f"max {r['max']:.2f} s   queries/job {r['queries_per_job']:.2f}   "
            f"(median wait for the query {r['waiting_median']:.2f} s, "
            f"engine {r['engine_median']:.2f} s, engine p95 {r['engine_p95']:.2f} s)"
        )
        for kind, k in r["kinds"].items():
            print(
                f"    {kind:10} ({r['typical_seconds'][kind]:4.1f} s) median {k['median']:.2f} s"
                f"   p95 {k['p95']:.2f} s   queries/job {k['queries_per_job']:.2f}"
            )
    common.emit({"adaptive": adaptive, "naive": naive})


if __name__ == "__main__":
    sys.exit(main())
