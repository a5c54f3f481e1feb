"""The example shop as the browser tests run it: its own settings without the spending
limits.

Every test's try-ons come from 127.0.0.1, several a minute: the throttle (10 a minute
per address) and the address's daily quota would refuse some of them, depending on how
fast the machine runs the tests. The limits have tests of their own
(``tests/test_security.py``); here the button is the subject.
"""

from example_project.settings import *  # noqa: F403
from example_project.settings import TRYON

TRYON = {
    **TRYON,
    "THROTTLE_RATE": None,
    "DAILY_QUOTA_GUEST": None,
    "DAILY_QUOTA_USER": None,
    "DAILY_QUOTA_ADDRESS": None,
    "DAILY_QUOTA_ALL_GUESTS": None,
}
