"""Sample pictures drawn by code: flat-lay garments and full-body model photos.

The demo shop, the sandbox and the tests need "photos" without downloading
any: these are drawn with Pillow and NumPy, deterministically from a seed, in
the sizes real photos have. Garments lie flat on a plain light background,
each with a pattern or print; model figures stand facing the camera on a plain
background with head, arms, hands, legs and feet visible.

Every function returns a new RGB :class:`PIL.Image.Image`; :func:`encode`
turns one into file bytes.
"""

import functools
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

GARMENT_BACKGROUND = (220, 218, 212)


@dataclass(frozen=True)
class SampleGarment:
    slug: str
    name: str
    clothes_type: str
    description: str
    price: str
    size: tuple  # (width, height) in pixels


@dataclass(frozen=True)
class SampleModel:
    slug: str
    name: str
    skin: tuple
    hair: tuple
    hair_style: str  # short | long | bun
    build: float  # shoulder and chest width, 1.0 = average
    hips: float  # hip and thigh width, 1.0 = average
    height: float  # share of the frame's height the figure fills
    top: tuple  # colour of the plain fitted top the model wears
    shorts: tuple
    shoes: tuple
    background: tuple


SAMPLE_GARMENTS = (
    SampleGarment(
        "breton-tshirt",
        "Breton striped T-shirt",
        "upper_body",
        "A soft cotton T-shirt with navy Breton stripes and a crew neck.",
        "24.00",
        (1024, 1024),
    ),
    SampleGarment(
        "gingham-shirt",
        "Red gingham shirt",
        "upper_body",
        "A long-sleeved shirt in red and white gingham, with a classic collar.",
        "39.00",
        (1024, 1152),
    ),
    SampleGarment(
        "straight-jeans",
        "Straight-leg jeans",
        "lower_body",
        "Mid-blue denim jeans with a straight leg and contrast stitching.",
        "59.00",
        (768, 1152),
    ),
    SampleGarment(
        "polka-skirt",
        "Green polka-dot skirt",
        "lower_body",
        "An A-line skirt, bottle green with white polka dots, to the knee.",
        "35.00",
        (896, 896),
    ),
    SampleGarment(
        "floral-dress",
        "Coral floral dress",
        "full_body",
        "A sleeveless summer dress with a flower print and a flared skirt.",
        "65.00",
        (768, 1152),
    ),
)

SAMPLE_MODELS = (
    SampleModel(
        "ava",
        "Ava",
        skin=(238, 203, 178),
        hair=(92, 60, 38),
        hair_style="long",
        build=0.92,
        hips=1.0,
        height=0.9,
        top=(84, 96, 110),
        shorts=(40, 42, 48),
        shoes=(250, 250, 250),
        background=(222, 226, 231),
    ),
    SampleModel(
        "ben",
        "Ben",
        skin=(198, 150, 112),
        hair=(30, 26, 24),
        hair_style="short",
        build=1.1,
        hips=0.95,
        height=0.92,
        top=(110, 118, 92),
        shorts=(52, 58, 76),
        shoes=(48, 44, 42),
        background=(231, 226, 218),
    ),
    SampleModel(
        "chloe",
        "Chloe",
        skin=(120, 82, 60),
        hair=(22, 18, 18),
        hair_style="bun",
        build=1.12,
        hips=1.22,
        height=0.88,
        top=(150, 96, 112),
        shorts=(44, 40, 52),
        shoes=(196, 70, 60),
        background=(226, 229, 222),
    ),
    SampleModel(
        "dev",
        "Dev",
        skin=(160, 112, 80),
        hair=(40, 30, 26),
        hair_style="short",
        build=1.0,
        hips=1.02,
        height=0.86,
        top=(70, 110, 130),
        shorts=(60, 56, 50),
        shoes=(235, 235, 230),
        background=(219, 224, 228),
    ),
)

MODEL_SIZE = (768, 1536)

_GARMENTS = {g.slug: g for g in SAMPLE_GARMENTS}
_MODELS = {m.slug: m for m in SAMPLE_MODELS}


