"""The SQLite backend: one database file, WAL, for processes on one host.

Times are wall-clock epoch floats from the application (all processes share one host clock).
Single-statement writes run in autocommit mode: an ``UPDATE … WHERE seq = (SELECT …)`` takes the
write lock before it reads, so a claim is atomic without ``BEGIN IMMEDIATE``. Multi-statement
writes use ``BEGIN IMMEDIATE`` so they never hit the read-then-upgrade ``SQLITE_BUSY`` case.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote

from smc.runtime.store.base import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MACHINE_STALE_AFTER,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    DEFAULT_REAP_INTERVAL,
    EVENT_FIELDS,
    JOB_FIELDS,
    JOB_STATUSES,
    Backoff,
    DuplicateJobError,
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
from smc.runtime.store.waker import (
    JOBS_CHANNEL,
    Doorbell,
    DoorbellWaker,
    Waker,
    default_socket_dir,
    machine_channel,
)

SCHEMA_VERSION = 1

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    # seq orders the queue (ids are user text); AUTOINCREMENT so a seq is never reused.
    """CREATE TABLE IF NOT EXISTS jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        job_type TEXT NOT NULL,
        machine_type TEXT,
        data TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 5,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending','processing','completed','failed','cancelled')),
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL DEFAULT 5,
        run_after REAL NOT NULL,
        claimed_by TEXT,
        claim_token TEXT,
        lease_expires_at REAL,
        dedupe_key TEXT,
        last_error TEXT,
        result TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_claim_order ON jobs (priority, seq) WHERE status = 'pending'",
    "CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (lease_expires_at) WHERE status = 'processing'",
    """CREATE UNIQUE INDEX IF NOT EXISTS jobs_dedupe_key ON jobs (dedupe_key)
        WHERE dedupe_key IS NOT NULL AND status IN ('pending', 'processing')""",
    "CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, seq)",
    """CREATE TABLE IF NOT EXISTS machine_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        target_machine TEXT NOT NULL,
        source_machine TEXT,
        event_type TEXT NOT NULL,
        payload TEXT NOT NULL,
        job_id TEXT,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending','processing','done')),
        attempts INTEGER NOT NULL DEFAULT 0,
        claim_token TEXT,
        lease_expires_at REAL,
        created_at REAL NOT NULL,
        processed_at REAL
    )""",
    """CREATE INDEX IF NOT EXISTS machine_events_open ON machine_events (target_machine, id)
        WHERE status IN ('pending', 'processing')""",
    """CREATE TABLE IF NOT EXISTS machine_state (
        machine_name TEXT PRIMARY KEY,
        state TEXT,
        pid INTEGER,
        host TEXT,
        config_path TEXT,
        status TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running','stopped')),
        started_at REAL,
        heartbeat_at REAL,
        updated_at REAL
    )""",
)

_JOB_COLUMNS = ", ".join(JOB_FIELDS)
_EVENT_COLUMNS = ", ".join(EVENT_FIELDS)
_MACHINE_COLUMNS = (
    "machine_name, state, pid, host, config_path, status, started_at, heartbeat_at, updated_at"
)

#: Connections inherited through fork(): never closed in the child, because closing would touch
#: the parent's WAL and locks; kept referenced so garbage collection does not close them either.
_INHERITED_CONNECTIONS: list[sqlite3.Connection] = []


class _Busy(StoreError):
    """SQLITE_BUSY: the statement was rolled back whole, so running it again is safe."""


