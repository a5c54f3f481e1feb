"""The sandbox's tasks, their results and the account's credits, in memory.

A task's state follows from the clock: queued for the first quarter of its
processing time, processing for the rest, then finished (succeeded, or failed
if a fault said so). Each task gets an unguessable result token at birth; the
result picture is made on the first download and kept. Finished tasks are
forgotten ``result_ttl`` seconds after they finish, as the provider's are.
"""

import secrets
import threading
import time
from dataclasses import dataclass, field

from .protocol import TASK_FAILED, TASK_PROCESSING, TASK_QUEUED, TASK_SUCCEEDED, ApiError

# Look for expired tasks at most this often (seconds): sweeping is O(tasks).
SWEEP_EVERY = 5.0


@dataclass
class Task:
    id: str
    api_key: str
    created_at: float
    processing_time: float
    fails: bool
    clothes_type: str
    token: str
    person_image: bytes = b""
    clothes_image: bytes = b""
    result: bytes = b""
    #: ``(name, message)`` of the error a failing task reports, where the protocol names one.
    failure: tuple[str, str] = ("", "")
    #: Where the task's end is reported (a webhook), if anywhere.
    webhook_url: str = ""
    #: The model asked for, where the protocol has several (fal).
    model: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def finishes_at(self):
        return self.created_at + self.processing_time

    def status(self, now):
        elapsed = now - self.created_at
        if elapsed >= self.processing_time:
            return TASK_FAILED if self.fails else TASK_SUCCEEDED
        if elapsed >= self.processing_time / 4:
            return TASK_PROCESSING
        return TASK_QUEUED


class TaskStore:
    def __init__(self, credits=1_000_000, clock=time.monotonic):
        self.clock = clock
        self.initial_credits = credits
        self._lock = threading.Lock()
        self._tasks = {}
        self._by_token = {}
        self._last_sweep = clock()
        self.credits = credits

    def __len__(self):
        return len(self._tasks)

    def create(
        self,
        *,
        api_key,
        submission,
        processing_time,
        fails,
        keep_images,
        result_ttl,
        failure=("", ""),
    ):
        """A new task for ``submission``, paid with one credit; raise if none is left.

        ``failure`` (or the submission's own, an input found bad while running)
        names the error a failing task reports, where the protocol names one.
        """
        now = self.clock()
        failure = failure if failure[0] else submission.failure
        task = Task(
            id=secrets.token_hex(16),
            api_key=api_key,
            created_at=now,
            processing_time=processing_time,
            fails=fails or bool(failure[0]),
            clothes_type=submission.clothes_type,
            token=secrets.token_urlsafe(32),
            failure=failure,
            webhook_url=submission.webhook_url,
            model=submission.model,
        )
        if keep_images:
            task.person_image = submission.person_image
            task.clothes_image = submission.clothes_image
        with self._lock:
            if self.credits <= 0:
                raise ApiError("ERROR_NOT_ENOUGH_CREDITS")
            self.credits -= 1
            self._tasks[task.id] = task
            self._by_token[task.token] = task
        self._sweep(now, result_ttl)
        return task

    def get(self, task_id, api_key, result_ttl):
        """The task, if it exists, belongs to ``api_key`` and has not expired."""
        task = self._tasks.get(task_id)
        if task is None or task.api_key != api_key or self._expired(task, result_ttl):
            return None
        return task

    def by_token(self, token, result_ttl):
        task = self._by_token.get(token)
        if task is None or self._expired(task, result_ttl):
            return None
        if task.status(self.clock()) != TASK_SUCCEEDED:
            return None
        return task

    def cancel(self, task, failure):
        """End ``task`` now, failed with ``failure``; return whether it was still running."""
        with task.lock:
            now = self.clock()
            if now >= task.finishes_at:
                return False
            task.processing_time = max(0.0, now - task.created_at)
            task.fails, task.failure = True, failure
            return True

    def set_credits(self, credits):
        with self._lock:
            self.credits = credits

    def clear(self):
        with self._lock:
            self._tasks.clear()
            self._by_token.clear()
            self.credits = self.initial_credits

    def _expired(self, task, result_ttl):
        return self.clock() >= task.finishes_at + result_ttl

    def _sweep(self, now, result_ttl):
        if now - self._last_sweep < SWEEP_EVERY:
            return
        with self._lock:
            self._last_sweep = now
            gone = [t for t in self._tasks.values() if now >= t.finishes_at + result_ttl]
            for task in gone:
                del self._tasks[task.id]
                del self._by_token[task.token]
