"""The worker engine: one pass moves every due job one step along.

A pass claims a batch of due jobs under a lease, then, in parallel up to
``CONCURRENCY``, submits the pending ones and queries the ones at the provider,
downloading and storing results as they arrive. Provider calls and file
transfers run in a thread pool; every database write happens on the calling
thread, fenced by the lease (``UPDATE ... WHERE lease_owner = <this pass>``),
so a worker that lost its lease can never overwrite another's work.

``manage.py tryon_poll`` loops over :meth:`Worker.run_pass`; the Celery tasks
call the same engine.
"""

import logging
import mimetypes
import os
import queue
import socket
import sys
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import models
from django.db.models import Case, F, Value, When
from django.utils import timezone

from .backends import get_backend
from .backends.base import (
    FAILED,
    SUCCEEDED,
    ConfigurationError,
    ImageInput,
    OutOfCreditsError,
    PermanentError,
    RateLimitedError,
    TryOnError,
    TryOnRequest,
)
from .conf import tryon_settings
from .errors import message_for
from .leased_writes import Increment, LeasedWrites
from .models import IN_FLIGHT_STATUSES, JobStatus, TryOnJob
from .results import (
    ResultFetcher,
    result_from_content,
    store_result,
)
from .schedule import QuerySchedule, job_kind, retry_delay
from .signals import job_failed, job_succeeded

logger = logging.getLogger("django_tryon.worker")

# Longest pause after repeated 429s, whatever the provider's Retry-After says.
MAX_RATE_PAUSE = 60.0

# Crash tests only (tests/e2e/test_crash.py): the name of a point where a worker
# process stops, so the test can kill it inside a window too short to hit by timing.
PAUSE_AT_ENV = "TRYON_TEST_PAUSE_AT"
PAUSE_SECONDS_ENV = "TRYON_TEST_PAUSE_SECONDS"
# How often the query schedule re-reads recent provider times (other workers' too).
SCHEDULE_REFRESH_SECONDS = 600
# Recent successes read to learn provider times.
SCHEDULE_SAMPLE_ROWS = 500
# Seconds before its first query that a task found done by it is taken to have finished.
FIRST_QUERY_SPREAD = 1.0


@dataclass
class PassReport:
    """What one pass did, for logs, the command's output and tests."""

    claimed: int = 0
    submitted: int = 0
    queried: int = 0
    succeeded: int = 0
    failed: int = 0
    expired: int = 0
    retried: int = 0
    rate_limited: int = 0
    resubmitted: int = 0
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
                ("succeeded", self.succeeded),
                ("failed", self.failed),
                ("expired", self.expired),
                ("retried", self.retried),
                ("rate-limited", self.rate_limited),
                ("resubmitted", self.resubmitted),
            )
            if value
        ]
        return ", ".join(parts) or "nothing due"


@dataclass
class Outcome:
    """What happened to one job off the main thread (no database access there)."""

    job: TryOnJob
    task_id: str = ""
    request_id: str = ""
    status: str = ""
    result_name: str = ""
    error: BaseException | None = None


@dataclass(frozen=True)
class Release:
    """A job handed back unchanged at the end of a pass, due again at ``next_attempt_at``."""

    next_attempt_at: object
    queried: bool = False


def default_worker_id():
    return f"{socket.gethostname()}:{os.getpid()}"[:40]


