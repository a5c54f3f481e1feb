"""The worker engine: one pass moves every due job one step along.

A :class:`Worker` is a process's engine: its backend, its thread pool, its
pause after a 429 and the provider times it learned last for as long as the
process runs. A :class:`Pass` is one run over the due jobs: its lease token,
its report and its pending writes, gone when the pass ends.

A pass claims a batch of due jobs under a lease, then, in parallel up to
``CONCURRENCY``, submits the pending ones and queries the ones at the provider,
downloading and storing results as they arrive. When a call is slow (a result
that trickles in) and a place is free, the pass claims more due jobs into it
(after :attr:`Worker.top_up_after` seconds, ``IDLE_INTERVAL``, without an
answer): one slow call never holds new jobs up.

Provider calls and file transfers run in a thread pool; every database write
happens on the calling thread, as a change of :mod:`django_tryon.transitions`
fenced by the lease (:mod:`django_tryon.leased_writes`), so a worker that lost
its lease can never overwrite another's work. How each provider error is
handled is one table, :data:`ERROR_ACTIONS`.

``manage.py tryon_poll`` loops over :meth:`Worker.run_pass`; the Celery tasks
call the same engine.
"""

import enum
import mimetypes
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.db import connections, router
from django.utils import timezone

from . import callbacks, transitions
from .backends import get_backend, get_backends, get_fallback_backends
from .backends.base import (
    SUCCEEDED,
    ConfigurationError,
    ImageInput,
    InvalidResponseError,
    OutOfCreditsError,
    PermanentError,
    RateLimitedError,
    TaskState,
    TryOnError,
    TryOnRequest,
)
from .conf import tryon_settings
from .failover import PROBE_TIMEOUTS, ProviderChain
from .leased_writes import Increment, LeasedWrites, Release
from .models import JobStatus, TryOnJob
from .redaction import get_logger
from .results import ResultFetcher, result_from_content, store_result
from .schedule import QuerySchedule, retry_delay

logger = get_logger("django_tryon.worker")

# Longest pause after repeated 429s, whatever the provider's Retry-After says.
MAX_RATE_PAUSE = 60.0
# How often the query schedule re-reads recent provider times (other workers' too).
SCHEDULE_REFRESH_SECONDS = 600
# Recent successes read to learn provider times.
SCHEDULE_SAMPLE_ROWS = 500
# How often a pass with calls in flight asks whether new jobs came (see run_pass).
MORE_DUE_CHECK = 0.02
# Seconds before its first query that a task found done by it is taken to have finished.
FIRST_QUERY_SPREAD = 1.0
# Never look for more due jobs during a pass more often than this (seconds).
MIN_TOP_UP_INTERVAL = 0.05

#: The points of a pass where a ``checkpoint`` hook is called (see :class:`Worker`).
CHECKPOINTS = ("claimed", "recording", "submitted", "queried", "result_stored")


@dataclass
class PassReport:
    """What one pass did, for logs, the command's output and tests.

    Each count is of what happened: ``submitted`` counts the submits the
    provider took (a task id recorded), ``queried`` the queries it answered,
    ``retried`` the calls that failed and will be tried again.
    """

    claimed: int = 0
    submitted: int = 0
    queried: int = 0
    succeeded: int = 0
    failed: int = 0
    expired: int = 0
    retried: int = 0
    rate_limited: int = 0
    resubmitted: int = 0
    rerouted: int = 0
    #: Results taken from a webhook's push instead of a query.
    pushed: int = 0
    released: int = 0
    errors: dict = field(default_factory=dict)

    @property
    def did_work(self):
        return self.claimed > 0

    def count_error(self, code):
        self.errors[code] = self.errors.get(code, 0) + 1

    def __str__(self):
        parts = [
            f"{name} {value}"
            for name, value in (
                ("claimed", self.claimed),
                ("submitted", self.submitted),
                ("queried", self.queried),
                ("pushed", self.pushed),
                ("succeeded", self.succeeded),
                ("failed", self.failed),
                ("expired", self.expired),
                ("retried", self.retried),
                ("rate-limited", self.rate_limited),
                ("resubmitted", self.resubmitted),
                ("sent to the next provider", self.rerouted),
            )
            if value
        ]
        if self.errors:
            codes = ", ".join(f"{code} {count}" for code, count in sorted(self.errors.items()))
            parts.append(f"errors: {codes}")
        return ", ".join(parts) or "nothing due"


