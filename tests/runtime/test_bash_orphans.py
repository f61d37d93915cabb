"""A ``bash`` command does not outlive its worker, however the worker ends (docs/actions.md,
"When the worker dies"): a real ``smc run`` worker is SIGKILLed while its command runs, with a
background grandchild and a pipeline, and every process of the command is gone within seconds
(they ran on before: the job's retry after its lease then ran beside them). And the watchdog
that does it: it leaves alone what a command left running after it ended, and a watchdog that
was killed is replaced and told the commands still running.

The processes are found through ``/proc`` (Linux): by the pid files the command writes, and by
its process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import Proc, Runner, compile_machine, run_engine, wait_until
from tests.support.machines import one_command

WORKER = """\
initial_state: waiting
metadata: {machine_name: orphans}
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: processing, to: finishing, event: job_done}
  - {from: processing, to: waiting, event: error}
  - {from: finishing, to: waiting, event: job_completed}
  - {from: finishing, to: waiting, event: error}
actions:
  waiting:
    - {type: check_database_queue, job_type: task, wait: 1}
  processing:
    - type: bash
      timeout: 600
      command: |-
        sleep 300 &
        echo $! > grandchild.pid
        echo $$ > group.pid
        sleep 301 | cat
      success: job_done
  finishing:
    - {type: complete_job, success: job_completed}
"""

#: The same worker, whose command leaves a process running (its output elsewhere) and ends.
LEAVES_ONE_RUNNING = WORKER.replace(
    """\
        sleep 300 &
        echo $! > grandchild.pid
        echo $$ > group.pid
        sleep 301 | cat
""",
    """\
        sleep 300 >/dev/null 2>&1 &
        echo $! > left.pid
        echo $$ > group.pid
""",
)


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...); None when
    there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2 :].split()


def _alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")  # a zombie has ended


def _group_members(group: int) -> list[int]:
    """The live processes of process group ``group``."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None and int(fields[2]) == group and _alive(int(entry)):
                members.append(int(entry))
    return members


def _children(pid: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None and int(fields[1]) == pid:
                children.append(int(entry))
    return children


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (FileNotFoundError, ValueError):
        return None  # not yet written, or written half


def _watchdog_of(pid: int) -> bool:
    try:
        return b"smc-bash-watchdog" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def _groups_killed_after(groups: list[int]) -> Iterator[None]:
    """Whatever the test found, kill the groups it started (they outlived the worker on the
    old code) so that they do not outlive the test."""
    try:
        yield
    finally:
        for group in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)


def _start_worker(runner: Runner, machine: str) -> Proc:
    (runner.cwd / "worker.yaml").write_text(machine, encoding="utf-8")
    proc = runner.start("run", "worker.yaml", "--db", str(runner.db))
    runner.wait_running(proc, "orphans", timeout=60)
    with runner.store() as store:
        store.add_job("task", {}, job_id="long")
    return proc


def test_a_sigkilled_worker_takes_its_bash_command_and_the_commands_children_along(
    runner: Runner,
) -> None:
    proc = _start_worker(runner, WORKER)
    group = wait_until(lambda: _pid_in(runner.cwd / "group.pid"), 60, proc.output)
    with _groups_killed_after([group]):
        grandchild = _pid_in(runner.cwd / "grandchild.pid")
        assert grandchild is not None, proc.output()
        # the shell, its background sleep, and the pipeline's sleep and cat
        wait_until(lambda: len(_group_members(group)) >= 4, 30, lambda: str(_group_members(group)))
        assert grandchild in _group_members(group)

        proc.popen.kill()
        proc.popen.wait(10)

        # old code: all four ran on, for five minutes, beside the job's retry
        wait_until(
            lambda: not _group_members(group) and not _alive(grandchild),
            10,
            lambda: f"still running after the worker was killed: {_group_members(group)}",
        )


