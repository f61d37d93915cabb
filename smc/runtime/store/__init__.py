"""The runtime's persistent job queue, inter-machine event table and machine registry.

``open_store(None)`` opens ``$SMC_DB`` or ``./smc.db``; a path or ``sqlite:///path`` opens
SQLite, ``postgresql://…`` PostgreSQL (psycopg is imported only then). Both backends have the
same semantics; see ``docs/queue.md``.

Modules: ``base`` (the :class:`Store` protocol, :class:`Backoff`, defaults), ``rows`` (row
types, JSON), ``errors``, ``sql`` (``SqlStore``: the methods, once), ``statements`` (the SQL and
its ``Dialect``), ``backend`` (the hooks a database implements), ``sqlite`` / ``postgres`` (the
two backends), ``waker`` (wake-ups).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from smc.runtime.store.base import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MACHINE_STALE_AFTER,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    Backoff,
    OutgoingEvent,
    Store,
)
from smc.runtime.store.errors import (
    DuplicateJobError,
    JobRefusedError,
    NoDatabaseError,
    StoreError,
)
from smc.runtime.store.postgres import PostgresStore, describe_url
from smc.runtime.store.rows import (
    ERROR_EXCERPT_KINDS,
    EVENT_STATUSES,
    HISTORY_KINDS,
    JOB_STATUSES,
    MACHINE_STATUSES,
    OPEN_JOB_STATUSES,
    EventRow,
    HistoryLine,
    HistoryRow,
    Job,
    MachineRow,
    check_job_data,
    check_job_id,
    configuration_text,
    excerpt,
    history_entry,
    not_an_object,
    process_alive,
)
from smc.runtime.store.sql import SqlStore, canonical_trace_id, new_trace_id
from smc.runtime.store.sqlite import INLINE_CHECKPOINT_EVERY, SqliteStore
from smc.runtime.store.waker import (
    HISTORY_CHANNEL,
    JOBS_CHANNEL,
    LoopWaker,
    Waker,
    machine_channel,
)
from smc.runtime.store.workflow_rows import WORKFLOW_RUN_STATUSES, WorkflowRun, WorkflowTask

#: The database used when neither an argument nor ``$SMC_DB`` names one.
DEFAULT_DATABASE = "smc.db"


def resolve_database(url_or_path: str | os.PathLike[str] | None = None) -> str:
    """The database an ``open_store`` call would use: the argument, ``$SMC_DB``, ``./smc.db``."""
    if url_or_path is not None and str(url_or_path) != "":
        return str(url_or_path)
    return os.environ.get("SMC_DB") or DEFAULT_DATABASE


def is_postgres_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def describe_database(url_or_path: str | os.PathLike[str] | None = None) -> str:
    """The database an ``open_store`` call would use, as messages show it (a store's
    ``location``), without opening it: a PostgreSQL URL with its passwords hidden."""
    target = resolve_database(url_or_path)
    return describe_url(target) if is_postgres_url(target) else target


def _sqlite_path(target: str) -> Path | None:
    """The file a SQLite target (a path or ``sqlite:///path``) names; None for PostgreSQL."""
    if is_postgres_url(target):
        return None
    if target.startswith("sqlite:"):
        return Path(unquote(urlsplit(target).path))
    return Path(target)


#: What to install for PostgreSQL: psycopg is an optional dependency (the ``postgres`` extra).
POSTGRES_EXTRA = "pip install 'smc-compiler[postgres]'"


class MissingDriverError(StoreError):
    """A PostgreSQL URL was given but psycopg, the ``postgres`` extra, is not installed."""


def require_postgres_driver(target: str) -> None:
    """Raise :class:`MissingDriverError` if ``target`` is a PostgreSQL URL and psycopg cannot
    be imported; nothing otherwise."""
    if not is_postgres_url(target):
        return
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise MissingDriverError(
            f"PostgreSQL databases need the psycopg driver, which is not installed: "
            f"{POSTGRES_EXTRA}"
        ) from None


def history_enabled() -> bool:
    """False when ``$SMC_HISTORY`` is ``off`` (or ``0``/``false``/``no``): for measuring what
    history costs only; history is on by default."""
    return os.environ.get("SMC_HISTORY", "on").strip().lower() not in ("off", "0", "false", "no")


def open_store(url_or_path: str | os.PathLike[str] | None = None, **options: Any) -> Store:
    """Open the store named by ``url_or_path`` (see :func:`resolve_database`).

    - ``postgresql://user@host/db[?schema=name]``: ``postgres.PostgresStore``;
    - ``sqlite:///abs/path.db[?mode=ro][&max_pages=N]`` or a plain path:
      ``sqlite.SqliteStore`` (``max_pages`` caps the file's size, to drill a full disk).

    ``options`` go to the backend's constructor (e.g. ``backoff=Backoff(base=0.1)``,
    ``read_only=True`` for SQLite, ``clock=ManualClock()`` from :mod:`smc.runtime.clock` for
    simulated time: on SQLite it stamps every row and times leases, backoff and the reaper; on
    PostgreSQL rows keep the database's ``now()`` and the clock times only the reaper).
    ``history`` (default: on unless ``$SMC_HISTORY`` is ``off``, a switch for measuring what
    history costs) says whether writes record history rows (``docs/history.md``).
    ``create=False`` opens only a database that is there (else :class:`NoDatabaseError`,
    nothing made): no SQLite file, no smc tables in the PostgreSQL schema.
    Raises :class:`StoreError` when the database cannot be opened.
    """
    options.setdefault("history", history_enabled())
    target = resolve_database(url_or_path)
    if is_postgres_url(target):
        require_postgres_driver(target)
        return PostgresStore(target, **options)
    if target.startswith("sqlite:"):
        parts = urlsplit(target)
        if parts.netloc not in ("", "localhost"):
            raise StoreError(
                f"cannot open {target}: SQLite URLs name a local file (sqlite:///path)"
            )
        query = dict(parse_qsl(parts.query))
        if query.get("mode") == "ro":
            options.setdefault("read_only", True)
        if "max_pages" in query:
            pages = query["max_pages"]
            if not pages.isdigit() or int(pages) < 1:
                raise StoreError(
                    f"cannot open {target}: max_pages must be a positive number of pages"
                )
            options.setdefault("max_pages", int(pages))
    path = _sqlite_path(target)
    assert path is not None
    return SqliteStore(path, **options)


def open_worker_store(url_or_path: str | os.PathLike[str] | None = None) -> Store:
    """Open the store a worker's event loop uses (its background thread uses a plain
    :func:`open_store`): the backend's settings for a connection on the hot path, so the
    engine holds no backend specifics. SQLite: try to checkpoint inline only every
    :data:`~smc.runtime.store.sqlite.INLINE_CHECKPOINT_EVERY` statements (the background
    thread checkpoints); PostgreSQL: as :func:`open_store`."""
    target = resolve_database(url_or_path)
    if is_postgres_url(target):
        return open_store(target)
    return open_store(target, checkpoint_every=INLINE_CHECKPOINT_EVERY)


def open_background_store(main: Store, url_or_path: str | os.PathLike[str] | None = None) -> Store:
    """The store of a worker's background thread (its heartbeat), beside ``main``, the one
    its event loop uses. SQLite: a connection of its own, so that a checkpoint's ``fsync``
    never holds up the loop's commits. PostgreSQL: ``main``'s connection, shared
    (:meth:`SqlStore.sharing_connection`): a server allows few connections (100 by default)
    and the thread's statements are a few short updates a second."""
    target = resolve_database(url_or_path)
    if is_postgres_url(target) and isinstance(main, SqlStore):
        return main.sharing_connection()
    return open_store(target)


__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_MACHINE_STALE_AFTER",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_PRIORITY",
    "ERROR_EXCERPT_KINDS",
    "EVENT_STATUSES",
    "HISTORY_CHANNEL",
    "HISTORY_KINDS",
    "JOBS_CHANNEL",
    "JOB_STATUSES",
    "MACHINE_STATUSES",
    "OPEN_JOB_STATUSES",
    "POSTGRES_EXTRA",
    "WORKFLOW_RUN_STATUSES",
    "Backoff",
    "DuplicateJobError",
    "EventRow",
    "HistoryLine",
    "HistoryRow",
    "Job",
    "JobRefusedError",
    "LoopWaker",
    "MachineRow",
    "MissingDriverError",
    "NoDatabaseError",
    "OutgoingEvent",
    "Store",
    "StoreError",
    "Waker",
    "WorkflowRun",
    "WorkflowTask",
    "canonical_trace_id",
    "check_job_data",
    "check_job_id",
    "configuration_text",
    "describe_database",
    "excerpt",
    "history_enabled",
    "history_entry",
    "is_postgres_url",
    "machine_channel",
    "new_trace_id",
    "not_an_object",
    "open_background_store",
    "open_store",
    "open_worker_store",
    "process_alive",
    "require_postgres_driver",
    "resolve_database",
]
