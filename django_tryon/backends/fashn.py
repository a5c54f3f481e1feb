"""FASHN's virtual try-on API (v1): run a prediction, then poll its status or be called back.

The protocol, as FASHN documents it (summarised in ``docs/providers.md``):

- ``POST /v1/run`` with ``{"model_name": ..., "inputs": {...}}`` and the key as
  ``Authorization: Bearer <key>``; ``?webhook_url=`` asks for a call back.
  The answer is ``{"id": ..., "error": null}``.
- ``GET /v1/status/{id}``: ``status`` is ``starting``, ``in_queue``,
  ``processing``, ``completed`` (``output``: a list of result URLs, kept 72 h)
  or ``failed`` (``error``: ``{"name", "message"}``). A webhook's body is
  this same answer.
- An error before a prediction exists is an HTTP status with
  ``{"error": <name>, "message": ...}``.
- ``GET /v1/credits``: ``{"credits": {"total", "subscription", "on_demand"}}``.
"""

from typing import Any
from urllib.parse import quote, urlsplit

from .base import (
    FAILED,
    PROCESSING,
    QUEUED,
    SUCCEEDED,
    ConfigurationError,
    Credits,
    InvalidPhotoError,
    InvalidResponseError,
    Option,
    OutOfCreditsError,
    RateLimitedError,
    RequestRejectedError,
    Submission,
    TaskFailedError,
    TaskState,
)
from .base_http import (
    HTTPBackend,
    data_uri,
    field_text,
    is_task_id,
    parse_json_object,
    retry_after,
)

RUN_PATH = "/v1/run"
STATUS_PATH = "/v1/status/"
CREDITS_PATH = "/v1/credits"

#: The garment's clothes type, as FASHN's ``category``.
CATEGORIES = {"upper_body": "tops", "lower_body": "bottoms", "full_body": "one-pieces"}

IN_FLIGHT_STATUSES = {"starting": QUEUED, "in_queue": QUEUED, "processing": PROCESSING}
COMPLETED = "completed"
FAILED_STATUS = "failed"

# Errors answered before a prediction exists (HTTP status, then "error").
OUT_OF_CREDITS = "OutOfCredits"
RATE_CODES = {"RateLimitExceeded", "ConcurrencyLimitExceeded"}

# Errors of a prediction that ran ("error.name"): the error class and the
# stable job code of each. The photo's errors are the shopper's to fix; a
# garment image that cannot be used is the shop's (see _runtime_error).
PHOTO_ERRORS = {
    "ImageLoadError": "photo_unreadable",
    "ContentModerationError": "content_rejected",
    "NSFWError": "content_rejected",
    "PoseError": "pose_not_detected",
}
REQUEST_ERRORS = {"InputValidationError"}

#: A webhook body is a status answer: a few hundred bytes. Larger is refused unread.
MAX_CALLBACK_BYTES = 64 * 1024


