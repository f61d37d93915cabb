"""The hooks a database gives the shared store: everything that differs between backends.

``sql.SqlStore`` holds every :class:`~smc.runtime.store.base.Store` method once and reaches
the database only through a :class:`Backend` (as procrastinate's ``App`` does through its
connector): the connection and the transaction (:meth:`Backend.run`, also where SQLite
retries a ``SQLITE_BUSY``), the :class:`~smc.runtime.store.statements.Dialect` the statements
are written in, wake-ups, and housekeeping. A third database needs a ``Dialect`` and a
``Backend``, nothing else.

Times: a statement reads the current time either from the database (``Dialect.now`` is
``now()``, PostgreSQL: hosts' clocks differ) or from the ``:now`` parameter, which the store
binds from its :class:`~smc.runtime.clock.Clock` (SQLite: one host, one clock).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from smc.runtime.store.statements import Dialect
from smc.runtime.store.waker import HISTORY_CHANNEL, Waker

_Result = TypeVar("_Result")


class Cursor(Protocol):
    """What the store reads from a statement's cursor (sqlite3's and psycopg's alike)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What the store calls on a backend's connection: ``execute(sql, params)`` with the
    statement as the dialect finished it and its parameters (a dict of ``:name`` values)."""

    def execute(self, sql: str, params: Any = ..., /) -> Cursor: ...


class Backend(abc.ABC):
    """One database's connection handling, dialect and wake-ups, for ``sql.SqlStore``."""

    #: How the database spells the statements (also their cache key, with the backoff).
    dialect: Dialect
    #: The driver's exception for a broken unique constraint (``add_job``'s id, ``retry_job``
    #: meeting a held dedupe key).
    unique_violation: type[Exception]
    #: Directory of the doorbell sockets (SQLite), None when wake-ups need none (PostgreSQL).
    socket_dir: Path | None = None

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the database lives (a file path or a password-free URL), for messages."""

    @abc.abstractmethod
    def run(
        self,
        action: str,
        work: Callable[[Connection], _Result],
        *,
        transaction: bool = False,
    ) -> _Result:
        """``work(connection)`` on this process's connection (opened, or reopened after a fork
        or a lost connection, as needed), in autocommit mode, or with ``transaction`` inside one
        write transaction committed when ``work`` returns and rolled back when it raises.

        Every store method reaches the database only through here, one statement or one
        transaction per call, so this is where a backend retries work the database refused as
        a whole (SQLite: ``SQLITE_BUSY``). A database error becomes a one-line
        :class:`~smc.runtime.store.errors.StoreError`: ``cannot {action} {location}: …``."""

    def run_after_rows(
        self,
        action: str,
        insert: str,
        rows: Sequence[Any],
        work: Callable[[Connection], _Result],
    ) -> _Result:
        """``work`` and ``rows`` inserted with ``insert`` (the staged history, which happened
        before the write) in one write transaction, ringing the history channel at the commit:
        as :meth:`run` with ``transaction``. Here the write goes first, then the rows: the
        order of the tables in every transaction (a database that locks tables, as
        PostgreSQL's opening DDL does, then cannot deadlock on them); ids still put the rows
        before any the write's own statement records later (``SqlStore._write``)."""

        def recorded(connection: Connection) -> _Result:
            result = work(connection)
            self.execute_many(connection, insert, rows)
            self.notify_in(connection, HISTORY_CHANNEL)
            return result

        return self.run(action, recorded, transaction=True)

    def on_each_connection(self, statements: Sequence[str]) -> None:
        """Run ``statements`` on this process's connection now and on each one opened later
        (``Dialect.job_history_triggers``). Only a backend whose dialect has such statements
        needs this."""
        if statements:
            raise NotImplementedError(f"{type(self).__name__} runs no per-connection statements")

    def channel_name(self, channel: str) -> str:
        """``channel`` as the statements' ``:channel`` parameter names it."""
        return channel

    def execute_many(self, connection: Connection, sql: str, rows: Sequence[Any]) -> None:
        """Run ``sql`` once per parameter set of ``rows`` (the history rows of one write)."""
        for row in rows:
            connection.execute(sql, row)

    def notify_in(self, connection: Connection, channel: str) -> None:
        """Ring ``channel`` at the commit of ``connection``'s transaction, if the database can
        (PostgreSQL's NOTIFY)."""
        return None

    def history_ring(self) -> str | None:
        """The name to ``NOTIFY`` the history channel by in a write that records history, or
        None when this write should not ring it (PostgreSQL rings it at most every
        ``HISTORY_RING_GAP``)."""
        return self.channel_name(HISTORY_CHANNEL)

    def ring(self, channel: str) -> None:
        """Ring ``channel`` after a commit, if the database could not ring it at the commit."""
        return None

    @abc.abstractmethod
    def notify(self, channel: str) -> None:
        """Ring ``channel`` now (a hint; never raises for lack of listeners)."""

    @abc.abstractmethod
    def open_waker(self, channels: Sequence[str]) -> Waker:
        """A waker rung by :meth:`notify` (and by commits ringing) on any of ``channels``."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection; :meth:`run` reconnects if used again."""

    def checkpoint(self) -> bool:
        """Housekeeping off the hot path (see ``Store.checkpoint``); True when it did any.
        Nothing by default."""
        return False

    def replaced(self) -> str | None:
        """Why the database opened is no longer the one at :attr:`location` (see
        ``Store.replaced``); None by default."""
        return None


__all__ = ["Backend", "Connection", "Cursor"]
