"""The store itself: every :class:`~smc.runtime.store.base.Store` method, written once.

:class:`SqlStore` runs the statements of ``statements.SqlStatements`` through a
``backend.Backend``, which is all a database adds (the connection, the dialect, wake-ups). It
binds ``:now`` from its :class:`~smc.runtime.clock.Clock` on every call; statements in a
dialect whose time is the database's own (PostgreSQL's ``now()``) ignore it, so there the
clock drives only the application's own timing (how often :meth:`SqlStore.reap_if_due`
reaps).

Over 500 lines because it is the one implementation of the whole protocol (about forty
methods, each a few lines around its statement); split by table, the parts would share
everything but their statements.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from ulid import ULID

from smc.runtime.clock import SYSTEM_CLOCK, Clock
from smc.runtime.jsonlimits import decode_json
from smc.runtime.store.backend import Backend, Connection
from smc.runtime.store.base import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MACHINE_STALE_AFTER,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    DEFAULT_REAP_INTERVAL,
    Backoff,
    OutgoingEvent,
)
from smc.runtime.store.errors import DuplicateJobError, JobRefusedError, StoreError
from smc.runtime.store.rows import (
    EVENT_STATUSES,
    HISTORY_FIELDS,
    JOB_FIELDS,
    JOB_STATUSES,
    LEAN_HISTORY_WIDTH,
    OPEN_JOB_STATUSES,
    EventRow,
    HistoryEntry,
    HistoryLine,
    HistoryRow,
    Job,
    MachineRow,
    check_job_data,
    check_job_id,
    configuration_text,
    encode_json,
    event_from_row,
    history_entry,
    history_from_row,
    job_from_row,
    json_kind,
    machine_status,
)
from smc.runtime.store.statements import statements_for
from smc.runtime.store.waker import HISTORY_CHANNEL, JOBS_CHANNEL, Waker, machine_channel
from smc.runtime.store.workflows import WorkflowStatements, WorkflowTables

_Result = TypeVar("_Result")
#: The values after a lean history row's (rows.LEAN_HISTORY_WIDTH): all NULL.
_NULL_TAIL = (None,) * (len(HISTORY_FIELDS) - 1 - LEAN_HISTORY_WIDTH)

#: What a write returns as its own history rows, given its result.
_HistoryOf = Callable[[Any], Iterable[HistoryEntry]]
#: Staged history entries a worker keeps while the database refuses them; past this the
#: oldest are dropped (and logged), so an outage cannot grow the process without bound.
MAX_STAGED_HISTORY = 10_000


def new_trace_id() -> str:
    """A new trace id: a ULID (sortable by creation time, 26 characters)."""
    return str(ULID())


def canonical_trace_id(text: str) -> str:
    """A ULID typed in any case, in the form trace ids are stored in (upper case); raises
    ``ValueError`` for text that is not a ULID."""
    return str(ULID.from_str(text))


def stored_trace_id(text: str) -> str:
    """A trace id as it is stored: a ULID in upper case (as they are made, and as a lookup
    in any case looks for them), other text as it is."""
    if len(text) == 26 and text != text.upper():
        with contextlib.suppress(ValueError):
            return canonical_trace_id(text)
    return text


_log = logging.getLogger("smc.store")

_JOB_FIELD_COUNT = len(JOB_FIELDS)
_JOB_ID, _JOB_TYPE, _JOB_ATTEMPTS, _JOB_TRACE = (
    JOB_FIELDS.index(name) for name in ("id", "job_type", "attempts", "trace_id")
)
#: The values of a 32-bit integer column.
_INT32 = range(-(2**31), 2**31)
#: How often ``add_job`` inserts again when the holder of a dedupe key finished between the
#: insert that skipped the key and the look-up (a database whose insert skips held keys).
_DEDUPE_ATTEMPTS = 10
#: Rows deleted in one transaction of ``prune_history`` (about 10-50 ms of SQLite's write lock).
PRUNE_BATCH = 10_000
#: Machines named in one ``last_history_rows`` statement (SQLite binds at most 32,766
#: parameters in one).
LAST_ROWS_MACHINES = 1000


def _workflow_run_of(data_json: str | None) -> str | None:
    """The run a job's data says it belongs to (``workflow.run_id``, which a workflow
    scheduler puts in every task's job), or None."""
    try:
        data = decode_json(data_json or "null")
    except ValueError:
        return None
    workflow = data.get("workflow") if isinstance(data, dict) else None
    run_id = workflow.get("run_id") if isinstance(workflow, dict) else None
    return run_id if isinstance(run_id, str) else None


