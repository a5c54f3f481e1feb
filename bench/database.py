"""Benchmark 3, database: queries per pass at 10, 100 and 1,000 jobs.

    python -m bench.database [--sizes 10,100,1000] [--concurrency 16]

Each size runs three passes over that many jobs, with ``BATCH_SIZE`` at the
size so one pass takes them all, against the sandbox in a child process, and
counts the queries of each pass with ``CaptureQueriesContext``:

- **submit**: every job pending, so every job is submitted and its task id
  written (a change);
- **in flight**: every job at the provider and still queued there, so nothing
  changes but the time of the next query;
- **results**: every job done at the provider, so every result is downloaded,
  stored and recorded (a change).

The baseline is one query per job, the least a pass writing each job on its
own would cost. The engine's own figure is a constant plus at most one write
per job whose state changed (the answers that arrive together share one),
plus one marker write per dispatch group of submits (see docs/worker.md): how
many answers arrive together depends on timing, so the counts move a little
from run to run.
"""

import argparse
import sys

from bench import common


def count_pass(worker):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    worker._schedule_read_at = None  # every measured pass reads the schedule, as a worker's first
    with CaptureQueriesContext(connection) as captured:
        report = worker.run_pass()
    return len(captured), report


def run_size(size, sandbox):
    from django.conf import settings
    from django.utils import timezone

    from django_tryon.models import TryOnJob
    from django_tryon.worker import Worker

    TryOnJob.objects.all().delete()
    settings.TRYON = {**settings.TRYON, "BASE_URL": sandbox.url, "BATCH_SIZE": size}
    garment = next(iter(common.make_garments().values()))
    figures = {"jobs": size}
    with Worker(worker_id=f"bench-db-{size}") as worker:
        sandbox.control(processing_time=3600)  # still queued at the next pass
        common.create_jobs(size, garment, common.shared_photo())
        figures["submit"], report = count_pass(worker)
        assert report.submitted == size, report
        TryOnJob.objects.update(next_attempt_at=timezone.now())
        figures["in_flight"], report = count_pass(worker)
        assert report.queried == size and report.succeeded == 0, report
        TryOnJob.objects.all().delete()
        sandbox.control(processing_time=0)  # done by the next pass
        # (Deleting jobs deleted their photo, shared or not.)
        common.create_jobs(size, garment, common.shared_photo())
        worker.run_pass()
        TryOnJob.objects.update(next_attempt_at=timezone.now())
        figures["results"], report = count_pass(worker)
        assert report.succeeded == size, report
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    common.setup_django({"API_KEY": "bench", "CONCURRENCY": args.concurrency, "POLL_INTERVAL": 5.0})
    results = []
    with common.SandboxProcess(result_mode="plain") as sandbox:
        for size in (int(s) for s in args.sizes.split(",")):
            results.append(run_size(size, sandbox))
    print(f"Database queries per pass (CONCURRENCY {args.concurrency}; baseline: one per job):")
    for r in results:
        print(
            f"  {r['jobs']:5} jobs: submit pass {r['submit']:5}   in-flight pass {r['in_flight']:3}"
            f"   results pass {r['results']:5}"
        )
    common.emit({"concurrency": args.concurrency, "sizes": results})


if __name__ == "__main__":
    sys.exit(main())
