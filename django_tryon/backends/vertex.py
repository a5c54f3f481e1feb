"""Google Vertex AI's virtual try-on: one synchronous predict answers with the picture.

The protocol, as Google documents it (the Virtual Try-On API reference,
summarised in ``docs/providers.md``):

- ``POST /v1/projects/{project}/locations/{location}/publishers/google/models/
  {model}:predict`` on ``https://{location}-aiplatform.googleapis.com``, with an
  OAuth 2.0 bearer token from Google's application default credentials;
- the body is ``{"instances": [{"personImage": {"image": {...}}, "productImages":
  [{"image": {...}}]}], "parameters": {"sampleCount", "seed", "safetySetting",
  ...}}``, images as ``bytesBase64Encoded``;
- the answer is ``{"predictions": [{"mimeType", "bytesBase64Encoded"}]}``, or a
  prediction with ``raiFilteredReason`` instead of the picture when Google's
  safety filter withheld it: a readable failure (``result_filtered``), not an
  error;
- errors are Google's envelope, ``{"error": {"code", "message", "status",
  "details"}}``.

A predict takes tens of seconds, so the backend waits for its answer at least
:attr:`VertexBackend.min_read_timeout` seconds, whatever ``READ_TIMEOUT`` says;
the worker keeps taking other jobs meanwhile (see ``docs/worker.md``).

Credentials come from ``google-auth`` only (``pip install
'django-tryon[vertex]'``): ``GOOGLE_APPLICATION_CREDENTIALS`` naming a service
account's key file (its ``token_uri`` is where tokens are asked for), or any
other source of application default credentials. They are loaded on the first
call, and the token is renewed before it expires, through our own HTTP session:
held to ``CONNECT_TIMEOUT`` and ``READ_TIMEOUT`` (not the predict's longer
read timeout) and to their sum in all, retries included
(:attr:`VertexBackend.token_deadline`), so a token service that accepts the
connection and never answers, or answers a byte at a time, costs a worker's
thread that long, and the job a transient failure it retries.
"""

import base64
import binascii
import contextlib
import functools
import re
import threading
import time
import uuid
from typing import Any

import requests

try:
    import google.auth
    import google.auth.exceptions
    import google.auth.transport.requests
except ImportError as err:  # pragma: no cover - depends on the installed extras
    GOOGLE_AUTH_MISSING: ImportError | None = err
else:
    GOOGLE_AUTH_MISSING = None

from ..conf import tryon_settings
from ..deadlines import deadline
from ..http import EnvironmentCachingSession
from .base import (
    FAILED,
    SUCCEEDED,
    ConfigurationError,
    InvalidResponseError,
    Option,
    OutOfCreditsError,
    ProviderConnectionError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RequestRejectedError,
    ResultFilteredError,
    Submission,
    TaskState,
    TryOnError,
)
from .base_http import HTTPBackend, field_text

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
#: The answer carries the picture in base64 (under ``RESULT_MAX_BYTES``, 20 MB by default).
MAX_PREDICT_ANSWER_BYTES = 40 * 1024 * 1024
NAME = re.compile(r"^[a-z0-9][a-z0-9._:-]{0,99}$")
# Google's reason when the project's billing is off: its credits are spent.
BILLING_DISABLED = "BILLING_DISABLED"


def credentials_problem() -> str:
    """Why Vertex cannot be used here, or ``""`` (its library is installed)."""
    if GOOGLE_AUTH_MISSING is not None:
        return "The Vertex AI backend needs google-auth: pip install 'django-tryon[vertex]'."
    return ""


