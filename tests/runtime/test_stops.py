"""Stops, kills, pauses and a vanished database, with real ``smc run`` processes (issue 10):

- an inbound event whose handling is interrupted (SIGTERM, SIGKILL) is not lost;
- a worker paused past its lease goes on working when resumed;
- SIGINT/SIGTERM at any moment, one or two of them, and while the database is locked;
- the SQLite file deleted or replaced under a running worker.

See docs/runtime.md ("Stopping", "Leases") and docs/queue.md ("Events between machines").
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smc.runtime.engine import Engine, StartupError
from smc.runtime.store import Store, is_postgres_url, open_store
from smc.runtime.store.sql import SqlStore
from tests.support.harness import Proc, Runner, compile_machine, wait_until

#: A receiver whose handling of ``ping`` appends the payload's ``n`` to effects.log, then takes
#: ``hold`` seconds the first time (the window in which it is stopped or killed).
RECEIVER = """\
initial_state: idle
metadata: {machine_name: receiver}
transitions:
  - {from: idle, to: handling, event: ping}
  - {from: handling, to: idle, event: handled}
actions:
  handling:
    - type: bash
      timeout: 120
      command: |-
        echo {payload.n} >> effects.log
        if [ -e started-{payload.n} ]; then exit 0; fi
        touch started-{payload.n}
        sleep {payload.hold}
      success: handled
"""

#: simple_worker's shape (complete_job in ``finishing``, no transition for its ``error``);
#: each job appends its id to effects.log and sleeps ``hold`` seconds. Not the shared
#: tests.support.machines.queue_worker on purpose: the stops are checked on the shape of the
#: example workers, with complete_job a state of its own after the job's work.
WORKER = """\
initial_state: waiting
metadata: {machine_name: worker}
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: processing, to: finishing, event: job_done}
  - {from: processing, to: waiting, event: error}
  - {from: finishing, to: waiting, event: job_completed}
actions:
  waiting:
    - {type: check_database_queue, job_type: task, wait: 1}
  processing:
    - type: bash
      timeout: 120
      command: |-
        echo {id} >> effects.log
        sleep {hold}
      success: job_done
  finishing:
    - {type: complete_job, success: job_completed}