def test_what_a_finished_command_left_running_is_left_alone_when_the_worker_dies(
    runner: Runner,
) -> None:
    proc = _start_worker(runner, LEAVES_ONE_RUNNING)

    def job_done() -> bool:
        return runner.job_statuses().get("long") == "completed"

    wait_until(job_done, 60, proc.output)
    left = _pid_in(runner.cwd / "left.pid")
    group = _pid_in(runner.cwd / "group.pid")
    assert left is not None and group is not None
    with _groups_killed_after([group]):
        watchdogs = [pid for pid in _children(proc.pid) if _watchdog_of(pid)]
        assert len(watchdogs) == 1, proc.output()
        proc.popen.kill()
        proc.popen.wait(10)
        # the watchdog ends once it has killed what it had to: nothing, the command had ended
        wait_until(lambda: not _alive(watchdogs[0]), 10, "the watchdog never ended")
        assert _alive(left)  # as before: a command's leftovers are its own


def _watchdogs_of_this_process() -> list[int]:
    return [pid for pid in _children(os.getpid()) if _watchdog_of(pid)]


def _sleep_in_its_own_group() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "300"], start_new_session=True)


def test_a_killed_watchdog_is_replaced_and_the_new_one_knows_every_running_command() -> None:
    # here: the old code had none
    from smc.runtime.actions.builtin.bash import START_ANNOUNCEMENT, CommandWatchdog

    others = set(_watchdogs_of_this_process())  # the shared one, when other tests ran bash
    watchdog = CommandWatchdog()

    def command() -> subprocess.Popen[bytes]:
        """A command started as the bash action starts one: it lists itself."""
        process = subprocess.Popen(
            ["/bin/sh", "-c", START_ANNOUNCEMENT + "sleep 300"],
            stdin=watchdog.lifeline(),
            start_new_session=True,
        )
        watchdog.started(process.pid)
        return process

    first, second, ended, late = (command() for _ in range(4))
    try:
        watchdog.done(ended.pid)
        [old] = set(_watchdogs_of_this_process()) - others
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: not _alive(old), 10, "the watchdog was not killed")
        watchdog.done(late.pid)  # a removal starts no watchdog (a stop's SIGTERM killed it)
        assert not set(_watchdogs_of_this_process()) - others
        watchdog.lifeline()  # the next command's start: another watchdog, told the running ones
        watchdog.close()  # as the worker's death does: the pipe closes
        assert first.wait(10) == -signal.SIGKILL
        assert second.wait(10) == -signal.SIGKILL
        assert ended.poll() is None and late.poll() is None  # taken off the list: not killed
    finally:
        for process in (first, second, ended, late):
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("command", "final"),
    [
        # no trap is left set, and the command's input is /dev/null as it always was
        ('trap > traps && test ! -s traps && test "$(readlink /proc/$$/fd/0)" = /dev/null', "ok"),
        # bad syntax on the announcement's line: the shell ends before it; the action fails
        ("echo (", "failed"),
    ],
)
def test_the_command_sees_nothing_of_its_announcement(
    command: str, final: str, tmp_path: Path
) -> None:
    machine = compile_machine(one_command("gate", command, cwd=str(tmp_path)), tmp_path)
    engine = run_engine(machine, tmp_path / "smc.db")
    assert engine.context["current_state"] == final, engine.context.get("last_error")


def test_a_command_whose_watchdog_cannot_be_started_does_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smc.runtime.actions.builtin import bash

    def no_more_processes(self: object) -> None:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(bash, "WATCHDOG", bash.CommandWatchdog())
    monkeypatch.setattr(bash.CommandWatchdog, "_start", no_more_processes)
    machine = compile_machine(one_command("unwatched", f"touch {tmp_path}/ran"), tmp_path)
    engine = run_engine(machine, tmp_path / "smc.db")
    assert engine.context["current_state"] == "failed"
    assert "watchdog cannot be started" in engine.context["last_error"]
    assert not (tmp_path / "ran").exists()  # never started
