"""AILabAPI's "Try on Clothes": async submit, then poll the task.

The protocol (paths, header, fields, answers, error table) is summarised in
``docs/providers.md``. Success is HTTP 200 *and* ``error_code`` 0 where the
answer carries one: both are checked.
"""

from .base import (
    FAILED,
    PROCESSING,
    QUEUED,
    SUCCEEDED,
    ConfigurationError,
    Credits,
    InvalidPhotoError,
    InvalidResponseError,
    OutOfCreditsError,
    Submission,
    TaskFailedError,
    TaskState,
)
from .base_http import HTTPBackend

SUBMIT_PATH = "/api/portrait/editing/try-on-clothes"
QUERY_PATH = "/api/common/query-async-task-result"
CREDITS_PATH = "/api/common/query-credits"
API_KEY_HEADER = "ailabapi-api-key"

TASK_STATUSES = {0: QUEUED, 1: PROCESSING, 2: SUCCEEDED}
TASK_FAILED = 3

# Provider codes that name the shopper's photo as the cause, with the stable
# job error code each becomes.
PHOTO_CODES = {
    "ERROR_NO_FACE_IN_FILE": "no_face",
    "ERROR_FACE_SIZE_RATIO_NOT_MET": "face_too_small",
    "ERROR_BLURRY_FACE": "blurry_face",
    "ERROR_CONTENT_NON_COMPLIANCE": "content_rejected",
    "FILE_DECODING_FAILURE": "photo_unreadable",
    "FILE_SIZE_EXCEEDS_LIMIT": "photo_too_large",
    "FILE_RESOLUTION_EXCEEDS_LIMITS": "photo_too_large",
    "UNSUPPORTED_FILE_TYPES": "photo_unsupported",
}
CONFIGURATION_CODES = {
    "ERROR_USER_NOT_EXISTS",
    "ERROR_APPLICATIONS_NOT_EXISTS",
    "ERROR_USER_LOCKED",
}
CREDITS_CODE = "ERROR_NOT_ENOUGH_CREDITS"
RATE_CODE = "EXCEEDING_LIMITS"


class AILabBackend(HTTPBackend):
    provider_name = "ailabapi"
    requires_api_key = True
    default_base_url = "https://www.ailabapi.com"

    def auth_headers(self):
        return {API_KEY_HEADER: self.api_key}

    # Calls ----------------------------------------------------------------

    def submit(self, request, callback_url=""):
        files = {
            "person_image": (
                request.person_image.filename,
                request.person_image.content,
                request.person_image.content_type,
            ),
            "clothes_image": (
                request.garment_image.filename,
                request.garment_image.content,
                request.garment_image.content_type,
            ),
        }
        data = {"task_type": "async", "clothes_type": request.clothes_type}
        answer = self.call("POST", SUBMIT_PATH, data=data, files=files)
        task_id = answer.get("task_id")
        if not task_id or not isinstance(task_id, str):
            raise InvalidResponseError(
                "The provider accepted the task but sent no task_id.",
                provider=self.provider_name,
                status_code=200,
                request_id=_request_id(answer),
                in_doubt=True,
            )
        return Submission(task_id=task_id, request_id=_request_id(answer))

    def query(self, task_id):
        answer = self.call("GET", QUERY_PATH, params={"task_id": task_id})
        request_id = _request_id(answer)
        task_status = answer.get("task_status")
        if task_status in TASK_STATUSES and not isinstance(task_status, bool):
            status = TASK_STATUSES[task_status]
            if status != SUCCEEDED:
                return TaskState(status=status, request_id=request_id, raw=answer)
            data = answer.get("data")
            url = data.get("image") if isinstance(data, dict) else None
            if not url or not isinstance(url, str):
                raise InvalidResponseError(
                    "The provider reported success without a result image URL.",
                    provider=self.provider_name,
                    status_code=200,
                    request_id=request_id,
                )
            return TaskState(status=SUCCEEDED, result_url=url, request_id=request_id, raw=answer)
        if task_status == TASK_FAILED:
            message = "The provider could not complete the try-on (task_status 3)."
        else:
            message = f"The provider reported an unknown task_status {task_status!r}."
        error = TaskFailedError(
            message,
            provider=self.provider_name,
            status_code=200,
            code=f"task_status={task_status!r}",
            request_id=request_id,
        )
        return TaskState(status=FAILED, error=error, request_id=request_id, raw=answer)

    def credits(self):
        answer = self.call("GET", CREDITS_PATH)
        # The answer's business fields are not published: take the first
        # number found under the names the provider has been seen to use.
        data = answer["data"] if isinstance(answer.get("data"), dict) else answer
        for key in ("remaining_credits", "credits", "balance", "available"):
            value = data.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return Credits(remaining=value, raw=answer)
        raise InvalidResponseError(
            "The provider's credits answer holds no balance.",
            provider=self.provider_name,
            status_code=200,
            request_id=_request_id(answer),
        )

    # The error envelope ---------------------------------------------------

    def is_success(self, status, answer):
        # Success is HTTP 200 *and* error_code 0 where the answer carries one.
        return status == 200 and answer.get("error_code", 0) in (0, None, "0")

    def error_for(self, status, answer, response):
        detail = answer.get("error_detail")
        if not isinstance(detail, dict):
            detail = {}
        # An error: the HTTP status, or the error_code of a 200 that is not a success.
        if status == 200:
            error_code = answer.get("error_code", 0)
            status = _as_int(error_code) or _as_int(detail.get("status_code")) or 500
        code = str(detail.get("code") or answer.get("error_code_str") or "")
        message = str(
            detail.get("message")
            or detail.get("code_message")
            or answer.get("error_msg")
            or f"HTTP {status}"
        )
        info = {"status_code": status, "code": code, "request_id": _request_id(answer)}
        if code in CONFIGURATION_CODES:
            return self.error(
                ConfigurationError, f"The provider refused the API key: {message}", **info
            )
        if code == CREDITS_CODE:
            return self.error(OutOfCreditsError, message, response=response, **info)
        if code in PHOTO_CODES:
            return self.error(
                InvalidPhotoError,
                message,
                response=response,
                job_error_code=PHOTO_CODES[code],
                **info,
            )
        if status in (413, 415, 422):
            return self.error(InvalidPhotoError, message, response=response, **info)
        return self.error_for_status(
            status, code=code, message=message, request_id=info["request_id"], response=response
        )


def _request_id(answer):
    value = answer.get("request_id") if isinstance(answer, dict) else ""
    return str(value or "")


def _as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
