"""``{% tryon_button %}`` and ``{% tryon_assets %}``: the shopper's "Try it on" button.

``{% load tryon %}{% tryon_button product %}`` renders ``django_tryon/button.html``
(override it in your own templates directory to change the markup) for the
product's active garment, and nothing when it has none. The stylesheet and the
script are emitted by the first tag of a request only, however many buttons
the page has; ``{% tryon_assets %}`` emits them earlier, e.g. in ``<head>``.
"""

import itertools
import json
from typing import Any, cast

from django import template
from django.middleware.csrf import get_token
from django.template import Template
from django.template.context import Context
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _

from .. import images
from ..conf import tryon_settings
from ..errors import message_for
from ..models import Garment, ModelPhoto
from ..transitions import browser_status_lists

register = template.Library()

TEMPLATE_NAME = "django_tryon/button.html"

# A job id no real job has: reversed into the detail URL, then swapped for the
# real id by the script, so the URL layout stays Django's business.
JOB_ID_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"

# Per-request (or per-render) state: whether the assets went out, and a counter
# that keeps element ids unique when a page has several buttons.
_STATE_ATTRIBUTE = "_django_tryon_widget_state"


def _state(context: Context) -> dict[str, Any]:
    """The widget state shared by every tag of one request (or one render without one).

    A flag in the request survives separate template renders of one response
    (a page and the fragments it includes with ``render_to_string``); without a
    request, the bottom of the render context is shared by the template and
    all it includes (which each get a fresh top of their own).
    """
    request = context.get("request")
    if request is not None:
        state = getattr(request, _STATE_ATTRIBUTE, None)
        if state is None:
            state = {"assets": False, "ids": itertools.count(1)}
            setattr(request, _STATE_ATTRIBUTE, state)
        return state
    bottom = cast(dict[str, Any], context.render_context.dicts[0])
    return bottom.setdefault(_STATE_ATTRIBUTE, {"assets": False, "ids": itertools.count(1)})


def _assets_html() -> str:
    return format_html(
        '<link rel="stylesheet" href="{}">\n<script src="{}" defer></script>\n',
        static("django_tryon/tryon.css"),
        static("django_tryon/tryon.js"),
    )


@register.simple_tag(takes_context=True)
def tryon_assets(context: Context) -> str:
    """The widget's stylesheet and script, once per request; later calls render nothing."""
    state = _state(context)
    if state["assets"]:
        return ""
    state["assets"] = True
    return _assets_html()


# Image types a browser may report that the intake refuses with a named format.
REFUSED_TYPES = {"image/gif": "GIF", "image/bmp": "BMP", "image/tiff": "TIFF"}
ACCEPTED_TYPES = ["image/jpeg", "image/png", "image/webp"]
HEIF_TYPES = {"image/heic": "HEIF", "image/heif": "HEIF"}


def _intake_message(code: str, **params: Any) -> str:
    """The intake's own refusal message for ``code``, formatted as the server formats it."""
    return str(images.ImageRejected(code, **params).messages[0])


