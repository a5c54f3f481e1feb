"""The providers' documented requests and answers, shared by the backend tests, the
loopback fakes and the sandbox tests.

The backend tests feed these answers through ``responses``; the sandbox tests
check the sandbox answers with the same shapes. One source, so the two cannot
drift apart.
"""

import base64
import hashlib
import io
import json
import time
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs, urlsplit

from PIL import Image

SUBMIT_PATH = "/api/portrait/editing/try-on-clothes"
QUERY_PATH = "/api/common/query-async-task-result"
CREDITS_PATH = "/api/common/query-credits"
API_KEY_HEADER = "ailabapi-api-key"

SUBMIT_FIELDS = {"task_type", "clothes_type"}
SUBMIT_FILES = {"person_image", "clothes_image"}

#: Keys every answer carries (the "public response fields").
PUBLIC_KEYS = {"request_id", "log_id", "error_code", "error_detail"}
ERROR_DETAIL_KEYS = {"status_code", "code", "code_message", "message"}


def public_fields(status_code=200, code="", message="", request_id="req-1"):
    return {
        "request_id": request_id,
        "log_id": f"log-{request_id}",
        "error_code": 0 if status_code == 200 else status_code,
        "error_code_str": code,
        "error_msg": message,
        "error_detail": {
            "status_code": status_code,
            "code": code,
            "code_message": message,
            "message": message,
        },
    }


def submit_answer(task_id="task-1", request_id="req-1"):
    return {**public_fields(request_id=request_id), "task_type": "async", "task_id": task_id}


def query_answer(task_status, image_url="", request_id="req-2"):
    answer = {**public_fields(request_id=request_id), "task_status": task_status}
    if task_status == 2:
        answer["data"] = {"image": image_url}
    return answer


def error_answer(status_code, code, message="", request_id="req-err"):
    return public_fields(status_code, code, message or code.replace("_", " ").lower(), request_id)


# Every row of the provider's error table: (HTTP status, code, the error class
# the backend raises, the stable job error code it leads to).
ERROR_TABLE = [
    (400, "ERROR_PARAMETERS", "RequestRejectedError", "request_rejected"),
    (400, "MISSING_PARAMETERS", "RequestRejectedError", "request_rejected"),
    (400, "ERROR_INVALID_PARAMETER", "RequestRejectedError", "request_rejected"),
    (400, "PARAMETERS_CANNOT_EMPTY", "RequestRejectedError", "request_rejected"),
    (400, "PROCESSING_FAILURE", "RequestRejectedError", "request_rejected"),
    (401, "ERROR_USER_NOT_EXISTS", "ConfigurationError", "configuration"),
    (401, "ERROR_APPLICATIONS_NOT_EXISTS", "ConfigurationError", "configuration"),
    (403, "ERROR_USER_LOCKED", "ConfigurationError", "configuration"),
    (404, "ERROR_AI_NOT_EXISTS", "RequestRejectedError", "request_rejected"),
    (413, "FILE_SIZE_EXCEEDS_LIMIT", "InvalidPhotoError", "photo_too_large"),
    (413, "FILE_RESOLUTION_EXCEEDS_LIMITS", "InvalidPhotoError", "photo_too_large"),
    (415, "UNSUPPORTED_FILE_TYPES", "InvalidPhotoError", "photo_unsupported"),
    (422, "FILE_DECODING_FAILURE", "InvalidPhotoError", "photo_unreadable"),
    (422, "ERROR_NO_FACE_IN_FILE", "InvalidPhotoError", "no_face"),
    (422, "ERROR_FACE_SIZE_RATIO_NOT_MET", "InvalidPhotoError", "face_too_small"),
    (422, "ERROR_BLURRY_FACE", "InvalidPhotoError", "blurry_face"),
    (422, "ERROR_CONTENT_NON_COMPLIANCE", "InvalidPhotoError", "content_rejected"),
    (429, "EXCEEDING_LIMITS", "RateLimitedError", "provider_unavailable"),
    (429, "ERROR_NOT_ENOUGH_CREDITS", "OutOfCreditsError", "out_of_credits"),
    (500, "PROCESSING_FAILURE", "ProviderUnavailableError", "provider_unavailable"),
    (502, "AI_SERVICE_ERROR", "ProviderUnavailableError", "provider_unavailable"),
    (503, "ERROR_INSUFFICIENT_RESOURCES", "ProviderUnavailableError", "provider_unavailable"),
    (504, "AI_SERVICE_TIMEOUT", "ProviderUnavailableError", "provider_unavailable"),
]


