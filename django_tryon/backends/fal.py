"""fal.ai's queue: submit a try-on model's request, then poll it, or be called back
with a signed webhook.

The protocol, as fal documents it (summarised in ``docs/providers.md``):

- every call carries ``Authorization: Key <key>``;
- ``POST /{model_id}`` with the model's JSON inputs queues a request and
  answers ``{"request_id", ...}``; ``?fal_webhook=<url>`` asks for a call back;
- ``GET /{app}/requests/{id}/status``: ``IN_QUEUE`` (with ``queue_position``),
  ``IN_PROGRESS`` or ``COMPLETED``; ``GET /{app}/requests/{id}``: the model's
  output, or its error; ``PUT /{app}/requests/{id}/cancel``. ``{app}`` is the
  model id's owner and app only: ``fal-ai/fashn/tryon/v1.6`` is queried under
  ``fal-ai/fashn``. These URLs are built here, never taken from an answer, so
  the key only ever goes to ``BASE_URL``;
- a model's error is an HTTP status with ``{"detail": [{"loc", "msg", "type",
  ...}]}``; a request's (infrastructure) error is ``{"detail": "...",
  "error_type": "..."}``;
- a webhook's body is ``{"request_id", "status": "OK"|"ERROR", "payload",
  "error"}``, signed with Ed25519 (:mod:`.fal_signature`).

Each model has its own inputs and output (:data:`MODELS`); images go inline as
base64 data URIs, which fal takes wherever a file's URL is asked for.
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from .base import (
    FAILED,
    PROCESSING,
    QUEUED,
    SUCCEEDED,
    InvalidPhotoError,
    InvalidResponseError,
    Option,
    OutOfCreditsError,
    ProviderUnavailableError,
    RequestRejectedError,
    ResultFilteredError,
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
)
from .fal_signature import (
    DEFAULT_JWKS_URL,
    KeysUnavailable,
    SignatureRefused,
    fetch_keys,
    key_set,
    require_cryptography,
    verify,
)

FASHN_MODEL = "fal-ai/fashn/tryon/v1.6"
KOLORS_MODEL = "fal-ai/kling/v1-5/kolors-virtual-try-on"

IN_FLIGHT_STATUSES = {"IN_QUEUE": QUEUED, "IN_PROGRESS": PROCESSING}
COMPLETED = "COMPLETED"

#: A webhook body holds the output's URLs, or an error: a few kilobytes.
MAX_CALLBACK_BYTES = 64 * 1024

# A model's errors ("detail"[0]["type"]) about an input image, and the job code
# each means when the image is the shopper's photo (the garment's is the shop's).
PHOTO_ERRORS = {
    "face_detection_error": "no_face",
    "image_load_error": "photo_unreadable",
    "file_download_error": "photo_unreadable",
    "image_too_large": "photo_too_large",
    "file_too_large": "photo_too_large",
    "image_too_small": "invalid_photo",
    "content_policy_violation": "content_rejected",
}
# A model's errors of a run that went wrong on its side.
RUN_ERRORS = {
    "internal_server_error",
    "generation_timeout",
    "downstream_service_error",
    "downstream_service_unavailable",
    "no_media_generated",
}
# What fal answers (HTTP 403) when the account's balance is spent.
EXHAUSTED_BALANCE = "exhausted balance"


@dataclass(frozen=True)
class FalModel:
    """One try-on model on fal: where its images go, its options, its output."""

    person_field: str
    garment_field: str
    #: The backend options this model takes, sent as its inputs of the same name.
    inputs: tuple[str, ...] = ()
    #: The clothes type, as this model's ``category`` (empty: the model takes none).
    categories: tuple[tuple[str, str], ...] = ()

    def request_inputs(self, request, options) -> dict[str, Any]:
        inputs: dict[str, Any] = {
            self.person_field: data_uri(request.person_image),
            self.garment_field: data_uri(request.garment_image),
        }
        if self.categories:
            inputs["category"] = dict(self.categories).get(request.clothes_type, "auto")
        for name in self.inputs:
            if options.get(name) is not None:
                inputs[name] = options[name]
        return inputs

    def result_url(self, output: Any) -> str:
        """The picture's URL in the model's output (``""`` if there is none)."""
        if not isinstance(output, dict):
            return ""
        image = output.get("image")  # Kolors: one image
        if image is None:
            images = output.get("images")  # FASHN: a list
            image = images[0] if isinstance(images, list) and images else None
        url = image.get("url") if isinstance(image, dict) else None
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            return ""
        return url


FASHN_INPUTS = (
    "mode",
    "moderation_level",
    "garment_photo_type",
    "segmentation_free",
    "output_format",
    "seed",
)

#: The try-on models this backend speaks, by fal model id.
MODELS = {
    FASHN_MODEL: FalModel(
        person_field="model_image",
        garment_field="garment_image",
        inputs=FASHN_INPUTS,
        categories=(
            ("upper_body", "tops"),
            ("lower_body", "bottoms"),
            ("full_body", "one-pieces"),
        ),
    ),
    KOLORS_MODEL: FalModel(person_field="human_image_url", garment_field="garment_image_url"),
}


def app_id(model_id: str) -> str:
    """The part of a model id that names its queue: owner and app, without a sub-path."""
    return "/".join(model_id.split("/")[:2])


class FalBackend(HTTPBackend):
    provider_name = "fal"
    requires_api_key = True
    supports_callbacks = True
    default_base_url = "https://queue.fal.run"
    known_options = {
        "model": Option(FASHN_MODEL, choices=tuple(MODELS), help="The try-on model on fal."),
        "jwks_url": Option(
            DEFAULT_JWKS_URL, help="Where fal publishes the keys its webhooks are signed with."
        ),
        # FASHN's inputs (fal-ai/fashn/tryon/v1.6 only); None: fal's default.
        "mode": Option(
            None,
            choices=("performance", "balanced", "quality"),
            help="FASHN: speed against quality.",
        ),
        "moderation_level": Option(
            None,
            choices=("conservative", "permissive", "none"),
            help="FASHN: how strictly the garment is screened for revealing content.",
        ),
        "garment_photo_type": Option(
            None, choices=("auto", "model", "flat-lay"), help="FASHN: worn or laid flat."
        ),
        "segmentation_free": Option(None, kind=bool, help="FASHN: False removes more."),
        "output_format": Option(None, choices=("png", "jpeg"), help="FASHN: the result's format."),
        "seed": Option(None, kind=int, help="FASHN: repeat a result exactly."),
    }

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.model_id = self.options["model"]
        self.model = MODELS[self.model_id]
        self.app = app_id(self.model_id)

    @classmethod
    def option_problems(cls, given):
        problems = super().option_problems(given)
        if problems or not isinstance(given, dict):
            return problems
        model = given.get("model") or cls.known_options["model"].default
        for name in FASHN_INPUTS:
            if given.get(name) is not None and name not in MODELS[model].inputs:
                problems.append(
                    f"Invalid setting {name!r} for FalBackend in TRYON['OPTIONS']: "
                    f"the model {model!r} takes no {name!r} (only {FASHN_MODEL!r} does)."
                )
        return problems

    @classmethod
    def dependency_problem(cls):
        try:
            require_cryptography()
        except ImportError as err:
            return str(err)
        return ""

    def auth_headers(self):
        return {"Authorization": f"Key {self.api_key}"}

    # Calls ----------------------------------------------------------------

    def submit(self, request, callback_url=""):
        params = {"fal_webhook": callback_url} if callback_url else None
        answer = self.call(
            "POST",
            "/" + self.model_id,
            params=params,
            json=self.model.request_inputs(request, self.options),
        )
        request_id = answer.get("request_id")
        if not isinstance(request_id, str) or not is_task_id(request_id):
            raise self.error(
                InvalidResponseError,
                "fal answered the submit without a request id.",
                status_code=200,
                in_doubt=True,
            )
        return Submission(task_id=request_id, request_id=request_id)

    def query(self, task_id):
        answer = self.call("GET", f"{self._request_path(task_id)}/status")
        status = answer.get("status")
        if isinstance(status, str) and status in IN_FLIGHT_STATUSES:
            return TaskState(status=IN_FLIGHT_STATUSES[status], request_id=task_id, raw=answer)
        if status != COMPLETED:
            raise self.error(
                InvalidResponseError,
                f"fal reported an unknown status {field_text(status)[:40]!r}.",
                status_code=200,
                request_id=task_id,
            )
        try:
            output = self.call("GET", self._request_path(task_id))
        except (
            InvalidPhotoError,
            RequestRejectedError,
            ResultFilteredError,
            TaskFailedError,
        ) as err:
            # The run ended with the model's error: the request's outcome, not the call's.
            return TaskState(status=FAILED, error=err, request_id=task_id, raw=answer)
        return self._state_of_output(task_id, output)

    def cancel(self, task_id):
        """Take the request out of fal's queue (or signal its runner to stop).

        A request that ended already (``ALREADY_COMPLETED``) or that fal does not
        know (``NOT_FOUND``) needs nothing more.
        """
        try:
            self.call("PUT", f"{self._request_path(task_id)}/cancel")
        except RequestRejectedError as err:
            if err.status_code not in (400, 404):
                raise

    def webhook_keys_problem(self) -> str:
        """Why fal's webhook keys cannot be fetched from ``OPTIONS["jwks_url"]`` now, or
        ``""`` when they can: fetched afresh (``manage.py tryon_check`` asks; the
        process's kept keys are left alone). Without them every delivery is refused."""
        require_cryptography()
        try:
            fetch_keys(self.options["jwks_url"], self.timeout, sum(self.timeout))
        except Exception as err:  # the network's or the document's fault: said, not raised
            return f"{type(err).__name__}: {err}"
        return ""

    def parse_callback(self, request):
        """The request id and state a webhook reports, once its signature is checked.

        Refused (:class:`RequestRejectedError`): a body over
        :data:`MAX_CALLBACK_BYTES`, a signature that is missing, does not verify
        with fal's keys or is more than five minutes old, a body that is not a
        JSON object shaped as fal documents, or one that names another request
        than the one signed. :class:`ProviderUnavailableError` (transient): fal's
        keys cannot be fetched now; fal delivers again later.
        """
        require_cryptography()
        declared = str(request.META.get("CONTENT_LENGTH") or "")
        if not declared.isdigit() or int(declared) > MAX_CALLBACK_BYTES:
            raise self._refused("The callback's body is too large or its length is unreadable.")
        body = request.body
        if len(body) > MAX_CALLBACK_BYTES:
            raise self._refused("The callback's body is too large.")
        keys = key_set(self.options["jwks_url"], self.timeout)
        try:
            signed_for = verify(request.headers, body, keys)
        except SignatureRefused as err:
            raise self._refused(str(err)) from err
        except KeysUnavailable as err:
            raise self.error(ProviderUnavailableError, str(err)) from err
        answer = parse_json_object(body)
        if answer is None:
            raise self._refused("The callback's body is not a JSON object.")
        request_id = answer.get("request_id")
        if request_id != signed_for or not is_task_id(request_id):
            raise self._refused("The callback's body names another request than the one signed.")
        status = answer.get("status")
        if status == "OK":
            payload = answer.get("payload")
            if payload is None:
                # fal could not put the output in the webhook (``payload_error``):
                # done, and the worker asks for the result at once.
                return request_id, TaskState(status=SUCCEEDED, request_id=request_id, raw=answer)
            try:
                return request_id, self._state_of_output(request_id, payload)
            except InvalidResponseError as err:
                raise self._refused(
                    f"The callback's output holds no picture: {err.message}"
                ) from err
        if status == "ERROR":
            error = self._run_error(answer.get("payload"), 0, request_id) or self.error(
                TaskFailedError,
                field_text(answer.get("error"))[:500] or "The request failed at fal.",
                request_id=request_id,
            )
            return request_id, TaskState(status=FAILED, error=error, request_id=request_id)
        raise self._refused("The callback's status is neither OK nor ERROR.")

    # Answers --------------------------------------------------------------

    def _request_path(self, task_id):
        return f"/{self.app}/requests/{quote(task_id, safe='')}"

    def _state_of_output(self, task_id, output):
        url = self.model.result_url(output)
        if not url:
            raise self.error(
                InvalidResponseError,
                "fal reported the request done without a picture's URL.",
                status_code=200,
                request_id=task_id,
            )
        return TaskState(status=SUCCEEDED, result_url=url, request_id=task_id, raw=output)

    def _run_error(self, answer, status, request_id=""):
        """The error a model's error answer (``{"detail": [...]}``) stands for, or ``None``."""
        details = answer.get("detail") if isinstance(answer, dict) else None
        first = details[0] if isinstance(details, list) and details else None
        if not isinstance(first, dict):
            return None
        kind = field_text(first.get("type"))[:100]
        message = field_text(first.get("msg"))[:500] or kind or "The model refused the request."
        location = first.get("loc")
        field = location[1] if isinstance(location, list) and len(location) > 1 else ""
        info = {"status_code": status or None, "code": kind, "request_id": request_id}
        if kind in PHOTO_ERRORS:
            if field == self.model.person_field:
                return self.error(
                    InvalidPhotoError, message, job_error_code=PHOTO_ERRORS[kind], **info
                )
            if kind == "content_policy_violation" and field != self.model.garment_field:
                # Neither input is named: the picture made was flagged.
                return self.error(ResultFilteredError, message, **info)
            return self.error(TaskFailedError, message, **info)  # the garment: the shop's
        if kind in RUN_ERRORS:
            return self.error(TaskFailedError, message, **info)
        return self.error(RequestRejectedError, message, **info)

    def error_for(self, status, answer, response):
        run_error = self._run_error(answer, status)
        if run_error is not None:
            return run_error
        message = field_text(answer.get("detail"))[:500] or f"HTTP {status}"
        error_type = field_text(answer.get("error_type"))[:100]
        details = {"status_code": status, "code": error_type}
        if status == 403 and EXHAUSTED_BALANCE in message.lower():
            return self.error(OutOfCreditsError, message, response=response, **details)
        if status >= 500 and error_type and _is_result_request(response):
            # The request itself failed at fal, after fal's own retries: for good.
            return self.error(TaskFailedError, message, response=response, **details)
        return self.error_for_status(status, message=message, response=response, code=error_type)

    def _refused(self, message):
        return self.error(RequestRejectedError, message)


def _is_result_request(response) -> bool:
    """Whether ``response`` answers a request's result (``GET .../requests/{id}``)."""
    request = getattr(response, "request", None)
    if request is None or request.method != "GET":
        return False
    path = urlsplit(request.url or "").path
    head, _, _ = path.rpartition("/")
    return head.endswith("/requests")