class SqlStore(WorkflowTables):
    """The :class:`~smc.runtime.store.base.Store` over a :class:`Backend`.

    ``backoff`` sets the retry delays (it must be the one the backend was given, if it takes
    one), ``reap_interval`` how often :meth:`claim_job` reaps expired leases,
    ``machine_stale_after`` when a silent machine is reported dead, ``clock`` the time the
    store stamps rows with where the database does not (see the module's docstring).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        backoff: Backoff | None = None,
        reap_interval: float = DEFAULT_REAP_INTERVAL,
        machine_stale_after: float = DEFAULT_MACHINE_STALE_AFTER,
        clock: Clock = SYSTEM_CLOCK,
        history: bool = True,
    ) -> None:
        self.backend = backend
        #: Whether writes record history rows (off only to measure what history costs).
        self.history_enabled = history
        self._trace_id: str | None = None
        #: The machine this store works for (a worker's, set by its engine): the source of
        #: the jobs it adds, in their ``job_added`` rows. None: a command or a program.
        self.actor: str | None = None
        self._staged: list[HistoryEntry] = []
        self._history_lock = threading.Lock()
        self.backoff = backoff or Backoff()
        self.reap_interval = reap_interval
        self.machine_stale_after = machine_stale_after
        self.clock = clock
        self._sql = statements_for(backend.dialect, self.backoff)
        self._run = backend.run
        #: Whether the database writes the claims' and completions' rows itself (SQLite's
        #: connection-local triggers): the store then stages nothing for them.
        self._jobs_recorded_by_database = history and bool(backend.dialect.job_history_triggers)
        if self._jobs_recorded_by_database:
            backend.on_each_connection(backend.dialect.job_history_triggers)
        self._wf = WorkflowStatements(backend.dialect)
        self._last_reap = float("-inf")
        #: The process that last reaped: a forked child reaps at its first claim.
        self._reaper_pid = os.getpid()
        #: Whether :meth:`close` closes the connection (not for :meth:`sharing_connection`).
        self._owns_backend = True

    @property
    def trace_id(self) -> str | None:
        """The trace a worker is working in (its current job's or event's): jobs and events
        this store adds without a trace id of their own carry it; None: each starts a new
        trace (a job or event from outside). A ULID set in lower case is kept in upper case,
        as trace ids are made and looked for."""
        return self._trace_id

    @trace_id.setter
    def trace_id(self, value: str | None) -> None:
        self._trace_id = None if value is None else stored_trace_id(value)

    def sharing_connection(self) -> SqlStore:
        """Another store on this one's connection (and its lock: statements take turns), for
        another thread of the process: its own staged history, trace and reaper clock, and a
        :meth:`close` that leaves the connection open. Only for a backend whose connection
        may be used from several threads (PostgreSQL's; see ``open_background_store``)."""
        other = copy.copy(self)
        other.trace_id = None
        other._staged = []
        other._history_lock = threading.Lock()
        other._last_reap = float("-inf")
        other._owns_backend = False
        return other

    # --- lifecycle ---

    @property
    def location(self) -> str:
        return self.backend.location

    @property
    def socket_dir(self) -> Path | None:
        return self.backend.socket_dir

    def close(self) -> None:
        if self._owns_backend:
            self.backend.close()

    def checkpoint(self) -> None:
        self.backend.checkpoint()

    def replaced(self) -> str | None:
        return self.backend.replaced()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- running statements ---

    def _rowcount(self, action: str, sql: str, params: dict[str, Any]) -> int:
        return self._run(action, lambda connection: connection.execute(sql, params).rowcount)

    def _fetchall(self, action: str, sql: str, params: dict[str, Any]) -> list[Any]:
        # fetchall: on SQLite a writing statement (and its implicit commit) ends only when fully
        # stepped.
        return self._run(action, lambda connection: connection.execute(sql, params).fetchall())

    def _fetchone(self, action: str, sql: str, params: dict[str, Any]) -> Any:
        return self._run(action, lambda connection: connection.execute(sql, params).fetchone())

    # --- history ---

    def stage_history(self, entry: HistoryEntry) -> None:
        staged = self._staged
        if not self.history_enabled:
            return
        staged.append(entry)
        if len(staged) > MAX_STAGED_HISTORY:
            del staged[0]
            _log.warning("history: more than %d rows wait for the database", MAX_STAGED_HISTORY)

    def flush_history(self) -> None:
        if self._staged:
            self._write("write history to", lambda connection: None)

    def _write(
        self,
        action: str,
        work: Callable[[Connection], _Result],
        history: _HistoryOf | None = None,
        *,
        transaction: bool = False,
    ) -> _Result:
        """``work`` (a write), with the staged history and ``history(result)`` (its own rows)
        inserted in the same transaction; as ``Backend.run`` when there is nothing to record.
        The staged rows are forgotten only once committed (a refused write keeps them for
        the next one)."""
        staged = self._staged
        if not self.history_enabled or (history is None and not staged):
            return self._run(action, work, transaction=transaction)
        backend = self.backend
        insert = self._sql.insert_history
        if history is None:
            with self._history_lock:
                count = len(staged)
                rows = staged[:count]
                if all(row[LEAN_HISTORY_WIDTH:] == _NULL_TAIL for row in rows):
                    # Transitions only (the worker's every claim and completion): their NULL
                    # tail not bound (statements.insert_history_lean).
                    insert = self._sql.insert_history_lean
                    rows = [row[:LEAN_HISTORY_WIDTH] for row in rows]
                result = backend.run_after_rows(action, insert, rows, work)
                del staged[:count]
            return result
        rows_of = history
        with self._history_lock:
            count = len(staged)

            def recorded(connection: Connection) -> _Result:
                # The write, then the history: the order of the tables in every transaction
                # (PostgreSQL's opening DDL takes them in that order too: no deadlock).
                result = work(connection)
                rows = staged[:count]
                rows.extend(rows_of(result))
                if rows:
                    backend.execute_many(connection, insert, rows)
                    backend.notify_in(connection, HISTORY_CHANNEL)
                return result

            result = self._run(action, recorded, transaction=True)
            del staged[:count]
        return result

    def history(
        self,
        *,
        machine: str | None = None,
        job_id: str | None = None,
        trace_id: str | None = None,
        since: float | None = None,
        after_id: int | None = None,
        kinds: Sequence[str] | None = None,
        limit: int = 1000,
        newest: bool = False,
    ) -> list[HistoryRow]:
        if kinds is not None and not kinds:
            return []
        # No index but the id on SQLite (each index is another page every recording commit
        # writes): a query is bounded below by the first id recorded since the earliest time
        # its rows can have (``since``, the trace's ULID time, the job's creation), found by
        # a binary search on the id, then scans forward in id order.
        # Slack for ``since`` too: a staged row is inserted up to half a second after its time,
        # so ids and times are only nearly in the same order (the SQL filters exactly).
        earliest = None if since is None else since - TIME_SLACK
        if trace_id is not None:
            # A ULID in any case finds its trace (they are case-insensitive, stored upper
            # case); other text is looked for as it is.
            with contextlib.suppress(ValueError):
                trace_id = canonical_trace_id(trace_id)
            earliest = _latest(earliest, _trace_time(trace_id, self.clock.time()))
        if job_id is not None:
            job = self.get_job(job_id)
            if job is not None:
                earliest = _latest(earliest, job.created_at - TIME_SLACK)
        if earliest is not None:
            first = self._first_id_since(earliest)
            if first is None:
                return []
            after_id = max(after_id if after_id is not None else 0, first - 1)
        params: dict[str, Any] = {
            "machine": machine,
            "job_id": job_id,
            "trace_id": trace_id,
            "since": since,
            "after_id": after_id,
            "limit": limit,
        }
        sql = self._sql.history(
            machine is not None,
            job_id is not None,
            trace_id is not None,
            since is not None,
            after_id is not None,
            -1 if kinds is None else len(kinds),
            newest,
        )
        if kinds is not None:
            self._sql.dialect.bind_list(params, "kinds", list(kinds))
        rows = [history_from_row(row) for row in self._fetchall("read", sql, params)]
        if newest:
            rows.reverse()
        return rows

    def last_history_rows(
        self, machines: Sequence[str], kinds: Sequence[str], before_id: int, rows: int
    ) -> list[HistoryRow]:
        if not machines or not kinds or rows <= 0:
            return []
        found: list[HistoryRow] = []
        for start in range(0, len(machines), LAST_ROWS_MACHINES):
            names = list(machines[start : start + LAST_ROWS_MACHINES])
            params: dict[str, Any] = {"low": before_id - rows, "before_id": before_id}
            self._sql.dialect.bind_list(params, "machines", names)
            self._sql.dialect.bind_list(params, "kinds", list(kinds))
            sql = self._sql.last_history_rows(len(names), len(kinds))
            found.extend(history_from_row(row) for row in self._fetchall("read", sql, params))
        return sorted(found, key=lambda row: int(row.id))

    def history_lines(self, after_id: int, limit: int = 1000) -> list[HistoryLine]:
        rows = self._fetchall(
            "read", self._sql.history_lines, {"after_id": after_id, "limit": limit}
        )
        return [HistoryLine._make(row) for row in rows]

    def latest_history_lines(
        self, after_id: int, limit: int = 1000
    ) -> tuple[int, list[HistoryLine]] | None:
        if not self._sql.dialect.history_ids_commit_in_order:
            return None
        upto = min(self.last_history_id(), after_id + limit)
        if upto <= after_id:
            return after_id, []
        params = {"after_id": after_id, "upto": upto}
        rows = self._fetchall("read", self._sql.latest_history_lines, params)
        return upto, [HistoryLine._make(row) for row in rows]

    def _first_id_since(self, earliest: float) -> int | None:
        """The first history id whose row is from ``earliest`` on (None: none is), by a binary
        search over the ids: ids grow with time, give or take the clocks of the processes
        that recorded them (which :data:`TIME_SLACK` absorbs where it matters)."""
        bounds = self._fetchone("read", self._sql.history_id_range, {})
        if bounds is None or bounds[0] is None:
            return None
        low, high = int(bounds[0]), int(bounds[1])
        answer: int | None = None
        while low <= high:
            middle = (low + high) // 2
            row = self._fetchone("read", self._sql.history_at_or_after, {"id": middle})
            if row is None:
                high = middle - 1
                continue
            found, ts = int(row[0]), float(row[1])
            if ts >= earliest:
                answer = found
                high = middle - 1
            else:
                low = found + 1
        return answer

    def last_history_id(self) -> int:
        row = self._fetchone("read", self._sql.last_history_id, {})
        return 0 if row is None or row[0] is None else int(row[0])

    def prune_history(self, older_than_seconds: float) -> dict[str, int]:
        if not older_than_seconds >= 0:
            raise ValueError(f"older_than_seconds must be >= 0, not {older_than_seconds!r}")
        now = self.clock.time()
        params = {
            "cutoff": now - float(older_than_seconds),
            "age": float(older_than_seconds),
            "now": now,
            "batch": PRUNE_BATCH,
        }

        # In batches of PRUNE_BATCH rows, a short transaction each: one transaction for
        # millions of rows held SQLite's write lock past every writer's busy timeout (their
        # writes failed "database is locked"), and a PostgreSQL connection's turn as long.
        def delete(statement: str, batch: dict[str, Any]) -> int:
            return self._run(
                "prune", functools.partial(_rowcount, statement, batch), transaction=True
            )

        def until_short(statement: str) -> int:
            done = 0
            while (count := delete(statement, params)) == PRUNE_BATCH:
                done += count
            return done + count

        jobs = until_short(self._sql.prune_jobs)
        events = until_short(self._sql.prune_events)
        history = 0
        bounds = self._fetchone("read", self._sql.history_id_range, {})
        if bounds is not None and bounds[0] is not None:
            young = self._fetchone("read", self._sql.first_young_history, params)
            below = int(young[0]) if young is not None else int(bounds[1]) + 1
            for low in range(int(bounds[0]), below, PRUNE_BATCH):
                window = {**params, "low": low, "high": min(low + PRUNE_BATCH, below)}
                history += delete(self._sql.prune_history, window)
        runs = self._run(
            "prune",
            lambda connection: self._prune_workflow_runs(connection, params),
            transaction=True,
        )
        return {"history": history, "jobs": jobs, "events": events, "workflow_runs": runs}

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
        trace_id: str | None = None,
    ) -> Job:
        check_job_data(data)
        data_json = encode_json({} if data is None else data, "job data")
        if job_id is not None:
            check_job_id(job_id)
        if priority not in _INT32 or max_attempts not in _INT32:
            # Both are 32-bit columns on PostgreSQL; SQLite would take more, so say it alike.
            raise ValueError(
                f"priority ({priority!r}) and max_attempts ({max_attempts!r}) must be "
                "32-bit integers"
            )
        params: dict[str, Any] = {
            "id": job_id if job_id is not None else uuid.uuid4().hex,
            "job_type": job_type,
            "machine_type": machine_type,
            "data": data_json,
            "priority": priority,
            "max_attempts": max_attempts,
            "run_after": run_after,
            "dedupe_key": dedupe_key,
            "now": self.clock.time(),
            "channel": self.backend.channel_name(JOBS_CHANNEL),
            "trace_id": stored_trace_id(trace_id) if trace_id else self.trace_id or new_trace_id(),
        }
        if self._sql.dialect.insert_skips_held_dedupe_key:
            job, inserted = self._insert_skipping_held_key(params)
        else:
            job, inserted = self._run(
                "write to",
                lambda connection: self._insert_after_lookup(connection, params),
                transaction=True,
            )
        if inserted:
            self.backend.ring(JOBS_CHANNEL)
        return job

    def _insert_after_lookup(
        self, connection: Connection, params: dict[str, Any]
    ) -> tuple[Job, bool]:
        """Inside one write transaction (no other writer between the look-up and the insert):
        the open job holding the dedupe key, else the new job; True when inserted."""
        if params["dedupe_key"] is not None:
            existing = connection.execute(self._sql.job_by_dedupe_key, params).fetchone()
            if existing is not None:
                return job_from_row(existing), False
        row = self._insert(connection, params)
        job = job_from_row(row)
        self._record_added(connection, job, params["now"])
        return job, True

    def _record_added(self, connection: Connection, job: Job, now: float) -> None:
        if self.history_enabled:
            entry = history_entry(
                "job_added",
                job.machine_type or "",
                ts=now,
                event=job.job_type,
                job_id=job.id,
                trace_id=job.trace_id,
                source=self.actor,
                excerpt_text=job.data_json,
            )
            connection.execute(self._sql.insert_history, entry)
            self.backend.notify_in(connection, HISTORY_CHANNEL)

    def _insert_skipping_held_key(self, params: dict[str, Any]) -> tuple[Job, bool]:
        """Insert (the statement skips a held dedupe key and returns no row), then look the
        holder up; again when it finished in between."""

        def attempt(connection: Connection) -> tuple[Job, bool] | None:
            row = self._insert(connection, params)
            if row is not None:
                job = job_from_row(row[:_JOB_FIELD_COUNT])
                self._record_added(connection, job, params["now"])
                return job, True
            existing = connection.execute(self._sql.job_by_dedupe_key, params).fetchone()
            if existing is not None:
                return job_from_row(existing), False
            return None

        for _ in range(_DEDUPE_ATTEMPTS):
            found = self._run("write to", attempt, transaction=self.history_enabled)
            if found is not None:
                return found
        raise StoreError(
            f"cannot add job to {self.location}: dedupe key {params['dedupe_key']!r} keeps "
            "changing hands"
        )

    def _insert(self, connection: Connection, params: dict[str, Any]) -> Any:
        """The inserted job's row (None when the statement skipped a held dedupe key)."""
        try:
            rows = connection.execute(self._sql.insert_job, params).fetchall()
        except self.backend.unique_violation:
            raise DuplicateJobError(
                f"cannot add job to {self.location}: a job with id {params['id']!r} already "
                "exists"
            ) from None
        return rows[0] if rows else None

    def claim_job(
        self,
        worker: str,
        job_types: Sequence[str] | None = None,
        machine_type: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> Job | None:
        self.reap_if_due()
        while True:
            job = self._claim_next(worker, job_types, machine_type, lease_seconds)
            if job is None:
                return None
            if self._fail_if_malformed(job):
                continue
            return job

    def claim_job_by_id(
        self, job_id: str, worker: str, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> Job | None:
        params: dict[str, Any] = {
            "id": job_id,
            "worker": worker,
            "token": uuid.uuid4().hex,
            "now": self.clock.time(),
            "lease": float(lease_seconds),
        }
        rows = self._claim_rows(self._sql.claim_by_id, params, worker)
        job = job_from_row(rows[0]) if rows else None
        if job is None or self._fail_if_malformed(job):
            return None
        return job

    def _fail_if_malformed(self, job: Job) -> bool:
        problem = job.data_error()
        if problem is None:
            return False
        # Permanent: retrying cannot make the text parse, so never loop on a poison job.
        self.fail_job(job.id, f"job data {problem}", claim_token=job.claim_token)
        return True

    def reap_if_due(self) -> int:
        now = self.clock.monotonic()
        if self._reaper_pid != os.getpid():
            self._reaper_pid = os.getpid()
            self._last_reap = float("-inf")
        if now - self._last_reap < self.reap_interval:
            return 0
        self._last_reap = now
        return self.reap_expired()

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
            "now": self.clock.time(),
            "lease": float(lease_seconds),
            "machine_type": machine_type,
        }
        if job_types is None:
            sql = self._sql.claim_job(-1, machine_type is not None)
        else:
            if not job_types:
                return None
            sql = self._sql.claim_job(len(job_types), machine_type is not None)
            self._sql.dialect.bind_list(params, "job_types", job_types)
        rows = self._claim_rows(sql, params, worker)
        return job_from_row(rows[0]) if rows else None

    def _claim_rows(self, sql: str, params: dict[str, Any], worker: str) -> list[Any]:
        """Run a claim statement, its ``job_claimed`` row in the same transaction."""

        if self._jobs_recorded_by_database:
            return self._write(
                "claim a job in", lambda connection: connection.execute(sql, params).fetchall()
            )

        def claimed(rows: list[Any]) -> list[HistoryEntry]:
            # Straight from the row as returned: this runs on every claim, the hot path.
            return [
                history_entry(
                    "job_claimed",
                    worker,
                    ts=params["now"],
                    event=row[_JOB_TYPE],
                    job_id=row[_JOB_ID],
                    attempt=row[_JOB_ATTEMPTS],
                    trace_id=row[_JOB_TRACE],  # no excerpt: the data is on job_added
                )
                for row in rows
            ]

        return self._recording("claim a job in", sql, params, self._sql.claimed_history, claimed)

    def _recording(
        self,
        action: str,
        sql: str,
        params: dict[str, Any],
        derived: str,
        history: _HistoryOf,
        *,
        recording_sql: str | None = None,
    ) -> list[Any]:
        """The rows of ``sql`` (a write ``… RETURNING``), its history rows (``history``, or
        ``derived`` in the statement) and the staged ones recorded with it: in the statement
        itself where the database can (one round trip), else in a transaction around it.
        ``recording_sql``: the statement to record in, when ``sql`` carries a NOTIFY of its
        own (a data-modifying ``WITH`` cannot nest): it is rung by each row instead."""
        if not (self.history_enabled and self._sql.dialect.records_in_statement):
            return self._write(
                action, lambda connection: connection.execute(sql, params).fetchall(), history
            )
        staged = self._staged
        with self._history_lock:
            count = len(staged)
            bound = dict(params)
            # One JSON array of the staged rows (each the list of its values, in
            # HISTORY_FIELDS[1:] order): the cheapest to bind (docs/history.md, "Cost").
            bound["h_rows"] = json.dumps(staged[:count]) if count else "[]"
            bound["h_channel"] = self.backend.history_ring()
            combined = (
                self._sql.recording(sql, derived)
                if recording_sql is None
                else self._sql.recording(recording_sql, derived, wake=True)
            )
            rows = self._fetchall(action, combined, bound)
            del staged[:count]
        if not rows or not rows[0][0]:
            return []
        return [row[2:] for row in rows]

    def _finished(
        self, kind_of: Callable[[str], str], job_id: str, now: float, text: str | None
    ) -> _HistoryOf:
        """The history row of a job a statement returning ``claimed_by, attempts, trace_id,
        status, job_type`` finished; ``kind_of(status)`` names it."""

        def rows(found: list[Any]) -> list[HistoryEntry]:
            return [
                history_entry(
                    kind_of(status),
                    claimed_by or "",
                    ts=now,
                    event=job_type,
                    job_id=job_id,
                    attempt=int(attempts),
                    trace_id=trace_id,
                    excerpt_text=text,
                )
                for claimed_by, attempts, trace_id, status, job_type in found
            ]

        return rows

    def heartbeat(self, job_id: str, claim_token: str, lease_seconds: float) -> bool:
        params: dict[str, Any] = {
            "id": job_id,
            "token": claim_token,
            "now": self.clock.time(),
            "lease": float(lease_seconds),
        }
        return self._rowcount("write to", self._sql.heartbeat, params) == 1

    def complete_job(self, job_id: str, claim_token: str | None = None, result: Any = None) -> bool:
        params: dict[str, Any] = {
            "id": job_id,
            "token": claim_token,
            "result": None if result is None else encode_json(result, "job result"),
            "now": self.clock.time(),
        }
        sql = self._sql.complete if claim_token is None else self._sql.complete_fenced
        if self._jobs_recorded_by_database:
            rows = self._write(
                "write to", lambda connection: connection.execute(sql, params).fetchall()
            )
            return len(rows) == 1
        rows = self._recording(
            "write to",
            sql,
            params,
            self._sql.completed_history,
            self._finished(_completed, job_id, params["now"], params["result"]),
        )
        return len(rows) == 1

    def fail_job(
        self,
        job_id: str,
        reason: str,
        claim_token: str | None = None,
        retry: bool = False,
    ) -> bool:
        params: dict[str, Any] = {
            "id": job_id,
            "token": claim_token,
            "reason": reason,
            "retry": retry,
            "now": self.clock.time(),
        }
        sql = self._sql.fail if claim_token is None else self._sql.fail_fenced
        rows = self._recording(
            "write to",
            sql,
            params,
            self._sql.failed_history,
            self._finished(_failed_or_retried, job_id, params["now"], reason),
        )
        return len(rows) == 1

    def release_job(self, job_id: str, claim_token: str) -> bool:
        now = self.clock.time()
        params: dict[str, Any] = {"id": job_id, "token": claim_token, "now": now}
        # ``job_released``: the attempt given back (the statement returns the count before
        # it was taken back), by the worker that held it.
        rows = self._write(
            "write to",
            lambda connection: connection.execute(self._sql.release, params).fetchall(),
            self._finished(_released, job_id, now, None),
        )
        return len(rows) == 1

    def reap_expired(self) -> int:
        now = self.clock.time()

        def reaped(rows: list[Any]) -> Iterable[HistoryEntry]:
            for job_id, claimed_by, attempts, trace_id, status, reason, job_type in rows:
                yield history_entry(
                    _failed_or_retried(status),
                    claimed_by or "",
                    ts=now,
                    event=job_type,
                    job_id=job_id,
                    attempt=int(attempts),
                    trace_id=trace_id,
                    excerpt_text=reason,
                )

        rows = self._write(
            "reap expired leases in",
            lambda connection: connection.execute(self._sql.reap, {"now": now}).fetchall(),
            reaped,
        )
        return len(rows)

    def get_job(self, job_id: str) -> Job | None:
        row = self._fetchone("read", self._sql.get_job, {"id": job_id})
        return None if row is None else job_from_row(row)

    def list_jobs(
        self,
        status: str | None = None,
        limit: int = 100,
        job_type: str | None = None,
        *,
        with_data: bool = True,
    ) -> list[Job]:
        sql = self._sql.list_jobs[status is not None, job_type is not None, with_data]
        params = {"status": status, "job_type": job_type, "limit": limit}
        rows = self._fetchall("read", sql, params)
        return [job_from_row(row) for row in rows]

    def list_pending(
        self,
        job_type: str | None = None,
        machine_type: str | None = None,
        limit: int | None = None,
    ) -> list[Job]:
        # Values a machine's placeholders filled in: refused here as the caller's mistake (a
        # ValueError fails the action), never sent to be refused as a database fault, which a
        # worker takes for a passing one and retries for good.
        for name, value in (("job_type", job_type), ("machine_type", machine_type)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} must be text, not {json_kind(value)}")
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit < 2**63
        ):
            raise ValueError(f"limit must be a whole number, 0 or more (got {limit!r})")
        sql = self._sql.list_pending[job_type is not None, machine_type is not None]
        params: dict[str, Any] = {
            "job_type": job_type,
            "machine_type": machine_type,
            "limit": self._sql.dialect.unlimited if limit is None else limit,
            "now": self.clock.time(),
        }
        return [job_from_row(row) for row in self._fetchall("read", sql, params)]

    def retry_job(self, job_id: str) -> bool:
        params: dict[str, Any] = {
            "id": job_id,
            "now": self.clock.time(),
            "channel": self.backend.channel_name(JOBS_CHANNEL),
        }

        def retry(connection: Connection) -> bool:
            task = connection.execute(self._sql.workflow_task_of_job, params).fetchone()
            if task is not None and _workflow_run_of(task[2]) == task[0]:
                # Its run's scheduler follows this job: run again outside it, it would be
                # done twice while the workflow still says FAILED (a reviewer did).
                raise JobRefusedError(
                    f"job {job_id!r} is an attempt of task {task[1]!r} of workflow run "
                    f"{task[0]!r}: its retries are the workflow's (the task's retry policy), "
                    "not the queue's"
                )
            try:
                before: int | None = None
                if self.history_enabled:
                    # The attempts the job had: its story then says which claims came before
                    # the retry (the next claim is attempt 1 again).
                    found = connection.execute(self._sql.job_attempts, params).fetchone()
                    before = int(found[0]) if found is not None else None
                rows = connection.execute(self._sql.retry_job, params).fetchall()
                if rows and self.history_enabled:
                    _, machine_type, trace_id, job_type = rows[0][:4]
                    # A person's act, not the worker's that last ran it: recorded as a
                    # cancel is, under the job's machine type (it once named that worker).
                    entry = history_entry(
                        "job_retried",
                        machine_type or "",
                        ts=params["now"],
                        event=job_type,
                        job_id=job_id,
                        attempt=before,
                        trace_id=trace_id,
                        excerpt_text=(
                            f"retried by hand after {before} attempt{'' if before == 1 else 's'}"
                            "; attempts start again at 1"
                        ),
                    )
                    connection.execute(self._sql.insert_history, entry)
                    self.backend.notify_in(connection, HISTORY_CHANNEL)
                return bool(rows)
            except self.backend.unique_violation:
                raise JobRefusedError(
                    f"cannot retry job {job_id!r} in {self.location}: another pending job holds "
                    "its dedupe key"
                ) from None

        retried = self._run("write to", retry, transaction=self.history_enabled)
        if retried:
            self.backend.ring(JOBS_CHANNEL)
        return retried

    def cancel_job(self, job_id: str) -> bool:
        now = self.clock.time()
        params: dict[str, Any] = {"id": job_id, "now": now}

        def cancelled(rows: list[Any]) -> Iterable[HistoryEntry]:
            for id_, job_type, machine_type, attempts, trace_id in rows:
                yield history_entry(
                    "job_cancelled",
                    machine_type or "",
                    ts=now,
                    event=job_type,
                    job_id=id_,
                    attempt=attempts,
                    trace_id=trace_id,
                )

        rows = self._recording(
            "write to", self._sql.cancel_job, params, self._sql.cancelled_history, cancelled
        )
        return len(rows) == 1

    def queue_counts(self, finished: bool = True) -> dict[str, int]:
        if finished:
            counts, statement = dict.fromkeys(JOB_STATUSES, 0), self._sql.queue_counts
        else:
            counts, statement = dict.fromkeys(OPEN_JOB_STATUSES, 0), self._sql.open_queue_counts
        for status, count in self._fetchall("read", statement, {}):
            counts[status] = int(count)
        return counts

    def wait_job_statuses(self, job_ids: Iterable[str]) -> dict[str, str]:
        ids = list(job_ids)
        chunk = self._sql.dialect.max_list_length or max(len(ids), 1)
        statuses: dict[str, str] = {}
        for start in range(0, len(ids), chunk):  # within the database's variable limit
            part = ids[start : start + chunk]
            params: dict[str, Any] = {}
            self._sql.dialect.bind_list(params, "ids", part)
            rows = self._fetchall("read", self._sql.job_statuses(len(part)), params)
            statuses.update({row[0]: row[1] for row in rows})
        return statuses

    # --- events ---

    def send_event(
        self,
        target: str,
        event_type: str,
        payload: Any = None,
        source: str | None = None,
        job_id: str | None = None,
        trace_id: str | None = None,
    ) -> int:
        channel = machine_channel(target)
        params: dict[str, Any] = {
            "target": target,
            "source": source,
            "event_type": event_type,
            "payload": encode_json(payload, "event payload"),
            "job_id": job_id,
            "now": self.clock.time(),
            "channel": self.backend.channel_name(channel),
            "trace_id": stored_trace_id(trace_id) if trace_id else self.trace_id or new_trace_id(),
        }
        sent = [self._sent_entry(params)]
        rows = self._recording(
            "write to",
            self._sql.send_event,
            params,
            self._sql.sent_history,
            lambda _: sent,
            recording_sql=self._sql.insert_event,
        )
        self.backend.ring(channel)
        return int(rows[0][0])

    def _sent_entry(self, params: dict[str, Any]) -> HistoryEntry:
        return history_entry(
            "event_sent",
            params["target"],
            ts=params["now"],
            event=params["event_type"],
            job_id=params["job_id"],
            trace_id=params["trace_id"],
            source=params["source"],
            excerpt_text=params["payload"],
        )

    def claim_events(
        self, target: str, limit: int = 100, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> list[EventRow]:
        while True:
            rows = self._claim_events(target, limit, lease_seconds)
            usable = [row for row in rows if not self._dead_letter_if_malformed(row)]
            if usable or not rows:
                return usable

    def _claim_events(self, target: str, limit: int, lease_seconds: float) -> list[EventRow]:
        now = self.clock.time()
        if not self._sql.dialect.records_in_statement and (
            self._fetchone("read", self._sql.events_waiting, {"target": target, "now": now}) is None
        ):
            # Nothing to claim: an idle machine asks this each time it goes to sleep, and a
            # read takes no write lock from the other processes (what it staged rides its
            # next write, at the latest the registry update it makes before it sleeps).
            # Where the claim records in its own statement (PostgreSQL), one round trip is
            # what the empty claim costs already.
            return []
        params: dict[str, Any] = {
            "target": target,
            "limit": limit,
            "token": uuid.uuid4().hex,
            "now": now,
            "lease": float(lease_seconds),
        }

        def received(rows: list[Any]) -> Iterable[HistoryEntry]:
            for row in rows:
                event = event_from_row(row)
                yield history_entry(
                    "event_received",
                    target,
                    ts=now,
                    event=event.event_type,
                    job_id=event.job_id,  # the sender's job; which run of it is not known
                    trace_id=event.trace_id,
                    source=event.source,
                    excerpt_text=event.payload_json,
                )

        rows = self._recording(
            "claim events in", self._sql.claim_events, params, self._sql.received_history, received
        )
        return sorted((event_from_row(row) for row in rows), key=lambda event: event.id)

    def _dead_letter_if_malformed(self, row: EventRow) -> bool:
        problem = row.payload_error()
        if problem is None:
            return False
        self.dead_letter_event(row.id, row.claim_token or "", f"payload {problem}")
        _log.error(
            "event %d (%s from %s) to %s dead-lettered: its payload %s",
            row.id,
            row.event_type,
            row.source or "?",
            row.target,
            problem,
        )
        return True

    def ack_event(self, event_id: int, claim_token: str) -> bool:
        params = {"id": event_id, "token": claim_token, "now": self.clock.time()}
        return (
            self._write(
                "write to",
                lambda connection: connection.execute(self._sql.ack_event, params).rowcount,
            )
            == 1
        )

    def dead_letter_event(self, event_id: int, claim_token: str, reason: str) -> bool:
        params: dict[str, Any] = {
            "id": event_id,
            "token": claim_token,
            "error": reason,
            "now": self.clock.time(),
        }

        def dropped(rows: list[Any]) -> Iterable[HistoryEntry]:
            for target, event_type, trace_id, job_id in rows:
                yield history_entry(
                    "event_dropped",
                    target,
                    ts=params["now"],
                    event=event_type,
                    job_id=job_id,
                    trace_id=trace_id,
                    excerpt_text=reason,
                )

        rows = self._write(
            "write to",
            lambda connection: connection.execute(self._sql.dead_letter_event, params).fetchall(),
            dropped,
        )
        return len(rows) == 1

    def event_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(EVENT_STATUSES, 0)
        for status, count in self._fetchall("read", self._sql.event_counts, {}):
            counts[status] = int(count)
        return counts

    def heartbeat_event(self, event_id: int, claim_token: str, lease_seconds: float) -> bool:
        params: dict[str, Any] = {
            "id": event_id,
            "token": claim_token,
            "now": self.clock.time(),
            "lease": float(lease_seconds),
        }
        return self._rowcount("write to", self._sql.heartbeat_event, params) == 1

    def release_event(self, event_id: int, claim_token: str) -> bool:
        params = {"id": event_id, "token": claim_token}
        return self._rowcount("write to", self._sql.release_event, params) == 1

    def release_events(self, target: str) -> int:
        return self._rowcount("write to", self._sql.release_events, {"target": target})

    def list_events(
        self, target: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[EventRow]:
        sql = self._sql.list_events[target is not None, status is not None]
        params = {"target": target, "status": status, "limit": limit}
        return [event_from_row(row) for row in self._fetchall("read", sql, params)]

    # --- machines ---

    def register_machine(
        self,
        name: str,
        state: str | None,
        pid: int | None = None,
        host: str | None = None,
        config_path: str | None = None,
        configuration: Sequence[str] | None = None,
    ) -> bool:
        params: dict[str, Any] = {
            "name": name,
            "state": state,
            "pid": os.getpid() if pid is None else pid,
            "host": socket.gethostname() if host is None else host,
            "config_path": config_path,
            "now": self.clock.time(),
            "stale_after": self.machine_stale_after,
        }
        started = history_entry(
            "machine_started",
            name,
            ts=params["now"],
            to_state=state,
            trace_id=self.trace_id,
            excerpt_text=f"pid {params['pid']} on {params['host']}",
            configuration=configuration_text(configuration),
        )
        registered: int = self._write(
            "write to",
            lambda connection: connection.execute(self._sql.register_machine, params).rowcount,
            lambda count: [started] if count else [],
        )
        return registered == 1

    def _update_machine(
        self, connection: Connection, name: str, state: str | None, now: float
    ) -> bool:
        params = {"name": name, "state": state, "now": now}
        return connection.execute(self._sql.update_machine, params).rowcount == 1

    def update_machine(self, name: str, state: str | None = None) -> bool:
        now = self.clock.time()
        return self._write(
            "write to", lambda connection: self._update_machine(connection, name, state, now)
        )

    def heartbeat_machine(self, name: str) -> bool:
        return self.update_machine(name, None)

    def stop_machine(self, name: str) -> bool:
        params: dict[str, Any] = {"name": name, "now": self.clock.time()}

        def stopped(rows: list[Any]) -> Iterable[HistoryEntry]:
            for (state,) in rows:
                yield history_entry(
                    "machine_stopped",
                    name,
                    ts=params["now"],
                    from_state=state,
                    trace_id=self.trace_id,
                )

        rows = self._write(
            "write to",
            lambda connection: connection.execute(self._sql.stop_machine, params).fetchall(),
            stopped,
        )
        return len(rows) == 1

    def _machine_from_row(self, row: Sequence[Any]) -> MachineRow:
        name, state, pid, host, config_path, status, started, heartbeat, updated, age = row
        age = None if age is None else max(float(age), 0.0)
        return MachineRow(
            name=name,
            state=state,
            pid=pid,
            host=host,
            config_path=config_path,
            status=machine_status(status, pid, host, age, self.machine_stale_after),
            started_at=started,
            heartbeat_at=heartbeat,
            heartbeat_age=age,
            updated_at=updated,
        )

    def get_machine(self, name: str) -> MachineRow | None:
        params = {"name": name, "now": self.clock.time()}
        row = self._fetchone("read", self._sql.get_machine, params)
        return None if row is None else self._machine_from_row(row)

    def list_machines(self) -> list[MachineRow]:
        rows = self._fetchall("read", self._sql.list_machines, {"now": self.clock.time()})
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
        traces = [self.trace_id or new_trace_id() for _ in encoded]
        channels = [machine_channel(target) for target in dict.fromkeys(t for t, _, _ in encoded)]
        now = self.clock.time()
        sent = [
            history_entry(
                "event_sent",
                target,
                ts=now,
                event=event_type,
                trace_id=trace,
                source=source or name,
                excerpt_text=payload_json,
            )
            for (target, event_type, payload_json), trace in zip(encoded, traces, strict=True)
        ]

        def write(connection: Connection) -> list[int]:
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
                            "trace_id": trace,
                        },
                    ).fetchall()[0][0]
                )
                for (target, event_type, payload_json), trace in zip(encoded, traces, strict=True)
            ]
            for channel in channels:
                # Transactional NOTIFY where the database has it: delivered at commit.
                self.backend.notify_in(connection, channel)
            return ids

        ids = self._write("write to", write, lambda _: sent, transaction=True)
        for channel in channels:
            self.backend.ring(channel)
        return ids

    # --- wake-ups ---

    def open_waker(self, channels: Sequence[str]) -> Waker:
        return self.backend.open_waker(channels)

    def notify(self, channel: str) -> None:
        self.backend.notify(channel)


