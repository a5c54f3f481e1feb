"""Compositing puts the garment on the body, not on the background, and marks the result."""

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from django_tryon.sandbox import compositing, samples


def composite(model, garment, clothes_type):
    person = samples.model_photo(model)
    result = compositing.try_on(person, samples.garment_image(garment), clothes_type)
    return np.asarray(person, dtype=np.int16), np.asarray(result, dtype=np.int16)


def changed(before, after, box):
    """Share of pixels in ``box`` (x0, y0, x1, y1) whose colour changed visibly."""
    x0, y0, x1, y1 = box
    difference = np.abs(after[y0:y1, x0:x1] - before[y0:y1, x0:x1]).sum(axis=2)
    return float((difference > 30).mean())


def background_changed(before, after, body, rows=slice(None)):
    """Share of changed pixels on the background, a few pixels away from the body."""
    near_body = Image.fromarray(body.mask.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(9))
    background = ~(np.asarray(near_body) > 0)
    difference = np.abs(after - before).sum(axis=2) > 30
    return float(difference[rows][background[rows]].mean())


@pytest.fixture(scope="module")
def bodies():
    return {
        m.slug: compositing.find_body(np.asarray(samples.model_photo(m.slug)))
        for m in samples.SAMPLE_MODELS
    }


@pytest.mark.parametrize("model", [m.slug for m in samples.SAMPLE_MODELS])
def test_landmarks_are_in_body_order(bodies, model):
    body = bodies[model]
    assert body.top < body.shoulder < body.armpit < body.waist < body.hip < body.crotch
    assert body.crotch < body.ankle < body.bottom
    # Drawn figures: the crotch is about half-way down, the shoulders about a fifth.
    assert 0.45 < (body.crotch - body.top) / body.height < 0.6
    assert 0.12 < (body.shoulder - body.top) / body.height < 0.26


@pytest.mark.parametrize("model", ["ava", "chloe"])
def test_a_top_covers_the_torso_and_leaves_background_head_and_legs(bodies, model):
    before, after = composite(model, "breton-tshirt", "upper_body")
    body = bodies[model]
    c = body.centre
    chest = (c - 30, body.armpit + 20, c + 30, body.waist)
    assert changed(before, after, chest) > 0.5
    # The stripes: navy and white rows on the chest.
    rows = after[body.armpit + 20 : body.waist, c]
    assert rows.min(axis=0).max() < 90 and rows.max(axis=0).min() > 200
    assert background_changed(before, after, body, slice(0, body.crotch)) == 0
    assert changed(before, after, (c - 20, body.top + 10, c + 20, body.neck - 40)) == 0  # face
    knees = (c - 120, body.crotch + 150, c + 120, body.ankle - 100)
    assert changed(before, after, knees) == 0


def test_jeans_cover_the_legs_not_the_gap_between_them(bodies):
    before, after = composite("ben", "straight-jeans", "lower_body")
    body = bodies["ben"]
    c = body.centre
    shin_row = (body.crotch + body.ankle) // 2 + 100
    legs = [run for run in body.runs[shin_row] if run[1] - run[0] > 20]
    left_leg = legs[len(legs) // 2 - 1]
    assert changed(before, after, (left_leg[0] + 5, shin_row, left_leg[1] - 5, shin_row + 40)) > 0.9
    blue = after[shin_row, (left_leg[0] + left_leg[1]) // 2]
    assert blue[2] > blue[0] + 40  # denim blue on the shin
    assert changed(before, after, (c - 3, shin_row, c + 3, shin_row + 40)) == 0  # between the legs
    assert changed(before, after, (c - 30, body.armpit + 20, c + 30, body.waist - 40)) == 0  # top


def test_a_skirt_flares_over_the_background_but_not_over_the_hands(bodies):
    before, after = composite("dev", "polka-skirt", "lower_body")
    body = bodies["dev"]
    c = body.centre
    assert changed(before, after, (c - 3, body.crotch + 20, c + 3, body.crotch + 80)) > 0.9
    hand_row = body.crotch
    _, left, _ = body.parts(hand_row)
    hand = left[0]
    assert changed(before, after, (hand[0] + 3, hand_row, hand[1] - 3, hand_row + 5)) == 0


def test_a_dress_covers_torso_and_thighs(bodies):
    before, after = composite("chloe", "floral-dress", "full_body")
    body = bodies["chloe"]
    c = body.centre
    assert changed(before, after, (c - 30, body.armpit + 30, c + 30, body.waist)) > 0.5
    assert changed(before, after, (c - 30, body.crotch + 30, c + 30, body.crotch + 120)) > 0.5
    # The skirt flares over the background; above the waist it stays on the body.
    assert background_changed(before, after, body, slice(0, body.waist)) == 0


def test_the_result_is_marked_sandbox_in_a_corner():
    before, after = composite("ava", "polka-skirt", "lower_body")
    height, width = before.shape[:2]
    corner = (width - 160, height - 70, width, height)
    assert changed(before, after, corner) > 0.1
    assert changed(before, after, (0, height - 70, 100, height)) == 0


def test_big_photos_are_worked_on_at_a_bounded_size():
    person = samples.model_photo("ben").resize((1536, 3072))
    result = compositing.try_on(person, samples.garment_image("gingham-shirt"), "upper_body")
    assert result.size == (768, 1536)


def test_a_photo_without_a_figure_still_gets_a_marked_picture():
    blank = samples.encode(Image.new("RGB", (400, 800), (200, 200, 200)))
    garment = samples.encode(samples.garment_image("breton-tshirt"))
    result = compositing.try_on_jpeg(blank, garment, "upper_body")
    with Image.open(io.BytesIO(result)) as image:
        assert image.format == "JPEG"
        assert image.size == (400, 800)
        pixels = np.asarray(image, dtype=np.int16)
    assert np.abs(pixels[:700] - 200).max() < 10  # unchanged but for the mark
    assert np.abs(pixels[-60:, -120:] - 200).max() > 60


def test_garment_holes_that_match_the_backdrop_are_filled():
    mask = np.zeros((50, 50), dtype=bool)
    mask[10:40, 10:40] = True
    mask[25:30, 14:19] = False  # a hole
    mask[10:20, 23:27] = False  # a neckline, open at the top
    filled = compositing.fill_holes(mask)
    assert filled[25:30, 14:19].all()
    assert not filled[10:20, 23:27].any()
