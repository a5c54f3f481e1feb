"""Photo intake: turn an uploaded file into a picture the provider accepts, or refuse it.

Every person photo (shopper API, admin) and every garment image goes through
:func:`normalise_image`. It refuses what is not a usable still photo with an
:class:`ImageRejected` whose ``code`` is stable and whose message a shopper can
act on, and returns a :class:`NormalisedImage`: re-encoded from the pixels
alone (EXIF orientation applied, EXIF/GPS, ICC, XMP and text chunks gone),
scaled down to at most ``INTAKE_MAX_SIDE`` and under the provider's byte and
pixel limits.

Cost is bounded before any pixel is decoded: the byte size is checked from the
upload's recorded size (or a bounded read), and the pixel count from the image
header against ``MAX_IMAGE_PIXELS``. Large JPEGs are decoded straight at a
reduced scale (DCT scaling through ``Image.draft``), so accepting a
12-megapixel photo costs less than decoding it in full.

HEIC/HEIF photos are accepted when the optional ``pillow-heif`` package is
installed (``pip install django-tryon[heic]``).
"""

import hashlib
import io
import math
from dataclasses import dataclass
from typing import IO, Any, cast

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils.translation import gettext_lazy as _
from PIL import Image, ImageCms, UnidentifiedImageError

from .conf import tryon_settings

PURPOSES = ("person", "garment")

# Formats accepted for intake. HEIF joins them when pillow-heif is installed.
# MPO is how Pillow names a JPEG that carries extra pictures (a depth map, a
# preview), as many phones write them: the first picture is the photo.
ACCEPTED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP")
JPEG_FORMATS = ("JPEG", "MPO")
# Formats opened only to refuse them with a precise reason (an animated GIF
# is told so, not "not an image").
REFUSED_FORMATS = ("GIF", "BMP", "TIFF")

JPEG_QUALITIES = (90, 80)
# A JPEG may be decoded at a DCT scale that lands this far under INTAKE_MAX_SIDE
# (e.g. 3264 px -> 1632 px for 2048) rather than decoded larger and resized.
DRAFT_MIN_FRACTION = 0.6
# Shrink a little more than the byte ratio says, so one more try usually fits.
SHRINK_MARGIN = 0.9
MAX_FIT_TRIES = 6
WHITE = (255, 255, 255)
ORIENTATION_TAG = 0x0112
TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Errors Pillow raises on damaged image data.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError)

MESSAGES = {
    "empty_file": _("The file is empty. Choose a photo (JPEG, PNG or WebP)."),
    "too_large_upload": _(
        "The file is larger than %(limit)s MB. Choose a smaller photo or take a new one."
    ),
    "not_an_image": _("This file is not a photo we can read. Choose a JPEG, PNG or WebP photo."),
    "unsupported_type": _("%(format)s images are not supported. Choose a JPEG, PNG or WebP photo."),
    "animated": _("Animated images cannot be used. Choose a still photo (JPEG, PNG or WebP)."),
    "too_many_pixels": _(
        "This image has too many pixels (over %(megapixels)s megapixels). Choose a smaller photo."
    ),
    "too_small": _(
        "This image is too small (%(width)s x %(height)s pixels). Use a photo at least "
        "%(minimum)s pixels on each side."
    ),
    "truncated_image": _(
        "This photo is incomplete or damaged and could not be read. Try another photo."
    ),
    "too_large_image": _(
        "This photo could not be made small enough for the try-on service. Use a smaller photo."
    ),
}


class ImageRejected(ValidationError):
    """An upload that is not an acceptable photo.

    ``.code`` is stable (one of :data:`MESSAGES`' keys), ``.messages[0]`` a
    sentence a shopper can act on (translatable).
    """

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(MESSAGES[code], code=code, params=params or None)

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions are copied and pickled by calling the class with their
        # ``args``; this one is made from its code and parameters.
        return (_image_rejected, (self.code, self.params or {}))


def _image_rejected(code: str, params: dict[str, Any]) -> ImageRejected:
    return ImageRejected(code, **params)


@dataclass(frozen=True)
class NormalisedImage:
    content: bytes
    content_type: str
    extension: str
    width: int
    height: int
    digest: str

    def as_content_file(self, name: str = "photo") -> ContentFile:
        """The content as a file named ``<name>.<extension>``; ``upload_to`` gives the
        random storage name."""
        return ContentFile(self.content, name=f"{name}.{self.extension}")


def heif_available() -> bool:
    """Whether HEIC/HEIF photos can be read (``pillow-heif`` installed and registered)."""
    return "HEIF" in _formats()[0]