#: How far apart the clocks of the processes recording history may be: a trace's rows are
#: looked for from this long before its ULID's time (and a job's before its creation).
TIME_SLACK = 300.0


def _rowcount(statement: str, params: dict[str, Any], connection: Connection) -> int:
    """How many rows ``statement`` changed (one batch of a prune)."""
    count: int = connection.execute(statement, params).rowcount
    return count


def _trace_time(trace_id: str, now: float) -> float | None:
    """The time a ULID trace id was made, less :data:`TIME_SLACK`; None for another id, and
    for one whose time is later than ``now`` allows: its time says nothing then about when
    its rows were recorded (a clock far ahead, an id made up), so they are looked for in the
    whole history."""
    try:
        made = ULID.from_str(trace_id).timestamp
    except ValueError:
        return None
    return made - TIME_SLACK if made <= now + TIME_SLACK else None


def _latest(first: float | None, second: float | None) -> float | None:
    if first is None:
        return second
    if second is None:
        return first
    return max(first, second)


def _completed(status: str) -> str:
    return "job_completed"


def _released(status: str) -> str:
    return "job_released"


def _failed_or_retried(status: str) -> str:
    """A failed job back to ``pending`` is retried (after its backoff); else failed."""
    return "job_retried" if status == "pending" else "job_failed"


__all__ = ["MAX_STAGED_HISTORY", "TIME_SLACK", "SqlStore", "new_trace_id"]
