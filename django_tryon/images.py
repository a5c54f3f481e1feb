"""Photo intake: turn an uploaded file into a picture the provider accepts, or refuse it.

Every person photo (shopper API, admin) and every garment image goes through
:func:`normalise_image`. It refuses what is not a usable still photo with an
:class:`ImageRejected` whose ``code`` is stable and whose message a shopper can
act on, and returns a :class:`NormalisedImage`: re-encoded from the pixels
alone (EXIF orientation applied, EXIF/GPS, ICC, XMP and text chunks gone),
scaled down to at most ``INTAKE_MAX_SIDE`` and under the provider's byte and
pixel limits.

A JPEG that is already what the intake would make (as the button sends them:
upright, sRGB, 8-bit YCbCr, within ``INTAKE_MAX_SIDE`` and the provider's
bytes) is not re-encoded: once it has decoded whole, its compressed data is
copied as it is, with every metadata segment (APPn, COM) left out and a
minimal JFIF header in their place. The same pixels, no metadata, and no
second generation of JPEG loss.

Cost is bounded before any pixel is decoded: the byte size is checked from the
upload's recorded size (or a bounded read), the pixel count from the image
header against ``MAX_IMAGE_PIXELS``, and the memory the decode will take (its
pixels times the bytes each needs in the mode it decodes to, plus what the
format's decoder holds beside them) against ``INTAKE_MAX_DECODED_BYTES``. Large
JPEGs are decoded straight at a reduced scale (DCT scaling through
``Image.draft``), so accepting a 12-megapixel photo costs less than decoding it
in full, and 16-bit grey PNGs straight to 8 bits. Decodes larger than a photo
at the intake size take one of ``INTAKE_MAX_PARALLEL_DECODES`` slots per
process, so a burst of large uploads cannot add up; one that finds no slot in
time is refused with :class:`IntakeBusy`, to be tried again.

HEIC/HEIF photos are accepted when the optional ``pillow-heif`` package is
installed (``pip install django-tryon[heic]``).
"""

import hashlib
import io
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, cast

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils.translation import gettext_lazy as _
from PIL import Image, ImageCms, ImageFile, UnidentifiedImageError

from . import jpeg, segments
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
# The resize is the intake's largest cost after the decode when a photo is over
# INTAKE_MAX_SIDE by less than a DCT scale (a 4 MP JPEG, any large PNG). Pillow's
# bilinear filter is stretched over every source pixel a target pixel covers (a
# tent: no aliasing), and the factors it meets here are small (under 3: a JPEG's
# DCT scale or reducing_gap takes the rest), where it is as good as Lanczos for a
# try-on, in under half the time (46 against 98 ms for a 4 MP photo: the "where the
# time goes" table of bench/intake.py).
RESAMPLING = Image.Resampling.BILINEAR
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
    "too_large_to_decode": _(
        "This photo is too large to process (%(width)s x %(height)s pixels). Choose a smaller "
        "photo."
    ),
}
# Not the photo's fault: the server is busy. The API answers it with a 503.
BUSY_MESSAGE = _("Many photos are being processed right now. Try again in a few seconds.")


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


