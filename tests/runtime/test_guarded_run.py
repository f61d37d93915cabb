"""Guarded machines run by the runtime (docs/runtime.md, "Guards at run time"): the class's
guards decide which transition an event takes, so the engine asks the class which steps it
took (``fire_steps``) and runs their actions; an event whose guards hold for none of its
transitions is dropped and the machine stays; a guard that raises drops its event and the
worker goes on; ``job.<field>`` reads the current job's data; placeholders read the typed
context. The retry contract of ``examples/execution/task_retry.yaml`` runs end to end in a
real ``smc run`` process against a real SQLite file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smc.runtime.store import open_store
from tests.support import PROJECT_ROOT
from tests.support.harness import Runner, compile_machine, run_engine, wait_until

RETRY_EXAMPLE = PROJECT_ROOT / "examples" / "execution" / "task_retry.yaml"


# --- the retry contract, by `smc run` ----------------------------------------------------------


def test_the_retry_contract_retries_a_failing_task_until_it_passes(runner: Runner) -> None:
    target = runner.cwd / "target.txt"
    target.write_text("", encoding="utf-8")
    runner.run("jobs", "add", "--type", "task", "--id", "t1", "--data", '{"path": "target.txt"}')
    result = runner.run("run", str(RETRY_EXAMPLE), "--log-dir", "logs", timeout=60)
    # The check passes on its third run: two failures, two retries (attempts 1 and 2 < 3).
    assert target.read_text(encoding="utf-8").splitlines() == ["run", "run", "run"]
    assert "reached final state COMPLETED" in result.stderr
    with runner.store() as store:
        job = store.get_job("t1")
    assert job is not None and job.status == "completed"
    # The typed context's field reached the placeholder, as the last step left it.
    assert job.result == {"attempts": 2}
    status = runner.run("status").stdout
    assert any(line.split()[:2] == ["task_retry", "COMPLETED"] for line in status.splitlines())


def test_the_retry_contract_gives_up_after_max_attempts(runner: Runner) -> None:
    target = runner.cwd / "target.txt"
    target.write_text("", encoding="utf-8")
    runner.run("jobs", "add", "--type", "task", "--id", "t1", "--data", '{"path": "target.txt"}')
    context = json.dumps({"max_attempts": 2})
    result = runner.run(
        "run", str(RETRY_EXAMPLE), "--initial-context", context, "--log-dir", "logs", timeout=60
    )
    # Two runs, both failing: attempts 1 < 2 retries, attempts 2 does not (the else edge).
    assert target.read_text(encoding="utf-8").splitlines() == ["run", "run"]
    assert "reached final state DEAD" in result.stderr
    with runner.store() as store:
        job = store.get_job("t1")
    assert job is not None and job.status == "failed"
    assert job.last_error is not None and job.last_error.startswith("gave up after 2 attempts")
    status = runner.run("status").stdout
    assert any(line.split()[:2] == ["task_retry", "DEAD"] for line in status.splitlines())


# --- guards on inbound events, job data, failing guards ---------------------------------------

GATE = """
initial_state: closed
metadata: {machine_name: gate}
context:
  opened: {type: integer, default: 0}
events:
  push:
    payload: {type: object, properties: {force: {type: integer}}, required: [force]}
  stop: null
transitions:
  - from: closed
    to: open
    event: push
    when: "payload.force > 10"
    actions: [{type: assign, location: opened, expr: "opened + 1"}]
  - {from: open, to: closed, event: push, when: "payload.force < 0"}
  - {from: "*", to: done, event: stop}
actions:
  open:
    - {type: add_to_list, list_key: seen, value: "open {opened}"}
"""


def test_an_inbound_event_whose_guards_all_fail_is_dropped_and_the_next_one_taken(
    tmp_path: Path,
) -> None:
    machine = compile_machine(GATE, tmp_path)
    database = tmp_path / "smc.db"
    with open_store(database) as store:
        for force in (3, 20, 5, -1, 11):
            store.send_event("gate", "push", {"force": force})
        store.send_event("gate", "stop")
    engine = run_engine(machine, database)
    # force 3: no guard holds in closed (dropped); 20 opens; 5: none holds in open; -1
    # closes; 11 opens again. The entry actions ran once per opening, after the assign.
    assert engine.context["seen"] == ["open 1", "open 2"]
    assert engine.machine.context.opened == 2
    assert str(engine.machine.state) == "done"
    with open_store(database) as store:
        assert {event.status for event in store.list_events("gate")} == {"done"}


SIZER = """
initial_state: waiting
metadata: {machine_name: sizer}
jobs:
  task:
    data:
      type: object
      properties: {size: {type: integer}, name: {type: string}}
      required: [size, name]