"""


def _write(runner: Runner, name: str, text: str) -> str:
    (runner.cwd / name).write_text(text, encoding="utf-8")
    return name


def _effects(runner: Runner) -> list[str]:
    log = runner.cwd / "effects.log"
    return log.read_text().split() if log.exists() else []


def _store(url: str) -> Store:
    return open_store(url)


def _start(runner: Runner, url: str, config: str, name: str, *extra: str) -> Proc:
    proc = runner.start("run", config, "--db", url, "--machine-name", name, *extra)
    _wait_registered(proc, url, name)
    return proc


def _wait_registered(proc: Proc, url: str, name: str) -> None:
    def running() -> bool:
        if proc.popen.poll() is not None:
            pytest.fail(f"{proc.describe()} exited early:\n{proc.output()}")
        if not is_postgres_url(url) and not Path(url).exists():
            return False
        with _store(url) as store:
            row = store.get_machine(name)
        return row is not None and row.status == "running" and row.pid == proc.pid

    wait_until(running, 30, lambda: f"{name} never started:\n{proc.output()}")


def _socket_files(runner: Runner) -> list[str]:
    root = Path(runner.env["SMC_SOCKET_DIR"])
    return sorted(str(path) for path in root.rglob("*.sock")) if root.exists() else []


@pytest.fixture
def sockets_runner(runner: Runner) -> Iterator[Runner]:
    """The runner, with the workers' socket files in a directory of this test: a short one
    under /tmp (a socket path must fit in 108 bytes, and a test's ``tmp_path`` may not)."""
    with tempfile.TemporaryDirectory(
        prefix="smc-s-", dir="/tmp", ignore_cleanup_errors=True
    ) as directory:
        runner.env["SMC_SOCKET_DIR"] = directory
        yield runner


# --- 2. an event whose handling is interrupted is not lost -----------------------------------


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_an_event_interrupted_mid_handling_is_handled_again(
    runner: Runner, store_url: str, how: str
) -> None:
    config = _write(runner, "receiver.yaml", RECEIVER)
    lease = "2"
    first = _start(runner, store_url, config, "receiver", "--lease-seconds", lease)
    with _store(store_url) as store:
        event_id = store.send_event("receiver", "ping", {"n": 7, "hold": 60}, source="t")
    wait_until(lambda: (runner.cwd / "started-7").exists(), 30, first.output)
    if how == "sigterm":
        first.signal(signal.SIGTERM)
        assert first.wait(20) == 0, first.output()
        with _store(store_url) as store:
            [row] = [e for e in store.list_events(target="receiver") if e.id == event_id]
            # given back at once, its delivery not counted (old code: "done", never handled)
            assert (row.status, row.attempts) == ("pending", 0), first.output()
    else:
        first.popen.kill()
        first.popen.wait(10)
        with _store(store_url) as store:
            [row] = [e for e in store.list_events(target="receiver") if e.id == event_id]
            assert row.status == "processing"  # comes back after its lease or at a restart
    second = _start(runner, store_url, config, "receiver", "--lease-seconds", lease)

    def done() -> bool:
        with _store(store_url) as store:
            return [e.status for e in store.list_events(target="receiver")] == ["done"]

    wait_until(done, 30, second.output)
    assert _effects(runner) == ["7", "7"]  # the interrupted run, then the whole handling
    second.signal(signal.SIGTERM)
    assert second.wait(20) == 0, second.output()


#: A worker that handles ``kick`` between jobs (its handling appends ``kicked`` and takes a
#: second), and whose jobs run ``hold`` seconds.
KICKED_WORKER = """\
initial_state: waiting
metadata: {machine_name: kicked}
transitions:
  - {from: waiting, to: kicked, event: kick}
  - {from: kicked, to: waiting, event: done}
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: processing, to: waiting, event: job_done}
actions:
  waiting:
    - {type: check_database_queue, job_type: task, wait: 1}
  kicked:
    - {type: bash, command: 'echo kicked >> effects.log; sleep 1', success: done}
  processing:
    - type: bash
      timeout: 120
      command: 'echo {id} >> effects.log; sleep {hold}'
      success: job_done
"""


def test_an_event_handled_before_a_job_is_done_when_the_job_is_claimed(
    runner: Runner, store_url: str
) -> None:
    """Back in ``waiting`` the event's work is finished, but it was acknowledged only when
    the machine waited: with a job there at once it stayed held through the job, and a stop
    gave it back, so its handling ran a second time."""
    config = _write(runner, "kicked.yaml", KICKED_WORKER)
    proc = _start(runner, store_url, config, "kicked")
    with _store(store_url) as store:
        event_id = store.send_event("kicked", "kick", source="t")
    wait_until(lambda: _effects(runner) == ["kicked"], 30, proc.output)
    with _store(store_url) as store:  # there at once when the event's handling is over
        store.add_job("task", {"hold": 60}, job_id="long")
    wait_until(lambda: _effects(runner) == ["kicked", "long"], 30, proc.output)
    with _store(store_url) as store:
        [row] = [e for e in store.list_events(target="kicked") if e.id == event_id]
        assert row.status == "done", proc.output()
    proc.signal(signal.SIGTERM)
    assert proc.wait(20) == 0, proc.output()
    with _store(store_url) as store:
        [row] = [e for e in store.list_events(target="kicked") if e.id == event_id]
        assert row.status == "done"  # not given back: it is not run again
        job = store.get_job("long")
        assert job is not None and job.status == "pending"  # the job is given back


def test_a_namesake_running_on_another_host_refuses_a_second_worker(
    runner: Runner, store_url: str
) -> None:
    """Only the monitor socket refused a second machine of the same name, so on another host
    (PostgreSQL) a second one started, took over the first one's held event and ran it too."""
    config = _write(runner, "receiver.yaml", RECEIVER)
    with _store(store_url) as store:
        # what a receiver on another host wrote: running, its heartbeat fresh
        store.register_machine("receiver", "handling", pid=4242, host="other-host.example")
        event_id = store.send_event("receiver", "ping", {"n": 1, "hold": 0}, source="t")
    second = runner.start("run", config, "--db", store_url, "--machine-name", "receiver")
    assert second.wait(20) == 1, second.output()
    assert "machine 'receiver' is already running (pid 4242 on other-host.example" in (
        second.output()
    )
    assert _effects(runner) == []
    with _store(store_url) as store:
        [row] = [e for e in store.list_events(target="receiver") if e.id == event_id]
        assert row.status == "pending"  # left for its machine
        machine = store.get_machine("receiver")
        assert machine is not None and (machine.pid, machine.host) == (4242, "other-host.example")
        # once stopped (or stale), the name is free again
        store.stop_machine("receiver")
    third = _start(runner, store_url, config, "receiver")
    wait_until(lambda: _effects(runner) == ["1"], 30, third.output)
    third.signal(signal.SIGTERM)
    assert third.wait(20) == 0, third.output()


# --- 4. a worker paused past its lease goes on working ---------------------------------------


@pytest.mark.slow
def test_a_worker_paused_past_its_lease_goes_on_working(runner: Runner, store_url: str) -> None:
    config = _write(runner, "worker.yaml", WORKER)
    paused = _start(runner, store_url, config, "w1", "--lease-seconds", "1")
    with _store(store_url) as store:
        store.add_job("task", {"hold": 2}, job_id="victim")
    wait_until(lambda: "victim" in _effects(runner), 30, paused.output)
    os.kill(paused.pid, signal.SIGSTOP)
    try:
        # Its lease expires; another worker's reaper re-queues the job and runs it.
        other = _start(runner, store_url, config, "w2", "--lease-seconds", "1")

        def completed_by_other() -> bool:
            with _store(store_url) as store:
                job = store.get_job("victim")
            return job is not None and job.status == "completed" and job.claimed_by == "w2"

        wait_until(completed_by_other, 30, other.output)
        other.signal(signal.SIGTERM)
        assert other.wait(20) == 0, other.output()
    finally:
        os.kill(paused.pid, signal.SIGCONT)
    # w1's bash has finished meanwhile; its complete_job finds the job no longer its own.
    with _store(store_url) as store:
        for index in range(3):
            store.add_job("task", {"hold": 0}, job_id=f"after-{index}")

    def after_done_by_w1() -> bool:
        with _store(store_url) as store:
            jobs = [store.get_job(f"after-{index}") for index in range(3)]
        return all(job is not None and job.status == "completed" for job in jobs)

    wait_until(after_done_by_w1, 30, paused.output)
    with _store(store_url) as store:
        assert {store.get_job(f"after-{i}").claimed_by for i in range(3)} == {"w1"}  # type: ignore[union-attr]
        victim = store.get_job("victim")
        assert victim is not None and victim.claimed_by == "w2"  # w1's late finish fenced out
    lines = [line for line in paused.output().splitlines() if "victim" in line]
    assert any("WARNING" in line and "lease" in line for line in lines), paused.output()
    paused.signal(signal.SIGTERM)
    assert paused.wait(20) == 0, paused.output()
    assert "Traceback" not in paused.output()


@pytest.mark.postgres
def test_a_postgres_worker_holds_two_connections_and_keeps_a_long_jobs_lease(
    runner: Runner,
) -> None:
    """On PostgreSQL the heartbeat renews leases on the loop's own connection (and the events
    and jobs channels share one LISTEN connection): two connections a worker, where a server
    allows 100 in all. A job longer than three leases is still renewed: a second worker,
    whose reaper would take it back, never gets it."""
    import psycopg

    from tests.support.backends import PG_URL, postgres_schema_url

    config = _write(runner, "worker.yaml", WORKER)
    with postgres_schema_url() as url:
        name = f"smc-test-{os.getpid()}-{time.monotonic_ns()}"
        runner.env["PGAPPNAME"] = name  # libpq names every connection of the process
        held = _start(runner, url, config, "w1", "--lease-seconds", "1")
        del runner.env["PGAPPNAME"]

        def connections() -> int:
            with psycopg.connect(PG_URL, autocommit=True) as admin:
                row = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)
                ).fetchone()
            return int(row[0]) if row else 0

        with _store(url) as store:
            store.add_job("task", {"hold": 4}, job_id="long")
        wait_until(lambda: "long" in _effects(runner), 30, held.output)
        other = _start(runner, url, config, "w2", "--lease-seconds", "1")
        assert connections() == 2  # its heartbeat has renewed the lease by now

        def completed() -> bool:
            with _store(url) as store:
                job = store.get_job("long")
            return job is not None and job.status == "completed"

        wait_until(completed, 30, held.output)
        with _store(url) as store:
            job = store.get_job("long")
        assert job is not None and (job.claimed_by, job.attempts) == ("w1", 1)
        assert _effects(runner) == ["long"]
        assert connections() == 2
        for proc in (held, other):
            proc.signal(signal.SIGTERM)
            assert proc.wait(20) == 0, proc.output()
        assert "lease" not in held.output(), held.output()


