"""Settings of the Oscar tests: the example Oscar shop's, on the test database.

Run them with ``pytest --ds tests.oscar.settings tests/oscar`` (``make test`` does).
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "example_oscar"))

from oscar_shop.settings import *  # noqa: F403

from tests.settings import DATABASES, PASSWORD_HASHERS  # noqa: F401

DEBUG = False
ALLOWED_HOSTS = ["*"]
SECRET_KEY = "tests-only-secret-key"
MEDIA_ROOT = tempfile.mkdtemp(prefix="tryon-oscar-test-media-")
LANGUAGE_CODE = "en-gb"

# The product pages need no search index here.
HAYSTACK_CONNECTIONS = {"default": {"ENGINE": "haystack.backends.simple_backend.SimpleEngine"}}
HAYSTACK_SIGNAL_PROCESSOR = "haystack.signals.BaseSignalProcessor"

TRYON = {
    "API_KEY": "test-key",
    "BASE_URL": "https://api.tryon.test",
}
TRYON_OSCAR = {
    "PRODUCT_CLASSES": {"t-shirts": "upper_body"},
    "CATEGORIES": {
        "tops": "upper_body",
        "trousers-and-skirts": "lower_body",
        "dresses": "full_body",
    },
}
