"""Benchmark 2, throughput: one worker process against a provider that takes 200 ms
to answer, at concurrency 1, 4, 16 and 64.

    python -m bench.throughput [--jobs 1000] [--latency 0.2] [--levels 1,4,16,64] [--rounds 3]

The sandbox runs in a child process (``result_mode="plain"``, tasks done at
once) and answers every submit and query after ``--latency`` seconds; result
downloads are not delayed. The worker's loop (``runner.run``) runs in this
process on ``--jobs`` pending jobs, all in the database from the start, and
takes each one through a submit, a query and the download and storage of its
result. Reported: jobs finished per second, from the loop's start to the last
result, the worker process's CPU time (user + system, every thread) per
job, after a warm-up run of 20 jobs, and that CPU time over the wall time
(how busy one CPU was: far under 100 % for an I/O-bound pass). At
concurrency 1 and 4 a share of the
jobs is run (``jobs / 16`` and ``jobs / 4``, at least 20) to keep the run
short: there the calls wait their turn one by one, so the rate does not
depend on how many jobs are waiting.

The sandbox runs on the last CPU this process may use and the worker on the
others (``--no-pin`` to let them share): a real provider runs on its own
machines, and on the worker's cores the sandbox would take its CPU and cool
its caches. Every level runs ``--rounds`` times, the levels in turns, and
each figure is the median of its rounds: other work on the machine only ever
adds CPU time, in spells. Each round ends with the first level's jobs again
with the provider answering at once: the same work with no wait between
calls. Last, the CPU of one provider query, back to back and after
``--latency`` seconds idle: a call that waits for the network comes back to
cold caches, which is most of what a job costs beyond its code at low
concurrency.
"""

import argparse
import os
import resource
import statistics
import sys
import threading
import time

from bench import common


def run_level(concurrency, jobs, sandbox_url):
    from django.conf import settings

    from django_tryon import runner
    from django_tryon.models import JobStatus, TryOnJob
    from django_tryon.worker import Worker

    TryOnJob.objects.all().delete()
    settings.TRYON = {
        **settings.TRYON,
        "BASE_URL": sandbox_url,
        "CONCURRENCY": concurrency,
    }
    garment = next(iter(common.make_garments().values()))
    common.create_jobs(jobs, garment, common.shared_photo())
    worker = Worker(worker_id=f"bench-{concurrency}")
    stop = threading.Event()
    passes = []

    def on_pass(report):
        passes.append(report)
        if not TryOnJob.objects.filter(status__in=["pending", "queued", "processing"]).exists():
            stop.set()

    before, started = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    runner.run(worker, stop=stop, on_pass=on_pass)
    elapsed, after = time.monotonic() - started, resource.getrusage(resource.RUSAGE_SELF)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    cpu = user + system
    worker.close()
    done = TryOnJob.objects.filter(status=JobStatus.SUCCEEDED).count()
    if done != jobs:
        raise RuntimeError(f"Only {done} of {jobs} jobs succeeded at concurrency {concurrency}.")
    return {
        "concurrency": concurrency,
        "jobs": jobs,
        "seconds": elapsed,
        "jobs_per_second": jobs / elapsed,
        "cpu_ms_per_job": cpu / jobs * 1000,
        "system_ms_per_job": system / jobs * 1000,
        "cpu_share": cpu / elapsed,
        "passes": len(passes),
    }


