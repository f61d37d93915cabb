"""``smc ui`` on ``postgresql://…`` when the server drops its connections: its live stream
follows on from where it was, a row whose id was still a gap (a transaction that took its id
before a later one committed) included, as ``smc monitor`` does
(tests/runtime/test_monitor_postgres_reconnect.py)."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from smc.runtime.store import open_store
from tests.support.backends import connections_of, terminate
from tests.support.harness import runner_in, wait_until
from tests.support.web import free_port, serve_and_stream

pytestmark = pytest.mark.postgres


def test_the_stream_passes_on_a_row_that_commits_out_of_order_after_its_connections_drop(
    pg_url: str, tmp_path: Path
) -> None:
    """Job "late" takes its id, "quick" the next and commits first, and the feed waits for
    the gap. The server ends all of smc ui's connections, then "late" commits. The stream
    then carries "late" once, and "after" behind it: the feed went on from its last row,
    above the gap, and never passed "late" on."""
    name = f"smc-ui-{uuid.uuid4().hex[:12]}"
    records: list[tuple[float, dict[str, Any]]] = []
    taken = 0

    def next_job() -> str:
        nonlocal taken
        while True:
            wait_until(lambda n=taken: len(records) > n, 30, lambda: f"no more: {records}")
            _, record = records[taken]
            taken += 1
            if record["kind"] == "job_added":
                return str(record["job_id"])

    with runner_in(tmp_path) as runner:
        runner.env["SMC_DB"] = f"{pg_url}&application_name={name}"
        ui, _reading = serve_and_stream(runner, free_port(), records)
        try:
            with open_store(pg_url) as store, open_store(pg_url) as late_writer:
                with late_writer.connection.transaction():  # commits at the end of the block
                    late_writer.add_job("task", job_id="late")
                    store.add_job("task", job_id="quick")
                    assert next_job() == "quick"
                    terminate(connections_of(name))
                wait_until(lambda: connections_of(name) != [], 30, "smc ui never connected again")
                store.add_job("task", job_id="after")
                shown = [next_job()]
                while shown[-1] != "after":
                    shown.append(next_job())
            assert shown == ["late", "after"]
            assert ui.popen.poll() is None, ui.output()
        finally:
            ui.signal(signal.SIGTERM)
            assert ui.wait(10) == 0, ui.output()
