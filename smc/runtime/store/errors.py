"""The store's errors: what a caller of any backend catches."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be used: it is missing, read-only, full, unreachable, …

    The message is one line saying what failed and where, e.g.
    ``cannot write to /x/smc.db: database is read-only``.
    """


class DuplicateJobError(StoreError):
    """``add_job`` was given an id that already exists."""


class JobRefusedError(StoreError):
    """A change to a job that would break one of the queue's rules: a retry whose dedupe key
    another pending job holds, or of a workflow task's job (its retries are the workflow's).
    The database is fine; the web monitor answers 409, not 503."""


class NoDatabaseError(StoreError):
    """A store opened with ``create=False`` names no database: no SQLite file there, no smc
    tables in the PostgreSQL schema (a mistyped ``--db``). ``can_appear`` is False when no
    start could make it there either (a SQLite file in a directory that does not exist):
    nothing to wait for."""

    def __init__(self, message: str, *, can_appear: bool = True) -> None:
        super().__init__(message)
        self.can_appear = can_appear


__all__ = ["DuplicateJobError", "JobRefusedError", "NoDatabaseError", "StoreError"]
