"""A machine ``start_fsm`` started is a machine of its own, not a part of its parent
(docs/actions.md, "Child machines outlive their parent"): a real ``smc run`` parent is
SIGKILLed (or stopped) while its child works, and the child goes on; the parent's ``bash``
command dies with the parent all the same (the child holds nothing of the parent's watchdog);
and the job's retry, whose ``start_fsm`` starts the child again under the same name, never
runs a second copy beside the first: the first finishes the work, once, and the retry's
parent takes its result. A ``start_fsm`` whose child's name a running machine holds starts
nothing at all, and its ``store_pid`` records the running machine's pid.

The processes are found through ``/proc`` (Linux), as in test_bash_orphans.py."""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

from smc.runtime.monitor import monitor_dir
from smc.runtime.store import open_store
from tests.runtime.test_bash_orphans import _alive, _group_members
from tests.support.harness import Proc, Runner, wait_until

PARENT = """\
initial_state: waiting
metadata: {machine_name: spawner}
transitions:
  - {from: waiting, to: spawning, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: spawning, to: working, event: spawned}
  - {from: spawning, to: waiting, event: error}
  - {from: working, to: waiting_child, event: job_done}
  - {from: working, to: waiting, event: error}
  - {from: waiting_child, to: finishing, event: child_done}
  - {from: finishing, to: waiting, event: job_completed}
  - {from: finishing, to: waiting, event: error}
actions:
  waiting:
    - {type: check_database_queue, job_type: task, wait: 1}
  spawning:
    - type: start_fsm
      yaml_path: child.yaml
      machine_name: "child_{current_job.id}"
      success: spawned
  working:
    - type: bash
      timeout: 600
      command: "echo $$ >> parent-commands.txt; until [ -e release ]; do sleep 0.05; done"
      success: job_done
  finishing:
    - {type: complete_job, success: job_completed}
"""

#: The child's work: it notes its worker's pid (the command's parent) each time it runs, then
#: waits for the test's word and tells the spawner it is done.
CHILD = """\
initial_state: working
metadata: {machine_name: child}
transitions:
  - {from: working, to: reporting, event: job_done}
  - {from: working, to: done, event: error}
  - {from: reporting, to: done, event: event_sent}
actions:
  working:
    - type: bash
      timeout: 600
      command: "echo $PPID >> child-runs.txt; until [ -e release ]; do sleep 0.05; done"
      success: job_done
  reporting:
    - {type: send_event, target_machine: spawner, event_type: child_done}
  done:
    - {type: log, message: finished}
"""

CHILD_NAME = "child_long"


def _numbers_in(path: Path) -> list[int]:
    """The whole lines of numbers in ``path`` (a half-written last line is left out)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [int(line) for line in text.split("\n")[:-1] if line.strip().isdigit()]


def _child_processes() -> list[int]:
    """The live ``smc run`` processes started for the child's name."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            arguments = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        named = CHILD_NAME.encode() in arguments and b"--machine-name" in arguments
        if named and _alive(int(entry)):
            found.append(int(entry))
    return found


@contextlib.contextmanager
def _children_killed_after() -> Iterator[None]:
    """The child machines outlive their parents by design: kill them when the test ends."""
    try:
        yield
    finally:
        for pid in _child_processes():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _start_parent(runner: Runner) -> Proc:
    # a short lease: the job of a killed parent comes back within seconds
    proc = runner.start("run", "parent.yaml", "--db", str(runner.db), "--lease-seconds", "1")
    runner.wait_running(proc, "spawner", timeout=60)
    return proc


def _child_row_pid(runner: Runner, status: str) -> int | None:
    with runner.store() as store:
        row = store.get_machine(CHILD_NAME)
    return row.pid if row is not None and row.status == status else None


def _job(runner: Runner) -> tuple[str, int] | None:
    with runner.store() as store:
        job = store.get_job("long")
    return None if job is None else (job.status, job.attempts)


def _parent_with_a_working_child(runner: Runner) -> tuple[Proc, int]:
    """A parent that holds the job ``long`` and runs its command, and the pid of the child
    machine it started for the job, at work."""
    (runner.cwd / "parent.yaml").write_text(PARENT, encoding="utf-8")
    (runner.cwd / "child.yaml").write_text(CHILD, encoding="utf-8")
    parent = _start_parent(runner)
    with runner.store() as store:
        store.add_job("task", {}, job_id="long")
    child = wait_until(lambda: _child_row_pid(runner, "running"), 60, parent.output)
    wait_until(lambda: _numbers_in(runner.cwd / "child-runs.txt"), 30, parent.output)
    wait_until(lambda: _numbers_in(runner.cwd / "parent-commands.txt"), 30, parent.output)
    assert _numbers_in(runner.cwd / "child-runs.txt") == [child]
    return parent, child