# FASHN (API v1) ------------------------------------------------------------------
#
# From FASHN's pages: api-overview (API fundamentals), error-handling, webhooks,
# api-reference/tryon-v1-6 and the credits endpoint.

FASHN_RUN_PATH = "/v1/run"
FASHN_STATUS_PATH = "/v1/status/"
FASHN_CREDITS_PATH = "/v1/credits"
FASHN_IN_FLIGHT = ("starting", "in_queue", "processing")


def fashn_run_answer(prediction_id="123a87r9-4129-4bb3-be18-9c9fb5bd7fc1-u1"):
    return {"id": prediction_id, "error": None}


def fashn_status_answer(prediction_id, status, output=None, error=None):
    answer = {"id": prediction_id, "status": status, "error": error}
    if status == "completed":
        answer["output"] = output if output is not None else []
    return answer


def fashn_failed_answer(prediction_id, name, message=""):
    return fashn_status_answer(
        prediction_id, "failed", error={"name": name, "message": message or f"{name}."}
    )


def fashn_error_answer(name, message=""):
    """An error before a prediction exists: an HTTP status and this body."""
    return {"error": name, "message": message or f"{name}."}


def fashn_credits_answer(total=234, subscription=100, on_demand=134):
    return {"credits": {"total": total, "subscription": subscription, "on_demand": on_demand}}


# Every error FASHN documents before a prediction exists: (HTTP status, error,
# the error class the backend raises, the stable job error code it leads to).
FASHN_API_ERRORS = [
    (400, "BadRequest", "RequestRejectedError", "request_rejected"),
    (401, "UnauthorizedAccess", "ConfigurationError", "configuration"),
    (404, "NotFound", "RequestRejectedError", "request_rejected"),
    (429, "RateLimitExceeded", "RateLimitedError", "provider_unavailable"),
    (429, "ConcurrencyLimitExceeded", "RateLimitedError", "provider_unavailable"),
    (429, "OutOfCredits", "OutOfCreditsError", "out_of_credits"),
    (500, "InternalServerError", "ProviderUnavailableError", "provider_unavailable"),
]

# Every runtime error (a prediction that ran and failed): (error.name, message,
# the error class of the failed state, its job error code, the shopper's fault?).
FASHN_RUNTIME_ERRORS = [
    (
        "ImageLoadError",
        "Error loading model image: Invalid URL format",
        "InvalidPhotoError",
        "photo_unreadable",
        True,
    ),
    (
        "ImageLoadError",
        "Error loading garment image: The URL's Content-Type is not an image.",
        "TaskFailedError",
        "task_failed",
        False,
    ),
    (
        "ContentModerationError",
        "Prohibited content detected in the model image.",
        "InvalidPhotoError",
        "content_rejected",
        True,
    ),
    ("NSFWError", "NSFW content detected.", "InvalidPhotoError", "content_rejected", True),
    (
        "PoseError",
        "Unable to detect body pose in the model image.",
        "InvalidPhotoError",
        "pose_not_detected",
        True,
    ),
    (
        "PoseError",
        "Unable to detect body pose in the garment image.",
        "TaskFailedError",
        "task_failed",
        False,
    ),
    (
        "InputValidationError",
        "inputs.category must be one of auto, tops, bottoms, one-pieces.",
        "RequestRejectedError",
        "request_rejected",
        False,
    ),
    (
        "PhotoTypeError",
        "Could not tell the garment photo type.",
        "TaskFailedError",
        "task_failed",
        False,
    ),
    ("PipelineError", "An unexpected error occurred.", "TaskFailedError", "task_failed", False),
    ("ThirdPartyError", "A third-party service failed.", "TaskFailedError", "task_failed", False),
    ("SomeFutureError", "A name not documented yet.", "TaskFailedError", "task_failed", False),
]


# One contract, every protocol ------------------------------------------------------
#
# The shared contract suite (tests/test_backend_contract.py) and the loopback
# fakes (tests/fake_provider.py) speak each protocol through one of these: the
# same situations, each in the provider's own documented words.


