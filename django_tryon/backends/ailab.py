"""AILabAPI's "Try on Clothes": async submit, then poll the task.

The protocol (paths, header, fields, answers, error table) is summarised in
``docs/providers.md``. Success is HTTP 200 *and* ``error_code`` 0 where the
answer carries one: both are checked.
"""

import threading

import requests

from ..http import EnvironmentCachingSession, PoolKeepingAdapter
from .base import (
    PROCESSING,
    QUEUED,
    SUCCEEDED,
    ConfigurationError,
    Credits,
    InvalidPhotoError,
    InvalidResponseError,
    OutOfCreditsError,
    ProviderConnectionError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitedError,
    RequestRejectedError,
    Submission,
    TaskFailedError,
    TaskState,
    TryOnBackend,
)

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


class AILabBackend(TryOnBackend):
    provider_name = "ailabapi"
    requires_api_key = True

    def __init__(self, *, pool_size=10, **kwargs):
        super().__init__(**kwargs)
        self._pool_size = pool_size
        # One session per thread: connections are reused, and no two threads
        # share a session's connection pool state.
        self._local = threading.local()

    @property
    def session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            session = EnvironmentCachingSession(
                PoolKeepingAdapter(pool_connections=1, pool_maxsize=self._pool_size)
            )
            session.headers[API_KEY_HEADER] = self.api_key
            self._local.session = session
        return session

    # Calls ----------------------------------------------------------------

    def submit(self, request):
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
        answer = self._call("POST", SUBMIT_PATH, data=data, files=files)
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
        answer = self._call("GET", QUERY_PATH, params={"task_id": task_id})
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
        return TaskState(status="failed", error=error, request_id=request_id, raw=answer)

    def credits(self):
        answer = self._call("GET", CREDITS_PATH)
        # The answer's business fields are not published: take the first
        # number found under the names the provider has been seen to use.
        data = answer.get("data") if isinstance(answer.get("data"), dict) else answer
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

    def close(self):
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None

    # Plumbing -------------------------------------------------------------

    def _call(self, method, path, **kwargs):
        sends_body = method == "POST"
        try:
            # Redirects are not followed: the API key header would go along to
            # wherever the answer points. A 3xx is refused like any other answer.
            response = self.session.send_direct(
                method, self.base_url + path, timeout=self.timeout, **kwargs
            )
        except requests.exceptions.ConnectTimeout as err:
            raise ProviderTimeoutError(
                "Could not connect to the provider in time.", provider=self.provider_name
            ) from err
        except requests.exceptions.Timeout as err:
            raise ProviderTimeoutError(
                "The provider did not answer in time.",
                provider=self.provider_name,
                in_doubt=sends_body,
            ) from err
        except requests.exceptions.ConnectionError as err:
            # Refused before anything was sent is safe to repeat; a connection
            # dropped after the request went out may have created a task.
            refused = _connection_refused(err)
            raise ProviderConnectionError(
                "Could not reach the provider."
                if refused
                else "The provider dropped the connection.",
                provider=self.provider_name,
                in_doubt=sends_body and not refused,
            ) from err
        except requests.exceptions.RequestException as err:
            raise ProviderConnectionError(
                f"The request to the provider failed: {err}",
                provider=self.provider_name,
                in_doubt=sends_body,
            ) from err
        return self._parse(response)

    def _parse(self, response):
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            if response.status_code == 200:
                raise InvalidResponseError(
                    "The provider's answer is not JSON.",
                    provider=self.provider_name,
                    status_code=response.status_code,
                    response=response,
                    in_doubt=response.request.method == "POST",
                )
            answer = {}
        detail = answer.get("error_detail")
        if not isinstance(detail, dict):
            detail = {}
        error_code = answer.get("error_code", 0)
        if response.status_code == 200 and error_code in (0, None, "0"):
            return answer
        # An error: the HTTP status, or the error_code of a 200 that is not a success.
        status = response.status_code
        if status == 200:
            status = _as_int(error_code) or _as_int(detail.get("status_code")) or 500
        code = str(detail.get("code") or answer.get("error_code_str") or "")
        message = str(
            detail.get("message")
            or detail.get("code_message")
            or answer.get("error_msg")
            or f"HTTP {status}"
        )
        raise self._error(status, code, message, _request_id(answer), response)

    def _error(self, status, code, message, request_id, response):
        info = {
            "provider": self.provider_name,
            "status_code": status,
            "code": code,
            "request_id": request_id,
        }
        if code in CONFIGURATION_CODES or status in (401, 403):
            return ConfigurationError(f"The provider refused the API key: {message}", **info)
        if code == CREDITS_CODE:
            return OutOfCreditsError(message, response=response, **info)
        if status == 429:
            return RateLimitedError(
                message, retry_after=_retry_after(response), response=response, **info
            )
        if code in PHOTO_CODES:
            return InvalidPhotoError(
                message, response=response, job_error_code=PHOTO_CODES[code], **info
            )
        if status in (413, 415, 422):
            return InvalidPhotoError(message, response=response, **info)
        if status >= 500:
            return ProviderUnavailableError(message, response=response, **info)
        return RequestRejectedError(message, response=response, **info)


def _request_id(answer):
    value = answer.get("request_id") if isinstance(answer, dict) else ""
    return str(value or "")


def _as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _retry_after(response):
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _connection_refused(err):
    seen = set()
    current = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return True
        for arg in getattr(current, "args", ()):
            if isinstance(arg, BaseException) and _connection_refused(arg):
                return True
        current = current.__cause__ or current.__context__
    return "Connection refused" in str(err)
