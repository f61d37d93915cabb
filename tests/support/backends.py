"""The two store backends the tests run against (no tests here): a SQLite file, and a fresh
schema on the real PostgreSQL server at 127.0.0.1:5432.

There is no skip: when the server is missing, the PostgreSQL tests fail.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


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
