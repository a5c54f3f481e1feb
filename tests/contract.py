"""The providers' documented requests and answers, shared by the backend tests, the
loopback fakes and the sandbox tests.

The backend tests feed these answers through ``responses``; the sandbox tests
check the sandbox answers with the same shapes. One source, so the two cannot
drift apart.
"""

import base64
import json
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs, urlsplit

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


class AILabContract:
    name = "ailabapi"
    backend = "django_tryon.backends.ailab.AILabBackend"
    #: A photo without a person is refused at the submit (not found at run time).
    refuses_photos_at_submit = True
    #: The provider calls the shop back when a task ends (webhooks).
    pushes = False

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

    def callback_url_sent(self, submit_url):
        """The webhook URL a submit (its path and query string) asked for, or ``""``."""
        query = parse_qs(urlsplit(submit_url).query)
        return query.get("webhook_url", [""])[0]

    def delivery(self, answer):
        """A webhook's ``(headers, body)`` reporting ``answer`` (a status answer):
        FASHN POSTs the status answer itself as JSON, unsigned."""
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
        inputs = json.loads(body)["inputs"]

        def decoded(uri):
            prefix, _, data = uri.partition(",")
            assert prefix.startswith("data:image/") and prefix.endswith(";base64")
            return base64.b64decode(data, validate=True)

        return (
            decoded(inputs["model_image"]),
            decoded(inputs["garment_image"]),
            self.CATEGORIES[inputs["category"]],
        )

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
#: Those whose provider calls the shop back (their callbacks are in the contract too).
PUSH_PROTOCOLS = [protocol for protocol in PROTOCOLS if protocol.pushes]
