"""FASHN's wire format (API v1), as the sandbox speaks it with ``--protocol fashn``.

- ``POST /v1/run`` with ``Authorization: Bearer <key>`` and a JSON body
  ``{"model_name": "tryon-v1.6", "inputs": {...}}``; ``?webhook_url=`` asks for
  a call back when the prediction ends. Answers ``{"id": ..., "error": null}``.
- ``GET /v1/status/<id>``: ``starting``, ``in_queue``, ``processing``, then
  ``completed`` with ``output`` (a list of result URLs) or ``failed`` with
  ``error`` (``{"name", "message"}``).
- ``GET /v1/credits``: ``{"credits": {"total", "subscription", "on_demand"}}``.
- Errors before a prediction exists: an HTTP status and
  ``{"error": <name>, "message": ...}``.

As FASHN does, the inputs' images are loaded once the prediction runs: one
that cannot be loaded fails the prediction (``ImageLoadError``), it is not
refused at the run. The sandbox takes images as base64 data URIs only (it
never fetches a URL).
"""

import json

from .protocol import (
    TASK_FAILED,
    TASK_PROCESSING,
    TASK_QUEUED,
    TASK_SUCCEEDED,
    ApiError,
    UnknownTaskError,
)
from .submission import Submission, load_data_uri
from .webhooks import check_callback_url

RUN_PATH = "/v1/run"
STATUS_PREFIX = "/v1/status/"
CREDITS_PATH = "/v1/credits"

MODEL_NAMES = ("tryon-v1.6",)
CATEGORIES = {
    "tops": "upper_body",
    "bottoms": "lower_body",
    "one-pieces": "full_body",
    "auto": "upper_body",
}
CHOICES = {
    "mode": ("performance", "balanced", "quality"),
    "moderation_level": ("conservative", "permissive", "none"),
    "garment_photo_type": ("auto", "model", "flat-lay"),
    "output_format": ("png", "jpeg"),
}
BOOLEANS = ("segmentation_free", "return_base64")
MAX_SAMPLES = 4

# The sandbox's own fault codes (AILabAPI's, see protocol.ERRORS), as FASHN answers them.
API_ERRORS = {
    "ERROR_PARAMETERS": (400, "BadRequest"),
    "MISSING_PARAMETERS": (400, "BadRequest"),
    "ERROR_INVALID_PARAMETER": (400, "BadRequest"),
    "PARAMETERS_CANNOT_EMPTY": (400, "BadRequest"),
    "FILE_SIZE_EXCEEDS_LIMIT": (400, "BadRequest"),
    "ERROR_APPLICATIONS_NOT_EXISTS": (401, "UnauthorizedAccess"),
    "ERROR_AI_NOT_EXISTS": (404, "NotFound"),
    "EXCEEDING_LIMITS": (429, "RateLimitExceeded"),
    "ERROR_NOT_ENOUGH_CREDITS": (429, "OutOfCredits"),
}
SERVER_ERROR_NAME = "InternalServerError"

# Runtime errors the faults end a prediction with.
TASK_FAILURE = ("PipelineError", "An unexpected error occurred in the try-on pipeline.")
NO_PERSON = ("PoseError", "Unable to detect a body pose in the model image.")


