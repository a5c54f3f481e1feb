"""The shared steps of providers spoken to over HTTP with JSON answers.

:class:`HTTPBackend` holds what every such provider needs, so a provider's
module holds only what differs (its paths, its fields, its error table):

- one :class:`requests.Session` per thread, its connections kept alive, the
  provider's credentials in its headers (:meth:`HTTPBackend.auth_headers`);
- the timeouts of the ``TRYON`` setting;
- redirects never followed, so the credentials never go where an answer
  points (a 3xx is refused like any other unexpected answer);
- the answer read with a size cap and parsed as JSON (:mod:`.answers`); an
  answer that cannot be read after a request that sent a body (a submit) is
  *in doubt*: the task may exist, so the worker does not submit it again;
- the error envelope: the HTTP status mapped to an error class, with the
  provider's own code and request id (:meth:`HTTPBackend.error_for`), and
  connection errors that name the URL tried, never the credentials.
"""

import base64
import json
import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from ..deadlines import deadline
from ..http import EnvironmentCachingSession, PoolKeepingAdapter
from .answers import MAX_ANSWER_BYTES, read_json_answer
from .base import (
    ConfigurationError,
    ImageInput,
    InvalidResponseError,
    ProviderConnectionError,
    ProviderErrorDetails,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitedError,
    RequestRejectedError,
    TryOnBackend,
    TryOnError,
)