def garment_image(slug, seed=0):
    """The flat-lay photo of the sample garment ``slug`` (see :data:`SAMPLE_GARMENTS`)."""
    return _garment_image(slug, seed).copy()


def model_photo(slug, seed=0):
    """A full-body front photo of the sample model ``slug`` (see :data:`SAMPLE_MODELS`)."""
    return _model_photo(slug, seed).copy()


# Drawn once per (slug, seed): the callers get copies, so they may draw on them.
@functools.lru_cache(maxsize=32)
def _garment_image(slug, seed):
    try:
        garment = _GARMENTS[slug]
    except KeyError:
        raise ValueError(
            f"Unknown sample garment {slug!r}; choose one of {', '.join(_GARMENTS)}."
        ) from None
    rng = np.random.default_rng(seed)
    width, height = garment.size
    pattern = _PATTERNS[slug](width, height, rng)
    mask = Image.new("L", garment.size, 0)
    _OUTLINES[slug](ImageDraw.Draw(mask), width, height)
    pattern = _fabric_shading(pattern, rng)
    background = _plain_background(width, height, GARMENT_BACKGROUND, rng)
    image = Image.composite(Image.fromarray(pattern), background, mask)
    _DETAILS[slug](ImageDraw.Draw(image), width, height)
    return image


@functools.lru_cache(maxsize=32)
def _model_photo(slug, seed):
    try:
        model = _MODELS[slug]
    except KeyError:
        raise ValueError(
            f"Unknown sample model {slug!r}; choose one of {', '.join(_MODELS)}."
        ) from None
    rng = np.random.default_rng(seed)
    return _Figure(model, rng).draw()


def encode(image, image_format="JPEG", **options):
    """``image`` as file bytes (JPEG quality 90 unless ``options`` say otherwise)."""
    if image_format.upper() in ("JPEG", "JPG"):
        options.setdefault("quality", 90)
        image_format = "JPEG"
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


#: The two files of the quick start: a garment, and a photo to try it on.
QUICK_START_FILES = (("tshirt.png", "garment", "breton-tshirt"), ("me.jpg", "model", "ava"))


def sample_files(every=False):
    """``[(file name, kind, slug)]``: the quick start's two, or every sample (``every``).

    ``kind`` is ``"garment"`` (a PNG flat-lay) or ``"model"`` (a JPEG full-body photo).
    """
    if not every:
        return list(QUICK_START_FILES)
    return [(f"{g.slug}.png", "garment", g.slug) for g in SAMPLE_GARMENTS] + [
        (f"{m.slug}.jpg", "model", m.slug) for m in SAMPLE_MODELS
    ]


def write_sample(folder, file_name, kind, slug):
    """Write one sample into ``folder``; return its path. The format follows the name."""
    image = garment_image(slug) if kind == "garment" else model_photo(slug)
    path = Path(folder) / file_name
    path.write_bytes(encode(image, "PNG" if file_name.endswith(".png") else "JPEG"))
    return path


# Backgrounds and fabric ---------------------------------------------------------


def _plain_background(width, height, color, rng):
    """A studio backdrop: one colour, a faint vertical falloff and sensor noise."""
    falloff = np.linspace(1.0, 0.97, height, dtype=np.float32)[:, None, None]
    base = np.array(color, dtype=np.float32)[None, None, :] * falloff
    noise = rng.standard_normal((height, width, 1), dtype=np.float32) * 1.2
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def _fabric_shading(pattern, rng):
    """Soft folds: a few broad vertical waves of light and shade over the cloth."""
    width = pattern.shape[1]
    x = np.arange(width, dtype=np.float32)
    waves = np.zeros(width, dtype=np.float32)
    for _ in range(3):
        period = rng.uniform(width * 0.25, width * 0.6)
        phase = rng.uniform(0, 2 * math.pi)
        waves += np.sin(x / period * 2 * math.pi + phase)
    shade = 1.0 + 0.035 * waves[None, :, None]
    return np.clip(pattern.astype(np.float32) * shade, 0, 255).astype(np.uint8)