class FashnBackend(HTTPBackend):
    provider_name = "fashn"
    requires_api_key = True
    supports_callbacks = True
    default_base_url = "https://api.fashn.ai"
    known_options = {
        "model_name": Option("tryon-v1.6", help="The try-on model."),
        "mode": Option(
            "balanced",
            choices=("performance", "balanced", "quality"),
            help="Speed against quality: about 5, 8 and 12-17 s.",
        ),
        "moderation_level": Option(
            "permissive",
            choices=("conservative", "permissive", "none"),
            help="How strictly the garment is screened for revealing content.",
        ),
        "garment_photo_type": Option(
            "auto",
            choices=("auto", "model", "flat-lay"),
            help="Whether the garments are photographed worn or laid flat.",
        ),
        "segmentation_free": Option(
            True, kind=bool, help="False removes the clothes underneath more thoroughly."
        ),
        "seed": Option(None, kind=int, help="Repeat a result exactly (None: the provider's)."),
        "output_format": Option("png", choices=("png", "jpeg"), help="The result's format."),
    }

    def auth_headers(self):
        return {"Authorization": f"Bearer {self.api_key}"}

    # Calls ----------------------------------------------------------------

    def submit(self, request, callback_url=""):
        inputs: dict[str, Any] = {
            "model_image": data_uri(request.person_image),
            "garment_image": data_uri(request.garment_image),
            "category": CATEGORIES.get(request.clothes_type, "auto"),
        }
        for name, value in self.options.items():
            if name != "model_name" and value is not None:
                inputs[name] = value
        params = {"webhook_url": callback_url} if callback_url else None
        answer = self.call(
            "POST",
            RUN_PATH,
            params=params,
            json={"model_name": self.options["model_name"], "inputs": inputs},
        )
        task_id = answer.get("id")
        if not isinstance(task_id, str) or not is_task_id(task_id) or answer.get("error"):
            raise self.error(
                InvalidResponseError,
                "The provider answered the run without a prediction id.",
                status_code=200,
                code=field_text(answer.get("error")),
                in_doubt=True,
            )
        return Submission(task_id=task_id, request_id=task_id)

    def query(self, task_id):
        answer = self.call("GET", STATUS_PATH + quote(task_id, safe=""))
        return self.state_from(answer)

    def credits(self):
        answer = self.call("GET", CREDITS_PATH)
        credits = answer.get("credits")
        total = credits.get("total") if isinstance(credits, dict) else None
        if isinstance(total, bool) or not isinstance(total, (int, float)):
            raise self.error(
                InvalidResponseError,
                "The provider's credits answer holds no total.",
                status_code=200,
            )
        return Credits(remaining=total, raw=answer)

    def parse_callback(self, request):
        """The prediction id and state a webhook reports (its body is a status answer).

        Refused (:class:`RequestRejectedError`): a body over
        :data:`MAX_CALLBACK_BYTES`, one that is not a JSON object, or one not
        shaped as a status answer. FASHN signs nothing: the view checks the
        secret its URL carries.
        """
        # A delivery always has a body, of a declared length.
        declared = str(request.META.get("CONTENT_LENGTH") or "")
        if not declared.isdigit() or int(declared) > MAX_CALLBACK_BYTES:
            raise self._refused("The callback's body is too large or its length is unreadable.")
        body = request.body
        if len(body) > MAX_CALLBACK_BYTES:
            raise self._refused("The callback's body is too large.")
        answer = parse_json_object(body)
        if answer is None:
            raise self._refused("The callback's body is not a JSON object.")
        task_id = answer.get("id")
        if not is_task_id(task_id):
            raise self._refused("The callback names no prediction id.")
        try:
            state = self.state_from(answer)
        except InvalidResponseError as err:
            raise self._refused(f"The callback is not a status answer: {err.message}") from err
        return task_id, state

    # Answers --------------------------------------------------------------

    def state_from(self, answer):
        """The :class:`TaskState` a status answer (or a webhook's body) reports."""
        task_id = field_text(answer.get("id"))
        status = answer.get("status")
        if isinstance(status, str) and status in IN_FLIGHT_STATUSES:
            return TaskState(status=IN_FLIGHT_STATUSES[status], request_id=task_id, raw=answer)
        if status == COMPLETED:
            output = answer.get("output")
            url = output[0] if isinstance(output, list) and output else None
            if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
                raise self.error(
                    InvalidResponseError,
                    "The provider reported success without a result URL.",
                    status_code=200,
                    request_id=task_id,
                )
            return TaskState(status=SUCCEEDED, result_url=url, request_id=task_id, raw=answer)
        if status == FAILED_STATUS:
            error = self._runtime_error(answer.get("error"), task_id)
            return TaskState(status=FAILED, error=error, request_id=task_id, raw=answer)
        raise self.error(
            InvalidResponseError,
            f"The provider reported an unknown status {field_text(status)[:40]!r}.",
            status_code=200,
            request_id=task_id,
        )

    def _runtime_error(self, error, task_id):
        if not isinstance(error, dict):
            error = {}
        name = field_text(error.get("name"))[:100]
        message = field_text(error.get("message"))[:500] or "The prediction failed."
        details = {"status_code": 200, "code": name, "request_id": task_id}
        # Both images are checked alike; only the shopper's photo is theirs to fix.
        about_garment = "garment" in message.lower()
        if name in PHOTO_ERRORS and not about_garment:
            return self.error(
                InvalidPhotoError, message, job_error_code=PHOTO_ERRORS[name], **details
            )
        if name in REQUEST_ERRORS:
            return self.error(RequestRejectedError, message, **details)
        return self.error(TaskFailedError, message, **details)

    def error_for(self, status, answer, response):
        code = field_text(answer.get("error"))[:100]
        message = field_text(answer.get("message"))[:500] or code or f"HTTP {status}"
        details = {"status_code": status, "code": code}
        if code == OUT_OF_CREDITS:
            return self.error(OutOfCreditsError, message, response=response, **details)
        if code in RATE_CODES or status == 429:
            return self.error(
                RateLimitedError,
                message,
                retry_after=retry_after(response),
                response=response,
                **details,
            )
        if status in (401, 403):
            return self.error(
                ConfigurationError, f"The provider refused the API key: {message}", **details
            )
        return self.error_for_status(status, message=message, response=response, code=code)

    def _refused(self, message):
        return self.error(RequestRejectedError, message)
