"""The docs keep up with the code."""

import re
from pathlib import Path

from django_tryon.conf import DEFAULTS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_documented_with_its_default():
    text = (DOCS / "settings.md").read_text()
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| `([^`]*)`", text, flags=re.MULTILINE))
    missing = sorted(set(DEFAULTS) - set(rows))
    assert not missing, f"Settings not in docs/settings.md: {missing}"
    unknown = sorted(set(rows) - set(DEFAULTS))
    assert not unknown, f"docs/settings.md documents settings that do not exist: {unknown}"
    for key, documented in rows.items():
        assert documented == repr(DEFAULTS[key]).replace("'", '"'), key
