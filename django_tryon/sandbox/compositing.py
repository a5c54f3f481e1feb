"""A try-on picture without a model: the flat-lay garment warped onto the person.

1. The garment is cut from its plain background: pixels far (in colour) from
   the border's colour, cleaned up with a morphological close.
2. The person is found the same way against the photo's plain background;
   the rows of that silhouette are split into runs (arm, torso, arm; or arm,
   leg, leg, arm), and landmarks come from the row profile: the neck is the
   narrowest row under the head, the armpits the first rows where the arms
   come apart from the torso, the crotch the first row where the legs do.
3. Each garment row is mapped to a body row through anchors (shoulders to
   shoulders, armpits to armpits, waist, crotch, ankles), and within a row
   each garment part to the matching body part: the garment's body onto the
   torso, its sleeves onto the arms, its legs onto the legs ("fit"). A skirt
   keeps its own flare over the background ("drape"); arms stay in front.
4. A little cylinder shading rounds each part; the corner is marked "sandbox".

Good enough to be a plausible preview on plain-background, front, full-body
photos such as :mod:`~django_tryon.sandbox.samples`; no substitute for a model.
"""

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont, ImageOps

# Photos are worked on at most this tall: bigger ones are scaled down first.
WORK_HEIGHT = 1536
# Runs narrower than this share of the figure's height are noise, not body parts.
MIN_RUN = 0.004
LABEL = "sandbox"


class CompositingError(ValueError):
    """The picture has no foreground to work with."""


# Masks -------------------------------------------------------------------------------


def foreground_mask(pixels):
    """Pixels that differ from the border's (plain background) colour, cleaned up."""
    border = np.concatenate(
        [
            pixels[:4].reshape(-1, 3),
            pixels[-4:].reshape(-1, 3),
            pixels[:, :4].reshape(-1, 3),
            pixels[:, -4:].reshape(-1, 3),
        ]
    ).astype(np.float32)
    background = np.median(border, axis=0)
    border_distance = np.abs(border - background).sum(axis=1)
    threshold = min(200, int(max(36.0, float(np.percentile(border_distance, 99.5)) * 2.0)))
    # The colour distance, in Pillow's C code: |r| + |g| + |b| saturating at 255,
    # which is all a threshold under 255 needs.
    image = Image.fromarray(pixels)
    backdrop = Image.new("RGB", image.size, tuple(int(c) for c in background))
    red, green, blue = ImageChops.difference(image, backdrop).split()
    distance = ImageChops.add(ImageChops.add(red, green), blue)
    mask = distance.point(lambda value: 255 if value > threshold else 0)
    # A box blur then a threshold at half: fills holes and drops specks smaller
    # than the box (a white stripe close to the backdrop, sensor noise), cheaply.
    result = np.asarray(mask.filter(ImageFilter.BoxBlur(2))) > 127
    if not result.any():
        raise CompositingError("No foreground found on the plain background.")
    return result


def fill_holes(mask):
    """Fill pixels enclosed both across and down: a print that matches the
    backdrop. Concave outlines (a neckline, the gap between legs) stay open on
    one side in one direction at least, so they are kept."""
    height, width = mask.shape

    def extent(axis):
        size = mask.shape[1 - axis]
        present = mask.any(axis=1 - axis)
        first = np.where(present, mask.argmax(axis=1 - axis), size)
        flipped = mask[:, ::-1] if axis == 0 else mask[::-1, :]
        last = np.where(present, size - 1 - flipped.argmax(axis=1 - axis), -1)
        return first, last

    row_first, row_last = extent(0)
    col_first, col_last = extent(1)
    columns, rows = np.arange(width)[None, :], np.arange(height)[:, None]
    across = (columns >= row_first[:, None]) & (columns <= row_last[:, None])
    down = (rows >= col_first[None, :]) & (rows <= col_last[None, :])
    return mask | (across & down)