# --- 6. signals ------------------------------------------------------------------------------


def _mid_job(runner: Runner, *extra: str, hold: int = 60) -> Proc:
    """A SQLite worker ``w`` holding job ``j`` (its bash sleeping ``hold`` seconds)."""
    config = _write(runner, "worker.yaml", WORKER)
    proc = _start(runner, str(runner.db), config, "w", *extra)
    with runner.store() as store:
        store.add_job("task", {"hold": hold}, job_id="j")
    wait_until(lambda: "j" in _effects(runner), 30, proc.output)
    return proc


def _job(runner: Runner) -> tuple[str, int]:
    with runner.store() as store:
        job = store.get_job("j")
    assert job is not None
    return job.status, job.attempts


@pytest.mark.parametrize(
    ("first", "second", "delay"),
    [
        (signal.SIGTERM, signal.SIGTERM, 0.002),
        (signal.SIGTERM, signal.SIGTERM, 0.005),
        (signal.SIGINT, signal.SIGTERM, 0.003),
        (signal.SIGTERM, signal.SIGINT, 0.002),
        (signal.SIGINT, signal.SIGINT, 0.005),
    ],
)
def test_two_signals_in_quick_succession(
    sockets_runner: Runner, first: int, second: int, delay: float
) -> None:
    runner = sockets_runner
    proc = _mid_job(runner)
    proc.signal(first)
    time.sleep(delay)
    proc.signal(second)
    code = proc.wait(30)
    output = proc.output()
    assert "Traceback" not in output, output
    assert _socket_files(runner) == [], output
    if second == signal.SIGTERM:
        # a second SIGTERM is ignored: a clean stop, the job given back
        assert code == 0, output
        assert _job(runner) == ("pending", 0), output
    else:
        # a second Ctrl-C exits at once: 130 (0 if the stop had finished first); a job not
        # given back yet is left to its lease
        assert code in (0, 130), output
        assert _job(runner) in {("pending", 0), ("processing", 1)}, output
    with runner.store() as store:
        machine = store.get_machine("w")
        assert machine is not None and machine.status in ("stopped", "dead")


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM (``SigCgt`` in /proc/PID/status)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = int(
        next(line.split()[1] for line in text.splitlines() if line.startswith("SigCgt")), 16
    )
    return bool(caught & (1 << (signal.SIGTERM - 1)))