_FORMATS: tuple[tuple[str, ...], tuple[str, ...]] | None = None


def _formats() -> tuple[tuple[str, ...], tuple[str, ...]]:
    global _FORMATS
    if _FORMATS is None:
        accepted: tuple[str, ...] = ACCEPTED_FORMATS
        try:
            import pillow_heif
        except ImportError:
            pass
        else:
            pillow_heif.register_heif_opener()
            accepted = (*accepted, "HEIF")
        # Pillow opens an MPO file through its JPEG plugin: "MPO" is not asked for.
        opened = tuple(name for name in accepted if name != "MPO") + REFUSED_FORMATS
        _FORMATS = (accepted, opened)
    return _FORMATS


def normalise_image(file: IO[bytes] | Any, *, purpose: str = "person") -> NormalisedImage:
    """Check and normalise ``file``; return a :class:`NormalisedImage`.

    ``file``: an ``UploadedFile`` or any binary file object. ``purpose`` is
    ``"person"`` (always JPEG) or ``"garment"`` (a garment with transparency
    stays PNG, so the provider can cut it out). Raises :class:`ImageRejected`.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}, not {purpose!r}")
    source = _bounded_source(file)
    accepted, recognised = _formats()
    try:
        image = Image.open(source, formats=recognised)
    except Image.DecompressionBombError as err:
        raise ImageRejected("too_many_pixels", **_pixel_params()) from err
    except UnidentifiedImageError as err:
        raise ImageRejected("not_an_image") from err
    except DECODE_ERRORS as err:
        raise ImageRejected("truncated_image") from err
    with image:
        _check_header(image, accepted)
        return _normalise(image, purpose)


def _bounded_source(file: Any) -> IO[bytes]:
    """A readable, seekable source of at most ``MAX_UPLOAD_BYTES``, or a refusal.

    The size is taken from the upload (or the file's end) before anything is
    read; a stream of unknown size is read only up to one byte past the cap.
    """
    limit = tryon_settings.MAX_UPLOAD_BYTES
    size = getattr(file, "size", None)
    if size is None and _seekable(file):
        start = file.tell()
        size = file.seek(0, io.SEEK_END) - start
        file.seek(start)
    if size is not None:
        _check_size(size, limit)
        if _seekable(file):
            file.seek(0)
            return file
    data = file.read(limit + 1)
    _check_size(len(data), limit)
    return io.BytesIO(data)


def _seekable(file: Any) -> bool:
    seekable = getattr(file, "seekable", None)
    try:
        return bool(seekable()) if seekable else hasattr(file, "seek")
    except (OSError, ValueError):
        return False


def _check_size(size: int, limit: int) -> None:
    if size == 0:
        raise ImageRejected("empty_file")
    if size > limit:
        raise ImageRejected("too_large_upload", limit=megabytes(limit))


def megabytes(size: float) -> str:
    """A byte count as the megabytes the refusal messages show (the button uses it too)."""
    return f"{size / (1024 * 1024):g}"


def _pixel_params() -> dict[str, str]:
    return {"megapixels": f"{tryon_settings.MAX_IMAGE_PIXELS / 1_000_000:g}"}


def _check_header(image: Image.Image, accepted: tuple[str, ...]) -> None:
    """Refuse from the header alone: nothing has been decoded yet."""
    width, height = image.size
    if width * height > tryon_settings.MAX_IMAGE_PIXELS:
        raise ImageRejected("too_many_pixels", **_pixel_params())
    try:
        animated = image.format != "MPO" and bool(getattr(image, "is_animated", False))
    except DECODE_ERRORS as err:
        raise ImageRejected("truncated_image") from err
    if image.format not in accepted:
        if animated:
            raise ImageRejected("animated")
        raise ImageRejected("unsupported_type", format=image.format)
    if animated:
        raise ImageRejected("animated")
    minimum = tryon_settings.MIN_IMAGE_SIDE
    if min(width, height) < minimum:
        raise ImageRejected("too_small", width=width, height=height, minimum=minimum)


def _normalise(image: Image.Image, purpose: str) -> NormalisedImage:
    orientation = _orientation(image)
    icc_profile = image.info.get("icc_profile")
    keep_alpha = purpose == "garment" and _has_alpha(image)
    max_side = _max_side()
    if image.format in JPEG_FORMATS:
        scale = _jpeg_scale(image.size, max_side)
        if scale > 1:
            # Decode at 1/2, 1/4 or 1/8 scale straight from the DCT data: the
            # full-size pixels are never made.
            image.draft(image.mode, (image.width // scale, image.height // scale))
    try:
        image.load()
    except DECODE_ERRORS as err:
        raise ImageRejected("truncated_image") from err
    target = _fit(image.size, max_side)

    picture = _comparable_mode(image)
    if picture.size != target:
        picture = picture.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    picture = _to_srgb(picture, icc_profile)
    picture = _final_mode(picture, keep_alpha)
    transpose = TRANSPOSE_FOR_ORIENTATION.get(orientation)
    if transpose is not None:
        picture = picture.transpose(transpose)
    # Nothing of the original's metadata may ride along into the encoder.
    picture.info = {}
    content, picture = _encode_within_limit(picture, keep_alpha)
    width, height = picture.size
    if keep_alpha:
        content_type, extension = "image/png", "png"
    else:
        content_type, extension = "image/jpeg", "jpg"
    return NormalisedImage(
        content=content,
        content_type=content_type,
        extension=extension,
        width=width,
        height=height,
        digest=hashlib.sha256(content).hexdigest(),
    )


def _max_side() -> int:
    return max(1, min(tryon_settings.INTAKE_MAX_SIDE, tryon_settings.PROVIDER_MAX_SIDE))


def _jpeg_scale(size: tuple[int, int], max_side: int) -> int:
    """The DCT scale (1, 2, 4 or 8) to decode a JPEG of ``size`` at.

    The smallest scale that brings the longest side within ``max_side``, so no
    resize is needed at all (a resize costs more than the decode it follows),
    unless that lands under ``DRAFT_MIN_FRACTION`` of ``max_side``: then one
    scale less, and a resize down.
    """
    longest = max(size)
    scale = 1
    while scale < 8 and math.ceil(longest / scale) > max_side:
        scale *= 2
    if scale > 1 and math.ceil(longest / scale) < max_side * DRAFT_MIN_FRACTION:
        scale //= 2
    return scale


def _fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    width, height = size
    longest = max(width, height)
    if longest <= max_side:
        return size
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block loses only the orientation, not the photo
        return 1
    return value if isinstance(value, int) else 1


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )


def _comparable_mode(image: Image.Image) -> Image.Image:
    """A mode that resizes and colour-converts well: RGB, RGBA, L, LA or CMYK."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
        return image
    if mode in ("I", "F") or mode.startswith("I;16"):
        # 16-bit or float grey: scale down to 8 bits instead of clipping to white.
        return image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if _has_alpha(image):
        return image.convert("RGBA")
    return image.convert("RGB")


_SRGB: ImageCms.ImageCmsProfile | None = None


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Convert from an embedded colour profile to sRGB, so the colours survive the
    profile being dropped. A profile that cannot be used leaves the pixels as they are."""
    global _SRGB
    if not icc_profile or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        if image.mode != "CMYK" and "srgb" in ImageCms.getProfileDescription(source).lower():
            return image
        if _SRGB is None:
            _SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        output_mode = "RGBA" if image.mode == "RGBA" else "RGB"
        # Not in place, so an image comes back (None is for inPlace=True).
        converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=output_mode)
        return cast(Image.Image, converted)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image


def _final_mode(image: Image.Image, keep_alpha: bool) -> Image.Image:
    if keep_alpha:
        return image if image.mode == "RGBA" else image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image if image.mode == "RGB" else image.convert("RGB")


def _encode(image: Image.Image, keep_alpha: bool, quality: int | None) -> bytes:
    buffer = io.BytesIO()
    if keep_alpha:
        image.save(buffer, format="PNG", compress_level=6)
    else:
        image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _encode_within_limit(image: Image.Image, keep_alpha: bool) -> tuple[bytes, Image.Image]:
    """Encode under ``PROVIDER_MAX_BYTES``: lower the JPEG quality once, then shrink."""
    limit = tryon_settings.PROVIDER_MAX_BYTES
    qualities = list(JPEG_QUALITIES) if not keep_alpha else [None]
    quality = qualities.pop(0)
    for _attempt in range(MAX_FIT_TRIES):
        content = _encode(image, keep_alpha, quality)
        if len(content) <= limit:
            return content, image
        if qualities:
            quality = qualities.pop(0)
            continue
        scale = math.sqrt(limit / len(content)) * SHRINK_MARGIN
        size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
        if min(size) < tryon_settings.MIN_IMAGE_SIDE:
            break
        image = image.resize(size, Image.Resampling.LANCZOS)
    raise ImageRejected("too_large_image")
