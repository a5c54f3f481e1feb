"""Waking ``tryon_poll`` the moment a new job is committed, on PostgreSQL.

Between passes the worker sleeps until its next job is due, at most
``IDLE_INTERVAL``; a shopper's new job is due at once, so without a wake-up
it waits for the rest of that sleep. On PostgreSQL, once the transaction that
wrote new jobs has committed, :func:`announce_new_jobs` sends ``NOTIFY`` on
:data:`CHANNEL`, and each worker waits on a connection of its own that
``LISTEN``s there (:class:`Listener`): a new job ends the wait. Nothing is
sent for a transaction that rolls back.

The idle sleep stays as it was, as the fallback: a job written another way
(a raw ``INSERT``, a ``bulk_create`` outside the app), a notification lost
while the listening connection was down, or a database other than
PostgreSQL. SQLite has no way to tell another process, so there the worker
finds new jobs by its idle sleep (see docs/worker.md). Shops on Celery are
woken by their broker instead (:mod:`django_tryon.queueing`).
"""

import contextlib
import logging
import select
import socket
import threading
import time
from typing import Any

from django.db import connections, router, transaction

from .conf import tryon_settings

logger = logging.getLogger("django_tryon.worker")

CHANNEL = "django_tryon_jobs"
# Seconds between two attempts to listen again after the connection was lost.
RECONNECT_SECONDS = 5.0
# How often the thread that passes a stop request on checks that it is still needed.
STOP_WATCH_SECONDS = 1.0


def job_database():
    """The alias of the database new jobs are written to (and notified on)."""
    from .models import TryOnJob

    return router.db_for_write(TryOnJob)


def wakes_workers(using):
    """Whether new jobs on database ``using`` wake the workers (PostgreSQL, not turned
    off by ``WAKE_ON_COMMIT``, and no Celery, whose messages already do)."""
    return (
        bool(tryon_settings.WAKE_ON_COMMIT)
        and not tryon_settings.CELERY_ENABLED
        and connections[using].vendor == "postgresql"
    )


def announce_new_jobs(using=None):
    """Wake the workers once the current transaction on ``using`` commits (at once in
    autocommit). Sent after the commit, so a worker that wakes can see the jobs;
    a failure to send is logged, never raised to the shopper's request: the
    worker's idle sleep finds the jobs anyway."""
    using = using or job_database()
    if not wakes_workers(using):
        return

    def notify():
        try:
            with connections[using].cursor() as cursor:
                cursor.execute(f"NOTIFY {CHANNEL}")
        except Exception:
            logger.warning(
                "Could not wake the workers for a new job; they will find it within IDLE_INTERVAL.",
                exc_info=True,
            )

    transaction.on_commit(notify, using=using)


