"""Every built-in action, run by the real engine against a real SQLite store: one test per
action. All but ``start_fsm`` run in one machine, ``actions_demo``, run once for the module
(the ``demo`` fixture); each test checks what its action left behind. ``start_fsm`` starts a
real child ``smc run`` process, so its test runs a parent machine through the ``runner``."""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from smc.runtime.store import EventRow, Job, MachineRow, open_store
from tests.support.harness import Runner, compile_machine, run_engine, wait_until

MACHINE = """
initial_state: start
metadata: {machine_name: actions_demo}
transitions:
  - {from: start, to: lists, event: go}
  - {from: lists, to: shell, event: popped}
  - {from: shell, to: mapped, event: failed_as_expected}
  - {from: mapped, to: timed, event: exit_three}
  - {from: timed, to: queue, event: timed_out}
  - {from: queue, to: work, event: new_job}
  - {from: work, to: pending, event: success}
  - {from: pending, to: claim, event: jobs_found}
  - {from: claim, to: held, event: claimed}
  - {from: held, to: done, event: all_jobs_complete}
actions:
  start:
    - {type: set_context, key: greeting, value: hello}
    - {type: log, message: "{greeting} from {machine_name}", level: success}
    - {type: activity_log, message: "activity {greeting}"}
    - {type: sleep, duration: 0.01}
    - {type: set_context, key: nums, value: [1]}
    - {type: add_to_list, list_key: nums, value: "{count}"}
    - {type: set_context, key: unused, value: x, success: go}
  lists:
    - {type: pop_from_list, list_key: nums, store_as: first, success: popped}
  shell:
    - {type: bash, command: "echo out; echo err >&2; exit 1", error: failed_as_expected}
  mapped:
    - {type: bash, command: "exit 3", error_mappings: {"3": exit_three}}
  timed:
    - {type: bash, command: "sleep 5", timeout: 0.2, error: timed_out}
  queue:
    - {type: check_database_queue, job_type: t1, wait: 2}
  work:
    - type: send_event
      target_machine: other
      event_type: hello
      payload: {job: "{id}", value: "{value}", missing: "{nope}", text: "v={value}"}
    - {type: complete_job, result: {ok: true}}
  pending:
    - {type: get_pending_jobs, job_type: t2, store_as: pend}
  claim:
    - {type: pop_from_list, list_key: pend, store_as: picked}
    - {type: claim_job, job_id: "{picked.job_id}"}
  held:
    - {type: fail_job, job_id: "{picked.job_id}", reason: given up, retry: "false"}
    - {type: set_context, key: tracked, value: ["{picked.job_id}"]}
    - {type: wait_for_jobs, tracked_jobs_key: tracked}
  done:
    - {type: log, message: finished}
"""


@dataclass(frozen=True)
class DemoRun:
    """What ``actions_demo`` left behind: its final context, the two jobs it worked on, the
    event it sent, its registry row and its log records (level, message)."""

    context: dict[str, Any]
    completed: Job | None
    failed: Job | None
    events: list[EventRow]
    machine_row: MachineRow | None
    records: list[tuple[int, str]]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelno, record.getMessage()))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """``actions_demo`` run to its final state, once for all the tests of this module."""
    tmp_path = tmp_path_factory.mktemp("actions_demo")
    database = tmp_path / "smc.db"
    with open_store(database) as store:
        first = store.add_job("t1", {"value": 7}, job_id="one")
        second = store.add_job("t2", {"n": 2}, job_id="two")
    machine = compile_machine(MACHINE, tmp_path)
    records = _Records()
    logger = logging.getLogger("smc.machine.actions_demo")
    level = logger.level
    logger.addHandler(records)
    logger.setLevel(logging.DEBUG)  # in this process nothing configured logging: WARNING
    try:
        engine = run_engine(machine, database, initial_context={"count": 3})
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)
    with open_store(database) as store:
        return DemoRun(
            context=engine.context,
            completed=store.get_job(first.id),
            failed=store.get_job(second.id),
            events=store.list_events(target="other"),
            machine_row=store.get_machine("actions_demo"),
            records=records.records,
        )


