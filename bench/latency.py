"""Benchmark 1, added latency: from the moment the provider has a result to the moment
it is on storage and visible in the job's JSON, learned schedule against naive, and
against the best schedule for the same provider times at the same query budget.

    python -m bench.latency [--jobs 60] [--warmup 100] [--window 60] [--scale 1] [--seed 1]

The provider is the sandbox, in this process. Each kind of job (the three
clothes types) takes its own spread of times, as real providers' do:

- ``upper_body``, tight: 20 s, normal, 10 % standard deviation;
- ``lower_body``, log-normal: median 10 s, sigma 0.35 (p5 5.6 s, p95 17.8 s);
- ``full_body``, two modes: 60 % around 7 s, 40 % around 19 s (each 10 %).

``--warmup`` jobs per kind arrive at random over ``--window`` seconds (a shop
in production has history; the figures exclude them), then ``--jobs`` jobs per
kind over the next ``--window`` seconds. The worker's loop (``runner.run``)
runs in a thread, exactly as ``tryon_poll`` runs it.

"Visible" is the moment ``job_succeeded`` is sent, i.e. the row is saved,
checked by serialising the job as the API does (its ``result_url`` set).
The provider's moment is the sandbox task's own finish time, on the same
clock. ``--scale`` below 1 shrinks every duration (processing times, poll
interval, minimum step) to run faster; figures are divided by it back to
real seconds, which also multiplies the worker's own overhead by 1/scale,
so a scaled run can only look worse than a real-time one.

The learned and the naive schedule run at once, in two child processes
(``--one``), so they see the same machine load. The best schedule is then
computed in this process for each kind (:func:`best_delay`): the query
times with the least mean delay for the kind's distribution of times (a
dynamic programme over 20,000 times drawn from it), at the queries per job
the learned schedule made, evaluated on the very jobs measured.
"""

import argparse
import bisect
import itertools
import math
import random
import sys
import threading
import time
from collections import defaultdict

from bench import common

API_KEY = "bench"
KINDS = ("upper_body", "lower_body", "full_body")
# No provider time outside these bounds (a log-normal has no upper bound of its own).
MIN_SECONDS, MAX_SECONDS = 1.0, 45.0
POLL_INTERVAL = 5.0
# Times drawn from each distribution to find its best schedule.
BEST_SAMPLES = 20_000
BEST_CANDIDATES = 200
BEST_PRICES = 80


def _tight(rng):
    return 20.0 * (1 + rng.gauss(0, 0.10))


def _log_normal(rng):
    return 10.0 * math.exp(rng.gauss(0, 0.35))


def _two_modes(rng):
    centre = 7.0 if rng.random() < 0.6 else 19.0
    return centre * (1 + rng.gauss(0, 0.10))


DISTRIBUTIONS = {
    "upper_body": ("tight, 20 s +/- 10 %", _tight),
    "lower_body": ("log-normal, median 10 s, sigma 0.35", _log_normal),
    "full_body": ("two modes, 60 % 7 s and 40 % 19 s", _two_modes),
}


def job_time(kind, rng):
    """A provider time for a job of ``kind``, in seconds."""
    return min(MAX_SECONDS, max(MIN_SECONDS, DISTRIBUTIONS[kind][1](rng)))


def run_one(schedule_name, *, jobs, warmup, window, scale, seed):
    poll = POLL_INTERVAL * scale
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
    schedule.MIN_CELL *= scale
    worker.FIRST_QUERY_SPREAD *= scale
    # The same jobs (times and arrivals) for both schedules: the warm-up's arrive
    # over the first window, the measured ones over the next.
    rng = random.Random(seed + 1)
    planned = []
    for phase, count, start in (("warmup", warmup, 0.0), ("measured", jobs, window)):
        for _ in range(count):
            for kind in KINDS:
                at = (start + rng.uniform(0, window)) * scale
                planned.append((at, phase, kind, job_time(kind, rng) * scale))
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
        the_worker.schedule = recorder = PlannedTimes(the_worker.schedule)
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
            # The schedule's own delay: its first planned query at or after the
            # finish, wherever the worker's lag put the query that found it.
            times = sorted(moment - wall_offset for moment in recorder.planned[job.pk])
            index = bisect.bisect_left(times, task.finishes_at)
            if index == len(times):  # found by a query that left later than planned
                index -= 1
            rows.append(
                {
                    "kind": job.garment.clothes_type,
                    "added": (visible[job.pk] - task.finishes_at) / scale,
                    "waiting": max(0.0, planned - task.finishes_at) / scale,
                    "engine": (visible[job.pk] - max(planned, task.finishes_at)) / scale,
                    "queries": job.polls,
                    "provider_seconds": task.processing_time / scale,
                    "scheduled": max(0.0, times[index] - task.finishes_at) / scale,
                    "scheduled_queries": index + 1,
                }
            )
    result = summary(rows)
    result.update(
        schedule=schedule_name,
        scale=scale,
        kinds={kind: summary([r for r in rows if r["kind"] == kind]) for kind in KINDS},
    )
    return result


def summary(rows):
    added = [r["added"] for r in rows]
    return {
        "jobs": len(rows),
        "mean": sum(added) / len(added),
        "median": common.median(added),
        "p95": common.percentile(added, 95),
        "max": max(added),
        "queries_per_job": sum(r["queries"] for r in rows) / len(rows),
        # Where the added time goes: waiting for the planned query, then the
        # engine (the pass starting, the query, download, storage, the write).
        "waiting_median": common.median([r["waiting"] for r in rows]),
        "waiting_mean": sum(r["waiting"] for r in rows) / len(rows),
        "engine_median": common.median([r["engine"] for r in rows]),
        "engine_p95": common.percentile([r["engine"] for r in rows], 95),
        "provider_seconds": [r["provider_seconds"] for r in rows],
        # The schedule alone, as planned (see run_one), for the best schedule.
        "scheduled_mean": sum(r["scheduled"] for r in rows) / len(rows),
        "scheduled_queries_per_job": sum(r["scheduled_queries"] for r in rows) / len(rows),
    }