class Worker:
    """Moves try-on jobs along. One instance per process; not thread-safe itself."""

    def __init__(self, *, backend=None, worker_id=None, clock=timezone.now):
        self.backend = backend or get_backend()
        self.worker_id = worker_id or default_worker_id()
        self.clock = clock
        self.concurrency = max(1, int(tryon_settings.CONCURRENCY))
        self.fetcher = ResultFetcher(
            base_url=tryon_settings.BASE_URL,
            extra_hosts=[*tryon_settings.RESULT_HOSTS, *self.backend.result_hosts()],
            max_bytes=tryon_settings.RESULT_MAX_BYTES,
            timeout=(tryon_settings.CONNECT_TIMEOUT, tryon_settings.READ_TIMEOUT),
        )
        self._executor = ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix="tryon-worker"
        )
        self._local = threading.local()
        self._rate_pause_until = 0.0  # time.monotonic() before which no provider call is made
        self._rate_strikes = 0
        self.schedule = QuerySchedule()
        self._schedule_read_at = None
        self._pass_writes: LeasedWrites | None = None  # the current pass's

    def close(self):
        self._executor.shutdown(wait=True)
        self.backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # The pass ---------------------------------------------------------------

    def run_pass(self, *, should_stop=lambda: False, job_ids=None):
        """Claim due jobs and move each one step. Returns a :class:`PassReport`.

        ``should_stop`` is asked before each new job is started; jobs already
        at the provider are finished and recorded either way. ``job_ids``
        limits the pass to those jobs (the Celery tasks move one job at a time).
        """
        report = PassReport()
        now = self.clock()
        token = f"{self.worker_id}:{uuid.uuid4().hex[:12]}"
        lease = tryon_settings.LEASE_SECONDS
        jobs = self._claim(token, now, lease, job_ids)
        report.claimed = len(jobs)
        if not jobs:
            return report
        self._refresh_schedule()
        self._pass_writes = LeasedWrites(token, clock=self.clock)
        try:
            self._move(jobs, token, now, lease, report, should_stop)
        finally:
            self._pass_writes = None  # no write outlives its pass's lease
        logger.debug("Pass %s: %s", token, report)
        return report

    def _move(self, jobs, token, now, lease, report, should_stop):
        """Move each claimed job one step, recording as answers come back."""
        # Stop starting provider calls early enough that every call started
        # ends while the lease still holds.
        call_budget = 2 * (tryon_settings.CONNECT_TIMEOUT + tryon_settings.READ_TIMEOUT)
        start_deadline = time.monotonic() + max(0.0, lease - call_budget - 5)

        to_release: dict[Any, Release] = {}  # job pk -> release, one batched write at the end
        waiting = []
        for job in jobs:
            if self._expire_if_late(job, now, report):
                continue
            waiting.append(job)
        self._writes.flush()

        running: dict[Future[Outcome], TryOnJob] = {}
        # Finished calls announce themselves here: taking the next one costs the
        # same whatever the number of calls in flight (wait() would visit each).
        finished: queue.SimpleQueue[Future[Outcome]] = queue.SimpleQueue()
        while waiting or running:
            while waiting and len(running) < self.concurrency:
                if should_stop() or time.monotonic() > start_deadline or self._rate_paused():
                    break
                free = self.concurrency - len(running)
                group, waiting = waiting[:free], waiting[free:]
                started = self._start_group(group, report)
                running.update(started)
                for future in started:
                    future.add_done_callback(finished.put)
            self._writes.flush()  # jobs that failed before their call left
            if not running:
                break
            # Record every call that has finished by now before starting more, so
            # that the places they free leave together (one submit mark per group).
            future = finished.get()
            while True:
                running.pop(future)
                self._apply(future.result(), report, to_release)
                try:
                    future = finished.get_nowait()
                except queue.Empty:
                    break
            # What these calls brought is written together, before more calls start.
            self._writes.flush()

        resume_at = self._resume_at()
        for job in waiting:
            to_release[job.pk] = Release(max(job.next_attempt_at, resume_at))
        report.released = len(waiting)
        self._release(token, to_release)

    @property
    def _writes(self):
        """The writes of the pass in progress (every write needs a pass's lease)."""
        if self._pass_writes is None:
            raise RuntimeError("Job writes happen within a pass (run_pass).")
        return self._pass_writes

    # Claiming ---------------------------------------------------------------

    def _claim(self, token, now, lease_seconds, job_ids=None):
        """Take a lease on up to BATCH_SIZE due jobs; return the jobs this pass holds.

        The conditional UPDATE is the lock: of two workers racing for a job,
        only one UPDATE matches its free lease (row locking on PostgreSQL,
        serialised writes on SQLite).
        """
        due = TryOnJob.objects.due(now)
        if job_ids is not None:
            due = due.filter(pk__in=list(job_ids))
        candidates = list(
            due.order_by("next_attempt_at").values_list("pk", flat=True)[
                : tryon_settings.BATCH_SIZE
            ]
        )
        if not candidates:
            return []
        due.filter(pk__in=candidates).update(
            lease_owner=token,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            updated_at=now,
        )
        return list(
            TryOnJob.objects.filter(lease_owner=token)
            .select_related("garment")
            .order_by("next_attempt_at")
        )

    def _release(self, token, next_attempts):
        """Give back the lease of jobs whose state did not change, in one query."""
        if not next_attempts:
            return
        queried = [pk for pk, release in next_attempts.items() if release.queried]
        now = self.clock()
        TryOnJob.objects.filter(pk__in=list(next_attempts), lease_owner=token).update(
            next_attempt_at=Case(
                *(
                    When(pk=pk, then=release.next_attempt_at)
                    for pk, release in next_attempts.items()
                )
            ),
            polls=Case(
                When(pk__in=queried, then=F("polls") + 1),
                default=F("polls"),
                output_field=models.PositiveIntegerField(),
            ),
            last_polled_at=Case(
                When(pk__in=queried, then=Value(now)),
                default=F("last_polled_at"),
                output_field=models.DateTimeField(),
            ),
            lease_owner="",
            lease_expires_at=None,
            submit_started_at=None,
            updated_at=now,
        )

    def _refresh_schedule(self):
        """Re-read recent provider times, so the schedule follows every worker's jobs."""
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

    def _start_group(self, jobs, report):
        """Start one step of each of ``jobs`` at once; return ``{future: job}``.

        The submits of the group are marked ``submit_started_at`` in one
        ``UPDATE`` just before they are all handed to the pool: the mark still
        precedes each request, and no job is marked that is not leaving now.
        """
        started = {}
        submits = []
        for job in jobs:
            if job.status == JobStatus.PENDING or not job.provider_task_id:
                if job.submit_started_at is not None:
                    # The worker that held this job died while its submit was at
                    # the provider: the provider may have a task for it.
                    if not tryon_settings.RESUBMIT_INTERRUPTED:
                        self._fail(job, "submit_interrupted", report)
                        continue
                    report.resubmitted += 1
                    logger.warning("Resubmitting job %s after an interrupted submit.", job.pk)
                submits.append(job)
            else:
                report.queried += 1
                started[self._executor.submit(self._query_job, job)] = job
        for job in self._mark_submits(submits):
            report.submitted += 1
            started[self._executor.submit(self._submit_job, job)] = job
        return started

    def _mark_submits(self, jobs):
        """Record ``submit_started_at`` on ``jobs`` (one query); return those still held.

        Recorded before the requests leave, so a crash from here until a task
        id is saved is known as such (see _start_group). A job canceled since
        the claim is not marked, so not submitted: no paid task for it.
        """
        return self._writes.mark(jobs, "submit_started_at", timezone.now())

    # Off the main thread: provider calls and file transfers only -------------

    def _submit_job(self, job):
        try:
            request = TryOnRequest(
                person_image=_image_input(job.person_image),
                garment_image=_image_input(job.garment.image),
                clothes_type=job.garment.clothes_type,
            )
            submission = self.backend.submit(request)
            _pause_point("submitted")
            outcome = Outcome(job=job, task_id=submission.task_id, request_id=submission.request_id)
            if submission.state is not None and submission.state.is_final:
                self._take_state(outcome, submission.state)
            return outcome
        except Exception as err:  # every fault becomes the job's outcome
            return Outcome(job=job, error=err)

    def _query_job(self, job):
        try:
            outcome = Outcome(job=job)
            self._take_state(outcome, self.backend.query(job.provider_task_id))
            return outcome
        except Exception as err:
            return Outcome(job=job, error=err)

    def _take_state(self, outcome, state):
        outcome.request_id = state.request_id or outcome.request_id
        outcome.status = state.status
        if state.status == FAILED:
            outcome.error = state.error or PermanentError("The provider reported a failure.")
        elif state.status == SUCCEEDED:
            _pause_point("queried")
            if state.result_content:
                downloaded = result_from_content(
                    state.result_content, tryon_settings.RESULT_MAX_BYTES
                )
            else:
                downloaded = self.fetcher.fetch(state.result_url, self._session())
            try:
                outcome.result_name = store_result(outcome.job, downloaded)
                _pause_point("result_stored")
            finally:
                downloaded.close()

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = self.fetcher.new_session()
        return session

    # Back on the main thread: record what happened ----------------------------

    def _apply(self, outcome, report, to_release):
        job = outcome.job
        now = self.clock()
        if outcome.error is not None:
            self._apply_error(outcome, report, to_release, now)
            return
        fields: dict[str, Any] = {}
        if outcome.task_id:
            fields.update(
                status=JobStatus.QUEUED,
                provider=self.backend.provider_name,
                provider_task_id=outcome.task_id,
                submitted_at=now,
                submit_started_at=None,
            )
            # The schedule below plans by provider and clothes type: the job must
            # already say which provider it is at.
            job.provider, job.submitted_at = self.backend.provider_name, now
        if outcome.request_id:
            fields["provider_request_id"] = outcome.request_id
        self._rate_strikes = 0
        if not outcome.task_id:
            fields["polls"] = Increment()
            fields["last_polled_at"] = now
        if outcome.result_name:
            fields["result_image"] = outcome.result_name
            estimate = self._provider_seconds(job, now)
            if estimate is not None:
                seconds, spread = estimate
                fields["provider_seconds"] = seconds
                self.schedule.learn(job_kind(job), seconds, spread)
            result_name = outcome.result_name

            def succeeded(recorded):
                if recorded:
                    report.succeeded += 1
                    job_succeeded.send(sender=TryOnJob, job=job)
                else:
                    self._discard_result(job, result_name)

            self._finish(job, JobStatus.SUCCEEDED, fields, now, succeeded)
            return
        if outcome.status in IN_FLIGHT_STATUSES and outcome.status != job.status:
            fields["status"] = outcome.status
        next_at = self.schedule.next_query_at(job, now)
        if fields.keys() - {"polls", "last_polled_at", "provider_request_id"}:
            fields["next_attempt_at"] = next_at
            self._write(job, fields)
        else:
            # Nothing changed but the time of the next query: batched in _release.
            to_release[job.pk] = Release(next_at, queried=True)

    @staticmethod
    def _provider_seconds(job, now):
        """When the provider finished, as ``(seconds after the submit, spread)``: the
        middle and the width of the span it finished in, between the last query
        that found the task unfinished and the one that found it done.

        A task found done by its first query finished at some unknown time since
        the submit; halfway would often be far too early, and pull the next
        plans' first query down for nothing. It is taken to have finished
        within ``FIRST_QUERY_SPREAD`` before that query: a provider that got
        faster is still followed, by that much per job.
        """
        if job.submitted_at is None:
            return None
        found = (now - job.submitted_at).total_seconds()
        if job.last_polled_at is None or job.last_polled_at <= job.submitted_at:
            before = max(0.0, found - FIRST_QUERY_SPREAD)
        else:
            before = min(found, (job.last_polled_at - job.submitted_at).total_seconds())
        return max(0.0, (before + found) / 2), max(0.0, found - before)

    def _apply_error(self, outcome, report, to_release, now):
        job, err = outcome.job, outcome.error
        was_submit = not job.provider_task_id
        if isinstance(err, RateLimitedError):
            report.rate_limited += 1
            self._rate_limited(err)
            to_release[job.pk] = Release(self._resume_at())
            return
        code = getattr(err, "job_error_code", "provider_error")
        if isinstance(err, ConfigurationError):
            logger.error("Job %s: the provider refused the configuration: %s", job.pk, err)
            self._fail(job, code, report, err)
            return
        if isinstance(err, OutOfCreditsError):
            # Every job fails until staff top the account up: tell them loudly.
            logger.error("Job %s: the provider account is out of credits: %s", job.pk, err)
            self._fail(job, code, report, err)
            return
        if isinstance(err, PermanentError):
            logger.warning("Job %s failed: %s", job.pk, err)
            self._fail(job, code, report, err)
            return
        if (
            was_submit
            and getattr(err, "in_doubt", False)
            and not tryon_settings.RESUBMIT_INTERRUPTED
        ):
            logger.warning("Job %s: the submit may have reached the provider: %s", job.pk, err)
            self._fail(job, "submit_interrupted", report, err)
            return
        if not isinstance(err, TryOnError):
            logger.error("Job %s: unexpected error", job.pk, exc_info=err)
        attempts = job.attempts + 1
        if attempts >= tryon_settings.MAX_ATTEMPTS:
            logger.warning("Job %s failed after %d attempts: %s", job.pk, attempts, err)
            self._fail(job, code, report, err, attempts=attempts)
            return
        report.retried += 1
        report.count_error(code)
        logger.info("Job %s: attempt %d failed, retrying: %s", job.pk, attempts, err)
        self._write(
            job,
            {
                "attempts": attempts,
                "next_attempt_at": max(now + retry_delay(attempts), self._resume_at()),
                "submit_started_at": None,
                "provider_error_code": getattr(err, "code", "") or "",
            },
        )

    def _expire_if_late(self, job, now, report):
        started = job.submitted_at or job.started_at
        if now - started < timedelta(seconds=tryon_settings.JOB_EXPIRY):
            return False

        def expired(recorded):
            if recorded:
                report.expired += 1
                job_failed.send(sender=TryOnJob, job=job)

        self._finish(
            job,
            JobStatus.EXPIRED,
            {"error_code": "expired", "error_message": str(message_for("expired"))},
            now,
            expired,
        )
        return True

    def _fail(self, job, code, report, err=None, *, attempts=None):
        fields = {
            "error_code": code,
            "error_message": str(message_for(code)),
            "provider_error_code": (getattr(err, "code", "") or "")[:100],
        }
        request_id = getattr(err, "request_id", "")
        if request_id:
            fields["provider_request_id"] = request_id
        if attempts is not None:
            fields["attempts"] = attempts

        def failed(recorded):
            if recorded:
                report.failed += 1
                report.count_error(code)
                job_failed.send(sender=TryOnJob, job=job)

        self._finish(job, JobStatus.FAILED, fields, self.clock(), failed)

    def _finish(self, job, status, fields, now, on_done):
        fields = {
            **fields,
            "status": status,
            "finished_at": now,
            "submit_started_at": None,
        }
        if status == JobStatus.SUCCEEDED:
            fields.update(error_code="", error_message="", provider_error_code="")
        self._write(job, fields, on_done)

    def _write(self, job, fields, on_done=None):
        """Queue ``fields`` for ``job``, ending its lease; written at the pass's next
        flush if the pass still holds the job, and ``on_done(recorded)`` called then."""

        def done(recorded):
            if not recorded:
                logger.warning("Job %s: lease lost or job changed elsewhere; not recorded.", job.pk)
            if on_done is not None:
                on_done(recorded)

        self._writes.add(job, fields, done)

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
        remaining = max(0.0, self._rate_pause_until - time.monotonic())
        return self.clock() + timedelta(seconds=remaining)

    @property
    def rate_pause_remaining(self):
        """Seconds until provider calls may resume after a 429 (0 if not paused)."""
        return max(0.0, self._rate_pause_until - time.monotonic())


def _pause_point(name):
    """Hold this thread at ``name`` when ``TRYON_TEST_PAUSE_AT`` names it; else do nothing.

    The points are ``submitted`` (the provider answered a submit, the task id
    is not saved yet), ``queried`` (a query said succeeded, nothing downloaded
    yet) and ``result_stored`` (the result file is saved, the job not yet
    recorded). The pause lasts ``TRYON_TEST_PAUSE_SECONDS`` (default: an hour)
    and is announced on stderr as ``tryon-paused-at <name>``.
    """
    if os.environ.get(PAUSE_AT_ENV) != name:
        return
    sys.stderr.write(f"tryon-paused-at {name}\n")
    sys.stderr.flush()
    time.sleep(float(os.environ.get(PAUSE_SECONDS_ENV, "3600")))


def _image_input(fieldfile):
    with fieldfile.open("rb") as handle:
        content = handle.read()
    name = os.path.basename(fieldfile.name)
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return ImageInput(content=content, filename=name, content_type=content_type)