@pytest.mark.slow
def test_sigint_during_start_up_is_a_clean_stop(runner: Runner, tmp_path: Path) -> None:
    """SIGINT at several moments of ``smc run``'s start-up (compiling, importing, opening the
    database): exit 0, no traceback, nothing left running.

    Two clocks. (1) From the moment the machine file's compiled module appears in the (fresh)
    cache: the rest of start-up, the same on any version of smc. (2) From the moment the
    process handles SIGTERM itself, i.e. smc's code runs (before that the interpreter is still
    starting: a signal then ends the process as it would any program)."""
    config = _write(runner, "worker.yaml", WORKER)
    cases = 0
    for clock in ("compiled", "handler"):
        for delay in (0.0, 0.01, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3):
            cache = tmp_path / f"cache-{clock}-{delay}"
            runner.env["SMC_CACHE_DIR"] = str(cache)
            proc = runner.start("run", config, "--machine-name", f"s{cases}")
            if clock == "compiled":
                wait_until(lambda cache=cache: any(cache.glob("*.py")), 60, proc.output)
            else:
                wait_until(
                    lambda proc=proc: _catches_sigterm(proc.pid) or proc.popen.poll() is not None,
                    60,
                    proc.output,
                )
            time.sleep(delay)
            proc.signal(signal.SIGINT)
            code = proc.wait(30)
            output = proc.output()
            assert code == 0 and "Traceback" not in output, (clock, delay, output)
            assert "KeyboardInterrupt" not in output, output
            with runner.store() as store:
                row = store.get_machine(f"s{cases}")
            assert row is None or row.status == "stopped", (clock, delay, output)
            cases += 1


