"""Files made of empty JPEG segments or PNG chunks are refused before Pillow walks them."""

import io

import pytest
import responses

from django_tryon import segments
from django_tryon.images import ImageRejected, normalise_image
from django_tryon.results import InvalidResultError, ResultFetcher
from tests.support.images import photo_bytes, png_chunk

EMPTY_COMMENT = b"\xff\xfe\x00\x02"


def with_comments(jpeg, count):
    """``jpeg`` with ``count`` empty comment segments right after its start marker."""
    return jpeg[:2] + EMPTY_COMMENT * count + jpeg[2:]


def with_chunks(png, count, kind=b"teSt"):
    """``png`` with ``count`` empty private chunks right after its header chunk."""
    header_end = 8 + 25  # the signature, then IHDR's length, type, 13 bytes and CRC
    return png[:header_end] + png_chunk(kind) * count + png[header_end:]


def test_a_jpeg_of_empty_comments_is_refused_before_it_is_parsed():
    bomb = with_comments(photo_bytes(), 5_000)
    with pytest.raises(ImageRejected) as caught:
        normalise_image(io.BytesIO(bomb))
    assert caught.value.code == "not_an_image"


def test_a_jpeg_with_many_segments_below_the_cap_is_a_photo():
    photo = with_comments(photo_bytes(), segments.JPEG_MAX_HEADER_SEGMENTS - 20)
    assert normalise_image(io.BytesIO(photo)).width == 600


@pytest.mark.parametrize("kind", [b"teSt", b"tEXt"])
def test_a_png_of_empty_chunks_is_refused_before_it_is_parsed(kind):
    bomb = with_chunks(photo_bytes(image_format="PNG"), segments.PNG_MAX_CHUNKS + 1, kind)
    with pytest.raises(ImageRejected) as caught:
        normalise_image(io.BytesIO(bomb))
    assert caught.value.code == "not_an_image"


def test_a_png_in_small_data_chunks_below_the_cap_is_a_photo():
    # Pillow writes a PNG's pixels in as many data chunks as ImageFile.MAXBLOCK allows.
    from PIL import Image, ImageFile

    picture = Image.new("RGB", (600, 1200), (200, 120, 80))
    out = io.BytesIO()
    previous, ImageFile.MAXBLOCK = ImageFile.MAXBLOCK, 64
    try:
        picture.save(out, "PNG", compress_level=0)
    finally:
        ImageFile.MAXBLOCK = previous
    chunks = segments.png_chunk_count(io.BytesIO(out.getvalue()), segments.PNG_MAX_CHUNKS)
    assert 500 < chunks <= segments.PNG_MAX_CHUNKS
    assert normalise_image(io.BytesIO(out.getvalue())).width == 600


def test_the_walk_leaves_the_file_where_it_was():
    source = io.BytesIO(with_comments(photo_bytes(), 3))
    source.seek(7)
    assert not segments.has_too_many_segments(source)
    assert source.tell() == 7


def test_a_file_that_is_neither_is_left_to_pillow():
    assert not segments.has_too_many_segments(io.BytesIO(b"GIF89a" + b"\x00" * 100))
    assert not segments.has_too_many_segments(io.BytesIO(b""))


@responses.activate
def test_a_result_made_of_empty_comments_is_not_a_readable_image():
    url = "https://cdn.tryon.test/result.jpg"
    responses.get(url, body=with_comments(photo_bytes(), 50_000), content_type="image/jpeg")
    fetcher = ResultFetcher(
        base_url="https://cdn.tryon.test",
        max_bytes=10_000_000,
        timeout=(5, 5),
        resolver=lambda host, port, *args, **kwargs: [(2, 1, 6, "", ("93.184.216.34", port))],
    )
    with fetcher.new_session() as session, pytest.raises(InvalidResultError, match="segments"):
        fetcher.fetch(url, session)
