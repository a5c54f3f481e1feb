"""The worker's job writes: CPU per write of the lease-fenced statement the engine sends
(``LeasedWrites.flush``) against the plain ORM ``update()`` per job, fenced the same way.

    python -m bench.writes [--jobs 400] [--rounds 7] [--groups 1,16]

Each round takes ``--jobs`` jobs, held by one pass's lease, through one write
each (status, task id, a counter, a timestamp: what a query that moved a job
writes), flushed ``--groups`` at a time (1: one answer at a time, as at
concurrency 1; 16: answers that came back together). The engine's way and the
plain way take turns, round by round, on the same rows; each figure is the
median of its rounds, in CPU time of the writing thread. Both end the lease,
only while the pass still holds it, and know for each job whether it was
written.
"""

import argparse
import statistics
import sys
import time

from bench import common

TOKEN = "bench-writes:pass"


def write_fields(increment, number, now):
    return {
        "status": "processing",
        "provider_task_id": f"T-{number}",
        "polls": increment,
        "last_polled_at": now,
    }


def engine_round(jobs, group):
    from django.utils import timezone

    from django_tryon.leased_writes import Increment, LeasedWrites

    writes = LeasedWrites(TOKEN, clock=timezone.now)
    start = time.thread_time()
    for first in range(0, len(jobs), group):
        for number, job in enumerate(jobs[first : first + group], start=first):
            writes.add(job, write_fields(Increment(), number, timezone.now()))
        writes.flush()
    return time.thread_time() - start


def plain_round(jobs, group):
    """The plain way: one ORM ``update()`` per job, its row count telling if it was held."""
    from django.db.models import F
    from django.utils import timezone

    from django_tryon.models import ACTIVE_STATUSES, TryOnJob

    start = time.thread_time()
    for first in range(0, len(jobs), group):
        now = timezone.now()
        for number, job in enumerate(jobs[first : first + group], start=first):
            fields = write_fields(F("polls") + 1, number, timezone.now())
            TryOnJob.objects.filter(
                pk=job.pk, lease_owner=TOKEN, status__in=ACTIVE_STATUSES
            ).update(**fields, updated_at=now, lease_owner="", lease_expires_at=None)
    return time.thread_time() - start


def hold(jobs):
    """Every job queued and held by the pass again, as before its write."""
    from django_tryon.models import TryOnJob

    TryOnJob.objects.update(lease_owner=TOKEN, status="queued", polls=0)
    for job in jobs:
        job.status = "queued"


def written(count):
    from django_tryon.models import TryOnJob

    done = TryOnJob.objects.filter(status="processing", lease_owner="").count()
    assert done == count, f"{done} of {count} jobs written"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--groups", default="1,16")
    args = parser.parse_args(argv)
    common.setup_django({"API_KEY": "bench"})
    from django_tryon.models import TryOnJob

    garment = next(iter(common.make_garments().values()))
    common.create_jobs(args.jobs, garment, common.shared_photo())
    jobs = list(TryOnJob.objects.order_by("pk"))
    ways = {"engine": engine_round, "plain": plain_round}
    print(f"Job writes, {args.jobs} jobs, {args.rounds} rounds (CPU per write, median):")
    figures = []
    for group in [int(group) for group in args.groups.split(",")]:
        spent: dict[str, list[float]] = {name: [] for name in ways}
        for round_number in range(args.rounds + 1):
            for name, way in ways.items():
                hold(jobs)
                seconds = way(jobs, group)
                written(len(jobs))
                if round_number:  # the first round warms up both
                    spent[name].append(seconds / len(jobs) * 1000)
        engine, plain = (statistics.median(spent[name]) for name in ways)
        print(
            f"  {group:3d} at a time: engine {engine:.3f} ms, plain ORM update {plain:.3f} ms "
            f"({engine / plain:.2f}x; rounds engine "
            f"{', '.join(f'{v:.3f}' for v in spent['engine'])}; plain "
            f"{', '.join(f'{v:.3f}' for v in spent['plain'])})"
        )
        figures.append({"group": group, "engine_ms": engine, "plain_ms": plain})
    common.emit({"groups": figures})
    return 0


if __name__ == "__main__":
    sys.exit(main())