class IntakeBusy(ImageRejected):
    """Every slot for a large decode stayed taken for ``DECODE_WAIT_SECONDS``: nothing
    is wrong with the photo, and the same upload may be sent again in a moment
    (``retry_after`` seconds). Code ``intake_busy``."""

    code_name = "intake_busy"

    def __init__(self, retry_after: int) -> None:
        ValidationError.__init__(self, BUSY_MESSAGE, code=self.code_name)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return (IntakeBusy, (self.retry_after,))


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
    stays PNG, so the provider can cut it out). Raises :class:`ImageRejected`
    (:class:`IntakeBusy` when the process has no room for a large decode now).
    """
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}, not {purpose!r}")
    source = _bounded_source(file)
    accepted, recognised = _formats()
    # Pillow's WebP decoder allocates its canvas as soon as the file is opened.
    _check_webp_header(source)
    # Pillow walks a JPEG's header and a PNG's chunks in Python: a file made of empty
    # ones costs seconds of CPU before the first pixel.
    if segments.has_too_many_segments(source):
        raise ImageRejected("not_an_image")
    try:
        image = Image.open(cast(IO[bytes], _Borrowed(source)), formats=recognised)
    except Image.DecompressionBombError as err:
        raise ImageRejected("too_many_pixels", **_pixel_params()) from err
    except UnidentifiedImageError as err:
        raise ImageRejected("not_an_image") from err
    except DECODE_ERRORS as err:
        raise ImageRejected("truncated_image") from err
    with image:
        _check_header(image, accepted)
        # From the header as opened: _prepare_decode may set a large JPEG to decode at a
        # reduced scale, and those pixels are not its file's.
        copyable = _may_copy_losslessly(image, _file_size(source))
        cost = _prepare_decode(image, source, copyable)
        with _decode_slot(cost):
            return _normalise(image, purpose, source, copyable)


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


class _Borrowed:
    """The caller's file as Pillow sees it: read and seek go through, close does not.

    Closing an image closes its file in every Pillow release we support (10.3
    even through ``Image.Image.close``), and the upload belongs to the caller.
    """

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def readline(self, size: int = -1) -> bytes:
        return self._file.readline(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        pass


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


# Memory ------------------------------------------------------------------------
#
# What an intake costs is known before anything is decoded: Pillow knows the mode
# and size once the header is read, the bytes each mode keeps per pixel are
# fixed, and so are the copies the steps below make. Beside Pillow's pixels some
# decoders hold buffers of their own, in bytes per pixel (measured with
# ``python bench/intake.py``): libwebp keeps its canvas and the previous frame's
# for as long as the file is open, and hands Pillow a copy of the frame; libheif
# frees its planes and RGB buffer once Pillow has the pixels. Both read the
# whole file into memory, and keep a second copy of it while decoding.
DECODER_KEPT_BYTES_PER_PIXEL = {"WEBP": 8}
DECODER_PASSING_BYTES_PER_PIXEL = {"WEBP": 6, "HEIF": 5}
DECODER_FILE_COPIES = {"WEBP": 2, "HEIF": 2}
# What the WebP header check assumes before the mode is known (RGB and RGBA both
# keep four bytes per pixel in Pillow).
WEBP_BYTES_PER_PIXEL = (
    4 + DECODER_KEPT_BYTES_PER_PIXEL["WEBP"] + DECODER_PASSING_BYTES_PER_PIXEL["WEBP"]
)
# Pictures of the final size alive at once after the resize: the picture and one
# converted copy (colour profile, flattened alpha, orientation).
FINAL_COPIES = 2
# A progressive or multi-scan JPEG is decoded through a buffer of every DCT
# coefficient of the whole image (64 per 8 x 8 block, two bytes each), whatever
# the scale of the output.
COEFFICIENT_BYTES_PER_BLOCK = 64 * 2
# How long a large decode waits for a slot before it is refused, and when the
# client is told to try again.
DECODE_WAIT_SECONDS = 10.0
BUSY_RETRY_AFTER = 5
# The photo the button sends (scaled to INTAKE_MAX_SIDE) never waits for a slot.
SMALL_PHOTO_MODE = "RGB"
# A JPEG copied without its metadata is held as the file and its copy beside the
# decoded pixels.
LOSSLESS_COPY_FILE_COPIES = 2


def _pixel_bytes(mode: str) -> int:
    """Bytes Pillow keeps per pixel in ``mode``: one for 1, L and P, two for the 16-bit
    modes, four for every other (RGB too: its rows are four bytes a pixel)."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def _check_decoded_bytes(cost: int, size: tuple[int, int]) -> None:
    if cost > tryon_settings.INTAKE_MAX_DECODED_BYTES:
        width, height = size
        raise ImageRejected("too_large_to_decode", width=width, height=height)


def _check_webp_header(source: IO[bytes]) -> None:
    """Refuse a WebP whose canvas is over the pixel or memory caps before Pillow opens it."""
    start = source.tell()
    head = source.read(30)
    source.seek(start)
    size = webp_canvas_size(head)
    if size is None:
        return
    width, height = size
    if width * height > tryon_settings.MAX_IMAGE_PIXELS:
        raise ImageRejected("too_many_pixels", **_pixel_params())
    file_copies = DECODER_FILE_COPIES["WEBP"] * _file_size(source)
    _check_decoded_bytes(width * height * WEBP_BYTES_PER_PIXEL + file_copies, size)