class PlannedTimes:
    """A schedule that notes every query time it plans for each job (wall clock)."""

    def __init__(self, schedule):
        self.schedule = schedule
        self.planned = defaultdict(list)

    def __getattr__(self, name):
        return getattr(self.schedule, name)

    def next_query_at(self, job, now):
        when = self.schedule.next_query_at(job, now)
        self.planned[job.pk].append(when.timestamp())
        return when


class NaiveSchedule:
    """The baseline: a query every POLL_INTERVAL, whatever the provider took before."""

    def learn(self, kind, seconds, spread=0.0):
        pass

    def learn_found(self, job, now):
        pass

    def replace_samples(self, rows):
        pass

    def next_query_at(self, job, now):
        from datetime import timedelta

        from django_tryon.conf import tryon_settings

        return now + timedelta(seconds=float(tryon_settings.POLL_INTERVAL))


def best_delay(kind, durations, budget, seed):
    """The least mean delay over ``durations`` of a schedule made for ``kind``'s
    distribution of times, at ``budget`` queries per job.

    For each price of a query, the dynamic programme of
    :meth:`django_tryon.schedule.QueryTable.solve` finds the query times that
    cost least (mean delay plus price times queries) over ``BEST_SAMPLES``
    times drawn from the distribution; each such schedule is replayed over
    ``durations``. Between the two schedules that bracket the budget, the
    best is their mix (each job following one or the other at random), which
    no single schedule beats: the figure is a floor.
    """
    from django_tryon.schedule import MIN_STEP, QueryTable, quantile

    rng = random.Random(f"{seed}:{kind}")
    drawn = sorted(job_time(kind, rng) for _ in range(BEST_SAMPLES))
    candidates = sorted(
        {max(MIN_STEP, quantile(drawn, i / BEST_CANDIDATES)) for i in range(BEST_CANDIDATES + 1)}
    )
    table = QueryTable(drawn, [1.0] * len(drawn), candidates)
    points = set()
    for step in range(BEST_PRICES):
        price = 1e-3 * 1e6 ** (step / (BEST_PRICES - 1))
        times, _queries, _delay = table.solve(price, MIN_STEP)
        points.add(replay(times, durations))
    points = sorted(points)
    best = min((delay for queries, delay in points if queries <= budget), default=math.inf)
    for (q1, d1), (q2, d2) in itertools.combinations(points, 2):
        if q1 < budget <= q2:
            best = min(best, d1 + (d2 - d1) * (budget - q1) / (q2 - q1))
    return best


def replay(times, durations):
    """(queries per job, mean delay) of the query ``times`` over ``durations``; a job
    slower than the last time is queried every ``POLL_INTERVAL`` after it."""
    queries = delay = 0.0
    for duration in durations:
        index = bisect.bisect_left(times, duration)
        if index < len(times):
            queries += index + 1
            delay += times[index] - duration
        else:
            more = math.ceil((duration - times[-1]) / POLL_INTERVAL)
            queries += len(times) + more
            delay += times[-1] + more * POLL_INTERVAL - duration
    return queries / len(durations), delay / len(durations)


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
    parser.add_argument("--jobs", type=int, default=60, help="Measured jobs per kind.")
    parser.add_argument("--warmup", type=int, default=100, help="Warm-up jobs per kind.")
    parser.add_argument("--window", type=float, default=60.0, help="Arrival window, seconds.")
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
    for kind, figures in adaptive["kinds"].items():
        figures["best_mean"] = best_delay(
            kind, figures["provider_seconds"], figures["scheduled_queries_per_job"], args.seed
        )
        figures["ratio_to_best"] = figures["scheduled_mean"] / figures["best_mean"]
        figures["added_ratio_to_best"] = figures["mean"] / figures["best_mean"]
    print(
        f"Added latency, {adaptive['jobs'] // len(KINDS)} jobs per kind, time scale {args.scale}:"
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
                f"    {kind:10} ({DISTRIBUTIONS[kind][0]}) median {k['median']:.2f} s"
                f"   p95 {k['p95']:.2f} s   mean {k['mean']:.2f} s   "
                f"queries/job {k['queries_per_job']:.2f}"
            )
    print(
        "  The learned schedule's own delay (its first planned query after the finish) "
        "against the best schedule for the same times at as many queries per job:"
    )
    for kind, k in adaptive["kinds"].items():
        print(
            f"    {kind:10} schedule {k['scheduled_mean']:.2f} s at "
            f"{k['scheduled_queries_per_job']:.2f} queries/job (every 5 s: "
            f"{naive['kinds'][kind]['queries_per_job']:.2f}), best {k['best_mean']:.2f} s: "
            f"ratio {k['ratio_to_best']:.2f}x; with the engine (added latency, mean "
            f"{k['mean']:.2f} s) {k['added_ratio_to_best']:.2f}x"
        )
    for r in (adaptive, naive):
        for figures in (r, *r["kinds"].values()):
            figures.pop("provider_seconds")
    common.emit({"adaptive": adaptive, "naive": naive})


if __name__ == "__main__":
    sys.exit(main())