def documented_request(clothes_type="lower_body"):
    """A try-on request as the backend tests send it: a JPEG photo, a PNG garment."""
    from django_tryon.backends import base

    return base.TryOnRequest(
        person_image=base.ImageInput(b"\xff\xd8person", "person.jpg", "image/jpeg"),
        garment_image=base.ImageInput(b"\x89PNGgarment", "garment.png", "image/png"),
        clothes_type=clothes_type,
    )


def decoded_data_uri(uri):
    prefix, _, data = uri.partition(",")
    assert prefix.startswith("data:image/") and prefix.endswith(";base64")
    return base64.b64decode(data, validate=True)


def fashn_images_sent(inputs, categories):
    """``(person, garment, clothes type)`` of FASHN's inputs (on FASHN's API or on fal)."""
    return (
        decoded_data_uri(inputs["model_image"]),
        decoded_data_uri(inputs["garment_image"]),
        categories[inputs["category"]],
    )


class AILabContract:
    name = "ailabapi"
    backend = "django_tryon.backends.ailab.AILabBackend"
    #: A photo without a person is refused at the submit (not found at run time).
    refuses_photos_at_submit = True
    #: The provider calls the shop back when a task ends (webhooks).
    pushes = False
    #: Tasks are asked about (query) until done; otherwise the submit answers the picture.
    polls = True
    #: The provider reports the account's balance.
    reports_credits = True
    #: The backend sends TRYON['API_KEY'] (otherwise credentials of the provider's own).
    uses_api_key = True

    def route(self, method, path, query):
        """``(kind, task_id)`` of a request: ``submit``, ``query``, ``credits`` or ``None``."""
        if method == "POST" and path == SUBMIT_PATH:
            return "submit", ""
        if method == "GET" and path == QUERY_PATH:
            return "query", query.get("task_id", [""])[0]
        if method == "GET" and path == CREDITS_PATH:
            return "credits", ""
        return None, ""

    def api_key(self, headers):
        return headers.get(API_KEY_HEADER, "")

    def backend_options(self, url):
        return {}

    def images_sent(self, headers, body):
        """``(person, garment, clothes type)`` a submit carried, as the provider reads them."""
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode() + body
        )
        parts = {
            part.get_param("name", header="content-disposition"): part
            for part in message.iter_parts()
        }
        return (
            parts["person_image"].get_payload(decode=True),
            parts["clothes_image"].get_payload(decode=True),
            parts["clothes_type"].get_payload(decode=True).decode(),
        )

    def submitted(self, task_id):
        return 200, submit_answer(task_id=task_id)

    def in_flight(self, task_id):
        return 200, query_answer(1)

    def done(self, task_id, url):
        return 200, query_answer(2, url)

    def task_failed(self, task_id):
        return 200, {**public_fields(), "task_status": 3}

    def photo_refused(self, task_id):
        return 422, error_answer(422, "ERROR_NO_FACE_IN_FILE")

    def credits(self, remaining):
        return 200, {**public_fields(), "data": {"remaining_credits": remaining}}

    def not_found(self):
        return 404, error_answer(404, "ERROR_AI_NOT_EXISTS")

    #: The same situations before a task exists, in this provider's words.
    API_ERRORS = {
        "bad_request": (400, "ERROR_PARAMETERS"),
        "bad_key": (401, "ERROR_APPLICATIONS_NOT_EXISTS"),
        "rate_limited": (429, "EXCEEDING_LIMITS"),
        "out_of_credits": (429, "ERROR_NOT_ENOUGH_CREDITS"),
        "unavailable": (500, "PROCESSING_FAILURE"),
    }

    def api_error(self, kind):
        status, code = self.API_ERRORS[kind]
        return status, error_answer(status, code)