def client_config(garment: Garment) -> dict[str, Any]:
    """What the script needs, as a dict: API URLs, limits, job statuses and the shopper's
    messages.

    The photo checks use the intake's messages (:data:`django_tryon.images.MESSAGES`),
    so a shopper reads the same words whether the browser or the server refuses.
    ``{format}``, ``{width}`` and ``{height}`` are filled in by the script.
    """
    accepted = list(ACCEPTED_TYPES)
    refused = dict(REFUSED_TYPES)
    # Types a browser may fail to decode that the intake reads: sent as they are.
    send_as_is = []
    if images.heif_available():
        accepted += list(HEIF_TYPES)
        send_as_is += list(HEIF_TYPES)
    else:
        refused.update(HEIF_TYPES)
    max_bytes = tryon_settings.MAX_UPLOAD_BYTES
    return {
        "garmentId": garment.pk,
        "jobsUrl": reverse("django_tryon:job-list"),
        "jobUrl": reverse("django_tryon:job-detail", kwargs={"pk": JOB_ID_PLACEHOLDER}),
        "jobIdPlaceholder": JOB_ID_PLACEHOLDER,
        "requireConsent": bool(tryon_settings.REQUIRE_CONSENT),
        "maxUploadBytes": max_bytes,
        "minImageSide": tryon_settings.MIN_IMAGE_SIDE,
        "intakeMaxSide": tryon_settings.INTAKE_MAX_SIDE,
        "acceptTypes": accepted,
        "refusedTypes": refused,
        "sendAsIsTypes": send_as_is,
        # A job in a "working" status is read again; one in a "final" status has ended.
        "statuses": browser_status_lists(),
        "messages": {
            "empty": _intake_message("empty_file"),
            "notAnImage": _intake_message("not_an_image"),
            "unsupported": _intake_message("unsupported_type", format="{format}"),
            "tooLarge": _intake_message("too_large_upload", limit=images.megabytes(max_bytes)),
            "tooSmall": _intake_message(
                "too_small",
                width="{width}",
                height="{height}",
                minimum=tryon_settings.MIN_IMAGE_SIDE,
            ),
            "noPhoto": _("Choose a photo first."),
            "noConsent": _("Tick the box to agree before sending your photo."),
            "photoChosen": _("Photo chosen. Check it, then send it."),
            "sending": _("Sending your photo…"),
            "pending": _("Your photo is on its way…"),
            "queued": _("Waiting for the try-on service…"),
            "processing": _("Making your picture…"),
            "elapsed": _("%(elapsed)s elapsed") % {"elapsed": "{elapsed}"},
            "succeeded": _("Your picture is ready."),
            "resultFailed": _(
                "Your picture is ready but could not be shown. Check your connection and try again."
            ),
            "failed": str(message_for("provider_error")),
            "network": _("The shop could not be reached. Check your connection and try again."),
            "gone": _("This try-on is no longer available. Please start again."),
            "deleting": _("Deleting your photos…"),
            "deleted": _("Your photos were deleted."),
            "deleteFailed": _("Your photos could not be deleted. Please try again."),
            # The shop's model photos (see django_tryon.shared).
            "modelChosen": _("%(name)s chosen. Send it to try the garment on.")
            % {"name": "{name}"},
            "modelResult": _("%(model)s wearing %(garment)s")
            % {"model": "{name}", "garment": garment.name},
            "cancel": _("Cancel"),
            "canceled": str(message_for("canceled")),
        },
    }


@register.simple_tag(takes_context=True)
def tryon_button(context: Context, garment_or_product: Any, label: str | None = None) -> str:
    """The "Try it on" button and its dialog, or ``""`` if there is nothing to try on.

    ``garment_or_product`` is a shop's product (its active garment is used) or a
    :class:`~django_tryon.models.Garment`. ``label`` replaces the button's text.
    """
    garment = Garment.objects.get_for(garment_or_product)
    if garment is None:
        return ""
    state = _state(context)
    config = client_config(garment)
    request = context.get("request")
    csrf_token = context.get("csrf_token")
    if csrf_token is None and request is not None:
        csrf_token = get_token(request)
    if "model_photos" not in state:  # one query per request, however many buttons
        state["model_photos"] = list(ModelPhoto.objects.offered().order_by("name", "pk"))
    values = {
        "garment": garment,
        "model_photos": state["model_photos"],
        "label": label or _("Try it on"),
        "widget_id": f"tryon-{garment.pk}-{next(state['ids'])}",
        "assets": "" if state["assets"] else _assets_html(),
        "config": json.dumps(config),
        "accept": ",".join(config["acceptTypes"]),
        "privacy_url": tryon_settings.PRIVACY_URL,
        "require_consent": tryon_settings.REQUIRE_CONSENT,
        "example_image": static("django_tryon/example-pose.svg"),
        "request": request,
        "csrf_token": csrf_token,
    }
    state["assets"] = True
    # Set while a template renders, which is when a tag runs.
    button_template = cast(Template, context.template).engine.get_template(TEMPLATE_NAME)
    return button_template.render(context.new(values))