def row_runs(mask, min_width=1):
    """For each row, an array of ``[start, end)`` runs of the mask, left to right."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    steps = np.diff(padded, axis=1)
    start_rows, start_cols = np.nonzero(steps == 1)
    _, end_cols = np.nonzero(steps == -1)
    runs = np.stack([start_cols, end_cols], axis=1)
    bounds = np.searchsorted(start_rows, np.arange(mask.shape[0] + 1))
    result = []
    for row in range(mask.shape[0]):
        row_runs = runs[bounds[row] : bounds[row + 1]]
        if min_width > 1 and len(row_runs):
            row_runs = row_runs[(row_runs[:, 1] - row_runs[:, 0]) >= min_width]
        result.append(row_runs)
    return result


def split_parts(runs, centre):
    """``(core, left, right)``: the run at the centre (or the two either side of a
    gap there), then the runs further out on each side, innermost first."""
    if not len(runs):
        return [], [], []
    starts, ends = runs[:, 0], runs[:, 1]
    inside = np.flatnonzero((starts <= centre) & (ends > centre))
    if len(inside):
        index = int(inside[0])
        core = [runs[index]]
        left_of, right_of = index, index + 1
    else:
        left_of = int(np.searchsorted(ends, centre, side="right"))
        right_of = left_of
        core = []
        if left_of > 0:
            core.append(runs[left_of - 1])
            left_of -= 1
        if right_of < len(runs):
            core.append(runs[right_of])
            right_of += 1
    left = [runs[i] for i in range(left_of - 1, -1, -1)]
    right = [runs[i] for i in range(right_of, len(runs))]
    return core, left, right


# The person --------------------------------------------------------------------------


@dataclass
class Body:
    mask: np.ndarray
    runs: list
    centre: int
    top: int
    bottom: int
    neck: int
    shoulder: int
    armpit: int
    waist: int
    hip: int
    crotch: int
    ankle: int

    @property
    def height(self):
        return self.bottom - self.top

    def parts(self, row):
        return split_parts(self.runs[row], self.centre)

    def core_width(self, row):
        core, _, _ = self.parts(row)
        return int(core[-1][1] - core[0][0]) if core else 0


def find_body(pixels):
    """The person's silhouette and landmarks in a front, full-body photo."""
    mask = foreground_mask(pixels)
    rows = np.flatnonzero(mask.any(axis=1))
    top, bottom = int(rows[0]), int(rows[-1])
    height = max(1, bottom - top)
    runs = row_runs(mask, min_width=max(2, int(MIN_RUN * height)))
    middle = mask[top + int(0.2 * height) : top + int(0.45 * height)]
    columns = np.flatnonzero(middle.any(axis=0))
    centre = int(np.average(np.nonzero(middle)[1])) if len(columns) else mask.shape[1] // 2

    def at(share):
        return top + int(share * height)

    def core_width(row):
        core, _, _ = split_parts(runs[row], centre)
        return int(core[-1][1] - core[0][0]) if core else 0

    # The neck: the narrowest row between the head and the shoulders.
    span = range(at(0.08), at(0.22))
    widths = [core_width(r) or 10**6 for r in span]
    neck = span.start + int(np.argmin(widths))
    neck_width = max(1, min(widths))
    shoulder = next(
        (r for r in range(neck, at(0.3)) if core_width(r) > 2.6 * neck_width), at(0.185)
    )
    # The armpits: arms come apart from the torso (runs on both sides of it).
    # (Searched a little below the shoulder line, which round shoulders cross first.)
    armpit = next(
        (r for r in range(shoulder + int(0.035 * height), at(0.4)) if _has_sides(runs[r], centre)),
        shoulder + int(0.07 * height),
    )
    # The crotch: the centre column leaves the body between the legs.
    crotch = next(
        (r for r in range(at(0.4), at(0.7)) if len(runs[r]) and not mask[r, centre]),
        at(0.525),
    )
    span = range(armpit + int(0.05 * height), crotch - int(0.05 * height))
    waist = (
        span.start + int(np.argmin([core_width(r) for r in span]))
        if len(span) > 1
        else (armpit + crotch) // 2
    )
    return Body(
        mask=mask,
        runs=runs,
        centre=centre,
        top=top,
        bottom=bottom,
        neck=neck,
        shoulder=shoulder,
        armpit=armpit,
        waist=waist,
        hip=crotch - int(0.045 * height),
        crotch=crotch,
        ankle=bottom - int(0.045 * height),
    )


def _has_sides(runs, centre):
    _, left, right = split_parts(runs, centre)
    return bool(left) and bool(right)


# The garment -------------------------------------------------------------------------