def webp_canvas_size(head: bytes) -> tuple[int, int] | None:
    """The canvas size in a WebP file's first 30 bytes (VP8X, lossless or lossy), or None."""
    if len(head) < 30 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return None
    chunk = head[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
    if chunk == b"VP8L" and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        return (
            int.from_bytes(head[26:28], "little") & 0x3FFF,
            int.from_bytes(head[28:30], "little") & 0x3FFF,
        )
    return None


def _prepare_decode(image: ImageFile.ImageFile, source: IO[bytes], copyable: bool = False) -> int:
    """Set the decode up as cheaply as the result allows, and return the most memory
    the intake will hold at once (``copyable``: a JPEG that may be copied without its
    metadata, whose file is held twice beside its pixels). Refuse it when that is
    over ``INTAKE_MAX_DECODED_BYTES``."""
    source_size = image.size
    max_side = _max_side()
    if image.format in JPEG_FORMATS:
        scale = jpeg_scale(image.size, max_side)
        if scale > 1:
            # Decode at 1/2, 1/4 or 1/8 scale straight from the DCT data: the
            # full-size pixels are never made.
            image.draft(image.mode, (image.width // scale, image.height // scale))
    elif image.format == "PNG" and image.mode in ("I;16", "I"):  # "I" before Pillow 11
        _decode_16_bit_grey_as_8_bit(image)
    file_size = _file_size(source)
    decoder_bytes = DECODER_FILE_COPIES.get(str(image.format), 0) * file_size
    if copyable:
        decoder_bytes += LOSSLESS_COPY_FILE_COPIES * file_size
    if image.format in JPEG_FORMATS and _jpeg_buffers_coefficients(image, source):
        decoder_bytes += _jpeg_coefficient_bytes(image, source_size)
    cost = intake_bytes(
        image.mode,
        _comparable_mode_of(image),
        image.size,
        _fit(image.size, max_side),
        str(image.format),
        decoder_bytes,
    )
    _check_decoded_bytes(cost, source_size)
    return cost


def _file_size(source: IO[bytes]) -> int:
    start = source.tell()
    size = source.seek(0, io.SEEK_END)
    source.seek(start)
    return size


def intake_bytes(
    mode: str,
    comparable: str,
    size: tuple[int, int],
    target: tuple[int, int],
    image_format: str = "",
    decoder_bytes: int = 0,
) -> int:
    """The most memory an intake holds at once: a picture decoded in ``mode`` at
    ``size`` by ``image_format``'s decoder, converted to ``comparable`` to be resized,
    and fitted to ``target``. The largest of its three stages:

    - decoding: Pillow's pixels and the decoder's buffers (per pixel, and
      ``decoder_bytes`` more, as a JPEG's coefficient buffer);
    - bringing it to ``target``: the pixels, a copy in a mode that resizes well (a
      palette or 16-bit picture), the premultiplied copy Pillow resizes alpha with,
      the resize's intermediate (``target`` wide, full height) and its result;
    - the rest, at ``target`` size: :data:`FINAL_COPIES` pictures (the decoded one
      is closed once resized).
    """
    width, height = size
    pixels = width * height
    kept = _pixel_bytes(mode) + DECODER_KEPT_BYTES_PER_PIXEL.get(image_format, 0)
    passing = DECODER_PASSING_BYTES_PER_PIXEL.get(image_format, 0)
    decoding = pixels * (kept + passing) + decoder_bytes
    if comparable != mode:
        if mode in ("I", "F") or mode.startswith("I;16"):
            kept += 4 + 4  # through 32-bit "I" and its scaled copy
        kept += _pixel_bytes(comparable)
    target_width, target_height = target
    final = target_width * target_height * 4 * FINAL_COPIES
    if target == size:
        return max(decoding, pixels * kept + final)
    premultiplied = 4 if comparable in ("RGBA", "LA") else 0
    resize_bytes = _pixel_bytes(comparable) * target_width * (height + target_height)
    return max(decoding, pixels * (kept + premultiplied) + resize_bytes, final)


def _decode_16_bit_grey_as_8_bit(image: ImageFile.ImageFile) -> None:
    """Decode a 16-bit grey PNG straight to 8-bit grey, keeping each sample's high byte,
    as Pillow itself decodes 16-bit colour PNGs: half the memory of its 16-bit pixels,
    and none of the 32-bit copies a conversion would make. The intake keeps 8 bits a
    sample anyway."""
    if len(image.tile) != 1 or image.tile[0][0] != "zip" or image.tile[0][3] != "I;16B":
        return
    tile = image.tile[0]
    if hasattr(tile, "_replace"):
        image.tile = [tile._replace(args="L;16B")]
    else:  # Pillow < 11: a plain tuple
        image.tile = [cast(Any, (*tile[:3], "L;16B"))]
    image._mode = "L"  # what Pillow's own plugins set when a draft changes the mode


def _jpeg_buffers_coefficients(image: Image.Image, source: IO[bytes]) -> bool:
    """Whether libjpeg decodes this JPEG through a whole-image coefficient buffer: a
    progressive one, or one whose first scan does not hold every component."""
    if image.info.get("progressive") or image.info.get("progression"):
        return True
    components = first_scan_components(source)
    return components is None or components < len(getattr(image, "layer", ()))


def first_scan_components(source: IO[bytes]) -> int | None:
    """The number of components in a JPEG's first scan (its SOS header), or None when the
    markers before it cannot be walked."""
    start = source.tell()
    try:
        for marker, _length in segments.jpeg_header_segments(source):
            if marker == segments.START_OF_SCAN:
                components = source.read(1)
                return components[0] if components else None
        return None
    finally:
        source.seek(start)


def _jpeg_coefficient_bytes(image: Image.Image, size: tuple[int, int]) -> int:
    """Bytes of the coefficient buffer of a JPEG of ``size``: its components' blocks,
    each component subsampled by its sampling factors against the largest."""
    layers = getattr(image, "layer", None) or [("", 1, 1, 0)] * 3
    h_max = max(layer[1] for layer in layers) or 1
    v_max = max(layer[2] for layer in layers) or 1
    width, height = size
    blocks = 0
    for _id, h, v, _table in layers:
        blocks += math.ceil(math.ceil(width * h / h_max) / 8) * math.ceil(
            math.ceil(height * v / v_max) / 8
        )
    return blocks * COEFFICIENT_BYTES_PER_BLOCK


class _DecodeSlots:
    """At most ``INTAKE_MAX_PARALLEL_DECODES`` large decodes at once in this process.

    A decode is large when it needs more memory than an RGB photo of
    ``INTAKE_MAX_SIDE`` square (:func:`large_decode_bytes`): what the button sends
    never waits. A large one waits up to ``DECODE_WAIT_SECONDS`` for a slot, then is
    refused with :class:`IntakeBusy`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._semaphore = threading.BoundedSemaphore(1)
        self._slots: int | None = None

    def semaphore(self) -> threading.BoundedSemaphore:
        # Made again when the setting changes (tests); a decode holding a slot of
        # the old one gives it back there.
        slots = max(1, int(tryon_settings.INTAKE_MAX_PARALLEL_DECODES))
        with self._lock:
            if slots != self._slots:
                self._semaphore = threading.BoundedSemaphore(slots)
                self._slots = slots
            return self._semaphore

    @contextmanager
    def hold(self, timeout: float) -> Iterator[None]:
        semaphore = self.semaphore()
        if not semaphore.acquire(timeout=timeout):
            raise IntakeBusy(BUSY_RETRY_AFTER)
        try:
            yield
        finally:
            semaphore.release()


DECODE_SLOTS = _DecodeSlots()


def large_decode_bytes() -> int:
    """Intakes over this many bytes take a slot: more than an RGB photo of
    ``INTAKE_MAX_SIDE`` square (what the button sends) costs."""
    side = _max_side()
    return intake_bytes(SMALL_PHOTO_MODE, SMALL_PHOTO_MODE, (side, side), (side, side), "JPEG")


@contextmanager
def _decode_slot(cost: int) -> Iterator[None]:
    if cost <= large_decode_bytes():
        yield
        return
    with DECODE_SLOTS.hold(DECODE_WAIT_SECONDS):
        yield


def _normalise(
    image: Image.Image, purpose: str, source: IO[bytes], copyable: bool = False
) -> NormalisedImage:
    orientation = _orientation(image)
    icc_profile = image.info.get("icc_profile")
    keep_alpha = purpose == "garment" and _has_alpha(image)
    max_side = _max_side()
    copy = None
    if copyable and orientation == 1 and _is_srgb(icc_profile):
        copy = jpeg.without_metadata(_read_whole(source), image.size)
    try:
        image.load()
    except DECODE_ERRORS as err:
        raise ImageRejected("truncated_image") from err
    if copy is not None and len(copy) <= tryon_settings.PROVIDER_MAX_BYTES:
        # It decoded, and the copy's frame and scans are the upload's: these very pixels.
        return _normalised(copy, "image/jpeg", "jpg", image.size)
    target = _fit(image.size, max_side)

    picture = _comparable_mode(image)
    if picture.size != target:
        picture = picture.resize(target, RESAMPLING, reducing_gap=3.0)
        # The full-size pixels are done with: free them before the final steps.
        # Pillow sees the caller's file through _Borrowed, so this closes nothing of it.
        image.close()
    picture = _to_srgb(picture, icc_profile)
    picture = _final_mode(picture, keep_alpha)
    transpose = TRANSPOSE_FOR_ORIENTATION.get(orientation)
    if transpose is not None:
        picture = picture.transpose(transpose)
    # Nothing of the original's metadata may ride along into the encoder.
    picture.info = {}
    content, picture = _encode_within_limit(picture, keep_alpha)
    if keep_alpha:
        return _normalised(content, "image/png", "png", picture.size)
    return _normalised(content, "image/jpeg", "jpg", picture.size)


def _normalised(
    content: bytes, content_type: str, extension: str, size: tuple[int, int]
) -> NormalisedImage:
    width, height = size
    return NormalisedImage(
        content=content,
        content_type=content_type,
        extension=extension,
        width=width,
        height=height,
        digest=hashlib.sha256(content).hexdigest(),
    )


def _may_copy_losslessly(image: Image.Image, file_size: int) -> bool:
    """Whether ``image``, opened and not yet set up for decoding, may be what the
    intake would make of it already, from its header: a JPEG (not a multi-picture one)
    of RGB pixels within ``INTAKE_MAX_SIDE``, without Adobe's colour transform
    segment, in a file of ``file_size`` bytes no larger than the provider takes. Its
    orientation, colour profile and markers (:func:`jpeg.without_metadata`) decide."""
    return (
        image.format == "JPEG"
        and image.mode == "RGB"
        and "adobe" not in image.info
        and file_size <= tryon_settings.PROVIDER_MAX_BYTES
        and _fit(image.size, _max_side()) == image.size
    )


def _read_whole(source: IO[bytes]) -> bytes:
    """The whole file, its position left where it was."""
    start = source.tell()
    source.seek(0)
    data = source.read()
    source.seek(start)
    return data


def _max_side() -> int:
    return max(1, min(tryon_settings.INTAKE_MAX_SIDE, tryon_settings.PROVIDER_MAX_SIDE))


def jpeg_scale(size: tuple[int, int], max_side: int) -> int:
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


def _comparable_mode_of(image: Image.Image) -> str:
    """The mode :func:`_comparable_mode` converts ``image`` to."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
        return mode
    if mode in ("I", "F") or mode.startswith("I;16") or mode == "1":
        return "L"
    return "RGBA" if _has_alpha(image) else "RGB"


def _comparable_mode(image: Image.Image) -> Image.Image:
    """A mode that resizes and colour-converts well: RGB, RGBA, L, LA or CMYK."""
    mode = _comparable_mode_of(image)
    if mode == image.mode:
        return image
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        # 16-bit or float grey: scale down to 8 bits instead of clipping to white.
        return image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    return image.convert(mode)


_SRGB: ImageCms.ImageCmsProfile | None = None


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Convert from an embedded colour profile to sRGB, so the colours survive the
    profile being dropped. A profile that cannot be used leaves the pixels as they are."""
    global _SRGB
    if not icc_profile or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    if image.mode != "CMYK" and _is_srgb(icc_profile):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        if _SRGB is None:
            _SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        output_mode = "RGBA" if image.mode == "RGBA" else "RGB"
        # Not in place, so an image comes back (None is for inPlace=True).
        converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=output_mode)
        return cast(Image.Image, converted)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image


def _is_srgb(icc_profile: bytes | None) -> bool:
    """Whether pixels with ``icc_profile`` are sRGB already: no profile, or one that
    names itself sRGB (not one that cannot be read: that is converted, or kept)."""
    if not icc_profile:
        return True
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        return "srgb" in ImageCms.getProfileDescription(profile).lower()
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return False


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
        image = image.resize(size, RESAMPLING)
    raise ImageRejected("too_large_image")
