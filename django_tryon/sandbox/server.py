"""The sandbox's HTTP server: a provider's endpoints on loopback, plus a control endpoint.

It speaks AILabAPI's protocol (``protocol="ailab"``, the default), FASHN's
(``protocol="fashn"``) or fal's (``protocol="fal"``); see ``docs/sandbox.md``. With AILabAPI's:

- ``POST /api/portrait/editing/try-on-clothes``: submit a try-on task.
- ``GET /api/common/query-async-task-result?task_id=...``: a task's state.
- ``GET /api/common/query-credits``: the account's balance.

With FASHN's: ``POST /v1/run`` (``?webhook_url=`` delivers the task's end),
``GET /v1/status/<id>``, ``GET /v1/credits``. With fal's: ``POST /<model id>``
(``?fal_webhook=`` delivers the request's end, signed), ``GET|PUT
/<app>/requests/<id>[/status|/cancel]``, ``GET /.well-known/jwks.json``. With all:

- ``GET /results/<token>.jpg``: a finished task's picture.
- ``GET|POST /_sandbox/control``, ``POST /_sandbox/reset``: change the options
  and read the counters while the sandbox runs.

A thread per connection (HTTP/1.1, kept alive), so slow answers of one client
never hold up another; the result picture is made once, on first download.

A web page the developer visits can send requests to the sandbox too. Every
request must name the sandbox by a ``Host`` it answers to (a loopback name or
address, its own, or one of ``allowed_hosts``), so a page whose name was
rebound to 127.0.0.1 reaches nothing. The control endpoints, which change
the sandbox, also refuse a request a browser sent from another origin
(``Origin``, ``Sec-Fetch-Site``) and a body that is not JSON (a cross-site
form can send no JSON). The provider endpoints need the API key header, which
a cross-site page cannot send without a CORS preflight the sandbox never
grants, and result pictures are named by unguessable tokens.
"""

import contextlib
import ipaddress
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import compositing, protocol
from .ailab import AILabWire
from .fal import FalWire
from .fashn import FashnWire
from .faults import FaultInjector, Options
from .protocol import PROTOCOLS, ApiError, UnknownTaskError
from .stats import Counters
from .store import TaskStore
from .webhooks import WebhookSender

CONTROL_PATH = "/_sandbox/control"
RESET_PATH = "/_sandbox/reset"
RESULTS_PREFIX = "/results/"
# Bodies over this are refused unread: twice the provider's limit per image, and headroom.
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_CONTROL_BYTES = 64 * 1024
LOOPBACK_NAMES = {"localhost"}
WILDCARD_HOSTS = {"0.0.0.0", "::", ""}
# What a browser's fetch metadata says of a request the developer made themselves.
OWN_FETCH_SITES = {"same-origin", "none"}


def is_loopback(host):
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NotLoopbackError(ValueError):
    """The sandbox was asked to listen beyond loopback without ``allow_remote``."""


class _Drop(Exception):
    """Close the connection without answering."""