class Action(enum.Enum):
    """What the worker does with a job whose call raised."""

    RETRY = "retry with backoff"
    PAUSE = "pause every call for the provider's rate"
    FAIL = "fail with the error's code"
    FAIL_IN_DOUBT = "fail as a submit that may have reached the provider"
    CONFIGURATION_ALARM = "fail and tell staff the provider refused the configuration"
    CREDITS_ALARM = "fail and tell staff the account is out of credits"


#: Each provider error class and its action; the first class that matches wins.
#: Anything else (a bug, an unexpected library error) is retried, and logged
#: with its traceback. A retryable error on a submit that may have reached the
#: provider (``in_doubt``) fails as in doubt unless ``RESUBMIT_INTERRUPTED``.
ERROR_ACTIONS: tuple[tuple[type[BaseException], Action], ...] = (
    (RateLimitedError, Action.PAUSE),
    (ConfigurationError, Action.CONFIGURATION_ALARM),
    (OutOfCreditsError, Action.CREDITS_ALARM),
    (PermanentError, Action.FAIL),
    (TryOnError, Action.RETRY),
)


def action_for(err: BaseException, *, submit: bool) -> Action:
    """What to do with a job whose call raised ``err`` (``submit``: it was a submit)."""
    action = next((action for kind, action in ERROR_ACTIONS if isinstance(err, kind)), Action.RETRY)
    if (
        action is Action.RETRY
        and submit
        and getattr(err, "in_doubt", False)
        and not tryon_settings.RESUBMIT_INTERRUPTED
    ):
        return Action.FAIL_IN_DOUBT
    return action


@dataclass
class Outcome:
    """What happened to one job off the main thread (no database access there)."""

    job: TryOnJob
    task_id: str = ""
    request_id: str = ""
    status: str = ""  # the job status the provider's state means, if it answered one
    result_name: str = ""
    error: BaseException | None = None
    #: The digest of the webhook secret the submit gave the provider ("" if none).
    callback_digest: str = ""
    #: The state came from the provider's push (a webhook), not from a query.
    pushed: bool = False


class Pass:
    """One pass's state: its lease token, its clock, its leases, report and writes.

    A job's provider call may start until its *start deadline* (monotonic
    seconds): early enough after the job was claimed that the call, and the
    download of its result, end while the job's lease still holds
    (``call_budget`` seconds at most). Each claim has its own deadline, so jobs
    claimed while a long call runs (a synchronous provider's predict) start as
    soon as they are claimed. Writes go through :meth:`record`, which only a
    pass has: no job is written outside one.
    """

    def __init__(
        self,
        worker_id: str,
        *,
        clock: Callable[[], datetime],
        should_stop,
        call_budget: float,
    ):
        self.token = f"{worker_id}:{uuid.uuid4().hex[:12]}"
        self.clock = clock
        self.should_stop = should_stop
        self.started_at = clock()
        self.lease_seconds = float(tryon_settings.LEASE_SECONDS)
        self.call_budget = call_budget
        self.report = PassReport()
        self.writes = LeasedWrites(self.token, clock=clock)
        self.releases: dict[Any, Release] = {}  # job pk -> release, one batched write at the end
        #: Jobs this pass sent where new jobs go (not bound to a provider by an
        #: earlier submit): a refusal that made no task may send them elsewhere.
        self.routed: set[Any] = set()
        self._start_deadlines: dict[Any, float] = {}  # job pk -> monotonic seconds

    def claimed(self, jobs) -> None:
        """Note that ``jobs`` were claimed just now: their calls may start until then."""
        deadline = time.monotonic() + max(0.0, self.lease_seconds - self.call_budget - 5)
        for job in jobs:
            self._start_deadlines[job.pk] = deadline

    def may_start(self, job: TryOnJob) -> bool:
        """Whether ``job``'s call may start now (its lease outlives the call)."""
        deadline = self._start_deadlines.get(job.pk, 0.0)
        return not self.should_stop() and time.monotonic() <= deadline

    def record(self, job: TryOnJob, change: transitions.Change, on_done=None) -> None:
        """Queue ``change`` for ``job``, ending its lease: written at the next flush if
        the pass still holds the job; then its signal is sent, and ``on_done(recorded)``
        called."""
        change.check(job)

        def done(recorded):
            if recorded:
                change.announce(job)
            else:
                logger.warning("Job %s: lease lost or job changed elsewhere; not recorded.", job.pk)
            if on_done is not None:
                on_done(recorded)

        self.writes.add(job, change.values(), done)

    def release(self, job: TryOnJob, release: Release) -> None:
        """Hand ``job`` back unchanged at the end of the pass (all in one write)."""
        self.releases[job.pk] = release

    def close(self) -> None:
        """Give back every lease still held; no write outlives the pass."""
        try:
            self.writes.flush()
            self.writes.release(self.releases)
        finally:
            self.writes.close()


