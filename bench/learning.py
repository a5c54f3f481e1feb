"""How much the learned query schedule's quality depends on what it learned from: the
ratio of benchmark 1 (the schedule's own delay against the best schedule's, at as
many queries per job) over many learning histories, replayed without a clock.

    python -m bench.learning [--histories 20] [--jobs 60] [--warmup 100] [--seed 1] [--exact]

``python -m bench.latency`` measures one history in real time: a worker, the
sandbox, ``--warmup`` jobs per kind learned first, then ``--jobs`` measured.
Its ratio moves from run to run, because the schedule learns from jobs each
known only to have finished between two queries, and which spans it sees
depends on when the queries happened to be made. Here the same worker rules
(:class:`django_tryon.schedule.QuerySchedule`, its ``next_query_at`` and
``learn_found``) meet the same three spreads of provider times, one job after
another, each history with its own draw of times; each history's measured
jobs are compared with :func:`bench.latency.best_delay` over the very same
times, as benchmark 1 compares them. No HTTP, no database: the spread of the
ratio is the learning's alone. ``--exact`` lets the schedule learn each job's
exact time instead of the span between two queries: what learning from spans
costs.
"""

import argparse
import random
import statistics
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from bench.latency import DISTRIBUTIONS, POLL_INTERVAL, best_delay, job_time

TARGET = 1.15


def configure():
    from django.conf import settings

    if not settings.configured:
        settings.configure(TRYON={"POLL_INTERVAL": POLL_INTERVAL}, USE_TZ=True)


def one_history(kind, *, warmup, jobs, seed, exact=False):
    """``(ratio, delay, best, queries per job)`` of ``jobs`` jobs of ``kind`` queried by
    the schedule learned from the ``warmup`` jobs before them (and from each other;
    ``exact``: from their exact times)."""
    from django_tryon.schedule import QuerySchedule, job_kind

    rng = random.Random(f"{seed}:{kind}")
    ticks = iter(range(10**9))
    # One job a second, as benchmark 1's jobs arrive: the schedule replans on its clock.
    schedule = QuerySchedule(clock=lambda: float(next(ticks)))
    garment = SimpleNamespace(clothes_type=kind)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    measured = []
    for index in range(warmup + jobs):
        duration = job_time(kind, rng)
        submitted = start + timedelta(seconds=index)
        job = SimpleNamespace(
            provider="sandbox", garment=garment, submitted_at=submitted, last_polled_at=None
        )
        now, queries = submitted, 0
        while True:
            now = schedule.next_query_at(job, now)
            queries += 1
            elapsed = (now - submitted).total_seconds()
            if elapsed >= duration:
                if exact:
                    schedule.learn_span(job_kind(job), duration, duration)
                else:
                    schedule.learn_found(job, now)
                break
            job.last_polled_at = now
        if index >= warmup:
            measured.append((duration, elapsed - duration, queries))
    durations = [duration for duration, _delay, _queries in measured]
    delay = statistics.fmean(delay for _duration, delay, _queries in measured)
    queries = statistics.fmean(queries for _duration, _delay, queries in measured)
    best = best_delay(kind, durations, queries, seed)
    return delay / best, delay, best, queries


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--histories", type=int, default=20, help="Learning histories per kind.")
    parser.add_argument("--jobs", type=int, default=60, help="Measured jobs per history.")
    parser.add_argument("--warmup", type=int, default=100, help="Jobs learned before them.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--exact", action="store_true", help="Learn each job's exact time, not its span."
    )
    args = parser.parse_args(argv)
    configure()
    print(
        f"The learned schedule's own delay against the best schedule's at as many queries "
        f"per job, {args.histories} learning histories per kind, each {args.warmup} jobs "
        f"learned{' by their exact times' if args.exact else ''}, then {args.jobs} measured "
        f"(target <= {TARGET}x):"
    )
    for kind, (described, _draw) in DISTRIBUTIONS.items():
        ratios = []
        for history in range(args.histories):
            ratio, *_ = one_history(
                kind,
                warmup=args.warmup,
                jobs=args.jobs,
                seed=f"{args.seed}:{history}",
                exact=args.exact,
            )
            ratios.append(ratio)
        within = sum(ratio <= TARGET for ratio in ratios)
        print(
            f"  {kind:10} ({described}): mean {statistics.fmean(ratios):.2f}x   "
            f"median {statistics.median(ratios):.2f}x   max {max(ratios):.2f}x   "
            f"within {TARGET}x in {within} of {len(ratios)}"
        )
        print("    " + " ".join(f"{ratio:.2f}" for ratio in sorted(ratios)))


if __name__ == "__main__":
    main()
