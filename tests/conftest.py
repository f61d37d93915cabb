"""Shared test fixtures: where the project and the compatibility corpus are, a runner of real
``smc`` processes, and a store URL on each backend; and the markers set by where a test is or
what it uses (``e2e``, ``postgres``; see tests/README.md)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from smc.runtime.store import open_store
from tests.support import PROJECT_ROOT
from tests.support.backends import postgres_schema_url
from tests.support.corpus import require_corpus
from tests.support.harness import Runner, runner_in

#: The test command's profile (scripts/test.sh: ``--hypothesis-profile=ci``): the same
#: examples on every run, so that CI passes or fails on the code, not on the draw (a run once
#: went red on a line separator no run before had drawn). Plain ``pytest`` draws anew.
settings.register_profile("ci", derandomize=True)

E2E = PROJECT_ROOT / "tests" / "e2e"
#: Fixtures that hand a test a PostgreSQL store or URL (besides ``store_url``'s postgres param).
POSTGRES_FIXTURES = frozenset({"pg_url", "pg_store"})


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


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a fresh PostgreSQL schema holding smc's tables (dropped afterwards): there
    for a process started on it (``smc ui`` and ``smc monitor`` refuse a missing database)."""
    with postgres_schema_url() as url:
        open_store(url).close()
        yield url


def pytest_configure(config: pytest.Config) -> None:
    """The tests send SIGINT to the ``smc`` processes they start, as a user's Ctrl-C. A suite
    started in the background by a non-interactive shell inherits SIGINT *ignored*, and so
    would every process it starts (an ignored signal stays ignored across ``exec``): give
    the children the default disposition back, whatever started pytest."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``e2e`` on every test under tests/e2e; ``postgres`` on every test that needs the
    PostgreSQL server (the postgres ``store_url``, or a fixture of ``POSTGRES_FIXTURES``; tests
    that connect by themselves carry the marker in their module)."""
    for item in items:
        if item.path.is_relative_to(E2E):
            item.add_marker(pytest.mark.e2e)
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("store_url") == "postgres"
        if on_postgres or POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)
