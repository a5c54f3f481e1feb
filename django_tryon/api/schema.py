"""The OpenAPI description of the shopper API, through drf-spectacular when it is installed
(``pip install "django-tryon[schema]"``).

The views and serializers take their schema decorators from here. Without drf-spectacular
every decorator returns what it is given, so the API works the same with or without the extra.
A shop that already publishes a drf-spectacular schema gets the try-on endpoints in it,
described as below; the committed ``docs/openapi.yaml`` is generated from the same code
(see ``docs/openapi.md``).

Error answers are described per status with the exact ``code`` values each can carry,
so a client (or a fuzzer) can check them; see :mod:`django_tryon.api.exceptions` for the
shape.
"""

from ..errors import MESSAGES as JOB_ERROR_MESSAGES
from ..images import MESSAGES as IMAGE_MESSAGES

try:
    from drf_spectacular import utils as spectacular
    from drf_spectacular.authentication import SessionScheme
except ImportError:  # the `schema` extra is not installed
    spectacular = None  # type: ignore[assignment]

# The ``code`` values of each error status. 400: the request's fields (the codes of the
# fields' checks, the consent rule, the photo intake's codes) and a body that could not be
# parsed.
FIELD_CODES = [
    "required",
    "invalid",
    "does_not_exist",
    "consent_required",
    "photo_and_model_photo",
]
BAD_REQUEST_CODES = [*FIELD_CODES, *IMAGE_MESSAGES, "parse_error"]
FORBIDDEN_CODES = ["csrf_failed"]
NOT_FOUND_CODES = ["not_found"]
NOT_ACCEPTABLE_CODES = ["not_acceptable"]
TOO_LARGE_CODES = ["too_large_upload"]
UNSUPPORTED_MEDIA_CODES = ["unsupported_media_type"]
THROTTLED_CODES = ["throttled"]
CREATE_REFUSED_CODES = [
    "throttled",
    "quota_exceeded",
    "address_quota_exceeded",
    "guest_quota_exceeded",
]
BUSY_CODES = ["intake_busy"]


if spectacular is not None:
    # drf-spectacular registers an extension when its class is defined.
    class ShopperSessionScheme(SessionScheme):
        """The session cookie, as for DRF's session authentication: a guest has one from
        their first POST; without one a request speaks for a new guest."""

        target_class = "django_tryon.api.authentication.ShopperSessionAuthentication"


def _unchanged(target):
    return target


def _error_schema(codes, *, with_fields=False):
    """The one error shape, ``{"error": {"code", "message", ...}}``, for ``codes``."""
    properties = {
        "code": {
            "type": "string",
            "enum": list(codes),
            "description": "Stable: a client may branch on it.",
        },
        "message": {
            "type": "string",
            "description": "A sentence to show the shopper as it is (translated).",
        },
    }
    if with_fields:
        properties["field"] = {
            "type": "string",
            "description": "The first refused field (absent when no single field is at fault).",
        }
        properties["fields"] = {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "Every refused field with its messages.",
        }
    return {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": properties,
                "required": ["code", "message"],
            }
        },
        "required": ["error"],
    }


def _error(description, codes, *, with_fields=False):
    return spectacular.OpenApiResponse(
        _error_schema(codes, with_fields=with_fields), description=description
    )


def _not_acceptable():
    return _error("The request's `Accept` header excludes JSON.", NOT_ACCEPTABLE_CODES)


def _csrf_refused():
    return _error(
        "The CSRF token (header `X-CSRFToken`, from the `csrftoken` cookie) is missing or wrong.",
        FORBIDDEN_CODES,
    )


def _job_not_found():
    return _error(
        "No such job, an id that is not a UUID, or another shopper's job: the answer "
        "never tells which.",
        NOT_FOUND_CODES,
    )


def _retry_after(*statuses):
    return spectacular.OpenApiParameter(
        "Retry-After",
        type=int,
        location=spectacular.OpenApiParameter.HEADER,
        description="Seconds to wait before trying again.",
        response=[429, *statuses],
    )


def _job_id():
    # drf-spectacular names a ``pk`` path parameter ``id`` (SCHEMA_COERCE_PATH_PK).
    return spectacular.OpenApiParameter(
        "id",
        type={"type": "string", "format": "uuid"},
        location=spectacular.OpenApiParameter.PATH,
        required=True,
        description="The job's id. Any other value answers 404.",
    )


def component(name):
    """Name a serializer's schema component (prefixed, so it sits beside a shop's own)."""
    if spectacular is None:
        return _unchanged
    return spectacular.extend_schema_serializer(component_name=name)


def field(schema):
    """Describe a ``SerializerMethodField``'s value by a raw OpenAPI ``schema``."""
    if spectacular is None:
        return _unchanged
    return spectacular.extend_schema_field(schema)


