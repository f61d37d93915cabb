"""The SQL statements both backends share, written once over a small :class:`Dialect`.

A :class:`Dialect` says how one database spells what differs: the current time (SQLite: an
epoch float the application binds as ``:now``; PostgreSQL: ``now()``), JSON and time columns,
the claim and reap statements (single-statement ``UPDATE … RETURNING`` vs a ``FOR UPDATE SKIP
LOCKED`` CTE), lists of values, how an insert meets a held dedupe key, and transactional
NOTIFY. :class:`SqlStatements` composes every statement once per dialect and backoff, so no
method builds SQL text on a call. Parameters are written ``:name`` and bound from one dict on
both backends (PostgreSQL's text is rewritten to ``%(name)s`` once); a statement ignores the
keys it does not use, so ``now`` is always bound and only SQLite reads it.

The code that runs the statements is ``sql.SqlStore``.
"""

from __future__ import annotations

import abc
import functools
import re
from collections.abc import Sequence
from typing import Any

from smc.runtime.store.base import Backoff
from smc.runtime.store.rows import (
    ERROR_EXCERPT_KINDS,
    EVENT_FIELDS,
    EXCERPT_LIMIT,
    HISTORY_FIELDS,
    JOB_FIELDS,
    LATEST_ONLY_KINDS,
    LEAN_HISTORY_WIDTH,
    OPEN_JOB_STATUSES,
)

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
#: What a reap returns of each job it re-queued or failed (for its history row).
REAPED_COLUMNS = "id, claimed_by, attempts, trace_id, status, last_error, job_type"
#: A machine type given: jobs for it and jobs for no machine type in particular (NULL).
_MACHINE_TYPE_FILTER = " AND (machine_type IS NULL OR machine_type = :machine_type)"