@pytest.mark.slow
def test_sigterm_while_the_database_is_locked_still_gives_the_job_back(
    sockets_runner: Runner,
) -> None:
    runner = sockets_runner
    proc = _mid_job(runner, "--lease-seconds", "30")
    holder = sqlite3.connect(runner.db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        proc.signal(signal.SIGTERM)
        time.sleep(12)  # longer than SQLite's busy timeout (10 s)
        assert proc.popen.poll() is None, proc.output()  # still trying to give the job back
    finally:
        holder.execute("COMMIT")
        holder.close()
    assert proc.wait(20) == 0, proc.output()
    assert _job(runner) == ("pending", 0), proc.output()
    with runner.store() as store:
        machine = store.get_machine("w")
        assert machine is not None and machine.status == "stopped"
    assert _socket_files(runner) == []


@pytest.mark.slow
def test_second_ctrl_c_during_a_stop_held_up_by_a_lock_exits_at_once(
    sockets_runner: Runner,
) -> None:
    runner = sockets_runner
    proc = _mid_job(runner, "--lease-seconds", "3")
    holder = sqlite3.connect(runner.db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        proc.signal(signal.SIGINT)
        time.sleep(1.0)
        assert proc.popen.poll() is None
        started = time.monotonic()
        proc.signal(signal.SIGINT)
        assert proc.wait(20) == 130, proc.output()
        assert time.monotonic() - started < 3.0, proc.output()
        assert _socket_files(runner) == [], proc.output()
        assert "Traceback" not in proc.output()
    finally:
        holder.execute("COMMIT")
        holder.close()
    # The job it could not give back comes back after its lease: another worker runs it.
    with runner.store() as store:
        store.add_job("task", {"hold": 0}, job_id="next")
    other = _start(runner, str(runner.db), "worker.yaml", "w2", "--lease-seconds", "3")

    def j_taken_again() -> bool:
        with runner.store() as store:
            job = store.get_job("j")
        return job is not None and job.claimed_by == "w2" and job.attempts == 2

    wait_until(j_taken_again, 60, other.output)


SLOW_STOP_ACTION = """\
import asyncio
import time

from smc.runtime.actions import BaseAction


class SlowToStopAction(BaseAction):
    async def execute(self, context):
        with open("effects.log", "a") as log:
            log.write(str(context["id"]) + "\\n")
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            time.sleep(30)  # clean-up that takes its time, blocking the loop
            raise
        return "job_done"
"""


def test_second_ctrl_c_during_a_slow_action_clean_up_exits_at_once(
    sockets_runner: Runner,
) -> None:
    runner = sockets_runner
    actions = runner.cwd / "actions"
    actions.mkdir()
    (actions / "slow_to_stop.py").write_text(SLOW_STOP_ACTION, encoding="utf-8")
    config = WORKER.replace(
        "    - type: bash\n      timeout: 120\n", "    - type: slow_to_stop\n      x: |-\n"
    )
    _write(runner, "slow.yaml", config)
    proc = _start(runner, str(runner.db), "slow.yaml", "w", "--lease-seconds", "3")
    with runner.store() as store:
        store.add_job("task", {"hold": 0}, job_id="j")
    wait_until(lambda: "j" in _effects(runner), 30, proc.output)
    proc.signal(signal.SIGTERM)
    time.sleep(1.0)
    assert proc.popen.poll() is None  # its clean-up is still running
    started = time.monotonic()
    proc.signal(signal.SIGINT)
    assert proc.wait(20) == 130, proc.output()
    assert time.monotonic() - started < 3.0
    assert _socket_files(runner) == [], proc.output()
    assert "Traceback" not in proc.output()
    with runner.store() as store:
        machine = store.get_machine("w")
        assert machine is not None and machine.status == "dead"  # honest: it did not finish
        job = store.get_job("j")
        assert job is not None and job.status == "processing"  # left to its lease


# --- 8. the database file deleted or replaced ------------------------------------------------


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_database_file_deleted_or_replaced_stops_the_worker(
    sockets_runner: Runner, tmp_path: Path, how: str
) -> None:
    runner = sockets_runner
    config = _write(runner, "worker.yaml", WORKER)
    proc = _start(runner, str(runner.db), config, "w")
    if how == "deleted":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{runner.db}{suffix}").unlink(missing_ok=True)
    else:
        other = tmp_path / "other.db"
        with open_store(str(other)) as store:
            store.add_job("task", {"hold": 0}, job_id="new")
        for suffix in ("-wal", "-shm"):
            Path(f"{runner.db}{suffix}").unlink(missing_ok=True)
        os.replace(other, runner.db)
    code = proc.wait(20)
    output = proc.output()
    assert code == 1, output
    errors = [line for line in output.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and str(runner.db) in errors[0], output
    assert "Traceback" not in output
    assert _socket_files(runner) == [], output
    if how == "replaced":
        assert runner.job_statuses() == {"new": "pending"}  # nothing written to the new file


def test_a_namesake_registered_on_another_host_after_the_read_still_refuses_this_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two hosts starting one name at once both read the registry free; the registration
    itself decides (one statement), and the engine that lost starts nothing: no state of
    the winner's row replaced, no event of the name released."""
    machine = compile_machine(RECEIVER, tmp_path)
    database = tmp_path / "smc.db"
    with open_store(database) as store:
        event_id = store.send_event("receiver", "ping", {"n": 1, "hold": 0}, source="t")
    reads = {"n": 0}
    real_get_machine = SqlStore.get_machine

    def read_before_the_other_host(self: SqlStore, name: str) -> Any:
        reads["n"] += 1
        if reads["n"] == 1:  # the engine's read, just before the other host registers
            found = real_get_machine(self, name)
            self.register_machine(name, "handling", pid=4242, host="other-host.example")
            return found
        return real_get_machine(self, name)

    monkeypatch.setattr(SqlStore, "get_machine", read_before_the_other_host)
    engine = Engine(machine, database=str(database), machine_name="receiver", monitor=False)
    with pytest.raises(StartupError, match=r"'receiver' is already running .*other-host\.example"):
        asyncio.run(asyncio.wait_for(engine.run(), 20))
    monkeypatch.undo()
    with open_store(database) as store:
        row = store.get_machine("receiver")
        assert row is not None and (row.pid, row.host) == (4242, "other-host.example")
        [event] = [e for e in store.list_events(target="receiver") if e.id == event_id]
        assert event.status == "pending"
