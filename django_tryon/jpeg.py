"""A JPEG's compressed data copied without its metadata, marker by marker.

A JPEG is a sequence of segments, each a marker (``0xFF`` and a code) and
most a length and a payload; after each scan header (SOS) come the scan's
entropy-coded data. :func:`without_metadata` keeps only the segments a
decoder needs to make the pixels (the frame header, quantisation and Huffman
tables, restart interval, scans) and leaves out every application segment
(APP0 to APP15: JFIF, EXIF with its thumbnail and GPS position, XMP, ICC
profiles, maker notes, Photoshop's IRB) and every comment. It gives up (None)
on anything it does not copy with certainty of the same pixels: a frame other
than 8-bit, three-component, Huffman-coded baseline, extended or progressive
(lossless, hierarchical, 12-bit, arithmetic-coded, CMYK, grey), Adobe's colour
transform segment, a multi-picture (MPF) file, a marker it does not know, a
broken structure, or bytes after the end of the picture.
"""

import re

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
EOI_CODE = 0xD9
SOS_CODE = 0xDA
# Start of frame: baseline, extended sequential and progressive, Huffman-coded.
COPIED_FRAMES = frozenset({0xC0, 0xC1, 0xC2})
# Huffman tables (DHT), quantisation tables (DQT), restart interval (DRI).
COPIED_TABLES = frozenset({0xC4, 0xDB, 0xDD})
APP0_CODE, APP15_CODE, COM_CODE = 0xE0, 0xEF, 0xFE
# Application segments whose loss would change the pixels or drop pictures: Adobe's
# (its colour transform says RGB or YCbCr, CMYK or YCCK) and the multi-picture index.
# A file with either goes through the pixels.
UNCOPYABLE_APPS = {0xEE: b"Adobe", 0xE2: b"MPF\x00"}
# Component ids 1, 2, 3: a YCbCr frame to every decoder, with or without a JFIF
# segment (libjpeg reads ids "R", "G", "B" without JFIF as RGB: not copied).
YCBCR_COMPONENT_IDS = (1, 2, 3)
SAMPLE_PRECISION = 8
# The JFIF segment libjpeg writes for a picture without a density (as Pillow saves
# the intake's re-encoded photos): JFIF 1.01, no units, 1:1, no thumbnail. It says
# YCbCr, as the frame's ids already do.
MINIMAL_JFIF = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
# Inside entropy-coded data a 0xFF byte is followed by a stuffed 0x00 or is a
# restart marker (0xD0 to 0xD7); any other marker ends the scan.
SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7]")


def without_metadata(data: bytes, size: tuple[int, int]) -> bytes | None:
    """``data``, a JPEG of ``size`` (width, height), with every application segment
    and comment left out and :data:`MINIMAL_JFIF` after its start; or None when it
    cannot be copied with the certainty of decoding to the same pixels (see the
    module's docstring). The structure is checked; the entropy-coded data is copied
    as it is, so the caller decodes the picture to know it is whole and valid."""
    if not data.startswith(SOI):
        return None
    # Views of the segments kept, joined once at the end: the file is not copied twice.
    view = memoryview(data)
    kept: list[bytes | memoryview] = [SOI, MINIMAL_JFIF]
    length = len(data)
    position = len(SOI)
    frame_seen = scanned = False
    while True:
        if data[position : position + 1] != b"\xff":
            return None
        while data[position + 1 : position + 2] == b"\xff":  # fill bytes
            position += 1
        if position + 2 > length:
            return None
        marker_at, code = position, data[position + 1]
        position += 2
        if code == EOI_CODE:
            # Nothing may follow the picture: a second picture, or data hidden there.
            if not scanned or position != length:
                return None
            kept.append(EOI)
            return b"".join(kept)
        if position + 2 > length:
            return None
        end = position + int.from_bytes(data[position : position + 2], "big")
        if end < position + 2 or end > length:
            return None
        if APP0_CODE <= code <= APP15_CODE or code == COM_CODE:
            signature = UNCOPYABLE_APPS.get(code)
            if signature is not None and data.startswith(signature, position + 2, end):
                return None
        elif code in COPIED_FRAMES:
            if frame_seen or not _copyable_frame(data[position + 2 : end], size):
                return None
            frame_seen = True
            kept.append(view[marker_at:end])
        elif code in COPIED_TABLES:
            kept.append(view[marker_at:end])
        elif code == SOS_CODE and frame_seen:
            scan_end = SCAN_END.search(data, end)
            if scan_end is None:
                return None
            end = scan_end.start()
            kept.append(view[marker_at:end])
            scanned = True
        else:
            return None
        position = end


def _copyable_frame(payload: bytes, size: tuple[int, int]) -> bool:
    """Whether a frame header is an 8-bit YCbCr picture of ``size``: precision,
    height, width, three components of three bytes each (id, sampling, table)."""
    if len(payload) != 6 + 3 * len(YCBCR_COMPONENT_IDS):
        return False
    height = int.from_bytes(payload[1:3], "big")
    width = int.from_bytes(payload[3:5], "big")
    components = len(YCBCR_COMPONENT_IDS)
    ids = tuple(payload[6 + 3 * index] for index in range(components))
    return (
        payload[0] == SAMPLE_PRECISION
        and (width, height) == size
        and payload[5] == components
        and ids == YCBCR_COMPONENT_IDS
    )
