"""The SQL both backends share: every :class:`Store` method written once, over a small dialect.

A :class:`Dialect` says how the two databases spell what differs: the current time (SQLite: an
epoch float the application binds as ``:now``; PostgreSQL: ``now()``), JSON and time columns,
the claim and reap statements (single-statement ``UPDATE … RETURNING`` vs a ``FOR UPDATE SKIP
LOCKED`` CTE), and transactional NOTIFY. :class:`SqlStatements` composes every statement once per
dialect and backoff, so no method builds SQL text on a call. Parameters are written ``:name``
and bound from one dict on both backends (PostgreSQL's text is rewritten to ``%(name)s`` once);
a statement ignores the keys it does not use, so ``now`` is always bound and only SQLite reads
it.

:class:`SqlStore` implements the methods; ``SqliteStore`` and ``PostgresStore`` add only their
connection handling, schema, error translation, wake-ups and what their locking needs
(``add_job``'s dedupe race, ``wait_job_statuses``' variable limit).
"""

from __future__ import annotations

import abc
import functools
import os
import re
import socket
import time
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from smc.runtime.store.base import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    EVENT_FIELDS,
    EVENT_STATUSES,
    JOB_FIELDS,
    JOB_STATUSES,
    Backoff,
    EventRow,
    Job,
    MachineRow,
    OutgoingEvent,
    Store,
    StoreError,
    encode_json,
    event_from_row,
    job_from_row,
)
from smc.runtime.store.waker import JOBS_CHANNEL, machine_channel

#: Columns holding JSON text, and columns holding a time (epoch seconds when read).
_JSON_COLUMNS = frozenset({"data", "result", "payload"})
_TIME_COLUMNS = frozenset(
    {
        "run_after",
        "lease_expires_at",
        "created_at",
        "started_at",
        "finished_at",
        "processed_at",
        "heartbeat_at",
        "updated_at",
    }
)
_MACHINE_FIELDS = (
    "machine_name",
    "state",
    "pid",
    "host",
    "config_path",
    "status",
    "started_at",
    "heartbeat_at",
    "updated_at",
)
_JOB_FIELD_COUNT = len(JOB_FIELDS)
#: The values of a 32-bit integer column.
_INT32 = range(-(2**31), 2**31)
#: A machine type given: jobs for it and jobs for no machine type in particular (NULL).
_MACHINE_TYPE_FILTER = " AND (machine_type IS NULL OR machine_type = :machine_type)"


class Dialect(abc.ABC):
    """How one database spells the parts of the statements that differ. Stateless: one instance
    per backend, used as a cache key."""

    #: The current time in a statement.
    now: str
    #: The end of a lease of ``:lease`` seconds starting now.
    lease_until: str
    #: Appended to a JSON parameter (PostgreSQL: ``::jsonb``).
    json_cast: str = ""
    #: Appended to a text parameter whose type the statement alone does not fix.
    text_cast: str = ""
    #: The two-argument maximum function.
    greatest: str
    #: Written after ``FROM jobs`` when listing pending jobs in claim order.
    claim_order_hint: str = ""
    #: The ``LIMIT`` value meaning "no limit".
    unlimited: int | None = None

    def epoch(self, column: str) -> str:
        """A time column, read as epoch seconds."""
        return column

    def json_text(self, column: str) -> str:
        """A JSON column, read as its text."""
        return column

    def epoch_param(self, name: str) -> str:
        """The parameter ``name`` (epoch seconds or NULL), as a time value."""
        return f":{name}"

    @abc.abstractmethod
    def age(self, column: str) -> str:
        """Seconds from the time in ``column`` until now."""

    @abc.abstractmethod
    def retry_at(self, attempts: str, backoff: Backoff) -> str:
        """When a job that failed ``attempts`` times may run again."""

    @abc.abstractmethod
    def job_types_filter(self, count: int) -> str:
        """``AND job_type`` among ``count`` types bound by :meth:`bind_job_types`."""

    @abc.abstractmethod
    def bind_job_types(self, params: dict[str, Any], job_types: Sequence[str]) -> None: ...

    @abc.abstractmethod
    def claim_job(self, filters: str, statements: SqlStatements) -> str:
        """The atomic claim of the next runnable job matching ``filters`` (``AND …``)."""

    @abc.abstractmethod
    def claim_events(self, statements: SqlStatements) -> str:
        """The atomic lease of up to ``:limit`` of ``:target``'s open events, in id order."""

    @abc.abstractmethod
    def reap(self, statements: SqlStatements, backoff: Backoff) -> str:
        """Apply :meth:`SqlStatements.reap_assignments` to the processing jobs whose lease
        expired."""

    @abc.abstractmethod
    def insert_job(self, insert: str, statements: SqlStatements) -> str:
        """``insert`` (an ``INSERT INTO jobs … VALUES (…)``) completed to return the job row."""

    @abc.abstractmethod
    def with_notify(self, statement: str) -> str:
        """``statement`` (returning rows) also ringing ``:channel`` at commit, if the database
        can; the id or row stays first in each row returned."""

    def finish(self, sql: str) -> str:
        """The statement as the driver takes it."""
        return sql


