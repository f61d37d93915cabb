"""A worker cut off from its PostgreSQL server by a network partition: packets dropped, no
connection closed, as when the server's host loses power or a cable is pulled (where
test_postgres_outage.py's server closes its connections). The worker runs in a network
namespace of its own and reaches the test server through a veth pair and a forwarder; the
test takes the link down, so that nothing the worker sends arrives and nothing answers it,
then up again (``ip netns`` and ``ip link``: root, as the test machines are)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from smc.runtime.store import open_store
from tests.support.backends import CuttableForwarder, postgres_schema_url
from tests.support.harness import Runner, wait_until
from tests.support.machines import queue_worker

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.netns]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def network_namespace() -> Iterator[tuple[str, str, str]]:
    """A new network namespace linked to this one by a veth pair: its name, this side's
    interface and this side's address."""
    tag = str(os.getpid() % 100_000)
    namespace, outside, inside = f"smcp{tag}", f"smch{tag}", f"smcn{tag}"
    subnet = f"10.231.{os.getpid() % 250 + 1}"
    _ip("netns", "add", namespace)
    try:
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", namespace)
        _ip("addr", "add", f"{subnet}.1/30", "dev", outside)
        _ip("link", "set", outside, "up")
        _ip("-n", namespace, "addr", "add", f"{subnet}.2/30", "dev", inside)
        _ip("-n", namespace, "link", "set", inside, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        yield namespace, outside, f"{subnet}.1"
    finally:
        subprocess.run(["ip", "link", "del", outside], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)


def test_a_worker_notices_a_partition_within_a_minute_and_goes_on_after_it(
    runner: Runner,
) -> None:
    """With the kernel's TCP defaults a worker waiting on a silent server learned of it
    after about 15 minutes (a statement's answer awaited), or two hours (its idle wake-up
    connection). smc's own keepalive and unacknowledged-data limits (pgconnect.TCP_DEFAULTS,
    none of them in the URL here) end such a connection in under a minute; once the link is
    back, the worker reconnects and runs the job added meanwhile, once."""
    forwarder: CuttableForwarder | None = None
    with network_namespace() as (namespace, outside, address), postgres_schema_url() as url:
        forwarder = CuttableForwarder(address)
        try:
            runner.env["SMC_DB"] = url.replace("127.0.0.1:5432", f"{address}:{forwarder.port}")
            (runner.cwd / "w.yaml").write_text(queue_worker("w", wait=1))
            proc = runner.start("run", "w.yaml", prefix=["ip", "netns", "exec", namespace])
            wait_until(lambda: "started w in state" in proc.output(), 30, proc.output)
            done = runner.cwd / "done.log"
            with open_store(url) as store:
                store.add_job("task", job_id="before")
            wait_until(lambda: done.exists() and "before" in done.read_text(), 30, proc.output)

            _ip("link", "set", outside, "down")  # the partition: packets go nowhere
            cut = time.monotonic()
            with open_store(url) as store:
                store.add_job("task", job_id="during")
            heard = len(proc.output())
            # Its statement (a claim, a heartbeat: whichever was on its way) fails, and it
            # says it will try again.
            wait_until(lambda: "(will retry)" in proc.output()[heard:], 90, proc.output)
            noticed = time.monotonic() - cut
            assert noticed < 60, (noticed, proc.output())
            _ip("link", "set", outside, "up")

            def completed() -> bool:
                with open_store(url) as store:
                    job = store.get_job("during")
                return job is not None and job.status == "completed"

            wait_until(completed, 90, proc.output)
            assert done.read_text().split() == ["before", "during"], proc.output()
            output = proc.output()
            assert "Traceback" not in output, output
            proc.signal(2)
            assert proc.wait(60) == 0, proc.output()
        finally:
            forwarder.close()