class FashnContract:
    name = "fashn"
    backend = "django_tryon.backends.fashn.FashnBackend"
    refuses_photos_at_submit = False
    pushes = True
    #: Deliveries are not signed: the URL's secret is all that authenticates them.
    signs_deliveries = False
    polls = True
    reports_credits = True
    uses_api_key = True

    def callback_url_sent(self, submit_url):
        """The webhook URL a submit (its path and query string) asked for, or ``""``."""
        query = parse_qs(urlsplit(submit_url).query)
        return query.get("webhook_url", [""])[0]

    def delivery(self, task_id, situation):
        """A webhook's ``(headers, body)`` reporting ``situation`` (what a query of
        ``task_id`` answers: :meth:`done`, :meth:`task_failed`...): FASHN POSTs the
        status answer itself as JSON, unsigned."""
        _, answer = situation
        return {"Content-Type": "application/json"}, json.dumps(answer).encode()

    def route(self, method, path, query):
        if method == "POST" and path == FASHN_RUN_PATH:
            return "submit", ""
        if method == "GET" and path.startswith(FASHN_STATUS_PATH):
            return "query", path[len(FASHN_STATUS_PATH) :]
        if method == "GET" and path == FASHN_CREDITS_PATH:
            return "credits", ""
        return None, ""

    def api_key(self, headers):
        scheme, _, key = headers.get("Authorization", "").partition(" ")
        return key if scheme == "Bearer" else ""

    CATEGORIES = {"tops": "upper_body", "bottoms": "lower_body", "one-pieces": "full_body"}

    def images_sent(self, headers, body):
        assert headers["Content-Type"] == "application/json"
        return fashn_images_sent(json.loads(body)["inputs"], self.CATEGORIES)

    def submitted(self, task_id):
        return 200, fashn_run_answer(task_id)

    def in_flight(self, task_id):
        return 200, fashn_status_answer(task_id, "processing")

    def done(self, task_id, url):
        return 200, fashn_status_answer(task_id, "completed", output=[url])

    def task_failed(self, task_id):
        return 200, fashn_failed_answer(task_id, "PipelineError")

    def photo_refused(self, task_id):
        return 200, fashn_failed_answer(
            task_id, "PoseError", "Unable to detect body pose in the model image."
        )

    def credits(self, remaining):
        return 200, fashn_credits_answer(total=remaining, subscription=0, on_demand=remaining)

    def backend_options(self, url):
        return {}

    def not_found(self):
        return 404, fashn_error_answer("NotFound")

    API_ERRORS = {
        "bad_request": (400, "BadRequest"),
        "bad_key": (401, "UnauthorizedAccess"),
        "rate_limited": (429, "RateLimitExceeded"),
        "out_of_credits": (429, "OutOfCredits"),
        "unavailable": (500, "InternalServerError"),
    }

    def api_error(self, kind):
        status, name = self.API_ERRORS[kind]
        return status, fashn_error_answer(name)


AILAB = AILabContract()
FASHN = FashnContract()
#: Every protocol the shared contract suite runs over.
PROTOCOLS = [AILAB, FASHN]


# fal.ai's queue ----------------------------------------------------------------------
#
# From fal's pages: the queue (submit, status, result, cancel), model and request
# errors, webhooks, and each model's input and output schema.

FAL_FASHN_MODEL = "fal-ai/fashn/tryon/v1.6"
FAL_KOLORS_MODEL = "fal-ai/kling/v1-5/kolors-virtual-try-on"
FAL_FASHN_APP = "/fal-ai/fashn"  # status, result and cancel: owner and app only
FAL_REQUEST_ID = "764cabcf-b745-4b3e-ae38-1200304cf45b"


def fal_submit_answer(request_id=FAL_REQUEST_ID, app=FAL_FASHN_APP):
    base = f"https://queue.fal.run{app}/requests/{request_id}"
    return {
        "request_id": request_id,
        "gateway_request_id": request_id,
        "status": "IN_QUEUE",
        "queue_position": 0,
        "status_url": f"{base}/status",
        "response_url": base,
        "cancel_url": f"{base}/cancel",
    }


def fal_status_answer(status, request_id=FAL_REQUEST_ID, app=FAL_FASHN_APP, position=0):
    """``(HTTP status, body)``: 202 while queued or running, 200 once completed."""
    answer = {"status": status, "response_url": f"https://queue.fal.run{app}/requests/{request_id}"}
    if status == "IN_QUEUE":
        answer["queue_position"] = position
    return (200 if status == "COMPLETED" else 202), answer


def fal_fashn_output(url):
    return {"images": [{"url": url, "content_type": "image/png", "width": 864, "height": 1296}]}


def fal_kolors_output(url):
    return {"image": {"url": url, "content_type": "image/png", "file_name": "result.png"}}


