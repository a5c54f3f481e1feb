"""The sandbox's webhook deliveries: a task's end reported to the URL its submit gave.

As FASHN documents it: when a prediction ends, its status body is POSTed (as
JSON) to the ``webhook_url`` (fal: its result, signed, to ``fal_webhook``); a
delivery answered with anything but a 2xx (or not answered) is tried again, up
to five more times over about five minutes.
The faults make deliveries late, repeated or lost, so a shop can see that a
webhook is never the only way a job ends.
"""

import heapq
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from typing import Any
from urllib.parse import urlsplit

from ..deadlines import deadline, watch_socket
from .protocol import ApiError

#: After a failed attempt, the next waits this many retry intervals: with the
#: default interval of 5 s, 5, 15, 30, 60 and 180 s (about five minutes in all).
RETRY_STEPS = (1, 3, 6, 12, 36)
#: Seconds an attempt may take: each wait, and the whole attempt.
DELIVERY_TIMEOUT = 10.0


@dataclass(order=True)
class Delivery:
    due: float
    number: int
    url: str = field(compare=False)
    #: The task, and what makes its body: made when first due (the task has ended by then).
    task: Any = field(compare=False)
    body_of: Callable[[Any], dict] = field(compare=False)
    body: bytes = field(default=b"", compare=False)
    attempt: int = field(default=0, compare=False)
    #: Deliver it once more after it is accepted (the duplicate fault).
    again: bool = field(default=False, compare=False)
    #: The headers of a delivery of a body, made at each attempt (fal signs each one).
    headers_of: Callable[[Any, bytes], dict] | None = field(default=None, compare=False)


class WebhookSender:
    """Sends deliveries when they are due, from one background thread.

    ``body_of(task)`` makes a finished task's body at the time it is sent.
    """

    def __init__(self, options, faults, counters, clock=time.monotonic):
        self.options = options
        self.faults = faults
        self.counters = counters
        self.clock = clock
        self._queue: list[Delivery] = []
        self._numbers = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, name="tryon-sandbox-webhooks", daemon=True
        )
        self._thread.start()

    def schedule(self, task, body_of, headers_of=None):
        """Report ``task``'s end to its ``webhook_url`` once it ends (and the faults allow).

        ``headers_of(task, body)`` adds headers to each attempt (a signature)."""
        if not task.webhook_url:
            return
        if self.faults.chance(self.options.webhook_missing):
            self.counters.fault("webhook_missing")
            return
        due = task.finishes_at + self.options.webhook_delay
        if self.options.webhook_delay:
            self.counters.fault("webhook_late")
        again = self.faults.chance(self.options.webhook_duplicate)
        if again:
            self.counters.fault("webhook_duplicate")
        self._push(
            Delivery(
                due,
                next(self._numbers),
                task.webhook_url,
                task,
                body_of,
                again=again,
                headers_of=headers_of,
            )
        )

    def pending(self):
        with self._wake:
            return len(self._queue)

    def clear(self):
        with self._wake:
            self._queue.clear()

    def stop(self):
        with self._wake:
            self._stopped = True
            self._wake.notify_all()
        self._thread.join(timeout=DELIVERY_TIMEOUT + 1)

    # The thread ----------------------------------------------------------------

    def _push(self, delivery):
        with self._wake:
            heapq.heappush(self._queue, delivery)
            self._wake.notify_all()

    def _run(self):
        while True:
            with self._wake:
                while not self._stopped and (not self._queue or self._queue[0].due > self.clock()):
                    timeout = self._queue[0].due - self.clock() if self._queue else None
                    self._wake.wait(timeout)
                if self._stopped:
                    return
                delivery = heapq.heappop(self._queue)
            self._deliver(delivery)

    def _deliver(self, delivery):
        if not delivery.body:
            try:
                delivery.body = json.dumps(delivery.body_of(delivery.task)).encode()
            except Exception:  # a body that cannot be made: nothing to send, the thread goes on
                self.counters.webhook("gave_up")
                return
        delivery.attempt += 1
        self.counters.webhook("sent")
        headers = {}
        if delivery.headers_of is not None:
            try:
                headers = delivery.headers_of(delivery.task, delivery.body)
            except Exception:  # headers that cannot be made: nothing sent, the thread goes on
                self.counters.webhook("gave_up")
                return
        if _post(delivery.url, delivery.body, headers):
            self.counters.webhook("accepted")
            if delivery.again:
                delivery.again = False
                delivery.attempt = 0
                delivery.due = self.clock()
                self._push(delivery)
            return
        self.counters.webhook("refused")
        if delivery.attempt > len(RETRY_STEPS):
            self.counters.webhook("gave_up")
            return
        delivery.due = self.clock() + RETRY_STEPS[delivery.attempt - 1] * (
            self.options.webhook_retry_interval
        )
        self._push(delivery)


def check_callback_url(url, allowed, name):
    """``url`` if a call back may go there (``""`` if none was asked for); raise
    :class:`~django_tryon.sandbox.protocol.ApiError` naming the parameter ``name``."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 (a malformed port raises ValueError)
    except ValueError as err:
        raise ApiError("ERROR_INVALID_PARAMETER", f"{name} is not a URL.") from err
    if parts.scheme not in ("http", "https") or not host:
        raise ApiError("ERROR_INVALID_PARAMETER", f"{name} must be an http(s) URL.")
    if not allowed(host):
        raise ApiError(
            "ERROR_INVALID_PARAMETER",
            "The sandbox calls back loopback addresses only (see --allow-remote).",
        )
    return url


def _post(url, body, headers=None):
    """POST ``body`` to ``url`` in at most ``DELIVERY_TIMEOUT`` in all; whether a 2xx
    came back."""
    parts = urlsplit(url)
    connection_class = (
        _WatchedHTTPSConnection if parts.scheme == "https" else _WatchedHTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=DELIVERY_TIMEOUT)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        with deadline(DELIVERY_TIMEOUT):
            connection.request(
                "POST",
                path,
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": "tryon-sandbox",
                    **(headers or {}),
                },
            )
            response = connection.getresponse()
            response.read(64 * 1024)
            return 200 <= response.status < 300
    except (OSError, HTTPException):
        return False
    finally:
        connection.close()


class _WatchedHTTPConnection(HTTPConnection):
    """Its socket held to the thread's deadline from the moment it is connected."""

    def connect(self):
        super().connect()
        watch_socket(self.sock)


class _WatchedHTTPSConnection(HTTPSConnection, _WatchedHTTPConnection):
    """The TCP socket held to the deadline before TLS starts on it (a handshake sent
    a byte at a time), then the TLS socket that takes its place."""

    def connect(self):
        super().connect()
        watch_socket(self.sock)
