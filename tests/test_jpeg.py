"""A JPEG's compressed data copied without its metadata: what is kept, what is left
out, and every file left to the pixels (None)."""

import io
import struct

import pytest
from PIL import Image

from django_tryon import jpeg
from tests.support.images import noisy_photo_bytes, photo_bytes

SIZE = (640, 480)
SECRET = b"51 deg 30' N, Secret Street"


def segment(code, payload):
    return bytes([0xFF, code]) + struct.pack(">H", len(payload) + 2) + payload


def after_start(data, *segments):
    """``data`` with ``segments`` right after its start of image."""
    return data[:2] + b"".join(segments) + data[2:]


def before_marker(data, code, insert, occurrence=1):
    """``data`` with ``insert`` before the ``occurrence``-th marker ``code``."""
    at = -1
    for _ in range(occurrence):
        at = data.index(bytes([0xFF, code]), at + 1)
    return data[:at] + insert + data[at:]


def frame_at(data):
    """Offset of the frame header's payload (after its marker and length)."""
    return data.index(b"\xff\xc0") + 4


def patched(data, offset, value):
    return data[:offset] + bytes([value]) + data[offset + 1 :]


def metadata_markers(data):
    """Every APP1 to APP15 and COM marker in ``data``, and its APP0 markers. In
    entropy-coded data 0xFF is always followed by 0x00 or a restart marker, and the
    tables of these test pictures hold no 0xFF, so a byte search finds markers only."""
    found = [bytes([0xFF, code]) for code in range(0xE1, 0xF0) if bytes([0xFF, code]) in data]
    found += [b"\xff\xfe"] if b"\xff\xfe" in data else []
    return found, data.count(b"\xff\xe0")


def pixels(data):
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").tobytes()


@pytest.fixture(params=[{}, {"progressive": True}, {"restart_marker_rows": 2}])
def plain(request):
    """A photo as libjpeg writes it, with no metadata: baseline, progressive (many
    scans, Huffman tables between them) and with restart markers."""
    return noisy_photo_bytes(SIZE, quality=85, **request.param)


METADATA = (
    segment(0xE1, b"Exif\x00\x00MM\x00*" + SECRET),  # EXIF: GPS, camera, thumbnail
    segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>" + SECRET),
    segment(0xE2, b"ICC_PROFILE\x00\x01\x01" + b"\x00" * 128),
    segment(0xED, b"Photoshop 3.0\x008BIM\x04\x04" + SECRET),
    segment(0xE0, b"JFIF\x00\x01\x02\x01\x01\x2c\x01\x2c\x02\x01" + b"\x80" * 6),  # thumbnail
    segment(0xE0, b"JFXX\x00\x10" + SECRET),
    segment(0xEF, SECRET),
    segment(0xFE, b"shot at " + SECRET),
)


def test_every_application_segment_and_comment_is_left_out(plain):
    data = after_start(plain, *METADATA)
    # Before the last scan: between two scans of a progressive JPEG.
    scans = plain.count(b"\xff\xda")
    data = before_marker(data, 0xDA, segment(0xE1, b"Exif\x00\x00" + SECRET), scans)

    copy = jpeg.without_metadata(data, SIZE)

    # libjpeg's own file: its minimal JFIF, tables, frame, scans and end, byte for byte.
    assert copy == plain
    assert SECRET not in copy
    assert metadata_markers(copy) == ([], 1)
    assert copy[2:20] == jpeg.MINIMAL_JFIF
    assert pixels(copy) == pixels(data)


def test_a_file_without_jfif_gets_the_minimal_one():
    data = noisy_photo_bytes(SIZE, quality=85)
    bare = data[:2] + data[20:]  # libjpeg's JFIF segment removed
    assert bare[2:4] == b"\xff\xdb"
    assert jpeg.without_metadata(bare, SIZE) == data


def test_fill_bytes_before_a_marker_are_dropped_and_restart_markers_kept():
    plain = noisy_photo_bytes(SIZE, quality=85, restart_marker_rows=1)
    assert plain.count(b"\xff\xd0") > 1
    padded = before_marker(plain, 0xC4, b"\xff\xff\xff")
    padded = padded[:-2] + b"\xff\xff" + padded[-2:]  # before the end of image too
    assert jpeg.without_metadata(padded, SIZE) == plain


def uncopyable_cases():
    data = noisy_photo_bytes(SIZE, quality=85)
    frame = frame_at(data)
    grey, cmyk = io.BytesIO(), io.BytesIO()
    Image.new("L", SIZE, 90).save(grey, format="JPEG")
    Image.new("CMYK", SIZE, (0, 90, 90, 0)).save(cmyk, format="JPEG")
    sof_code = frame - 3
    adobe_ycbcr = b"Adobe\x00\x64\x00\x00\x00\x00\x01"
    return {
        "Adobe colour transform": after_start(data, segment(0xEE, adobe_ycbcr)),
        "multi-picture index": after_start(data, segment(0xE2, b"MPF\x00MM\x00*")),
        "data after the end": data + b"<html>",
        "a second picture after the end": data + data,
        "no end of image": data[:-2],
        "cut in the scan": data[: len(data) // 2],
        "cut in a segment": data[: frame + 4],
        "arithmetic coding": patched(data, sof_code, 0xC9),
        "arithmetic conditioning": after_start(data, segment(0xCC, b"\x00\x10")),
        "lossless": patched(data, sof_code, 0xC3),
        "hierarchical": patched(data, sof_code, 0xC5),
        "12-bit": patched(data, frame, 12),
        "grey": grey.getvalue(),
        "CMYK": cmyk.getvalue(),
        "RGB component ids": patched(
            patched(patched(data, frame + 6, 82), frame + 9, 71), frame + 12, 66
        ),
        "two frames": before_marker(data, 0xDA, data[frame - 4 : frame + 15]),
        "scan before the frame": after_start(data, segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")),
        "number of lines segment": before_marker(data, 0xD9, segment(0xDC, b"\x01\xe0")),
        "unknown marker": after_start(data, segment(0xF0, b"\x00")),
        "bytes between segments": before_marker(data, 0xC4, b"\x00"),
        "length past the end": data[:2] + b"\xff\xe1\xff\xff" + b"\x00" * 10,
        "length under two": after_start(data, b"\xff\xe1\x00\x01"),
        "not a JPEG": photo_bytes(SIZE, image_format="PNG"),
    }


@pytest.mark.parametrize("case", list(uncopyable_cases()))
def test_what_cannot_be_copied_with_certainty_is_left_to_the_pixels(case):
    assert jpeg.without_metadata(uncopyable_cases()[case], SIZE) is None


def test_a_frame_of_another_size_is_not_copied():
    """A JPEG set to decode at a reduced scale: its pixels are not the file's."""
    data = noisy_photo_bytes(SIZE, quality=85)
    assert jpeg.without_metadata(data, SIZE) == data
    assert jpeg.without_metadata(data, (320, 240)) is None
