"""The PostgreSQL backend: for workers on more than one host.

Times come from the database (``now()``), never from the hosts, whose clocks may differ. The
connection is in autocommit mode; multi-statement writes use an explicit transaction. Claims use
a ``FOR UPDATE SKIP LOCKED`` CTE so concurrent workers never wait on, or double-claim, a row.
Every table lives in one schema (``public`` unless the URL says ``?schema=name``), so several
queues can share a database. psycopg is imported lazily: the SQLite path does not need it.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from smc.runtime.store.base import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MACHINE_STALE_AFTER,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    DEFAULT_REAP_INTERVAL,
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
    PostgresWaker,
    Waker,
    first_line,
    machine_channel,
    postgres_channel_name,
)

SCHEMA_VERSION = 1
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)",
    """CREATE TABLE IF NOT EXISTS jobs (
        seq bigserial NOT NULL UNIQUE,
        id text PRIMARY KEY,
        job_type text NOT NULL,
        machine_type text,
        data jsonb NOT NULL,
        priority integer NOT NULL DEFAULT 5,
        status text NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending','processing','completed','failed','cancelled')),
        attempts integer NOT NULL DEFAULT 0,
        max_attempts integer NOT NULL DEFAULT 5,
        run_after timestamptz NOT NULL DEFAULT now(),
        claimed_by text,
        claim_token text,
        lease_expires_at timestamptz,
        dedupe_key text,
        last_error text,
        result jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz,
        finished_at timestamptz
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_claim_order ON jobs (priority, seq) WHERE status = 'pending'",
    "CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (lease_expires_at) WHERE status = 'processing'",
    """CREATE UNIQUE INDEX IF NOT EXISTS jobs_dedupe_key ON jobs (dedupe_key)
        WHERE dedupe_key IS NOT NULL AND status IN ('pending', 'processing')""",
    "CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, seq)",
    """CREATE TABLE IF NOT EXISTS machine_events (
        id bigserial PRIMARY KEY,
        target_machine text NOT NULL,
        source_machine text,
        event_type text NOT NULL,
        payload jsonb NOT NULL,
        job_id text,
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','processing','done')),
        attempts integer NOT NULL DEFAULT 0,
        claim_token text,
        lease_expires_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        processed_at timestamptz
    )""",
    """CREATE INDEX IF NOT EXISTS machine_events_open ON machine_events (target_machine, id)
        WHERE status IN ('pending', 'processing')""",
    """CREATE TABLE IF NOT EXISTS machine_state (
        machine_name text PRIMARY KEY,
        state text,
        pid integer,
        host text,
        config_path text,
        status text NOT NULL DEFAULT 'running' CHECK (status IN ('running','stopped')),
        started_at timestamptz,
        heartbeat_at timestamptz,
        updated_at timestamptz
    )""",
)


def _epoch(column: str) -> str:
    return f"extract(epoch from {column})::float8"


def _job_columns(prefix: str = "") -> str:
    p = prefix
    return ", ".join(
        (
            f"{p}id",
            f"{p}job_type",
            f"{p}machine_type",
            f"{p}data::text",
            f"{p}priority",
            f"{p}status",
            f"{p}attempts",
            f"{p}max_attempts",
            _epoch(f"{p}run_after"),
            f"{p}claimed_by",
            f"{p}claim_token",
            _epoch(f"{p}lease_expires_at"),
            f"{p}dedupe_key",
            f"{p}last_error",
            f"{p}result::text",
            _epoch(f"{p}created_at"),
            _epoch(f"{p}started_at"),
            _epoch(f"{p}finished_at"),
        )
    )


def _event_columns(prefix: str = "") -> str:
    p = prefix
    return ", ".join(
        (
            f"{p}id",
            f"{p}target_machine",
            f"{p}source_machine",
            f"{p}event_type",
            f"{p}payload::text",
            f"{p}job_id",
            f"{p}status",
            f"{p}attempts",
            f"{p}claim_token",
            _epoch(f"{p}lease_expires_at"),
            _epoch(f"{p}created_at"),
            _epoch(f"{p}processed_at"),
        )
    )


