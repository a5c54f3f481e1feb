"""The sample pictures: real images of the promised sizes, deterministic, quick to draw."""

import io
import time

import numpy as np
import pytest
from PIL import Image

from django_tryon.sandbox import samples


@pytest.mark.parametrize("garment", samples.SAMPLE_GARMENTS, ids=lambda g: g.slug)
def test_garments_are_flat_lays_on_a_light_plain_background(garment):
    image = samples.garment_image(garment.slug)
    assert image.mode == "RGB"
    assert image.size == garment.size
    pixels = np.asarray(image, dtype=np.int16)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    assert border.mean() > 200  # light
    assert border.std(axis=0).max() < 8  # plain
    # The garment fills a good part of the picture and is not plain: it has a print.
    garment_pixels = pixels[np.abs(pixels - border.mean(axis=0)).sum(axis=2) > 60]
    assert len(garment_pixels) > 0.2 * image.width * image.height
    assert garment_pixels.std(axis=0).max() > 15


@pytest.mark.parametrize("model", samples.SAMPLE_MODELS, ids=lambda m: m.slug)
def test_model_photos_are_full_body_portraits(model):
    image = samples.model_photo(model.slug)
    assert image.size == samples.MODEL_SIZE == (768, 1536)
    pixels = np.asarray(image, dtype=np.int16)
    background = pixels[5, 5]
    figure = np.abs(pixels - background).sum(axis=2) > 40
    rows = np.flatnonzero(figure.any(axis=1))
    # Head to feet within the frame, filling most of its height.
    assert rows[0] > 10 and rows[-1] < image.height - 10
    assert rows[-1] - rows[0] > 0.8 * image.height
    # The skin tone shows (face, hands).
    skin = np.abs(pixels - np.array(model.skin)).sum(axis=2) < 40
    assert skin.sum() > 5000


def test_skin_tones_and_builds_vary():
    assert len({m.skin for m in samples.SAMPLE_MODELS}) == len(samples.SAMPLE_MODELS) >= 4
    assert len({m.hips for m in samples.SAMPLE_MODELS}) >= 3


def test_every_clothes_type_has_a_sample():
    assert {g.clothes_type for g in samples.SAMPLE_GARMENTS} == {
        "upper_body",
        "lower_body",
        "full_body",
    }
    assert len(samples.SAMPLE_GARMENTS) == 5


def test_same_seed_same_picture_other_seed_other_picture():
    first = np.asarray(samples.model_photo("ava", seed=3))
    again = np.asarray(samples.model_photo("ava", seed=3))
    other = np.asarray(samples.model_photo("ava", seed=4))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_callers_get_their_own_copy():
    image = samples.garment_image("polka-skirt")
    image.paste((0, 0, 0), (0, 0, 50, 50))
    assert samples.garment_image("polka-skirt").getpixel((10, 10)) != (0, 0, 0)


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_encode_gives_file_bytes(image_format):
    content = samples.encode(samples.model_photo("ben"), image_format)
    with Image.open(io.BytesIO(content)) as decoded:
        assert decoded.format == image_format
        assert decoded.size == (768, 1536)
    assert len(content) < 3 * 1024 * 1024  # under the provider's limit


def test_unknown_slugs_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="breton-tshirt"):
        samples.garment_image("kilt")
    with pytest.raises(ValueError, match="ava"):
        samples.model_photo("nobody")


def test_drawing_is_quick():
    # Other tests use these as photos: a fresh one must cost well under a second.
    samples.model_photo("chloe", seed=100)  # warm up the imaging libraries
    # CPU time, not wall time: other processes on a busy machine do not count.
    started = time.process_time()
    samples.model_photo("dev", seed=101)
    samples.garment_image("gingham-shirt", seed=101)
    assert time.process_time() - started < 0.4