class SqlStatements:
    """Every statement of one dialect and backoff, built once."""

    def __init__(self, dialect: Dialect, backoff: Backoff) -> None:
        d = dialect
        self.dialect = dialect
        finish = d.finish
        now = d.now
        self.job_columns_text = self.job_columns("")
        self.event_columns_text = self.event_columns("")
        jobs = self.job_columns_text
        events = self.event_columns_text

        self.job_by_dedupe_key = finish(
            f"SELECT {jobs} FROM jobs WHERE dedupe_key = :dedupe_key "
            "AND status IN ('pending', 'processing')"
        )
        self.insert_job = finish(
            d.insert_job(
                """INSERT INTO jobs (id, job_type, machine_type, data, priority, max_attempts,
                        run_after, dedupe_key, created_at)
                    VALUES (:id, :job_type, :machine_type, """
                f":data{d.json_cast}, :priority, :max_attempts, "
                f"coalesce({d.epoch_param('run_after')}, {now}), :dedupe_key, {now})",
                self,
            )
        )
        self.claim_by_id = finish(f"""UPDATE jobs SET status = 'processing', claimed_by = :worker,
                  claim_token = :token, attempts = attempts + 1, started_at = {now},
                  lease_expires_at = {d.lease_until}, finished_at = NULL
                WHERE id = :id AND status = 'pending' AND run_after <= {now}
                RETURNING {jobs}""")
        self.heartbeat = finish(
            f"UPDATE jobs SET lease_expires_at = {d.lease_until} "
            "WHERE id = :id AND claim_token = :token AND status = 'processing'"
        )
        complete = (
            f"UPDATE jobs SET status = 'completed', result = :result{d.json_cast}, "
            f"finished_at = {now}, lease_expires_at = NULL WHERE id = :id AND status = 'processing'"
        )
        fence = " AND claim_token = :token"
        self.complete = finish(complete)
        self.complete_fenced = finish(complete + fence)
        again = "(:retry AND attempts < max_attempts)"
        fail = f"""UPDATE jobs SET
                  status = CASE WHEN {again} THEN 'pending' ELSE 'failed' END,
                  run_after = CASE WHEN {again} THEN {d.retry_at("attempts", backoff)}
                              ELSE run_after END,
                  finished_at = CASE WHEN {again} THEN NULL ELSE {now} END,
                  last_error = :reason, claim_token = NULL, lease_expires_at = NULL
                WHERE id = :id AND status = 'processing'"""
        self.fail = finish(fail)
        self.fail_fenced = finish(fail + fence)
        self.release = finish(f"""UPDATE jobs SET status = 'pending',
                  attempts = {d.greatest}(attempts - 1, 0), run_after = {now},
                  claim_token = NULL, lease_expires_at = NULL
                WHERE id = :id AND claim_token = :token AND status = 'processing'""")
        self.reap = finish(d.reap(self, backoff))
        self.get_job = finish(f"SELECT {jobs} FROM jobs WHERE id = :id")
        self.list_jobs = finish(f"SELECT {jobs} FROM jobs ORDER BY seq DESC LIMIT :limit")
        self.list_jobs_by_status = finish(
            f"SELECT {jobs} FROM jobs WHERE status = :status ORDER BY seq DESC LIMIT :limit"
        )
        #: list_pending by (job_type given, machine_type given).
        self.list_pending = {
            (by_type, by_machine): finish(
                f"SELECT {jobs} FROM jobs{d.claim_order_hint} "
                f"WHERE status = 'pending' AND run_after <= {now}"
                + (" AND job_type = :job_type" if by_type else "")
                + (
                    " AND (machine_type IS NULL OR machine_type = :machine_type)"
                    if by_machine
                    else ""
                )
                + " ORDER BY priority, seq LIMIT :limit"
            )
            for by_type in (False, True)
            for by_machine in (False, True)
        }
        self.retry_job = finish(d.with_notify(f"""UPDATE jobs SET status = 'pending', attempts = 0,
                  run_after = {now}, claim_token = NULL, lease_expires_at = NULL,
                  finished_at = NULL
                WHERE id = :id AND status IN ('failed', 'cancelled') RETURNING id"""))
        self.cancel_job = finish(
            f"UPDATE jobs SET status = 'cancelled', finished_at = {now} "
            "WHERE id = :id AND status = 'pending'"
        )
        self.queue_counts = finish("SELECT status, count(*) FROM jobs GROUP BY status")

        insert_event = f"""INSERT INTO machine_events (target_machine, source_machine, event_type,
                  payload, job_id, created_at)
                VALUES (:target, :source, :event_type, :payload{d.json_cast}, :job_id, {now})
                RETURNING id"""
        self.insert_event = finish(insert_event)
        self.send_event = finish(d.with_notify(insert_event))
        self.claim_events = finish(d.claim_events(self))
        self.ack_event = finish(
            f"UPDATE machine_events SET status = 'done', processed_at = {now}, "
            "lease_expires_at = NULL "
            "WHERE id = :id AND claim_token = :token AND status = 'processing'"
        )
        self.dead_letter_event = finish(
            f"UPDATE machine_events SET status = 'dead', last_error = :error, "
            f"processed_at = {now}, lease_expires_at = NULL "
            "WHERE id = :id AND claim_token = :token AND status = 'processing'"
        )
        self.event_counts = finish("SELECT status, count(*) FROM machine_events GROUP BY status")
        self.heartbeat_event = finish(
            f"UPDATE machine_events SET lease_expires_at = {d.lease_until} "
            "WHERE id = :id AND claim_token = :token AND status = 'processing'"
        )
        self.release_event = finish(
            "UPDATE machine_events SET status = 'pending', claim_token = NULL, "
            f"lease_expires_at = NULL, attempts = {d.greatest}(attempts - 1, 0) "
            "WHERE id = :id AND claim_token = :token AND status = 'processing'"
        )
        self.release_events = finish(
            "UPDATE machine_events SET status = 'pending', claim_token = NULL, "
            "lease_expires_at = NULL WHERE target_machine = :target AND status = 'processing'"
        )
        #: list_events by (target given, status given).
        self.list_events = {
            (by_target, by_status): finish(
                f"SELECT {events} FROM machine_events"
                + _where(
                    ["target_machine = :target"] if by_target else [],
                    ["status = :status"] if by_status else [],
                )
                + " ORDER BY id DESC LIMIT :limit"
            )
            for by_target in (False, True)
            for by_status in (False, True)
        }

        self.register_machine = finish(f"""INSERT INTO machine_state (machine_name, state, pid,
                  host, config_path, status, started_at, heartbeat_at, updated_at)
                VALUES (:name, :state, :pid, :host, :config_path, 'running', {now}, {now}, {now})
                ON CONFLICT (machine_name) DO UPDATE SET state = excluded.state,
                    pid = excluded.pid, host = excluded.host,
                    config_path = excluded.config_path, status = 'running',
                    started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
                    updated_at = excluded.updated_at""")
        self.update_machine = finish(f"""UPDATE machine_state SET state = coalesce(:state, state),
                  heartbeat_at = {now},
                  updated_at = CASE WHEN :state{d.text_cast} IS NULL THEN updated_at ELSE {now} END
                WHERE machine_name = :name""")
        self.stop_machine = finish(
            f"UPDATE machine_state SET status = 'stopped', updated_at = {now} "
            "WHERE machine_name = :name"
        )
        machines = ", ".join(
            [d.epoch(name) if name in _TIME_COLUMNS else name for name in _MACHINE_FIELDS]
            + [d.age("heartbeat_at")]
        )
        self.get_machine = finish(
            f"SELECT {machines} FROM machine_state WHERE machine_name = :name"
        )
        self.list_machines = finish(f"SELECT {machines} FROM machine_state ORDER BY machine_name")
        self._claim_job: dict[tuple[int, bool], str] = {}

    def job_columns(self, prefix: str) -> str:
        """The job row's columns (``JOB_FIELDS`` order), qualified by ``prefix``."""
        return self._columns(JOB_FIELDS, prefix)

    def event_columns(self, prefix: str) -> str:
        """The event row's columns (``EVENT_FIELDS`` order), qualified by ``prefix``."""
        return self._columns(EVENT_FIELDS, prefix)

    def _columns(self, fields: Sequence[str], prefix: str) -> str:
        d = self.dialect
        return ", ".join(
            (
                d.json_text(prefix + name)
                if name in _JSON_COLUMNS
                else d.epoch(prefix + name) if name in _TIME_COLUMNS else prefix + name
            )
            for name in fields
        )

    def reap_assignments(self, backoff: Backoff, prefix: str) -> str:
        """The SET list that re-queues (with backoff) or fails an expired job, its columns
        qualified by ``prefix``."""
        p = prefix
        used_up = f"{p}attempts >= {p}max_attempts"
        return f"""status = CASE WHEN {used_up} THEN 'failed' ELSE 'pending' END,
                  run_after = CASE WHEN {used_up} THEN {p}run_after
                              ELSE {self.dialect.retry_at(p + "attempts", backoff)} END,
                  finished_at = CASE WHEN {used_up} THEN {self.dialect.now} ELSE NULL END,
                  last_error = 'lease expired (claimed by ' || coalesce({p}claimed_by, '?')
                      || ', attempt ' || {p}attempts || ' of ' || {p}max_attempts || ')',
                  claim_token = NULL, lease_expires_at = NULL"""

    def claim_job(self, job_type_count: int, by_machine_type: bool) -> str:
        """The claim statement for ``job_type_count`` types (-1: any type), with or without the
        machine type filter; built on first use, then reused."""
        key = (job_type_count, by_machine_type)
        statement = self._claim_job.get(key)
        if statement is None:
            filters = "" if job_type_count < 0 else self.dialect.job_types_filter(job_type_count)
            if by_machine_type:
                filters += _MACHINE_TYPE_FILTER
            statement = self._claim_job[key] = self.dialect.finish(
                self.dialect.claim_job(filters, self)
            )
        return statement


