"""The app tried as an attacker would (issue 14): one test or more per item, named
``test_item<N>_...``, each failing before its fix."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from django_tryon.conf import tryon_settings
from django_tryon.images import normalise_image
from tests.images import grey16_png

ROOT = Path(__file__).resolve().parent.parent

# Runs one intake in a fresh process and prints how far its resident memory rose
# above what it was just before: Pillow's and libpng's buffers are counted, which
# tracemalloc would not see.
INTAKE_PEAK = """
import io, json, sys
from pathlib import Path
import django
django.setup()
from django_tryon.images import normalise_image

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

data = Path(sys.argv[1]).read_bytes()
Path("/proc/self/clear_refs").write_text("5")  # the high-water mark restarts here
before = status("VmRSS")
result = normalise_image(io.BytesIO(data))
print(json.dumps({"growth": status("VmHWM") - before, "size": [result.width, result.height]}))
"""


def test_item5_a_95_kb_16_bit_grey_png_is_decoded_within_its_bound(monkeypatch, tmp_path):
    """7000 x 7000 16-bit grey, under the pixel cap: 98 MB of 16-bit pixels, and 465 MB
    with the copies its conversion made. It is now decoded straight to 8-bit grey: the
    decoder never asks for the 16-bit picture, and the whole intake stays under both
    that size and INTAKE_MAX_DECODED_BYTES."""
    data = grey16_png(7000)
    sixteen_bit_bytes = 7000 * 7000 * 2
    assert len(data) < 150 * 1024

    asked = []
    new = Image.core.new

    def spy(mode, size):
        asked.append((mode, size))
        return new(mode, size)

    monkeypatch.setattr(Image.core, "new", spy)
    result = normalise_image(io.BytesIO(data))
    monkeypatch.undo()
    assert (result.width, result.height) == (2048, 2048)
    assert asked == [("L", (7000, 7000))]  # one byte a pixel: 49 MB, not 98

    photo = tmp_path / "grey16.png"
    photo.write_bytes(data)
    child = subprocess.run(
        [sys.executable, "-c", INTAKE_PEAK, str(photo)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        check=True,
    )
    peak = json.loads(child.stdout.strip().splitlines()[-1])
    assert peak["size"] == [2048, 2048]
    assert peak["growth"] < sixteen_bit_bytes
    assert peak["growth"] < tryon_settings.INTAKE_MAX_DECODED_BYTES