def test_the_demo_runs_every_action_to_its_final_state(demo: DemoRun) -> None:
    machine_row = demo.machine_row
    assert machine_row is not None and machine_row.status == "stopped"
    assert machine_row.state == "done"
    assert demo.context["current_state"] == "done"


def test_set_context(demo: DemoRun) -> None:
    assert demo.context["greeting"] == "hello"


def test_log(demo: DemoRun) -> None:
    # level success is statemachine-engine's name for INFO; placeholders are interpolated
    assert (logging.INFO, "hello from actions_demo") in demo.records
    assert (logging.INFO, "finished") in demo.records


def test_activity_log(demo: DemoRun) -> None:
    assert (logging.INFO, "activity hello") in demo.records


def test_sleep(demo: DemoRun) -> None:
    # the start state's actions after the sleep ran
    assert demo.context["unused"] == "x"


def test_add_to_list(demo: DemoRun) -> None:
    # a single placeholder keeps its type: {count} added 3, not "3" ([1, 3], then 1 popped)
    assert demo.context["nums"] == [3]


def test_pop_from_list(demo: DemoRun) -> None:
    assert demo.context["first"] == 1


def test_bash(demo: DemoRun) -> None:
    # error event, exit-code mapping, timeout, failure details in the context
    assert demo.context["last_error_action"] == "bash"
    assert "timed out" in demo.context["last_error"]


def test_check_database_queue(demo: DemoRun) -> None:
    # check_database_queue claimed `one` (and made its data the context send_event used)
    (event,) = demo.events
    assert event.job_id == "one"


def test_complete_job(demo: DemoRun) -> None:
    done = demo.completed
    assert done is not None and done.status == "completed" and done.result == {"ok": True}


def test_send_event(demo: DemoRun) -> None:
    # payload interpolated, an unresolved lone placeholder becomes None
    (event,) = demo.events
    assert event.event_type == "hello" and event.source == "actions_demo"
    assert event.payload == {"job": "one", "value": 7, "missing": None, "text": "v=7"}


def test_get_pending_jobs(demo: DemoRun) -> None:
    # it listed `two`, the pending t2 job, which claim_job and fail_job then took by its id
    assert demo.context["picked"]["job_id"] == "two"
    assert demo.context["pend"] == []


def test_claim_job(demo: DemoRun) -> None:
    failed = demo.failed
    assert failed is not None and failed.claimed_by is not None


def test_fail_job(demo: DemoRun) -> None:
    # `retry: "false"` (quoted, or a placeholder's text) is false: bool() took it as true
    failed = demo.failed
    assert failed is not None and failed.status == "failed"
    assert failed.last_error == "given up"


def test_wait_for_jobs(demo: DemoRun) -> None:
    # wait_for_jobs sorted the tracked job
    assert demo.context["failed_jobs"] == ["two"] and demo.context["completed_jobs"] == []
    assert demo.context["pending_jobs"] == []


PARENT = """
initial_state: spawning
metadata: {machine_name: parent}
transitions:
  - {from: spawning, to: done, event: spawned}
actions:
  spawning:
    - type: start_fsm
      yaml_path: child.yaml
      machine_name: child
      context_vars: [greeting]
      store_pid: true
      success: spawned
  done:
    - {type: log, message: "spawned {spawned_pids}"}
"""

CHILD = """
initial_state: idle
metadata: {machine_name: child}
states: [idle]
actions:
  idle:
    - {type: bash, command: "printf '%s' {greeting} > child.txt"}
"""