def _where(*conditions: list[str]) -> str:
    joined = [condition for group in conditions for condition in group]
    return " WHERE " + " AND ".join(joined) if joined else ""


@functools.lru_cache(maxsize=32)
def statements_for(dialect: Dialect, backoff: Backoff) -> SqlStatements:
    """The statements of ``dialect`` with ``backoff``, shared by every store that uses them."""
    return SqlStatements(dialect, backoff)


#: ``:name`` parameters (not ``::type`` casts), for drivers that want ``%(name)s``.
_NAMED_PARAMETER = re.compile(r"(?<![:\w]):(?!:)([A-Za-z_][A-Za-z0-9_]*)")


def pyformat_parameters(sql: str) -> str:
    """``sql`` with each ``:name`` parameter written ``%(name)s`` (psycopg's style)."""
    if "%" in sql:
        raise ValueError(f"a literal % would need escaping for pyformat: {sql}")
    return _NAMED_PARAMETER.sub(r"%(\1)s", sql)


class SqlStore(Store):
    """The :class:`Store` methods over a DB-API-like connection and a :class:`Dialect`.

    A backend provides ``dialect``, the context managers :meth:`_using` (the connection, any
    database error turned into a one-line :class:`StoreError`) and :meth:`_transaction` (the
    same, inside one transaction), :meth:`_insert_job`, :meth:`wait_job_statuses`, the wake-up
    hooks and the lifecycle methods. ``_unique_violation`` is the driver's exception for a
    broken unique constraint.
    """

    dialect: Dialect
    _unique_violation: type[Exception]

    def _init_statements(self) -> None:
        self._sql = statements_for(self.dialect, self.backoff)

    # --- backend hooks ---

    @abc.abstractmethod
    def _using(self, action: str) -> AbstractContextManager[Any]: ...

    @abc.abstractmethod
    def _transaction(self, action: str) -> AbstractContextManager[Any]: ...

    @abc.abstractmethod
    def _insert_job(self, params: dict[str, Any]) -> tuple[Job, bool]:
        """Insert the job in ``params``, or find the pending or processing job holding its
        ``dedupe_key``; True when inserted."""

    def _channel_name(self, channel: str) -> str:
        """``channel`` as the statements' ``:channel`` parameter names it."""
        return channel

    def _notify_in(self, connection: Any, channel: str) -> None:
        """Ring ``channel`` at the commit of the current transaction, if the database can."""
        return None

    def _ring(self, channel: str) -> None:
        """Ring ``channel`` after a commit, if the database could not do it at commit."""
        return None

    # --- jobs ---

    def add_job(
        self,
        job_type: str,
        data: Any = None,
        job_id: str | None = None,
        priority: int = DEFAULT_PRIORITY,
        machine_type: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        run_after: float | None = None,
        dedupe_key: str | None = None,
    ) -> Job:
        data_json = encode_json({} if data is None else data, "job data")
        if priority not in _INT32 or max_attempts not in _INT32:
            # Both are 32-bit columns on PostgreSQL; SQLite would take more, so say it alike.
            raise ValueError(
                f"priority ({priority!r}) and max_attempts ({max_attempts!r}) must be "
                "32-bit integers"
            )
        job, inserted = self._insert_job(
            {
                "id": job_id if job_id is not None else uuid.uuid4().hex,
                "job_type": job_type,
                "machine_type": machine_type,
                "data": data_json,
                "priority": priority,
                "max_attempts": max_attempts,
                "run_after": run_after,
                "dedupe_key": dedupe_key,
                "now": time.time(),
                "channel": self._channel_name(JOBS_CHANNEL),
            }
        )
        if inserted:
            self._ring(JOBS_CHANNEL)
        return job

    def _duplicate_message(self, job_id: str) -> str:
        return f"cannot add job to {self.location}: a job with id {job_id!r} already exists"

    def _claim_next(
        self,
        worker: str,
        job_types: Sequence[str] | None,
        machine_type: str | None,
        lease_seconds: float,
    ) -> Job | None:
        params: dict[str, Any] = {
            "worker": worker,
            "token": uuid.uuid4().hex,
            "now": time.time(),
            "lease": float(lease_seconds),
            "machine_type": machine_type,
        }
        if job_types is None:
            sql = self._sql.claim_job(-1, machine_type is not None)
        else:
            if not job_types:
                return None
            sql = self._sql.claim_job(len(job_types), machine_type is not None)
            self.dialect.bind_job_types(params, job_types)
        with self._using("claim a job in") as connection:
            # fetchall: on SQLite the statement (and its implicit commit) ends only when fully
            # stepped.
            rows = connection.execute(sql, params).fetchall()
        return job_from_row(rows[0]) if rows else None

    def _claim_by_id(self, job_id: str, worker: str, lease_seconds: float) -> Job | None:
        params = {
            "id": job_id,
            "worker": worker,
            "token": uuid.uuid4().hex,
            "now": time.time(),
            "lease": float(lease_seconds),
        }
        with self._using("claim a job in") as connection:
            rows = connection.execute(self._sql.claim_by_id, params).fetchall()
        return job_from_row(rows[0]) if rows else None

    def heartbeat(self, job_id: str, claim_token: str, lease_seconds: float) -> bool:
        params = {
            "id": job_id,
            "token": claim_token,
            "now": time.time(),
            "lease": float(lease_seconds),
        }
        with self._using("write to") as connection:
            return bool(connection.execute(self._sql.heartbeat, params).rowcount == 1)

    def complete_job(self, job_id: str, claim_token: str | None = None, result: Any = None) -> bool:
        params = {
            "id": job_id,
            "token": claim_token,
            "result": None if result is None else encode_json(result, "job result"),
            "now": time.time(),
        }
        sql = self._sql.complete if claim_token is None else self._sql.complete_fenced
        with self._using("write to") as connection:
            return bool(connection.execute(sql, params).rowcount == 1)

    def fail_job(
        self,
        job_id: str,
        reason: str,
        claim_token: str | None = None,
        retry: bool = False,
    ) -> bool:
        params = {
            "id": job_id,
            "token": claim_token,
            "reason": reason,
            "retry": retry,
            "now": time.time(),
        }
        sql = self._sql.fail if claim_token is None else self._sql.fail_fenced
        with self._using("write to") as connection:
            return bool(connection.execute(sql, params).rowcount == 1)

    def release_job(self, job_id: str, claim_token: str) -> bool:
        params = {"id": job_id, "token": claim_token, "now": time.time()}
        with self._using("write to") as connection:
            return bool(connection.execute(self._sql.release, params).rowcount == 1)

    def reap_expired(self) -> int:
        with self._using("reap expired leases in") as connection:
            return int(connection.execute(self._sql.reap, {"now": time.time()}).rowcount)

    def get_job(self, job_id: str) -> Job | None:
        with self._using("read") as connection:
            row = connection.execute(self._sql.get_job, {"id": job_id}).fetchone()
        return None if row is None else job_from_row(row)

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[Job]:
        sql = self._sql.list_jobs if status is None else self._sql.list_jobs_by_status
        with self._using("read") as connection:
            rows = connection.execute(sql, {"status": status, "limit": limit}).fetchall()
        return [job_from_row(row) for row in rows]

    def list_pending(
        self,
        job_type: str | None = None,
        machine_type: str | None = None,
        limit: int | None = None,
    ) -> list[Job]:
        sql = self._sql.list_pending[job_type is not None, machine_type is not None]
        params = {
            "job_type": job_type,
            "machine_type": machine_type,
            "limit": self.dialect.unlimited if limit is None else limit,
            "now": time.time(),
        }
        with self._using("read") as connection:
            rows = connection.execute(sql, params).fetchall()
        return [job_from_row(row) for row in rows]

    def retry_job(self, job_id: str) -> bool:
        params = {"id": job_id, "now": time.time(), "channel": self._channel_name(JOBS_CHANNEL)}
        with self._using("write to") as connection:
            try:
                retried = bool(connection.execute(self._sql.retry_job, params).fetchall())
            except self._unique_violation:
                raise StoreError(
                    f"cannot retry job {job_id!r} in {self.location}: another pending job holds "
                    "its dedupe key"
                ) from None
        if retried:
            self._ring(JOBS_CHANNEL)
        return retried

    def cancel_job(self, job_id: str) -> bool:
        with self._using("write to") as connection:
            cursor = connection.execute(self._sql.cancel_job, {"id": job_id, "now": time.time()})
            return bool(cursor.rowcount == 1)

    def queue_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(JOB_STATUSES, 0)
        with self._using("read") as connection:
            for status, count in connection.execute(self._sql.queue_counts).fetchall():
                counts[status] = int(count)
        return counts

    # --- events ---

    def send_event(
        self,
        target: str,
        event_type: str,
        payload: Any = None,
        source: str | None = None,
        job_id: str | None = None,
    ) -> int:
        channel = machine_channel(target)
        params = {
            "target": target,
            "source": source,
            "event_type": event_type,
            "payload": encode_json(payload, "event payload"),
            "job_id": job_id,
            "now": time.time(),
            "channel": self._channel_name(channel),
        }
        with self._using("write to") as connection:
            event_id = int(connection.execute(self._sql.send_event, params).fetchall()[0][0])
        self._ring(channel)
        return event_id

    def _claim_events(self, target: str, limit: int, lease_seconds: float) -> list[EventRow]:
        params = {
            "target": target,
            "limit": limit,
            "token": uuid.uuid4().hex,
            "now": time.time(),
            "lease": float(lease_seconds),
        }
        with self._using("claim events in") as connection:
            rows = connection.execute(self._sql.claim_events, params).fetchall()
        return sorted((event_from_row(row) for row in rows), key=lambda event: event.id)

    def ack_event(self, event_id: int, claim_token: str) -> bool:
        params = {"id": event_id, "token": claim_token, "now": time.time()}
        with self._using("write to") as connection:
            return bool(connection.execute(self._sql.ack_event, params).rowcount == 1)

    def dead_letter_event(self, event_id: int, claim_token: str, reason: str) -> bool:
        params = {"id": event_id, "token": claim_token, "error": reason, "now": time.time()}
        with self._using("write to") as connection:
            return bool(connection.execute(self._sql.dead_letter_event, params).rowcount == 1)

    def event_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(EVENT_STATUSES, 0)
        with self._using("read") as connection:
            for status, count in connection.execute(self._sql.event_counts).fetchall():
                counts[status] = int(count)
        return counts

    def heartbeat_event(self, event_id: int, claim_token: str, lease_seconds: float) -> bool:
        params = {
            "id": event_id,
            "token": claim_token,
            "now": time.time(),
            "lease": float(lease_seconds),
        }
        with self._using("write to") as connection:
            return bool(connection.execute(self._sql.heartbeat_event, params).rowcount == 1)

    def release_event(self, event_id: int, claim_token: str) -> bool:
        params = {"id": event_id, "token": claim_token}
        with self._using("write to") as connection:
            return bool(connection.execute(self._sql.release_event, params).rowcount == 1)

    def release_events(self, target: str) -> int:
        with self._using("write to") as connection:
            return int(connection.execute(self._sql.release_events, {"target": target}).rowcount)

    def list_events(
        self, target: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[EventRow]:
        sql = self._sql.list_events[target is not None, status is not None]
        params = {"target": target, "status": status, "limit": limit}
        with self._using("read") as connection:
            rows = connection.execute(sql, params).fetchall()
        return [event_from_row(row) for row in rows]

    # --- machines ---

    def register_machine(
        self,
        name: str,
        state: str | None,
        pid: int | None = None,
        host: str | None = None,
        config_path: str | None = None,
    ) -> None:
        params = {
            "name": name,
            "state": state,
            "pid": os.getpid() if pid is None else pid,
            "host": socket.gethostname() if host is None else host,
            "config_path": config_path,
            "now": time.time(),
        }
        with self._using("write to") as connection:
            connection.execute(self._sql.register_machine, params)

    def _update_machine(self, connection: Any, name: str, state: str | None, now: float) -> bool:
        params = {"name": name, "state": state, "now": now}
        return bool(connection.execute(self._sql.update_machine, params).rowcount == 1)

    def update_machine(self, name: str, state: str | None = None) -> bool:
        with self._using("write to") as connection:
            return self._update_machine(connection, name, state, time.time())

    def heartbeat_machine(self, name: str) -> bool:
        return self.update_machine(name, None)

    def stop_machine(self, name: str) -> bool:
        with self._using("write to") as connection:
            cursor = connection.execute(self._sql.stop_machine, {"name": name, "now": time.time()})
            return bool(cursor.rowcount == 1)

    def _machine_from_row(self, row: Sequence[Any]) -> MachineRow:
        name, state, pid, host, config_path, status, started, heartbeat, updated, age = row
        age = None if age is None else max(float(age), 0.0)
        return MachineRow(
            name=name,
            state=state,
            pid=pid,
            host=host,
            config_path=config_path,
            status=self._status(status, pid, host, age),
            started_at=started,
            heartbeat_at=heartbeat,
            heartbeat_age=age,
            updated_at=updated,
        )

    def get_machine(self, name: str) -> MachineRow | None:
        with self._using("read") as connection:
            row = connection.execute(
                self._sql.get_machine, {"name": name, "now": time.time()}
            ).fetchone()
        return None if row is None else self._machine_from_row(row)

    def list_machines(self) -> list[MachineRow]:
        with self._using("read") as connection:
            rows = connection.execute(self._sql.list_machines, {"now": time.time()}).fetchall()
        return [self._machine_from_row(row) for row in rows]

    def update_machine_and_send(
        self,
        name: str,
        state: str | None,
        events: Sequence[OutgoingEvent],
        source: str | None = None,
    ) -> list[int]:
        encoded = [
            (target, event_type, encode_json(payload, "event payload"))
            for target, event_type, payload in events
        ]
        channels = [machine_channel(target) for target in dict.fromkeys(t for t, _, _ in encoded)]
        now = time.time()
        with self._transaction("write to") as connection:
            if not self._update_machine(connection, name, state, now):
                raise StoreError(
                    f"cannot update machine {name!r} in {self.location}: not registered"
                )
            ids = [
                int(
                    connection.execute(
                        self._sql.insert_event,
                        {
                            "target": target,
                            "source": source or name,
                            "event_type": event_type,
                            "payload": payload_json,
                            "job_id": None,
                            "now": now,
                        },
                    ).fetchall()[0][0]
                )
                for target, event_type, payload_json in encoded
            ]
            for channel in channels:
                # Transactional NOTIFY where the database has it: delivered at commit.
                self._notify_in(connection, channel)
        for channel in channels:
            self._ring(channel)
        return ids


def job_row_prefix(row: Sequence[Any]) -> Sequence[Any]:
    """The job columns of a row that may carry extra columns after them (a NOTIFY result)."""
    return row[:_JOB_FIELD_COUNT]


__all__ = [
    "Dialect",
    "SqlStatements",
    "SqlStore",
    "job_row_prefix",
    "pyformat_parameters",
    "statements_for",
]