events: [new_job, no_jobs, sorted]
transitions:
  - {from: waiting, to: big, event: new_job, when: "job.size >= 100"}
  - {from: waiting, to: small, event: new_job}
  - {from: waiting, to: done, event: no_jobs}
  - {from: big, to: waiting, event: sorted}
  - {from: small, to: waiting, event: sorted}
actions:
  waiting:
    - {type: check_database_queue, job_type: task, wait: 0}
  big:
    - {type: add_to_list, list_key: big, value: "{name}", success: sorted}
  small:
    - {type: add_to_list, list_key: small, value: "{name}", success: sorted}
"""


def test_a_guard_reads_the_claimed_jobs_data(tmp_path: Path) -> None:
    machine = compile_machine(SIZER, tmp_path)
    database = tmp_path / "smc.db"
    with open_store(database) as store:
        for name, size in (("a", 5), ("b", 500), ("c", 100), ("d", 99)):
            store.add_job("task", {"size": size, "name": name}, job_id=name, priority=5)
    engine = run_engine(machine, database)
    assert engine.context["big"] == ["b", "c"]
    assert engine.context["small"] == ["a", "d"]


MULTIPLIER = """
initial_state: waiting
metadata: {machine_name: multiplier}
jobs:
  task:
    data:
      type: object
      properties: {size: {}, count: {}, name: {type: string}}
      required: [size, count, name]
events: [new_job, no_jobs, sorted]
transitions:
  - {from: waiting, to: six, event: new_job, when: "job.size * job.count == 6"}
  - {from: waiting, to: other, event: new_job}
  - {from: waiting, to: done, event: no_jobs}
  - {from: six, to: waiting, event: sorted}
  - {from: other, to: waiting, event: sorted}
actions:
  waiting:
    - {type: check_database_queue, job_type: task, wait: 0}
  six:
    - {type: add_to_list, list_key: six, value: "{name}", success: sorted}
  other:
    - {type: add_to_list, list_key: other, value: "{name}", success: sorted}
"""


def test_a_job_whose_data_breaks_the_new_job_guard_fails_and_the_worker_takes_the_next(
    tmp_path: Path,
) -> None:
    """``size`` and ``count`` have no type, so the checker cannot tell that ``*`` gets a
    string: the generated guard checks for numbers where it runs (a string was repeated
    ``count`` times: ``count`` from job data could ask for gigabytes). Then the worker held
    the job its guard raised on for good, its lease renewed, and took no other."""
    machine = compile_machine(MULTIPLIER, tmp_path)
    database = tmp_path / "smc.db"
    with open_store(database) as store:
        for name, size, count in (("a", 2, 3), ("b", "ab", 3), ("c", 1, 1)):
            data = {"size": size, "count": count, "name": name}
            store.add_job("task", data, job_id=name, max_attempts=1)
    engine = run_engine(machine, database)
    assert engine.context["six"] == ["a"]
    assert engine.context["other"] == ["c"]
    with open_store(database) as store:
        job = store.get_job("b")
        assert job is not None and job.status == "failed" and job.attempts == 1
        assert job.last_error is not None and "TypeError" in job.last_error
        assert {j.status for j in store.list_jobs()} == {"completed", "failed"}


PICKY = """
initial_state: waiting
metadata: {machine_name: picky}
jobs:
  task:
    data: {type: object, properties: {size: {type: integer}}, required: [size]}
events: [new_job, no_jobs, sorted]
transitions:
  - {from: waiting, to: big, event: new_job, when: "job.size >= 100"}
  - {from: big, to: waiting, event: sorted}
  - {from: waiting, to: done, event: no_jobs}
actions:
  waiting:
    - {type: check_database_queue, job_type: task, wait: 0}
  big:
    - {type: add_to_list, list_key: big, value: "{size}", success: sorted}