@dataclass
class Cutout:
    rgb: np.ndarray  # (h, w, 3) float32
    alpha: np.ndarray  # (h, w) float32 in [0, 1]
    runs: list
    centre: int

    @property
    def height(self):
        return self.rgb.shape[0]

    def parts(self, row):
        return split_parts(self.runs[row], self.centre)

    def core_width(self, row):
        core, _, _ = self.parts(row)
        return int(core[-1][1] - core[0][0]) if core else 0

    def first_row(self, test, start=0, end=None):
        end = self.height if end is None else end
        return next((r for r in range(start, end) if test(r)), None)

    def waist_row(self):
        """A dress's waist: its narrowest row between the bodice and the skirt."""
        rows = range(int(self.height * 0.15), int(self.height * 0.55))
        return rows.start + int(np.argmin([self.core_width(r) or 10**6 for r in rows]))

    def reference_width(self, clothes_type):
        """The width to match to the body's (chest or waist): a top's body without the
        sleeves, a skirt's or trousers' waistband, a dress's waist."""
        if clothes_type == "lower_body":
            return self.core_width(int(self.height * 0.05))
        if clothes_type == "full_body":
            return self.core_width(self.waist_row())
        rows = range(int(self.height * 0.55), int(self.height * 0.85))
        return float(np.median([self.core_width(r) for r in rows]))


def cut_garment(image):
    """The garment cut from its plain background and cropped, as ``(rgb, alpha)`` images."""
    rgb = image.convert("RGB")
    mask = fill_holes(foreground_mask(np.asarray(rgb)))
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    return rgb.crop(box), Image.fromarray(mask.astype(np.uint8) * 255).crop(box)