def fal_model_error(kind, field="", message=""):
    """A model's error: a list of typed errors (``loc`` names the input)."""
    location = ["body", field] if field else ["body"]
    return {
        "detail": [
            {
                "loc": location,
                "msg": message or f"{kind.replace('_', ' ')}.",
                "type": kind,
                "url": f"https://docs.fal.ai/errors#{kind}",
            }
        ]
    }


def fal_request_error(error_type, detail=""):
    """An infrastructure error: a string and its machine-readable type."""
    return {"detail": detail or error_type.replace("_", " "), "error_type": error_type}


def fal_webhook_body(status, payload, request_id=FAL_REQUEST_ID, error=None):
    body = {
        "request_id": request_id,
        "gateway_request_id": request_id,
        "status": status,
        "payload": payload,
    }
    if error is not None:
        body["error"] = error
    return body


# Errors before a request exists: (HTTP status, body, class, job code).
FAL_API_ERRORS = [
    (400, {"detail": "Invalid request."}, "RequestRejectedError", "request_rejected"),
    (
        401,
        {"detail": "Authentication is required to access this application."},
        "ConfigurationError",
        "configuration",
    ),
    (
        403,
        {"detail": "Forbidden: the key may not run this app."},
        "ConfigurationError",
        "configuration",
    ),
    (
        403,
        {
            "detail": "User is locked. Reason: Exhausted balance. Top up your balance at "
            "fal.ai/dashboard/billing."
        },
        "OutOfCreditsError",
        "out_of_credits",
    ),
    (404, {"detail": "Application not found."}, "RequestRejectedError", "request_rejected"),
    (429, {"detail": "Too many requests."}, "RateLimitedError", "provider_unavailable"),
    (
        503,
        fal_request_error("runner_scheduling_failure"),
        "ProviderUnavailableError",
        "provider_unavailable",
    ),
]

# A model's errors once the request ran: (type, field named, class, job code).
FAL_RUN_ERRORS = [
    ("face_detection_error", "model_image", "InvalidPhotoError", "no_face"),
    ("image_load_error", "model_image", "InvalidPhotoError", "photo_unreadable"),
    ("file_download_error", "model_image", "InvalidPhotoError", "photo_unreadable"),
    ("image_too_large", "model_image", "InvalidPhotoError", "photo_too_large"),
    ("file_too_large", "model_image", "InvalidPhotoError", "photo_too_large"),
    ("image_too_small", "model_image", "InvalidPhotoError", "invalid_photo"),
    ("content_policy_violation", "model_image", "InvalidPhotoError", "content_rejected"),
    ("content_policy_violation", "garment_image", "TaskFailedError", "task_failed"),
    ("content_policy_violation", "", "ResultFilteredError", "result_filtered"),
    ("image_load_error", "garment_image", "TaskFailedError", "task_failed"),
    ("internal_server_error", "", "TaskFailedError", "task_failed"),
    ("generation_timeout", "", "TaskFailedError", "task_failed"),
    ("downstream_service_error", "", "TaskFailedError", "task_failed"),
    ("no_media_generated", "", "TaskFailedError", "task_failed"),
    ("less_than_equal", "seed", "RequestRejectedError", "request_rejected"),
    ("some_future_error", "", "RequestRejectedError", "request_rejected"),
]


# Google Vertex AI's virtual try-on ---------------------------------------------------
#
# From Google's Virtual Try-On API reference (the predict request and its
# answer, VirtualTryOnModelParams) and Google's error envelope.

VERTEX_PROJECT = "shop-project-1"
VERTEX_LOCATION = "us-central1"
VERTEX_MODEL = "virtual-try-on-001"
VERTEX_PREDICT_PATH = (
    f"/v1/projects/{VERTEX_PROJECT}/locations/{VERTEX_LOCATION}"
    f"/publishers/google/models/{VERTEX_MODEL}:predict"
)
VERTEX_TOKEN_PATH = "/token"
VERTEX_ACCESS_TOKEN = "ya29.contract-access-token"
# Google's token service refusing a service account's credentials (HTTP 400).
GOOGLE_TOKEN_REFUSED = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}


def tiny_png(color=(10, 200, 90)):
    buffer = io.BytesIO()
    Image.new("RGB", (48, 96), color).save(buffer, format="PNG")
    return buffer.getvalue()


