"""The example shop as the shopper benchmark runs it (``bench/shopper.py``).

The shop's own settings, but with the worker on the default ``POLL_INTERVAL`` (5 s,
as a shop in production: the demo's 1 s suits its 3 s sandbox jobs), and no
spending limits or throttling, since every try-on comes from 127.0.0.1.
"""

from example_project.settings import *  # noqa: F403
from example_project.settings import TRYON

TRYON = {
    **TRYON,
    "POLL_INTERVAL": 5.0,
    "THROTTLE_RATE": None,
    "DAILY_QUOTA_GUEST": None,
    "DAILY_QUOTA_USER": None,
    "DAILY_QUOTA_ADDRESS": None,
    "DAILY_QUOTA_ALL_GUESTS": None,
}