"""


def test_a_claimed_job_no_transition_takes_fails_and_the_worker_takes_the_next(
    tmp_path: Path,
) -> None:
    """No guard of ``new_job`` holds for a small job. The worker held it for good and took
    no other; giving it back unfailed (a first fix) stopped every worker in turn, each
    claiming it and waiting. It is failed, to be retried with backoff, and the worker goes on
    to the next job."""
    machine = compile_machine(PICKY, tmp_path)
    database = tmp_path / "smc.db"
    with open_store(database) as store:
        store.add_job("task", {"size": 5}, job_id="small", priority=1)
        store.add_job("task", {"size": 500}, job_id="big", priority=5)
    engine = run_engine(machine, database)
    assert engine.context["big"] == [500]
    with open_store(database) as store:
        small = store.get_job("small")
        assert small is not None and small.status == "pending" and small.attempts == 1
        assert small.last_error is not None and "takes no transition" in small.last_error
        big = store.get_job("big")
        assert big is not None and big.status == "completed"


NAMED = """
initial_state: idle
metadata: {machine_name: named_gate}
events: [go, stop]
transitions:
  - {from: idle, to: busy, event: go, guard: has_capacity}
  - {from: busy, to: idle, event: go}
  - {from: "*", to: done, event: stop}
actions:
  busy:
    - {type: add_to_list, list_key: seen, value: busy}
"""


def test_a_guard_that_raises_drops_its_event_and_the_worker_goes_on(tmp_path: Path) -> None:
    base = compile_machine(NAMED, tmp_path)
    calls: list[int] = []

    class Flaky(base):  # type: ignore[misc, valid-type]
        def has_capacity(self) -> bool:
            calls.append(1)
            if len(calls) == 1:
                raise LookupError("capacity service down")
            return True

    database = tmp_path / "smc.db"
    with open_store(database) as store:
        for event in ("go", "go", "stop"):
            store.send_event("named_gate", event)
    engine = run_engine(Flaky, database)
    # The first go raised in the guard: dropped, still idle; the second found capacity.
    assert len(calls) == 2
    assert engine.context["seen"] == ["busy"]
    assert str(engine.machine.state) == "done"


# --- the class's own actions: if, log, send ------------------------------------------------

PINGER = """
initial_state: idle
metadata: {machine_name: pinger}
context:
  pings: {type: integer, default: 0}
events:
  go: null
  ping: null
  stop: null
transitions:
  - from: idle
    to: counting
    event: go
    actions:
      - {type: send, event: ping}
  - from: counting
    to: counting
    event: ping
    actions:
      - {type: assign, location: pings, expr: "pings + 1"}
      - type: if
        when: "pings < 3"
        then: [{type: send, event: ping, delay: 0.05}]
        else: [{type: log, label: done pinging, expr: "pings"}, {type: send, event: stop}]
  - {from: "*", to: done, event: stop}
actions:
  counting:
    - {type: add_to_list, list_key: seen, value: "{pings}"}
"""


def test_sends_reach_the_machine_through_the_event_store_and_if_blocks_choose(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    machine = compile_machine(PINGER, tmp_path)
    database = tmp_path / "smc.db"
    with open_store(database) as store:
        store.send_event("pinger", "go")
    with caplog.at_level("INFO", logger="smc.machine.pinger"):
        engine = run_engine(machine, database)
    # go sends ping (at once); pings 1 and 2 send another after 50 ms; the third logs and
    # sends stop. Each ping re-entered counting, whose entry action saw the new count.
    assert engine.machine.context.pings == 3
    assert engine.context["seen"] == [0, 1, 2, 3]
    assert str(engine.machine.state) == "done"
    assert "done pinging: 3" in [record.getMessage() for record in caplog.records]
    with open_store(database) as store:
        events = sorted(store.list_events("pinger"), key=lambda e: e.id)
        sent = [(e.event_type, e.source, e.status) for e in events]
    assert sent == [
        ("go", None, "done"),
        *[("ping", "pinger", "done")] * 3,
        ("stop", "pinger", "done"),
    ]


# --- named guards under `smc run` -------------------------------------------------------------

NAMED_RUN = """
initial_state: idle
metadata: {machine_name: named_run}
events: [go, stop]
transitions:
  - {from: idle, to: busy, event: go, guard: has_capacity}
  - {from: busy, to: done, event: stop}