def test_a_sigkilled_parents_child_works_on_and_the_jobs_retry_runs_no_second_copy(
    runner: Runner,
) -> None:
    with _children_killed_after():
        first, child = _parent_with_a_working_child(runner)
        [command] = _numbers_in(runner.cwd / "parent-commands.txt")

        first.popen.kill()
        first.popen.wait(10)

        # the parent's own command dies with it (the child holds no end of its watchdog's
        # pipe); the child machine does not: it is a machine of its own
        wait_until(lambda: not _group_members(command), 10, "the parent's command ran on")
        assert _alive(child)

        # the job comes back when its lease ends; the retry starts the child again (the
        # parent's second command runs after its start_fsm) ...
        second = _start_parent(runner)
        wait_until(lambda: _job(runner) == ("processing", 2), 60, second.output)
        wait_until(
            lambda: len(_numbers_in(runner.cwd / "parent-commands.txt")) == 2, 60, second.output
        )
        # ... and that second one refuses to run beside the first: it ends, its work not begun
        wait_until(
            lambda: _child_processes() == [child],
            30,
            lambda: f"child processes {_child_processes()}, the first {child}",
        )
        assert _numbers_in(runner.cwd / "child-runs.txt") == [child]
        assert _child_row_pid(runner, "running") == child

        # the first child finishes the work; the retry's parent takes its word and completes
        (runner.cwd / "release").touch()
        wait_until(lambda: _job(runner) == ("completed", 2), 60, second.output)
        wait_until(lambda: _child_row_pid(runner, "stopped") == child, 30, second.output)
        assert _numbers_in(runner.cwd / "child-runs.txt") == [child]  # the work ran once
        wait_until(lambda: not _alive(child), 10, "the child did not end at its final state")


def test_a_stopped_parents_child_works_on(runner: Runner) -> None:
    with _children_killed_after():
        parent, child = _parent_with_a_working_child(runner)

        parent.signal(signal.SIGTERM)
        assert parent.wait(30) == 0

        # a stop of the parent is not one of its child's: still at work, still registered
        assert _alive(child)
        assert _child_row_pid(runner, "running") == child
        assert _job(runner) == ("pending", 0)  # given back by the stop, the attempt not counted

        (runner.cwd / "release").touch()
        wait_until(lambda: _child_row_pid(runner, "stopped") == child, 30, parent.output)
        assert _numbers_in(runner.cwd / "child-runs.txt") == [child]


#: The parent of the test below: its ``start_fsm`` stores the pid, and it logs ``spawned_pids``.
STORING_PARENT = PARENT.replace(
    "      success: spawned\n",
    "      store_pid: true\n      success: spawned\n",
).replace(
    "  working:\n",
    '  working:\n    - {type: log, message: "spawned_pids {spawned_pids}"}\n',
)


def test_start_fsm_of_a_running_childs_name_starts_nothing_and_stores_the_running_pid(
    runner: Runner,
) -> None:
    assert STORING_PARENT.count("store_pid: true") == 1 and "spawned_pids {" in STORING_PARENT
    (runner.cwd / "parent.yaml").write_text(STORING_PARENT, encoding="utf-8")
    (runner.cwd / "child.yaml").write_text(CHILD, encoding="utf-8")
    with _children_killed_after():
        # the child machine runs already (started by hand here, as a retried job finds the
        # one its killed parent started), at work
        first = runner.start(
            "run", "child.yaml", "--db", str(runner.db), "--machine-name", CHILD_NAME
        )
        runner.wait_running(first, CHILD_NAME, timeout=60)
        child = first.pid
        wait_until(lambda: _numbers_in(runner.cwd / "child-runs.txt"), 30, first.output)

        parent = _start_parent(runner)
        with runner.store() as store:
            store.add_job("task", {}, job_id="long")
        logged = re.compile(r"spawned_pids (\[[^\]]*\])")
        wait_until(lambda: logged.search(parent.output()), 60, parent.output)
        match = logged.search(parent.output())
        assert match is not None

        # start_fsm returned success (the parent went on to its command) having started
        # nothing: spawned_pids holds the running child's pid, alive ...
        assert match.group(1) == f"[{child}]", parent.output()
        os.kill(child, 0)
        assert f"{CHILD_NAME} is already running (pid {child})" in parent.output()
        wait_until(lambda: _numbers_in(runner.cwd / "parent-commands.txt"), 30, parent.output)
        # ... and no second child was started: none refused in its log, one process, one
        # start in the running child's output, the registry's row its own
        assert not (runner.cwd / "logs" / f"{CHILD_NAME}.log").exists()
        assert _child_processes() == [child]
        assert first.output().count(f"started {CHILD_NAME} in state") == 1
        assert _child_row_pid(runner, "running") == child

        # the running child tells the parent it is done, and the parent completes its job
        (runner.cwd / "release").touch()
        wait_until(lambda: _job(runner) == ("completed", 1), 60, parent.output)
        wait_until(lambda: _child_row_pid(runner, "stopped") == child, 30, first.output)
        assert _numbers_in(runner.cwd / "child-runs.txt") == [child]