class Listener:
    """A worker's own connection that ``LISTEN``s for new jobs, and a wait on it.

    Used by one thread (the worker's loop). The connection is made at once and
    made again, at most every ``RECONNECT_SECONDS``, whenever it is lost; while
    it is down, :meth:`wait` is a plain sleep.
    """

    def __init__(self, using):
        self.using = using
        self._wrapper: Any = None  # a DatabaseWrapper of its own while listening
        self._retry_at = 0.0
        self._connect()

    @property
    def listening(self):
        return self._wrapper is not None

    def fileno(self):
        return self._wrapper.connection.fileno()

    def _connect(self):
        """Open the listening connection; True if listening now."""
        wrapper = connections.create_connection(self.using)
        try:
            wrapper.ensure_connection()
            wrapper.set_autocommit(True)
            raw = wrapper.connection
            if hasattr(raw, "add_notify_handler"):
                # psycopg 3: hand notifications to a handler rather than to a
                # backlog that would grow for ever, as nothing reads it.
                raw.add_notify_handler(lambda notify: None)
            with wrapper.cursor() as cursor:
                cursor.execute(f"LISTEN {CHANNEL}")
        except Exception as err:
            wrapper.close()
            self._retry_at = time.monotonic() + RECONNECT_SECONDS
            logger.warning(
                "Could not listen for new jobs (%s); they are found by the idle sleep "
                "until this works. Trying again in %.0f s.",
                err,
                RECONNECT_SECONDS,
            )
            return False
        self._wrapper = wrapper
        logger.info("Listening for new jobs (PostgreSQL channel %s).", CHANNEL)
        return True

    def reconnect_due(self):
        """Try to listen again if the connection is down and a try is due; True if
        the connection came back (jobs may have been missed meanwhile)."""
        if self._wrapper is not None or time.monotonic() < self._retry_at:
            return False
        return self._connect()

    def drain(self):
        """Read whatever the server sent (notifications); True if the connection is
        still good, False (and closed) if it was lost."""
        try:
            with self._wrapper.cursor() as cursor:
                # Reading an answer makes the driver take in the notifications
                # that arrived before it, on psycopg 2 and 3 alike.
                cursor.execute("SELECT 1")
            notifies = getattr(self._wrapper.connection, "notifies", None)
            if isinstance(notifies, list):  # psycopg 2 keeps them in a list
                notifies.clear()
            return True
        except Exception as err:
            logger.warning(
                "The connection listening for new jobs was lost (%s); new jobs are "
                "found by the idle sleep until it is back.",
                err,
            )
            self.close()
            self._retry_at = time.monotonic()  # try again at once, then every few seconds
            return False

    def close(self):
        if self._wrapper is not None:
            with contextlib.suppress(Exception):  # a lost connection may not close cleanly
                self._wrapper.close()
            self._wrapper = None


class Wakeup:
    """What ends the worker's idle wait early: a new job, or a stop request.

    ``stop`` is the loop's :class:`threading.Event`. Its setter may be a signal
    handler or another thread; a small thread waits on it and passes it on
    through a socket pair, so one ``select()`` waits on both the stop request
    and the listening connection.
    """

    def __init__(self, stop, listener=None):
        self.stop = stop
        self.listener = listener
        self._closed = threading.Event()
        self._stop_reader, self._stop_writer = socket.socketpair()
        self._stop_reader.setblocking(False)
        self._watcher = threading.Thread(
            target=self._watch_stop, name="tryon-stop-watch", daemon=True
        )
        self._watcher.start()

    @classmethod
    def for_worker(cls, stop):
        """The wake-up of a worker's loop: listening on PostgreSQL, else ``None``
        (the loop then sleeps on ``stop`` alone, as it always did)."""
        using = job_database()
        if not wakes_workers(using):
            return None
        return cls(stop, Listener(using))

    def _watch_stop(self):
        while not self._closed.is_set():
            if self.stop.wait(STOP_WATCH_SECONDS):
                with contextlib.suppress(OSError):  # closed meanwhile: nobody waits
                    self._stop_writer.send(b"s")
                return

    def wait(self, timeout):
        """Wait up to ``timeout`` seconds for a new job or a stop request. Returns
        True if woken early by a new job (or by the listening connection coming
        back, when jobs may have been missed)."""
        listener = self.listener
        if listener is not None and listener.reconnect_due():
            return True
        watched = [self._stop_reader]
        if listener is not None and listener.listening:
            watched.append(listener)
        readable, _, _ = select.select(watched, [], [], max(0.0, timeout))
        if listener is not None and listener in readable:
            # A notification, or the server closing the connection: either
            # way a pass now costs little and misses nothing.
            listener.drain()
            return not self.stop.is_set()
        return False

    def pending(self):
        """Whether a new job was announced, without waiting (for a pass in progress:
        see :meth:`django_tryon.worker.Worker.run_pass`)."""
        listener = self.listener
        if listener is None or not listener.listening:
            return False
        readable, _, _ = select.select([listener], [], [], 0)
        return bool(readable) and listener.drain()

    def close(self):
        self._closed.set()
        if self.listener is not None:
            self.listener.close()
        self._stop_reader.close()
        self._stop_writer.close()
