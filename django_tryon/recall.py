"""Recalling a canceled job's task at its provider, so the shop does not pay for it.

When staff, the shop or the shopper cancel a job that a provider already holds,
:mod:`django_tryon.transitions` calls :func:`recall_on_commit`: once the
cancel is committed, the backend's :meth:`~django_tryon.backends.base.TryOnBackend.cancel`
is called for each such task. Providers that cannot recall a task (AILabAPI,
FASHN) do nothing; fal takes the request out of its queue.

The calls run on a small background thread pool, never on the request's
thread: a provider that is slow to answer (up to the backend's timeouts, for
each of a hundred jobs canceled at once in the admin) never holds up the
admin page or the shopper's ``DELETE``. A recall is best effort: one that
fails is logged, and the worker discards the result of a canceled job
whatever the provider does. A process that stops with recalls still queued
drops them; the task then runs to its end at the provider, as it would on a
provider that cannot recall.
"""

import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.db import transaction

from .backends import get_backend
from .backends.base import TryOnBackend
from .models import TryOnJob
from .redaction import get_logger

logger = get_logger("django_tryon.recall")

#: Recalls running at once, for the whole process.
RECALL_THREADS = 2

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=RECALL_THREADS, thread_name_prefix="tryon-recall"
            )
        return _executor


def recall_on_commit(pks: Iterable[Any]) -> None:
    """Once the current transaction commits, recall the provider tasks of jobs ``pks``."""
    pks = list(pks)
    if pks:
        transaction.on_commit(lambda: _recall_quietly(pks))


def _recall_quietly(pks: list[Any]) -> None:
    """:func:`recall`, whose failure (a backend that cannot be built, the database)
    is logged: the cancel is committed, and the page or the erasure that made it
    must not fail after the fact."""
    try:
        recall(pks)
    except Exception:
        logger.exception("Canceled jobs %s were not recalled at their provider.", pks)


def recall(pks: Iterable[Any]) -> Future | None:
    """Hand the recall of jobs ``pks``' tasks to the background pool (jobs that reached
    no provider, or another provider than the configured backend's, are skipped).

    Returns the pool's future (tests wait on it), or ``None`` if there is nothing
    to recall.
    """
    tasks = list(
        TryOnJob.objects.filter(pk__in=list(pks))
        .exclude(provider_task_id="")
        .values_list("pk", "provider", "provider_task_id")
    )
    if not tasks:
        return None
    backend = get_backend()
    mine = [(pk, task_id) for pk, provider, task_id in tasks if provider == backend.provider_name]
    if len(mine) < len(tasks):
        logger.info(
            "%d canceled job(s) are at another provider than %s: not recalled.",
            len(tasks) - len(mine),
            backend.provider_name,
        )
    if not mine or type(backend).cancel is TryOnBackend.cancel:
        backend.close()
        return None
    return _pool().submit(_recall_tasks, backend, mine)


def _recall_tasks(backend, tasks: list[tuple[Any, str]]) -> int:
    """Recall each task; return how many the provider took back (for tests and logs)."""
    recalled = 0
    try:
        for pk, task_id in tasks:
            try:
                backend.cancel(task_id)
            except Exception as err:  # each task on its own: one failure stops no other
                logger.warning("Job %s: its task %s was not recalled: %s", pk, task_id, err)
            else:
                recalled += 1
                logger.info("Job %s: its task %s was recalled at the provider.", pk, task_id)
    finally:
        backend.close()
    return recalled