def test_start_fsm(runner: Runner) -> None:
    (runner.cwd / "parent.yaml").write_text(PARENT)
    (runner.cwd / "child.yaml").write_text(CHILD)
    parent = runner.run("run", "parent.yaml", "--initial-context", '{"greeting": "hi"}')
    # the child got the context_vars as its initial context, and ran to its final state
    child_file = runner.cwd / "child.txt"
    wait_until(child_file.exists, 20, lambda: parent.stderr)
    wait_until(lambda: child_file.read_text() == "hi", 5, lambda: child_file.read_text())

    def child_stopped() -> bool:
        with runner.store() as store:
            row = store.get_machine("child")
        return row is not None and row.status == "stopped"

    wait_until(child_stopped, 20, lambda: parent.stderr)
    with runner.store() as store:
        child = store.get_machine("child")
    # store_pid: the pid start_fsm recorded is the child's
    assert child is not None and f"spawned [{child.pid}]" in parent.stderr, parent.stderr


GIT_CHECKPOINT = """
initial_state: start
metadata: {machine_name: checkpointer}
transitions:
  - {from: start, to: again, event: checkpointed}
  - {from: again, to: missing_repo, event: checkpointed}
  - {from: missing_repo, to: no_run_id, event: error}
  - {from: no_run_id, to: done, event: error}
  - {from: missing_repo, to: wrong, event: checkpointed}
  - {from: no_run_id, to: wrong, event: checkpointed}
  - {from: start, to: wrong, event: error}
  - {from: again, to: wrong, event: error}
actions:
  start:
    - {type: git_checkpoint, name: ship-complete, run_id: "{run}", repository: "{repo}"}
  again:
    - {type: git_checkpoint, name: ship-complete, run_id: "{run}", repository: "{repo}"}
  missing_repo:
    - {type: git_checkpoint, name: ship-complete, run_id: "{run}", repository: "{nowhere}"}
  no_run_id:
    - {type: git_checkpoint, name: ship-complete, repository: "{repo}"}
"""


def test_git_checkpoint(tmp_path: Path) -> None:
    """Committed once (the second run of the action finds it), git's failure and a missing
    run id are the error event; the run id, a value of the context, reaches git as one
    argument (quotes and a ``;`` stay text)."""
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "config", "user.email", "t@t"], check=True)
    subprocess.run(["git", "-C", str(repo), "config", "user.name", "t"], check=True)
    machine = compile_machine(GIT_CHECKPOINT, tmp_path)
    run_id = "r1'; touch pwned; echo '"
    engine = run_engine(
        machine,
        tmp_path / "smc.db",
        initial_context={"repo": str(repo), "run": run_id, "nowhere": str(tmp_path / "no")},
    )
    assert engine.context["current_state"] == "done"
    log = subprocess.run(
        ["git", "-C", str(repo), "log", "--format=%s"], capture_output=True, text=True
    )
    assert log.stdout.splitlines() == [f"ship-complete: {run_id}"]
    assert not list(tmp_path.rglob("pwned"))


LISTING = """
initial_state: queue
metadata: {machine_name: lister}
transitions:
  - {from: queue, to: listing, event: new_job}
  - {from: queue, to: done, event: no_jobs}
  - {from: listing, to: queue, event: jobs_found}
  - {from: listing, to: queue, event: no_jobs}
  - {from: listing, to: queue, event: error}
actions:
  queue:
    - {type: check_database_queue, job_type: list, wait: 0.2}
  listing:
    - {type: get_pending_jobs, job_type: "{types}", limit: "{limit}", success: jobs_found,
       empty: no_jobs}
"""