class HTTPBackend(TryOnBackend):
    """A provider spoken to over HTTP, answering JSON.

    Subclasses set :attr:`default_base_url`, implement :meth:`auth_headers`,
    send their requests with :meth:`call` and map the provider's error
    answers in :meth:`error_for` (and :meth:`is_success` where a 2xx answer
    can still be an error).
    """

    #: The largest answer read (bytes); larger is an invalid answer.
    max_answer_bytes = MAX_ANSWER_BYTES

    def __init__(self, *, pool_size: int = 10, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # the API key comes stripped (TryOnBackend)
        self._pool_size = pool_size
        # One session per thread: connections are reused, and no two threads
        # share a session's connection pool state.
        self._local = threading.local()

    # What a provider says --------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        """The headers that carry the credentials, sent with every request."""
        return {}

    def request_headers(self) -> dict[str, str]:
        """Headers made anew for each request (a token that expires); none by default.

        Made within the call's deadline, before the request is sent: a
        provider error raised here is never in doubt.
        """
        return {}

    def is_success(self, status: int, answer: dict[str, Any]) -> bool:
        """Whether a JSON object answered with ``status`` is a success."""
        return 200 <= status < 300

    def error_for(
        self, status: int, answer: dict[str, Any], response: requests.Response
    ) -> Exception:
        """The error an answer that is not a success stands for.

        ``answer`` is the JSON object answered, or ``{}`` if the answer was
        not one. By default, from the HTTP status alone
        (:meth:`error_for_status`); providers look at their own codes first.
        """
        return self.error_for_status(status, response=response)

    # Sessions ----------------------------------------------------------------

    @property
    def session(self) -> EnvironmentCachingSession:
        """This thread's session (made on first use)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = EnvironmentCachingSession(
                PoolKeepingAdapter(pool_connections=1, pool_maxsize=self._pool_size)
            )
            session.headers.update(self.auth_headers())
            self._local.session = session
        return session

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None

    # Calls -------------------------------------------------------------------

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """Send a request to ``BASE_URL + path`` and return the JSON object answered.

        ``kwargs`` are those of :meth:`requests.Session.request` (``params``,
        ``json``, ``data``, ``files``). Raise the error the answer stands for.
        """
        url = self.base_url + path
        sends_body = any(kwargs.get(name) is not None for name in ("data", "files", "json"))
        # A read timeout bounds each wait for bytes, not the answer: a provider (or a
        # proxy) sending a byte just within it would hold the worker's thread past the
        # time its lease keeps for the call. The whole exchange gets that time.
        budget = self.call_timeout
        with deadline(budget) as limit:
            # Made before the request (a token that expires) and failing with the
            # provider's own errors: whatever cut them off, nothing was sent.
            headers = self.request_headers()
            if headers:
                kwargs["headers"] = headers
            try:
                return self._exchange(method, url, sends_body, **kwargs)
            except (ProviderConnectionError, ProviderTimeoutError, InvalidResponseError) as err:
                if not limit.expired:
                    raise
                raise self.error(
                    ProviderTimeoutError,
                    f"The provider's answer took longer than {budget:g} s in all "
                    f"({_shown(url)}) and was cut off.",
                    in_doubt=sends_body,
                ) from err

    @property
    def call_timeout(self) -> float:
        """The longest one call may take in all (seconds): the connect and read
        timeouts together, what the worker's lease keeps for it."""
        connect, read = self.timeout
        return float(connect) + float(read)

    def _exchange(self, method: str, url: str, sends_body: bool, **kwargs: Any) -> dict[str, Any]:
        response = self._send(method, url, sends_body, **kwargs)
        status = response.status_code
        try:
            answer = read_json_answer(
                response,
                provider=self.provider_name,
                in_doubt=sends_body,
                max_bytes=self.max_answer_bytes,
            )
        except InvalidResponseError:
            if 200 <= status < 300:
                raise
            answer = None  # an error page: its status says what happened
        finally:
            response.close()
        if not isinstance(answer, dict):
            if 200 <= status < 300:
                raise self.error(
                    InvalidResponseError,
                    "The provider's answer is not a JSON object.",
                    status_code=status,
                    response=response,
                    in_doubt=sends_body,
                )
            error = self.error_for(status, {}, response)
            # A gateway's own 5xx page may come after the provider took the task.
            if sends_body and status >= 500 and isinstance(error, TryOnError):
                error.in_doubt = True
            raise error
        if self.is_success(status, answer):
            return answer
        raise self.error_for(status, answer, response)

    def _send(self, method, url, sends_body, **kwargs):
        try:
            # Redirects are not followed (send_direct hands a 3xx back). Streamed,
            # so that the answer is read under a size cap (see call).
            return self.session.send_direct(
                method, url, timeout=self.timeout, stream=True, **kwargs
            )
        except requests.exceptions.ConnectTimeout as err:
            raise self.error(
                ProviderTimeoutError, f"Could not connect to the provider in time ({_shown(url)})."
            ) from err
        except requests.exceptions.Timeout as err:
            raise self.error(
                ProviderTimeoutError,
                f"The provider did not answer in time ({_shown(url)}).",
                in_doubt=sends_body,
            ) from err
        except requests.exceptions.ConnectionError as err:
            # Refused before anything was sent is safe to repeat; a connection
            # dropped after the request went out may have created a task.
            refused = connection_refused(err)
            raise self.error(
                ProviderConnectionError,
                f"Could not reach the provider at {_shown(url)}."
                if refused
                else f"The provider dropped the connection ({_shown(url)}).",
                in_doubt=sends_body and not refused,
            ) from err
        except requests.exceptions.RequestException as err:
            # The exception's own words may quote a header's value: the credentials.
            raise self.error(
                ProviderConnectionError,
                f"The request to the provider failed ({_shown(url)}, {type(err).__name__}).",
                in_doubt=sends_body,
            ) from err

    # The error envelope ------------------------------------------------------

    def error(self, error_class: type[ProviderErrorDetails], message: str, **details: Any) -> Any:
        """An ``error_class`` naming this provider."""
        return error_class(message, provider=self.provider_name, **details)

    def error_for_status(
        self,
        status: int,
        *,
        code: str = "",
        message: str = "",
        request_id: str = "",
        response: requests.Response | None = None,
    ) -> Exception:
        """The error an HTTP status stands for when the provider's code says no more.

        401 and 403: the key is refused (:class:`ConfigurationError`); 429: slow
        down (:class:`RateLimitedError`, with ``Retry-After``); 5xx: the provider
        is unavailable; anything else (a 3xx included): the request is refused.
        """
        message = message or f"HTTP {status}"
        details: dict[str, Any] = {"status_code": status, "code": code, "request_id": request_id}
        if status in (401, 403):
            return self.error(
                ConfigurationError, f"The provider refused the API key: {message}", **details
            )
        if status == 429:
            return self.error(
                RateLimitedError,
                message,
                retry_after=retry_after(response),
                response=response,
                **details,
            )
        if status >= 500:
            return self.error(ProviderUnavailableError, message, response=response, **details)
        return self.error(RequestRejectedError, message, response=response, **details)


#: The longest task id a provider may name (a stored job's ``provider_task_id``).
MAX_TASK_ID_LENGTH = 200


def data_uri(image: ImageInput) -> str:
    """An image as providers take it inline in JSON: a base64 data URI with its type."""
    content_type = image.content_type if image.content_type.startswith("image/") else "image/jpeg"
    return f"data:{content_type};base64,{base64.b64encode(image.content).decode('ascii')}"


def is_task_id(value: Any) -> bool:
    """Whether ``value`` may be a provider's task id: short printable text, no slash
    (it goes into URL paths)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_TASK_ID_LENGTH
        and value.isprintable()
        and "/" not in value
    )


def field_text(value: Any) -> str:
    """A field of an answer as text for an error: strings as they are, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)[:200]


def parse_json_object(body: bytes) -> dict[str, Any] | None:
    """``body`` as a JSON object, or ``None`` if it is not one (or cannot be parsed at all)."""
    try:
        answer = json.loads(body)
    except Exception:  # RecursionError, UnicodeDecodeError, ValueError, ...
        return None
    return answer if isinstance(answer, dict) else None


def retry_after(response: requests.Response | None) -> float | None:
    """The seconds of a ``Retry-After`` header, if it gives a number."""
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    if seconds is None or seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def connection_refused(err: BaseException) -> bool:
    """Whether ``err`` comes from a connection refused (so nothing was sent)."""
    seen = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return True
        for arg in getattr(current, "args", ()):
            if isinstance(arg, BaseException) and connection_refused(arg):
                return True
        current = current.__cause__ or current.__context__
    return "Connection refused" in str(err)


def _shown(url: str) -> str:
    """``url`` as an error may show it: no user, password or query string."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