"""


def test_smc_run_loads_a_named_guard_from_the_actions_dir(runner: Runner) -> None:
    (runner.cwd / "named.yaml").write_text(NAMED_RUN, encoding="utf-8")
    actions = runner.cwd / "actions"
    actions.mkdir()
    # The guard reads a file the test writes: false first (go is dropped), then true.
    (actions / "has_capacity.py").write_text(
        "from pathlib import Path\n\n\n"
        "def has_capacity(machine):\n"
        "    return Path('capacity').exists()\n",
        encoding="utf-8",
    )
    runner.run("send", "named_run", "go")
    proc = runner.start("run", "named.yaml", "--log-dir", "logs")
    runner.wait_running(proc, "named_run")
    wait_until(lambda: _event_statuses(runner, "named_run") == ["done"], 20, "go taken")
    (runner.cwd / "capacity").write_text("yes", encoding="utf-8")
    runner.run("send", "named_run", "go")
    runner.run("send", "named_run", "stop")
    assert proc.wait(timeout=30) == 0, proc.output()
    assert "go in idle: no guard holds, dropped" in proc.output()
    assert "reached final state done" in proc.output()


def test_smc_run_refuses_a_named_guard_nobody_wrote(runner: Runner) -> None:
    (runner.cwd / "named.yaml").write_text(NAMED_RUN, encoding="utf-8")
    result = runner.run("run", "named.yaml", "--log-dir", "logs", check=False)
    assert result.returncode == 2
    assert "named guard 'has_capacity' is not written" in result.stderr
    assert "Traceback" not in result.stderr


def _event_statuses(runner: Runner, machine: str) -> list[str]:
    with runner.store() as store:
        return [event.status for event in store.list_events(machine)]


# --- an SCXML document under `smc run` --------------------------------------------------------

PING_SCXML = """<scxml xmlns="http://www.w3.org/2005/07/scxml" initial="s0" version="1.0"
    datamodel="python">
  <datamodel><data id="n" expr="0"/></datamodel>
  <state id="s0">
    <onentry><raise event="go"/></onentry>
    <transition event="go" target="s1"><assign location="n" expr="n + 1"/></transition>
  </state>
  <state id="s1">
    <onentry><send event="tick" delay="0.1s"/></onentry>
    <transition event="tick" cond="n == 1" target="pass"/>
    <transition event="tick" target="fail"/>
  </state>
  <final id="pass"/>
  <final id="fail"/>
</scxml>
"""


def test_smc_run_runs_an_scxml_document_to_its_final_state(runner: Runner) -> None:
    (runner.cwd / "ping.scxml").write_text(PING_SCXML, encoding="utf-8")
    result = runner.run("run", "ping.scxml", "--log-dir", "logs", timeout=60)
    # raise go (assign n = 1) -> s1, whose delayed send comes back after 0.1 s: the guard
    # holds, the machine stops in the top-level final state pass.
    assert "s1 --tick--> pass" in result.stderr
    assert "reached final state pass" in result.stderr
    status = runner.run("status").stdout
    assert any(line.split()[:2] == ["ping", "pass"] for line in status.splitlines())
    with runner.store() as store:
        events = [(e.event_type, e.source, e.status) for e in store.list_events("ping")]
    assert events == [("tick", "ping", "done")]


COMPUTED = """
initial_state: a
metadata: {machine_name: computed}
context:
  base: {type: integer, default: 2}
  limit: {type: integer, expr: "base * 10"}
events: [go]
transitions:
  - {from: a, to: done, event: go, when: "limit == 20"}
actions:
  a:
    - {type: add_to_list, list_key: seen, value: "{limit}", success: go}
"""


def test_the_worker_computes_computed_context_fields(tmp_path: Path) -> None:
    machine = compile_machine(COMPUTED, tmp_path)
    engine = run_engine(machine, tmp_path / "smc.db")
    # No --initial-context: the class made its context, limit computed from base.
    assert engine.machine.context.limit == 20
    assert engine.context["seen"] == [20]
    assert str(engine.machine.state) == "done"
