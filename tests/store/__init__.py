"""Tests of the job and event store (``smc.runtime.store``) on SQLite and PostgreSQL."""