class VertexBackend(HTTPBackend):
    provider_name = "vertex"
    requires_api_key = False
    supports_callbacks = False
    #: Set from the location unless ``BASE_URL`` is.
    default_base_url = ""
    min_read_timeout = 180.0
    max_answer_bytes = MAX_PREDICT_ANSWER_BYTES
    known_options = {
        "project": Option(None, help="The Google Cloud project (None: the credentials')."),
        "location": Option("us-central1", help="The region whose endpoint serves the model."),
        "model": Option("virtual-try-on-001", help="The try-on model."),
        "safety_setting": Option(
            None,
            choices=(
                "block_low_and_above",
                "block_medium_and_above",
                "block_only_high",
                "block_none",
            ),
            help="How strictly the result is filtered (None: Google's default).",
        ),
        "person_generation": Option(
            None,
            choices=("dont_allow", "allow_adult", "allow_all"),
            help="Whether people may be shown (None: Google's default).",
        ),
        "seed": Option(None, kind=int, help="Repeat a result exactly (needs add_watermark False)."),
        "base_steps": Option(None, kind=int, help="Diffusion steps: quality against time."),
        "add_watermark": Option(None, kind=bool, help="Google's invisible watermark."),
        "output_mime_type": Option(
            None, choices=("image/png", "image/jpeg"), help="The result's format."
        ),
    }

    def __init__(self, **kwargs):
        given_read_timeout = kwargs.get("read_timeout")
        super().__init__(**kwargs)
        #: ``(connect, read)`` seconds of a token request: those configured, not
        #: ``min_read_timeout`` (a token takes a moment, a predict tens of seconds).
        self.token_timeout = (
            self.timeout[0],
            float(
                given_read_timeout
                if given_read_timeout is not None
                else tryon_settings.READ_TIMEOUT
            ),
        )
        location = self.options["location"]
        if not self.base_url:
            host = "aiplatform.googleapis.com"
            self.base_url = (
                f"https://{host}" if location == "global" else f"https://{location}-{host}"
            )
        self._credentials: Any = None
        self._project = self.options["project"]
        self._credentials_lock = threading.Lock()
        self._token_session: requests.Session | None = None
        # The last renewal's failure, and when (monotonic): the threads that waited
        # for that renewal fail with it, rather than each waiting its own deadline.
        self._token_failure: tuple[float, TryOnError] | None = None

    @classmethod
    def option_problems(cls, given):
        problems = super().option_problems(given)
        if problems or not isinstance(given, dict):
            return problems
        for name in ("project", "location", "model"):
            value = given.get(name)
            if isinstance(value, str) and not NAME.match(value):
                problems.append(
                    f"Invalid value {value!r} for VertexBackend's option {name!r} in "
                    "TRYON['OPTIONS']: it must be a Google Cloud name (lowercase letters, "
                    "digits, dashes)."
                )
        if given.get("seed") is not None and given.get("add_watermark") is not False:
            problems.append(
                "VertexBackend's option 'seed' in TRYON['OPTIONS'] needs 'add_watermark': "
                "False (Google refuses a seed with its watermark on)."
            )
        return problems

    @classmethod
    def dependency_problem(cls):
        return credentials_problem()

    # Credentials -----------------------------------------------------------

    @property
    def credentials(self):
        """The Google credentials in use: ``None`` until the first call loads the
        application default credentials; google-auth renews their token (its
        ``expiry``) when it has expired."""
        return self._credentials

    @property
    def token_deadline(self) -> float:
        """The longest a token renewal may take in all (seconds), retries included."""
        connect, read = self.token_timeout
        return connect + read

    def request_headers(self):
        """The bearer token, renewed when it has expired."""
        with self._credentials_in_hand() as credentials:
            headers: dict[str, str] = {}
            try:
                self._renew_token(credentials, headers)
            except TryOnError as err:
                self._token_failure = (time.monotonic(), err)
                raise
        return headers

    def check_credentials(self) -> str:
        """The Google Cloud project predicts would bill, once Google's token service gave
        the credentials a token (free: no predict is made). Raises as a predict would:
        :class:`ConfigurationError` for credentials missing or refused, or no project;
        :class:`ProviderConnectionError` when the token service cannot be reached.
        ``manage.py tryon_check`` asks it."""
        self.request_headers()
        return str(self._project)

    @contextlib.contextmanager
    def _credentials_in_hand(self):
        """The credentials, loaded, the lock held. If the token renewal this thread
        waited for failed meanwhile, its error at once: N threads renewing in turn
        would take N deadlines."""
        waiting_since = time.monotonic()
        with self._credentials_lock:
            failure = self._token_failure
            if failure is not None and failure[0] >= waiting_since:
                raise self.error(type(failure[1]), failure[1].message)
            yield self._load_credentials()

    def _renew_token(self, credentials, headers):
        """Put the bearer token in ``headers``, renewed first if it has expired."""
        budget = self.token_deadline
        with deadline(budget) as limit:
            try:
                credentials.before_request(self._token_request(), "POST", self.base_url, headers)
            except Exception as err:
                if limit.expired:  # whatever broke, the deadline broke it
                    raise self.error(
                        ProviderTimeoutError,
                        f"Google's token service took longer than {budget:g} s in all "
                        "and was cut off.",
                    ) from err
                if limit.cut_off:  # the call's own deadline, the token's time included
                    raise self.error(
                        ProviderTimeoutError,
                        "Google's token service was cut off at the call's deadline.",
                    ) from err
                raise self._token_error(err) from err

    def _token_error(self, err):
        """The error a failed token renewal stands for (never quoting a token)."""
        if isinstance(err, google.auth.exceptions.RefreshError):
            if getattr(err, "retryable", False):
                return self.error(
                    ProviderUnavailableError, f"Google's token service failed: {_said(err)}"
                )
            return self.error(ConfigurationError, f"Google refused the credentials: {_said(err)}")
        if isinstance(err, google.auth.exceptions.TransportError):
            return self.error(
                ProviderConnectionError, f"Google's token service is unreachable: {_said(err)}"
            )
        # An answer google-auth could not read (a 200 that is not JSON): nothing was
        # sent to Vertex yet, so the job may try again.
        return self.error(
            ProviderUnavailableError,
            f"Google's token service gave an answer that holds no token ({type(err).__name__}).",
        )

    def _load_credentials(self):
        if self._credentials is not None:
            return self._credentials
        problem = credentials_problem()
        if problem:
            raise self.error(ConfigurationError, problem)
        try:
            credentials, project = google.auth.default(scopes=list(SCOPES))
        except google.auth.exceptions.GoogleAuthError as err:
            raise self.error(
                ConfigurationError,
                "No Google application default credentials: set GOOGLE_APPLICATION_CREDENTIALS "
                f"to a service account's key file ({_said(err)}).",
            ) from err
        self._project = self._project or project
        if not self._project:
            raise self.error(
                ConfigurationError,
                "No Google Cloud project: set TRYON['OPTIONS']['project'] "
                "(the credentials name none).",
            )
        self._credentials = credentials
        return credentials

    def _token_request(self):
        """google-auth's transport, with the backend's timeouts (not its two minutes),
        over a session whose connections the running deadline can cut."""
        if self._token_session is None:
            self._token_session = EnvironmentCachingSession()
        transport = google.auth.transport.requests.Request(session=self._token_session)
        return functools.partial(transport, timeout=self.token_timeout)

    def close(self):
        super().close()
        if self._token_session is not None:
            self._token_session.close()
            self._token_session = None

    # Calls -----------------------------------------------------------------

    def submit(self, request, callback_url=""):
        options = self.options
        with self._credentials_in_hand():
            project = self._project
        path = (
            f"/v1/projects/{project}/locations/{options['location']}"
            f"/publishers/google/models/{options['model']}:predict"
        )
        parameters: dict[str, Any] = {"sampleCount": 1}
        for name, key in (
            ("seed", "seed"),
            ("base_steps", "baseSteps"),
            ("safety_setting", "safetySetting"),
            ("person_generation", "personGeneration"),
            ("add_watermark", "addWatermark"),
        ):
            if options[name] is not None:
                parameters[key] = options[name]
        if options["output_mime_type"] is not None:
            parameters["outputOptions"] = {"mimeType": options["output_mime_type"]}
        instance = {
            "personImage": {"image": _inline(request.person_image)},
            "productImages": [{"image": _inline(request.garment_image)}],
        }
        answer = self.call("POST", path, json={"instances": [instance], "parameters": parameters})
        task_id = f"vertex-{uuid.uuid4().hex}"
        return Submission(task_id=task_id, state=self._state_of(answer, task_id))

    def query(self, task_id):
        """A predict answers at once: there is never a task to ask about."""
        raise self.error(
            RequestRejectedError, "Vertex AI answers each predict at once: nothing to query."
        )

    def _state_of(self, answer, task_id):
        predictions = answer.get("predictions")
        first = predictions[0] if isinstance(predictions, list) and predictions else None
        if isinstance(first, dict) and first.get("raiFilteredReason"):
            reason = field_text(first["raiFilteredReason"])[:500]
            error = self.error(ResultFilteredError, reason, code="raiFilteredReason")
            return TaskState(status=FAILED, error=error, request_id=task_id)
        content = b""
        if isinstance(first, dict) and isinstance(first.get("bytesBase64Encoded"), str):
            try:
                content = base64.b64decode(first["bytesBase64Encoded"], validate=True)
            except (binascii.Error, ValueError):
                content = b""
        if not content:
            # Google may have made (and charged) a picture this answer does not carry.
            raise self.error(
                InvalidResponseError,
                "Vertex AI answered the predict without a picture.",
                status_code=200,
                in_doubt=True,
            )
        return TaskState(status=SUCCEEDED, result_content=content, request_id=task_id)

    def error_for(self, status, answer, response):
        error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
        code = field_text(error.get("status"))[:100]
        message = field_text(error.get("message"))[:500] or code or f"HTTP {status}"
        details = {"status_code": status, "code": code}
        if status == 403 and BILLING_DISABLED in _reasons(error):
            return self.error(OutOfCreditsError, message, response=response, **details)
        if status == 404:
            return self.error(
                ConfigurationError,
                f"Vertex AI knows no such project, location or model: {message}",
                **details,
            )
        return self.error_for_status(status, message=message, response=response, code=code)


def _inline(image):
    return {"bytesBase64Encoded": base64.b64encode(image.content).decode("ascii")}


def _reasons(error) -> set[str]:
    details = error.get("details")
    if not isinstance(details, list):
        return set()
    return {str(item.get("reason")) for item in details if isinstance(item, dict)}


def _said(err) -> str:
    """An auth library's error, short: its type and first words (never a token)."""
    text = str(err).splitlines()[0][:200] if str(err) else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
