"""The store's errors: what a caller of any backend catches."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be used: it is missing, read-only, full, unreachable, …

    The message is one line saying what failed and where, e.g.
    ``cannot write to /x/smc.db: database is read-only``.
    """


class DuplicateJobError(StoreError):
    """``add_job`` was given an id that already exists."""


class NoDatabaseError(StoreError):
    """A store opened with ``create=False`` names no database: no SQLite file there, no smc
    tables in the PostgreSQL schema (a mistyped ``--db``)."""


__all__ = ["DuplicateJobError", "NoDatabaseError", "StoreError"]
