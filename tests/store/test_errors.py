"""Faults: a read-only or full database, a missing directory, an unreachable server.

Each raises one StoreError with a one-line message saying what and where, loses nothing that
was committed, and the store works again once the fault clears.
"""

from __future__ import annotations

import concurrent.futures
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from smc.runtime.store import NoDatabaseError, Store, StoreError, open_store
from smc.runtime.store.postgres import PostgresStore
from smc.runtime.store.sqlite import SqliteStore
from tests.support.backends import PG_URL, postgres_schema_url


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = open_store(str(tmp_path / "smc.db"))
    assert isinstance(store, SqliteStore)
    yield store
    store.close()


@pytest.fixture
def pg_store() -> Iterator[PostgresStore]:
    with postgres_schema_url() as url:
        store = open_store(url)
        assert isinstance(store, PostgresStore)
        yield store
        store.close()


def _one_line(error: pytest.ExceptionInfo[StoreError]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def _committed_jobs_survive(store: Store, count: int) -> None:
    assert store.queue_counts()["pending"] == count
    assert [job.id for job in store.list_pending()] == [f"kept-{index}" for index in range(count)]


def test_missing_directory(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "smc.db"
    with pytest.raises(StoreError) as error:
        open_store(str(target))
    assert _one_line(error) == (f"cannot open {target}: directory {target.parent} does not exist")
    target.parent.mkdir(parents=True)  # the fault clears
    store = open_store(str(target))
    store.add_job("t")
    store.close()


def test_a_store_opened_without_create_names_no_database_and_makes_none(
    tmp_path: Path,
) -> None:
    """``create=False`` (``smc history``): a mistyped ``--db`` is refused and leaves nothing
    behind, neither a SQLite file nor a PostgreSQL schema; one that is there opens."""
    missing = tmp_path / "typo.db"
    with pytest.raises(NoDatabaseError):
        open_store(missing, create=False)
    assert not missing.exists()
    open_store(missing).close()
    open_store(missing, create=False).close()
    with postgres_schema_url() as url:
        schema = url.rsplit("=", 1)[1]
        with pytest.raises(NoDatabaseError):
            open_store(url, create=False)
        with psycopg.connect(PG_URL, autocommit=True) as connection:
            found = connection.execute(
                "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s",
                (schema,),
            ).fetchone()
        assert found == (0,)
        open_store(url).close()
        open_store(url, create=False).close()


def test_read_only_open_rejects_writes_and_keeps_reading(tmp_path: Path) -> None:
    path = tmp_path / "smc.db"
    writer = open_store(str(path))
    for index in range(3):
        writer.add_job("t", job_id=f"kept-{index}")
    reader = open_store(f"sqlite://{path}?mode=ro")
    try:
        assert isinstance(reader, SqliteStore) and reader.read_only
        _committed_jobs_survive(reader, 3)
        with pytest.raises(StoreError) as error:
            reader.add_job("t")
        assert _one_line(error) == f"cannot write to {path}: database is read-only"
        with pytest.raises(StoreError, match="read-only"):
            reader.claim_job("w")
        with pytest.raises(StoreError, match="read-only"):
            reader.send_event("m", "e")
        _committed_jobs_survive(reader, 3)
    finally:
        reader.close()
    writer.add_job("t", job_id="kept-3")  # the writable handle was never affected
    _committed_jobs_survive(writer, 4)
    writer.close()


def test_read_only_database_then_recovery_on_the_same_store(sqlite_store: SqliteStore) -> None:
    for index in range(3):
        sqlite_store.add_job("t", job_id=f"kept-{index}")
    sqlite_store.connection.execute("PRAGMA query_only = ON")  # the database turns read-only
    with pytest.raises(StoreError) as error:
        sqlite_store.add_job("t")
    assert _one_line(error) == f"cannot write to {sqlite_store.path}: database is read-only"
    with pytest.raises(StoreError, match="read-only"):
        sqlite_store.claim_job("w")
    _committed_jobs_survive(sqlite_store, 3)
    sqlite_store.connection.execute("PRAGMA query_only = OFF")  # the fault clears
    job = sqlite_store.claim_job("w")
    assert job is not None and job.id == "kept-0"
    assert sqlite_store.complete_job(job.id, claim_token=job.claim_token)


def test_full_database_then_recovery(sqlite_store: SqliteStore) -> None:
    for index in range(3):
        sqlite_store.add_job("t", job_id=f"kept-{index}")
    connection = sqlite_store.connection
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.execute(f"PRAGMA max_page_count = {pages}")  # no room to grow: disk full
    big = {"blob": "x" * 200_000}
    with pytest.raises(StoreError) as error:
        sqlite_store.add_job("t", data=big)
    assert _one_line(error) == f"cannot write to {sqlite_store.path}: database or disk is full"
    with pytest.raises(StoreError, match="full"):
        sqlite_store.send_event("m", "e", big)
    _committed_jobs_survive(sqlite_store, 3)
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    connection.execute("PRAGMA max_page_count = 1073741823")  # space is freed
    sqlite_store.add_job("t", data=big, job_id="big")
    assert sqlite_store.queue_counts()["pending"] == 4
    # Another process sees everything committed, and nothing from the failed writes.
    with sqlite3.connect(sqlite_store.path) as other:
        assert other.execute("SELECT count(*) FROM jobs").fetchone()[0] == 4
        assert other.execute("SELECT count(*) FROM machine_events").fetchone()[0] == 0


def test_not_an_smc_database_read_only(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE unrelated (x)")
    with pytest.raises(StoreError, match="not an smc database"):
        open_store(f"sqlite://{path}?mode=ro")


def test_postgres_read_only_session_then_recovery(pg_store: PostgresStore) -> None:
    for index in range(3):
        pg_store.add_job("t", job_id=f"kept-{index}")
    pg_store.connection.execute("SET default_transaction_read_only = on")
    with pytest.raises(StoreError) as error:
        pg_store.add_job("t")
    message = _one_line(error)
    assert message.startswith(f"cannot write to {pg_store.location}: ")
    assert "read-only transaction" in message
    with pytest.raises(StoreError, match="read-only"):
        pg_store.claim_job("w")
    _committed_jobs_survive(pg_store, 3)
    pg_store.connection.execute("SET default_transaction_read_only = off")
    job = pg_store.claim_job("w")
    assert job is not None and job.id == "kept-0"


def test_postgres_lost_connection_reconnects(pg_store: PostgresStore) -> None:
    pg_store.add_job("t", job_id="kept-0")
    backend_pid = pg_store.connection.info.backend_pid
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (backend_pid,))
    with pytest.raises(StoreError) as error:
        pg_store.queue_counts()
    assert _one_line(error).startswith(f"cannot read {pg_store.location}: ")
    _committed_jobs_survive(pg_store, 1)  # the next call reconnects
    assert pg_store.connection.info.backend_pid != backend_pid


def test_opening_a_postgres_store_waits_for_no_writer(pg_store: PostgresStore) -> None:
    # Opening ran the schema's DDL every time: CREATE INDEX IF NOT EXISTS takes a SHARE lock
    # on its table before it finds the index, so an open waited for every writer, and 50
    # machines opening while others pruned deadlocked. An open of a current schema reads.
    from psycopg import sql

    schema = pg_store.schema
    with psycopg.connect(PG_URL) as writer:  # a transaction writing to every table
        tables = [
            name
            for (name,) in writer.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            ).fetchall()
        ]
        assert {"jobs", "history", "machine_state"} <= set(tables)
        for table in tables:
            writer.execute(
                sql.SQL("LOCK TABLE {}.{} IN ROW EXCLUSIVE MODE").format(
                    sql.Identifier(schema), sql.Identifier(table)
                )
            )
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            opening = pool.submit(lambda: open_store(f"{PG_URL}?schema={schema}"))
            try:
                opened = opening.result(timeout=10)
            finally:
                writer.rollback()  # lets a blocked open finish, so the pool can shut down
            opened.close()


def test_postgres_unreachable_server_is_one_line() -> None:
    with pytest.raises(StoreError) as error:
        open_store("postgresql://postgres:secret@127.0.0.1:1/test", connect_timeout=2)
    message = _one_line(error)
    assert message.startswith("cannot connect to postgresql://postgres:***@127.0.0.1:1/test: ")
    assert "secret" not in message


def test_a_database_locked_too_long_is_a_store_error_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "smc.db"
    store = open_store(str(path), busy_timeout=0.3)
    store.add_job("t", job_id="kept-0")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        with pytest.raises(StoreError) as error:
            store.add_job("t")
        assert _one_line(error) == f"cannot write to {path}: database is locked"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store.add_job("t", job_id="kept-1")
    _committed_jobs_survive(store, 2)
    store.close()


def test_a_write_with_staged_history_waits_once_for_a_lock_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    """A completion carrying staged history rows (the worker's fast path) waits for another
    process's lock for ``busy_timeout`` in all, not once per attempt, fails as one line, and
    keeps the rows for the write that follows."""
    from smc.runtime.store import history_entry

    path = tmp_path / "smc.db"
    store = open_store(str(path), busy_timeout=0.4)
    store.add_job("t", job_id="j")
    job = store.claim_job("w", ["t"])
    assert job is not None
    start = store.last_history_id()
    store.stage_history(history_entry("transition", "w", ts=1.0, event="kept"))
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    began = time.monotonic()
    try:
        with pytest.raises(StoreError) as error:
            store.complete_job("j", job.claim_token)
        waited = time.monotonic() - began
        assert _one_line(error) == f"cannot write to {path}: database is locked"
        assert 0.35 < waited < 0.75
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.complete_job("j", job.claim_token)
    assert [(row.kind, row.event) for row in store.history(after_id=start)] == [
        ("transition", "kept"),
        ("job_completed", "t"),
    ]
    store.close()
