"""Benchmark 2, throughput: one worker process against a provider that takes 200 ms
to answer, at concurrency 1, 4, 16 and 64.

    python -m bench.throughput [--jobs 1000] [--latency 0.2] [--levels 1,4,16,64]

The sandbox runs in a child process (``result_mode="plain"``, tasks done at
once) and answers every submit and query after ``--latency`` seconds; result
downloads are not delayed. The worker's loop (``runner.run``) runs in this
process on ``--jobs`` pending jobs, all in the database from the start, and
takes each one through a submit, a query and the download and storage of its
result. Reported: jobs finished per second, from the loop's start to the last
result, and the worker process's CPU time (user + system, every thread) per
job, after a warm-up run of 20 jobs. At concurrency 1 and 4 a share of the
jobs is run (``jobs / 16`` and ``jobs / 4``, at least 20) to keep the run
short: there the calls wait their turn one by one, so the rate does not
depend on how many jobs are waiting.
"""

import argparse
import resource
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
        "passes": len(passes),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--levels", default="1,4,16,64")
    parser.add_argument("--batch-size", type=int, default=100, help="TRYON BATCH_SIZE.")
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
    results = []
    with common.SandboxProcess(
        latency=args.latency, processing_time=0, result_mode="plain"
    ) as sandbox:
        # One-time costs (imports on first use, the first connections) are not per job.
        run_level(4, 20, sandbox.url)
        for concurrency in levels:
            jobs = args.jobs
            if concurrency < 16:
                jobs = max(20, args.jobs * concurrency // 16)
            sandbox.reset()
            results.append(run_level(concurrency, min(jobs, args.jobs), sandbox.url))
    base = results[0]["jobs_per_second"]
    print(f"Throughput, provider answer latency {args.latency * 1000:.0f} ms, one worker process:")
    for r in results:
        r["ratio"] = r["jobs_per_second"] / base
        print(
            f"  concurrency {r['concurrency']:3}: {r['jobs']:5} jobs in {r['seconds']:6.1f} s = "
            f"{r['jobs_per_second']:6.1f} jobs/s ({r['ratio']:.1f}x)   "
            f"CPU {r['cpu_ms_per_job']:.2f} ms/job (system {r['system_ms_per_job']:.2f})   "
            f"{r['passes']} passes"
        )
    common.emit({"latency": args.latency, "levels": results})


if __name__ == "__main__":
    sys.exit(main())
