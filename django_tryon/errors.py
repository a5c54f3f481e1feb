"""Stable error codes of failed jobs and the words a shopper reads for each.

A failed job stores one of these codes in ``TryOnJob.error_code`` and the
message in ``error_message``; the job JSON shows both. Codes never change
meaning once released: shops may branch on them.
"""

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

MESSAGES = {
    # The shopper's photo
    "invalid_photo": _(
        "The try-on service could not use this photo. Use a clear, front, "
        "full-body photo on a plain background."
    ),
    "no_face": _(
        "We could not find a full body in this photo: use a front photo where "
        "your whole body, face and hands are visible."
    ),
    "face_too_small": _(
        "Your face is too small or too large in this photo: stand a few steps "
        "from the camera so your whole body fills the frame."
    ),
    "blurry_face": _("This photo is too blurry: take a sharper photo in good light."),
    "content_rejected": _(
        "This photo cannot be used for a try-on. Please choose a different photo."
    ),
    "photo_too_large": _("This photo is too large for the try-on service: use a smaller photo."),
    "photo_unsupported": _("This file type is not supported: use a JPEG, PNG or WebP photo."),
    "photo_unreadable": _("This photo could not be read: it may be damaged. Try another photo."),
    # The shop's side
    "request_rejected": _(
        "The try-on service refused this request. Please try again later or contact the shop."
    ),
    "configuration": _("Virtual try-on is not available right now. The shop has been notified."),
    "out_of_credits": _("Virtual try-on is not available right now. The shop has been notified."),
    # The provider's side
    "provider_unavailable": _(
        "The try-on service is busy or unavailable right now. Please try again in a few minutes."
    ),
    "provider_error": _("The try-on service had a problem. Please try again."),
    "task_failed": _(
        "The try-on service could not make a picture from this photo and "
        "garment. Try another photo."
    ),
    "expired": _("This try-on took too long and was stopped. Please try again."),
    "result_unavailable": _("The try-on picture could not be fetched. Please try again."),
    "submit_interrupted": _("Your try-on was interrupted before it started. Please try again."),
    "canceled": _("This try-on was canceled."),
}

# Codes that mean the shopper's photo is the cause. Other failures give the
# shopper's daily quota credit back.
SHOPPER_FAULT_CODES = {
    "invalid_photo",
    "no_face",
    "face_too_small",
    "blurry_face",
    "content_rejected",
    "photo_too_large",
    "photo_unsupported",
    "photo_unreadable",
}


def message_for(code: str) -> "StrOrPromise":
    """The shopper's message for ``code`` (the generic one for unknown codes)."""
    return MESSAGES.get(code, MESSAGES["provider_error"])
