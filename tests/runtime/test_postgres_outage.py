"""A worker whose PostgreSQL server goes away for a while (every connection closed, new ones
refused, as a host that restarts): a real ``smc run`` reaching the test server through a TCP
forwarder that the test cuts and restores."""

from __future__ import annotations

import pytest

from smc.runtime.store import open_store
from tests.support.backends import CuttableForwarder, postgres_schema_url
from tests.support.harness import Runner, wait_until
from tests.support.machines import queue_worker

pytestmark = pytest.mark.postgres


def test_a_worker_says_once_that_it_cannot_listen_while_the_server_is_away(
    runner: Runner,
) -> None:
    """The worker tries to listen for wake-ups again every second while the server is away;
    it said so every second too (a line a second for as long as an outage lasts). Now once,
    then at most every 30 s; it still listens again, and takes jobs, once the server is
    back."""
    forwarder = CuttableForwarder()
    try:
        with postgres_schema_url() as url:
            runner.env["SMC_DB"] = url.replace("127.0.0.1:5432", f"127.0.0.1:{forwarder.port}")
            (runner.cwd / "w.yaml").write_text(queue_worker("w", wait=1))
            proc = runner.start("run", "w.yaml")

            # Started: listening too (a server away while a worker starts is its exit 1).
            wait_until(lambda: "started w in state" in proc.output(), 30, proc.output)
            forwarder.cut()
            # Its store's connection, its heartbeat's and its listener's each try again about
            # once a second: some seconds of an outage.
            wait_until(lambda: forwarder.refused >= 15, 60, proc.output)
            forwarder.restore()
            wait_until(
                lambda: "wake-ups for events and new jobs restored" in proc.output(),
                30,
                proc.output,
            )
            with open_store(url) as store:
                store.add_job("task", job_id="after")

            def completed() -> bool:
                with open_store(url) as store:
                    job = store.get_job("after")
                return job is not None and job.status == "completed"

            wait_until(completed, 30, proc.output)
            output = proc.output()
            assert output.count("no wake-ups for events and new jobs yet") == 1, output
            assert "Traceback" not in output
            proc.signal(2)
            assert proc.wait(30) == 0, proc.output()
    finally:
        forwarder.close()