class Dialect(abc.ABC):
    """How one database spells the parts of the statements that differ. Stateless: one instance
    per backend, used as a cache key."""

    #: The current time in a statement.
    now: str
    #: How the driver marks a positional parameter (``?``, ``%s``).
    positional_parameter: str = "?"
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
    #: The most values one :meth:`in_list` may hold, longer lists being looked up in chunks;
    #: None: a list is bound whole, as one parameter, so its statement is the same for any
    #: length.
    max_list_length: int | None = None
    #: How ``add_job`` meets a dedupe key held by an open job. False: the insert would fail,
    #: so the key is looked up first inside one write transaction (a database that serialises
    #: writers). True: the insert skips the held key (``ON CONFLICT … DO NOTHING``, returning
    #: no row) and the holder is looked up after it.
    insert_skips_held_dedupe_key: bool = False

    #: Whether history ids commit in the order they are handed out (one writer at a time:
    #: SQLite), so that once the newest id is committed every older one is too, or never will
    #: be (``Store.latest_history_lines``).
    history_ids_commit_in_order: bool = False

    #: Whether a write's history rows ride in its own statement (:meth:`recording`), rather
    #: than in a transaction around it: where a transaction costs round trips (PostgreSQL).
    records_in_statement: bool = False
    #: Statements run on each connection of a store whose history is on, making the database
    #: write the ``job_claimed`` and ``job_completed`` rows itself, in the claim's and the
    #: completion's own statement (triggers local to the connection); empty: the store
    #: writes them (:meth:`recording`, or a transaction around the statement).
    job_history_triggers: tuple[str, ...] = ()

    def recording(self, statement: str, derived: str | None, wake: bool = False) -> str:
        """``statement`` (finished, ``… RETURNING``) that also inserts the history rows
        ``derived`` (a finished select list over its rows ``s``) and the staged rows (bound
        as ``:h_rows``, a JSON array of their value lists), and notifies ``:h_channel`` when
        it inserted any (and ``:channel`` for each row, with ``wake``): one statement. Each
        row is ``(rows the statement returned, notified, *its row)``, one row of NULLs when it
        returned none."""
        raise NotImplementedError

    def epoch(self, column: str) -> str:
        """A time column, read as epoch seconds."""
        return column

    def json_text(self, column: str) -> str:
        """A JSON column, read as its text."""
        return column

    def json_object(self, pairs: Sequence[tuple[str, str]]) -> str:
        """A JSON object built by the database, as text: ``(key SQL, value SQL)`` pairs in
        order. Both backends escape every control character of a text value (no raw line
        break)."""
        return "json_object(" + ", ".join(f"{key}, {value}" for key, value in pairs) + ")"

    def json_of_text(self, column: str) -> str:
        """A text column that holds JSON, as a JSON value inside :meth:`json_object`."""
        return f"json({column})"

    def json_float(self, column: str) -> str:
        """A floating-point column as a JSON value inside :meth:`json_object`, every digit kept
        (the number reads back as the same float)."""
        return column

    def workflow_run_of(self, column: str) -> str:
        """The workflow run a job's data (``column``) says the job is an attempt of
        (``workflow.run_id``, which a scheduler puts in every task's job), NULL for none."""
        return f"json_extract({column}, '$.workflow.run_id')"

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
    def in_list(self, column: str, name: str, count: int) -> str:
        """The condition ``column`` is one of the ``count`` values :meth:`bind_list` binds as
        ``name``."""

    @abc.abstractmethod
    def bind_list(self, params: dict[str, Any], name: str, values: Sequence[Any]) -> None:
        """Bind ``values`` as the list ``name`` of :meth:`in_list`."""

    @abc.abstractmethod
    def claim_job(self, filters: str, statements: SqlStatements) -> str:
        """The atomic claim of the next runnable job matching ``filters`` (``AND …``)."""

    def open_events(self) -> str:
        """The events a claim may take (``machine_events`` columns, ``:target``'s): pending,
        or processing under an expired lease. The status IN (…) repeats what the OR says so
        that a planner sees the partial index on open events apply (SQLite's did not: each
        claim scanned every event ever sent)."""
        return (
            "target_machine = :target AND status IN ('pending', 'processing') "
            f"AND (status = 'pending' OR (status = 'processing' AND lease_expires_at < {self.now}))"
        )

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
                        run_after, dedupe_key, created_at, trace_id)
                    VALUES (:id, :job_type, :machine_type, """
                f":data{d.json_cast}, :priority, :max_attempts, "
                f"coalesce({d.epoch_param('run_after')}, {now}), :dedupe_key, {now}, :trace_id)",
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
        #: What a finished job's history row needs.
        finished = " RETURNING claimed_by, attempts, trace_id, status, job_type"
        self.complete = finish(complete + finished)
        self.complete_fenced = finish(complete + fence + finished)
        again = "(:retry AND attempts < max_attempts)"
        fail = f"""UPDATE jobs SET
                  status = CASE WHEN {again} THEN 'pending' ELSE 'failed' END,
                  run_after = CASE WHEN {again} THEN {d.retry_at("attempts", backoff)}
                              ELSE run_after END,
                  finished_at = CASE WHEN {again} THEN NULL ELSE {now} END,
                  last_error = :reason, claim_token = NULL, lease_expires_at = NULL
                WHERE id = :id AND status = 'processing'"""
        self.fail = finish(fail + finished)
        self.fail_fenced = finish(fail + fence + finished)
        self.release = finish(f"""UPDATE jobs SET status = 'pending',
                  attempts = {d.greatest}(attempts - 1, 0), run_after = {now},
                  claim_token = NULL, lease_expires_at = NULL
                WHERE id = :id AND claim_token = :token AND status = 'processing'
                RETURNING claimed_by, attempts + 1, trace_id, status, job_type""")
        self.reap = finish(d.reap(self, backoff))
        self.get_job = finish(f"SELECT {jobs} FROM jobs WHERE id = :id")
        self.job_attempts = finish("SELECT attempts FROM jobs WHERE id = :id")
        # Any attempt of a task, not only the one its row holds now: attempt N of task T of
        # run R is the job `R.T.N` (smc.workflow.scheduler.job_id_for), and an earlier one,
        # retried by hand, ran again (a reviewer did). By prefix, not LIKE: ids may hold % or _.
        # The job's data then says whose it is (a scheduler's jobs carry `workflow.run_id`),
        # so a job of someone else's that merely looks like `R.T.N` is retried as any other.
        self.workflow_task_of_job = finish(
            f"SELECT t.run_id, t.task, {d.json_text('j.data')} FROM workflow_tasks t "
            "JOIN jobs j ON j.id = :id "
            "WHERE t.job_id = :id "
            "OR substr(:id, 1, length(t.run_id) + length(t.task) + 2) "
            "= t.run_id || '.' || t.task || '.' LIMIT 1"
        )
        # A list without each job's data and result (``'null'`` and NULL in their place):
        # a page of 200 jobs of 3 MB each once sent 123 MB for a table that shows neither.
        summary = ", ".join(
            "'null'" if name == "data" else "NULL" if name == "result" else column
            for name, column in zip(JOB_FIELDS, self._column_list(JOB_FIELDS, ""), strict=True)
        )
        #: list_jobs by (status given, job_type given, data wanted), newest first.
        self.list_jobs = {
            (by_status, by_type, with_data): finish(
                f"SELECT {jobs if with_data else summary} FROM jobs"
                + _where(
                    ["status = :status"] if by_status else [],
                    ["job_type = :job_type"] if by_type else [],
                )
                + " ORDER BY seq DESC LIMIT :limit"
            )
            for by_status in (False, True)
            for by_type in (False, True)
            for with_data in (False, True)
        }
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
        # The last run's worker, start, error and result go with it (a pending job once
        # showed the worker and error of the run before); the job's story keeps them.
        self.retry_job = finish(d.with_notify(f"""UPDATE jobs SET status = 'pending', attempts = 0,
                  run_after = {now}, claim_token = NULL, lease_expires_at = NULL,
                  finished_at = NULL, claimed_by = NULL, started_at = NULL,
                  last_error = NULL, result = NULL
                WHERE id = :id AND status IN ('failed', 'cancelled')
                RETURNING id, machine_type, trace_id, job_type"""))
        self.cancel_job = finish(
            f"UPDATE jobs SET status = 'cancelled', finished_at = {now} "
            "WHERE id = :id AND status = 'pending' "
            "RETURNING id, job_type, machine_type, attempts, trace_id"
        )
        self.queue_counts = finish("SELECT status, count(*) FROM jobs GROUP BY status")
        # The open jobs only: a seek to each of their few statuses, where the whole count
        # walks every job the store keeps (finished ones too, until they are pruned).
        open_statuses = ", ".join(f"'{status}'" for status in OPEN_JOB_STATUSES)
        self.open_queue_counts = finish(
            f"SELECT status, count(*) FROM jobs WHERE status IN ({open_statuses}) GROUP BY status"
        )

        insert_event = f"""INSERT INTO machine_events (target_machine, source_machine, event_type,
                  payload, job_id, created_at, trace_id)
                VALUES (:target, :source, :event_type, :payload{d.json_cast}, :job_id, {now},
                        :trace_id)
                RETURNING id"""
        self.insert_event = finish(insert_event)
        self.send_event = finish(d.with_notify(insert_event))
        self.claim_events = finish(d.claim_events(self))
        # Whether :target has an event to claim (the claim's own condition), read without
        # taking the write lock: SqlStore.claim_events asks it first where a claim is a
        # transaction of its own (SQLite).
        self.events_waiting = finish(
            f"SELECT 1 FROM machine_events WHERE {d.open_events()} LIMIT 1"
        )
        self.ack_event = finish(
            f"UPDATE machine_events SET status = 'done', processed_at = {now}, "
            "lease_expires_at = NULL "
            "WHERE id = :id AND claim_token = :token AND status = 'processing'"
        )
        self.dead_letter_event = finish(
            f"UPDATE machine_events SET status = 'dead', last_error = :error, "
            f"processed_at = {now}, lease_expires_at = NULL "
            "WHERE id = :id AND claim_token = :token AND status = 'processing' "
            "RETURNING target_machine, event_type, trace_id, job_id"
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
                    updated_at = excluded.updated_at
                WHERE machine_state.status <> 'running' OR machine_state.host = excluded.host
                    OR machine_state.heartbeat_at IS NULL
                    OR {d.age("machine_state.heartbeat_at")} >= :stale_after""")
        self.update_machine = finish(f"""UPDATE machine_state SET state = coalesce(:state, state),
                  heartbeat_at = {now},
                  updated_at = CASE WHEN :state{d.text_cast} IS NULL THEN updated_at ELSE {now} END
                WHERE machine_name = :name""")
        self.stop_machine = finish(
            f"UPDATE machine_state SET status = 'stopped', updated_at = {now} "
            "WHERE machine_name = :name RETURNING state"
        )
        columns = ", ".join(HISTORY_FIELDS[1:])
        # Positional parameters: the row is a tuple (rows.history_entry), bound by position.
        marker = d.positional_parameter
        self.insert_history = (
            f"INSERT INTO history ({columns}) VALUES "
            f"({', '.join(marker for _ in HISTORY_FIELDS[1:])})"
        )
        # The same for a row whose last three values (source, excerpt, configuration) are
        # NULL, as a machine's transitions are: they are not bound at all, since a driver
        # adapts each NULL it binds (CPython's sqlite3: about 1,500 instructions each; nine
        # a job in a no-op worker). SqlStore._write picks it for a batch of such rows.
        self.insert_history_lean = (
            f"INSERT INTO history ({', '.join(HISTORY_FIELDS[1:LEAN_HISTORY_WIDTH + 1])}) "
            f"VALUES ({', '.join(marker for _ in range(LEAN_HISTORY_WIDTH))})"
        )
        self.history_columns_text = ", ".join(HISTORY_FIELDS)
        self.history_lines = self._history_lines("id > :after_id ORDER BY id LIMIT :limit")
        # The same over the ids (:after_id, :upto], with only the last row of each machine of
        # each of LATEST_ONLY_KINDS (a transition within a state apart from one that moves:
        # the time in a state starts at the last move into it); a workflow task's moves
        # (``source``) all pass.
        latest = ", ".join(f"'{kind}'" for kind in LATEST_ONLY_KINDS)
        in_range = "id > :after_id AND id <= :upto"
        self.latest_history_lines = self._history_lines(
            f"{in_range} AND (kind NOT IN ({latest}) OR source IS NOT NULL OR id IN "
            f"(SELECT max(id) FROM history WHERE {in_range} AND kind IN ({latest}) "
            "AND source IS NULL GROUP BY machine, kind, from_state = to_state)) ORDER BY id"
        )
        # Pruning: jobs and events by their age on the clock that stamped them (PostgreSQL:
        # the server's); history by its id (ids grow with time, so the first young row bounds the
        # old ones: no index on ts to keep up on every insert), always keeping the newest row
        # so an id is never handed out twice (SQLite reuses the largest rowid once deleted).
        self.last_history_id = finish("SELECT max(id) FROM history")
        self.history_id_range = finish("SELECT min(id), max(id) FROM history")
        self.history_at_or_after = finish(
            "SELECT id, ts FROM history WHERE id >= :id ORDER BY id LIMIT 1"
        )
        self.first_young_history = finish(
            "SELECT id FROM history WHERE ts >= :cutoff ORDER BY id LIMIT 1"
        )
        # Each in batches of :batch rows, a transaction each (SqlStore.prune_history). The
        # history by a window of ids below the first young row, and by its time too: on
        # PostgreSQL a row whose id is below that one may commit after it was read.
        # The rows of a job still pending or running are its story so far, kept whatever
        # their age (the job is: a story cut at the claim lost its start).
        self.prune_history = finish(
            "DELETE FROM history WHERE id >= :low AND id < :high AND ts < :cutoff "
            "AND id < (SELECT max(id) FROM history) AND (job_id IS NULL OR job_id NOT IN "
            "(SELECT id FROM jobs WHERE status IN ('pending', 'processing')))"
        )
        # A finished job of a workflow run still running is its task's outcome, which the
        # run's scheduler reads when it resumes: kept until the run is pruned. The task's row
        # names its job only once the job is queued, so a job whose data names a running run
        # is kept too: a scheduler killed between the two wrote the first only, and a prune
        # then let the resumed run queue and run the task again. The status
        # is tested again outside the sub-select: on PostgreSQL a row it chose and a retry
        # then made pending (the DELETE waited for its lock) is checked anew, not deleted.
        finished = "status IN ('completed', 'failed', 'cancelled')"
        self.prune_jobs = finish(
            f"DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs j WHERE {finished} "
            f"AND {d.age('finished_at')} > :age AND id NOT IN (SELECT t.job_id "
            "FROM workflow_tasks t JOIN workflow_runs r ON r.run_id = t.run_id "
            "WHERE r.status = 'running' AND t.job_id IS NOT NULL) AND NOT EXISTS "
            "(SELECT 1 FROM workflow_runs r WHERE r.status = 'running' "
            f"AND r.run_id = {d.workflow_run_of('j.data')}) "
            f"LIMIT :batch) AND {finished}"
        )
        self.prune_events = finish(
            "DELETE FROM machine_events WHERE id IN (SELECT id FROM machine_events "
            f"WHERE status IN ('done', 'dead') AND {d.age('processed_at')} > :age "
            "LIMIT :batch)"
        )
        self._history: dict[tuple[bool, bool, bool, bool, bool, int, bool], str] = {}
        self._last_history_rows: dict[tuple[int, int], str] = {}
        self._recording: dict[tuple[str, str | None, bool], str] = {}
        # What claims, completions and failures record, over the statement's rows ``s``
        # (a database whose writes record history in the statement: Dialect.recording).
        cut = f"CASE WHEN length(:text) > {EXCERPT_LIMIT} THEN left(:text, {EXCERPT_LIMIT - 1}) "
        cut += "|| '…' ELSE :text END"
        self.claimed_history = finish(
            ":now::float8, :worker, 'job_claimed', NULL, s.job_type, NULL, s.id, s.attempts, "
            "s.trace_id, NULL, NULL, NULL"
        )
        self.completed_history = finish(
            ":now::float8, coalesce(s.claimed_by, ''), 'job_completed', NULL, s.job_type, NULL, "
            f":id, s.attempts, s.trace_id, NULL, {cut.replace(':text', ':result::text')}, NULL"
        )
        self.sent_history = finish(
            ":now::float8, :target, 'event_sent', NULL, :event_type, NULL, :job_id, NULL, "
            f":trace_id, :source, {cut.replace(':text', ':payload::text')}, NULL"
        )
        self.cancelled_history = finish(
            ":now::float8, coalesce(s.machine_type, ''), 'job_cancelled', NULL, s.job_type, "
            "NULL, s.id, s.attempts, s.trace_id, NULL, NULL, NULL"
        )
        self.received_history = finish(
            ":now::float8, :target, 'event_received', NULL, s.event_type, NULL, s.job_id, "
            f"NULL, s.trace_id, s.source_machine, {cut.replace(':text', 's.payload')}, NULL"
        )
        self.failed_history = finish(
            ":now::float8, coalesce(s.claimed_by, ''), "
            "CASE WHEN s.status = 'pending' THEN 'job_retried' ELSE 'job_failed' END, NULL, "
            f"s.job_type, NULL, :id, s.attempts, s.trace_id, NULL, "
            f"{cut.replace(':text', ':reason::text')}, NULL"
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
        self._job_statuses: dict[int, str] = {}

    def history(
        self,
        by_machine: bool,
        by_job: bool,
        by_trace: bool,
        by_since: bool,
        by_after: bool,
        kind_count: int,
        newest: bool = False,
    ) -> str:
        """The history query with the filters given (``kind_count`` -1: any kind), in id
        order (``newest``: in reverse, so that the limit keeps the newest rows); built on
        first use for each combination, then reused."""
        key = (by_machine, by_job, by_trace, by_since, by_after, kind_count, newest)
        statement = self._history.get(key)
        if statement is None:
            conditions = [
                condition
                for given, condition in (
                    (by_machine, "machine = :machine"),
                    (by_job, "job_id = :job_id"),
                    (by_trace, "trace_id = :trace_id"),
                    (by_since, "ts >= :since"),
                    (by_after, "id > :after_id"),
                )
                if given
            ]
            if kind_count >= 0:
                conditions.append(self.dialect.in_list("kind", "kinds", kind_count))
            statement = self._history[key] = self.dialect.finish(
                f"SELECT {self.history_columns_text} FROM history"
                + _where(conditions)
                + (" ORDER BY id DESC LIMIT :limit" if newest else " ORDER BY id LIMIT :limit")
            )
        return statement

    def last_history_rows(self, machine_count: int, kind_count: int) -> str:
        """Each machine's newest row of the kinds among the ids from ``:low`` to below
        ``:before_id`` (``Store.last_history_rows``)."""
        key = (machine_count, kind_count)
        statement = self._last_history_rows.get(key)
        if statement is None:
            d = self.dialect
            statement = self._last_history_rows[key] = d.finish(
                f"SELECT {self.history_columns_text} FROM history WHERE id IN "
                "(SELECT max(id) FROM history WHERE id >= :low AND id < :before_id AND "
                f"{d.in_list('machine', 'machines', machine_count)} AND "
                f"{d.in_list('kind', 'kinds', kind_count)} GROUP BY machine) ORDER BY id"
            )
        return statement

    def _history_lines(self, where: str) -> str:
        """The rows ``where`` says as ``HistoryLine``\\ s: what a follower keeps of a
        machine, and the row's monitor record made by the database as JSON text, with the
        keys and values of ``smc.runtime.history.history_record`` (a test holds the two
        equal for every kind on both backends)."""
        d = self.dialect
        erring = ", ".join(f"'{kind}'" for kind in ERROR_EXCERPT_KINDS)
        pairs = [
            ("'kind'", "kind"),
            ("'machine'", "machine"),
            ("'from'", "from_state"),
            ("'event'", "event"),
            ("'to'", "to_state"),
            ("'job_id'", "job_id"),
            ("'ts'", d.json_float("ts")),
            ("'id'", "id"),
            ("'attempt'", "attempt"),
            ("'trace_id'", "trace_id"),
            ("'source'", "source"),
            (f"CASE WHEN kind IN ({erring}) THEN 'error' ELSE 'excerpt' END", "excerpt"),
        ]
        # ``configuration`` only where the row has one, as history_record has it.
        charted = [*pairs, ("'configuration'", d.json_of_text("configuration"))]
        return d.finish(
            "SELECT id, kind, machine, from_state, event, to_state, job_id, source, ts, "
            "configuration, "
            f"CASE WHEN configuration IS NULL THEN {d.json_object(pairs)} "
            f"ELSE {d.json_object(charted)} END "
            f"FROM history WHERE {where}"
        )

    def recording(self, statement: str, derived: str | None, wake: bool = False) -> str:
        """:meth:`Dialect.recording`, built on first use, then reused."""
        key = (statement, derived, wake)
        combined = self._recording.get(key)
        if combined is None:
            combined = self._recording[key] = self.dialect.recording(statement, derived, wake)
        return combined

    def job_columns(self, prefix: str) -> str:
        """The job row's columns (``JOB_FIELDS`` order), qualified by ``prefix``."""
        return self._columns(JOB_FIELDS, prefix)

    def event_columns(self, prefix: str) -> str:
        """The event row's columns (``EVENT_FIELDS`` order), qualified by ``prefix``."""
        return self._columns(EVENT_FIELDS, prefix)

    def _columns(self, fields: Sequence[str], prefix: str) -> str:
        return ", ".join(self._column_list(fields, prefix))

    def _column_list(self, fields: Sequence[str], prefix: str) -> list[str]:
        d = self.dialect
        return [
            (
                d.json_text(prefix + name)
                if name in _JSON_COLUMNS
                else d.epoch(prefix + name) if name in _TIME_COLUMNS else prefix + name
            )
            for name in fields
        ]

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
            filters = (
                ""
                if job_type_count < 0
                else " AND " + self.dialect.in_list("job_type", "job_types", job_type_count)
            )
            if by_machine_type:
                filters += _MACHINE_TYPE_FILTER
            statement = self._claim_job[key] = self.dialect.finish(
                self.dialect.claim_job(filters, self)
            )
        return statement

    def job_statuses(self, count: int) -> str:
        """``id, status`` of the jobs among ``count`` ids bound as ``ids``; built on first use
        for each count, then reused."""
        key = -1 if self.dialect.max_list_length is None else count
        statement = self._job_statuses.get(key)
        if statement is None:
            statement = self._job_statuses[key] = self.dialect.finish(
                f"SELECT id, status FROM jobs WHERE {self.dialect.in_list('id', 'ids', count)}"
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


__all__ = ["REAPED_COLUMNS", "Dialect", "SqlStatements", "pyformat_parameters", "statements_for"]
