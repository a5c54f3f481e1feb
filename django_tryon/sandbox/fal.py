"""fal.ai's queue, as the sandbox speaks it with ``--protocol fal``.

- ``POST /fal-ai/fashn/tryon/v1.6`` or ``POST /fal-ai/kling/v1-5/kolors-virtual-try-on``
  with ``Authorization: Key <key>`` and the model's JSON inputs;
  ``?fal_webhook=`` asks for a signed call back when the request ends. Answers
  ``{"request_id", "status_url", "response_url", "cancel_url", ...}``.
- ``GET /{app}/requests/<id>/status`` (``{app}``: ``fal-ai/fashn`` or
  ``fal-ai/kling``): ``IN_QUEUE`` (HTTP 202), ``IN_PROGRESS`` (202),
  ``COMPLETED`` (200).
- ``GET /{app}/requests/<id>``: the model's output (FASHN: ``images``, Kolors:
  ``image``), or its error (``{"detail": [{"loc", "msg", "type"}]}``, HTTP 422),
  or HTTP 400 while the request still runs.
- ``PUT /{app}/requests/<id>/cancel``: ``CANCELLATION_REQUESTED`` (202),
  ``ALREADY_COMPLETED`` (400).
- ``GET /.well-known/jwks.json``: the sandbox's public key, which signs its
  webhooks as fal signs its own (Ed25519 over the request id, the user id,
  the timestamp and the SHA-256 of the body). Point the backend's
  ``OPTIONS["jwks_url"]`` here.

Images are taken as base64 data URIs only (the sandbox never fetches a URL),
and loaded once the request runs: one that cannot be loaded fails the
request (``image_load_error``), as fal's models do.
"""

import base64
import hashlib
import json
import time

from .protocol import TASK_FAILED, TASK_PROCESSING, TASK_SUCCEEDED, ApiError, UnknownTaskError
from .submission import Submission, load_data_uri
from .webhooks import check_callback_url

JWKS_PATH = "/.well-known/jwks.json"
USER_ID = "sandbox-user"


class _Model:
    def __init__(self, app, person_field, garment_field, takes_category):
        self.app = app
        self.person_field = person_field
        self.garment_field = garment_field
        self.takes_category = takes_category


MODELS = {
    "fal-ai/fashn/tryon/v1.6": _Model("fal-ai/fashn", "model_image", "garment_image", True),
    "fal-ai/kling/v1-5/kolors-virtual-try-on": _Model(
        "fal-ai/kling", "human_image_url", "garment_image_url", False
    ),
}
APPS = {model.app for model in MODELS.values()}
CATEGORIES = {"tops": "upper_body", "bottoms": "lower_body", "one-pieces": "full_body"}

# The sandbox's own fault codes (AILabAPI's, see protocol.ERRORS), as fal answers them.
API_ERRORS = {
    "ERROR_APPLICATIONS_NOT_EXISTS": (
        401,
        "Authentication is required to access this application.",
    ),
    "ERROR_NOT_ENOUGH_CREDITS": (
        403,
        "User is locked. Reason: Exhausted balance. Top up your balance to continue.",
    ),
    "EXCEEDING_LIMITS": (429, "Too many requests."),
    "ERROR_AI_NOT_EXISTS": (404, "Application not found."),
}
# A 5xx fault, as fal's infrastructure answers it.
SERVER_ERROR_TYPE = "runner_server_error"

# Model errors a request ends with: (type, message); the field is the person's photo.
TASK_FAILURE = ("internal_server_error", "The model failed to make a picture.")
NO_PERSON = ("face_detection_error", "Could not detect a person in the image.")