def vertex_prediction(content, mime_type="image/png"):
    return {
        "predictions": [
            {"mimeType": mime_type, "bytesBase64Encoded": base64.b64encode(content).decode()}
        ]
    }


def vertex_filtered(reason="Filtered by the safety filter: the image may be unsafe."):
    return {"predictions": [{"raiFilteredReason": reason}]}


def google_error(code, status, message="", reason=""):
    error = {"code": code, "message": message or status.replace("_", " ").lower(), "status": status}
    if reason:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
            }
        ]
    return {"error": error}


# Google's errors: (HTTP status, body, class, job code).
VERTEX_API_ERRORS = [
    (400, google_error(400, "INVALID_ARGUMENT"), "RequestRejectedError", "request_rejected"),
    (401, google_error(401, "UNAUTHENTICATED"), "ConfigurationError", "configuration"),
    (
        403,
        google_error(403, "PERMISSION_DENIED", reason="SERVICE_DISABLED"),
        "ConfigurationError",
        "configuration",
    ),
    (
        403,
        google_error(403, "PERMISSION_DENIED", reason="BILLING_DISABLED"),
        "OutOfCreditsError",
        "out_of_credits",
    ),
    (404, google_error(404, "NOT_FOUND"), "ConfigurationError", "configuration"),
    (429, google_error(429, "RESOURCE_EXHAUSTED"), "RateLimitedError", "provider_unavailable"),
    (500, google_error(500, "INTERNAL"), "ProviderUnavailableError", "provider_unavailable"),
    (503, google_error(503, "UNAVAILABLE"), "ProviderUnavailableError", "provider_unavailable"),
    (
        504,
        google_error(504, "DEADLINE_EXCEEDED"),
        "ProviderUnavailableError",
        "provider_unavailable",
    ),
]


@dataclass(frozen=True)
class ThenResult:
    """A status answer that says the request is done, and what the result GET answers next."""

    status: tuple
    result: tuple


class FalContract:
    name = "fal"
    backend = "django_tryon.backends.fal.FalBackend"
    refuses_photos_at_submit = False
    pushes = True
    polls = True
    reports_credits = False
    uses_api_key = True

    def route(self, method, path, query):
        if method == "POST" and path == "/" + FAL_FASHN_MODEL:
            return "submit", ""
        if method == "GET" and path == FAL_JWKS_PATH:
            return "jwks", ""
        prefix = FAL_FASHN_APP + "/requests/"
        if path.startswith(prefix):
            rest = path[len(prefix) :]
            if method == "GET" and rest.endswith("/status"):
                return "query", rest[: -len("/status")]
            if method == "PUT" and rest.endswith("/cancel"):
                return "cancel", rest[: -len("/cancel")]
            if method == "GET" and "/" not in rest:
                return "result", rest
        return None, ""

    def api_key(self, headers):
        scheme, _, key = headers.get("Authorization", "").partition(" ")
        return key if scheme == "Key" else ""

    #: Deliveries are signed; the fake publishes the key at FAL_JWKS_PATH.
    signs_deliveries = True

    @property
    def signer(self):
        if not hasattr(self, "_signer"):
            self._signer = FalSigner()
        return self._signer

    def backend_options(self, url):
        return {"jwks_url": url + FAL_JWKS_PATH}

    def callback_url_sent(self, submit_url):
        query = parse_qs(urlsplit(submit_url).query)
        return query.get("fal_webhook", [""])[0]

    def delivery(self, task_id, situation):
        """The signed webhook reporting ``situation`` (a :class:`ThenResult`): the
        result's answer as its payload, ``OK`` or (an error answer) ``ERROR``."""
        status, answer = situation.result
        if status < 400:
            delivered = fal_webhook_body("OK", answer, task_id)
        else:
            delivered = fal_webhook_body(
                "ERROR", answer, task_id, error=f"Invalid status code: {status}"
            )
        body = json.dumps(delivered).encode()
        return self.signed(task_id, body), body

    def signed(self, task_id, body):
        """The headers of a delivery of ``body`` for ``task_id``, signed with the fake's key."""
        return {"Content-Type": "application/json", **self.signer.headers(body, request_id=task_id)}

    CATEGORIES = FashnContract.CATEGORIES

    def images_sent(self, headers, body):
        assert headers["Content-Type"] == "application/json"
        return fashn_images_sent(json.loads(body), self.CATEGORIES)

    def submitted(self, task_id):
        return 200, fal_submit_answer(task_id)

    def in_flight(self, task_id):
        return fal_status_answer("IN_PROGRESS", task_id)

    def done(self, task_id, url):
        return ThenResult(fal_status_answer("COMPLETED", task_id), (200, fal_fashn_output(url)))

    def task_failed(self, task_id):
        return ThenResult(
            fal_status_answer("COMPLETED", task_id),
            (500, fal_request_error("runner_disconnected")),
        )

    def photo_refused(self, task_id):
        return ThenResult(
            fal_status_answer("COMPLETED", task_id),
            (422, fal_model_error("face_detection_error", "model_image")),
        )

    def not_found(self):
        return 404, {"detail": "Not found."}

    API_ERRORS = {
        "bad_request": (400, {"detail": "Invalid request."}),
        "bad_key": (401, {"detail": "Authentication is required to access this application."}),
        "rate_limited": (429, {"detail": "Too many requests."}),
        "out_of_credits": (
            403,
            {"detail": "User is locked. Reason: Exhausted balance. Top up your balance."},
        ),
        "unavailable": (503, fal_request_error("runner_scheduling_failure")),
    }

    def api_error(self, kind):
        return self.API_ERRORS[kind]


