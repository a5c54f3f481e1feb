"""The provider interface every try-on backend implements, and its errors.

A backend turns "this photo, this garment" into a provider task, and a task id
into a :class:`TaskState`. It knows nothing of models or storage: the worker
hands it bytes and gets back plain values.

Three kinds of provider fit this interface:

- **submit and poll** (AILabAPI): :meth:`TryOnBackend.submit` returns a task id
  and no state; the worker calls :meth:`TryOnBackend.query` until the state is
  final.
- **push** (webhooks): ``submit`` returns a task id; the provider later calls
  the shop, and :meth:`TryOnBackend.parse_callback` turns that request into a
  ``(task_id, TaskState)``. ``query`` still works as a fallback.
- **synchronous**: ``submit`` returns a final ``TaskState`` at once, with the
  picture in :attr:`TaskState.result_content`.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

from ..conf import tryon_settings
from ..errors import is_shopper_fault
from ..redaction import api_key, redact

QUEUED = "queued"
PROCESSING = "processing"
SUCCEEDED = "succeeded"
FAILED = "failed"
FINAL_STATES = {SUCCEEDED, FAILED}


@dataclass(frozen=True)
class ImageInput:
    """One image sent to the provider."""

    content: bytes
    filename: str
    content_type: str


@dataclass(frozen=True)
class TryOnRequest:
    person_image: ImageInput
    garment_image: ImageInput
    clothes_type: str  # upper_body | lower_body | full_body


@dataclass(frozen=True)
class TaskState:
    """Where a provider task stands.

    ``status`` is one of ``queued``, ``processing``, ``succeeded``, ``failed``.
    A succeeded state carries either ``result_url`` (to download) or
    ``result_content`` (the image itself, for synchronous providers). A failed
    state carries ``error``, a :class:`PermanentError`.
    """

    status: str
    result_url: str = ""
    result_content: bytes = b""
    error: "TryOnError | None" = None
    request_id: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATES


@dataclass(frozen=True)
class Submission:
    """What a provider answered to a submit: a task id, maybe a state already."""

    task_id: str
    request_id: str = ""
    state: TaskState | None = None


@dataclass(frozen=True)
class Credits:
    """The account's balance as the provider reports it."""

    remaining: float
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


# Errors -------------------------------------------------------------------


class ProviderErrorDetails(Exception):
    """What every provider error carries, whatever built-in error it also is.

    The provider's name, the HTTP status, the provider's own error code and
    words, and its request id (quote it to the provider's support).
    """

    #: The stable code stored on a failed job (see :mod:`django_tryon.errors`).
    job_error_code = "provider_error"
    #: Whether trying again later may succeed.
    transient = False

    def __init__(
        self,
        message: str = "",
        *,
        provider: str = "",
        status_code: int | None = None,
        code: str = "",
        request_id: str = "",
        response: Any = None,
        in_doubt: bool = False,
        job_error_code: str | None = None,
    ) -> None:
        # The provider's words may quote the request, its key included.
        message, code = redact(message), redact(code)
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.response = response
        #: Set when the request may have reached the provider before it failed
        #: (a read timeout, a connection dropped after sending): a submit that
        #: fails so may have created a task anyway.
        self.in_doubt = in_doubt
        if job_error_code:
            self.job_error_code = job_error_code

    @property
    def shopper_fault(self) -> bool:
        """Whether the shopper's photo is the cause: the job's code says (see
        :func:`django_tryon.errors.is_shopper_fault`)."""
        return is_shopper_fault(self.job_error_code)

    def __str__(self) -> str:
        parts = [self.message or self.__class__.__name__]
        details = []
        if self.provider:
            details.append(self.provider)
        if self.status_code:
            details.append(f"HTTP {self.status_code}")
        if self.code:
            details.append(self.code)
        if self.request_id:
            details.append(f"request_id {self.request_id}")
        if details:
            parts.append(f"({', '.join(details)})")
        return " ".join(parts)


class TryOnError(ProviderErrorDetails):
    """A provider call that did not give what was asked."""


class TransientError(TryOnError):
    """The provider may answer differently later: retry with backoff."""

    transient = True
    job_error_code = "provider_unavailable"


class ProviderTimeoutError(TransientError, TimeoutError):
    """No answer within the timeout."""


class ProviderConnectionError(TransientError, ConnectionError):
    """The connection failed or was dropped."""


class ProviderUnavailableError(TransientError):
    """The provider answered 5xx."""


