"""The worker's loop: passes back to back while there is work, short sleeps when idle.

On PostgreSQL a new job ends the sleep at once (:mod:`django_tryon.wakeup`).
"""

import threading
import time

from django.db import close_old_connections
from django.db.models import Min, Q
from django.utils import timezone

from .conf import tryon_settings
from .models import TryOnJob
from .redaction import get_logger
from .retention import purge_expired
from .wakeup import Wakeup

logger = get_logger("django_tryon.worker")

# Never spin faster than this when idle, even with POLL_INTERVAL = 0.
MIN_IDLE_SLEEP = 0.05
# Seconds between two retention purges of one worker.
PURGE_INTERVAL = 60.0


def run(worker, *, stop=None, once=False, on_pass=None):
    """Run passes until ``stop`` (a :class:`threading.Event`) is set; one pass if ``once``.

    A pass in progress is always finished: ``stop`` is checked before each
    new provider call and between passes. ``on_pass(report)`` is called after
    every pass. Returns the number of passes run.
    """
    stop = stop or threading.Event()
    wakeup = None if once else Wakeup.for_worker(stop)
    try:
        return _loop(worker, stop, once, on_pass, wakeup)
    finally:
        if wakeup is not None:
            wakeup.close()


def _loop(worker, stop, once, on_pass, wakeup):
    passes = 0
    last_purge = None
    while True:
        close_old_connections()
        if last_purge is None or time.monotonic() - last_purge >= PURGE_INTERVAL:
            purge(worker)
            last_purge = time.monotonic()
        # A job announced during the pass joins it (wakeup.pending).
        more_due = wakeup.pending if wakeup is not None else None
        report = worker.run_pass(should_stop=stop.is_set, more_due=more_due)
        passes += 1
        if on_pass is not None:
            on_pass(report)
        if once or stop.is_set():
            return passes
        if report.claimed >= tryon_settings.BATCH_SIZE and not worker.rate_pause_remaining:
            continue  # a full batch: more may be due right now
        # Until the next job is due; on PostgreSQL a new job ends the wait (its
        # NOTIFY), including one that arrived during the pass that just ended.
        if wakeup is None or worker.rate_pause_remaining:
            stop.wait(idle_sleep(worker))  # (no new job can be submitted during a 429 pause)
        else:
            wakeup.wait(idle_sleep(worker))
        if stop.is_set():
            return passes


def purge(worker):
    """Erase shoppers' files past their retention (see :mod:`django_tryon.retention`)."""
    try:
        counts = purge_expired()
    except Exception:  # the purge must never stop the worker from moving jobs
        logger.exception("The retention purge failed; it will be tried again.")
        return None
    if counts["person_images"] or counts["results"]:
        logger.info(
            "Erased %d photo(s) and %d result(s) past their retention.",
            counts["person_images"],
            counts["results"],
        )
    return counts


def idle_sleep(worker):
    """Seconds until the next job is due, within [MIN_IDLE_SLEEP, IDLE_INTERVAL]."""
    now = timezone.now()
    next_due = (
        TryOnJob.objects.active()
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now))
        .aggregate(next_due=Min("next_attempt_at"))["next_due"]
    )
    ceiling = max(MIN_IDLE_SLEEP, float(tryon_settings.IDLE_INTERVAL))
    ceiling = max(ceiling, worker.rate_pause_remaining)
    if next_due is None:
        return ceiling
    return min(ceiling, max(MIN_IDLE_SLEEP, (next_due - now).total_seconds()))
