"""Stable error codes of failed jobs: the words a shopper reads, and whose fault each is.

A failed job stores one of these codes in ``TryOnJob.error_code`` and the
message in ``error_message``; the job JSON shows both. Codes never change
meaning once released: shops may branch on them.

Each code is defined once, here, with what follows from it: its message and
whether the shopper's photo is the cause (:func:`is_shopper_fault`). A
backend error names its code (``job_error_code``) and takes its fault from
it; the daily quota asks the same question of a failed job's stored code.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


@dataclass(frozen=True)
class JobErrorCode:
    code: str
    message: "StrOrPromise"
    #: The shopper's photo is the cause: their daily quota credit is kept (they
    #: can fix it), where every other failure gives the credit back.
    shopper_fault: bool = False


def _photo(code: str, message: "StrOrPromise") -> JobErrorCode:
    return JobErrorCode(code, message, shopper_fault=True)


CODES = {
    error.code: error
    for error in (
        # The shopper's photo
        _photo(
            "invalid_photo",
            _(
                "The try-on service could not use this photo. Use a clear, front, "
                "full-body photo on a plain background."
            ),
        ),
        _photo(
            "no_face",
            _(
                "We could not find a full body in this photo: use a front photo where "
                "your whole body, face and hands are visible."
            ),
        ),
        _photo(
            "face_too_small",
            _(
                "Your face is too small or too large in this photo: stand a few steps "
                "from the camera so your whole body fills the frame."
            ),
        ),
        _photo("blurry_face", _("This photo is too blurry: take a sharper photo in good light.")),
        _photo(
            "content_rejected",
            _("This photo cannot be used for a try-on. Please choose a different photo."),
        ),
        _photo(
            "photo_too_large",
            _("This photo is too large for the try-on service: use a smaller photo."),
        ),
        _photo(
            "photo_unsupported",
            _("This file type is not supported: use a JPEG, PNG or WebP photo."),
        ),
        _photo(
            "photo_unreadable",
            _("This photo could not be read: it may be damaged. Try another photo."),
        ),
        _photo(
            "pose_not_detected",
            _(
                "We could not make out your pose in this photo: stand facing the camera, "
                "arms a little away from your body, with nothing in front of you."
            ),
        ),
        # The shop's side
        JobErrorCode(
            "request_rejected",
            _(
                "The try-on service refused this request. Please try again later or "
                "contact the shop."
            ),
        ),
        JobErrorCode(
            "configuration",
            _("Virtual try-on is not available right now. The shop has been notified."),
        ),
        JobErrorCode(
            "out_of_credits",
            _("Virtual try-on is not available right now. The shop has been notified."),
        ),
        # The provider's side
        JobErrorCode(
            "provider_unavailable",
            _(
                "The try-on service is busy or unavailable right now. Please try again in a "
                "few minutes."
            ),
        ),
        JobErrorCode("provider_error", _("The try-on service had a problem. Please try again.")),
        JobErrorCode(
            "task_failed",
            _(
                "The try-on service could not make a picture from this photo and "
                "garment. Try another photo."
            ),
        ),
        # The provider made a picture but its safety filter withheld it: which of
        # the photo and the garment set it off cannot be told, so the shopper
        # keeps their credit.
        JobErrorCode(
            "result_filtered",
            _(
                "The try-on service's safety filter held this picture back. Try another "
                "photo, or another garment."
            ),
        ),
        JobErrorCode("expired", _("This try-on took too long and was stopped. Please try again.")),
        JobErrorCode(
            "result_unavailable", _("The try-on picture could not be fetched. Please try again.")
        ),
        JobErrorCode(
            "submit_interrupted",
            _("Your try-on was interrupted before it started. Please try again."),
        ),
        JobErrorCode("canceled", _("This try-on was canceled.")),
    )
}

#: Every code's message, by code (the OpenAPI schema lists the codes from it).
MESSAGES = {code: error.message for code, error in CODES.items()}
#: The codes that mean the shopper's photo is the cause (read from :data:`CODES`).
SHOPPER_FAULT_CODES = frozenset(code for code, error in CODES.items() if error.shopper_fault)

UNKNOWN = CODES["provider_error"]


def message_for(code: str) -> "StrOrPromise":
    """The shopper's message for ``code`` (the generic one for unknown codes)."""
    return CODES.get(code, UNKNOWN).message


def is_shopper_fault(code: str) -> bool:
    """Whether a job that failed with ``code`` failed because of the shopper's photo."""
    return CODES.get(code, UNKNOWN).shopper_fault
