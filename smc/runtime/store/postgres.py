"""The PostgreSQL backend: for workers on more than one host.

Times come from the database (``now()``), never from the hosts, whose clocks may differ. The
connection is in autocommit mode; multi-statement writes use an explicit transaction. Claims use
a ``FOR UPDATE SKIP LOCKED`` CTE so concurrent workers never wait on, or double-claim, a row.
Every table lives in one schema (``public`` unless the URL says ``?schema=name``), so several
queues can share a database. psycopg is imported lazily: the SQLite path does not need it.

The store's clock does not stamp rows here: every statement reads ``now()``. It drives only
the application's own timing (how often ``claim_job`` reaps). A test that needs a lease to run
out cannot advance the server's clock; it ages the rows instead (``tests/support/backends.py``).

The methods and most statements are shared with SQLite (``sql.SqlStore``,
``statements.SqlStatements``); this module has the dialect (the ``SKIP LOCKED`` claim and reap
statements, ``now()``, ``jsonb``, NOTIFY), the connection, the schema, and the translation of
psycopg errors.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import unquote, unquote_plus, urlsplit, urlunsplit

from smc.runtime.clock import SYSTEM_CLOCK, Clock
from smc.runtime.store.backend import Backend, Connection
from smc.runtime.store.base import DEFAULT_MACHINE_STALE_AFTER, DEFAULT_REAP_INTERVAL, Backoff
from smc.runtime.store.errors import NoDatabaseError, StoreError
from smc.runtime.store.pgconnect import connect
from smc.runtime.store.rows import HISTORY_FIELDS
from smc.runtime.store.sql import SqlStore
from smc.runtime.store.statements import (
    REAPED_COLUMNS,
    Dialect,
    SqlStatements,
    pyformat_parameters,
)
from smc.runtime.store.waker import (
    HISTORY_CHANNEL,
    PostgresWaker,
    Waker,
    first_line,
    postgres_channel_name,
)
from smc.runtime.store.workflows import POSTGRES_DDL as WORKFLOW_DDL

_Result = TypeVar("_Result")

SCHEMA_VERSION = 3
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
        finished_at timestamptz,
        trace_id text
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
        status text NOT NULL DEFAULT 'pending'
            CONSTRAINT machine_events_status_check
            CHECK (status IN ('pending','processing','done','dead')),
        attempts integer NOT NULL DEFAULT 0,
        claim_token text,
        lease_expires_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        processed_at timestamptz,
        last_error text,
        trace_id text
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
    # Version 3: the history (docs/history.md); ts is epoch seconds from the recording
    # process, as on SQLite. One index: each is more work for every commit recording history.
    """CREATE TABLE IF NOT EXISTS history (
        id bigserial PRIMARY KEY,
        ts double precision NOT NULL,
        machine text NOT NULL,
        kind text NOT NULL,
        from_state text,
        event text,
        to_state text,
        job_id text,
        attempt integer,
        trace_id text,
        source text,
        excerpt text,
        configuration text
    )""",
    """CREATE INDEX IF NOT EXISTS history_trace ON history (trace_id, id)
        WHERE trace_id IS NOT NULL""",
    # Version 3 also added the workflow tables (smc/runtime/store/workflows.py): new tables only,
    # created on a version-2 database by these same statements.
    *WORKFLOW_DDL,
)


# Version 1 → 2: status 'dead' and last_error (dead-lettered events). Version 1 declared the
# CHECK inline, so PostgreSQL named it machine_events_status_check, the name version 2 gives it.
_UPGRADE_FROM_1 = (
    "ALTER TABLE machine_events ADD COLUMN IF NOT EXISTS last_error text",
    "ALTER TABLE machine_events DROP CONSTRAINT IF EXISTS machine_events_status_check",
    """ALTER TABLE machine_events ADD CONSTRAINT machine_events_status_check
        CHECK (status IN ('pending','processing','done','dead'))""",
)


# Version 2 → 3: trace ids (the history table is created by _DDL).
_UPGRADE_FROM_2 = (
    "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS trace_id text",
    "ALTER TABLE machine_events ADD COLUMN IF NOT EXISTS trace_id text",
)


#: The SQL types of the staged history columns, read from their JSON (text otherwise).
_HISTORY_JSON_TYPES = {"ts": "float8", "attempt": "integer"}


class PostgresDialect(Dialect):
    """Every time comes from the database's ``now()`` (hosts' clocks differ) and is read as
    epoch seconds; JSON is ``jsonb``, read as text; claims lock with ``FOR UPDATE SKIP LOCKED``;
    NOTIFY rides in the inserting statement, so it is delivered exactly at commit."""

    now = "now()"
    positional_parameter = "%s"
    lease_until = "now() + make_interval(secs => :lease::float8)"
    json_cast = "::jsonb"
    text_cast = "::text"
    greatest = "greatest"
    unlimited = None  # LIMIT NULL
    max_list_length = None  # a list is one array parameter
    insert_skips_held_dedupe_key = True  # ON CONFLICT (dedupe_key) … DO NOTHING
    # A transaction around a write is two more round trips (BEGIN, COMMIT) than the write:
    # the history rows ride in the statement (writable CTEs), in autocommit.
    records_in_statement = True

    def recording(self, statement: str, derived: str | None, wake: bool = False) -> str:
        columns = ", ".join(HISTORY_FIELDS[1:])
        # The staged rows are bound as one JSON array of rows (``:h_rows``), not an array per
        # column: psycopg adapts eleven lists element by element, 150 us of the worker's CPU a
        # job; json.dumps is one C call (docs/history.md, "Cost").
        values = ", ".join(
            f"(entry ->> {index})::{_HISTORY_JSON_TYPES.get(name, 'text')}"
            for index, name in enumerate(HISTORY_FIELDS[1:])
        )
        # The staged rows first (they happened before the write), then the write's own: its
        # insert reads the staged insert's count, which makes PostgreSQL run that one first.
        parts = [
            f"s AS ({statement})",
            f"staged AS (INSERT INTO history ({columns}) SELECT {values} "
            "FROM json_array_elements(%(h_rows)s::json) WITH ORDINALITY AS r(entry, ordinal) "
            "ORDER BY ordinal RETURNING 1)",
            "staged_count AS (SELECT count(*) AS n FROM staged)",
        ]
        inserted = "SELECT n FROM staged_count"
        if derived is not None:
            parts.append(
                f"h AS (INSERT INTO history ({columns}) SELECT {derived} "
                "FROM s CROSS JOIN staged_count RETURNING 1)"
            )
            inserted += " UNION ALL SELECT count(*) FROM h"
        parts.append(
            "n AS (SELECT pg_notify(%(h_channel)s, '') FROM "
            f"(SELECT sum(n) AS total FROM ({inserted}) counts) rows "
            "WHERE total > 0 AND %(h_channel)s::text IS NOT NULL)"
        )
        notified = "(SELECT count(*) FROM n)"
        if wake:
            parts.append("wake AS (SELECT pg_notify(%(channel)s, '') FROM s)")
            notified += " + (SELECT count(*) FROM wake)"
        return (
            "WITH " + ", ".join(parts) + " SELECT (SELECT count(*) FROM s), "
            f"{notified}, s.* FROM (SELECT 1) one LEFT JOIN s ON true"
        )

    def epoch(self, column: str) -> str:
        return f"extract(epoch from {column})::float8"

    def json_text(self, column: str) -> str:
        return f"{column}::text"

    def json_object(self, pairs: Sequence[tuple[str, str]]) -> str:
        # As text: psycopg would parse a json value into Python objects.
        return "json_build_object(" + ", ".join(f"{k}, {v}" for k, v in pairs) + ")::text"

    def json_of_text(self, column: str) -> str:
        return f"{column}::json"

    def workflow_run_of(self, column: str) -> str:
        return f"({column} #>> '{{workflow,run_id}}')"

    def epoch_param(self, name: str) -> str:
        return f"to_timestamp(:{name}::float8)"

    def age(self, column: str) -> str:
        return f"extract(epoch from now() - {column})::float8"

    def retry_at(self, attempts: str, backoff: Backoff) -> str:
        b = backoff
        delay = (
            f"least({float(b.cap)}::float8, {float(b.base)}::float8 * "
            f"power(2::float8, least(greatest({attempts}, 0), 60))) "
            f"* (1 + {float(b.jitter)}::float8 * (2 * random() - 1))"
        )
        return f"now() + make_interval(secs => {delay})"

    def in_list(self, column: str, name: str, count: int) -> str:
        return f"{column} = ANY(:{name})"

    def bind_list(self, params: dict[str, Any], name: str, values: Sequence[Any]) -> None:
        params[name] = list(values)

    def claim_job(self, filters: str, statements: SqlStatements) -> str:
        return f"""WITH picked AS MATERIALIZED (
                    SELECT seq FROM jobs
                     WHERE status = 'pending' AND run_after <= now(){filters}
                     ORDER BY priority, seq LIMIT 1
                     FOR UPDATE SKIP LOCKED)
                  UPDATE jobs j SET status = 'processing', claimed_by = :worker,
                         claim_token = :token, attempts = j.attempts + 1, started_at = now(),
                         lease_expires_at = {self.lease_until},
                         finished_at = NULL
                    FROM picked WHERE j.seq = picked.seq
                  RETURNING {statements.job_columns("j.")}"""

    def claim_events(self, statements: SqlStatements) -> str:
        return f"""WITH picked AS MATERIALIZED (
                      SELECT id FROM machine_events WHERE {self.open_events()}
                       ORDER BY id LIMIT :limit
                       FOR UPDATE SKIP LOCKED)
                    UPDATE machine_events e SET status = 'processing', claim_token = :token,
                        lease_expires_at = {self.lease_until},
                        attempts = e.attempts + 1
                      FROM picked WHERE e.id = picked.id
                    RETURNING {statements.event_columns("e.")}"""

    def reap(self, statements: SqlStatements, backoff: Backoff) -> str:
        # SKIP LOCKED: rows a concurrent reaper holds are its to reap.
        return f"""WITH expired AS MATERIALIZED (
                      SELECT seq FROM jobs
                       WHERE status = 'processing' AND lease_expires_at < now()
                       FOR UPDATE SKIP LOCKED)
                    UPDATE jobs j SET {statements.reap_assignments(backoff, "j.")}
                    FROM expired WHERE j.seq = expired.seq
                    RETURNING {REAPED_COLUMNS.replace("id", "j.id", 1)}"""

    def insert_job(self, insert: str, statements: SqlStatements) -> str:
        # NOTIFY in the same statement: delivered at commit, so a woken worker sees the row;
        # a dedupe hit inserts nothing and rings nobody.
        return self.with_notify(f"""{insert}
                ON CONFLICT (dedupe_key)
                    WHERE dedupe_key IS NOT NULL AND status IN ('pending', 'processing')
                    DO NOTHING
                RETURNING {statements.job_columns_text}""")

    def with_notify(self, statement: str) -> str:
        return f"WITH inserted AS ({statement}) SELECT *, pg_notify(:channel, '') FROM inserted"

    def finish(self, sql: str) -> str:
        return pyformat_parameters(sql)


POSTGRES = PostgresDialect()


#: Connections inherited through fork(): closing one in the child would send a Terminate on the
#: parent's socket, so they are kept referenced and never closed here.
_INHERITED_CONNECTIONS: list[Any] = []


def split_schema(url: str) -> tuple[str, str | None]:
    """Remove smc's own ``schema`` query parameter from a PostgreSQL URL (libpq rejects it).
    The other parameters are passed on as written: re-encoded, ``options=-c%20a%3D1`` became
    ``-c+a%3D1``, and libpq, which reads no ``+`` as a space, refused the setting. Raises
    ``ValueError`` for a URL that cannot be split (``postgresql://[::1/db``)."""
    parts = urlsplit(url)
    schema = None
    kept = []
    for field in parts.query.split("&"):
        key, _, value = field.partition("=")
        if unquote_plus(key) == "schema":
            schema = unquote_plus(value)
        elif field:
            kept.append(field)
    return urlunsplit(parts._replace(query="&".join(kept))), schema


#: The query parameters of a PostgreSQL URL that hold a secret (libpq's names).
_SECRET_PARAMETERS = frozenset({"password", "sslpassword"})


def describe_url(url: str) -> str:
    """A PostgreSQL URL as smc shows it (:attr:`PostgresStore.location`): passwords as
    ``***``, smc's ``schema`` parameter as ``(schema NAME)`` unless it is ``public``."""
    try:
        where, schema = split_schema(url)
    except ValueError:
        return "a PostgreSQL URL that cannot be read"  # it may hold a password: not shown
    where = _redact(where)
    return where if schema in (None, "public") else f"{where} (schema {schema})"


def _redact(url: str) -> str:
    """``url`` with every password in it (the user's, ``password=``, ``sslpassword=``) as
    ``***``: a URL is shown in errors and logs."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hosts = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{hosts}"
    fields = []
    for field in parts.query.split("&"):
        key, equals, _ = field.partition("=")
        secret = equals and unquote_plus(key) in _SECRET_PARAMETERS
        fields.append(f"{key}=***" if secret else field)
    return urlunsplit(parts._replace(netloc=netloc, query="&".join(fields)))


def _secrets(url: str) -> list[str]:
    """The passwords of ``url`` as written and decoded, longest first: libpq quotes a
    malformed one in its error (``invalid percent-encoded token: "p%zz…"``)."""
    parts = urlsplit(url)
    found = [] if parts.password is None else [parts.password]
    for field in parts.query.split("&"):
        key, equals, value = field.partition("=")
        if equals and unquote_plus(key) in _SECRET_PARAMETERS:
            found.append(value)
    written = [secret for secret in found if secret]
    decoded = [unquote(secret) for secret in written] + [unquote_plus(s) for s in written]
    return sorted(set(written + decoded), key=len, reverse=True)


def _without_secrets(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


#: How often one connection rings the history channel at most (seconds). A ``NOTIFY`` costs
#: the server about 20 µs for every connection listening in the database, on any channel
#: (every machine's wake-up connection: each must read past it), so one ring per history
#: write made 50 machines at 2,000 transitions a second cost the server two cores
#: (docs/history.md, "Following the history"). A follower polls as well (the web monitor
#: every 100 ms), so a row written within the gap after a ring is read at its next poll.
HISTORY_RING_GAP = 0.25


class PostgresBackend(Backend):
    """A PostgreSQL database (one schema of it): this process's autocommit connection
    (reconnected after a fork or a lost connection), the schema's DDL, psycopg errors as
    :class:`StoreError`, LISTEN/NOTIFY wake-ups. See :class:`PostgresStore` for the options.

    ``history_ring_gap`` (:data:`HISTORY_RING_GAP`): the history channel is rung by at most
    one commit in that many seconds."""

    dialect = POSTGRES
    history_ring_gap = HISTORY_RING_GAP
    _last_history_ring = float("-inf")

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        connect_timeout: float = 10.0,
        create: bool = True,
    ) -> None:
        self.create = create
        try:
            self.url, url_schema = split_schema(url)
            self._secrets = _secrets(self.url)
        except ValueError as error:
            # Not the URL in the message: it may hold a password, and it cannot be split to
            # hide it.
            raise StoreError(f"cannot open a PostgreSQL URL that cannot be read: {error}") from None
        self.schema = schema or url_schema or "public"
        if not _SCHEMA_NAME.fullmatch(self.schema):
            raise StoreError(
                f"cannot open {_redact(self.url)}: invalid schema name {self.schema!r} "
                "(a letter or _, then letters, digits or _, at most 63)"
            )
        self.connect_timeout = connect_timeout
        import psycopg

        self.unique_violation = psycopg.errors.UniqueViolation
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
            connection = connect(self.url, connect_timeout=int(self.connect_timeout))
        except psycopg.Error as error:
            # libpq's own message may quote the URL's password (a malformed one).
            reason = _without_secrets(first_line(error), self._secrets)
            raise StoreError(f"cannot connect to {self.location}: {reason}") from None
        schema = sql.Identifier(self.schema)
        try:
            if not self._schema_is_current(connection, schema):
                if not self.create and not self._schema_exists(connection, schema):
                    raise NoDatabaseError(f"cannot open {self.location}: no smc database there")
                self._create_schema(connection, schema)
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

    def _create_schema(self, connection: Any, schema: Any) -> None:
        """Create the schema's tables, or upgrade them, in one transaction."""
        from psycopg import sql

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
            elif version < SCHEMA_VERSION:
                for statement in (_UPGRADE_FROM_1 if version < 2 else ()) + _UPGRADE_FROM_2:
                    connection.execute(statement)
                connection.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION,))
            elif version > SCHEMA_VERSION:
                raise StoreError(
                    f"cannot open {self.location}: schema version {version} is newer than "
                    f"this smc supports ({SCHEMA_VERSION})"
                )

    @staticmethod
    def _schema_exists(connection: Any, schema: Any) -> bool:
        """Whether the schema holds smc's tables (at any version)."""
        from psycopg import sql

        table = sql.SQL("{}.schema_version").format(schema)
        row = connection.execute(
            "SELECT to_regclass(%s) IS NOT NULL", (table.as_string(connection),)
        ).fetchone()
        return bool(row and row[0])

    @staticmethod
    def _schema_is_current(connection: Any, schema: Any) -> bool:
        """Whether the schema is there at this version, read without taking a lock that a
        writer holds. The DDL below runs only when it is not: ``CREATE INDEX IF NOT EXISTS``
        takes a SHARE lock on its table before it finds the index there, which waits for
        every open write to that table and, taken table after table, deadlocked against
        transactions holding one table and waiting for the next (50 machines pruning the
        history while others opened the store: "deadlock detected")."""
        from psycopg import sql

        if not PostgresBackend._schema_exists(connection, schema):
            return False
        table = sql.SQL("{}.schema_version").format(schema)
        version = connection.execute(
            sql.SQL("SELECT max(version) FROM {}").format(table)
        ).fetchone()
        return version is not None and version[0] == SCHEMA_VERSION

    def _conn(self) -> Any:
        if self._pid != os.getpid():
            if self._connection is not None:
                _INHERITED_CONNECTIONS.append(self._connection)
            self._connection = None
            self._lock = threading.RLock()
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

    def run(
        self,
        action: str,
        work: Callable[[Connection], _Result],
        *,
        transaction: bool = False,
    ) -> _Result:
        with self._using(action) as connection:
            if not transaction:
                return work(connection)
            with connection.transaction():
                return work(connection)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection = None

    # --- wake-ups ---

    def channel_name(self, channel: str) -> str:
        return postgres_channel_name(self.schema, channel)

    def execute_many(self, connection: Connection, sql: str, rows: Sequence[Any]) -> None:
        # One pipelined batch (psycopg's executemany), not a round trip per row.
        with cast(Any, connection).cursor() as cursor:
            cursor.executemany(sql, rows)

    def history_ring(self) -> str | None:
        """The history channel's name if this write should ring it (the gap has passed since
        the last ring), else None; taking it counts as a ring."""
        now = time.monotonic()
        if now - self._last_history_ring < self.history_ring_gap:
            return None
        self._last_history_ring = now
        return self.channel_name(HISTORY_CHANNEL)

    def notify_in(self, connection: Connection, channel: str) -> None:
        name = self.history_ring() if channel == HISTORY_CHANNEL else self.channel_name(channel)
        if name is not None:
            connection.execute("SELECT pg_notify(%s, '')", (name,))

    def notify(self, channel: str) -> None:
        with self._using("notify through") as connection:
            self.notify_in(connection, channel)

    def open_waker(self, channels: Sequence[str]) -> Waker:
        return PostgresWaker(self.url, self.schema, channels)


class PostgresStore(SqlStore):
    """The store in a PostgreSQL database (``postgresql://…[?schema=name]``). ``clock`` times
    only the reaper here: rows are stamped with the database's ``now()``."""

    backend: PostgresBackend

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        connect_timeout: float = 10.0,
        backoff: Backoff | None = None,
        reap_interval: float = DEFAULT_REAP_INTERVAL,
        machine_stale_after: float = DEFAULT_MACHINE_STALE_AFTER,
        clock: Clock = SYSTEM_CLOCK,
        history: bool = True,
        create: bool = True,
    ) -> None:
        super().__init__(
            PostgresBackend(url, schema=schema, connect_timeout=connect_timeout, create=create),
            backoff=backoff,
            reap_interval=reap_interval,
            machine_stale_after=machine_stale_after,
            clock=clock,
            history=history,
        )

    @property
    def url(self) -> str:
        """The URL without smc's ``schema`` parameter."""
        return self.backend.url

    @property
    def schema(self) -> str:
        return self.backend.schema

    @property
    def connection(self) -> Any:
        """The underlying psycopg connection of this process (for diagnostics and settings)."""
        return self.backend.connection
