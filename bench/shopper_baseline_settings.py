"""The shopper benchmark's shop, serving the button's script as released
(``bench/baseline/django_tryon/tryon.js``) in place of the current one."""

from pathlib import Path

from bench.shopper_settings import *  # noqa: F403

# Found before the app's own static files.
STATICFILES_DIRS = [Path(__file__).resolve().parent / "baseline"]