def _is_busy(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _retry_when_busy(method: _Method) -> _Method:
    """Run ``method`` again when SQLite answers BUSY before ``busy_timeout`` is used up.

    The busy handler already waits, but some BUSY answers skip it (e.g. a WAL snapshot that
    went stale while waiting, or a checkpoint holding a lock), and writers are not served in
    order, so a worker can lose the race several times in a row under contention.
    """

    @functools.wraps(method)
    def run(self: SqliteStore, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + self.busy_timeout
        pause = 0.001
        while True:
            try:
                return method(self, *args, **kwargs)
            except _Busy:
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause * (0.5 + random.random()))
                pause = min(pause * 2, 0.05)

    return cast(_Method, run)


def _describe(error: sqlite3.Error) -> str:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None and code & 0xFF == sqlite3.SQLITE_READONLY:
        return "database is read-only"
    if code is not None and code & 0xFF == sqlite3.SQLITE_FULL:
        return "database or disk is full"
    return str(error).splitlines()[0] if str(error) else type(error).__name__


class SqliteStore(Store):
    """The store in one SQLite file. ``read_only`` opens it with ``mode=ro`` (writes then raise
    :class:`StoreError`); ``synchronous`` may be raised to ``FULL`` to survive power loss.
    ``wal_autocheckpoint`` (pages) sets when a commit on this connection checkpoints the
    write-ahead log itself (SQLite's default: 1000); a worker raises it and calls
    :meth:`checkpoint` from a background thread instead. ``max_pages`` caps the file's size in
    pages (``PRAGMA max_page_count``) for this connection: writes that would grow it fail as
    on a full disk (the URL form ``sqlite:///path?max_pages=N`` is for failure drills)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        synchronous: str = "NORMAL",
        busy_timeout: float = 10.0,
        backoff: Backoff | None = None,
        reap_interval: float = DEFAULT_REAP_INTERVAL,
        machine_stale_after: float = DEFAULT_MACHINE_STALE_AFTER,
        wal_autocheckpoint: int | None = None,
        max_pages: int | None = None,
    ) -> None:
        super().__init__(
            backoff=backoff, reap_interval=reap_interval, machine_stale_after=machine_stale_after
        )
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous}")
        self.path = Path(path).absolute()
        self.read_only = read_only
        self.synchronous = synchronous.upper()
        self.busy_timeout = busy_timeout
        self.wal_autocheckpoint = None if wal_autocheckpoint is None else int(wal_autocheckpoint)
        if max_pages is not None and (isinstance(max_pages, bool) or int(max_pages) < 1):
            raise ValueError(f"max_pages must be a positive number of pages, not {max_pages!r}")
        self.max_pages = None if max_pages is None else int(max_pages)
        self._doorbell_dir = default_socket_dir(self.path)
        self.socket_dir = self._doorbell_dir
        self._doorbell = Doorbell(self._doorbell_dir)
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._connect()  # fail now, with a clear message, rather than at first use

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection of this process (for diagnostics and PRAGMAs)."""
        return self._conn()

    # --- connection handling ---

    def _connect(self) -> sqlite3.Connection:
        if not self.path.parent.is_dir():
            raise StoreError(
                f"cannot open {self.path}: directory {self.path.parent} does not exist"
            )
        if self.read_only and not self.path.exists():
            raise StoreError(f"cannot open {self.path}: no such database file")
        mode = "ro" if self.read_only else "rwc"
        uri = f"file:{quote(str(self.path))}?mode={mode}"
        try:
            connection = sqlite3.connect(
                uri,
                uri=True,
                isolation_level=None,  # autocommit; transactions are explicit BEGIN IMMEDIATE
                check_same_thread=False,  # guarded by self._lock instead
                timeout=self.busy_timeout,
            )
        except sqlite3.Error as error:
            raise StoreError(f"cannot open {self.path}: {_describe(error)}") from None
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            if not self.read_only:
                self._use_wal(connection)
                connection.execute(f"PRAGMA synchronous = {self.synchronous}")
                if self.wal_autocheckpoint is not None:
                    connection.execute(f"PRAGMA wal_autocheckpoint = {self.wal_autocheckpoint}")
                if self.max_pages is not None:  # never below the current size (SQLite's rule)
                    connection.execute(f"PRAGMA max_page_count = {self.max_pages}").fetchall()
            connection.create_function("smc_backoff", 1, self.backoff.delay, deterministic=False)
            self._ensure_schema(connection)
        except sqlite3.Error as error:
            connection.close()
            raise StoreError(f"cannot open {self.path}: {_describe(error)}") from None
        self._connection = connection
        self._pid = os.getpid()
        return connection

    def _use_wal(self, connection: sqlite3.Connection) -> None:
        """``PRAGMA journal_mode = WAL``, again while it answers BUSY: switching a fresh file to
        WAL needs an exclusive lock and SQLite answers BUSY without calling the busy handler
        when another process holds one (processes starting together on a new database)."""
        deadline = time.monotonic() + self.busy_timeout
        pause = 0.001
        while True:
            try:
                connection.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as error:
                if not _is_busy(error) or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause * (0.5 + random.random()))
            pause = min(pause * 2, 0.05)

    def _ensure_schema(self, connection: sqlite3.Connection) -> None:
        version_row = None
        with contextlib.suppress(sqlite3.OperationalError):
            version_row = connection.execute("SELECT max(version) FROM schema_version").fetchone()
        if version_row is not None and version_row[0] is not None:
            if version_row[0] > SCHEMA_VERSION:
                raise StoreError(
                    f"cannot open {self.path}: schema version {version_row[0]} is newer than "
                    f"this smc supports ({SCHEMA_VERSION})"
                )
            if version_row[0] == SCHEMA_VERSION:
                return
        if self.read_only:
            raise StoreError(f"cannot open {self.path}: not an smc database (no schema)")
        # IMMEDIATE: several processes may open a fresh file at once; one creates the schema.
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                connection.execute(statement)
            if connection.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 0:
                connection.execute("INSERT INTO schema_version (version) VALUES (?)", (1,))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def _conn(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            # Forked: the inherited connection belongs to the parent. Open our own.
            if self._connection is not None:
                _INHERITED_CONNECTIONS.append(self._connection)
            self._connection = None
            self._lock = threading.RLock()
            self._last_reap = float("-inf")
        if self._connection is None:
            return self._connect()
        return self._connection

    @contextlib.contextmanager
    def _using(self, action: str) -> Iterator[sqlite3.Connection]:
        """The connection, with any SQLite error turned into a one-line :class:`StoreError`."""
        with self._lock:
            connection = self._conn()
            try:
                yield connection
            except sqlite3.Error as error:
                if connection.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        connection.execute("ROLLBACK")
                error_type = _Busy if _is_busy(error) else StoreError
                raise error_type(f"cannot {action} {self.path}: {_describe(error)}") from None

    @contextlib.contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._using(action) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        connection.execute("ROLLBACK")
                raise

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database file (PASSIVE: never waits for or blocks
        writers; nothing to do costs one shared-memory read). A checkpoint ``fsync``s twice,
        which is why a worker runs it here, off the path of its claims and events."""
        if self.read_only:
            return
        with self._using("checkpoint") as connection:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self) -> None:
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection = None
            self._doorbell.close()

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
        new_id = job_id if job_id is not None else uuid.uuid4().hex
        now = time.time()
        with self._transaction("write to") as connection:
            if dedupe_key is not None:
                existing = connection.execute(
                    f"SELECT {_JOB_COLUMNS} FROM jobs WHERE dedupe_key = ? "
                    "AND status IN ('pending', 'processing')",
                    (dedupe_key,),
                ).fetchone()
                if existing is not None:
                    return job_from_row(existing)
            try:
                row = connection.execute(
                    f"""INSERT INTO jobs (id, job_type, machine_type, data, priority, max_attempts,
                            run_after, dedupe_key, created_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {_JOB_COLUMNS}""",
                    (
                        new_id,
                        job_type,
                        machine_type,
                        data_json,
                        priority,
                        max_attempts,
                        now if run_after is None else run_after,
                        dedupe_key,
                        now,
                    ),
                ).fetchall()[0]
            except sqlite3.IntegrityError:
                raise DuplicateJobError(
                    f"cannot add job to {self.path}: a job with id {new_id!r} already exists"
                ) from None
        self._doorbell.ring(JOBS_CHANNEL)
        return job_from_row(row)

    def _claim_next(
        self,
        worker: str,
        job_types: Sequence[str] | None,
        machine_type: str | None,
        lease_seconds: float,
    ) -> Job | None:
        filters = ""
        now = time.time()
        token = uuid.uuid4().hex
        params: list[Any] = [worker, token, now, now + lease_seconds, now]
        if job_types is not None:
            if not job_types:
                return None
            filters += f" AND job_type IN ({', '.join('?' * len(job_types))})"
            params.extend(job_types)
        if machine_type is not None:
            filters += " AND (machine_type IS NULL OR machine_type = ?)"
            params.append(machine_type)
        # INDEXED BY: left to itself the planner picks jobs_status (status, seq) and sorts every
        # pending row by priority for each claim, O(pending) per claim (2 ms at 5,000 pending);
        # the partial index walks in claim order and stops at the first match (~20 us).
        sql = f"""UPDATE jobs SET status = 'processing', claimed_by = ?, claim_token = ?,
                    attempts = attempts + 1, started_at = ?, lease_expires_at = ?,
                    finished_at = NULL
                  WHERE seq = (SELECT seq FROM jobs INDEXED BY jobs_claim_order
                               WHERE status = 'pending' AND run_after <= ?{filters}
                               ORDER BY priority, seq LIMIT 1)
                    AND status = 'pending'
                  RETURNING {_JOB_COLUMNS}"""
        with self._using("claim a job in") as connection:
            # fetchall: the statement (and its implicit commit) ends only when fully stepped.
            rows = connection.execute(sql, params).fetchall()
        return job_from_row(rows[0]) if rows else None

    def _claim_by_id(self, job_id: str, worker: str, lease_seconds: float) -> Job | None:
        now = time.time()
        with self._using("claim a job in") as connection:
            rows = connection.execute(
                f"""UPDATE jobs SET status = 'processing', claimed_by = ?, claim_token = ?,
                      attempts = attempts + 1, started_at = ?, lease_expires_at = ?,
                      finished_at = NULL
                    WHERE id = ? AND status = 'pending' AND run_after <= ?
                    RETURNING {_JOB_COLUMNS}""",
                (worker, uuid.uuid4().hex, now, now + lease_seconds, job_id, now),
            ).fetchall()
        return job_from_row(rows[0]) if rows else None

    def heartbeat(self, job_id: str, claim_token: str, lease_seconds: float) -> bool:
        with self._using("write to") as connection:
            cursor = connection.execute(
                "UPDATE jobs SET lease_expires_at = ? "
                "WHERE id = ? AND claim_token = ? AND status = 'processing'",
                (time.time() + lease_seconds, job_id, claim_token),
            )
            return cursor.rowcount == 1

    def _fence(self, claim_token: str | None) -> tuple[str, tuple[Any, ...]]:
        if claim_token is None:
            return "", ()
        return " AND claim_token = ?", (claim_token,)

    def complete_job(self, job_id: str, claim_token: str | None = None, result: Any = None) -> bool:
        result_json = None if result is None else encode_json(result, "job result")
        fence, fence_params = self._fence(claim_token)
        with self._using("write to") as connection:
            cursor = connection.execute(
                "UPDATE jobs SET status = 'completed', result = ?, finished_at = ?, "
                "lease_expires_at = NULL WHERE id = ? AND status = 'processing'" + fence,
                (result_json, time.time(), job_id, *fence_params),
            )
            return cursor.rowcount == 1

    def fail_job(
        self,
        job_id: str,
        reason: str,
        claim_token: str | None = None,
        retry: bool = False,
    ) -> bool:
        fence, fence_params = self._fence(claim_token)
        now = time.time()
        again = "(? AND attempts < max_attempts)"
        with self._using("write to") as connection:
            cursor = connection.execute(
                f"""UPDATE jobs SET
                      status = CASE WHEN {again} THEN 'pending' ELSE 'failed' END,
                      run_after = CASE WHEN {again} THEN ? + smc_backoff(attempts)
                                  ELSE run_after END,
                      finished_at = CASE WHEN {again} THEN NULL ELSE ? END,
                      last_error = ?, claim_token = NULL, lease_expires_at = NULL
                    WHERE id = ? AND status = 'processing'{fence}""",
                (retry, retry, now, retry, now, reason, job_id, *fence_params),
            )
            return cursor.rowcount == 1

    def release_job(self, job_id: str, claim_token: str) -> bool:
        with self._using("write to") as connection:
            cursor = connection.execute(
                """UPDATE jobs SET status = 'pending', attempts = max(attempts - 1, 0),
                     run_after = ?, claim_token = NULL, lease_expires_at = NULL
                   WHERE id = ? AND claim_token = ? AND status = 'processing'""",
                (time.time(), job_id, claim_token),
            )
            return cursor.rowcount == 1

    def reap_expired(self) -> int:
        now = time.time()
        used_up = "attempts >= max_attempts"
        with self._using("reap expired leases in") as connection:
            cursor = connection.execute(
                f"""UPDATE jobs SET
                      status = CASE WHEN {used_up} THEN 'failed' ELSE 'pending' END,
                      run_after = CASE WHEN {used_up} THEN run_after
                                  ELSE ? + smc_backoff(attempts) END,
                      finished_at = CASE WHEN {used_up} THEN ? ELSE NULL END,
                      last_error = 'lease expired (claimed by ' || coalesce(claimed_by, '?')
                                   || ', attempt ' || attempts || ' of ' || max_attempts || ')',
                      claim_token = NULL, lease_expires_at = NULL
                    WHERE status = 'processing' AND lease_expires_at < ?""",
                (now, now, now),
            )
            return cursor.rowcount

    def get_job(self, job_id: str) -> Job | None:
        with self._using("read") as connection:
            row = connection.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        return None if row is None else job_from_row(row)

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[Job]:
        where, params = ("WHERE status = ?", (status,)) if status is not None else ("", ())
        with self._using("read") as connection:
            rows = connection.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs {where} ORDER BY seq DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [job_from_row(row) for row in rows]

    def list_pending(
        self,
        job_type: str | None = None,
        machine_type: str | None = None,
        limit: int | None = None,
    ) -> list[Job]:
        # The claim-order index, as in _claim_next: no sort of every pending row.
        sql = (
            f"SELECT {_JOB_COLUMNS} FROM jobs INDEXED BY jobs_claim_order "
            "WHERE status = 'pending' AND run_after <= ?"
        )
        params: list[Any] = [time.time()]
        if job_type is not None:
            sql += " AND job_type = ?"
            params.append(job_type)
        if machine_type is not None:
            sql += " AND (machine_type IS NULL OR machine_type = ?)"
            params.append(machine_type)
        sql += " ORDER BY priority, seq LIMIT ?"
        params.append(-1 if limit is None else limit)
        with self._using("read") as connection:
            rows = connection.execute(sql, params).fetchall()
        return [job_from_row(row) for row in rows]

    def retry_job(self, job_id: str) -> bool:
        with self._using("write to") as connection:
            try:
                cursor = connection.execute(
                    """UPDATE jobs SET status = 'pending', attempts = 0, run_after = ?,
                         claim_token = NULL, lease_expires_at = NULL, finished_at = NULL
                       WHERE id = ? AND status IN ('failed', 'cancelled')""",
                    (time.time(), job_id),
                )
            except sqlite3.IntegrityError:
                raise StoreError(
                    f"cannot retry job {job_id!r} in {self.path}: another pending job holds "
                    "its dedupe key"
                ) from None
            retried = cursor.rowcount == 1
        if retried:
            self._doorbell.ring(JOBS_CHANNEL)
        return retried

    def cancel_job(self, job_id: str) -> bool:
        with self._using("write to") as connection:
            cursor = connection.execute(
                "UPDATE jobs SET status = 'cancelled', finished_at = ? "
                "WHERE id = ? AND status = 'pending'",
                (time.time(), job_id),
            )
            return cursor.rowcount == 1

    def queue_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(JOB_STATUSES, 0)
        with self._using("read") as connection:
            for status, count in connection.execute(
                "SELECT status, count(*) FROM jobs GROUP BY status"
            ):
                counts[status] = count
        return counts

    def wait_job_statuses(self, job_ids: Iterable[str]) -> dict[str, str]:
        ids = list(job_ids)
        statuses: dict[str, str] = {}
        with self._using("read") as connection:
            for start in range(0, len(ids), 500):  # stay under SQLite's variable limit
                chunk = ids[start : start + 500]
                rows = connection.execute(
                    f"SELECT id, status FROM jobs WHERE id IN ({', '.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                statuses.update({row[0]: row[1] for row in rows})
        return statuses

    # --- events ---

    def _insert_event(
        self,
        connection: sqlite3.Connection,
        target: str,
        event_type: str,
        payload_json: str,
        source: str | None,
        job_id: str | None,
        now: float,
    ) -> int:
        cursor = connection.execute(
            """INSERT INTO machine_events (target_machine, source_machine, event_type, payload,
                   job_id, created_at) VALUES (?, ?, ?, ?, ?, ?)""",
            (target, source, event_type, payload_json, job_id, now),
        )
        event_id = cursor.lastrowid
        assert event_id is not None
        return event_id

    def send_event(
        self,
        target: str,
        event_type: str,
        payload: Any = None,
        source: str | None = None,
        job_id: str | None = None,
    ) -> int:
        payload_json = encode_json(payload, "event payload")
        with self._using("write to") as connection:
            event_id = self._insert_event(
                connection, target, event_type, payload_json, source, job_id, time.time()
            )
        self._doorbell.ring(machine_channel(target))
        return event_id

    def claim_events(
        self, target: str, limit: int = 100, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> list[EventRow]:
        now = time.time()
        with self._using("claim events in") as connection:
            rows = connection.execute(
                f"""UPDATE machine_events SET status = 'processing', claim_token = ?,
                      lease_expires_at = ?, attempts = attempts + 1
                    WHERE id IN (SELECT id FROM machine_events
                                 WHERE target_machine = ?
                                   AND (status = 'pending'
                                        OR (status = 'processing' AND lease_expires_at < ?))
                                 ORDER BY id LIMIT ?)
                    RETURNING {_EVENT_COLUMNS}""",
                (uuid.uuid4().hex, now + lease_seconds, target, now, limit),
            ).fetchall()
        return sorted((event_from_row(row) for row in rows), key=lambda event: event.id)

    def ack_event(self, event_id: int, claim_token: str) -> bool:
        with self._using("write to") as connection:
            cursor = connection.execute(
                "UPDATE machine_events SET status = 'done', processed_at = ?, "
                "lease_expires_at = NULL "
                "WHERE id = ? AND claim_token = ? AND status = 'processing'",
                (time.time(), event_id, claim_token),
            )
            return cursor.rowcount == 1

    def release_events(self, target: str) -> int:
        with self._using("write to") as connection:
            cursor = connection.execute(
                "UPDATE machine_events SET status = 'pending', claim_token = NULL, "
                "lease_expires_at = NULL WHERE target_machine = ? AND status = 'processing'",
                (target,),
            )
            return cursor.rowcount

    def list_events(
        self, target: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[EventRow]:
        """Events, newest first, optionally for one target and/or status."""
        sql = f"SELECT {_EVENT_COLUMNS} FROM machine_events WHERE 1 = 1"
        params: list[Any] = []
        if target is not None:
            sql += " AND target_machine = ?"
            params.append(target)
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
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
        now = time.time()
        with self._using("write to") as connection:
            connection.execute(
                """INSERT INTO machine_state (machine_name, state, pid, host, config_path, status,
                       started_at, heartbeat_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?)
                   ON CONFLICT (machine_name) DO UPDATE SET state = excluded.state,
                       pid = excluded.pid, host = excluded.host,
                       config_path = excluded.config_path, status = 'running',
                       started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
                       updated_at = excluded.updated_at""",
                (
                    name,
                    state,
                    os.getpid() if pid is None else pid,
                    socket.gethostname() if host is None else host,
                    config_path,
                    now,
                    now,
                    now,
                ),
            )

    def _update_machine(
        self, connection: sqlite3.Connection, name: str, state: str | None, now: float
    ) -> bool:
        cursor = connection.execute(
            """UPDATE machine_state SET state = coalesce(?, state), heartbeat_at = ?,
                 updated_at = CASE WHEN ? IS NULL THEN updated_at ELSE ? END
               WHERE machine_name = ?""",
            (state, now, state, now, name),
        )
        return cursor.rowcount == 1

    def update_machine(self, name: str, state: str | None = None) -> bool:
        with self._using("write to") as connection:
            return self._update_machine(connection, name, state, time.time())

    def heartbeat_machine(self, name: str) -> bool:
        return self.update_machine(name, None)

    def stop_machine(self, name: str) -> bool:
        now = time.time()
        with self._using("write to") as connection:
            cursor = connection.execute(
                "UPDATE machine_state SET status = 'stopped', updated_at = ? "
                "WHERE machine_name = ?",
                (now, name),
            )
            return cursor.rowcount == 1

    def _machine_from_row(self, row: Sequence[Any], now: float) -> MachineRow:
        name, state, pid, host, config_path, status, started_at, heartbeat_at, updated_at = row
        age = None if heartbeat_at is None else max(now - heartbeat_at, 0.0)
        return MachineRow(
            name=name,
            state=state,
            pid=pid,
            host=host,
            config_path=config_path,
            status=self._status(status, pid, host, age),
            started_at=started_at,
            heartbeat_at=heartbeat_at,
            heartbeat_age=age,
            updated_at=updated_at,
        )

    def get_machine(self, name: str) -> MachineRow | None:
        with self._using("read") as connection:
            row = connection.execute(
                f"SELECT {_MACHINE_COLUMNS} FROM machine_state WHERE machine_name = ?", (name,)
            ).fetchone()
        return None if row is None else self._machine_from_row(row, time.time())

    def list_machines(self) -> list[MachineRow]:
        with self._using("read") as connection:
            rows = connection.execute(
                f"SELECT {_MACHINE_COLUMNS} FROM machine_state ORDER BY machine_name"
            ).fetchall()
        now = time.time()
        return [self._machine_from_row(row, now) for row in rows]

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
        now = time.time()
        with self._transaction("write to") as connection:
            if not self._update_machine(connection, name, state, now):
                raise StoreError(f"cannot update machine {name!r} in {self.path}: not registered")
            ids = [
                self._insert_event(
                    connection, target, event_type, payload_json, source or name, None, now
                )
                for target, event_type, payload_json in encoded
            ]
        for target in dict.fromkeys(target for target, _, _ in encoded):
            self._doorbell.ring(machine_channel(target))
        return ids

    # --- wake-ups ---

    def open_waker(self, channels: Sequence[str]) -> Waker:
        return DoorbellWaker(self._doorbell_dir, channels)

    def notify(self, channel: str) -> None:
        self._doorbell.ring(channel)


# Every public operation is one short transaction: safe to re-run after a BUSY rollback.
for _name in (
    "add_job",
    "_claim_next",
    "_claim_by_id",
    "heartbeat",
    "complete_job",
    "fail_job",
    "release_job",
    "reap_expired",
    "get_job",
    "list_jobs",
    "list_pending",
    "retry_job",
    "cancel_job",
    "queue_counts",
    "wait_job_statuses",
    "send_event",
    "claim_events",
    "ack_event",
    "release_events",
    "list_events",
    "register_machine",
    "update_machine",
    "stop_machine",
    "get_machine",
    "list_machines",
    "update_machine_and_send",
):
    setattr(SqliteStore, _name, _retry_when_busy(getattr(SqliteStore, _name)))
