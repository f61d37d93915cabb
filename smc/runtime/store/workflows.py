"""The store's part of workflows (docs/workflows.md): a table of runs and a table of each
run's tasks, their statements for both dialects, their row types, and the methods
:class:`~smc.runtime.store.sql.SqlStore` gets from :class:`WorkflowTables`.

The scheduler (``smc.workflow.scheduler``) keeps a run's whole state here, so a scheduler
killed at any point is restarted with the same run id and goes on from the rows: every
task's contract state (``PENDING`` … ``CANCELLED``), its attempt and the id of the job that
attempt was queued as. Each task update is fenced by the state it leaves (compare and set),
and the run by its scheduler's token, so two schedulers of one run cannot both write.

Every task move, and a run's starts, stops, cancel request and finish, are recorded in the
history (``docs/history.md``, ``docs/workflows.md`` "The history of a run") **in the write's
own transaction**, as the queue's writes are: SQLite runs the write (``… RETURNING`` the run's
workflow name and trace id) and the history insert in one transaction; PostgreSQL in one
statement (a writable ``WITH``: the update, then the history row derived from what it
returned), so a move the store refused has no row and a recorded move always has one.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from smc.runtime.clock import Clock
from smc.runtime.store.backend import Backend, Connection
from smc.runtime.store.rows import (
    EXCERPT_LIMIT,
    HistoryEntry,
    encode_json,
    history_entry,
    process_alive,
)
from smc.runtime.store.statements import Dialect
from smc.runtime.store.workflow_rows import WORKFLOW_RUN_STATUSES, WorkflowRun, WorkflowTask

SQLITE_DDL = (
    """CREATE TABLE IF NOT EXISTS workflow_runs (
        run_id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        definition TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'running'
            CHECK (status IN ('running','completed','failed','cancelled')),
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        scheduler_token TEXT,
        scheduler_host TEXT,
        scheduler_pid INTEGER,
        heartbeat_at REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        finished_at REAL
    )""",
    """CREATE TABLE IF NOT EXISTS workflow_tasks (
        run_id TEXT NOT NULL REFERENCES workflow_runs (run_id),
        task TEXT NOT NULL,
        position INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0,
        job_id TEXT,
        last_error TEXT,
        result TEXT,
        updated_at REAL NOT NULL,
        PRIMARY KEY (run_id, task)
    )""",
)

POSTGRES_DDL = (
    """CREATE TABLE IF NOT EXISTS workflow_runs (
        run_id text PRIMARY KEY,
        workflow text NOT NULL,
        trace_id text NOT NULL,
        definition jsonb NOT NULL,
        status text NOT NULL DEFAULT 'running'
            CHECK (status IN ('running','completed','failed','cancelled')),
        cancel_requested integer NOT NULL DEFAULT 0,
        scheduler_token text,
        scheduler_host text,
        scheduler_pid integer,
        heartbeat_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz
    )""",
    """CREATE TABLE IF NOT EXISTS workflow_tasks (
        run_id text NOT NULL REFERENCES workflow_runs (run_id),
        task text NOT NULL,
        position integer NOT NULL,
        state text NOT NULL,
        attempt integer NOT NULL DEFAULT 0,
        job_id text,
        last_error text,
        result jsonb,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (run_id, task)
    )""",
)


#: What every recording workflow write returns: the run's workflow name and trace id, which
#: its history row carries (the run row is the truth, not the caller).
_RETURNING_RUN = " RETURNING workflow, trace_id"
_RETURNING_TASK_RUN = (
    " RETURNING (SELECT r.workflow FROM workflow_runs r WHERE r.run_id = workflow_tasks.run_id)"
    " AS workflow,"
    " (SELECT r.trace_id FROM workflow_runs r WHERE r.run_id = workflow_tasks.run_id)"
    " AS trace_id"
)


def _cut(parameter: str) -> str:
    """SQL cutting the text parameter to an excerpt (``rows.excerpt``'s rule)."""
    text = f":{parameter}::text"
    return (
        f"CASE WHEN length({text}) > {EXCERPT_LIMIT} THEN left({text}, {EXCERPT_LIMIT - 1}) "
        f"|| '…' ELSE {text} END"
    )


def task_machine(workflow: str, task: str) -> str:
    """The ``machine`` of a task's history rows: ``<workflow>/<task>`` (a machine file's name
    cannot hold ``/``, so it does not name a worker; the rows' ``source``, the run id, tells
    them apart from a worker's in any case)."""
    return f"{workflow}/{task}"


class WorkflowStatements:
    """The workflow statements of one dialect."""

    def __init__(self, d: Dialect) -> None:
        finish = d.finish
        now = d.now
        run_columns = ", ".join(
            (
                "run_id",
                "workflow",
                "trace_id",
                d.json_text("definition"),
                "status",
                "cancel_requested",
                "scheduler_host",
                "scheduler_pid",
                "scheduler_token",
                d.age("heartbeat_at"),
                d.epoch("created_at"),
                d.epoch("updated_at"),
                d.epoch("finished_at"),
            )
        )
        task_columns = ", ".join(
            (
                "run_id",
                "task",
                "position",
                "state",
                "attempt",
                "job_id",
                "last_error",
                d.json_text("result"),
                d.epoch("updated_at"),
            )
        )
        self.insert_run = finish(f"""INSERT INTO workflow_runs (run_id, workflow, trace_id,
                definition, created_at, updated_at)
            VALUES (:run_id, :workflow, :trace_id, :definition{d.json_cast}, {now}, {now})
            ON CONFLICT (run_id) DO NOTHING""")
        self.insert_task = finish(f"""INSERT INTO workflow_tasks (run_id, task, position, state,
                updated_at)
            VALUES (:run_id, :task, :position, :state, {now})""")
        self.get_run = finish(f"SELECT {run_columns} FROM workflow_runs WHERE run_id = :run_id")
        self.list_runs = finish(
            f"SELECT {run_columns} FROM workflow_runs ORDER BY created_at DESC, run_id DESC "
            "LIMIT :limit"
        )
        self.list_tasks = finish(
            f"SELECT {task_columns} FROM workflow_tasks WHERE run_id = :run_id ORDER BY position"
        )
        self.take_run = finish(f"""UPDATE workflow_runs SET scheduler_token = :token,
                scheduler_host = :host, scheduler_pid = :pid, heartbeat_at = {now},
                updated_at = {now}
            WHERE run_id = :run_id AND status = 'running'
              AND coalesce(scheduler_token, '') = :seen{_RETURNING_RUN}""")
        self.heartbeat_run = finish(f"""UPDATE workflow_runs SET heartbeat_at = {now}
            WHERE run_id = :run_id AND scheduler_token = :token""")
        self.release_run = finish(f"""UPDATE workflow_runs SET scheduler_token = NULL,
                scheduler_host = NULL, scheduler_pid = NULL, heartbeat_at = NULL
            WHERE run_id = :run_id AND scheduler_token = :token{_RETURNING_RUN}""")
        self.update_task = finish(f"""UPDATE workflow_tasks SET state = :state,
                attempt = :attempt, job_id = :job_id, last_error = :last_error,
                result = :result{d.json_cast}, updated_at = {now}
            WHERE run_id = :run_id AND task = :task AND state = :from_state
              AND attempt = :from_attempt
              AND EXISTS (SELECT 1 FROM workflow_runs r WHERE r.run_id = :run_id
                          AND r.scheduler_token = :token){_RETURNING_TASK_RUN}""")
        self.finish_run = finish(f"""UPDATE workflow_runs SET status = :status,
                finished_at = {now}, updated_at = {now}, scheduler_token = NULL,
                scheduler_host = NULL, scheduler_pid = NULL
            WHERE run_id = :run_id AND status = 'running'
              AND scheduler_token = :token{_RETURNING_RUN}""")
        self.cancel_run = finish(f"""UPDATE workflow_runs SET cancel_requested = 1,
                updated_at = {now}
            WHERE run_id = :run_id AND status = 'running'{_RETURNING_RUN}""")
        # The history rows of these writes, over the statement's rows ``s`` (PostgreSQL
        # records in the statement: Dialect.recording); the columns of HISTORY_FIELDS[1:].
        self.moved_history = finish(
            ":now::float8, s.workflow || '/' || :task::text, 'transition', :from_state::text, "
            ":event::text, :state::text, :job_id::text, :attempt::integer, s.trace_id, "
            f":run_id::text, {_cut('last_error')}, NULL"
        )
        self.run_history = finish(
            ":now::float8, s.workflow, :kind::text, :run_from::text, NULL, :run_to::text, NULL, "
            f"NULL, s.trace_id, :run_id::text, {_cut('run_note')}, NULL"
        )
        # Pruning: a finished run (and its tasks) by its finish time, like finished jobs, but
        # not while a job of it (one whose data names it) is still pending or running (a job
        # a worker held when the run was cancelled runs out), and its finished jobs go with
        # it. A job of a pruned run left behind was taken by a new run given the same id as
        # its own task's outcome (the id was taken): the task never ran. Each set is read
        # once (a correlated test of every job against every run took 19 s for 4,000 runs).
        run_of = d.workflow_run_of("j.data")
        busy_runs = (
            f"SELECT {run_of} FROM jobs j WHERE j.status IN ('pending', 'processing') "
            f"AND {run_of} IS NOT NULL"
        )
        old_run = (
            f"r.status <> 'running' AND {d.age('r.finished_at')} > :age "
            f"AND r.run_id NOT IN ({busy_runs})"
        )
        self.prune_run_jobs = finish(
            "DELETE FROM jobs WHERE status IN ('completed', 'failed', 'cancelled') AND "
            f"{d.workflow_run_of('data')} IN (SELECT r.run_id FROM workflow_runs r "
            f"WHERE {old_run})"
        )
        self.prune_tasks = finish(
            "DELETE FROM workflow_tasks WHERE run_id IN "
            f"(SELECT r.run_id FROM workflow_runs r WHERE {old_run})"
        )
        self.prune_runs = finish(
            f"DELETE FROM workflow_runs WHERE run_id IN "
            f"(SELECT r.run_id FROM workflow_runs r WHERE {old_run})"
        )


def _run_from_row(row: Sequence[Any]) -> WorkflowRun:
    return WorkflowRun(
        run_id=row[0],
        workflow=row[1],
        trace_id=row[2],
        definition=json.loads(row[3]),
        status=row[4],
        cancel_requested=bool(row[5]),
        scheduler_host=row[6],
        scheduler_pid=row[7],
        scheduler_token=row[8],
        heartbeat_age=None if row[9] is None else float(row[9]),
        created_at=float(row[10]),
        updated_at=float(row[11]),
        finished_at=None if row[12] is None else float(row[12]),
    )


def _task_from_row(row: Sequence[Any]) -> WorkflowTask:
    return WorkflowTask(
        run_id=row[0],
        task=row[1],
        position=int(row[2]),
        state=row[3],
        attempt=int(row[4]),
        job_id=row[5],
        last_error=row[6],
        result=None if row[7] is None else json.loads(row[7]),
        updated_at=float(row[8]),
    )


class WorkflowTables:
    """:class:`WorkflowStore`'s methods, mixed into ``SqlStore``."""

    backend: Backend
    clock: Clock
    _wf: WorkflowStatements

    def _recording(
        self,
        action: str,
        sql: str,
        params: dict[str, Any],
        derived: str,
        history: Callable[[Any], Iterable[HistoryEntry]],
        *,
        recording_sql: str | None = None,
    ) -> list[Any]:
        """``SqlStore._recording``: the rows of the write ``sql`` with its history rows in
        its transaction (or its statement)."""
        raise NotImplementedError

    def _params(self, **values: Any) -> dict[str, Any]:
        values["now"] = self.clock.time()
        return values

    if TYPE_CHECKING:  # SqlStore's own (a definition here would be found first)

        def cancel_job(self, job_id: str) -> bool: ...

    def _run_write(
        self,
        sql: str,
        params: dict[str, Any],
        kind: str,
        *,
        from_state: str | None = None,
        to_state: str | None = None,
        note: str | None = None,
    ) -> bool:
        """``sql`` (an update of one run, ``… RETURNING workflow, trace_id``) and, when it
        changed the run, its history row of ``kind``, in one transaction; whether it did."""
        bound = {**params, "kind": kind, "run_from": from_state, "run_to": to_state}
        bound["run_note"] = note

        def rows(found: list[Any]) -> Iterable[HistoryEntry]:
            for workflow, trace_id in found:
                yield history_entry(
                    kind,
                    workflow,
                    ts=params["now"],
                    from_state=from_state,
                    to_state=to_state,
                    trace_id=trace_id,
                    source=params["run_id"],
                    excerpt_text=note,
                )

        found = self._recording("write to", sql, bound, self._wf.run_history, rows)
        return len(found) == 1

    def create_workflow_run(
        self,
        run_id: str,
        workflow: str,
        trace_id: str,
        definition: dict[str, Any],
        tasks: Sequence[str],
        initial_state: str,
    ) -> bool:
        params = self._params(
            run_id=run_id,
            workflow=workflow,
            trace_id=trace_id,
            definition=encode_json(definition, "workflow definition"),
        )

        def create(connection: Connection) -> bool:
            if connection.execute(self._wf.insert_run, params).rowcount != 1:
                return False
            for position, task in enumerate(tasks):
                connection.execute(
                    self._wf.insert_task,
                    {**params, "task": task, "position": position, "state": initial_state},
                )
            return True

        created: bool = self.backend.run("write to", create, transaction=True)
        return created

    def get_workflow_run(self, run_id: str) -> WorkflowRun | None:
        row = self.backend.run(
            "read from",
            lambda c: c.execute(self._wf.get_run, self._params(run_id=run_id)).fetchone(),
        )
        return None if row is None else _run_from_row(row)

    def list_workflow_runs(self, limit: int = 100) -> list[WorkflowRun]:
        rows = self.backend.run(
            "read from",
            lambda c: c.execute(self._wf.list_runs, self._params(limit=limit)).fetchall(),
        )
        return [_run_from_row(row) for row in rows]

    def list_workflow_tasks(self, run_id: str) -> list[WorkflowTask]:
        rows = self.backend.run(
            "read from",
            lambda c: c.execute(self._wf.list_tasks, self._params(run_id=run_id)).fetchall(),
        )
        return [_task_from_row(row) for row in rows]

    def take_workflow_run(self, run_id: str, stale_after: float) -> str | None:
        run = self.get_workflow_run(run_id)
        if run is None or run.status != "running":
            return None
        host = socket.gethostname()
        if run.scheduler_pid is not None:
            alive = run.scheduler_host != host or process_alive(run.scheduler_pid)
            fresh = run.heartbeat_age is not None and run.heartbeat_age < stale_after
            if alive and fresh:
                return None
        token = uuid.uuid4().hex
        # Compare and set on the token seen: a scheduler that took the run since is kept.
        params = self._params(
            run_id=run_id, token=token, host=host, pid=os.getpid(), seen=run.scheduler_token or ""
        )
        taken = self._run_write(
            self._wf.take_run,
            params,
            "workflow_started",
            to_state="running",
            note=f"scheduler pid {params['pid']} on {host}",
        )
        return token if taken else None

    def heartbeat_workflow_run(self, run_id: str, token: str) -> bool:
        params = self._params(run_id=run_id, token=token)
        count = self.backend.run(
            "write to", lambda c: c.execute(self._wf.heartbeat_run, params).rowcount
        )
        return bool(count == 1)

    def release_workflow_run(self, run_id: str, token: str) -> bool:
        params = self._params(run_id=run_id, token=token)
        return self._run_write(
            self._wf.release_run, params, "workflow_stopped", from_state="running"
        )

    def update_workflow_task(
        self,
        run_id: str,
        task: str,
        token: str,
        *,
        from_state: str,
        from_attempt: int,
        state: str,
        attempt: int,
        event: str,
        job_id: str | None,
        last_error: str | None = None,
        result: Any = None,
    ) -> bool:
        params = self._params(
            run_id=run_id,
            task=task,
            token=token,
            from_state=from_state,
            from_attempt=from_attempt,
            state=state,
            event=event,
            attempt=attempt,
            job_id=job_id,
            last_error=last_error,
            result=None if result is None else encode_json(result, "task result"),
        )

        def moved(found: list[Any]) -> Iterable[HistoryEntry]:
            for workflow, trace_id in found:
                yield history_entry(
                    "transition",
                    task_machine(workflow, task),
                    ts=params["now"],
                    from_state=from_state,
                    event=event,
                    to_state=state,
                    job_id=job_id,
                    attempt=attempt,
                    trace_id=trace_id,
                    source=run_id,
                    excerpt_text=last_error,
                )

        found = self._recording(
            "write to", self._wf.update_task, params, self._wf.moved_history, moved
        )
        return len(found) == 1

    def finish_workflow_run(self, run_id: str, token: str, status: str) -> bool:
        if status not in WORKFLOW_RUN_STATUSES[1:]:
            raise ValueError(f"not a finished run status: {status!r}")
        params = self._params(run_id=run_id, token=token, status=status)
        return self._run_write(
            self._wf.finish_run, params, "workflow_finished", from_state="running", to_state=status
        )

    def cancel_workflow_run(self, run_id: str) -> bool:
        params = self._params(run_id=run_id)
        requested = self._run_write(self._wf.cancel_run, params, "workflow_cancel_requested")
        if requested:
            # The queued jobs go at once, whether or not a scheduler holds the run: with its
            # scheduler gone, a worker once ran the run's queued job after the cancel. A live
            # scheduler finds them cancelled and ends the run `cancelled` all the same (a
            # job a worker holds runs out, as under its own cancel).
            for task in self.list_workflow_tasks(run_id):
                if task.job_id is not None and task.state == "RUNNING":
                    self.cancel_job(task.job_id)
        return requested

    def _prune_workflow_runs(self, connection: Connection, params: dict[str, Any]) -> int:
        """Inside the prune's transaction: delete the runs finished longer ago than
        ``:age`` and their tasks; how many runs."""
        connection.execute(self._wf.prune_run_jobs, params)
        connection.execute(self._wf.prune_tasks, params)
        count: int = connection.execute(self._wf.prune_runs, params).rowcount
        return count


__all__ = [
    "POSTGRES_DDL",
    "SQLITE_DDL",
    "WorkflowStatements",
    "WorkflowTables",
    "task_machine",
]
