"""Shared test fixtures: where the project and the compatibility corpus are, a runner of real
``smc`` processes, and a store URL on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT
from tests.support.backends import postgres_schema_url
from tests.support.corpus import require_corpus
from tests.support.harness import Runner, runner_in


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def corpus() -> Path:
    return require_corpus()


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    """A :class:`Runner` of ``smc`` processes in ``tmp_path/work``, against ``smc.db`` there;
    every process it started is stopped when the test ends."""
    with runner_in(tmp_path) as started:
        yield started


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store, once per backend: a SQLite file in ``tmp_path``, then a
    fresh PostgreSQL schema (dropped afterwards)."""
    if request.param == "sqlite":
        yield str(tmp_path / "smc.db")
        return
    with postgres_schema_url() as url:
        yield url