def default_worker_id():
    return f"{socket.gethostname()}:{os.getpid()}"[:40]


class Worker:
    """Moves try-on jobs along. One instance per process; not thread-safe itself.

    The constructor takes what tests and special set-ups replace: the
    ``backend`` and its ``fallbacks`` (both from the settings by default:
    ``BACKEND`` and ``FALLBACK_BACKENDS``, see :mod:`django_tryon.failover`),
    the ``clock`` (``timezone.now``), the ``executor`` the
    provider calls run in (a thread pool of ``CONCURRENCY``), and
    ``checkpoint``, called with the name of each point of :data:`CHECKPOINTS`
    a pass reaches (``claimed`` and ``recording`` on the pass's thread, the
    others on the call's): crash tests stop a process there.
    """

    def __init__(
        self,
        *,
        backend=None,
        fallbacks=None,
        worker_id=None,
        clock=timezone.now,
        executor: Executor | None = None,
        checkpoint: Callable[[str], None] | None = None,
    ):
        #: The primary backend; :attr:`chain` holds it and its fallbacks.
        self.backend = backend or get_backend()
        fallbacks = get_fallback_backends() if fallbacks is None else list(fallbacks)
        probes = None
        if backend is None and fallbacks:
            # Probes wait on a down provider: short timeouts, their own sessions.
            timeouts = dict(zip(("connect_timeout", "read_timeout"), PROBE_TIMEOUTS, strict=True))
            probes = get_backends(**timeouts)
        self.chain = ProviderChain([self.backend, *fallbacks], probes=probes)
        self._probes = probes or []
        self.worker_id = worker_id or default_worker_id()
        self.clock = clock
        self.concurrency = max(1, int(tryon_settings.CONCURRENCY))
        self.checkpoint = checkpoint or _no_checkpoint
        # Each provider's results are fetched under its own trusted hosts.
        self.fetchers = {
            candidate.provider_name: _fetcher_for(candidate) for candidate in self.chain.backends
        }
        self.fetcher = self.fetchers[self.backend.provider_name]
        self.executor = executor or ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix="tryon-worker"
        )
        self._local = threading.local()
        self._rate_pause_until = 0.0  # time.monotonic() before which no provider call is made
        self._rate_strikes = 0
        self.schedule = QuerySchedule()
        self._schedule_read_at: float | None = None

    def close(self):
        self.executor.shutdown(wait=True)
        for backend in [*self.chain.backends, *self._probes]:
            backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def describe(self) -> str:
        """What this worker works with, for its start-up line: the backend, the
        provider's address (never the key, nor any credentials in the URL), the
        concurrency and the database (vendor and name, never the password)."""
        database = connections[router.db_for_write(TryOnJob)]
        described = [_described(backend) for backend in self.chain.backends]
        return (
            f"backend {described[0]}, "
            + "".join(f"fallback {text}, " for text in described[1:])
            + f"concurrency {self.concurrency}, "
            f"database {database.vendor} {database.settings_dict.get('NAME')!s}"
        )

    @property
    def call_budget(self) -> float:
        """The longest a job's step may take (seconds): the provider's call, at the
        slowest backend's own timeouts (a job may go to any of the chain), then the
        download of its result."""
        timeouts = [backend.timeout for backend in self.chain.backends]
        call = max(float(connect) + float(read) for connect, read in timeouts)
        download = tryon_settings.CONNECT_TIMEOUT + tryon_settings.READ_TIMEOUT
        return call + download

    @property
    def top_up_after(self) -> float:
        """Seconds without an answer after which a pass with a free place claims more."""
        return max(MIN_TOP_UP_INTERVAL, float(tryon_settings.IDLE_INTERVAL))

    # The pass ---------------------------------------------------------------

    def run_pass(self, *, should_stop=lambda: False, job_ids=None, more_due=None):
        """Claim due jobs and move each one step. Returns a :class:`PassReport`.

        ``should_stop`` is asked before each new job is started; jobs already
        at the provider are finished and recorded either way. ``job_ids``
        limits the pass to those jobs (the Celery tasks move one job at a time).
        ``more_due``, if given, is asked every ``MORE_DUE_CHECK`` seconds while
        calls are in flight; when it says new jobs came (the loop's wake-up,
        :mod:`django_tryon.wakeup`), the pass takes due jobs into its free
        places at once, as it otherwise does after ``top_up_after`` seconds
        without an answer: a new job does not wait for the pass's slow calls.
        """
        current = Pass(
            self.worker_id,
            clock=self.clock,
            should_stop=should_stop,
            call_budget=self.call_budget,
        )
        jobs = self._claim(current, job_ids, tryon_settings.BATCH_SIZE)
        if not jobs:
            current.writes.close()
            self.chain.check_while_idle(current.clock())
            return current.report
        self.refresh_schedule()
        # Where new jobs go: what every worker has recorded, and the checks due.
        self.chain.refresh()
        self.chain.probe(current.clock())
        try:
            self._move(current, jobs, top_up=job_ids is None, more_due=more_due)
        finally:
            current.close()
        logger.debug("Pass %s: %s", current.token, current.report)
        return current.report

    def _move(self, current: Pass, jobs, *, top_up, more_due=None):
        """Move each claimed job one step, recording as answers come back."""
        waiting = self._not_expired(current, jobs)
        late: list[TryOnJob] = []  # claimed too long ago to start now: handed back
        running: dict[Future[Outcome], TryOnJob] = {}
        # Finished calls announce themselves here: taking the next one costs the
        # same whatever the number of calls in flight (wait() would visit each).
        finished: queue.SimpleQueue[Future[Outcome]] = queue.SimpleQueue()
        while waiting or running:
            while waiting and len(running) < self.concurrency:
                if current.should_stop() or self._rate_paused():
                    break
                late += [job for job in waiting if not current.may_start(job)]
                waiting = [job for job in waiting if current.may_start(job)]
                free = self.concurrency - len(running)
                group, waiting = waiting[:free], waiting[free:]
                if not group:
                    break
                started = self._start_group(current, group)
                running.update(started)
                for future in started:
                    future.add_done_callback(finished.put)
            current.writes.flush()  # jobs that failed before their call left
            if not running:
                break
            try:
                future = self._next_finished(
                    finished,
                    self.top_up_after if top_up else None,
                    more_due if top_up else None,
                )
            except queue.Empty:
                # Every call in flight is slow, or new jobs were announced: fill
                # the free places with jobs that became due meanwhile, rather
                # than wait for the slow calls.
                free = self.concurrency - len(running)
                if not waiting and free and not current.should_stop() and not self._rate_paused():
                    waiting = self._not_expired(current, self._claim(current, None, free))
                continue
            # Record every call that has finished by now before starting more, so
            # that the places they free leave together (one submit mark per group).
            self.checkpoint("recording")
            while True:
                running.pop(future)
                self._apply(current, future.result())
                try:
                    future = finished.get_nowait()
                except queue.Empty:
                    break
            # What these calls brought is written together, before more calls start.
            current.writes.flush()

        resume_at = self._resume_at()
        for job in waiting + late:
            current.release(job, Release(max(job.next_attempt_at, resume_at)))
        current.report.released = len(waiting) + len(late)

    def _not_expired(self, current: Pass, jobs):
        """``jobs`` less those that have run out of time, which are ended as ``expired``."""
        now = current.clock()
        kept = [job for job in jobs if not self._expire_if_late(current, job, now)]
        current.writes.flush()
        return kept

    @staticmethod
    def _next_finished(finished, timeout, more_due):
        """The next finished call; ``queue.Empty`` after ``timeout`` seconds (``None``:
        no limit), or as soon as ``more_due()`` says new jobs came (asked every
        ``MORE_DUE_CHECK`` seconds)."""
        if more_due is None:
            return finished.get(timeout=timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            step = MORE_DUE_CHECK
            if deadline is not None:
                step = min(step, max(0.0, deadline - time.monotonic()))
            try:
                return finished.get(timeout=step)
            except queue.Empty:
                if more_due() or (deadline is not None and time.monotonic() >= deadline):
                    raise

    # Claiming ---------------------------------------------------------------

    def _claim(self, current: Pass, job_ids, limit):
        """Take a lease on up to ``limit`` due jobs; return the jobs the pass now holds.

        The conditional UPDATE is the lock: of two workers racing for a job,
        only one UPDATE matches its free lease (row locking on PostgreSQL,
        serialised writes on SQLite).
        """
        now = current.clock()
        jobs = current.writes.claim(
            TryOnJob.objects.due(now),
            now=now,
            lease_seconds=current.lease_seconds,
            limit=limit,
            job_ids=job_ids,
        )
        current.report.claimed += len(jobs)
        current.claimed(jobs)
        if jobs:
            self.checkpoint("claimed")
        return jobs

    def refresh_schedule(self):
        """Re-read recent provider times, so the schedule follows every worker's jobs.

        A pass calls this first; it reads the database at most once every
        ``SCHEDULE_REFRESH_SECONDS``, so calling it before a pass (as tests do) keeps
        that pass's queries its own and what was learned meanwhile until then.
        """
        if (
            self._schedule_read_at is not None
            and time.monotonic() - self._schedule_read_at < SCHEDULE_REFRESH_SECONDS
        ):
            return
        rows = (
            TryOnJob.objects.filter(status=JobStatus.SUCCEEDED, provider_seconds__isnull=False)
            .order_by("-finished_at")
            .values_list("provider", "garment__clothes_type", "provider_seconds")[
                :SCHEDULE_SAMPLE_ROWS
            ]
        )
        self.schedule.replace_samples(
            (f"{provider}:{clothes_type}", seconds) for provider, clothes_type, seconds in rows
        )
        self._schedule_read_at = time.monotonic()

    # Starting a job's step ----------------------------------------------------

    def _start_group(self, current: Pass, jobs):
        """Start one step of each of ``jobs`` at once; return ``{future: job}``.

        The submits of the group are marked ``submit_started_at`` in one
        ``UPDATE`` just before they are all handed to the pool: the mark still
        precedes each request, and no job is marked that is not leaving now.
        A job canceled since the claim is not marked, so not submitted: no paid
        task for it.
        """
        started = {}
        submits: dict[str, list[TryOnJob]] = {}  # provider name -> jobs sent there
        for job in jobs:
            backend = self.chain.backend_for(job)
            if backend is None:
                self._fail_unknown_provider(current, job)
                continue
            if job.status == JobStatus.PENDING or not job.provider_task_id:
                if job.submit_started_at is not None:
                    # The worker that held this job died while its submit was at
                    # the provider: the provider may have a task for it.
                    if not tryon_settings.RESUBMIT_INTERRUPTED:
                        self._fail(current, job, "submit_interrupted")
                        continue
                    current.report.resubmitted += 1
                    logger.warning("Resubmitting job %s after an interrupted submit.", job.pk)
                if not job.provider:  # not bound by an earlier submit: where new jobs go
                    backend = self.chain.choose()
                    current.routed.add(job.pk)
                submits.setdefault(backend.provider_name, []).append(job)
            else:
                started[self.executor.submit(self._query_job, job, backend)] = job
        now = current.clock()
        for name, group in submits.items():
            backend = self.chain.by_name[name]
            marked = current.writes.mark(group, transitions.submit_started(now, provider=name))
            for job in marked:
                started[self.executor.submit(self._submit_job, job, backend)] = job
        return started

    def _fail_unknown_provider(self, current: Pass, job):
        """A job whose provider is configured no more: nothing can ask it for the task
        (or send the job again, there only), so the job ends, and staff read why."""
        err = ConfigurationError(
            f"This job is at the provider {job.provider!r}, which is no longer configured "
            "(TRYON['BACKEND'] or TRYON['FALLBACK_BACKENDS']): the worker cannot ask it "
            "for the job's task.",
            provider=job.provider,
        )
        logger.error("Job %s: %s", job.pk, err)
        in_doubt = not job.provider_task_id
        self._fail(current, job, "submit_interrupted" if in_doubt else "configuration", err)

    # Off the main thread: provider calls and file transfers only -------------

    def _submit_job(self, job, backend):
        try:
            request = TryOnRequest(
                person_image=_image_input(job.person_image),
                garment_image=_image_input(job.garment.image),
                clothes_type=job.garment.clothes_type,
            )
            digest, url = "", ""
            if callbacks.enabled_for(backend):
                secret = callbacks.new_secret()
                url = callbacks.webhook_url(backend.provider_name, job.pk, secret)
                digest = callbacks.digest(secret)
            submission = self._submit_in_doubt_on_any_fault(job, backend, request, url)
            self.checkpoint("submitted")
            outcome = Outcome(
                job=job,
                task_id=submission.task_id,
                request_id=submission.request_id,
                callback_digest=digest,
            )
            if submission.state is not None and submission.state.is_final:
                self._take_state(outcome, submission.state)
            return outcome
        except Exception as err:  # every fault becomes the job's outcome
            return Outcome(job=job, error=err)

    def _submit_in_doubt_on_any_fault(self, job, backend, request, callback_url=""):
        """``backend.submit(request)`` (asking for a webhook to ``callback_url``, if
        given), with any fault that is not a provider error (a backend's bug while
        reading the answer, say) made an in-doubt one: the request may have reached
        the provider and made a paid task."""
        try:
            if callback_url:
                return backend.submit(request, callback_url=callback_url)
            return backend.submit(request)
        except (TryOnError, ConfigurationError):
            raise
        except Exception as err:
            logger.error("Job %s: the backend failed during a submit", job.pk, exc_info=err)
            raise InvalidResponseError(
                f"The backend failed during the submit ({type(err).__name__}).",
                provider=backend.provider_name,
                in_doubt=True,
            ) from err

    def _query_job(self, job, backend):
        try:
            outcome = Outcome(job=job, pushed=_pushed_result(job))
            self._take_state(outcome, self.provider_state(job, backend))
            return outcome
        except Exception as err:
            return Outcome(job=job, error=err)

    def provider_state(self, job: TryOnJob, backend) -> TaskState:
        """Where ``job``'s task stands at the provider that holds it (``backend``, the
        one ``job.provider`` names): the one place it is asked for.

        A result the provider pushed (a webhook, see :mod:`django_tryon.webhooks`)
        is taken as it was stored, instead of a query: its URL is downloaded
        under the same result-URL policy as a queried one. Runs on a pool thread.
        """
        if _pushed_result(job):
            return TaskState(
                status=SUCCEEDED, result_url=job.pushed_result_url, request_id=job.provider_task_id
            )
        return backend.query(job.provider_task_id)

    def _take_state(self, outcome, state):
        outcome.request_id = state.request_id or outcome.request_id
        outcome.status = transitions.status_for_state(state.status)
        if outcome.status == JobStatus.FAILED:
            outcome.error = state.error or PermanentError("The provider reported a failure.")
        elif state.status == SUCCEEDED:
            self.checkpoint("queried")
            if state.result_content:
                downloaded = result_from_content(
                    state.result_content, tryon_settings.RESULT_MAX_BYTES
                )
            else:
                fetcher = self.fetchers.get(outcome.job.provider) or self.fetcher
                downloaded = fetcher.fetch(state.result_url, self._session(fetcher))
            try:
                outcome.result_name = store_result(outcome.job, downloaded)
                self.checkpoint("result_stored")
            finally:
                downloaded.close()

    def _session(self, fetcher):
        """This thread's download session for ``fetcher`` (one per provider: each
        checks the addresses it connects to against its own trusted hosts)."""
        sessions = getattr(self._local, "sessions", None)
        if sessions is None:
            sessions = self._local.sessions = {}
        session = sessions.get(id(fetcher))
        if session is None:
            session = sessions[id(fetcher)] = fetcher.new_session()
        return session

    # Back on the main thread: record what happened ----------------------------

    def _apply(self, current: Pass, outcome: Outcome):
        provider = outcome.job.provider or self.backend.provider_name
        if outcome.error is not None:
            self.chain.failed(provider, outcome.error, current.clock())
            self._apply_error(current, outcome)
            return
        self.chain.answered(provider, current.clock())
        self._rate_strikes = 0
        job, report = outcome.job, current.report
        now = current.clock()
        if outcome.task_id:
            # The schedule below plans by provider and clothes type: the job must
            # already say which provider it is at (its submit's mark wrote it).
            job.provider, job.submitted_at = provider, now
            if not outcome.result_name:
                job.callback_digest = outcome.callback_digest
                change = transitions.submitted(
                    provider=job.provider,
                    task_id=outcome.task_id,
                    request_id=outcome.request_id,
                    now=now,
                    next_attempt_at=self._next_query_at(job, now),
                    callback_digest=outcome.callback_digest,
                )
                current.record(job, change, _counting(report, "submitted"))
                return
        if outcome.result_name:
            self._succeed(current, outcome, now)
            return
        report.queried += 1
        if outcome.status != job.status:
            change = transitions.moved(
                outcome.status,
                next_attempt_at=self._next_query_at(job, now),
                request_id=outcome.request_id,
            )
            current.record(job, change.plus(polls=Increment(), last_polled_at=now))
        else:
            # Nothing changed but the time of the next query: batched at the end.
            current.release(job, Release(self._next_query_at(job, now), queried=True))

    def _next_query_at(self, job, now):
        """When to query ``job``, at the provider, next: by the learned schedule, or
        only as the fallback of a webhook (``WEBHOOK_FALLBACK_INTERVAL``) when the
        provider was asked to call back."""
        if job.callback_digest:
            fallback = float(tryon_settings.WEBHOOK_FALLBACK_INTERVAL)
            return now + timedelta(seconds=fallback)
        return self.schedule.next_query_at(job, now)

    def _succeed(self, current: Pass, outcome: Outcome, now):
        job, report = outcome.job, current.report
        change = transitions.succeeded(
            result_name=outcome.result_name, now=now, request_id=outcome.request_id
        )
        if outcome.task_id:  # a synchronous provider: submitted and done in one call
            report.submitted += 1
            change = change.plus(
                provider=job.provider, provider_task_id=outcome.task_id, submitted_at=now
            )
        elif outcome.pushed:
            report.pushed += 1
        else:
            report.queried += 1
            change = change.plus(polls=Increment(), last_polled_at=now)
        estimate = self._provider_seconds(job, now, pushed=outcome.pushed)
        if estimate is not None:
            change = change.plus(provider_seconds=estimate[0])
            # The schedule learns the span itself (from the submit, if this was
            # the first query), not the middle kept for the record.
            self.schedule.learn_found(job, now)
        result_name = outcome.result_name

        def succeeded(recorded):
            if recorded:
                report.succeeded += 1
            else:
                self._discard_result(job, result_name)

        current.record(job, change, succeeded)

    @staticmethod
    def _provider_seconds(job, now, *, pushed=False):
        """When the provider finished, as ``(seconds after the submit, spread)``: the
        middle and the width of the span it finished in, between the last query
        that found the task unfinished and the one that found it done.

        A task found done by its first query finished at some unknown time since
        the submit; halfway would often be far too early, and pull the next
        plans' first query down for nothing. It is taken to have finished
        within ``FIRST_QUERY_SPREAD`` before that query: a provider that got
        faster is still followed, by that much per job. A result pushed by a
        webhook (``pushed``) finished when the webhook came.
        """
        if job.submitted_at is None:
            return None
        if pushed and job.pushed_at is not None:
            # The provider said when it finished: the webhook came as it did.
            return max(0.0, (job.pushed_at - job.submitted_at).total_seconds()), 0.0
        found = (now - job.submitted_at).total_seconds()
        if job.last_polled_at is None or job.last_polled_at <= job.submitted_at:
            before = max(0.0, found - FIRST_QUERY_SPREAD)
        else:
            before = min(found, (job.last_polled_at - job.submitted_at).total_seconds())
        return max(0.0, (before + found) / 2), max(0.0, found - before)

    def _apply_error(self, current: Pass, outcome: Outcome):
        job, err, report = outcome.job, outcome.error, current.report
        assert err is not None
        action = action_for(err, submit=not job.provider_task_id)
        code = getattr(err, "job_error_code", "provider_error")
        if action is Action.PAUSE:
            report.rate_limited += 1
            self._rate_limited(err)
            # A 429 made no task: a job sent where new jobs go is free to go elsewhere.
            unbind = job.pk in current.routed and not job.provider_task_id
            current.release(job, Release(self._resume_at(), unbind=unbind))
        elif action in (Action.CONFIGURATION_ALARM, Action.CREDITS_ALARM) and self._reroute(
            current, job, err
        ):
            return
        elif action is Action.CONFIGURATION_ALARM:
            logger.error("Job %s: the provider refused the configuration: %s", job.pk, err)
            self._fail(current, job, code, err)
        elif action is Action.CREDITS_ALARM:
            # Every job fails until staff top the account up: tell them loudly.
            logger.error("Job %s: the provider account is out of credits: %s", job.pk, err)
            self._fail(current, job, code, err)
        elif action is Action.FAIL:
            logger.warning("Job %s failed: %s", job.pk, err)
            self._fail(current, job, code, err)
        elif action is Action.FAIL_IN_DOUBT:
            logger.warning("Job %s: the submit may have reached the provider: %s", job.pk, err)
            self._fail(current, job, "submit_interrupted", err)
        else:
            self._retry(current, job, code, err)

    def _reroute(self, current: Pass, job, err) -> bool:
        """Send ``job``, refused by a provider that made no task for it, to the next
        provider up; return whether it was (no other is up: it is not)."""
        if job.provider_task_id or job.pk not in current.routed or getattr(err, "in_doubt", False):
            return False
        successor = self.chain.next_up_after(job.provider)
        if successor is None:
            return False
        logger.warning(
            "Job %s: %s refused the submit (%s); it goes to %s.",
            job.pk,
            job.provider,
            getattr(err, "job_error_code", "refused"),
            successor.provider_name,
        )
        now = current.clock()
        change = transitions.rerouted(now=now, detail=transitions.error_detail(err))
        current.record(job, change, _counting(current.report, "rerouted"))
        return True

    def _retry(self, current: Pass, job, code, err):
        if not isinstance(err, TryOnError):
            logger.error("Job %s: unexpected error", job.pk, exc_info=err)
        attempts = job.attempts + 1
        if attempts >= tryon_settings.MAX_ATTEMPTS:
            logger.warning("Job %s failed after %d attempts: %s", job.pk, attempts, err)
            self._fail(current, job, code, err, attempts=attempts)
            return
        next_at = max(current.clock() + retry_delay(attempts), self._resume_at())
        logger.warning(
            "Job %s: attempt %d of %d failed, next at %s: %s",
            job.pk,
            attempts,
            tryon_settings.MAX_ATTEMPTS,
            timezone.localtime(next_at).isoformat(timespec="seconds"),
            err,
        )
        current.report.retried += 1
        current.report.count_error(code)
        change = transitions.retry_later(
            attempts=attempts,
            next_attempt_at=next_at,
            provider_code=getattr(err, "code", "") or "",
            detail=transitions.error_detail(err),
        )
        if job.pk in current.routed and not getattr(err, "in_doubt", False):
            # The submit surely made no task: the retry goes where new jobs go then.
            change = change.plus(provider="")
        current.record(job, change)

    def _expire_if_late(self, current: Pass, job, now):
        started = job.submitted_at or job.started_at
        if now - started < timedelta(seconds=tryon_settings.JOB_EXPIRY):
            return False
        current.record(job, transitions.expired(now), _counting(current.report, "expired"))
        return True

    def _fail(self, current: Pass, job, code, err=None, *, attempts=None):
        change = transitions.failed(
            code,
            now=current.clock(),
            provider_code=getattr(err, "code", "") or "",
            request_id=getattr(err, "request_id", "") or "",
            attempts=attempts,
            detail=transitions.error_detail(err),
        )

        def failed(recorded):
            if recorded:
                current.report.failed += 1
                current.report.count_error(code)

        current.record(job, change, failed)

    def _discard_result(self, job, name):
        """Delete a stored result that no row points at (the job was canceled meanwhile)."""
        current = TryOnJob.objects.filter(pk=job.pk).values_list("result_image", flat=True).first()
        if current != name:
            job._meta.get_field("result_image").storage.delete(name)

    # Rate limiting ------------------------------------------------------------

    def _rate_limited(self, err):
        self._rate_strikes += 1
        pause = min(MAX_RATE_PAUSE, tryon_settings.RETRY_BACKOFF * 2 ** (self._rate_strikes - 1))
        if err.retry_after is not None:
            pause = min(MAX_RATE_PAUSE, max(pause, err.retry_after))
        self._rate_pause_until = max(self._rate_pause_until, time.monotonic() + pause)
        logger.info("The provider asks to slow down: pausing calls for %.1f s.", pause)

    def _rate_paused(self):
        return time.monotonic() < self._rate_pause_until

    def _resume_at(self):
        return self.clock() + timedelta(seconds=self.rate_pause_remaining)

    @property
    def rate_pause_remaining(self):
        """Seconds until provider calls may resume after a 429 (0 if not paused)."""
        return max(0.0, self._rate_pause_until - time.monotonic())


def _pushed_result(job: TryOnJob) -> bool:
    """Whether a webhook pushed ``job``'s result URL (so no query is needed)."""
    return job.pushed_at is not None and bool(job.pushed_result_url)


def _counting(report: PassReport, name: str):
    """An ``on_done`` that counts ``name`` in ``report`` when the write is recorded."""

    def count(recorded):
        if recorded:
            setattr(report, name, getattr(report, name) + 1)

    return count


def _fetcher_for(backend) -> ResultFetcher:
    """A downloader of ``backend``'s results: its own address and result hosts trusted."""
    return ResultFetcher(
        base_url=backend.base_url,
        extra_hosts=[*tryon_settings.RESULT_HOSTS, *backend.result_hosts()],
        max_bytes=tryon_settings.RESULT_MAX_BYTES,
        timeout=(tryon_settings.CONNECT_TIMEOUT, tryon_settings.READ_TIMEOUT),
        total_timeout=tryon_settings.RESULT_DOWNLOAD_TIMEOUT,
    )


def _described(backend) -> str:
    """A backend as the start-up line names it: provider, class and address."""
    kind = type(backend)
    return (
        f"{backend.provider_name or kind.__name__} ({kind.__module__}.{kind.__qualname__}) at "
        f"{_without_credentials(backend.base_url) or '(no base URL)'}"
    )


def _without_credentials(url: str) -> str:
    """``url`` without any ``user:password@`` part."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _no_checkpoint(name: str) -> None:
    """The production checkpoint: nothing happens at any point."""


def _image_input(fieldfile):
    with fieldfile.open("rb") as handle:
        content = handle.read()
    name = os.path.basename(fieldfile.name)
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return ImageInput(content=content, filename=name, content_type=content_type)
