"""A phone's photo, as a shopper's browser gets it: 12 MP, several MB, stored sideways
with an EXIF orientation, and a GPS position in its metadata.

Drawn from the sandbox's sample model (no downloaded picture), with a camera's fine
grain so it compresses like a real photo.
"""

import io

from PIL import Image

# What the tests look for in the bytes that left the browser.
CAMERA_MAKE = "BenchCam"
GPS_LATITUDE = (48.0, 51.0, 29.43)  # 48° 51' 29.43" N: Paris
ORIENTATION_RIGHT_TOP = 6  # stored rotated: shown turned 90° clockwise
GPS_IFD = 0x8825


def phone_photo(width=3000, height=4000, *, grain=10.0, quality=92, seed=0):
    """JPEG bytes of a ``width`` x ``height`` portrait (as shown), stored as a landscape
    with EXIF orientation 6, a camera make and a GPS position."""
    import numpy as np

    from django_tryon.sandbox import samples

    person = samples.model_photo("ava").convert("RGB").resize((width, height), Image.BICUBIC)
    rng = np.random.default_rng(seed)
    pixels = np.asarray(person, dtype=np.float32)
    pixels += rng.normal(0.0, grain, pixels.shape).astype(np.float32)
    shown = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    # Orientation 6 means "turn 90° clockwise to show": store it turned the other way.
    stored = shown.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x010F] = CAMERA_MAKE  # Make
    exif[0x0112] = ORIENTATION_RIGHT_TOP
    exif.get_ifd(GPS_IFD).update({1: "N", 2: GPS_LATITUDE, 3: "E", 4: (2.0, 17.0, 40.0)})
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=quality, exif=exif.tobytes())
    return buffer.getvalue()