def test_values_a_job_fills_into_get_pending_jobs_fail_the_job_not_the_worker(
    tmp_path: Path,
) -> None:
    """``limit: -1`` reached PostgreSQL, and a list for ``job_type`` SQLite's binding: both
    refused as a database fault, which the worker took for a passing one and retried every
    second for good, holding the job (given back unfailed at a stop)."""
    database = tmp_path / "smc.db"
    with open_store(database) as store:
        for job_id, data in (
            ("negative", {"types": "x", "limit": -1}),
            ("a-list", {"types": ["a", "b"], "limit": 1}),
            ("a-word", {"types": "x", "limit": "many"}),
            ("a-flag", {"types": "x", "limit": True}),
            ("fine", {"types": "list", "limit": " 5 "}),
        ):
            store.add_job("list", data, job_id=job_id, max_attempts=1)
    run_engine(compile_machine(LISTING, tmp_path), database)
    with open_store(database) as store:
        jobs = {job.id: job for job in store.list_jobs()}
    assert {job_id: job.status for job_id, job in jobs.items()} == {
        "negative": "failed",
        "a-list": "failed",
        "a-word": "failed",
        "a-flag": "failed",
        "fine": "completed",
    }
    assert "limit must be a whole number, 0 or more (got -1)" in str(jobs["negative"].last_error)
    assert "job_type must be text, not an array" in str(jobs["a-list"].last_error)
    assert "limit must be a whole number (got 'many')" in str(jobs["a-word"].last_error)


OUTDIR = """
initial_state: queue
metadata: {machine_name: outdir}
transitions:
  - {from: queue, to: working, event: new_job}
  - {from: queue, to: done, event: no_jobs}
  - {from: working, to: queue, event: written}
actions:
  queue:
    - {type: check_database_queue, job_type: task, wait: 0.2}
  working:
    - {type: add_to_list, list_key: seen, value: "{id}:{outdir}", success: written}
"""


def test_a_job_key_that_hides_an_initial_context_key_gives_it_back_when_the_job_is_done(
    tmp_path: Path,
) -> None:
    """The job's keys were popped after it, the `--initial-context` value they hid with them:
    every later job failed on `{outdir}` not resolving."""
    database = tmp_path / "smc.db"
    with open_store(database) as store:
        store.add_job("task", {"outdir": "/custom"}, job_id="j1", priority=1)
        store.add_job("task", {}, job_id="j2", priority=2)
    engine = run_engine(
        compile_machine(OUTDIR, tmp_path), database, initial_context={"outdir": "/data"}
    )
    assert engine.context["seen"] == ["j1:/custom", "j2:/data"]
    assert engine.context["outdir"] == "/data"


GREETER = """
initial_state: idle
metadata: {machine_name: greeter}
events:
  go: {context_map: {who: payload.name}}
  finish: {}
  greeted: {}
transitions:
  - {from: idle, to: greeting, event: go}
  - {from: greeting, to: idle, event: greeted}
  - {from: idle, to: done, event: finish}
actions:
  greeting:
    - {type: add_to_list, list_key: seen, value: "{who}", success: greeted}
"""


def test_an_event_without_its_mapped_value_does_not_see_the_previous_events(
    tmp_path: Path,
) -> None:
    """A second `go` without a name greeted (and ran bash with) the first one's."""
    database = tmp_path / "smc.db"
    with open_store(database) as store:
        store.send_event("greeter", "go", {"name": "alice"})
        store.send_event("greeter", "go", {})
        store.send_event("greeter", "go", {"name": "bob"})
        store.send_event("greeter", "finish")
    engine = run_engine(compile_machine(GREETER, tmp_path), database, initial_context={"seen": []})
    assert engine.context["seen"] == ["alice", "{who}", "bob"]  # unresolved: as written
    # a default the map hid comes back (the second pass: the key was removed with it)
    (tmp_path / "again").mkdir()
    database = tmp_path / "again" / "smc.db"
    with open_store(database) as store:
        store.send_event("greeter", "go", {})
        store.send_event("greeter", "go", {"name": "alice"})
        store.send_event("greeter", "go", {})
        store.send_event("greeter", "finish")
    engine = run_engine(
        compile_machine(GREETER, tmp_path / "again"),
        database,
        initial_context={"seen": [], "who": "world"},
    )
    assert engine.context["seen"] == ["world", "alice", "world"]