class VertexContract:
    name = "vertex"
    backend = "django_tryon.backends.vertex.VertexBackend"
    refuses_photos_at_submit = True
    pushes = False
    polls = False
    reports_credits = False
    uses_api_key = False
    picture = tiny_png()

    def route(self, method, path, query):
        if method == "POST" and path == VERTEX_PREDICT_PATH:
            return "submit", ""
        if method == "POST" and path == VERTEX_TOKEN_PATH:
            return "token", ""
        return None, ""

    def api_key(self, headers):
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        return token if scheme == "Bearer" else ""

    def backend_options(self, url):
        return {}

    def images_sent(self, headers, body):
        assert headers["Content-Type"] == "application/json"
        instance = json.loads(body)["instances"][0]
        return (
            base64.b64decode(instance["personImage"]["image"]["bytesBase64Encoded"]),
            base64.b64decode(instance["productImages"][0]["image"]["bytesBase64Encoded"]),
            None,  # Google reads the garment from its picture
        )

    def submitted(self, task_id):
        return 200, (vertex_prediction(self.picture) if task_id else {"predictions": []})

    def filtered(self):
        return 200, vertex_filtered()

    def not_found(self):
        return 404, google_error(404, "NOT_FOUND")

    API_ERRORS = {
        "bad_request": (400, google_error(400, "INVALID_ARGUMENT")),
        "bad_key": (401, google_error(401, "UNAUTHENTICATED")),
        "rate_limited": (429, google_error(429, "RESOURCE_EXHAUSTED")),
        "out_of_credits": (403, google_error(403, "PERMISSION_DENIED", reason="BILLING_DISABLED")),
        "unavailable": (503, google_error(503, "UNAVAILABLE")),
    }

    def api_error(self, kind):
        return self.API_ERRORS[kind]


FAL = FalContract()
VERTEX = VertexContract()
PROTOCOLS.extend([FAL, VERTEX])
#: Those whose provider calls the shop back (their callbacks are in the contract too).
PUSH_PROTOCOLS = [protocol for protocol in PROTOCOLS if protocol.pushes]


# fal's webhook signing, as fal documents it: the fake's own key pair, published
# as a JWKS, signs each delivery.


class FalSigner:
    """An Ed25519 key pair that signs deliveries as fal does, and its JWKS."""

    def __init__(self):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.private_key = Ed25519PrivateKey.generate()

    def jwks(self):
        raw = self.private_key.public_key().public_bytes_raw()
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA", "use": "sig"}]}

    def headers(self, body, *, request_id=FAL_REQUEST_ID, user_id="user-1", timestamp=None):
        timestamp = str(int(time.time()) if timestamp is None else timestamp)
        digest = hashlib.sha256(body).hexdigest()
        message = "\n".join((request_id, user_id, timestamp, digest)).encode()
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": user_id,
            "X-Fal-Webhook-Timestamp": timestamp,
            "X-Fal-Webhook-Signature": self.private_key.sign(message).hex(),
        }


FAL_JWKS_PATH = "/.well-known/jwks.json"
