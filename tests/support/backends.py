"""The two store backends the tests run against (no tests here): a SQLite file, and a fresh
schema on the real PostgreSQL server at 127.0.0.1:5432; and simulated time for both
(:class:`StoreTime`, :func:`age_rows`), so that lease, backoff and heartbeat tests do not sleep.

There is no skip: when the server is missing, the PostgreSQL tests fail.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg

from smc.runtime.clock import ManualClock
from smc.runtime.store import Store, is_postgres_url, open_store
from smc.runtime.store.postgres import PostgresStore
from smc.runtime.store.sqlite import SqliteStore

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_SERVER = ("127.0.0.1", 5432)


@contextlib.contextmanager
def postgres_schema_url() -> Iterator[str]:
    """The URL of a new, uniquely named schema on the test server; the schema is dropped
    (with all it holds) on exit."""
    schema = f"smc_test_{uuid.uuid4().hex[:10]}"
    try:
        yield f"{PG_URL}?schema={schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def connections_of(application_name: str) -> list[int]:
    """The server pids of the connections opened with ``application_name`` (a test gives a
    process's URL ``&application_name=…`` to find its connections on the server)."""
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,)
        ).fetchall()
    return [pid for (pid,) in rows]


def terminate(pids: list[int]) -> None:
    """End those server connections (``pg_terminate_backend``), as a server restart does."""
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


#: The time columns of each table, as ``age_rows`` moves them.
_TIME_COLUMNS = {
    "jobs": ("run_after", "lease_expires_at", "created_at", "started_at", "finished_at"),
    "machine_events": ("lease_expires_at", "created_at", "processed_at"),
    "machine_state": ("started_at", "heartbeat_at", "updated_at"),
    "workflow_runs": ("heartbeat_at", "created_at", "updated_at", "finished_at"),
    "workflow_tasks": ("updated_at",),
}


def age_rows(store: Store, seconds: float) -> None:
    """Make every time ``store``'s database holds ``seconds`` older: for every comparison the
    store makes (a lease against now, ``run_after`` against now, a heartbeat's age), as if
    ``seconds`` had passed on the clock the rows were stamped with.

    For time a test cannot move: PostgreSQL's ``now()`` (the server's clock), or the real
    clocks of other processes sharing a SQLite file. One UPDATE per table, through the store's
    own connection."""
    if isinstance(store, PostgresStore):
        for table, columns in _TIME_COLUMNS.items():
            moved = ", ".join(f"{c} = {c} - make_interval(secs => %(s)s)" for c in columns)
            store.connection.execute(f"UPDATE {table} SET {moved}", {"s": float(seconds)})
    elif isinstance(store, SqliteStore):
        for table, columns in _TIME_COLUMNS.items():
            moved = ", ".join(f"{c} = {c} - :s" for c in columns)
            store.connection.execute(f"UPDATE {table} SET {moved}", {"s": float(seconds)})
    else:
        raise TypeError(f"cannot age the rows of {store!r}")


class StoreTime:
    """Simulated time for the stores a test opens on one database, instead of sleeping.

    Stores opened with :meth:`open` share a :class:`ManualClock` that starts at the real time
    (so stamps still read as "about now"); :meth:`advance` moves it. That is all SQLite needs:
    its statements read ``:now`` from the clock. PostgreSQL's statements read the server's
    ``now()``, which no test can move, so there :meth:`advance` also ages the database's rows
    by the same amount (:func:`age_rows`), and the same comparisons come out the same."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = is_postgres_url(url)
        self.clock = ManualClock(epoch=time.time())
        self._aged: Store | None = None

    def open(self, **options: Any) -> Store:
        """``open_store(url, clock=…, **options)``."""
        store = open_store(self.url, clock=self.clock, **options)
        if self.postgres and self._aged is None:
            self._aged = store
        return store

    def time(self) -> float:
        """Now, for the times the store compares: the simulated clock's on SQLite; on
        PostgreSQL the server's (the host's clock: the server runs here), since there time
        passes by aging the rows."""
        return time.time() if self.postgres else self.clock.time()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        if self._aged is not None:
            age_rows(self._aged, seconds)


class CuttableForwarder:
    """Forwards TCP connections to the test server, listening on ``host``. :meth:`cut` closes
    every connection through it and refuses new ones (counted in :attr:`refused`) until
    :meth:`restore`."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._listener = socket.create_server((host, 0))
        self.port: int = self._listener.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self.refused = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            if not self._up.is_set():
                self.refused += 1
                client.close()
                continue
            server = socket.create_connection(PG_SERVER)
            with self._lock:
                self._open += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self._up.clear()
        with self._lock:
            for end in self._open:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self.cut()
        self._listener.close()
