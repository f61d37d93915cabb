"""One test per statemachine-engine trap (../shared/research/statemachine-engine.md §6) that
would fail if the trap came back. Also covered elsewhere: jobs added after start
(e2e/test_examples, e2e/test_corpus), non-terminal `completed` (e2e/test_corpus simple_worker),
unhandled events reported (runtime/test_engine), clean signals (runtime/test_engine)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.support.harness import USER_ACTIONS, Runner, wait_until
from tests.support.machines import queue_worker


def _wait_status(runner: Runner, job: str, status: str, proc_output: object) -> None:
    wait_until(
        lambda: runner.job_statuses().get(job) == status,
        20,
        lambda: f"{job}: {runner.job_statuses().get(job)}\n{proc_output()}",  # type: ignore[operator]
    )


def test_job_data_is_data_never_code(runner: Runner) -> None:
    command = (
        "echo {name} > a.txt; echo '{name}' > b.txt; echo \"{name}\" > c.txt; echo safe > d.txt"
    )
    (runner.cwd / "w.yaml").write_text(queue_worker("quoted", command))
    proc = runner.start("run", "w.yaml")
    runner.wait_running(proc, "quoted")
    hostile = {"name": "x; touch pwned", "command": "touch pwned"}
    job = runner.run("jobs", "add", "--type", "t", "--data", json.dumps(hostile)).stdout.strip()
    wait_until(lambda: (runner.cwd / "d.txt").exists(), 20, proc.output)
    for name in ("a.txt", "b.txt", "c.txt"):
        assert (runner.cwd / name).read_text() == "x; touch pwned\n"
    assert not (runner.cwd / "pwned").exists()  # neither injected nor run as `command`
    _wait_status(runner, job, "completed", proc.output)


def test_events_over_4kb_are_delivered_whole(runner: Runner) -> None:
    (runner.cwd / "r.yaml").write_text("""
initial_state: idle
metadata: {machine_name: receiver}
transitions:
  - {from: idle, to: done, event: big}
actions:
  done:
    - {type: write_json, path: got.json, value: "{payload}"}
""")
    proc = runner.start("run", "r.yaml", "--actions-dir", str(USER_ACTIONS))
    runner.wait_running(proc, "receiver")
    payload = {"blob": "x" * 1_000_000, "n": 1}
    with runner.store() as store:  # 1 MB does not fit on a command line (smc send)
        store.send_event("receiver", "big", payload, source="test")
    assert proc.wait(20) == 0, proc.output()
    assert json.loads((runner.cwd / "got.json").read_text()) == payload


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _wakeups(pid: int) -> int:
    """The times the process's threads went to sleep (and so woke again): voluntary context
    switches. Not the involuntary ones, which count the times other processes took the CPU
    from it, and grow with the machine's load (a full test run on 2 cores: 21 in 2 s)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        for line in Path(f"/proc/{pid}/task/{task}/status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                total += int(line.split()[1])
    return total


def test_an_idle_worker_neither_ticks_nor_burns_cpu(runner: Runner) -> None:
    (runner.cwd / "w.yaml").write_text(queue_worker("idler", "true"))
    proc = runner.start("run", "w.yaml")
    runner.wait_running(proc, "idler")
    time.sleep(0.5)
    ticks, wakeups = _cpu_ticks(proc.pid), _wakeups(proc.pid)
    time.sleep(2.0)
    ticks, wakeups = _cpu_ticks(proc.pid) - ticks, _wakeups(proc.pid) - wakeups
    # A 50 ms tick would wake it 40 times in 2 s; the 1 s fallback poll wakes it ~2 times.
    assert wakeups < 20, f"{wakeups} wake-ups in 2 s of idling"
    assert ticks <= 5, f"{ticks} clock ticks of CPU in 2 s of idling"
    # and it still reacts at once
    job = runner.run("jobs", "add", "--type", "t").stdout.strip()
    _wait_status(runner, job, "completed", proc.output)