#: Two starts of one child name back to back, the second while the first child starts up.
TWIN_STARTER = f"""\
initial_state: spawning
metadata: {{machine_name: twin_starter}}
transitions:
  - {{from: spawning, to: started, event: second_started}}
  - {{from: spawning, to: failed, event: error}}
actions:
  spawning:
    - type: start_fsm
      yaml_path: child.yaml
      machine_name: {CHILD_NAME}
      store_pid: true
      success: first_started
    - type: start_fsm
      yaml_path: child.yaml
      machine_name: {CHILD_NAME}
      store_pid: true
      success: second_started
  started:
    - {{type: log, message: "spawned_pids {{spawned_pids}}"}}
  failed:
    - {{type: log, message: "failed: {{last_error}}"}}
"""


def test_a_start_of_a_name_whose_child_is_starting_waits_for_it_and_starts_nothing(
    runner: Runner,
) -> None:
    """The second ``start_fsm`` comes microseconds after the first, long before the first
    child listens: it waits on the name's start lock (docs/actions.md), then finds the child
    running. Without the lock both found the name free, the second child refused and exited,
    and ``spawned_pids`` held its pid."""
    (runner.cwd / "starter.yaml").write_text(TWIN_STARTER, encoding="utf-8")
    (runner.cwd / "child.yaml").write_text(CHILD, encoding="utf-8")
    with _children_killed_after():
        starter = runner.start("run", "starter.yaml", "--db", str(runner.db))
        logged = re.compile(r"spawned_pids \[(\d+), (\d+)\]")
        wait_until(lambda: logged.search(starter.output()), 60, starter.output)
        match = logged.search(starter.output())
        assert match is not None
        first, second = int(match.group(1)), int(match.group(2))

        # one child, started once, running and registered: both starts stored its pid
        assert first == second, starter.output()
        assert _child_processes() == [first]
        wait_until(lambda: _child_row_pid(runner, "running") == first, 30, starter.output)
        assert f"{CHILD_NAME} is already running (pid {first})" in starter.output()
        assert starter.output().count(f"started {CHILD_NAME} (pid") == 1
        log = (runner.cwd / "logs" / f"{CHILD_NAME}.log").read_text(encoding="utf-8")
        assert log.count(f"started {CHILD_NAME} in state") == 1
        assert "already running" not in log
        # the lock's file went with the start: the child removed it once it listened
        with runner.store() as store:
            directory = monitor_dir(store)
        assert [name for name in os.listdir(directory) if name.endswith(".starting")] == []


def test_start_fsm_of_a_name_running_on_another_host_starts_nothing(
    runner: Runner, store_url: str
) -> None:
    """On a store shared by hosts (PostgreSQL), a child's name may be held on another host,
    where no monitor socket of this one tells: ``start_fsm`` reads the registry as the child
    would, starts nothing and stores no pid (a number on another host is no process here)."""
    (runner.cwd / "parent.yaml").write_text(STORING_PARENT, encoding="utf-8")
    (runner.cwd / "child.yaml").write_text(CHILD, encoding="utf-8")
    with _children_killed_after():
        with open_store(store_url) as store:
            # what the child running on another host wrote: running, its heartbeat fresh
            store.register_machine(CHILD_NAME, "working", pid=4242, host="other-host.example")
        parent = runner.start("run", "parent.yaml", "--db", store_url)
        wait_until(lambda: "started spawner in state" in parent.output(), 60, parent.output)
        with open_store(store_url) as store:
            store.add_job("task", {}, job_id="long")
        # the log action leaves a placeholder whose key is missing as written
        logged = re.compile(r"spawned_pids (\[[^\]]*\]|\{spawned_pids\})")
        wait_until(lambda: logged.search(parent.output()), 60, parent.output)
        match = logged.search(parent.output())
        assert match is not None

        # success (the parent went on to its command), nothing started, no pid stored
        assert match.group(1) == "{spawned_pids}", parent.output()
        assert (
            f"{CHILD_NAME} is already running on other-host.example (pid 4242); not started again"
            in parent.output()
        )
        wait_until(lambda: _numbers_in(runner.cwd / "parent-commands.txt"), 30, parent.output)
        assert _child_processes() == []
        assert not (runner.cwd / "logs" / f"{CHILD_NAME}.log").exists()
        with open_store(store_url) as store:
            row = store.get_machine(CHILD_NAME)
        assert row is not None and (row.pid, row.host) == (4242, "other-host.example")
