"""Image files for the intake tests: good photos, and every kind of bad one."""

import functools
import io
import math
import struct
import zlib

from PIL import Image


def make_image_bytes(size=(600, 1200), color=(200, 120, 80), image_format="JPEG"):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=image_format)
    return buffer.getvalue()


def photo_bytes(size=(600, 1200), color=(200, 120, 80), image_format="JPEG", **save):
    buffer = io.BytesIO()
    mode = "RGBA" if len(color) == 4 else "RGB"
    Image.new(mode, size, color).save(buffer, format=image_format, **save)
    return buffer.getvalue()


def noisy_photo_bytes(size=(4000, 3000), seed=0, quality=92, **save):
    """A camera-like JPEG: a gradient with fine noise, which compresses like a real photo."""
    import numpy as np

    width, height = size
    rng = np.random.default_rng(seed)
    gradient = np.linspace(0, 190, width, dtype=np.uint8)[None, :, None]
    pixels = rng.integers(0, 64, (height, width, 3), dtype=np.uint8) + gradient
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality, **save)
    return buffer.getvalue()


def png_chunk(kind, data=b""):
    """One PNG chunk: its length, ``kind``, ``data`` and their CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width=20000, height=20000):
    """A PNG whose header claims ``width`` x ``height`` pixels, in a few hundred bytes."""

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * 4096, 9)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND")


def animated_gif(size=(400, 400)):
    frames = [Image.new("RGB", size, (index * 80, 40, 0)) for index in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


def animated_png(size=(400, 400)):
    frames = [Image.new("RGB", size, (index * 80, 0, 0)) for index in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="PNG", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="800" height="800"><rect/></svg>'
HTML = b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>"
TEXT = b"This is a shopping list, not a photo.\nMilk\nBread\n"


def truncated_jpeg():
    data = noisy_photo_bytes((800, 1200))
    return data[: len(data) // 2]


@functools.cache
def grey16_png(side=7000, value=0x8000):
    """A ``side`` x ``side`` 16-bit grey PNG of one shade, written a row at a time: the
    issue's "95 KB PNG that costs 465 MB" (98 MB of 16-bit pixels, under the pixel cap)."""

    header = struct.pack(">IIBBBBB", side, side, 16, 0, 0, 0, 0)
    row = b"\0" + value.to_bytes(2, "big") * side
    compressor = zlib.compressobj(9)
    rows_at_once = math.gcd(side, 100)
    block = row * rows_at_once
    rows = b"".join(compressor.compress(block) for _ in range(side // rows_at_once))
    rows += compressor.flush()
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND")
