"""The engine's hot path stays responsive and quiet with real ``smc run`` workers.

- a worker on a full queue of instant jobs (its actions never wait) still stops at once on
  SIGTERM, releasing its current job, instead of draining the queue first;
- the registry is written on a schedule rather than on every transition, yet shows the state
  a machine is in within about a second, even when that state's action runs for a long time;
- the routine of every job (claims, completions, transitions between its states) is logged at
  DEBUG, not INFO (the monitor carries it); start and stop stay at INFO.
"""

from __future__ import annotations

import re
import signal
import time

import pytest

from tests.support.harness import Runner, wait_until
from tests.support.machines import instant_worker

WORKER = instant_worker("hot_worker")

JOBS = 20_000


@pytest.mark.slow
def test_sigterm_stops_a_worker_on_a_full_queue_of_instant_jobs(runner: Runner) -> None:
    (runner.cwd / "w.yaml").write_text(WORKER)
    with runner.store() as store:
        for number in range(JOBS):
            store.add_job("task", {"n": number}, job_id=f"job-{number:05d}")
    worker = runner.start("run", "w.yaml")

    def completed() -> int:
        with runner.store() as store:
            return store.queue_counts()["completed"]

    wait_until(lambda: completed() >= 300, 30, worker.output)
    signalled = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0, worker.output()
    took = time.monotonic() - signalled
    with runner.store() as store:
        counts = store.queue_counts()
        jobs = store.list_jobs(limit=JOBS + 1)
        machine = store.get_machine("hot_worker")
    # It stopped promptly instead of running the remaining jobs first (on a full queue the
    # actions never wait, so without a turn for the event loop the signal waits for the queue).
    assert counts["pending"] > JOBS // 4, (counts, took)
    assert took < 3.0, (counts, took)
    # Nothing lost or half-done: each job completed once, or pending and never counted.
    assert counts["processing"] == 0 and counts["completed"] + counts["pending"] == JOBS
    assert {job.attempts for job in jobs if job.status == "completed"} == {1}
    assert {job.attempts for job in jobs if job.status == "pending"} == {0}
    assert machine is not None and machine.status == "stopped"
    # The routine of each job is not logged at INFO; start and stop are.
    output = worker.output()
    assert "Traceback" not in output
    info = [line.split("] ", 1)[1] for line in output.splitlines() if " INFO " in line]
    assert info[0].startswith("started hot_worker in state waiting (pid "), output
    assert info[1] == "stopping (signal received)", output
    assert re.fullmatch(r"stopped in state \w+", info[-1]), output
    # in between, at most the release of the job it held when the signal came
    assert all(re.fullmatch(r"released job job-\d+ back to the queue", line) for line in info[2:-1])
    assert len(info) <= 4, output


DEFERRED = """
initial_state: a
metadata: {machine_name: deferred}
transitions:
  - {from: a, to: b, event: go}
  - {from: b, to: c, event: go}
  - {from: c, to: d, event: go}
  - {from: d, to: slow, event: go}
  - {from: slow, to: done, event: wake_up}
actions:
  a:
    - {type: set_context, key: x, value: 1, success: go}
  b:
    - {type: set_context, key: x, value: 2, success: go}
  c:
    - {type: set_context, key: x, value: 3, success: go}
  d:
    - {type: set_context, key: x, value: 4, success: go}
  slow:
    - {type: bash, command: "touch entered-slow"}
    - {type: sleep, duration: 4}
"""


@pytest.mark.slow
def test_registry_shows_the_state_of_a_long_action_within_a_second(runner: Runner) -> None:
    # a -> b -> c -> d -> slow happen within a millisecond: only the first is written at once,
    # the rest are due half a second after it. `slow` must show while its sleep runs.
    (runner.cwd / "m.yaml").write_text(DEFERRED)
    machine = runner.start("run", "m.yaml")
    wait_until(lambda: (runner.cwd / "entered-slow").exists(), 20, machine.output)
    entered = time.monotonic()

    def registered_state() -> str | None:
        with runner.store() as store:
            row = store.get_machine("deferred")
        return None if row is None else row.state

    wait_until(lambda: registered_state() == "slow", 1.5, lambda: str(registered_state()))
    assert time.monotonic() - entered < 1.5
    assert machine.wait(15) == 0, machine.output()
    with runner.store() as store:
        row = store.get_machine("deferred")
    assert row is not None and (row.state, row.status) == ("done", "stopped")
