"""``smc ui`` on ``postgresql://…`` when the server drops its connections: its live stream
follows on from where it was, a row whose id was still a gap (a transaction that took its id
before a later one committed) included, as ``smc monitor`` does
(tests/runtime/test_monitor_postgres_reconnect.py)."""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from smc.runtime.store import open_store
from tests.support.backends import connections_of, postgres_schema_url, terminate
from tests.support.harness import runner_in, wait_until
from tests.support.web import free_port, start_ui

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_schema_url() as url:
        open_store(url).close()  # smc ui serves a database that is there
        yield url


def test_the_stream_passes_on_a_row_that_commits_out_of_order_after_its_connections_drop(
    pg_url: str, tmp_path: Path
) -> None:
    """ "late" takes its id, "quick" takes the next and commits first, and the feed waits for
    the gap. The server ends all of smc ui's connections, then "late" commits. The stream
    then carries "late" once, and "after" behind it: the feed went on from its last row,
    above the gap, and never passed "late" on."""
    name = f"smc-ui-{uuid.uuid4().hex[:12]}"
    records: queue.Queue[dict[str, Any]] = queue.Queue()

    def next_job() -> str:
        while True:
            record = records.get(timeout=30)
            if record["kind"] == "job_added":
                return str(record["job_id"])

    with runner_in(tmp_path) as runner:
        runner.env["SMC_DB"] = f"{pg_url}&application_name={name}"
        port = free_port()
        ui = start_ui(runner, port)
        connected = threading.Event()

        def read() -> None:
            # The stream ends when the test stops the server: the end is not an error.
            with (
                contextlib.suppress(httpx2.TransportError),
                httpx2.stream("GET", f"http://127.0.0.1:{port}/api/stream", timeout=60) as stream,
            ):
                connected.set()
                for line in stream.iter_lines():
                    if line.startswith("data: "):
                        for record in json.loads(line[6:]):
                            records.put(record)

        threading.Thread(target=read, daemon=True).start()
        assert connected.wait(10)
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
