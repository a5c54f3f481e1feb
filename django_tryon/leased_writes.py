"""Writes to the jobs a worker's pass holds: fenced by the lease, sent in batches.

Every write the engine makes to a job is an ``UPDATE`` that only matches while
the pass still holds the job's lease and the job is still active (staff may
cancel it meanwhile), and that ends the lease. A worker that lost a lease can
therefore never overwrite another's work.

The writes a pass has ready at one moment (the provider calls that finished
together) leave together: one statement per set of columns, run with
``executemany`` (one round trip on PostgreSQL, where psycopg pipelines it).

The statement is written here once per set of columns and database, not
compiled by the ORM for every write: compiling an ``UPDATE`` with its lookups
costs several times the CPU of running it on a row found by primary key, and
the worker writes two or three times per job. Values still go through each
field's own conversion (``get_db_prep_save``), as the ORM's would. The plain
per-job ORM ``update()`` was measured against it (``python -m bench.writes``
and the throughput benchmark, docs/performance.md): about 1 ms more CPU per
write, enough to take the worker's CPU per job over its 5 ms target. Claims
and releases, once per pass, are plain ORM updates.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from django.db import connections, models, router
from django.db.models import Case, F, Value, When

from .models import ACTIVE_STATUSES, TryOnJob


@dataclass(frozen=True)
class Increment:
    """A field value meaning "add ``by`` to what the row holds" (``polls + 1``)."""

    by: int = 1


@dataclass(frozen=True)
class Release:
    """A job handed back unchanged at the end of a pass, due again at ``next_attempt_at``
    (``queried``: after a query that found it as it was; ``unbind``: after a submit
    refused with an answer, so the job names no provider any more)."""

    next_attempt_at: datetime
    queried: bool = False
    unbind: bool = False


@dataclass
class _Write:
    job: TryOnJob
    fields: dict[str, Any]
    on_done: Callable[[bool], None] | None

    @property
    def shape(self):
        return tuple((name, isinstance(value, Increment)) for name, value in self.fields.items())


class LeasedWrites:
    """The pending writes of one pass, which holds its jobs' leases as ``token``.

    :meth:`add` queues a write; :meth:`flush` sends every queued one and then
    calls each write's ``on_done`` with ``True`` if it was recorded, ``False``
    if the lease was lost or the job changed elsewhere (canceled). A recorded
    write's values are set on the job instance too, so signal receivers see
    the job as saved.
    """

    # Written by every fenced write: the lease ends with it.
    ENDS_LEASE = ("updated_at", "lease_owner", "lease_expires_at")

    def __init__(self, token, *, clock):
        self.token = token
        self.clock = clock
        self._pending: list[_Write] = []
        self._pending_pks: set = set()
        self._last_stamp = None
        self._closed = False

    def __bool__(self):
        return bool(self._pending)

    def close(self):
        """End the pass's writes: from now on every write is refused."""
        self._closed = True

    def _check_open(self):
        if self._closed:
            raise RuntimeError("Job writes happen within a pass (run_pass).")

    def claim(self, due, *, now, lease_seconds, limit, job_ids=None):
        """Take a lease on up to ``limit`` jobs of the queryset ``due`` (only ``job_ids``
        if given), oldest due first; return the jobs this pass holds.

        The conditional UPDATE is the lock: of two workers racing for a job,
        only one UPDATE matches its free lease (row locking on PostgreSQL,
        serialised writes on SQLite).
        """
        self._check_open()
        if job_ids is not None:
            due = due.filter(pk__in=list(job_ids))
        candidates = list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
        if not candidates:
            return []
        expires = now + timedelta(seconds=lease_seconds)
        due.filter(pk__in=candidates).update(
            lease_owner=self.token, lease_expires_at=expires, updated_at=now
        )
        return list(
            TryOnJob.objects.filter(pk__in=candidates, lease_owner=self.token)
            .select_related("garment")
            .order_by("next_attempt_at")
        )

    def release(self, releases: Mapping[Any, Release]):
        """Give back the lease of jobs whose state did not change (``{pk: Release}``),
        in one statement."""
        self._check_open()
        if not releases:
            return
        queried = [pk for pk, release in releases.items() if release.queried]
        unbound = [pk for pk, release in releases.items() if release.unbind]
        now = self.clock()
        TryOnJob.objects.filter(pk__in=list(releases), lease_owner=self.token).update(
            next_attempt_at=Case(
                *(
                    When(pk=pk, then=Value(release.next_attempt_at))
                    for pk, release in releases.items()
                ),
                output_field=models.DateTimeField(),
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
            **_unbinding(unbound),
            lease_owner="",
            lease_expires_at=None,
            submit_started_at=None,
            updated_at=now,
        )

    def add(self, job, fields, on_done=None):
        """Queue ``fields`` (name -> value or :class:`Increment`) for ``job``."""
        self._check_open()
        if job.pk in self._pending_pks:
            # A job is written once per pass (the write ends its lease); a second
            # write must not share a batch with the first.
            self.flush()
        self._pending.append(_Write(job, dict(fields), on_done))
        self._pending_pks.add(job.pk)

    def flush(self):
        """Send the queued writes, then tell each one's ``on_done`` how it went."""
        if not self._pending:
            return
        pending, self._pending, self._pending_pks = self._pending, [], set()
        stamp = self._stamp()
        groups: dict[tuple, list[_Write]] = {}
        for write in pending:
            groups.setdefault(write.shape, []).append(write)
        alias, connection = _database()
        recorded = set()
        for shape, writes in groups.items():
            recorded |= self._send(connection, alias, shape, writes, stamp)
        for write in pending:
            held = write.job.pk in recorded
            if held:
                self._set_on_instance(write, stamp)
            if write.on_done is not None:
                write.on_done(held)

    def mark(self, jobs: Iterable[TryOnJob], change) -> list[TryOnJob]:
        """Write ``change`` (plain values, no status: a
        :func:`~django_tryon.transitions.submit_started`) now, in one statement, on
        those of ``jobs`` this pass holds and that are still active, keeping their
        leases; return them."""
        self._check_open()
        jobs = list(jobs)
        if not jobs:
            return []
        values = change.values()
        alias, connection = _database()
        pks = [job.pk for job in jobs]
        assignments = ", ".join(f"{_column(connection, name)} = %s" for name in values)
        sql = (
            f"UPDATE {_table(connection)} SET {assignments} "
            f"WHERE {_column(connection, 'pk')} IN ({', '.join(['%s'] * len(pks))}) "
            f"AND {_fence_sql(connection)}"
        )
        params = [
            *(_field(name).get_db_prep_save(value, connection) for name, value in values.items()),
            *(_field("pk").get_db_prep_value(pk, connection) for pk in pks),
            *_fence_params(self.token),
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            count = cursor.rowcount
        if count < len(jobs):
            # Some leases were lost meanwhile, or jobs canceled (rare): find which
            # jobs are still held.
            held = set(
                TryOnJob.objects.using(alias)
                .filter(pk__in=pks, lease_owner=self.token, **values)
                .values_list("pk", flat=True)
            )
            jobs = [job for job in jobs if job.pk in held]
        for job in jobs:
            for name, value in values.items():
                setattr(job, name, value)
        return jobs

    def _stamp(self):
        # The write's updated_at, told apart from any other write of these rows
        # (see _send): later than this pass's previous flush by at least 1 µs.
        stamp = self.clock()
        if self._last_stamp is not None and stamp <= self._last_stamp:
            stamp = self._last_stamp + timedelta(microseconds=1)
        self._last_stamp = stamp
        return stamp

    def _send(self, connection, alias, shape, writes, stamp):
        """Run one shape's writes; return the primary keys of those recorded."""
        sql = _statement(connection, shape)
        params = [_params(connection, write, stamp, self.token) for write in writes]
        with connection.cursor() as cursor:
            if len(params) == 1:
                cursor.execute(sql, params[0])
                return {writes[0].job.pk} if cursor.rowcount == 1 else set()
            # No transaction around it: each row's write stands alone, as it
            # would sent on its own, and BEGIN and COMMIT would be two more
            # round trips.
            cursor.executemany(sql, params)
            count = cursor.rowcount
        pks = [write.job.pk for write in writes]
        if count == len(writes):
            return set(pks)
        # Some leases were lost meanwhile (rare), or the driver does not sum the
        # rows of an executemany: the rows carrying this flush's stamp, with no
        # lease, are the ones written.
        return set(
            TryOnJob.objects.using(alias)
            .filter(pk__in=pks, updated_at=stamp, lease_owner="")
            .values_list("pk", flat=True)
        )

    @staticmethod
    def _set_on_instance(write, stamp):
        job = write.job
        for name, value in write.fields.items():
            if isinstance(value, Increment):
                value = getattr(job, name) + value.by
            setattr(job, name, value)
        job.updated_at, job.lease_owner, job.lease_expires_at = stamp, "", None


def _unbinding(pks: list[Any]) -> dict[str, Any]:
    """The ``provider`` column cleared for ``pks`` in a release, kept for the others."""
    if not pks:
        return {}
    provider = Case(
        When(pk__in=pks, then=Value("")), default=F("provider"), output_field=models.CharField()
    )
    return {"provider": provider}


_statements: dict[tuple, str] = {}


def _statement(connection, shape):
    key = (connection.alias, shape)
    sql = _statements.get(key)
    if sql is None:
        assignments = []
        for name, increments in shape + tuple((name, False) for name in LeasedWrites.ENDS_LEASE):
            column = _column(connection, name)
            assignments.append(f"{column} = {column} + %s" if increments else f"{column} = %s")
        sql = _statements[key] = (
            f"UPDATE {_table(connection)} SET {', '.join(assignments)} "
            f"WHERE {_column(connection, 'pk')} = %s AND {_fence_sql(connection)}"
        )
    return sql


_ACTIVE = [str(status) for status in ACTIVE_STATUSES]


def _fence_sql(connection):
    statuses = ", ".join(["%s"] * len(_ACTIVE))
    return (
        f"{_column(connection, 'lease_owner')} = %s "
        f"AND {_column(connection, 'status')} IN ({statuses})"
    )


def _fence_params(token):
    """The values of _fence_sql's placeholders."""
    return [token, *_ACTIVE]


def _params(connection, write, stamp, token):
    values: list[Any] = []
    for name, value in write.fields.items():
        if isinstance(value, Increment):
            values.append(value.by)
        else:
            values.append(_field(name).get_db_prep_save(value, connection))
    values.append(_field("updated_at").get_db_prep_save(stamp, connection))
    values += ["", None]  # lease_owner, lease_expires_at
    values.append(_field("pk").get_db_prep_value(write.job.pk, connection))
    values += _fence_params(token)
    return values


def _database():
    alias = router.db_for_write(TryOnJob)
    return alias, connections[alias]


def _field(name) -> models.Field:
    meta = TryOnJob._meta
    return cast(models.Field, meta.pk if name == "pk" else meta.get_field(name))


def _column(connection, name):
    return connection.ops.quote_name(_field(name).column)


def _table(connection):
    return connection.ops.quote_name(TryOnJob._meta.db_table)