_MACHINE_COLUMNS = (
    "machine_name, state, pid, host, config_path, status, "
    f"{_epoch('started_at')}, {_epoch('heartbeat_at')}, {_epoch('updated_at')}, "
    "extract(epoch from now() - heartbeat_at)::float8"
)

#: Connections inherited through fork(): closing one in the child would send a Terminate on the
#: parent's socket, so they are kept referenced and never closed here.
_INHERITED_CONNECTIONS: list[Any] = []


def split_schema(url: str) -> tuple[str, str | None]:
    """Remove smc's own ``schema`` query parameter from a PostgreSQL URL (libpq rejects it)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = None
    kept = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            kept.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(kept))), schema


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresStore(Store):
    """The store in a PostgreSQL database (``postgresql://…[?schema=name]``)."""

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        connect_timeout: float = 10.0,
        backoff: Backoff | None = None,
        reap_interval: float = DEFAULT_REAP_INTERVAL,
        machine_stale_after: float = DEFAULT_MACHINE_STALE_AFTER,
    ) -> None:
        super().__init__(
            backoff=backoff, reap_interval=reap_interval, machine_stale_after=machine_stale_after
        )
        self.url, url_schema = split_schema(url)
        self.schema = schema or url_schema or "public"
        if not _SCHEMA_NAME.fullmatch(self.schema):
            raise ValueError(f"invalid PostgreSQL schema name {self.schema!r}")
        self.connect_timeout = connect_timeout
        self._lock = threading.RLock()
        self._connection: Any = None
        self._pid = os.getpid()
        with self._lock:
            self._conn()  # fail now, with a clear message, rather than at first use

    @property
    def location(self) -> str:
        where = _redact(self.url)
        return where if self.schema == "public" else f"{where} (schema {self.schema})"

    @property
    def connection(self) -> Any:
        """The underlying psycopg connection of this process (for diagnostics and settings)."""
        with self._lock:
            return self._conn()

    # --- connection handling ---

    def _connect(self) -> Any:
        import psycopg
        from psycopg import sql

        try:
            connection = psycopg.connect(
                self.url, autocommit=True, connect_timeout=int(self.connect_timeout)
            )
        except psycopg.Error as error:
            raise StoreError(f"cannot connect to {self.location}: {first_line(error)}") from None
        schema = sql.Identifier(self.schema)
        try:
            with connection.transaction():
                # Serialise schema creation: concurrent CREATE … IF NOT EXISTS can still collide.
                connection.execute("SELECT pg_advisory_xact_lock(hashtext('smc-store-schema'))")
                connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
                connection.execute(sql.SQL("SET LOCAL search_path TO {}").format(schema))
                for statement in _DDL:
                    connection.execute(statement)
                row = connection.execute("SELECT max(version) FROM schema_version").fetchone()
                version = None if row is None else row[0]
                if version is None:
                    connection.execute(
                        "INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION,)
                    )
                elif version > SCHEMA_VERSION:
                    raise StoreError(
                        f"cannot open {self.location}: schema version {version} is newer than "
                        f"this smc supports ({SCHEMA_VERSION})"
                    )
            connection.execute(sql.SQL("SET search_path TO {}").format(schema))
        except psycopg.Error as error:
            connection.close()
            raise StoreError(f"cannot open {self.location}: {first_line(error)}") from None
        except StoreError:
            connection.close()
            raise
        self._connection = connection
        self._pid = os.getpid()
        return connection

    def _conn(self) -> Any:
        if self._pid != os.getpid():
            if self._connection is not None:
                _INHERITED_CONNECTIONS.append(self._connection)
            self._connection = None
            self._lock = threading.RLock()
            self._last_reap = float("-inf")
        if self._connection is None or self._connection.closed or self._connection.broken:
            return self._connect()
        return self._connection

    @contextlib.contextmanager
    def _using(self, action: str) -> Iterator[Any]:
        """The connection, with any database error turned into a one-line StoreError."""
        import psycopg

        with self._lock:
            connection = self._conn()
            try:
                yield connection
            except psycopg.Error as error:
                if connection.closed or connection.broken:
                    self._connection = None  # reconnect on the next call
                raise StoreError(f"cannot {action} {self.location}: {first_line(error)}") from None

    def close(self) -> None:
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection = None

    def _channel(self, channel: str) -> str:
        return postgres_channel_name(self.schema, channel)

    def _backoff_sql(self, attempts: str) -> str:
        b = self.backoff
        return (
            f"least({float(b.cap)}::float8, {float(b.base)}::float8 * "
            f"power(2::float8, least(greatest({attempts}, 0), 60))) "
            f"* (1 + {float(b.jitter)}::float8 * (2 * random() - 1))"
        )

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
        import psycopg

        data_json = encode_json({} if data is None else data, "job data")
        new_id = job_id if job_id is not None else uuid.uuid4().hex
        params = {
            "id": new_id,
            "job_type": job_type,
            "machine_type": machine_type,
            "data": data_json,
            "priority": priority,
            "max_attempts": max_attempts,
            "run_after": run_after,
            "dedupe_key": dedupe_key,
            "channel": self._channel(JOBS_CHANNEL),
        }
        # NOTIFY in the same statement: delivered at commit, so a woken worker sees the row.
        insert = f"""WITH inserted AS (
                INSERT INTO jobs (id, job_type, machine_type, data, priority, max_attempts,
                                  run_after, dedupe_key)
                VALUES (%(id)s, %(job_type)s, %(machine_type)s, %(data)s::jsonb, %(priority)s,
                        %(max_attempts)s, coalesce(to_timestamp(%(run_after)s::float8), now()),
                        %(dedupe_key)s)
                ON CONFLICT (dedupe_key)
                    WHERE dedupe_key IS NOT NULL AND status IN ('pending', 'processing')
                    DO NOTHING
                RETURNING {_job_columns()})
            SELECT *, pg_notify(%(channel)s, '') FROM inserted"""
        for _ in range(10):
            with self._using("write to") as connection:
                try:
                    row = connection.execute(insert, params).fetchone()
                except psycopg.errors.UniqueViolation:
                    raise DuplicateJobError(
                        f"cannot add job to {self.location}: a job with id {new_id!r} "
                        "already exists"
                    ) from None
                if row is not None:
                    return job_from_row(row[:-1])
                existing = connection.execute(
                    f"SELECT {_job_columns()} FROM jobs WHERE dedupe_key = %s "
                    "AND status IN ('pending', 'processing')",
                    (dedupe_key,),
                ).fetchone()
                if existing is not None:
                    return job_from_row(existing)
            # The holder of the dedupe key finished between the two statements: insert again.
        raise StoreError(
            f"cannot add job to {self.location}: dedupe key {dedupe_key!r} keeps " "changing hands"
        )

    def _claim_next(
        self,
        worker: str,
        job_types: Sequence[str] | None,
        machine_type: str | None,
        lease_seconds: float,
    ) -> Job | None:
        filters = ""
        params: dict[str, Any] = {
            "worker": worker,
            "token": uuid.uuid4().hex,
            "lease": float(lease_seconds),
        }
        if job_types is not None:
            if not job_types:
                return None
            filters += " AND job_type = ANY(%(job_types)s)"
            params["job_types"] = list(job_types)
        if machine_type is not None:
            filters += " AND (machine_type IS NULL OR machine_type = %(machine_type)s)"
            params["machine_type"] = machine_type
        sql = f"""WITH picked AS MATERIALIZED (
                    SELECT seq FROM jobs
                     WHERE status = 'pending' AND run_after <= now(){filters}
                     ORDER BY priority, seq LIMIT 1
                     FOR UPDATE SKIP LOCKED)
                  UPDATE jobs j SET status = 'processing', claimed_by = %(worker)s,
                         claim_token = %(token)s, attempts = j.attempts + 1, started_at = now(),
                         lease_expires_at = now() + make_interval(secs => %(lease)s::float8),
                         finished_at = NULL
                    FROM picked WHERE j.seq = picked.seq
                  RETURNING {_job_columns("j.")}"""
        with self._using("claim a job in") as connection:
            row = connection.execute(sql, params).fetchone()
        return None if row is None else job_from_row(row)

    def _claim_by_id(self, job_id: str, worker: str, lease_seconds: float) -> Job | None:
        with self._using("claim a job in") as connection:
            row = connection.execute(
                f"""UPDATE jobs SET status = 'processing', claimed_by = %s, claim_token = %s,
                      attempts = attempts + 1, started_at = now(),
                      lease_expires_at = now() + make_interval(secs => %s::float8),
                      finished_at = NULL
                    WHERE id = %s AND status = 'pending' AND run_after <= now()
                    RETURNING {_job_columns()}""",
                (worker, uuid.uuid4().hex, float(lease_seconds), job_id),
            ).fetchone()
        return None if row is None else job_from_row(row)

    def heartbeat(self, job_id: str, claim_token: str, lease_seconds: float) -> bool:
        with self._using("write to") as connection:
            cursor = connection.execute(
                "UPDATE jobs SET lease_expires_at = now() + make_interval(secs => %s::float8) "
                "WHERE id = %s AND claim_token = %s AND status = 'processing'",
                (float(lease_seconds), job_id, claim_token),
            )
            return bool(cursor.rowcount == 1)

    def _fence(self, claim_token: str | None) -> tuple[str, tuple[Any, ...]]:
        if claim_token is None:
            return "", ()
        return " AND claim_token = %s", (claim_token,)

    def complete_job(self, job_id: str, claim_token: str | None = None, result: Any = None) -> bool:
        result_json = None if result is None else encode_json(result, "job result")
        fence, fence_params = self._fence(claim_token)
        with self._using("write to") as connection:
            cursor = connection.execute(
                "UPDATE jobs SET status = 'completed', result = %s::jsonb, finished_at = now(), "
                "lease_expires_at = NULL WHERE id = %s AND status = 'processing'" + fence,
                (result_json, job_id, *fence_params),
            )
            return bool(cursor.rowcount == 1)

    def fail_job(
        self,
        job_id: str,
        reason: str,
        claim_token: str | None = None,
        retry: bool = False,
    ) -> bool:
        again = "(%(retry)s AND attempts < max_attempts)"
        params: dict[str, Any] = {"retry": retry, "reason": reason, "id": job_id}
        fence = ""
        if claim_token is not None:
            fence = " AND claim_token = %(token)s"
            params["token"] = claim_token
        with self._using("write to") as connection:
            cursor = connection.execute(
                f"""UPDATE jobs SET
                      status = CASE WHEN {again} THEN 'pending' ELSE 'failed' END,
                      run_after = CASE WHEN {again}
                          THEN now() + make_interval(secs => {self._backoff_sql("attempts")})
                          ELSE run_after END,
                      finished_at = CASE WHEN {again} THEN NULL ELSE now() END,
                      last_error = %(reason)s, claim_token = NULL, lease_expires_at = NULL
                    WHERE id = %(id)s AND status = 'processing'{fence}""",
                params,
            )
            return bool(cursor.rowcount == 1)

    def release_job(self, job_id: str, claim_token: str) -> bool:
        with self._using("write to") as connection:
            cursor = connection.execute(
                """UPDATE jobs SET status = 'pending', attempts = greatest(attempts - 1, 0),
                     run_after = now(), claim_token = NULL, lease_expires_at = NULL
                   WHERE id = %s AND claim_token = %s AND status = 'processing'""",
                (job_id, claim_token),
            )
            return bool(cursor.rowcount == 1)

    def reap_expired(self) -> int:
        used_up = "j.attempts >= j.max_attempts"
        with self._using("reap expired leases in") as connection:
            cursor = connection.execute(f"""WITH expired AS MATERIALIZED (
                      SELECT seq FROM jobs
                       WHERE status = 'processing' AND lease_expires_at < now()
                       FOR UPDATE SKIP LOCKED)
                    UPDATE jobs j SET
                      status = CASE WHEN {used_up} THEN 'failed' ELSE 'pending' END,
                      run_after = CASE WHEN {used_up} THEN j.run_after
                          ELSE now() + make_interval(secs => {self._backoff_sql("j.attempts")})
                          END,
                      finished_at = CASE WHEN {used_up} THEN now() ELSE NULL END,
                      last_error = 'lease expired (claimed by ' || coalesce(j.claimed_by, '?')
                          || ', attempt ' || j.attempts || ' of ' || j.max_attempts || ')',
                      claim_token = NULL, lease_expires_at = NULL
                    FROM expired WHERE j.seq = expired.seq""")
            return int(cursor.rowcount)

    def get_job(self, job_id: str) -> Job | None:
        with self._using("read") as connection:
            row = connection.execute(
                f"SELECT {_job_columns()} FROM jobs WHERE id = %s", (job_id,)
            ).fetchone()
        return None if row is None else job_from_row(row)

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[Job]:
        where, params = ("WHERE status = %s", (status,)) if status is not None else ("", ())
        with self._using("read") as connection:
            rows = connection.execute(
                f"SELECT {_job_columns()} FROM jobs {where} ORDER BY seq DESC LIMIT %s",
                (*params, limit),
            ).fetchall()
        return [job_from_row(row) for row in rows]

    def list_pending(
        self,
        job_type: str | None = None,
        machine_type: str | None = None,
        limit: int | None = None,
    ) -> list[Job]:
        sql = f"SELECT {_job_columns()} FROM jobs WHERE status = 'pending' AND run_after <= now()"
        params: list[Any] = []
        if job_type is not None:
            sql += " AND job_type = %s"
            params.append(job_type)
        if machine_type is not None:
            sql += " AND (machine_type IS NULL OR machine_type = %s)"
            params.append(machine_type)
        sql += " ORDER BY priority, seq LIMIT %s"
        params.append(limit)  # LIMIT NULL means no limit
        with self._using("read") as connection:
            rows = connection.execute(sql, params).fetchall()
        return [job_from_row(row) for row in rows]

    def retry_job(self, job_id: str) -> bool:
        import psycopg

        with self._using("write to") as connection:
            try:
                cursor = connection.execute(
                    """WITH retried AS (
                         UPDATE jobs SET status = 'pending', attempts = 0, run_after = now(),
                             claim_token = NULL, lease_expires_at = NULL, finished_at = NULL
                         WHERE id = %s AND status IN ('failed', 'cancelled') RETURNING id)
                       SELECT id, pg_notify(%s, '') FROM retried""",
                    (job_id, self._channel(JOBS_CHANNEL)),
                )
            except psycopg.errors.UniqueViolation:
                raise StoreError(
                    f"cannot retry job {job_id!r} in {self.location}: another pending job holds "
                    "its dedupe key"
                ) from None
            return cursor.fetchone() is not None

    def cancel_job(self, job_id: str) -> bool:
        with self._using("write to") as connection:
            cursor = connection.execute(
                "UPDATE jobs SET status = 'cancelled', finished_at = now() "
                "WHERE id = %s AND status = 'pending'",
                (job_id,),
            )
            return bool(cursor.rowcount == 1)

    def queue_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(JOB_STATUSES, 0)
        with self._using("read") as connection:
            for status, count in connection.execute(
                "SELECT status, count(*) FROM jobs GROUP BY status"
            ).fetchall():
                counts[status] = int(count)
        return counts

    def wait_job_statuses(self, job_ids: Iterable[str]) -> dict[str, str]:
        with self._using("read") as connection:
            rows = connection.execute(
                "SELECT id, status FROM jobs WHERE id = ANY(%s)", (list(job_ids),)
            ).fetchall()
        return {row[0]: row[1] for row in rows}

    # --- events ---

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
            row = connection.execute(
                """WITH inserted AS (
                     INSERT INTO machine_events (target_machine, source_machine, event_type,
                                                 payload, job_id)
                     VALUES (%s, %s, %s, %s::jsonb, %s) RETURNING id)
                   SELECT id, pg_notify(%s, '') FROM inserted""",
                (
                    target,
                    source,
                    event_type,
                    payload_json,
                    job_id,
                    self._channel(machine_channel(target)),
                ),
            ).fetchone()
        return int(row[0])

    def claim_events(
        self, target: str, limit: int = 100, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> list[EventRow]:
        with self._using("claim events in") as connection:
            rows = connection.execute(
                f"""WITH picked AS MATERIALIZED (
                      SELECT id FROM machine_events
                       WHERE target_machine = %s
                         AND (status = 'pending'
                              OR (status = 'processing' AND lease_expires_at < now()))
                       ORDER BY id LIMIT %s
                       FOR UPDATE SKIP LOCKED)
                    UPDATE machine_events e SET status = 'processing', claim_token = %s,
                        lease_expires_at = now() + make_interval(secs => %s::float8),
                        attempts = e.attempts + 1
                      FROM picked WHERE e.id = picked.id
                    RETURNING {_event_columns("e.")}""",
                (target, limit, uuid.uuid4().hex, float(lease_seconds)),
            ).fetchall()
        return sorted((event_from_row(row) for row in rows), key=lambda event: event.id)

    def ack_event(self, event_id: int, claim_token: str) -> bool:
        with self._using("write to") as connection:
            cursor = connection.execute(
                "UPDATE machine_events SET status = 'done', processed_at = now(), "
                "lease_expires_at = NULL "
                "WHERE id = %s AND claim_token = %s AND status = 'processing'",
                (event_id, claim_token),
            )
            return bool(cursor.rowcount == 1)

    def release_events(self, target: str) -> int:
        with self._using("write to") as connection:
            cursor = connection.execute(
                "UPDATE machine_events SET status = 'pending', claim_token = NULL, "
                "lease_expires_at = NULL WHERE target_machine = %s AND status = 'processing'",
                (target,),
            )
            return int(cursor.rowcount)

    def list_events(
        self, target: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[EventRow]:
        sql = f"SELECT {_event_columns()} FROM machine_events WHERE true"
        params: list[Any] = []
        if target is not None:
            sql += " AND target_machine = %s"
            params.append(target)
        if status is not None:
            sql += " AND status = %s"
            params.append(status)
        sql += " ORDER BY id DESC LIMIT %s"
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
        with self._using("write to") as connection:
            connection.execute(
                """INSERT INTO machine_state (machine_name, state, pid, host, config_path, status,
                       started_at, heartbeat_at, updated_at)
                   VALUES (%s, %s, %s, %s, %s, 'running', now(), now(), now())
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
                ),
            )

    @staticmethod
    def _update_machine(connection: Any, name: str, state: str | None) -> bool:
        cursor = connection.execute(
            """UPDATE machine_state SET state = coalesce(%(state)s, state), heartbeat_at = now(),
                 updated_at = CASE WHEN %(state)s::text IS NULL THEN updated_at ELSE now() END
               WHERE machine_name = %(name)s""",
            {"state": state, "name": name},
        )
        return bool(cursor.rowcount == 1)

    def update_machine(self, name: str, state: str | None = None) -> bool:
        with self._using("write to") as connection:
            return self._update_machine(connection, name, state)

    def heartbeat_machine(self, name: str) -> bool:
        return self.update_machine(name, None)

    def stop_machine(self, name: str) -> bool:
        with self._using("write to") as connection:
            cursor = connection.execute(
                "UPDATE machine_state SET status = 'stopped', updated_at = now() "
                "WHERE machine_name = %s",
                (name,),
            )
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
                f"SELECT {_MACHINE_COLUMNS} FROM machine_state WHERE machine_name = %s", (name,)
            ).fetchone()
        return None if row is None else self._machine_from_row(row)

    def list_machines(self) -> list[MachineRow]:
        with self._using("read") as connection:
            rows = connection.execute(
                f"SELECT {_MACHINE_COLUMNS} FROM machine_state ORDER BY machine_name"
            ).fetchall()
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
        ids: list[int] = []
        with self._using("write to") as connection, connection.transaction():
            if not self._update_machine(connection, name, state):
                raise StoreError(
                    f"cannot update machine {name!r} in {self.location}: not registered"
                )
            for target, event_type, payload_json in encoded:
                row = connection.execute(
                    """INSERT INTO machine_events (target_machine, source_machine, event_type,
                                                   payload) VALUES (%s, %s, %s, %s::jsonb)
                       RETURNING id""",
                    (target, source or name, event_type, payload_json),
                ).fetchone()
                ids.append(int(row[0]))
            for target in dict.fromkeys(target for target, _, _ in encoded):
                # Transactional NOTIFY: delivered at commit, dropped on rollback.
                connection.execute(
                    "SELECT pg_notify(%s, '')", (self._channel(machine_channel(target)),)
                )
        return ids

    # --- wake-ups ---

    def open_waker(self, channels: Sequence[str]) -> Waker:
        return PostgresWaker(self.url, self.schema, channels)

    def notify(self, channel: str) -> None:
        with self._using("notify through") as connection:
            connection.execute("SELECT pg_notify(%s, '')", (self._channel(channel),))