class RateLimitedError(TransientError):
    """Too many requests (HTTP 429, EXCEEDING_LIMITS): slow down."""

    def __init__(
        self, message: str = "", *, retry_after: float | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InvalidResponseError(TransientError, ValueError):
    """The provider answered something that is not its documented shape."""


class PermanentError(TryOnError):
    """Asking again will not help: the job fails."""


class InvalidPhotoError(PermanentError, ValueError):
    """The provider refused the shopper's photo (no face, blurry, too large...)."""

    job_error_code = "invalid_photo"


class RequestRejectedError(PermanentError, ValueError):
    """The provider refused the request's parameters."""

    job_error_code = "request_rejected"


class OutOfCreditsError(PermanentError):
    """The provider account has no credits left: staff must top it up."""

    job_error_code = "out_of_credits"


class TaskFailedError(PermanentError):
    """The provider took the task but could not make a picture."""

    job_error_code = "task_failed"


class ResultFilteredError(PermanentError):
    """The provider made a picture but withheld it: its safety filter found it
    objectionable. Not a fault of the call, nor (surely) of the shopper's photo."""

    job_error_code = "result_filtered"


class ConfigurationError(ProviderErrorDetails, ImproperlyConfigured):
    """The provider refused the account (bad API key, locked user).

    Deliberately not a :class:`TryOnError`, so that no retry loop that catches
    provider errors swallows it.
    """

    job_error_code = "configuration"


# Settings -----------------------------------------------------------------

_UNSET: Any = object()


def backend_setting(name: str, kwargs: dict[str, Any], default: Any = _UNSET) -> Any:
    """One provider setting: the keyword argument if given, else ``TRYON[name]``.

    ``kwargs`` holds the backend's keyword arguments, by lowercase name; the one
    read is taken out of it, so what is left over is unknown. A keyword given
    as ``None`` means the backend's own ``default``, never ``TRYON``'s value: a
    backend built for another provider (a fallback) does not inherit the
    primary's key or address by accident. With no keyword, ``TRYON[name]`` is
    read (with its documented default), then ``default``; without one, a
    missing value is an error.
    """
    keyword = name.lower()
    value = kwargs.pop(keyword) if keyword in kwargs else getattr(tryon_settings, name)
    if value is None:
        if default is _UNSET:
            raise ImproperlyConfigured(f"The try-on backend needs TRYON[{name!r}].")
        return default
    return value


#: How an option's type is named in an error a shop developer reads.
KIND_NAMES = {bool: "True or False", int: "a whole number", float: "a number", str: "text"}


@dataclass(frozen=True)
class Option:
    """One of a backend's own options (a key of ``TRYON["OPTIONS"]``)."""

    default: Any
    #: The values allowed; empty: any value of ``kind``.
    choices: tuple[Any, ...] = ()
    kind: type | tuple[type, ...] = str
    help: str = ""

    def problem(self, value: Any) -> str:
        """Why ``value`` is not allowed, or ``""``. ``None`` always is: it leaves
        the choice to the provider (the option is not sent)."""
        if value is None:
            return ""
        if self.choices:
            if value in self.choices and type(value) is type(self.choices[0]):
                return ""
            return "must be one of " + ", ".join(repr(choice) for choice in self.choices)
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        wanted = "must be " + " or ".join(KIND_NAMES.get(k, k.__name__) for k in kinds)
        if isinstance(value, bool) and bool not in kinds:
            return wanted
        if not isinstance(value, kinds):
            return wanted
        if isinstance(value, str) and not value.strip():
            return "must not be empty"
        return ""


# The interface ------------------------------------------------------------


class TryOnBackend:
    """Base class of try-on providers.

    Subclasses set :attr:`provider_name` and implement :meth:`submit` and
    :meth:`query`. Push providers also implement :meth:`parse_callback`.

    Settings come from ``TRYON`` (``API_KEY``, ``BASE_URL``, ``OPTIONS``,
    ``CONNECT_TIMEOUT``, ``READ_TIMEOUT``), each overridden by the keyword
    argument of the same name in lowercase (see :func:`backend_setting`). The
    provider's own defaults belong to the class: :attr:`default_base_url`, and
    :attr:`known_options` (each an :class:`Option`), whose defaults
    ``TRYON["OPTIONS"]`` overrides key by key into :attr:`options`, once checked
    (unknown keys and wrong values are refused, by the system checks at
    start-up and here).
    """

    provider_name = ""
    #: Whether a missing ``API_KEY`` is a configuration error (system check E001).
    requires_api_key = True
    #: Whether the provider calls the shop back instead of being polled.
    supports_callbacks = False
    #: The provider's own address, used unless ``TRYON["BASE_URL"]`` is set.
    default_base_url = ""
    #: The backend's own options, by name (``TRYON["OPTIONS"]`` sets their values).
    known_options: ClassVar[Mapping[str, Option]] = {}
    #: The shortest read timeout (seconds) the provider's calls need: a provider
    #: that answers a submit with the picture itself (tens of seconds) raises
    #: ``TRYON["READ_TIMEOUT"]`` to this. A ``read_timeout`` keyword is taken as given.
    min_read_timeout: ClassVar[float] = 0.0

    def __init__(self, **kwargs: Any) -> None:
        # Stripped: a key read from a file or a secret mount often ends in a
        # newline, and Requests refuses such a header quoting its value (the key).
        self.api_key: str = api_key(backend_setting("API_KEY", kwargs, ""))
        self.base_url: str = str(
            backend_setting("BASE_URL", kwargs, "") or self.default_base_url
        ).rstrip("/")
        given = backend_setting("OPTIONS", kwargs, {})
        problems = self.option_problems(given)
        if problems:
            raise ImproperlyConfigured(problems[0])
        #: The options' values: the defaults, then ``TRYON["OPTIONS"]``.
        self.options: dict[str, Any] = {
            name: option.default for name, option in self.known_options.items()
        }
        self.options.update(given)
        read_timeout_given = kwargs.get("read_timeout") is not None
        read_timeout = float(backend_setting("READ_TIMEOUT", kwargs))
        if not read_timeout_given:
            read_timeout = max(read_timeout, self.min_read_timeout)
        #: ``(connect, read)`` seconds of every call to the provider.
        self.timeout = (float(backend_setting("CONNECT_TIMEOUT", kwargs)), read_timeout)
        if kwargs:
            raise TypeError(
                f"{type(self).__name__} got unexpected keyword arguments: "
                + ", ".join(sorted(kwargs))
            )

    @classmethod
    def dependency_problem(cls) -> str:
        """What this backend lacks to run here (a library of an extra), or ``""``."""
        return ""

    @classmethod
    def option_problems(cls, given: Any) -> list[str]:
        """What is wrong with ``given`` as this backend's ``OPTIONS``, one sentence each."""
        name = cls.__name__
        if not isinstance(given, Mapping):
            return [f"TRYON['OPTIONS'] must be a dict of {name}'s options, not {given!r}."]
        problems = []
        for key, value in given.items():
            option = cls.known_options.get(key)
            if option is None:
                known = ", ".join(sorted(cls.known_options)) or "none"
                problems.append(
                    f"Invalid setting {key!r} for {name} in TRYON['OPTIONS'] "
                    f"(its options: {known})."
                )
                continue
            problem = option.problem(value)
            if problem:
                problems.append(
                    f"Invalid value {value!r} for {name}'s option {key!r} in "
                    f"TRYON['OPTIONS']: it {problem}."
                )
        return problems

    def submit(self, request: TryOnRequest, callback_url: str = "") -> Submission:
        """Start a try-on task and return its id (and its state if final already).

        ``callback_url``, when given to a backend that :attr:`supports_callbacks`,
        is where the provider is asked to report the task's end; others ignore it.

        Raise :class:`TryOnError` subclasses or :class:`ConfigurationError`.
        An error raised when the request may have reached the provider (a read
        timeout, a connection dropped after sending) must have ``in_doubt``
        set, so the worker does not submit twice a task the provider may
        already have.
        """
        raise NotImplementedError

    def query(self, task_id: str) -> TaskState:
        """Return the task's current state. Raise like :meth:`submit`."""
        raise NotImplementedError

    def parse_callback(self, request: HttpRequest) -> tuple[str, TaskState]:
        """Turn a provider's callback (a Django ``HttpRequest``) into a state.

        Only push providers implement this. It checks the request strictly (its
        size, its shape, and the provider's signature where it has one) and
        raises :class:`RequestRejectedError` for anything else. Authenticating
        the caller by a secret in the URL is the view's work.

        A task done whose delivery does not carry its result (fal leaves out an
        output too large to send) is a succeeded state with neither
        ``result_url`` nor ``result_content``: the worker asks for the result at
        once. A signature that cannot be checked now (the provider's keys out of
        reach) raises :class:`ProviderUnavailableError`: the view asks the
        provider to deliver again.
        """
        raise NotImplementedError(f"{self.provider_name} does not call back")

    def cancel(self, task_id: str) -> None:
        """Ask the provider to stop task ``task_id``: the job was canceled.

        Best effort, and by default nothing (AILabAPI and FASHN have no way to
        recall a task). A provider that can stop a queued task (fal) saves the
        shop its price. Called off the request thread after the cancel is
        committed (see :mod:`django_tryon.recall`); raise like :meth:`query`.
        """

    def credits(self) -> Credits | None:
        """The account's remaining credits, or ``None`` if the provider cannot say."""
        return None

    def result_hosts(self) -> set[str]:
        """Hosts results may be downloaded from besides the ``RESULT_HOSTS`` setting."""
        return set()

    def close(self) -> None:
        """Release connections. Called when the worker stops."""
