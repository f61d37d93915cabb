"""The SQLite backend: one database file, WAL, for processes on one host.

Times are epoch floats the store binds as ``:now`` from its clock (all processes share one
host clock; a test passes a ``ManualClock``). Single-statement writes run in autocommit mode: an
``UPDATE … WHERE seq = (SELECT …)`` takes the write lock before it reads, so a claim is atomic
without ``BEGIN IMMEDIATE``. Multi-statement writes use ``BEGIN IMMEDIATE`` so they never hit
the read-then-upgrade ``SQLITE_BUSY`` case; any ``SQLITE_BUSY`` that still comes is retried
whole in :meth:`SqliteBackend.run`, the one place every statement passes.

The methods and most statements are shared with PostgreSQL (``sql.SqlStore``,
``statements.SqlStatements``); this module has the dialect (the claim statements, ``:now`` as a
bound parameter), the connection, the schema, the translation of SQLite errors and the doorbell
wake-ups. Over 500 lines because the schema and its upgrade are here too, next to the
connection that creates them, and the checkpoints, which work around a bug of SQLite's WAL.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import math
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote

from smc.runtime.clock import SYSTEM_CLOCK, Clock
from smc.runtime.store.backend import Backend, Connection
from smc.runtime.store.base import DEFAULT_MACHINE_STALE_AFTER, DEFAULT_REAP_INTERVAL, Backoff
from smc.runtime.store.errors import NoDatabaseError, StoreError
from smc.runtime.store.rows import EXCERPT_LIMIT, HISTORY_FIELDS, excerpt
from smc.runtime.store.sql import SqlStore
from smc.runtime.store.statements import REAPED_COLUMNS, Dialect, SqlStatements
from smc.runtime.store.waker import (
    Doorbell,
    DoorbellWaker,
    Waker,
    default_socket_dir,
    ensure_socket_dir,
)
from smc.runtime.store.workflows import SQLITE_DDL as _WORKFLOW_DDL

SCHEMA_VERSION = 3

# Checkpoints. SQLite 3.7.0 to 3.51.2 (Debian 12 ships 3.40.1) have the "WAL-reset bug"
# (https://sqlite.org/wal.html#walresetbug): a checkpoint that starts just as a writer resets
# the write-ahead log can record frames as copied that never were, and a later reset of the
# log loses those commits. A bench_ui.py run lost 104 committed add_job calls to it (50
# processes each checkpointing 4 times a second beside a stream of commits; docs/queue.md,
# "Checkpoints"). So no smc connection checkpoints on its own (``wal_autocheckpoint = 0``:
# SQLite's automatic checkpoint runs without the write lock), and every checkpoint smc runs
# holds the database's write lock on a second connection while it copies: no writer can reset
# the log under it. The checkpoints of one database are also spaced: at most one every
# CHECKPOINT_GAP, by whichever process (of this user) gets there first.

#: At least this long between two checkpoints of one database (the time of the last is the
#: mtime of ``checkpoint.lock`` in the database's doorbell directory).
CHECKPOINT_GAP = 0.5
#: A checkpoint waits this long for the write lock, then gives up until the next attempt.
CHECKPOINT_LOCK_WAIT = 0.5
#: A store tries to checkpoint after this many statements of its own, if none of its database
#: ran for CHECKPOINT_STALE: this bounds the log when no worker runs (a worker's background
#: thread tries every 0.25 s, and so the others never need to).
CHECKPOINT_EVERY = 1000
CHECKPOINT_STALE = 2.0
#: A worker's loop connection tries only this often: a checkpoint ``fsync``s (3-9 ms on the
#: commit that ran it, the p99 of event latency), and the worker's background thread keeps
#: the log far below what this many statements write; it is the safety net if it cannot.
INLINE_CHECKPOINT_EVERY = 8192
#: The file whose lock and mtime space the checkpoints (every socket name there has an
#: ``@``, so none is this).
CHECKPOINT_LOCK_FILE = "checkpoint.lock"

# Version 2 added status 'dead' and last_error (dead-lettered events); version 3 trace_id
# (docs/history.md).
_MACHINE_EVENTS_TABLE = """CREATE TABLE IF NOT EXISTS {name} (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        target_machine TEXT NOT NULL,
        source_machine TEXT,
        event_type TEXT NOT NULL,
        payload TEXT NOT NULL,
        job_id TEXT,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending','processing','done','dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        claim_token TEXT,
        lease_expires_at REAL,
        created_at REAL NOT NULL,
        processed_at REAL,
        last_error TEXT,
        trace_id TEXT
    )"""
_MACHINE_EVENTS_OPEN_INDEX = """CREATE INDEX IF NOT EXISTS machine_events_open
        ON machine_events (target_machine, id) WHERE status IN ('pending', 'processing')"""
# The version-1 columns, copied as they are when a version-1 database is upgraded.
_MACHINE_EVENTS_V1_COLUMNS = (
    "id, target_machine, source_machine, event_type, payload, job_id, status, attempts, "
    "claim_token, lease_expires_at, created_at, processed_at"
)

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
        finished_at REAL,
        trace_id TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_claim_order ON jobs (priority, seq) WHERE status = 'pending'",
    "CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (lease_expires_at) WHERE status = 'processing'",
    """CREATE UNIQUE INDEX IF NOT EXISTS jobs_dedupe_key ON jobs (dedupe_key)
        WHERE dedupe_key IS NOT NULL AND status IN ('pending', 'processing')""",
    "CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, seq)",
    _MACHINE_EVENTS_TABLE.format(name="machine_events"),
    _MACHINE_EVENTS_OPEN_INDEX,
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
    # Version 3: the history (docs/history.md). A plain rowid table, not AUTOINCREMENT (which
    # writes sqlite_sequence on every insert), and no index: each is another page written by
    # every commit that records history, on the worker's hot path (a trace index cost 13 us a
    # job). Queries seek the first id of their time range instead (SqlStore.history). Pruning
    # keeps the newest row, so a rowid is never handed out twice.
    """CREATE TABLE IF NOT EXISTS history (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        machine TEXT NOT NULL,
        kind TEXT NOT NULL,
        from_state TEXT,
        event TEXT,
        to_state TEXT,
        job_id TEXT,
        attempt INTEGER,
        trace_id TEXT,
        source TEXT,
        excerpt TEXT,
        configuration TEXT
    )""",
    # Version 3 also added the workflow tables (smc/runtime/store/workflows.py): new tables only,
    # so a version-2 database is upgraded by creating them, which the lines above do.
    *_WORKFLOW_DDL,
)


def _add_column(connection: sqlite3.Connection, table: str, column: str, kind: str) -> None:
    """``ALTER TABLE … ADD COLUMN`` unless ``table`` has it (a table rebuilt by an earlier
    upgrade step already does)."""
    columns = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
    if column not in columns:
        connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def _upgrade_from_2(connection: sqlite3.Connection) -> None:
    """Version 2 → 3, inside the caller's transaction: the trace ids (the history table and
    its index are created by ``_SCHEMA``)."""
    _add_column(connection, "jobs", "trace_id", "TEXT")
    _add_column(connection, "machine_events", "trace_id", "TEXT")


def _upgrade_from_1(connection: sqlite3.Connection) -> None:
    """Version 1 → 2, inside the caller's transaction: SQLite cannot change a CHECK constraint,
    so ``machine_events`` is rebuilt (new table, rows copied, old one dropped, new one renamed:
    SQLite's documented procedure for other table changes; nothing references the table)
    with its index; the AUTOINCREMENT counter is carried over so no event id is reused."""
    sequence = connection.execute(
        "SELECT seq FROM sqlite_sequence WHERE name = 'machine_events'"
    ).fetchone()
    connection.execute(_MACHINE_EVENTS_TABLE.format(name="machine_events_v2"))
    connection.execute(
        f"INSERT INTO machine_events_v2 ({_MACHINE_EVENTS_V1_COLUMNS}) "
        f"SELECT {_MACHINE_EVENTS_V1_COLUMNS} FROM machine_events"
    )
    connection.execute("DROP TABLE machine_events")
    connection.execute("ALTER TABLE machine_events_v2 RENAME TO machine_events")
    if sequence is not None:
        carried = connection.execute(
            "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'machine_events'",
            (sequence[0],),
        )
        if carried.rowcount == 0:  # no rows were copied, so the new table has no counter yet
            connection.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('machine_events', ?)",
                (sequence[0],),
            )
    connection.execute(_MACHINE_EVENTS_OPEN_INDEX)


@functools.cache
def _list_names(name: str, count: int) -> tuple[str, ...]:
    return tuple(f"{name}_{index}" for index in range(count))


def _job_history_trigger(name: str, status: str, row: str) -> str:
    """A TEMP trigger (it lives in this connection only, so it fires for this store's
    writes and for no other writer of the file, including one with history off) inserting
    the history row ``row`` (the values of ``HISTORY_FIELDS[1:]`` over ``new``) when a job's
    status becomes ``status``."""
    columns = ", ".join(HISTORY_FIELDS[1:])
    return (
        f"CREATE TEMP TRIGGER IF NOT EXISTS {name} AFTER UPDATE OF status ON main.jobs "
        f"WHEN new.status = '{status}' AND old.status IS NOT '{status}' "
        f"BEGIN INSERT INTO history ({columns}) VALUES ({row}); END"
    )


#: The result cut as :func:`~smc.runtime.store.rows.excerpt` cuts it (``length`` and
#: ``substr`` count characters, as Python does); a result with ``\\u`` escapes goes to
#: ``excerpt`` itself (``smc_excerpt``, registered on each connection), which writes them
#: out: only then, as a Python call on every completion would cost the hot path.
_RESULT_EXCERPT = (
    "CASE WHEN instr(new.result, '\\u') > 0 THEN smc_excerpt(new.result) "
    f"WHEN length(new.result) > {EXCERPT_LIMIT} "
    f"THEN substr(new.result, 1, {EXCERPT_LIMIT - 1}) || '…' ELSE new.result END"
)


class SqliteDialect(Dialect):
    """Times are epoch floats the application binds as ``:now``; the backoff delay is
    ``smc_backoff(attempts)``, the store's :class:`Backoff` registered on each connection."""

    # SQLite has no data-modifying WITH, so a claim or a completion would need a transaction
    # around its UPDATE and a history INSERT bound from Python; a trigger writes the row in
    # the UPDATE itself, from the row's own columns (docs/history.md, "Cost"). ``started_at``
    # and ``finished_at`` are set to ``:now`` by the claim and the completion.
    job_history_triggers = (
        _job_history_trigger(
            "smc_history_job_claimed",
            "processing",
            "new.started_at, coalesce(new.claimed_by, ''), 'job_claimed', NULL, new.job_type, "
            "NULL, new.id, new.attempts, new.trace_id, NULL, NULL, NULL",
        ),
        _job_history_trigger(
            "smc_history_job_completed",
            "completed",
            "new.finished_at, coalesce(new.claimed_by, ''), 'job_completed', NULL, "
            f"new.job_type, NULL, new.id, new.attempts, new.trace_id, NULL, {_RESULT_EXCERPT}, "
            "NULL",
        ),
    )

    now = ":now"
    lease_until = ":now + :lease"
    greatest = "max"
    # Left to itself the planner picks jobs_status (status, seq) and sorts every pending row by
    # priority, O(pending) per claim (2 ms at 5,000 pending); the partial index walks in claim
    # order and stops at the first match (~20 us).
    claim_order_hint = " INDEXED BY jobs_claim_order"
    unlimited = -1
    # SQLite's default limit on variables in one statement is 32766 (999 before 3.32).
    max_list_length = 500
    # One writer at a time, and a rowid is the largest one plus one.
    history_ids_commit_in_order = True

    def json_float(self, column: str) -> str:
        # SQLite's JSON writes a float with 15 significant digits (a time to 10 us): 17 read
        # back as the same float.
        return f"json(printf('%!.17g', {column}))"

    def age(self, column: str) -> str:
        return f":now - {column}"

    def retry_at(self, attempts: str, backoff: Backoff) -> str:
        return f":now + smc_backoff({attempts})"

    def in_list(self, column: str, name: str, count: int) -> str:
        return f"{column} IN ({', '.join(':' + each for each in _list_names(name, count))})"

    def bind_list(self, params: dict[str, Any], name: str, values: Sequence[Any]) -> None:
        params.update(zip(_list_names(name, len(values)), values, strict=True))

    def claim_job(self, filters: str, statements: SqlStatements) -> str:
        # One statement: the UPDATE takes the write lock before its subquery reads, so no two
        # processes can pick the same row.
        return f"""UPDATE jobs SET status = 'processing', claimed_by = :worker,
                    claim_token = :token, attempts = attempts + 1, started_at = :now,
                    lease_expires_at = {self.lease_until}, finished_at = NULL
                  WHERE seq = (SELECT seq FROM jobs{self.claim_order_hint}
                               WHERE status = 'pending' AND run_after <= :now{filters}
                               ORDER BY priority, seq LIMIT 1)
                    AND status = 'pending'
                  RETURNING {statements.job_columns_text}"""

    def claim_events(self, statements: SqlStatements) -> str:
        return f"""UPDATE machine_events SET status = 'processing', claim_token = :token,
                      lease_expires_at = {self.lease_until}, attempts = attempts + 1
                    WHERE id IN (SELECT id FROM machine_events WHERE {self.open_events()}
                                 ORDER BY id LIMIT :limit)
                    RETURNING {statements.event_columns_text}"""

    def reap(self, statements: SqlStatements, backoff: Backoff) -> str:
        return f"""UPDATE jobs SET {statements.reap_assignments(backoff, "")}
                    WHERE status = 'processing' AND lease_expires_at < :now
                    RETURNING {REAPED_COLUMNS}"""

    def insert_job(self, insert: str, statements: SqlStatements) -> str:
        return f"{insert} RETURNING {statements.job_columns_text}"

    def with_notify(self, statement: str) -> str:
        return statement  # the doorbell rings after the commit instead


SQLITE = SqliteDialect()


#: Connections inherited through fork(): never closed in the child, because closing would touch
#: the parent's WAL and locks; kept referenced so garbage collection does not close them either.
_INHERITED_CONNECTIONS: list[sqlite3.Connection] = []


def _null(value: None) -> None:
    return value


# CPython's sqlite3 binds int, float and str directly but sends None through its adapter
# look-up, which without a registered adapter tries two attributes and builds and clears two
# AttributeErrors for each NULL bound: about 1,800 instructions each, a dozen times a job in a
# worker with history on (most history columns are NULL). An identity adapter ends the look-up
# at its first step. It is process-wide, and changes no value: None is still bound as NULL
# (docs/history.md, "Cost").
sqlite3.register_adapter(type(None), _null)


def _roll_back(connection: sqlite3.Connection) -> None:
    """End the transaction ``connection`` is in, if any (an error while doing so changes
    nothing: the connection is left as SQLite left it)."""
    if connection.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")


class _Busy(StoreError):
    """SQLITE_BUSY: the statement was rolled back whole, so running it again is safe."""


def _is_busy(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


_Result = TypeVar("_Result")


def _describe(error: sqlite3.Error) -> str:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None and code & 0xFF == sqlite3.SQLITE_READONLY:
        return "database is read-only"
    if code is not None and code & 0xFF == sqlite3.SQLITE_FULL:
        return "database or disk is full"
    return str(error).splitlines()[0] if str(error) else type(error).__name__


class SqliteBackend(Backend):
    """One SQLite file: the connection of this process (reopened after a fork), its settings
    and schema, errors as :class:`StoreError`, ``SQLITE_BUSY`` retried, doorbell wake-ups.

    ``backoff`` is registered on each connection as ``smc_backoff(attempts)``, the delay the
    dialect's retry statements add to ``:now``. See :class:`SqliteStore` for the options."""

    dialect = SQLITE
    unique_violation = sqlite3.IntegrityError

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        backoff: Backoff,
        read_only: bool = False,
        create: bool = True,
        synchronous: str = "NORMAL",
        busy_timeout: float = 10.0,
        checkpoint_every: int | None = CHECKPOINT_EVERY,
        max_pages: int | None = None,
    ) -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous}")
        self.path = Path(path).absolute()
        self.read_only = read_only
        #: False: a file with no smc schema is refused (NoDatabaseError), not given one.
        self.create = create
        self.synchronous = synchronous.upper()
        self.busy_timeout = busy_timeout
        if checkpoint_every is not None and (
            isinstance(checkpoint_every, bool) or int(checkpoint_every) < 1
        ):
            raise ValueError(f"checkpoint_every must be positive or None, not {checkpoint_every!r}")
        self.checkpoint_every = None if checkpoint_every is None else int(checkpoint_every)
        #: Statements since this store last tried to checkpoint (see ``checkpoint_every``).
        self._statements = 0
        if max_pages is not None and (isinstance(max_pages, bool) or int(max_pages) < 1):
            raise ValueError(f"max_pages must be a positive number of pages, not {max_pages!r}")
        self.max_pages = None if max_pages is None else int(max_pages)
        self._backoff = backoff
        self._doorbell_dir = default_socket_dir(self.path)
        self.socket_dir = self._doorbell_dir
        self._doorbell = Doorbell(self._doorbell_dir)
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None = None
        #: The connection that holds the write lock while :attr:`_connection` checkpoints,
        #: and the descriptor of the checkpoint lock file; both opened by the first checkpoint.
        self._guard: sqlite3.Connection | None = None
        self._gate: int | None = None
        #: When this process last checkpointed, if it has no lock file to say so (monotonic).
        self._checkpointed_at = -math.inf
        #: A cursor of that connection kept for :meth:`run_after_rows` (``execute`` on the
        #: connection makes and drops one per call).
        self._cursor: sqlite3.Cursor | None = None
        #: Run on each connection once open (:meth:`on_each_connection`).
        self._session_statements: tuple[str, ...] = ()
        #: (device, inode) of the file when it was opened: see :meth:`replaced`.
        self._identity: tuple[int, int] | None = None
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
            if (
                not self.create
                and not connection.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
                ).fetchone()
            ):
                # Before anything is written (WAL mode is kept in the file): a command that
                # reads (smc status) given an empty file, or another program's database, wrote
                # the smc tables into it.
                connection.close()
                raise NoDatabaseError(f"cannot open {self.path}: not an smc database")
            if not self.read_only:
                self._use_wal(connection)
                connection.execute(f"PRAGMA synchronous = {self.synchronous}")
                # Never a checkpoint at commit: SQLite's runs without the write lock (above).
                connection.execute("PRAGMA wal_autocheckpoint = 0")
                if self.max_pages is not None:  # never below the current size (SQLite's rule)
                    connection.execute(f"PRAGMA max_page_count = {self.max_pages}").fetchall()
            connection.create_function("smc_backoff", 1, self._backoff.delay, deterministic=False)
            connection.create_function("smc_excerpt", 1, excerpt, deterministic=True)
            self._ensure_schema(connection)
            for statement in self._session_statements:
                connection.execute(statement)
        except sqlite3.Error as error:
            connection.close()
            raise StoreError(f"cannot open {self.path}: {_describe(error)}") from None
        self._connection = connection
        self._pid = os.getpid()
        self._identity = self._file_identity()
        return connection

    def on_each_connection(self, statements: Sequence[str]) -> None:
        self._session_statements = tuple(statements)
        with self._using("prepare") as connection:
            for statement in self._session_statements:
                connection.execute(statement)

    def _file_identity(self) -> tuple[int, int] | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return (info.st_dev, info.st_ino)

    def replaced(self) -> str | None:
        opened = self._identity
        if opened is None:
            return None
        now = self._file_identity()
        if now is None:
            if not os.path.lexists(self.path):
                return f"the database file {self.path} was deleted"
            return None  # unreadable for a moment (permissions): not a replacement
        if now != opened:
            return f"the database file {self.path} was replaced by another file"
        return None

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
                raise StoreError(
                    f"cannot open {self.path} read-only: schema version {version_row[0]} needs "
                    f"upgrading to {SCHEMA_VERSION}, which any smc command that writes does"
                )
        if self.read_only:
            raise StoreError(f"cannot open {self.path}: not an smc database (no schema)")
        # IMMEDIATE: several processes may open a fresh (or old) file at once; one creates (or
        # upgrades) the schema, and the others find the version current once they get the lock.
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                connection.execute(statement)
            version = connection.execute("SELECT max(version) FROM schema_version").fetchone()[0]
            if version is None:
                connection.execute(
                    "INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,)
                )
            elif version < SCHEMA_VERSION:
                if version < 2:
                    _upgrade_from_1(connection)
                _upgrade_from_2(connection)
                connection.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def _conn(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            # Forked: the inherited connection belongs to the parent. Open our own.
            if self._connection is not None:
                _INHERITED_CONNECTIONS.append(self._connection)
            if self._guard is not None:
                _INHERITED_CONNECTIONS.append(self._guard)
            self._connection = self._guard = None
            # The descriptor shares the parent's open file, and with it the parent's flock.
            self._gate = None
            self._lock = threading.RLock()
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
                _roll_back(connection)
                raise self._refused(action, error) from None

    def _refused(self, action: str, error: sqlite3.Error) -> StoreError:
        """``error`` as one line: :class:`_Busy` (safe to run again) for a BUSY answer."""
        error_type = _Busy if _is_busy(error) else StoreError
        return error_type(f"cannot {action} {self.path}: {_describe(error)}")

    def run(
        self,
        action: str,
        work: Callable[[Connection], _Result],
        *,
        transaction: bool = False,
    ) -> _Result:
        """``work`` on the connection; run again when SQLite answers BUSY, until
        ``busy_timeout`` is used up.

        A BUSY answer rolls the statement (or the transaction) back whole, so running it again
        is safe. The busy handler already waits, but some BUSY answers skip it (e.g. a WAL
        snapshot that went stale while waiting, or a checkpoint holding a lock), and writers are
        not served in order, so a worker can lose the race several times in a row under
        contention. These are real waits on another process's lock: the host's clocks, never
        the store's (a simulated clock would never reach the deadline)."""
        result = self._run_until(time.monotonic() + self.busy_timeout, action, work, transaction)
        self._counted()
        return result

    def _counted(self) -> None:
        """Count a statement; every ``checkpoint_every`` of them, try to checkpoint (a failure
        only leaves the log longer: the statement itself succeeded)."""
        if self.checkpoint_every is None:
            return
        self._statements += 1
        if self._statements >= self.checkpoint_every:
            self._statements = 0
            with contextlib.suppress(StoreError):
                self.checkpoint(gap=CHECKPOINT_STALE)

    def _run_until(
        self,
        deadline: float,
        action: str,
        work: Callable[[Connection], _Result],
        transaction: bool,
    ) -> _Result:
        pause = 0.001
        while True:
            try:
                with self._using(action) as connection:
                    if not transaction:
                        return work(connection)
                    # IMMEDIATE: the write lock first, so no read-then-upgrade BUSY midway.
                    connection.execute("BEGIN IMMEDIATE")
                    try:
                        result = work(connection)
                        connection.execute("COMMIT")
                    except BaseException:
                        _roll_back(connection)
                        raise
                    return result
            except _Busy:
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause * (0.5 + random.random()))
                pause = min(pause * 2, 0.05)

    def run_after_rows(
        self,
        action: str,
        insert: str,
        rows: Sequence[Any],
        work: Callable[[Connection], _Result],
    ) -> _Result:
        # The staged rows before the write here: a claim's or a completion's TEMP trigger
        # inserts its own row during the write, and ids keep the order things happened in
        # (SQLite has one writer at a time, so the order of the tables cannot deadlock).
        # The worker's path for every claim and completion with history on (a transition
        # waits to ride each): the transaction inline, without the general path's context
        # manager and closures, on a kept cursor (41,000 instructions a job, measured with
        # cachegrind: docs/history.md, "Cost"). When SQLite refuses it, it was rolled back
        # whole, and the general path runs it again: BUSY retried until the same deadline,
        # errors reported.
        started = time.monotonic()
        connection = self._connection
        if connection is not None and self._pid == os.getpid():
            with self._lock:
                cursor = self._cursor
                if cursor is None or cursor.connection is not connection:
                    cursor = self._cursor = connection.cursor()
                try:
                    cursor.execute("BEGIN IMMEDIATE")
                    cursor.executemany(insert, rows)
                    result = work(connection)
                    cursor.execute("COMMIT")
                except BaseException as error:
                    _roll_back(connection)
                    if not isinstance(error, sqlite3.Error):
                        raise
                    # A BUSY answer after the busy handler's whole wait, or any other error:
                    # running it again would only wait or fail again.
                    if not _is_busy(error) or time.monotonic() >= started + self.busy_timeout:
                        raise self._refused(action, error) from None
                else:
                    self._counted()
                    return result

        def recorded(connection: Connection) -> _Result:
            cast(sqlite3.Connection, connection).executemany(insert, rows)
            return work(connection)

        result = self._run_until(started + self.busy_timeout, action, recorded, True)
        self._counted()
        return result

    def checkpoint(self, gap: float = CHECKPOINT_GAP) -> bool:
        """Copy the write-ahead log into the database file, holding the write lock meanwhile
        (the WAL-reset bug, above), unless a checkpoint of this database ran less than ``gap``
        seconds ago, another is running, or the write lock stays taken for
        :data:`CHECKPOINT_LOCK_WAIT`. True when it ran. Writers wait for it (a checkpoint
        ``fsync``s twice, 1-3 ms here), which is why a worker runs it from its background
        thread, off the path of its claims and events."""
        if self.read_only:
            return False
        gap = max(gap, CHECKPOINT_GAP)
        with self._lock:
            try:
                gate = self._checkpoint_gate()
            except StoreError:
                # No doorbell directory ($SMC_SOCKET_DIR unusable; wake-ups say so): the log
                # must still be copied, so this process spaces its own checkpoints instead.
                if time.monotonic() - self._checkpointed_at < gap:
                    return False
                ran = self._checkpoint_holding_the_write_lock()
                if ran:
                    self._checkpointed_at = time.monotonic()
                return ran
            try:
                fcntl.flock(gate, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # another store of this database is checkpointing
            try:
                # A clock set back leaves the mtime ahead: a negative age is no reason to wait.
                if 0.0 <= time.time() - os.fstat(gate).st_mtime < gap:
                    return False
                ran = self._checkpoint_holding_the_write_lock()
                if ran:
                    os.utime(gate)
                return ran
            finally:
                fcntl.flock(gate, fcntl.LOCK_UN)

    def _checkpoint_holding_the_write_lock(self) -> bool:
        """``PRAGMA wal_checkpoint(PASSIVE)`` while a second connection holds the write lock;
        False when writers kept it for :data:`CHECKPOINT_LOCK_WAIT`."""
        self._sync_log()
        with self._using("checkpoint") as connection:
            guard = self._guard_connection()
            try:
                guard.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                if _is_busy(error):
                    return False  # the next attempt
                raise
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                guard.execute("ROLLBACK")
        return True

    def _sync_log(self) -> None:
        """``fsync`` the write-ahead log before the checkpoint takes the write lock: its own
        first ``fsync`` then has only the last few frames to write, so writers wait for less
        (SQLite locks the database file and ``-shm``, never ``-wal``, so a descriptor of it
        opened and closed here cannot drop a lock of this process)."""
        try:
            log = os.open(f"{self.path}-wal", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        except OSError as error:
            raise StoreError(f"cannot open {self.path}-wal: {error.strerror}") from None
        try:
            os.fsync(log)
        except OSError as error:
            raise StoreError(f"cannot sync {self.path}-wal: {error.strerror}") from None
        finally:
            os.close(log)

    def _checkpoint_gate(self) -> int:
        """The open checkpoint lock file (its flock: one checkpoint at a time; its mtime: when
        the last one ran), created in the database's doorbell directory."""
        self._conn()  # after a fork, forget the parent's descriptor first
        if self._gate is None:
            ensure_socket_dir(self._doorbell_dir)
            path = self._doorbell_dir / CHECKPOINT_LOCK_FILE
            try:
                try:
                    gate = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                    os.utime(gate, (0, 0))  # new: no checkpoint ran yet
                except FileExistsError:
                    gate = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except OSError as error:
                raise StoreError(f"cannot open {path}: {error.strerror}") from None
            self._gate = gate
        return self._gate

    def _guard_connection(self) -> sqlite3.Connection:
        if self._guard is None:
            self._guard = sqlite3.connect(
                f"file:{quote(str(self.path))}?mode=rw",
                uri=True,
                isolation_level=None,
                check_same_thread=False,  # used under self._lock only
                timeout=CHECKPOINT_LOCK_WAIT,
            )
            self._guard.execute(f"PRAGMA busy_timeout = {int(CHECKPOINT_LOCK_WAIT * 1000)}")
            self._guard.execute("PRAGMA wal_autocheckpoint = 0")
        return self._guard

    def close(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                for connection in (self._guard, self._connection):
                    if connection is not None:
                        connection.close()
                if self._gate is not None:
                    os.close(self._gate)
            self._connection = self._guard = None
            self._gate = None
            self._doorbell.close()

    def execute_many(self, connection: Connection, sql: str, rows: Sequence[Any]) -> None:
        cast(sqlite3.Connection, connection).executemany(sql, rows)

    # --- wake-ups ---

    def ring(self, channel: str) -> None:
        self._doorbell.ring(channel)

    def notify(self, channel: str) -> None:
        self._doorbell.ring(channel)

    def open_waker(self, channels: Sequence[str]) -> Waker:
        return DoorbellWaker(self._doorbell_dir, channels)


class SqliteStore(SqlStore):
    """The store in one SQLite file. ``read_only`` opens it with ``mode=ro`` (writes then raise
    :class:`StoreError`); ``synchronous`` may be raised to ``FULL`` to survive power loss.
    ``checkpoint_every`` (statements; None: never) sets how often the store tries to
    checkpoint the write-ahead log itself (:meth:`SqliteBackend.checkpoint`: under the write
    lock, at most one every :data:`CHECKPOINT_GAP` per database); a worker's loop raises it
    and its background thread calls :meth:`checkpoint` instead. ``max_pages`` caps the file's
    size in pages (``PRAGMA max_page_count``) for this connection: writes that would grow it
    fail as on a full disk (the URL form ``sqlite:///path?max_pages=N`` is for failure drills).
    ``clock`` stamps every row and times the reaper (see ``sql.SqlStore``)."""

    backend: SqliteBackend

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
        checkpoint_every: int | None = CHECKPOINT_EVERY,
        max_pages: int | None = None,
        clock: Clock = SYSTEM_CLOCK,
        history: bool = True,
        create: bool = True,
    ) -> None:
        if not create and not os.path.exists(path):
            directory = Path(path).absolute().parent
            if not directory.is_dir():
                raise NoDatabaseError(
                    f"cannot open {path}: directory {directory} does not exist", can_appear=False
                )
            raise NoDatabaseError(f"cannot open {path}: no database there")
        backoff = backoff or Backoff()
        backend = SqliteBackend(
            path,
            backoff=backoff,
            read_only=read_only,
            create=create,
            synchronous=synchronous,
            busy_timeout=busy_timeout,
            checkpoint_every=checkpoint_every,
            max_pages=max_pages,
        )
        super().__init__(
            backend,
            backoff=backoff,
            reap_interval=reap_interval,
            machine_stale_after=machine_stale_after,
            clock=clock,
            history=history,
        )

    @property
    def path(self) -> Path:
        return self.backend.path

    @property
    def read_only(self) -> bool:
        return self.backend.read_only

    @property
    def max_pages(self) -> int | None:
        return self.backend.max_pages

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection of this process (for diagnostics and PRAGMAs)."""
        return self.backend.connection
