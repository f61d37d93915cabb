"""``smc monitor --db postgresql://…`` when the server drops its connections: it follows on
from where it was, a row whose id was still a gap (a transaction that took its id before a
later one committed) included."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid

import pytest

from smc.runtime.store import open_store
from tests.support.backends import connections_of, terminate
from tests.support.harness import REPO, wait_until

pytestmark = pytest.mark.postgres


def test_monitor_prints_a_row_that_commits_out_of_order_after_its_connections_drop(
    pg_url: str,
) -> None:
    """PostgreSQL ids commit out of order: "late" takes its id, "quick" takes the next and
    commits first, and the monitor waits for the gap. The server ends the monitor's
    connections, then "late" commits. Once it reconnects the monitor printed "late": it
    started again from the last row it had printed, above the gap, and skipped it for ever."""
    name = f"smc-monitor-{uuid.uuid4().hex[:12]}"
    monitor = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smc",
            "monitor",
            "--db",
            f"{pg_url}&application_name={name}",
            "--format",
            "json",
        ],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in monitor.stdout or ()], daemon=True
    ).start()

    def next_job() -> str:
        record = json.loads(lines.get(timeout=30))
        assert record["kind"] == "job_added", record
        return str(record["job_id"])

    try:
        wait_until(lambda: len(connections_of(name)) == 2, 30, "the monitor never connected")
        with open_store(pg_url) as store, open_store(pg_url) as late_writer:
            with late_writer.connection.transaction():  # commits at the end of the block
                late_writer.add_job("task", job_id="late")
                store.add_job("task", job_id="quick")
                assert next_job() == "quick"
                terminate(connections_of(name))  # its queries' and its LISTEN's
            store.add_job("task", job_id="after")
            printed = [next_job()]
            while printed[-1] != "after":
                printed.append(next_job())
        assert printed == ["late", "after"]
        assert monitor.poll() is None
    finally:
        monitor.send_signal(signal.SIGINT)
        rest, err = monitor.communicate(timeout=30)
    assert monitor.returncode == 0, err
    assert rest == "", "printed twice or more than was written"
    # No machine runs in this schema: the monitor notes that first (test_monitor.py), then
    # says it lost the database and that it answers again.
    note, *notices = err.splitlines()
    assert note.startswith("smc monitor: note: no machine has run with "), err
    assert [line.split(":")[0] for line in notices] == ["smc monitor"] * 2, err