def job_error_field():
    """The job JSON's ``error``: null, or one of the stable job error codes."""
    return field(
        {
            "type": "object",
            "nullable": True,
            "properties": {
                "code": {"type": "string", "enum": list(JOB_ERROR_MESSAGES)},
                "message": {"type": "string"},
            },
            "required": ["code", "message"],
            "description": "Null, or why the job ended `failed`, `expired` or `canceled`: a "
            "stable code and a sentence the shopper can act on.",
        }
    )


def create_job(method):
    if spectacular is None:
        return method
    from .serializers import JobCreateSerializer, JobSerializer

    location = spectacular.OpenApiParameter(
        "Location",
        type={"type": "string", "format": "uri"},
        location=spectacular.OpenApiParameter.HEADER,
        description="The job's URL, to poll.",
        response=[200, 201],
    )
    return spectacular.extend_schema(
        operation_id="tryon_jobs_create",
        summary="Start a try-on",
        description=(
            "Checks and stores the photo, writes a `pending` job and answers at once: the "
            "worker sends it to the provider. Needs the CSRF token. A refused request "
            "stores nothing and counts nothing."
        ),
        request={"multipart/form-data": JobCreateSerializer},
        parameters=[location, _retry_after(503)],
        responses={
            201: spectacular.OpenApiResponse(JobSerializer, description="A new `pending` job."),
            200: spectacular.OpenApiResponse(
                JobSerializer,
                description=(
                    "An earlier job of the same shopper, for the same photo and garment, "
                    "or the shop's job of the same model photo and garment, still running "
                    'or with its result kept (`"reused": true`).'
                ),
            ),
            400: _error(
                "A field was refused: `field` names the first, `fields` lists them all.",
                BAD_REQUEST_CODES,
                with_fields=True,
            ),
            403: _csrf_refused(),
            406: _not_acceptable(),
            413: _error("The declared body length is over `MAX_UPLOAD_BYTES`.", TOO_LARGE_CODES),
            415: _error("The body is not `multipart/form-data`.", UNSUPPORTED_MEDIA_CODES),
            429: _error(
                "Over `THROTTLE_RATE` (`throttled`), or a daily quota: the shopper's "
                "(`quota_exceeded`), their client address's (`address_quota_exceeded`) or "
                "all guests' (`guest_quota_exceeded`).",
                CREATE_REFUSED_CODES,
            ),
            503: _error(
                "Every slot for a large photo decode (`INTAKE_MAX_PARALLEL_DECODES` per server "
                "process) stayed taken: send the same request again after `Retry-After`.",
                BUSY_CODES,
            ),
        },
    )(method)


def read_job(method):
    if spectacular is None:
        return method
    from .serializers import JobSerializer

    return spectacular.extend_schema(
        operation_id="tryon_jobs_retrieve",
        summary="Read a try-on's progress and result",
        description="Poll it every 2 to 5 seconds until the job ends. Never throttled.",
        parameters=[_job_id()],
        responses={
            200: JobSerializer,
            404: _job_not_found(),
            406: _not_acceptable(),
        },
    )(method)


def erase_job(method):
    if spectacular is None:
        return method
    return spectacular.extend_schema(
        operation_id="tryon_jobs_destroy",
        summary="Erase a try-on",
        description=(
            "Erases the photo and the result at once; a running job becomes `canceled`. "
            "Afterwards the id answers 404. Needs the CSRF token."
        ),
        parameters=[_job_id(), _retry_after()],
        responses={
            204: spectacular.OpenApiResponse(description="Erased."),
            403: _csrf_refused(),
            404: _job_not_found(),
            406: _not_acceptable(),
            429: _error("Over `THROTTLE_RATE`.", THROTTLED_CODES),
        },
    )(method)


def list_garments(method):
    if spectacular is None:
        return method
    from .serializers import GarmentSerializer

    return spectacular.extend_schema(
        operation_id="tryon_garments_list",
        summary="The garments shoppers can try on",
        description="The active garments, by name, unpaginated. Sets the `csrftoken` cookie.",
        responses={200: GarmentSerializer(many=True), 406: _not_acceptable()},
    )(method)


def list_model_photos(method):
    if spectacular is None:
        return method
    from .serializers import ModelPhotoSerializer

    return spectacular.extend_schema(
        operation_id="tryon_model_photos_list",
        summary="The model photos shoppers may try garments on",
        description=(
            "The model photos the shop offers to shoppers with no photo at hand, by name, "
            "unpaginated: send one's id as `model_photo` instead of `person_image`. Sets "
            "the `csrftoken` cookie."
        ),
        responses={200: ModelPhotoSerializer(many=True), 406: _not_acceptable()},
    )(method)