def test_start_fsm_children_with_lots_of_output_do_not_freeze(runner: Runner) -> None:
    (runner.cwd / "child.yaml").write_text("""
initial_state: talking
metadata: {machine_name: chatty}
transitions:
  - {from: talking, to: talking, event: again}
  - {from: talking, to: done, event: finished}
actions:
  talking:
    - {type: log, message: "{blob}"}
    - {type: pop_from_list, list_key: items, success: again, empty: finished}
  done:
    - {type: bash, command: "touch child-finished"}
""")
    (runner.cwd / "parent.yaml").write_text("""
initial_state: spawning
metadata: {machine_name: parent}
transitions:
  - {from: spawning, to: watching, event: spawned}
  - {from: watching, to: stopped, event: stop}
actions:
  spawning:
    - type: start_fsm
      yaml_path: child.yaml
      machine_name: chatty
      context_vars: [blob, items]
      success: spawned
""")
    context = {"blob": "y" * 60_000, "items": list(range(25))}  # ~1.5 MB of log output
    parent = runner.start("run", "parent.yaml", "--initial-context", json.dumps(context))
    runner.wait_running(parent, "parent")
    wait_until(lambda: (runner.cwd / "child-finished").exists(), 30, parent.output)
    log = runner.cwd / "logs" / "chatty.log"
    # the final state's actions run before the child logs that it reached it
    wait_until(lambda: "reached final state done" in log.read_text(), 10, parent.output)
    assert log.stat().st_size > 1_000_000


def test_start_fsm_refuses_a_context_the_child_could_not_take(runner: Runner) -> None:
    (runner.cwd / "child.yaml").write_text(
        "initial_state: idle\nmetadata: {machine_name: child}\n"
        "states: [idle]\nactions:\n  idle:\n    - {type: bash, command: touch child-ran}\n"
    )
    (runner.cwd / "parent.yaml").write_text("""
initial_state: waiting
metadata: {machine_name: parent}
transitions:
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: waiting, to: spawning, event: new_job}
  - {from: spawning, to: done, event: spawned}
  - {from: spawning, to: refused, event: error}
actions:
  waiting:
    - {type: check_database_queue}
  spawning:
    - type: start_fsm
      yaml_path: child.yaml
      machine_name: child
      context_vars: [current_job]
      success: spawned
  refused:
    - {type: bash, command: "printf '%s' {last_error} > refused.txt"}
""")
    parent = runner.start("run", "parent.yaml")
    runner.wait_running(parent, "parent")
    deep: object = "x"
    for _ in range(63):  # with the data's own object: 64 levels, at the limit
        deep = [deep]
    runner.run("jobs", "add", "--type", "t", "--data", json.dumps({"d": deep}))
    # the job (64 levels) is fine; {"current_job": {..., "data": ...}} would be 66
    assert parent.wait(30) == 0, parent.output()
    reason = (runner.cwd / "refused.txt").read_text()
    assert "initial context for child.yaml" in reason and "64" in reason, reason
    assert not (runner.cwd / "child-ran").exists()


@pytest.mark.slow
def test_a_dead_workers_job_is_run_again_after_its_lease(runner: Runner) -> None:
    command = "echo run >> runs.txt; test -f second || { touch second; sleep 30; }"
    (runner.cwd / "w.yaml").write_text(queue_worker("mortal", command))
    first = runner.start("run", "w.yaml", "--lease-seconds", "1")
    runner.wait_running(first, "mortal")
    job = runner.run("jobs", "add", "--type", "t").stdout.strip()
    wait_until(lambda: (runner.cwd / "second").exists(), 20, first.output)
    first.signal(9)  # SIGKILL: no clean-up at all
    first.wait(10)
    second = runner.start("run", "w.yaml", "--lease-seconds", "1")
    runner.wait_running(second, "mortal")
    wait_until(
        lambda: (runner.cwd / "runs.txt").read_text().count("run") == 2,
        20,
        lambda: f"{runner.job_statuses()}\n{second.output()}",
    )
    with runner.store() as store:
        found = store.get_job(job)
    assert found is not None and found.attempts == 2