class SandboxServer:
    """A try-on provider on loopback, speaking ``protocol`` (``"ailab"`` or ``"fashn"``).

    ``api_key=None`` accepts any non-empty key; a string accepts only itself.
    ``protocol`` picks the wire format (a :class:`~.ailab.AILabWire` or a
    :class:`~.fashn.FashnWire`); the tasks, faults and counters are the same.
    Every field of :class:`~django_tryon.sandbox.faults.Options` may be passed
    as a keyword argument and changed later with :meth:`configure` or the
    control endpoint. Use as a context manager, or call :meth:`start` (serves
    from a background thread) and :meth:`stop`.
    """

    def __init__(
        self,
        host="127.0.0.1",
        port=0,
        *,
        api_key=None,
        credits=1_000_000,
        seed=None,
        allow_remote=False,
        allowed_hosts=(),
        log=None,
        protocol="ailab",
        **options,
    ):
        if not allow_remote and not is_loopback(host):
            raise NotLoopbackError(
                f"The sandbox listens on loopback only; {host!r} is not a loopback address."
            )
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}.")
        self.protocol = protocol
        # A webhook goes where the submit says: on loopback only, unless allowed.
        callback_allowed = lambda host: allow_remote or is_loopback(host)  # noqa: E731
        self.wire: Any
        if protocol == "fashn":
            self.wire = FashnWire(callback_allowed=callback_allowed)
        elif protocol == "fal":
            self.wire = FalWire(callback_allowed=callback_allowed)
        else:
            self.wire = AILabWire()
        self.api_key = api_key
        # Names besides loopback's and the address listened on (a container's name).
        self.allowed_hosts = {name.lower() for name in allowed_hosts}
        if host not in WILDCARD_HOSTS:
            self.allowed_hosts.add(host.lower())
        self.options = Options()
        self.options.update(options)
        self._initial_options = self.options.as_dict()
        self.faults = FaultInjector(self.options, seed=seed)
        self.counters = Counters()
        self.store = TaskStore(credits=credits)
        self.webhooks = WebhookSender(self.options, self.faults, self.counters)
        self.log = log
        self._plain_result = None
        self.httpd = _HTTPServer((host, port), _Handler, self)
        self.host = host
        self.port = self.httpd.server_address[1]
        self._thread = None

    @property
    def url(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # Running ----------------------------------------------------------------

    def start(self):
        """Serve from a daemon thread; return ``self``."""
        self._thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="tryon-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self):
        """Serve on the calling thread until :meth:`stop` (or KeyboardInterrupt)."""
        self.httpd.serve_forever(poll_interval=0.2)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.webhooks.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # Control ------------------------------------------------------------------

    def configure(self, **changes):
        """Change options now (``credits`` sets the balance); raise ``ValueError`` if invalid."""
        credits = changes.pop("credits", None)
        if credits is not None and (
            isinstance(credits, bool) or not isinstance(credits, int) or credits < 0
        ):
            raise ValueError(f"credits must be a whole number >= 0, not {credits!r}.")
        self.options.update(changes)
        if credits is not None:
            self.store.set_credits(credits)

    def reset(self):
        """Forget every task and count, restore the options and credits the sandbox started with."""
        self.options.update(self._initial_options)
        self.webhooks.clear()
        self.store.clear()
        self.counters.reset()
        self.faults.rate_limiter.reset()

    def stats(self):
        """The counters (see :class:`~django_tryon.sandbox.stats.Counters`)."""
        return self.counters.snapshot()

    def state(self):
        return {
            "protocol": self.protocol,
            "options": self.options.as_dict(),
            "credits": self.store.credits,
            "tasks": len(self.store),
            "counters": self.stats(),
        }

    def answers_to(self, host_header):
        """Whether a request whose ``Host`` is ``host_header`` is meant for this sandbox."""
        try:
            host = urlsplit(f"//{host_header}").hostname or ""
        except ValueError:
            return False
        return is_loopback(host) or host in self.allowed_hosts

    # The provider's behaviour ----------------------------------------------------

    def check_key(self, key):
        if not key or (self.api_key is not None and key != self.api_key):
            raise ApiError("ERROR_APPLICATIONS_NOT_EXISTS")

    def inject_faults(self, kind):
        """Raise the fault this request gets, if any; return whether to drop after answering."""
        options, faults = self.options, self.faults
        if not faults.rate_limiter.allow(options.max_rps):
            self.counters.fault("max_rps")
            raise ApiError("EXCEEDING_LIMITS")
        if not faults.applies_to(kind):
            return False
        if options.latency:
            self.counters.fault("latency")
            time.sleep(options.latency)
        drop = faults.chance(options.drop)
        if drop:
            self.counters.fault("drop")
            if options.drop_phase == "before" or kind != "submit":
                raise _Drop
        if faults.chance(options.rate_limited):
            self.counters.fault("rate_limited")
            raise ApiError("EXCEEDING_LIMITS")
        if faults.chance(options.server_errors):
            self.counters.fault("server_error")
            raise ApiError(protocol.SERVER_ERRORS[faults.server_error_status()])
        return drop

    def submit(self, key, headers, query, body, base_url, path=""):
        composite = self.options.result_mode == "composite"
        if self.store.credits <= 0:
            raise ApiError("ERROR_NOT_ENOUGH_CREDITS")
        wire = self.wire
        submission = wire.read_submission(headers, query, body, decode=composite, path=path)
        failure = ("", "")
        if self.faults.chance(self.options.no_face):
            self.counters.fault("no_face")
            if wire.refuses_photos_at_submit:
                raise ApiError("ERROR_NO_FACE_IN_FILE")
            failure = wire.no_person  # found once the task runs, as the provider does
        fails = self.faults.chance(self.options.task_failures)
        if fails:
            self.counters.fault("task_failed")
        task = self.store.create(
            api_key=key,
            submission=submission,
            processing_time=self.options.processing_time,
            fails=fails,
            keep_images=composite and not submission.failure[0],
            result_ttl=self.options.result_ttl,
            failure=failure,
        )
        self.counters.task_created(submission.person_digest)
        if task.webhook_url:
            body_of = getattr(wire, "webhook_body", None)
            if body_of is None:  # FASHN: the webhook's body is the status answer
                self.webhooks.schedule(task, lambda task: self.status_body(task, base_url))
            else:  # fal: the result, signed
                self.webhooks.schedule(
                    task,
                    lambda task: self._with_result(task, base_url, body_of),
                    headers_of=wire.webhook_headers,
                )
        return task

    def _with_result(self, task, base_url, answer_of):
        """``answer_of(task, status, url)`` for ``task`` as it stands now."""
        status = task.status(self.store.clock())
        url = self.result_url(task, base_url) if status == protocol.TASK_SUCCEEDED else ""
        return answer_of(task, status, url)

    def result_answer(self, task, base_url):
        """``(HTTP status, body)`` of a request's result (fal)."""
        return self._with_result(task, base_url, self.wire.result_answer)

    def cancel(self, task):
        """``(HTTP status, body)`` of a cancel (fal): a running task ends now."""
        if self.store.cancel(task, ("request_cancelled", "The request was cancelled.")):
            self.counters.fault("canceled")
            return 202, {"status": "CANCELLATION_REQUESTED"}
        return 400, {"status": "ALREADY_COMPLETED"}

    def status_body(self, task, base_url, request_id=None):
        """What a query of ``task`` answers now (a webhook's body, for FASHN)."""
        now = self.store.clock()
        status = task.status(now)
        url = self.result_url(task, base_url) if status == protocol.TASK_SUCCEEDED else ""
        request_id = request_id or protocol.new_request_id()
        return self.wire.query_answer(request_id, task, status, url, now)

    def result_url(self, task, base_url):
        return f"{base_url}{RESULTS_PREFIX}{task.token}.jpg"

    def query(self, key, task_id, base_url):
        if not task_id:
            raise ApiError("MISSING_PARAMETERS", "Missing parameter: task_id.")
        task = self.store.get(task_id, key, self.options.result_ttl)
        if task is None:
            raise UnknownTaskError()
        return task

    def result(self, token):
        """The picture of the task with ``token``, or ``None`` (404)."""
        task = self.store.by_token(token, self.options.result_ttl)
        if task is None:
            return None
        with task.lock:
            if not task.result:
                if not task.person_image:  # the "plain" result mode kept no uploads
                    return self.plain_result()
                task.result = compositing.try_on_jpeg(
                    task.person_image, task.clothes_image, task.clothes_type
                )
                # The picture is made: the uploads are not needed any more.
                task.person_image = task.clothes_image = b""
            return task.result

    def plain_result(self):
        if self._plain_result is None:
            self._plain_result = compositing.plain_result_jpeg()
        return self._plain_result


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Load tests open many connections at once: do not refuse them at accept time.
    request_queue_size = 1024

    def __init__(self, address, handler, sandbox):
        self.sandbox = sandbox
        host = address[0]
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "tryon-sandbox"
    sys_version = ""
    # Idle kept-alive connections are closed after this many seconds.
    timeout = 120
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's
    # algorithm and the client's delayed ACK add ~40 ms to every kept-alive answer.
    disable_nagle_algorithm = True

    @property
    def sandbox(self):
        return self.server.sandbox

    def setup(self):
        super().setup()
        self.server.sandbox.counters.connection()

    def log_message(self, format, *args):
        if self.sandbox.log is not None:
            self.sandbox.log(f"{self.address_string()} {format % args}")

    # Routing -------------------------------------------------------------------

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_PUT(self):
        self._route("PUT")

    def _route(self, method):
        parts = urlsplit(self.path)
        path = parts.path
        refusal = self._refusal(method, path)
        if refusal is not None:
            self.sandbox.counters.request("refused")
            return self._json(refusal[0], {"error": refusal[1]}, close=True)
        try:
            kind = self.sandbox.wire.kind(method, path)
            if kind == "jwks":  # public: the key fal's webhooks are checked with
                self.sandbox.counters.request(kind)
                self._json(200, self.sandbox.wire.jwks())
            elif kind is not None:
                self._api(kind, parts)
            elif path.startswith(RESULTS_PREFIX) and method == "GET":
                self._download(path[len(RESULTS_PREFIX) :])
            elif path == CONTROL_PATH:
                self._control(method)
            elif path == RESET_PATH and method == "POST":
                if self._read_body(MAX_CONTROL_BYTES) is None:
                    self.close_connection = True
                self.sandbox.reset()
                self._json(200, self.sandbox.state())
            else:
                unread = self._read_body(MAX_BODY_BYTES) is None
                self.sandbox.counters.request("other")
                self._error(
                    ApiError("ERROR_AI_NOT_EXISTS", f"No such API: {method} {path}."),
                    close=unread,
                )
        except _Drop:
            self._drop()

    def _refusal(self, method, path):
        """``(status, reason)`` for a request the sandbox must not answer, else ``None``."""
        host = self.headers.get("Host", "")
        if not self.sandbox.answers_to(host):
            return 403, (
                f"This sandbox does not answer to the host {host!r}: use 127.0.0.1 or "
                "localhost (or start it with --allowed-host)."
            )
        if path not in (CONTROL_PATH, RESET_PATH) or method != "POST":
            return None
        origin = self.headers.get("Origin")
        if origin is not None and not self._own_origin(origin):
            return 403, f"Changes from a page of another origin ({origin}) are refused."
        site = self.headers.get("Sec-Fetch-Site")
        if site is not None and site not in OWN_FETCH_SITES:
            return 403, f"Changes sent by a {site} page are refused."
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        has_body = self.headers.get("Content-Length", "0") not in ("", "0")
        if has_body and content_type != "application/json":
            return 415, "Send the changes as JSON, with Content-Type: application/json."
        return None

    def _own_origin(self, origin):
        parts = urlsplit(origin)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return False
        return (
            parts.scheme == "http"
            and self.sandbox.answers_to(parts.netloc)
            and port == self.sandbox.port
        )

    # The provider's API -----------------------------------------------------------

    def _api(self, kind, parts):
        sandbox = self.sandbox
        sandbox.counters.request(kind)
        body = self._read_body(MAX_BODY_BYTES) if kind == "submit" else b""
        if body is None:
            return self._error(
                ApiError("FILE_SIZE_EXCEEDS_LIMIT", "The request body is too large."),
                close=True,
            )
        wire = sandbox.wire
        key = wire.api_key(self.headers)
        query = parse_qs(parts.query)
        request_id = protocol.new_request_id()
        try:
            sandbox.check_key(key)
            drop_after = sandbox.inject_faults(kind)
            status = 200
            if kind == "submit":
                task = sandbox.submit(
                    key, self.headers, query, body, self._base_url(), path=parts.path
                )
                answer = wire.submit_answer(request_id, task)
            elif kind in ("query", "result", "cancel"):
                task = sandbox.query(key, wire.task_id(parts.path, query), self._base_url())
                if kind == "query":
                    answer = sandbox.status_body(task, self._base_url(), request_id)
                elif kind == "result":
                    status, answer = sandbox.result_answer(task, self._base_url())
                else:
                    status, answer = sandbox.cancel(task)
            else:
                answer = wire.credits_answer(request_id, sandbox.store.credits)
            if isinstance(answer, tuple):  # fal's status: 202 until the request is done
                status, answer = answer
        except ApiError as error:
            return self._error(error, request_id)
        sandbox.counters.accept(kind)
        if drop_after:
            raise _Drop
        self._json(status, answer)

    def _download(self, name):
        sandbox = self.sandbox
        sandbox.counters.request("download")
        token = name.removesuffix(".jpg")
        if sandbox.faults.chance(sandbox.options.result_404):
            sandbox.counters.fault("result_404")
            return self._send(404, b"Not found\n", "text/plain; charset=utf-8")
        body = sandbox.result(token)
        if body is None:
            return self._send(404, b"Not found\n", "text/plain; charset=utf-8")
        sandbox.counters.accept("download")
        self._send(200, body, "image/jpeg")

    def _control(self, method):
        sandbox = self.sandbox
        if method == "POST":
            body = self._read_body(MAX_CONTROL_BYTES)
            if body is None:
                return self._json(413, {"error": "The body is too large."}, close=True)
            try:
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("The body must be a JSON object of options.")
                sandbox.configure(**changes)
            except RecursionError:
                return self._json(400, {"error": "The body is nested too deep to be options."})
            except ValueError as err:
                return self._json(400, {"error": str(err)})
        self._json(200, sandbox.state())

    # Plumbing --------------------------------------------------------------------

    def _base_url(self):
        host = self.headers.get("Host") or f"{self.sandbox.host}:{self.sandbox.port}"
        return f"http://{host}"

    def _read_body(self, limit):
        """The request body, or ``None`` if it is over ``limit`` (then left unread)."""
        declared = self.headers.get("Content-Length", "0")
        length = int(declared) if declared.isdigit() else 0
        if length > limit:
            return None
        return self.rfile.read(length) if length else b""

    def _error(self, error, request_id=None, close=False):
        status, answer, code = self.sandbox.wire.error(
            error, request_id or protocol.new_request_id()
        )
        self.sandbox.counters.error(code)
        self._json(status, answer, close=close)

    def _json(self, status, payload, close=False):
        self._send(status, json.dumps(payload).encode(), "application/json", close=close)

    def _send(self, status, body, content_type, close=False):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _drop(self):
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
