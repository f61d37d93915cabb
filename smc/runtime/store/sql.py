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

import logging
import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from smc.runtime.clock import SYSTEM_CLOCK, Clock
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
from smc.runtime.store.errors import DuplicateJobError, StoreError
from smc.runtime.store.rows import (
    EVENT_STATUSES,
    JOB_FIELDS,
    JOB_STATUSES,
    EventRow,
    Job,
    MachineRow,
    encode_json,
    event_from_row,
    job_from_row,
    machine_status,
)
from smc.runtime.store.statements import statements_for
from smc.runtime.store.waker import JOBS_CHANNEL, Waker, machine_channel
from smc.runtime.store.workflows import WorkflowStatements, WorkflowTables

_log = logging.getLogger("smc.store")

_JOB_FIELD_COUNT = len(JOB_FIELDS)
#: The values of a 32-bit integer column.
_INT32 = range(-(2**31), 2**31)
#: How often ``add_job`` inserts again when the holder of a dedupe key finished between the
#: insert that skipped the key and the look-up (a database whose insert skips held keys).
_DEDUPE_ATTEMPTS = 10


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
    ) -> None:
        self.backend = backend
        self.backoff = backoff or Backoff()
        self.reap_interval = reap_interval
        self.machine_stale_after = machine_stale_after
        self.clock = clock
        self._sql = statements_for(backend.dialect, self.backoff)
        self._run = backend.run
        self._wf = WorkflowStatements(backend.dialect)
        self._last_reap = float("-inf")
        #: The process that last reaped: a forked child reaps at its first claim.
        self._reaper_pid = os.getpid()

    # --- lifecycle ---

    @property
    def location(self) -> str:
        return self.backend.location

    @property
    def socket_dir(self) -> Path | None:
        return self.backend.socket_dir

    def close(self) -> None:
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
        params = {
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
        return job_from_row(row), True

    def _insert_skipping_held_key(self, params: dict[str, Any]) -> tuple[Job, bool]:
        """Insert (the statement skips a held dedupe key and returns no row), then look the
        holder up; again when it finished in between."""

        def attempt(connection: Connection) -> tuple[Job, bool] | None:
            row = self._insert(connection, params)
            if row is not None:
                return job_from_row(row[:_JOB_FIELD_COUNT]), True
            existing = connection.execute(self._sql.job_by_dedupe_key, params).fetchone()
            if existing is not None:
                return job_from_row(existing), False
            return None

        for _ in range(_DEDUPE_ATTEMPTS):
            found = self._run("write to", attempt)
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
        params = {
            "id": job_id,
            "worker": worker,
            "token": uuid.uuid4().hex,
            "now": self.clock.time(),
            "lease": float(lease_seconds),
        }
        rows = self._fetchall("claim a job in", self._sql.claim_by_id, params)
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
        rows = self._fetchall("claim a job in", sql, params)
        return job_from_row(rows[0]) if rows else None

    def heartbeat(self, job_id: str, claim_token: str, lease_seconds: float) -> bool:
        params = {
            "id": job_id,
            "token": claim_token,
            "now": self.clock.time(),
            "lease": float(lease_seconds),
        }
        return self._rowcount("write to", self._sql.heartbeat, params) == 1

    def complete_job(self, job_id: str, claim_token: str | None = None, result: Any = None) -> bool:
        params = {
            "id": job_id,
            "token": claim_token,
            "result": None if result is None else encode_json(result, "job result"),
            "now": self.clock.time(),
        }
        sql = self._sql.complete if claim_token is None else self._sql.complete_fenced
        return self._rowcount("write to", sql, params) == 1

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
            "now": self.clock.time(),
        }
        sql = self._sql.fail if claim_token is None else self._sql.fail_fenced
        return self._rowcount("write to", sql, params) == 1

    def release_job(self, job_id: str, claim_token: str) -> bool:
        params = {"id": job_id, "token": claim_token, "now": self.clock.time()}
        return self._rowcount("write to", self._sql.release, params) == 1

    def reap_expired(self) -> int:
        return self._rowcount("reap expired leases in", self._sql.reap, {"now": self.clock.time()})

    def get_job(self, job_id: str) -> Job | None:
        row = self._fetchone("read", self._sql.get_job, {"id": job_id})
        return None if row is None else job_from_row(row)

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[Job]:
        sql = self._sql.list_jobs if status is None else self._sql.list_jobs_by_status
        rows = self._fetchall("read", sql, {"status": status, "limit": limit})
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
            "limit": self._sql.dialect.unlimited if limit is None else limit,
            "now": self.clock.time(),
        }
        return [job_from_row(row) for row in self._fetchall("read", sql, params)]

    def retry_job(self, job_id: str) -> bool:
        params = {
            "id": job_id,
            "now": self.clock.time(),
            "channel": self.backend.channel_name(JOBS_CHANNEL),
        }

        def retry(connection: Connection) -> bool:
            try:
                return bool(connection.execute(self._sql.retry_job, params).fetchall())
            except self.backend.unique_violation:
                raise StoreError(
                    f"cannot retry job {job_id!r} in {self.location}: another pending job holds "
                    "its dedupe key"
                ) from None

        retried = self._run("write to", retry)
        if retried:
            self.backend.ring(JOBS_CHANNEL)
        return retried

    def cancel_job(self, job_id: str) -> bool:
        params = {"id": job_id, "now": self.clock.time()}
        return self._rowcount("write to", self._sql.cancel_job, params) == 1

    def queue_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(JOB_STATUSES, 0)
        for status, count in self._fetchall("read", self._sql.queue_counts, {}):
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
    ) -> int:
        channel = machine_channel(target)
        params = {
            "target": target,
            "source": source,
            "event_type": event_type,
            "payload": encode_json(payload, "event payload"),
            "job_id": job_id,
            "now": self.clock.time(),
            "channel": self.backend.channel_name(channel),
        }
        event_id = int(self._fetchall("write to", self._sql.send_event, params)[0][0])
        self.backend.ring(channel)
        return event_id

    def claim_events(
        self, target: str, limit: int = 100, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> list[EventRow]:
        while True:
            rows = self._claim_events(target, limit, lease_seconds)
            usable = [row for row in rows if not self._dead_letter_if_malformed(row)]
            if usable or not rows:
                return usable

    def _claim_events(self, target: str, limit: int, lease_seconds: float) -> list[EventRow]:
        params = {
            "target": target,
            "limit": limit,
            "token": uuid.uuid4().hex,
            "now": self.clock.time(),
            "lease": float(lease_seconds),
        }
        rows = self._fetchall("claim events in", self._sql.claim_events, params)
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
        return self._rowcount("write to", self._sql.ack_event, params) == 1

    def dead_letter_event(self, event_id: int, claim_token: str, reason: str) -> bool:
        params = {"id": event_id, "token": claim_token, "error": reason, "now": self.clock.time()}
        return self._rowcount("write to", self._sql.dead_letter_event, params) == 1

    def event_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(EVENT_STATUSES, 0)
        for status, count in self._fetchall("read", self._sql.event_counts, {}):
            counts[status] = int(count)
        return counts

    def heartbeat_event(self, event_id: int, claim_token: str, lease_seconds: float) -> bool:
        params = {
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
    ) -> None:
        params = {
            "name": name,
            "state": state,
            "pid": os.getpid() if pid is None else pid,
            "host": socket.gethostname() if host is None else host,
            "config_path": config_path,
            "now": self.clock.time(),
        }
        self._rowcount("write to", self._sql.register_machine, params)

    def _update_machine(
        self, connection: Connection, name: str, state: str | None, now: float
    ) -> bool:
        params = {"name": name, "state": state, "now": now}
        return connection.execute(self._sql.update_machine, params).rowcount == 1

    def update_machine(self, name: str, state: str | None = None) -> bool:
        now = self.clock.time()
        return self._run(
            "write to", lambda connection: self._update_machine(connection, name, state, now)
        )

    def heartbeat_machine(self, name: str) -> bool:
        return self.update_machine(name, None)

    def stop_machine(self, name: str) -> bool:
        params = {"name": name, "now": self.clock.time()}
        return self._rowcount("write to", self._sql.stop_machine, params) == 1

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
        channels = [machine_channel(target) for target in dict.fromkeys(t for t, _, _ in encoded)]
        now = self.clock.time()

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
                        },
                    ).fetchall()[0][0]
                )
                for target, event_type, payload_json in encoded
            ]
            for channel in channels:
                # Transactional NOTIFY where the database has it: delivered at commit.
                self.backend.notify_in(connection, channel)
            return ids

        ids = self._run("write to", write, transaction=True)
        for channel in channels:
            self.backend.ring(channel)
        return ids

    # --- wake-ups ---

    def open_waker(self, channels: Sequence[str]) -> Waker:
        return self.backend.open_waker(channels)

    def notify(self, channel: str) -> None:
        self.backend.notify(channel)


__all__ = ["SqlStore"]
