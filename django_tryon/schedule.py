"""When a job's next step is due: provider queries and retries after faults."""

import random
from datetime import timedelta

from .conf import tryon_settings


def query_delay(job, now):
    """How long to wait before the next query of an in-flight job."""
    return timedelta(seconds=tryon_settings.POLL_INTERVAL)


def retry_delay(attempts, *, rng=random):
    """Exponential backoff with full jitter after the ``attempts``-th transient fault.

    Jitter spreads the retries of many jobs that failed together (a provider
    outage), so they do not return in one burst.
    """
    base = tryon_settings.RETRY_BACKOFF
    cap = tryon_settings.RETRY_BACKOFF_MAX
    ceiling = min(cap, base * (2 ** max(0, attempts - 1)))
    return timedelta(seconds=ceiling / 2 + rng.uniform(0, ceiling / 2))
