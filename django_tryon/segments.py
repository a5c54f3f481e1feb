"""The segments of a JPEG and the chunks of a PNG, walked before Pillow parses them.

Pillow reads a JPEG's header (every segment before the first scan) and every
chunk of a PNG in Python, one loop turn each. A 20 MB upload made of empty
segments or chunks is five million turns: seconds of CPU for one request,
where a real photo of that size decodes in a fraction of one. A real photo
has a few dozen segments before its first scan (its tables, EXIF, an ICC
profile in up to a few dozen chunks) and a PNG one chunk per 8 to 64 KB of
data; the caps below are far above both, and the walk stops at the cap, so
refusing costs less than a millisecond.
"""

import io
from collections.abc import Iterator
from typing import IO

# Segments before a JPEG's first scan, and chunks in a whole PNG (a 20 MB PNG
# in libpng's 8 KB chunks has 2,560).
JPEG_MAX_HEADER_SEGMENTS = 1_000
PNG_MAX_CHUNKS = 10_000

JPEG_SIGNATURE = b"\xff\xd8"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
START_OF_SCAN = 0xDA


def jpeg_header_segments(source: IO[bytes]) -> Iterator[tuple[int, int]]:
    """Yield ``(marker, length)`` for each segment of a JPEG up to and including its
    first scan header, ``source`` left just after the length of the last one yielded.

    Stops early, yielding nothing more, where the markers cannot be walked.
    """
    source.seek(0)
    if source.read(2) != JPEG_SIGNATURE:
        return
    while True:
        if source.read(1) != b"\xff":
            return
        marker = source.read(1)
        while marker == b"\xff":  # fill bytes
            marker = source.read(1)
        if not marker:
            return
        if marker[0] == 0x01 or 0xD0 <= marker[0] <= 0xD7:
            continue  # markers without a length
        length = int.from_bytes(source.read(2), "big")
        if length < 2:
            return
        yield marker[0], length
        if marker[0] == START_OF_SCAN:
            return
        source.seek(length - 2, io.SEEK_CUR)


def png_chunk_count(source: IO[bytes], limit: int) -> int:
    """The number of chunks in a PNG, counted up to ``limit + 1`` at most."""
    source.seek(0)
    if source.read(8) != PNG_SIGNATURE:
        return 0
    count = 0
    while count <= limit:
        head = source.read(8)
        if len(head) < 8:
            break
        count += 1
        if head[4:8] == b"IEND":
            break
        # The chunk's data and its CRC.
        source.seek(int.from_bytes(head[:4], "big") + 4, io.SEEK_CUR)
    return count


def has_too_many_segments(source: IO[bytes]) -> bool:
    """Whether ``source`` is a JPEG or PNG with more segments than any photo has.

    Leaves ``source`` where it was.
    """
    start = source.tell()
    try:
        for count, _segment in enumerate(jpeg_header_segments(source), start=1):
            if count > JPEG_MAX_HEADER_SEGMENTS:
                return True
        return png_chunk_count(source, PNG_MAX_CHUNKS) > PNG_MAX_CHUNKS
    finally:
        source.seek(start)
