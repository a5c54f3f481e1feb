"""AILabAPI's wire format, as the sandbox speaks it: paths, answers and errors.

Every answer carries the provider's public fields (``request_id``, ``log_id``,
``error_code``, ``error_code_str``, ``error_msg`` and ``error_detail``), on
success and on error alike, as the real service does.
"""

import secrets

SUBMIT_PATH = "/api/portrait/editing/try-on-clothes"
QUERY_PATH = "/api/common/query-async-task-result"
CREDITS_PATH = "/api/common/query-credits"
API_KEY_HEADER = "ailabapi-api-key"

CLOTHES_TYPES = ("upper_body", "lower_body", "full_body")

#: The protocols the sandbox speaks: AILabAPI's (this module's), FASHN's and fal's.
PROTOCOLS = ("ailab", "fashn", "fal")

TASK_QUEUED = 0
TASK_PROCESSING = 1
TASK_SUCCEEDED = 2
TASK_FAILED = 3

# The HTTP status and message of every provider error code the sandbox sends.
ERRORS = {
    "ERROR_PARAMETERS": (400, "Parameter error."),
    "MISSING_PARAMETERS": (400, "Missing parameters."),
    "ERROR_INVALID_PARAMETER": (400, "Invalid parameter."),
    "PARAMETERS_CANNOT_EMPTY": (400, "Parameters cannot be empty."),
    "ERROR_APPLICATIONS_NOT_EXISTS": (401, "The API key is missing or does not exist."),
    "ERROR_AI_NOT_EXISTS": (404, "No such API."),
    "FILE_SIZE_EXCEEDS_LIMIT": (413, "The file is larger than 3 MB."),
    "FILE_RESOLUTION_EXCEEDS_LIMITS": (413, "The image is 4096 pixels or more on a side."),
    "UNSUPPORTED_FILE_TYPES": (415, "Unsupported file type: use JPG, JPEG or PNG."),
    "FILE_DECODING_FAILURE": (422, "The file could not be decoded as an image."),
    "ERROR_NO_FACE_IN_FILE": (422, "No face found in the image."),
    "EXCEEDING_LIMITS": (429, "Request rate limit exceeded."),
    "ERROR_NOT_ENOUGH_CREDITS": (429, "Not enough credits."),
    "PROCESSING_FAILURE": (500, "Processing failure."),
    "AI_SERVICE_ERROR": (502, "AI service error."),
    "ERROR_INSUFFICIENT_RESOURCES": (503, "Insufficient resources."),
    "AI_SERVICE_TIMEOUT": (504, "AI service timeout."),
}

# The 5xx answers a fault may pick, by HTTP status.
SERVER_ERRORS = {
    500: "PROCESSING_FAILURE",
    502: "AI_SERVICE_ERROR",
    503: "ERROR_INSUFFICIENT_RESOURCES",
    504: "AI_SERVICE_TIMEOUT",
}


class ApiError(Exception):
    """An answer with a provider error code; raised anywhere, sent by the server."""

    def __init__(self, code, message=None):
        status, default_message = ERRORS[code]
        super().__init__(message or default_message)
        self.code = code
        self.status = status
        self.message = message or default_message


class UnknownTaskError(ApiError):
    """A query of a task that never existed, has expired, or is another key's."""

    def __init__(self):
        super().__init__(
            "ERROR_INVALID_PARAMETER",
            "No task with this task_id: it never existed or its 24 hours are over.",
        )


def new_request_id():
    return secrets.token_hex(16)


def public_fields(request_id, status=200, code="", message=""):
    return {
        "request_id": request_id,
        "log_id": f"log-{request_id[:20]}",
        "error_code": 0 if status == 200 else status,
        "error_code_str": code,
        "error_msg": message,
        "error_detail": {
            "status_code": status,
            "code": code,
            "code_message": message,
            "message": message,
        },
    }


def error_answer(request_id, error):
    return public_fields(request_id, error.status, error.code, error.message)


def submit_answer(request_id, task_id):
    return {**public_fields(request_id), "task_type": "async", "task_id": task_id}


def query_answer(request_id, task_status, image_url=""):
    answer = {**public_fields(request_id), "task_status": task_status}
    if task_status == TASK_SUCCEEDED:
        answer["data"] = {"image": image_url}
    return answer


def credits_answer(request_id, remaining):
    return {**public_fields(request_id), "data": {"remaining_credits": remaining}}
