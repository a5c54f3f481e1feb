"""The API's errors and the one shape every error answer has.

Every 4xx answer is ``{"error": {"code": ..., "message": ...}}``; a refused
field adds ``"field"`` (the first one refused) and ``"fields"`` (every refused
field with its messages). ``code`` is stable, ``message`` a sentence a shopper
can act on.
"""

import logging
import math

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework import exceptions, status
from rest_framework.views import exception_handler


class JobNotFound(exceptions.NotFound):
    default_detail = _(
        "This try-on does not exist, or it was started in another browser or account."
    )
    default_code = "not_found"


class _RetryLater(exceptions.APIException):
    """A refusal (429 unless said otherwise) whose ``wait`` (seconds) DRF's handler sends
    as ``Retry-After``."""

    status_code: int = status.HTTP_429_TOO_MANY_REQUESTS

    def __init__(self, detail, wait):
        super().__init__(detail=detail, code=self.default_code)
        self.wait = max(1, math.ceil(wait or 1))


class QuotaExceeded(_RetryLater):
    default_code = "quota_exceeded"

    def __init__(self, limit, retry_after):
        detail = ngettext(
            "You have used your %(limit)s try-on for today. Come back tomorrow.",
            "You have used your %(limit)s try-ons for today. Come back tomorrow.",
            limit,
        ) % {"limit": limit}
        super().__init__(detail, retry_after)


class _CapUsedUp(_RetryLater):
    """A cap shared by more than one shopper is used up until tomorrow."""

    def __init__(self, retry_after):
        super().__init__(self.default_detail, retry_after)


class AddressQuotaExceeded(_CapUsedUp):
    default_code = "address_quota_exceeded"
    default_detail = _(
        "Today's try-ons from your network are used up. "
        "Come back tomorrow, or sign in if you have an account."
    )


class GuestQuotaExceeded(_CapUsedUp):
    default_code = "guest_quota_exceeded"
    default_detail = _(
        "Try-ons for visitors are used up for today. "
        "Come back tomorrow, or sign in if you have an account."
    )


def quota_refusal(err):
    """The API's answer to a :class:`django_tryon.quota.QuotaExceeded`, by its cap."""
    if err.scope == "address":
        return AddressQuotaExceeded(err.retry_after)
    if err.scope == "guests":
        return GuestQuotaExceeded(err.retry_after)
    return QuotaExceeded(err.limit, err.retry_after)


class TooFast(_RetryLater):
    default_code = "throttled"

    def __init__(self, wait):
        seconds = max(1, math.ceil(wait or 1))
        detail = ngettext(
            "You are trying on too quickly. Wait %(seconds)s second and try again.",
            "You are trying on too quickly. Wait %(seconds)s seconds and try again.",
            seconds,
        ) % {"seconds": seconds}
        super().__init__(detail, seconds)


class IntakeBusy(_RetryLater):
    """Every slot for a large photo decode stayed taken: the same request may be sent
    again after ``Retry-After`` seconds."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "intake_busy"


MODEL_PHOTO_NOT_OFFERED = _("This model photo is not offered for try-on.")


class ModelPhotoNotOffered(exceptions.ValidationError):
    """An offered model photo whose file cannot be read: the shopper is told, as for any
    photo not offered, to choose another (staff find the cause in the log)."""

    def __init__(self):
        super().__init__(
            {"model_photo": [MODEL_PHOTO_NOT_OFFERED]},
            code="does_not_exist",
        )


class UploadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The file is too large. Choose a smaller photo or take a new one.")
    default_code = "too_large_upload"


# Clearer words than DRF's for the answers a shopper's browser may meet.
MESSAGES = {
    "unsupported_media_type": _("Send the photo in a multipart/form-data request."),
    "parse_error": _("The request could not be read. Reload the page and try again."),
    "method_not_allowed": _("This address does not accept this kind of request."),
    "not_acceptable": _("This address answers in JSON only."),
}


#: Django's own refusals of a body over its upload limits (``DATA_UPLOAD_MAX_NUMBER_FIELDS``,
#: ``_NUMBER_FILES``, ``_MEMORY_SIZE``), raised by its parser as the API reads the body:
#: DRF leaves them to Django, whose answer is its HTML "Bad Request" page.
UNREADABLE_BODY = (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent)


def api_exception_handler(exc, context):
    """DRF's handler (status and ``Retry-After``), then the one error shape."""
    if isinstance(exc, UNREADABLE_BODY):
        # Logged as Django logs them, for the shop's alerts on suspicious requests.
        logging.getLogger(f"django.security.{type(exc).__name__}").error(str(exc))
        exc = exceptions.ParseError()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"error": _validation_error(exc)}
    else:
        detail = getattr(exc, "detail", "")
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        message = MESSAGES.get(str(code)) or detail
        response.data = {"error": {"code": code, "message": str(message)}}
    return response


def _validation_error(exc):
    details = exc.get_full_details()
    if not isinstance(details, dict):
        details = {"non_field_errors": details if isinstance(details, list) else [details]}
    fields = {}
    first = None
    for name, errors in details.items():
        errors = errors if isinstance(errors, list) else [errors]
        fields[name] = [str(error["message"]) for error in errors]
        if first is None and errors:
            first = (name, errors[0])
    assert first is not None, "a ValidationError carries at least one error"
    name, error = first
    body = {"code": error["code"], "message": str(error["message"]), "fields": fields}
    if name != "non_field_errors":
        body["field"] = name
    return body