class FalWire:
    """fal's protocol for :class:`~django_tryon.sandbox.server.SandboxServer`
    (the interface is :class:`~django_tryon.sandbox.ailab.AILabWire`'s, with
    ``result`` and ``cancel`` requests, and signed webhooks)."""

    name = "fal"
    refuses_photos_at_submit = False
    task_failure = TASK_FAILURE
    no_person = NO_PERSON
    #: Submits are read per model: the server passes the path.
    reads_path = True

    def __init__(self, callback_allowed=None):
        try:
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        except ImportError as err:  # pragma: no cover - depends on the installed extras
            raise ImportError(
                "The sandbox signs fal's webhooks with the cryptography library: "
                "pip install 'django-tryon[fal]'."
            ) from err

        self.callback_allowed = callback_allowed or (lambda host: True)
        #: The key the sandbox's webhooks are signed with (made anew each run).
        self.private_key = Ed25519PrivateKey.generate()

    def kind(self, method, path):
        if method == "POST" and path.lstrip("/") in MODELS:
            return "submit"
        if method == "GET" and path == JWKS_PATH:
            return "jwks"
        app, request_id, action = _request_path(path)
        if not app or not request_id:
            return None
        if method == "GET" and action == "status":
            return "query"
        if method == "GET" and not action:
            return "result"
        if method == "PUT" and action == "cancel":
            return "cancel"
        return None

    def api_key(self, headers):
        scheme, _, key = headers.get("Authorization", "").partition(" ")
        return key.strip() if scheme.lower() == "key" else ""

    def task_id(self, path, query):
        return _request_path(path)[1]

    # Submits ------------------------------------------------------------------

    def read_submission(self, headers, query, body, *, decode, path=""):
        model_id = path.lstrip("/")
        model = MODELS[model_id]
        webhook_url = check_callback_url(
            query.get("fal_webhook", [""])[0], self.callback_allowed, "fal_webhook"
        )
        try:
            inputs = json.loads(body)
        except (ValueError, RecursionError) as err:
            raise ApiError("ERROR_PARAMETERS", "The body must be a JSON object.") from err
        if not isinstance(inputs, dict):
            raise ApiError("ERROR_PARAMETERS", "The body must be a JSON object.")
        for name in (model.person_field, model.garment_field):
            if not isinstance(inputs.get(name), str) or not inputs[name]:
                raise ApiError("MISSING_PARAMETERS", f"{name} is required.")
        clothes_type = "upper_body"
        if model.takes_category:
            category = inputs.get("category", "auto")
            if category not in (*CATEGORIES, "auto"):
                raise ApiError("ERROR_INVALID_PARAMETER", "category is not one of its values.")
            clothes_type = CATEGORIES.get(category, "upper_body")
        person, person_failure = load_data_uri(inputs[model.person_field], decode)
        garment, garment_failure = load_data_uri(inputs[model.garment_field], decode)
        failure = ("", "")
        if person_failure:
            failure = ("image_load_error", f"{model.person_field}: {person_failure}")
        elif garment_failure:
            failure = ("image_load_error", f"{model.garment_field}: {garment_failure}")
        return Submission(
            person_image=person,
            clothes_image=garment,
            clothes_type=clothes_type,
            failure=failure,
            webhook_url=webhook_url,
            model=model_id,
        )

    # Answers --------------------------------------------------------------------

    def submit_answer(self, request_id, task):
        base = f"https://queue.fal.run/{MODELS[task.model].app}/requests/{task.id}"
        return {
            "request_id": task.id,
            "gateway_request_id": task.id,
            "status": "IN_QUEUE",
            "queue_position": 0,
            "status_url": f"{base}/status",
            "response_url": base,
            "cancel_url": f"{base}/cancel",
        }

    def query_answer(self, request_id, task, status, url, now):
        """``(HTTP status, body)`` of a request's status."""
        if status in (TASK_SUCCEEDED, TASK_FAILED):
            return 200, {"status": "COMPLETED", "request_id": task.id}
        if status == TASK_PROCESSING:
            return 202, {"status": "IN_PROGRESS", "request_id": task.id}
        return 202, {"status": "IN_QUEUE", "queue_position": 0, "request_id": task.id}

    def result_answer(self, task, status, url):
        """``(HTTP status, body)`` of a request's result."""
        if status == TASK_SUCCEEDED:
            return 200, self.output(task, url)
        if status == TASK_FAILED:
            return 422, self.model_error(task)
        return 400, {"detail": "Request is still in progress."}

    def output(self, task, url):
        picture = {"url": url, "content_type": "image/jpeg", "file_name": f"{task.id}.jpg"}
        if MODELS[task.model].takes_category:
            return {"images": [picture]}
        return {"image": picture}

    def model_error(self, task):
        kind, message = task.failure if task.failure[0] else TASK_FAILURE
        model = MODELS[task.model]
        location = ["body"]
        if kind in (NO_PERSON[0], "image_load_error"):  # an input's fault: it is named
            named = message.split(":", 1)[0]
            location.append(named if named == model.garment_field else model.person_field)
        return {
            "detail": [
                {
                    "loc": location,
                    "msg": message,
                    "type": kind,
                    "url": f"https://docs.fal.ai/errors#{kind}",
                }
            ]
        }

    def webhook_body(self, task, status, url):
        """What fal POSTs to ``fal_webhook`` once the request ends."""
        body = {"request_id": task.id, "gateway_request_id": task.id}
        if status == TASK_SUCCEEDED:
            return {**body, "status": "OK", "payload": self.output(task, url)}
        return {
            **body,
            "status": "ERROR",
            "error": "Invalid status code: 422",
            "payload": self.model_error(task),
        }

    def webhook_headers(self, task, body):
        """The signature headers of a delivery of ``body``, made when it is sent."""
        timestamp = str(int(time.time()))
        digest = hashlib.sha256(body).hexdigest()
        message = "\n".join((task.id, USER_ID, timestamp, digest)).encode()
        return {
            "X-Fal-Webhook-Request-Id": task.id,
            "X-Fal-Webhook-User-Id": USER_ID,
            "X-Fal-Webhook-Timestamp": timestamp,
            "X-Fal-Webhook-Signature": self.private_key.sign(message).hex(),
        }

    def jwks(self):
        raw = self.private_key.public_key().public_bytes_raw()
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA", "use": "sig"}]}

    def credits_answer(self, request_id, credits):
        raise ApiError("ERROR_AI_NOT_EXISTS")  # fal's queue tells no balance

    def error(self, error, request_id):
        if error.status >= 500:
            body = {"detail": error.message, "error_type": SERVER_ERROR_TYPE}
            return error.status, body, SERVER_ERROR_TYPE
        if isinstance(error, UnknownTaskError):
            return 404, {"detail": "Request not found."}, "not_found"
        status, detail = API_ERRORS.get(error.code, (400, error.message))
        return status, {"detail": detail if status != 400 else error.message}, error.code


def _request_path(path):
    """``(app, request id, action)`` of ``/{owner}/{app}/requests/{id}[/{action}]``."""
    parts = path.strip("/").split("/")
    if len(parts) not in (4, 5) or parts[2] != "requests":
        return "", "", ""
    app = "/".join(parts[:2])
    if app not in APPS or not parts[3]:
        return "", "", ""
    return app, parts[3], parts[4] if len(parts) == 5 else ""