def cutout(rgb, alpha, scale=1.0):
    """A :class:`Cutout` of a cut garment, scaled by ``scale``."""
    if scale != 1.0:
        size = (max(2, round(rgb.width * scale)), max(2, round(rgb.height * scale)))
        # Reducing filter first: the print is shrunk without aliasing, then sampled ~1:1.
        rgb = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        alpha = alpha.resize(size, Image.Resampling.BILINEAR)
    alpha = np.asarray(alpha, dtype=np.float32) / 255.0
    runs = row_runs(alpha > 0.5, min_width=2)
    return Cutout(np.asarray(rgb, dtype=np.float32), alpha, runs, rgb.width // 2)


# Placing -----------------------------------------------------------------------------


@dataclass
class Plan:
    """Which garment row each target row shows; rows from ``drape_from`` on are
    draped at ``drape_scale`` (garment columns per target column), the others fitted."""

    target_rows: np.ndarray
    garment_rows: np.ndarray
    drape_from: int = 10**9
    drape_scale: float = 1.0
    #: Arms are sleeved down to this row (where the flat-lay's sleeves reach).
    sleeve_end: int = -1
    #: The garment's usual width: narrower rows in its lower half (a curved hem)
    #: are not stretched to the body's width, only scaled like the rest.
    core_width: float = 0.0


def _plan(body, cut, clothes_type):
    """A :class:`Plan` for ``cut``, already scaled to the body's width."""
    g = cut.height

    def has_sides(row):
        _, left, right = cut.parts(row)
        return bool(left) and bool(right)

    if clothes_type == "upper_body":
        anchors = [(body.shoulder - int(0.01 * body.height), 0)]
        armpit = cut.first_row(has_sides, int(g * 0.1), int(g * 0.6))
        if armpit is not None:
            anchors.append((body.armpit, armpit))
        sleeve = _sleeve_length(cut)
        # Below the armpit, a sleeve hangs about as far as it sticks out past it.
        sleeve_end = body.armpit + int(sleeve - 0.5 * (armpit or 0)) if sleeve else -1
        return Plan(*_extend(anchors, g), sleeve_end=sleeve_end)
    if clothes_type == "lower_body":
        legs_split = cut.first_row(lambda r: len(cut.parts(r)[0]) == 2, int(g * 0.2), int(g * 0.6))
        if legs_split is not None:  # trousers: waist, crotch and hems where the body has them
            top = body.waist + (body.hip - body.waist) // 3
            return Plan(*_rows([(top, 0), (body.crotch, legs_split), (body.ankle, g - 1)]))
        top = body.waist - int(0.005 * body.height)
        return Plan(*_extend([(top, 0)], g), drape_from=top)
    # full_body: the bodice fitted from the shoulders to the waist, the skirt draped.
    garment_waist = cut.waist_row()
    anchors = [(body.shoulder - int(0.01 * body.height), 0), (body.waist, garment_waist)]
    drape = body.core_width(body.waist) / max(1, cut.core_width(garment_waist))
    return Plan(*_extend(anchors, g), drape_from=body.waist, drape_scale=drape)


def _sleeve_length(cut):
    """How far the sleeves reach from the shoulder, in garment rows (0: sleeveless).

    A flat-lay's sleeves stick out sideways; on a body they hang down the arm.
    """
    core, _, _ = cut.parts(int(cut.height * 0.7))
    if not core:
        return 0
    left, right = int(core[0][0]), int(core[-1][1])
    rows, cols = np.nonzero(cut.alpha > 0.5)
    outside = (cols < left - 2) | (cols > right + 2)
    if not outside.any():
        return 0
    rows, cols = rows[outside], cols[outside]
    shoulder_x = np.where(cols < left, left, right)
    return int(np.hypot(rows, cols - shoulder_x).max())


def _extend(anchors, garment_height) -> tuple[np.ndarray, np.ndarray]:
    """Anchors, continued past the last one a target row per garment row."""
    last_y, last_v = anchors[-1]
    return _rows([*anchors, (last_y + garment_height - 1 - last_v, garment_height - 1)])


def _rows(anchors) -> tuple[np.ndarray, np.ndarray]:
    """``(target_rows, garment_rows)``, interpolated between ``(target, garment)`` anchors."""
    ys = np.array([a[0] for a in anchors], dtype=np.float64)
    vs = np.array([a[1] for a in anchors], dtype=np.float64)
    target = np.arange(int(ys[0]), int(ys[-1]) + 1)
    return target, np.interp(target, ys, vs).round().astype(int)


def _segments(body, cut, y, v, drape, plan):
    """``[(tx0, tx1, sx0, sx1)]``: the target columns of row ``y`` and the garment
    columns of row ``v`` they show."""
    g_core, g_left, g_right = cut.parts(v)
    if not g_core:
        return []
    if drape:
        start, end = int(g_core[0][0]), int(g_core[-1][1])
        tx0 = body.centre + (start - cut.centre) * plan.drape_scale
        tx1 = body.centre + (end - cut.centre) * plan.drape_scale
        b_core, _, _ = body.parts(y)
        if b_core:
            # Hips wider than the skirt stretch it: the body never shows at its sides.
            tx0, tx1 = min(tx0, b_core[0][0] - 1), max(tx1, b_core[-1][1] + 1)
        return [(tx0, tx1, start, end)]
    b_core, b_left, b_right = body.parts(y)
    if not b_core:
        return []
    pairs = []
    if len(b_core) == len(g_core) == 2:
        pairs += list(zip(b_core, g_core, strict=True))
    elif len(b_core) == 2 and y >= body.crotch:
        # A top's hem below the crotch hangs straight across, at the hips' width,
        # instead of following each leg.
        hips, _, _ = body.parts(body.crotch - 2)
        span = (hips[0][0], hips[-1][1]) if hips else (b_core[0][0], b_core[-1][1])
        pairs.append((span, (g_core[0][0], g_core[-1][1])))
    else:
        b_start, b_end = int(b_core[0][0]), int(b_core[-1][1])
        g_start, g_end = int(g_core[0][0]), int(g_core[-1][1])
        if v > cut.height / 2 and g_end - g_start < plan.core_width:
            scale = (b_end - b_start) / plan.core_width
            middle = (b_start + b_end) / 2
            b_start = round(middle + (g_start - cut.centre) * scale)
            b_end = round(middle + (g_end - cut.centre) * scale)
        pairs.append(((b_start, b_end), (g_start, g_end)))
    hands_from = body.crotch - int(0.03 * body.height)
    if y < hands_from:
        core_start, core_end = int(g_core[0][0]), int(g_core[-1][1])
        quarter = max(1, (core_end - core_start) // 4)
        for body_runs, garment_runs, fabric in (
            (b_left, g_left, (core_start, core_start + quarter)),
            (b_right, g_right, (core_end - quarter, core_end)),
        ):
            pairs += list(zip(body_runs, garment_runs, strict=False))
            if not garment_runs and body_runs and y < plan.sleeve_end:
                # The sleeve hangs down the arm here, though the flat-lay's
                # points sideways: the same cloth, continued.
                pairs.append((body_runs[0], fabric))
    return [(int(b[0]), int(b[1]), int(s[0]), int(s[1])) for b, s in pairs]


def _draw_maps(body, cut, plan, width):
    """Per target pixel: the garment column to show (-1: none) and the shading."""
    target_rows, garment_rows = plan.target_rows, plan.garment_rows
    height = body.mask.shape[0]
    keep = (target_rows >= 0) & (target_rows < height)
    target_rows, garment_rows = target_rows[keep], garment_rows[keep]
    src_x = np.full((len(target_rows), width), -1.0, dtype=np.float32)
    shade = np.ones((len(target_rows), width), dtype=np.float32)
    for i, (y, v) in enumerate(zip(target_rows, garment_rows, strict=True)):
        drape = y >= plan.drape_from
        for tx0, tx1, sx0, sx1 in _segments(body, cut, y, v, drape, plan):
            a, b = max(0, round(tx0)), min(width, round(tx1))
            if b - a < 1:
                continue
            t = (np.arange(a, b, dtype=np.float32) + 0.5 - tx0) / max(1e-6, tx1 - tx0)
            src_x[i, a:b] = sx0 + t * (sx1 - sx0)
            shade[i, a:b] = 0.8 + 0.2 * np.sqrt(np.clip(np.sin(np.pi * t), 0, 1))
        if drape:
            # Arms and hands hang in front of a skirt.
            _, left, right = body.parts(y)
            for run in left + right:
                src_x[i, run[0] : run[1]] = -1
    return target_rows, garment_rows, src_x, shade


def try_on(person, garment, clothes_type):
    """``person`` (a PIL image) wearing ``garment`` (a flat-lay PIL image), as a new image."""
    person = ImageOps.exif_transpose(person).convert("RGB")
    if person.height > WORK_HEIGHT:
        ratio = WORK_HEIGHT / person.height
        person = person.resize(
            (max(1, round(person.width * ratio)), WORK_HEIGHT), Image.Resampling.BILINEAR
        )
    pixels = np.asarray(person)
    body = find_body(pixels)
    # Scale the garment once so its body is as wide as the person's chest (or
    # waist): the warp then samples close to 1:1, without aliasing the print.
    reference_row = body.armpit if clothes_type == "upper_body" else body.waist
    rgb, alpha = cut_garment(garment)
    reference = cutout(rgb, alpha).reference_width(clothes_type)
    scale = max(0.05, body.core_width(reference_row) * 1.06 / max(1.0, reference))
    cut = cutout(rgb, alpha, scale)
    plan = _plan(body, cut, clothes_type)
    plan.core_width = max(1.0, cut.reference_width(clothes_type))
    rows, garment_rows, src_x, shade = _draw_maps(body, cut, plan, pixels.shape[1])
    valid = src_x >= 0
    columns = np.clip(src_x, 0, cut.rgb.shape[1] - 1).astype(np.int32)
    source_rows = np.clip(garment_rows, 0, cut.height - 1)[:, None]
    colour = cut.rgb[source_rows, columns] * shade[..., None]
    alpha = cut.alpha[source_rows, columns] * valid
    # Soften the cut edges a little, as a photo's would be.
    alpha = (
        np.asarray(
            Image.fromarray((alpha * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.8)),
            dtype=np.float32,
        )[..., None]
        / 255.0
    )
    out = pixels.astype(np.float32)
    region = out[rows]
    out[rows] = region * (1 - alpha) + colour * alpha
    result = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))
    return mark(result)