def level_jobs(concurrency, jobs):
    """Below 16 calls in flight, a share of the jobs: the calls there wait their
    turn one by one, so the rate does not depend on how many jobs are waiting."""
    if concurrency < 16:
        return min(jobs, max(20, jobs * concurrency // 16))
    return jobs


def _cpus(cpus):
    return ",".join(str(cpu) for cpu in sorted(cpus))


def median_run(rounds):
    """One level's figures over its rounds: the median of each."""
    figures = dict(rounds[0])
    for key in (
        "seconds",
        "jobs_per_second",
        "cpu_ms_per_job",
        "system_ms_per_job",
        "cpu_share",
        "passes",
    ):
        figures[key] = statistics.median(run[key] for run in rounds)
    figures["cpu_ms_per_job_rounds"] = [run["cpu_ms_per_job"] for run in rounds]
    return figures


def query_cpu(sandbox, *, pause, count):
    """CPU time (ms) of one provider query by the AILab backend in this thread,
    with ``pause`` seconds idle before each, against a sandbox answering at once."""
    from django_tryon.backends.ailab import AILabBackend
    from django_tryon.backends.base import ImageInput, TryOnRequest

    sandbox.control(latency=0)
    backend = AILabBackend(api_key="bench", base_url=sandbox.url)
    try:
        photo = ImageInput(common.jpeg_bytes(), "photo.jpg", "image/jpeg")
        task = backend.submit(TryOnRequest(photo, photo, "upper_body")).task_id
        for _ in range(10):  # first connection, first use of every code path
            backend.query(task)
        spent = 0.0
        for _ in range(count):
            time.sleep(pause)
            started = time.thread_time()
            backend.query(task)
            spent += time.thread_time() - started
        return spent / count * 1000
    finally:
        backend.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--levels", default="1,4,16,64")
    parser.add_argument("--batch-size", type=int, default=100, help="TRYON BATCH_SIZE.")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="Runs of every level, the levels in turns; each figure is their median.",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="Let the worker and the sandbox share every CPU.",
    )
    parser.add_argument(
        "--wakeups",
        type=int,
        default=40,
        help="Queries measured after a pause (and 10 times as many back to back).",
    )
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.levels.split(",")]
    common.setup_django(
        {
            "API_KEY": "bench",
            "POLL_INTERVAL": 1.0,
            "IDLE_INTERVAL": 1.0,
            "RESULT_HOSTS": ["127.0.0.1"],
            "BATCH_SIZE": args.batch_size,
        }
    )
    runs = {concurrency: [] for concurrency in levels}
    worker_cpus, provider_cpus = (None, None) if args.no_pin else common.split_cpus()
    with common.SandboxProcess(
        cpus=provider_cpus, latency=args.latency, processing_time=0, result_mode="plain"
    ) as sandbox:
        if worker_cpus:
            # Before the worker's threads start: they inherit this thread's CPUs.
            os.sched_setaffinity(0, worker_cpus)
        # One-time costs (imports on first use, the first connections) are not per job.
        run_level(4, 20, sandbox.url)
        # The levels take turns, so a busy spell of the machine falls on one
        # round of several levels, not on every round of one.
        at_once = []
        for _ in range(args.rounds):
            for concurrency in levels:
                sandbox.reset()
                runs[concurrency].append(
                    run_level(concurrency, level_jobs(concurrency, args.jobs), sandbox.url)
                )
            # The same jobs one by one with no wait between calls: what they
            # cost with warm caches, beside what they cost after each wait.
            sandbox.reset()
            sandbox.control(latency=0)
            at_once.append(run_level(levels[0], level_jobs(levels[0], args.jobs), sandbox.url))
            sandbox.control(latency=args.latency)
        warm = query_cpu(sandbox, pause=0, count=args.wakeups * 10)
        cold = query_cpu(sandbox, pause=args.latency, count=args.wakeups)
    results = [median_run(runs[concurrency]) for concurrency in levels]
    warm_level = median_run(at_once)
    base = results[0]["jobs_per_second"]
    placement = (
        f"worker on CPU {_cpus(worker_cpus)}, sandbox on CPU {_cpus(provider_cpus)}"
        if worker_cpus
        else "worker and sandbox sharing the CPUs"
    )
    print(
        f"Throughput, provider answer latency {args.latency * 1000:.0f} ms, "
        f"one worker process ({placement}):"
    )
    for r in results:
        r["ratio"] = r["jobs_per_second"] / base
        print(
            f"  concurrency {r['concurrency']:3}: {r['jobs']:5} jobs in {r['seconds']:6.1f} s = "
            f"{r['jobs_per_second']:6.1f} jobs/s ({r['ratio']:.1f}x)   "
            f"CPU {r['cpu_ms_per_job']:.2f} ms/job (system {r['system_ms_per_job']:.2f}; "
            f"rounds {', '.join(f'{cpu:.2f}' for cpu in r['cpu_ms_per_job_rounds'])})   "
            f"{r['passes']:g} passes, {r['cpu_share']:.0%} of a CPU busy"
        )
    print(
        f"  concurrency {warm_level['concurrency']:3}, answers at once: "
        f"CPU {warm_level['cpu_ms_per_job']:.2f} ms/job "
        f"(rounds {', '.join(f'{cpu:.2f}' for cpu in warm_level['cpu_ms_per_job_rounds'])}): "
        f"the same jobs with no wait between calls"
    )
    print(
        f"  one provider query: {warm:.2f} ms of CPU back to back, {cold:.2f} ms after "
        f"{args.latency * 1000:.0f} ms idle ({cold / warm:.1f}x): a call that waits for "
        "the network comes back to cold caches"
    )
    common.emit(
        {
            "latency": args.latency,
            "levels": results,
            "at_once": warm_level,
            "query_cpu_ms": {"back_to_back": warm, "after_pause": cold},
            "pinned": bool(worker_cpus),
        }
    )


if __name__ == "__main__":
    sys.exit(main())
