"""Reading a submit: the multipart body, its fields, and the two images' limits.

The checks and their order follow the provider's documented limits: every
field present, a known ``clothes_type``, then each image at most 3 MB, a JPEG
or PNG, decodable, and under 4096 pixels a side.
"""

import base64
import binascii
import hashlib
import io
import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import HTTP

from PIL import Image, UnidentifiedImageError

from .protocol import CLOTHES_TYPES, ApiError

MAX_FILE_BYTES = 3 * 1024 * 1024
MAX_SIDE = 4096  # a side must be under this
ACCEPTED_FORMATS = {"JPEG", "PNG"}
FILE_FIELDS = ("person_image", "clothes_image")
TEXT_FIELDS = ("task_type", "clothes_type")


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Submission:
    person_image: bytes
    clothes_image: bytes
    clothes_type: str
    #: ``(name, message)`` of the error the task will end with, for a protocol
    #: that finds a bad input while running (FASHN), not at submit.
    failure: tuple[str, str] = ("", "")
    #: Where to report the task's end (FASHN's ``webhook_url``), if anywhere.
    webhook_url: str = ""
    #: The model asked for, where the protocol has several (fal).
    model: str = ""

    @property
    def person_digest(self):
        return hashlib.sha256(self.person_image).hexdigest()


def parse_multipart(content_type, body):
    """``(fields, files)`` of a ``multipart/form-data`` body.

    Raises :class:`ApiError` (``ERROR_PARAMETERS``) if the body is not one.
    """
    header = BytesHeaderParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    )
    boundary = header.get_param("boundary")
    # An RFC 2231 encoded boundary comes as a tuple: no browser or client sends one.
    if (
        header.get_content_type() != "multipart/form-data"
        or not isinstance(boundary, str)
        or not boundary
    ):
        raise ApiError("ERROR_PARAMETERS", "The request body must be multipart/form-data.")
    delimiter = b"--" + boundary.encode("latin-1")
    fields, files = {}, {}
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, separator, content = chunk.partition(b"\r\n\r\n")
        if not separator:
            raise ApiError("ERROR_PARAMETERS", "A part of the multipart body has no headers.")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers = BytesHeaderParser(policy=HTTP).parsebytes(head.lstrip(b"\r\n") + b"\r\n\r\n")
        disposition = headers.get("Content-Disposition")
        if disposition is None:
            continue
        name = disposition.params.get("name")
        if not name:
            continue
        filename = disposition.params.get("filename")
        if filename is None:
            fields[name] = content.decode("utf-8", "replace")
        else:
            files[name] = UploadedFile(
                filename, headers.get_content_type() if "Content-Type" in headers else "", content
            )
    return fields, files


def read_submission(content_type, body, *, decode=True):
    """Check a submit's body and return a :class:`Submission`, or raise :class:`ApiError`.

    ``decode`` also decodes each image (at a reduced scale where the format
    allows), which finds truncated files; without it only the headers are read.
    """
    fields, files = parse_multipart(content_type, body)
    for name in (*TEXT_FIELDS, *FILE_FIELDS):
        if name not in fields and name not in files:
            raise ApiError("MISSING_PARAMETERS", f"Missing parameter: {name}.")
    for name in TEXT_FIELDS:
        if name not in fields:
            raise ApiError("ERROR_PARAMETERS", f"{name} must be a text field, not a file.")
    for name in FILE_FIELDS:
        if name not in files:
            raise ApiError("ERROR_PARAMETERS", f"{name} must be a file.")
    if fields["task_type"] != "async":
        raise ApiError("ERROR_INVALID_PARAMETER", "task_type must be 'async'.")
    if fields["clothes_type"] not in CLOTHES_TYPES:
        raise ApiError(
            "ERROR_INVALID_PARAMETER",
            f"clothes_type must be one of {', '.join(CLOTHES_TYPES)}.",
        )
    for name in FILE_FIELDS:
        check_image(name, files[name].content, decode=decode)
    return Submission(
        person_image=files["person_image"].content,
        clothes_image=files["clothes_image"].content,
        clothes_type=fields["clothes_type"],
    )


def check_image(name, content, *, decode=True):
    """Raise :class:`ApiError` unless ``content`` is an image the provider takes."""
    if not content:
        raise ApiError("PARAMETERS_CANNOT_EMPTY", f"{name} is empty.")
    if len(content) > MAX_FILE_BYTES:
        raise ApiError(
            "FILE_SIZE_EXCEEDS_LIMIT", f"{name} is {len(content)} bytes; the limit is 3 MB."
        )
    try:
        with Image.open(io.BytesIO(content)) as image:
            if image.format not in ACCEPTED_FORMATS:
                raise ApiError(
                    "UNSUPPORTED_FILE_TYPES",
                    f"{name} is a {image.format} image; use JPG, JPEG or PNG.",
                )
            width, height = image.size
            if width >= MAX_SIDE or height >= MAX_SIDE:
                raise ApiError(
                    "FILE_RESOLUTION_EXCEEDS_LIMITS",
                    f"{name} is {width}x{height}; each side must be under {MAX_SIDE} pixels.",
                )
            if decode:
                # A JPEG decodes at 1/8 scale here: enough to find a truncated file, cheap.
                image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                image.load()
    except UnidentifiedImageError as err:
        raise ApiError("UNSUPPORTED_FILE_TYPES", f"{name} is not a JPG or PNG image.") from err
    except Image.DecompressionBombError as err:
        raise ApiError("FILE_RESOLUTION_EXCEEDS_LIMITS", f"{name} has too many pixels.") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise ApiError("FILE_DECODING_FAILURE", f"{name} could not be decoded.") from err


#: A base64 data URI of an image, as JSON protocols (FASHN, fal) take them inline.
DATA_URI = re.compile(r"data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)
DATA_URI_FORMATS = {"JPEG", "PNG", "WEBP"}


def load_data_uri(value, decode):
    """``(bytes, problem)``: the image of a base64 data URI, or why it cannot be used
    (the sandbox never fetches a URL). ``decode``: decode the pixels too (cheaply)."""
    match = DATA_URI.match(value)
    if not match:
        return b"", "the sandbox takes base64 data URIs only"
    try:
        content = base64.b64decode(value[match.end() :], validate=True)
    except (binascii.Error, ValueError):
        return b"", "invalid base64"
    try:
        with Image.open(io.BytesIO(content)) as image:
            if image.format not in DATA_URI_FORMATS:
                raise ValueError(image.format)
            if decode:
                image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return b"", "not a readable image"
    return content, ""
