"""What can go wrong, on purpose: the sandbox's fault options and the dice it rolls.

:class:`Options` holds every knob a test may turn while the sandbox runs (the
command's options and the control endpoint set the same fields).
:class:`FaultInjector` decides, request by request, which fault to inject,
from a seeded random generator so a run can be repeated.
"""

import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields

from .protocol import SERVER_ERRORS

API_KINDS = ("submit", "query", "credits")
RESULT_MODES = ("composite", "plain")
DROP_PHASES = ("before", "after")


@dataclass
class Options:
    """The sandbox's behaviour. Shares are probabilities from 0 to 1."""

    #: Seconds to wait before answering an API request.
    latency: float = 0.0
    #: Seconds from submit to a finished task (queued for the first quarter).
    processing_time: float = 3.0
    #: Seconds a finished task stays queryable and its result downloadable.
    result_ttl: float = 24 * 60 * 60
    #: "composite" draws the garment on the person; "plain" serves one small
    #: fixed picture and keeps no uploads (for load tests).
    result_mode: str = "composite"
    #: Share of API requests answered 429 EXCEEDING_LIMITS.
    rate_limited: float = 0.0
    #: Share of API requests answered with a 5xx from ``server_error_statuses``.
    server_errors: float = 0.0
    server_error_statuses: list = field(default_factory=lambda: sorted(SERVER_ERRORS))
    #: Share of API requests whose connection is closed without an answer.
    drop: float = 0.0
    #: "after": a dropped submit still creates its task (the answer is lost);
    #: "before": the request is dropped before anything happens.
    drop_phase: str = "after"
    #: Share of accepted tasks that end with task_status 3.
    task_failures: float = 0.0
    #: Share of submits refused with 422 ERROR_NO_FACE_IN_FILE.
    no_face: float = 0.0
    #: Share of result downloads answered 404.
    result_404: float = 0.0
    #: API requests per second over which the sandbox answers 429 (0: no limit).
    max_rps: float = 0.0
    #: Which API requests the faults above apply to.
    fault_targets: list = field(default_factory=lambda: list(API_KINDS))
    #: Webhooks (FASHN): seconds after a task ends before its first delivery.
    webhook_delay: float = 0.0
    #: Share of tasks whose webhook is delivered twice.
    webhook_duplicate: float = 0.0
    #: Share of tasks whose webhook is never sent.
    webhook_missing: float = 0.0
    #: Seconds a refused delivery waits before its first retry (then 3, 6, 12, 36 times it).
    webhook_retry_interval: float = 5.0

    SHARES = (
        "rate_limited",
        "server_errors",
        "drop",
        "task_failures",
        "no_face",
        "result_404",
        "webhook_duplicate",
        "webhook_missing",
    )
    SECONDS = (
        "latency",
        "processing_time",
        "result_ttl",
        "max_rps",
        "webhook_delay",
        "webhook_retry_interval",
    )

    def update(self, changes):
        """Apply ``changes`` (a dict) after checking every value; raise ``ValueError``."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"Unknown option {unknown[0]!r}; known: {', '.join(sorted(known))}.")
        checked = {name: self._checked(name, value) for name, value in changes.items()}
        for name, value in checked.items():
            setattr(self, name, value)

    def _checked(self, name, value):
        if name in self.SHARES or name in self.SECONDS:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, not {value!r}.")
            if name in self.SHARES and value > 1:
                raise ValueError(f"{name} is a share: a number from 0 to 1, not {value!r}.")
            return float(value)
        if name == "result_mode" and value not in RESULT_MODES:
            raise ValueError(f"result_mode must be one of {', '.join(RESULT_MODES)}.")
        if name == "drop_phase" and value not in DROP_PHASES:
            raise ValueError(f"drop_phase must be one of {', '.join(DROP_PHASES)}.")
        if name == "server_error_statuses":
            if not isinstance(value, list) or not value or set(value) - set(SERVER_ERRORS):
                raise ValueError(
                    f"server_error_statuses must be a non-empty list of {sorted(SERVER_ERRORS)}."
                )
            return sorted(set(value))
        if name == "fault_targets":
            if not isinstance(value, list) or set(value) - set(API_KINDS):
                raise ValueError(f"fault_targets must be a list of {', '.join(API_KINDS)}.")
            return list(dict.fromkeys(value))
        return value

    def as_dict(self):
        return asdict(self)


class RateLimiter:
    """At most ``limit`` requests in any one-second window."""

    def __init__(self):
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def allow(self, limit, now=None):
        if not limit:
            return True
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._times and self._times[0] <= now - 1.0:
                self._times.popleft()
            if len(self._times) >= limit:
                return False
            self._times.append(now)
            return True

    def reset(self):
        with self._lock:
            self._times.clear()


class FaultInjector:
    """Rolls the dice for each request, under the current :class:`Options`."""

    def __init__(self, options, seed=None):
        self.options = options
        self.rate_limiter = RateLimiter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def chance(self, share):
        if share <= 0:
            return False
        if share >= 1:
            return True
        with self._lock:
            return self._random.random() < share

    def uniform(self, low, high):
        """A number between ``low`` and ``high`` from the injector's seeded source (so a
        run with a seed draws the same delays): for faults added on top, such as a
        share of slow answers."""
        with self._lock:
            return self._random.uniform(low, high)

    def applies_to(self, kind):
        return kind in self.options.fault_targets

    def server_error_status(self):
        with self._lock:
            return self._random.choice(self.options.server_error_statuses)
