"""AILabAPI's documented answers, shared by the backend tests and the sandbox tests.

The backend tests feed these answers through ``responses``; the sandbox tests
check the sandbox answers with the same shapes. One source, so the two cannot
drift apart.
"""

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