def mark(image):
    """Write "sandbox" in the bottom right corner, so no one takes it for a real result."""
    draw = ImageDraw.Draw(image, "RGBA")
    size = max(12, image.height // 40)
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = draw.textbbox((0, 0), LABEL, font=font)
    pad = size // 3
    x = image.width - (right - left) - 3 * pad
    y = image.height - (bottom - top) - 3 * pad
    draw.rounded_rectangle(
        (x - pad, y - pad, x + (right - left) + pad, y + (bottom - top) + 2 * pad),
        radius=pad,
        fill=(20, 20, 20, 150),
    )
    draw.text((x - left, y - top), LABEL, font=font, fill=(255, 255, 255, 235))
    return image


def try_on_jpeg(person_bytes, garment_bytes, clothes_type):
    """:func:`try_on` from file bytes to JPEG bytes."""
    with (
        Image.open(io.BytesIO(person_bytes)) as person,
        Image.open(io.BytesIO(garment_bytes)) as garment,
    ):
        try:
            result = try_on(person, garment, clothes_type)
        except CompositingError:
            # A photo the sandbox cannot read still gets a picture: its own, marked.
            result = mark(ImageOps.exif_transpose(person).convert("RGB"))
    return _jpeg(result)


def plain_result_jpeg():
    """The one small picture of the "plain" result mode."""
    image = Image.new("RGB", (256, 512), (214, 218, 224))
    ImageDraw.Draw(image).ellipse((88, 40, 168, 130), fill=(180, 186, 196))
    ImageDraw.Draw(image).rounded_rectangle((64, 140, 192, 470), radius=40, fill=(180, 186, 196))
    return _jpeg(mark(image))


def _jpeg(image):
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()