def _solid(width, height, color):
    return np.broadcast_to(np.array(color, dtype=np.uint8), (height, width, 3)).copy()


def _stripes(width, height, rng):
    period = 46
    y = np.arange(height)[:, None]
    navy = ((y + int(rng.integers(0, period))) % period) < 17
    out = _solid(width, height, (250, 249, 245))
    out[np.broadcast_to(navy, (height, width))] = (28, 42, 88)
    return out


def _gingham(width, height, rng):
    period = 40
    offset = int(rng.integers(0, period))
    x = ((np.arange(width) + offset) % period < period // 2)[None, :]
    y = ((np.arange(height) + offset) % period < period // 2)[:, None]
    red = np.array((196, 36, 48), dtype=np.float32)
    white = np.array((248, 246, 244), dtype=np.float32)
    amount = (x.astype(np.float32) + y.astype(np.float32)) / 2.0  # 0, 0.5 or 1
    out = white + (red - white) * amount[..., None]
    return out.astype(np.uint8)


def _denim(width, height, rng):
    y = np.arange(height, dtype=np.float32)[:, None]
    x = np.arange(width, dtype=np.float32)[None, :]
    twill = ((x + y) // 3) % 2
    base = np.array((62, 96, 150), dtype=np.float32)
    noise = rng.standard_normal((height, width), dtype=np.float32) * 6.0
    # Worn, lighter fronts of the thighs, as real denim fades.
    fade = np.exp(-(((x / width - 0.5) * 4.0) ** 2)) * np.exp(-(((y / height - 0.4) * 3.0) ** 2))
    light = 1.0 + 0.08 * twill + 0.22 * fade
    out = base[None, None, :] * light[..., None] + noise[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def _dots(width, height, rng):
    period = 56
    y, x = np.mgrid[0:height, 0:width]
    row = y // period
    shifted = x + (row % 2) * (period // 2)
    dx = shifted % period - period / 2
    dy = y % period - period / 2
    dots = dx * dx + dy * dy < 10.5**2
    out = _solid(width, height, (28, 92, 60))
    out[dots] = (246, 244, 236)
    return out


def _floral(width, height, rng):
    tile_size = 192
    tile = Image.new("RGB", (tile_size, tile_size), (232, 112, 96))
    draw = ImageDraw.Draw(tile)
    palette = [(150, 196, 230), (250, 204, 80), (255, 255, 255), (120, 40, 60)]
    for index in range(7):
        cx, cy = rng.uniform(0, tile_size, 2)
        radius = rng.uniform(11, 20)
        petal = palette[index % 3]
        for angle in range(0, 360, 72):
            for wrap_x in (-tile_size, 0, tile_size):
                for wrap_y in (-tile_size, 0, tile_size):
                    px = cx + wrap_x + math.cos(math.radians(angle)) * radius * 0.8
                    py = cy + wrap_y + math.sin(math.radians(angle)) * radius * 0.8
                    r = radius * 0.55
                    draw.ellipse((px - r, py - r, px + r, py + r), fill=petal)
        for wrap_x in (-tile_size, 0, tile_size):
            for wrap_y in (-tile_size, 0, tile_size):
                r = radius * 0.35
                x0, y0 = cx + wrap_x, cy + wrap_y
                draw.ellipse((x0 - r, y0 - r, x0 + r, y0 + r), fill=palette[3])
    array = np.asarray(tile)
    reps = (height // tile_size + 1, width // tile_size + 1, 1)
    return np.tile(array, reps)[:height, :width].copy()


_PATTERNS = {
    "breton-tshirt": _stripes,
    "gingham-shirt": _gingham,
    "straight-jeans": _denim,
    "polka-skirt": _dots,
    "floral-dress": _floral,
}


# Garment outlines: drawn on a mask, in shares of the canvas ---------------------


def _mirrored(points):
    """A symmetric outline from its right half (x >= 0.5), top to bottom."""
    left = [(1.0 - x, y) for x, y in reversed(points)]
    return points + left


def _polygon(draw, points, width, height, fill=255):
    draw.polygon([(x * width, y * height) for x, y in points], fill=fill)


def _outline_tshirt(draw, width, height):
    right = [
        (0.57, 0.12),
        (0.69, 0.15),
        (0.87, 0.27),
        (0.80, 0.40),
        (0.72, 0.35),
        (0.71, 0.90),
        (0.60, 0.91),
    ]
    _polygon(draw, _mirrored(right), width, height)
    # The neckline: a scoop cut out of the front.
    draw.ellipse((0.41 * width, 0.06 * height, 0.59 * width, 0.19 * height), fill=0)


def _outline_shirt(draw, width, height):
    right = [
        (0.56, 0.09),
        (0.69, 0.13),
        (0.80, 0.30),
        (0.93, 0.80),
        (0.84, 0.82),
        (0.72, 0.42),
        (0.71, 0.90),
        (0.62, 0.94),
    ]
    _polygon(draw, _mirrored(right), width, height)


def _outline_jeans(draw, width, height):
    right = [
        (0.78, 0.05),
        (0.80, 0.22),
        (0.78, 0.95),
        (0.54, 0.95),
        (0.50, 0.33),
    ]
    left = [(1.0 - x, y) for x, y in reversed(right[:-1])]
    _polygon(draw, [(0.50, 0.05), *right[:-1], right[-1], *left], width, height)


def _outline_skirt(draw, width, height):
    points = [(0.33, 0.12), (0.67, 0.12), (0.89, 0.84)]
    hem = [
        (0.5 + 0.39 * math.cos(t), 0.84 + 0.04 * math.sin(t)) for t in np.linspace(0, math.pi, 24)
    ]
    _polygon(draw, points + hem[1:] + [(0.11, 0.84)], width, height)


def _outline_dress(draw, width, height):
    right = [
        (0.57, 0.05),
        (0.66, 0.05),
        (0.69, 0.19),
        (0.65, 0.38),
        (0.86, 0.90),
    ]
    hem = [
        (0.5 + 0.36 * math.cos(t), 0.90 + 0.03 * math.sin(t)) for t in np.linspace(0, math.pi, 24)
    ]
    left = [(1.0 - x, y) for x, y in reversed(right)]
    _polygon(draw, right + hem[1:-1] + left, width, height)
    # A V neckline between the straps.
    _polygon(draw, [(0.43, 0.04), (0.57, 0.04), (0.5, 0.16)], width, height, fill=0)


_OUTLINES = {
    "breton-tshirt": _outline_tshirt,
    "gingham-shirt": _outline_shirt,
    "straight-jeans": _outline_jeans,
    "polka-skirt": _outline_skirt,
    "floral-dress": _outline_dress,
}


# Details drawn on top: collars, seams, buttons ------------------------------------


def _details_tshirt(draw, width, height):
    draw.arc(
        (0.41 * width, 0.06 * height, 0.59 * width, 0.19 * height),
        start=0,
        end=180,
        fill=(28, 42, 88),
        width=max(4, width // 110),
    )


def _details_shirt(draw, width, height):
    for side in (1, -1):
        collar = [(0.5, 0.15), (0.5 + side * 0.07, 0.06), (0.5 + side * 0.12, 0.16)]
        draw.polygon([(x * width, y * height) for x, y in collar], fill=(246, 240, 238))
        draw.line(
            [(x * width, y * height) for x, y in collar], fill=(170, 40, 50), width=3, joint="curve"
        )
    draw.line(
        [(0.5 * width, 0.15 * height), (0.5 * width, 0.93 * height)], fill=(150, 30, 40), width=3
    )
    for index in range(6):
        y = (0.22 + index * 0.12) * height
        draw.ellipse((0.5 * width - 7, y - 7, 0.5 * width + 7, y + 7), fill=(250, 250, 245))


def _details_jeans(draw, width, height):
    stitch = (214, 150, 70)
    draw.line([(0.22 * width, 0.11 * height), (0.78 * width, 0.11 * height)], fill=stitch, width=3)
    for side in (1, -1):
        pocket = [(0.5 + side * 0.27, 0.12), (0.5 + side * 0.14, 0.12), (0.5 + side * 0.27, 0.25)]
        draw.line([(x * width, y * height) for x, y in pocket], fill=stitch, width=3)
        seam = [(0.5 + side * 0.29, 0.22), (0.5 + side * 0.28, 0.95)]
        draw.line([(x * width, y * height) for x, y in seam], fill=(48, 74, 120), width=3)
    draw.line([(0.5 * width, 0.11 * height), (0.5 * width, 0.3 * height)], fill=stitch, width=3)
    draw.ellipse(
        (0.5 * width - 9, 0.08 * height - 9, 0.5 * width + 9, 0.08 * height + 9),
        fill=(196, 170, 110),
    )


def _details_skirt(draw, width, height):
    draw.rectangle((0.33 * width, 0.12 * height, 0.67 * width, 0.16 * height), fill=(22, 76, 48))


def _details_dress(draw, width, height):
    draw.line(
        [(0.36 * width, 0.38 * height), (0.64 * width, 0.38 * height)], fill=(180, 70, 64), width=6
    )


_DETAILS = {
    "breton-tshirt": _details_tshirt,
    "gingham-shirt": _details_shirt,
    "straight-jeans": _details_jeans,
    "polka-skirt": _details_skirt,
    "floral-dress": _details_dress,
}


# Model figures ---------------------------------------------------------------------


def _limb(draw, points, half_widths, fill):
    """A rounded limb along ``points``, ``half_widths`` wide at each point."""
    for (x0, y0), (x1, y1), w0, w1 in zip(
        points[:-1], points[1:], half_widths[:-1], half_widths[1:], strict=True
    ):
        angle = math.atan2(y1 - y0, x1 - x0) + math.pi / 2
        dx, dy = math.cos(angle), math.sin(angle)
        draw.polygon(
            [
                (x0 + dx * w0, y0 + dy * w0),
                (x1 + dx * w1, y1 + dy * w1),
                (x1 - dx * w1, y1 - dy * w1),
                (x0 - dx * w0, y0 - dy * w0),
            ],
            fill=fill,
        )
    for (x, y), w in zip(points, half_widths, strict=True):
        draw.ellipse((x - w, y - w, x + w, y + w), fill=fill)


def _darker(color, amount=0.8):
    return tuple(int(c * amount) for c in color)


class _Figure:
    """One drawn person, standing, facing the camera, arms a little away from the body."""

    def __init__(self, model, rng):
        self.model = model
        self.rng = rng
        self.width, self.height = MODEL_SIZE
        jitter = rng.uniform(-0.01, 0.01)
        self.fig_h = self.height * (model.height + jitter)
        self.top = self.height * 0.955 - self.fig_h
        self.cx = self.width / 2 + rng.uniform(-6, 6)

    def y(self, share):
        return self.top + share * self.fig_h

    def w(self, share):
        return share * self.fig_h

    def draw(self):
        m = self.model
        image = _plain_background(self.width, self.height, m.background, self.rng)
        draw = ImageDraw.Draw(image)
        figure_mask = Image.new("L", MODEL_SIZE, 0)
        mask_draw = ImageDraw.Draw(figure_mask)
        for target, colors in ((draw, None), (mask_draw, 255)):
            self._body(target, colors)
        self._face(draw)
        return self._shade(image, figure_mask)

    def _color(self, color, override):
        return override if override is not None else color

    def _body(self, draw, override):
        m, cx = self.model, self.cx
        skin = self._color(m.skin, override)
        head_h = self.w(0.135)
        head_w = head_h * 0.78
        head_top = self.y(0.0)
        chin = head_top + head_h
        shoulder_y, armpit_y = self.y(0.185), self.y(0.255)
        waist_y, hip_y, crotch_y = self.y(0.39), self.y(0.48), self.y(0.525)
        knee_y, ankle_y = self.y(0.74), self.y(0.955)
        shoulder = self.w(0.118) * m.build
        chest = self.w(0.095) * m.build
        waist = self.w(0.078) * (m.build + m.hips) / 2
        hips = self.w(0.098) * m.hips
        foot_x = self.w(0.062) * m.hips

        if m.hair_style == "long":
            hair = self._color(m.hair, override)
            draw.rounded_rectangle(
                (
                    cx - head_w * 0.58,
                    head_top + head_h * 0.2,
                    cx + head_w * 0.58,
                    chin + self.w(0.06),
                ),
                radius=head_w * 0.3,
                fill=hair,
            )
        # Arms first, so the torso's edge stays clean where they meet.
        for side in (1, -1):
            arm = [
                (cx + side * (shoulder - self.w(0.028)), shoulder_y + self.w(0.034)),
                (cx + side * (shoulder + self.w(0.03)), self.y(0.36)),
                (cx + side * (shoulder + self.w(0.052)), self.y(0.5)),
            ]
            _limb(draw, arm, [self.w(0.03) * m.build, self.w(0.024) * m.build, self.w(0.017)], skin)
            hand_x, hand_y = cx + side * (shoulder + self.w(0.058)), self.y(0.535)
            draw.ellipse(
                (
                    hand_x - self.w(0.022),
                    hand_y - self.w(0.04),
                    hand_x + self.w(0.022),
                    hand_y + self.w(0.035),
                ),
                fill=skin,
            )
            thumb_x = hand_x - side * self.w(0.02)
            draw.ellipse(
                (thumb_x - self.w(0.008), hand_y - self.w(0.03), thumb_x + self.w(0.008), hand_y),
                fill=skin,
            )
        for side in (1, -1):
            leg = [
                (cx + side * hips * 0.52, hip_y + self.w(0.02)),
                (cx + side * foot_x * 0.9, knee_y),
                (cx + side * foot_x, ankle_y - self.w(0.01)),
            ]
            _limb(draw, leg, [hips * 0.5, self.w(0.03) * m.hips, self.w(0.019)], skin)
            shoe = self._color(m.shoes, override)
            fx = cx + side * (foot_x + self.w(0.008))
            draw.ellipse(
                (
                    fx - self.w(0.03),
                    ankle_y - self.w(0.025),
                    fx + self.w(0.03),
                    ankle_y + self.w(0.045),
                ),
                fill=shoe,
            )
        neck_w = head_w * 0.24
        draw.rectangle(
            (cx - neck_w, chin - self.w(0.02), cx + neck_w, shoulder_y + self.w(0.02)), fill=skin
        )
        torso = [
            (cx + neck_w, shoulder_y - self.w(0.01)),
            (cx + shoulder, shoulder_y + self.w(0.012)),
            (cx + chest, armpit_y),
            (cx + waist, waist_y),
            (cx + hips, hip_y),
            (cx + hips * 0.92, crotch_y),
        ]
        torso += [(2 * cx - x, y) for x, y in reversed(torso)]
        draw.polygon(torso, fill=skin)
        draw.ellipse((cx - head_w / 2, head_top, cx + head_w / 2, chin), fill=skin)
        for side in (1, -1):
            ear_x = cx + side * head_w * 0.5
            ear_y = head_top + head_h * 0.5
            draw.ellipse(
                (
                    ear_x - head_w * 0.07,
                    ear_y - head_h * 0.08,
                    ear_x + head_w * 0.07,
                    ear_y + head_h * 0.08,
                ),
                fill=skin,
            )
        self._hair(draw, override, head_top, head_w, head_h)
        if override is not None:
            return
        # The plain fitted top and shorts the model wears.
        top = [
            (cx + neck_w * 1.4, shoulder_y - self.w(0.008)),
            (cx + shoulder - self.w(0.005), shoulder_y + self.w(0.01)),
            (cx + shoulder + self.w(0.012), shoulder_y + self.w(0.05)),
            (cx + chest + self.w(0.003), armpit_y + self.w(0.004)),
            (cx + waist + self.w(0.003), waist_y),
            (cx + hips * 0.97, self.y(0.45)),
            (cx, self.y(0.455)),
        ]
        top += [(2 * cx - x, y) for x, y in reversed(top)]
        draw.polygon(top, fill=m.top)
        for side in (1, -1):
            start = (cx + side * (shoulder - self.w(0.028)), shoulder_y + self.w(0.034))
            end = (cx + side * (shoulder + self.w(0.006)), shoulder_y + self.w(0.075))
            _limb(draw, [start, end], [self.w(0.034) * m.build, self.w(0.03) * m.build], m.top)
        neckline = (
            cx - neck_w * 1.4,
            shoulder_y - self.w(0.03),
            cx + neck_w * 1.4,
            shoulder_y + self.w(0.03),
        )
        draw.chord(neckline, 0, 180, fill=skin)
        shorts = [
            (cx, self.y(0.445)),
            (cx + hips * 0.97, self.y(0.445)),
            (cx + hips * 1.01, hip_y),
            (cx + hips * 0.98, self.y(0.6)),
            (cx + self.w(0.004), self.y(0.6)),
            (cx + self.w(0.004), crotch_y + self.w(0.01)),
        ]
        shorts += [(2 * cx - x, y) for x, y in reversed(shorts)]
        draw.polygon(shorts, fill=m.shorts)

    def _hair(self, draw, override, head_top, head_w, head_h):
        cx = self.cx
        hair = self._color(self.model.hair, override)
        cap = (
            cx - head_w * 0.54,
            head_top - head_h * 0.05,
            cx + head_w * 0.54,
            head_top + head_h * 0.62,
        )
        draw.chord(cap, 180, 360, fill=hair)
        draw.rectangle(
            (cap[0], head_top + head_h * 0.25, cap[0] + head_w * 0.1, head_top + head_h * 0.45),
            fill=hair,
        )
        draw.rectangle(
            (cap[2] - head_w * 0.1, head_top + head_h * 0.25, cap[2], head_top + head_h * 0.45),
            fill=hair,
        )
        if self.model.hair_style == "bun":
            r = head_w * 0.22
            draw.ellipse((cx - r, head_top - r * 1.5, cx + r, head_top + r * 0.5), fill=hair)

    def _face(self, draw):
        m, cx = self.model, self.cx
        head_h = self.w(0.135)
        head_w = head_h * 0.78
        eye_y = self.y(0.0) + head_h * 0.52
        dark = (40, 30, 30)
        for side in (1, -1):
            ex = cx + side * head_w * 0.2
            draw.ellipse((ex - 9, eye_y - 5, ex + 9, eye_y + 5), fill=(250, 250, 250))
            draw.ellipse((ex - 5, eye_y - 5, ex + 5, eye_y + 5), fill=dark)
            draw.line(
                (ex - 12, eye_y - 14, ex + 12, eye_y - 16 + side * 0),
                fill=_darker(m.hair, 0.9),
                width=4,
            )
        nose_y = eye_y + head_h * 0.17
        draw.line(
            (cx, eye_y + 6, cx - 5, nose_y, cx + 4, nose_y + 2), fill=_darker(m.skin, 0.78), width=3
        )
        mouth_y = eye_y + head_h * 0.28
        draw.arc(
            (cx - 17, mouth_y - 10, cx + 17, mouth_y + 8), 20, 160, fill=(150, 64, 70), width=4
        )

    def _shade(self, image, figure_mask):
        """Round the flat drawing: darken towards the figure's edges, as light falls off."""
        small = figure_mask.resize((self.width // 4, self.height // 4), Image.Resampling.BILINEAR)
        soft = small.filter(ImageFilter.GaussianBlur(4)).resize(
            MODEL_SIZE, Image.Resampling.BILINEAR
        )
        inside = np.asarray(figure_mask, dtype=np.float32) / 255.0
        depth = np.asarray(soft, dtype=np.float32) / 255.0
        shade = 1.0 - inside * 0.28 * (1.0 - depth)
        pixels = np.asarray(image, dtype=np.float32) * shade[..., None]
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