class FashnWire:
    """FASHN's protocol for :class:`~django_tryon.sandbox.server.SandboxServer`
    (the interface is :class:`~django_tryon.sandbox.protocol.AILabWire`'s)."""

    name = "fashn"
    refuses_photos_at_submit = False
    task_failure = TASK_FAILURE
    no_person = NO_PERSON

    def __init__(self, callback_allowed=None):
        #: ``callback_allowed(host) -> bool``: which hosts a webhook may go to.
        self.callback_allowed = callback_allowed or (lambda host: True)

    def kind(self, method, path):
        if path == RUN_PATH and method == "POST":
            return "submit"
        if path.startswith(STATUS_PREFIX) and method == "GET":
            return "query"
        if path == CREDITS_PATH and method == "GET":
            return "credits"
        return None

    def api_key(self, headers):
        scheme, _, key = headers.get("Authorization", "").partition(" ")
        return key.strip() if scheme.lower() == "bearer" else ""

    def task_id(self, path, query):
        return path[len(STATUS_PREFIX) :]

    # Runs ---------------------------------------------------------------------

    def read_submission(self, headers, query, body, *, decode, path=""):
        """The run's :class:`Submission`; raise :class:`ApiError` (400) for a bad request."""
        webhook_url = check_callback_url(
            query.get("webhook_url", [""])[0], self.callback_allowed, "webhook_url"
        )
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as err:
            raise ApiError("ERROR_PARAMETERS", "The body must be a JSON object.") from err
        if not isinstance(payload, dict):
            raise ApiError("ERROR_PARAMETERS", "The body must be a JSON object.")
        if payload.get("model_name") not in MODEL_NAMES:
            raise ApiError(
                "ERROR_INVALID_PARAMETER",
                f"model_name must be one of {', '.join(MODEL_NAMES)}.",
            )
        inputs = payload.get("inputs")
        if not isinstance(inputs, dict):
            raise ApiError("MISSING_PARAMETERS", "inputs must be an object.")
        for name in ("model_image", "garment_image"):
            if not isinstance(inputs.get(name), str) or not inputs[name]:
                raise ApiError("MISSING_PARAMETERS", f"inputs.{name} is required.")
        category = inputs.get("category", "auto")
        if category not in CATEGORIES:
            raise ApiError(
                "ERROR_INVALID_PARAMETER", f"category must be one of {', '.join(CATEGORIES)}."
            )
        _check_options(inputs)
        person, failure = _load_image("model", inputs["model_image"], decode)
        garment, garment_failure = _load_image("garment", inputs["garment_image"], decode)
        return Submission(
            person_image=person,
            clothes_image=garment,
            clothes_type=CATEGORIES[category],
            failure=failure if failure[0] else garment_failure,
            webhook_url=webhook_url,
        )

    # Answers --------------------------------------------------------------------

    def submit_answer(self, request_id, task):
        return {"id": task.id, "error": None}

    def status_answer(self, task, status, url, now):
        """A prediction's status body: what ``/v1/status`` answers and a webhook sends."""
        if status == TASK_SUCCEEDED:
            return {"id": task.id, "status": "completed", "output": [url], "error": None}
        if status == TASK_FAILED:
            name, message = task.failure if task.failure[0] else TASK_FAILURE
            return {"id": task.id, "status": "failed", "error": {"name": name, "message": message}}
        label = "processing" if status == TASK_PROCESSING else "in_queue"
        if status == TASK_QUEUED and now - task.created_at < task.processing_time / 8:
            label = "starting"
        return {"id": task.id, "status": label, "error": None}

    def query_answer(self, request_id, task, status, url, now):
        return self.status_answer(task, status, url, now)

    def credits_answer(self, request_id, credits):
        return {"credits": {"total": credits, "subscription": 0, "on_demand": credits}}

    def error(self, error, request_id):
        if error.status >= 500:
            status, name = error.status, SERVER_ERROR_NAME
        elif isinstance(error, UnknownTaskError):
            status, name = 404, "NotFound"
        else:
            status, name = API_ERRORS.get(error.code, (400, "BadRequest"))
        return status, {"error": name, "message": error.message}, name


def _check_options(inputs):
    for name, choices in CHOICES.items():
        if name in inputs and inputs[name] not in choices:
            raise ApiError(
                "ERROR_INVALID_PARAMETER", f"{name} must be one of {', '.join(choices)}."
            )
    for name in BOOLEANS:
        if name in inputs and not isinstance(inputs[name], bool):
            raise ApiError("ERROR_INVALID_PARAMETER", f"{name} must be true or false.")
    seed = inputs.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ApiError("ERROR_INVALID_PARAMETER", "seed must be an integer from 0 to 2^32 - 1.")
    samples = inputs.get("num_samples", 1)
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= MAX_SAMPLES:
        raise ApiError(
            "ERROR_INVALID_PARAMETER", f"num_samples must be an integer from 1 to {MAX_SAMPLES}."
        )


def _load_image(which, value, decode):
    """``(bytes, failure)``: the image of a data URI, or the ``ImageLoadError`` the
    prediction will end with (as FASHN loads images once the prediction runs)."""
    content, problem = load_data_uri(value, decode)
    if problem:
        return b"", ("ImageLoadError", f"Error loading {which} image: {problem}.")
    return content, ("", "")
