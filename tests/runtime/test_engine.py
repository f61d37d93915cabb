"""Engine semantics: action lists, re-entry, timers, inbound events, final states, signals and
the job-completion rule (docs/runtime.md)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from smc.runtime.engine import FALLBACK_POLL_SECONDS
from smc.runtime.monitor import monitor_dir, monitor_socket_path
from smc.runtime.store import open_store
from smc.runtime.store.sql import SqlStore
from tests.support.harness import Runner, compile_machine, run_engine, wait_until
from tests.support.machines import queue_worker


def test_actions_run_in_order_until_an_event_with_a_transition(tmp_path: Path) -> None:
    machine = compile_machine(
        """
initial_state: first
transitions:
  - {from: first, to: second, event: go}
actions:
  first:
    - {type: set_context, key: a, value: 1}
    - {type: set_context, key: b, value: 2, success: not_a_transition_here}
    - {type: set_context, key: c, value: 3, success: go}
    - {type: set_context, key: d, value: 4}
  second:
    - {type: add_to_list, list_key: order, value: "{a}{b}{c}"}
""",
        tmp_path,
    )
    context = run_engine(machine, tmp_path / "smc.db").context
    assert (context["a"], context["b"], context["c"]) == (1, 2, 3)
    assert "d" not in context, "the list must end at the first event with a transition"
    assert context["order"] == ["123"]


def test_self_transition_re_enters_the_state(tmp_path: Path) -> None:
    machine = compile_machine(
        """
initial_state: looping
transitions:
  - {from: looping, to: looping, event: again}
  - {from: looping, to: done, event: finished}
actions:
  looping:
    - {type: add_to_list, list_key: visits, value: "{current_state}"}
    - {type: pop_from_list, list_key: items, success: again, empty: finished}
""",
        tmp_path,
    )
    context = run_engine(machine, tmp_path / "smc.db", initial_context={"items": [1, 2]}).context
    assert context["visits"] == ["looping"] * 3


def test_timers_fire_interrupt_are_cancelled_and_take_decimals(tmp_path: Path) -> None:
    machine = compile_machine(
        """
initial_state: a
transitions:
  - {from: a, to: b, event: timeout(0.1)}
  - {from: b, to: c, event: next}
  - {from: a, to: bad, event: timeout(0.45)}
  - {from: b, to: bad, event: timeout(0.45)}
  - {from: c, to: good, event: timeout(0.3)}
actions:
  a:
    - {type: sleep, duration: 0.3}
    - {type: set_context, key: after_sleep, value: ran}
  b:
    - {type: sleep, duration: 0.2}
    - {type: set_context, key: b_done, value: done, success: next}
""",
        tmp_path,
    )
    started = time.monotonic()
    engine = run_engine(machine, tmp_path / "smc.db")
    elapsed = time.monotonic() - started
    context = engine.context
    # a's timer expired during the sleep and fired right after it: the rest of a's list
    # never ran. a's 0.45 s timer was cancelled when it left (else it fires in b, at 0.45 s).
    assert "after_sleep" not in context
    assert context["b_done"] == "done"
    assert context["current_state"] == "good", context
    assert 0.75 < elapsed < 5, elapsed


def _monitor_reader(runner: Runner, machine: str) -> socket.socket:
    with runner.store() as store:
        path = monitor_socket_path(monitor_dir(store), machine)
    reader = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    reader.connect(str(path))
    reader.settimeout(10)
    return reader


def _read_records(reader: socket.socket, until: str) -> list[dict[str, object]]:
    buffer = b""
    records: list[dict[str, object]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        buffer += reader.recv(65536)
        *lines, buffer = buffer.split(b"\n")
        records += [json.loads(line) for line in lines if line]
        if any(record["kind"] == until for record in records):
            return records
    pytest.fail(f"no {until} record in {records}")


def test_inbound_events_wait_until_idle_and_unhandled_ones_are_reported(runner: Runner) -> None:
    (runner.cwd / "m.yaml").write_text("""
initial_state: busy
metadata: {machine_name: listener}
transitions:
  - {from: busy, to: idle, event: wake_up}
  - {from: idle, to: done, event: ping}
actions:
  busy:
    - {type: sleep, duration: 1.5}
  done:
    - {type: bash, command: "printf '%s' {payload.word} > done.txt"}
""")
    proc = runner.start("run", "m.yaml")
    runner.wait_running(proc, "listener")
    reader = _monitor_reader(runner, "listener")
    runner.run("send", "listener", "bogus")
    runner.run("send", "listener", "ping", "--payload", '{"word": "pong"}')
    with runner.store() as store:
        row = store.get_machine("listener")
        assert row is not None and row.state == "busy"  # events wait while it is busy
        assert {e.status for e in store.list_events(target="listener")} == {"pending"}
    records = _read_records(reader, "machine_stopped")
    assert proc.wait(10) == 0, proc.output()
    reader.close()
    unhandled = [r for r in records if r["kind"] == "unhandled_event"]
    assert [(r["event"], r["from"]) for r in unhandled] == [("bogus", "idle")]
    transitions = [(r["from"], r["event"], r["to"]) for r in records if r["kind"] == "transition"]
    assert transitions == [("busy", "wake_up", "idle"), ("idle", "ping", "done")]
    assert all(r["v"] == 1 and r["machine"] == "listener" for r in records)
    warning = [line for line in proc.output().splitlines() if "event 'bogus'" in line]
    assert len(warning) == 1 and "WARNING" in warning[0], proc.output()
    assert warning[0].endswith("has no transition in state idle: dropped")
    assert (runner.cwd / "done.txt").read_text() == "pong"  # the final state ran its actions
    with runner.store() as store:
        assert {e.status for e in store.list_events(target="listener")} == {"done"}


#: The queue worker with a final state (``finished``) its jobs never reach.
FINISHABLE = [("working", "finished", "finish")]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_and_releases_the_job(runner: Runner, signum: int) -> None:
    (runner.cwd / "w.yaml").write_text(
        queue_worker("sleeper", "touch started; sleep 30; touch finished", transitions=FINISHABLE)
    )
    proc = runner.start("run", "w.yaml")
    runner.wait_running(proc, "sleeper")
    job = runner.run("jobs", "add", "--type", "t").stdout.strip()
    wait_until(lambda: (runner.cwd / "started").exists(), 10, proc.output)
    with runner.store() as store:
        socket_dir = Path(str(store.socket_dir))
    ours = [p for p in os.listdir(socket_dir) if f"@{proc.pid}-" in p or p.endswith("sleeper.sock")]
    assert ours, "expected the machine's sockets"
    proc.signal(signum)
    assert proc.wait(10) == 0
    output = proc.output()
    assert "Traceback" not in output and "KeyboardInterrupt" not in output
    assert f"released job {job} back to the queue" in output
    with runner.store() as store:
        row = store.get_machine("sleeper")
        assert row is not None and row.status == "stopped"
        released = store.get_job(job)
        assert released is not None and released.status == "pending" and released.attempts == 0
    assert not [p for p in os.listdir(socket_dir) if p in ours], "socket files left behind"
    time.sleep(0.3)
    assert not (runner.cwd / "finished").exists(), "the running command was not stopped"


def test_a_failed_action_fails_the_current_job_with_retries(runner: Runner) -> None:
    (runner.cwd / "w.yaml").write_text(queue_worker("failing", "exit 4", transitions=FINISHABLE))
    proc = runner.start("run", "w.yaml")
    runner.wait_running(proc, "failing")
    job = runner.run("jobs", "add", "--type", "t", "--max-attempts", "2").stdout.strip()

    def failed() -> bool:
        with runner.store() as store:
            found = store.get_job(job)
        return found is not None and found.status == "failed"

    wait_until(failed, 15, proc.output)
    with runner.store() as store:
        found = store.get_job(job)
    assert found is not None and found.attempts == 2
    assert found.last_error is not None and "exit 4" in found.last_error


def test_the_current_job_is_completed_without_complete_job(tmp_path: Path) -> None:
    from smc.runtime.store import open_store

    machine = compile_machine(
        """
initial_state: waiting
transitions:
  - {from: waiting, to: working, event: new_job}
  - {from: working, to: waiting, event: job_done}
  - {from: waiting, to: finished, event: no_jobs}
actions:
  waiting:
    - {type: check_database_queue, wait: 0.2}
  working:
    - {type: bash, command: "printf '%s' {n} >> seen.txt", cwd: "{cwd}"}
""",
        tmp_path,
    )
    database = tmp_path / "smc.db"
    with open_store(database) as store:
        ids = [store.add_job("t", {"n": n}).id for n in range(3)]
    run_engine(machine, database, initial_context={"cwd": str(tmp_path)})
    with open_store(database) as store:
        assert [store.get_job(job).status for job in ids] == ["completed"] * 3  # type: ignore[union-attr]
    assert (tmp_path / "seen.txt").read_text() == "012"


@pytest.mark.postgres
def test_a_machine_listens_again_after_its_postgres_wakeup_connection_drops(
    runner: Runner,
) -> None:
    """A PostgreSQL restart or a cut idle connection ends the LISTEN connection of every
    worker. The machine must listen again on a new connection (not sit on its 1 s poll for
    the rest of its life), and events sent afterwards must still arrive."""
    import psycopg

    from smc.runtime.store import machine_channel, open_store
    from smc.runtime.store.waker import postgres_channel_name
    from tests.support.backends import PG_URL, postgres_schema_url

    (runner.cwd / "m.yaml").write_text("""
initial_state: idle
metadata: {machine_name: listener}
transitions:
  - {from: idle, to: pinged, event: ping}
  - {from: pinged, to: done, event: ping}
""")
    with postgres_schema_url() as url:
        runner.env["SMC_DB"] = url
        schema = url.rsplit("schema=", 1)[1]
        channel = postgres_channel_name(schema, machine_channel("listener"))

        def listeners() -> set[int]:
            with psycopg.connect(PG_URL, autocommit=True) as connection:
                rows = connection.execute(
                    "SELECT pid FROM pg_stat_activity WHERE query = %s",
                    (f'LISTEN "{channel}"',),
                ).fetchall()
            return {pid for (pid,) in rows}

        def state() -> str | None:
            with open_store(url) as store:
                row = store.get_machine("listener")
            return None if row is None else row.state

        proc = runner.start("run", "m.yaml")
        first = wait_until(listeners, 20, lambda: f"never listened:\n{proc.output()}")
        with psycopg.connect(PG_URL, autocommit=True) as connection:
            for pid in first:
                connection.execute("SELECT pg_terminate_backend(%s)", (pid,))
        again = wait_until(
            lambda: listeners() - first,
            20,
            lambda: f"did not listen again after the connection dropped:\n{proc.output()}",
        )
        assert len(again) == 1
        assert "wake-ups for events restored" in proc.output()
        runner.run("send", "listener", "ping")
        wait_until(lambda: state() == "pinged", 10, lambda: proc.output())
        runner.run("send", "listener", "ping")
        assert proc.wait(10) == 0, proc.output()
        assert state() == "done"


@pytest.mark.postgres
def test_a_worker_listens_for_its_events_and_new_jobs_on_one_postgres_connection(
    runner: Runner,
) -> None:
    """A server's connections are few (100 by default): a worker's events and the jobs
    channel share one LISTEN connection, and both are heard again after it drops."""
    import psycopg

    from smc.runtime.store import JOBS_CHANNEL, machine_channel, open_store
    from smc.runtime.store.waker import postgres_channel_name
    from tests.support.backends import PG_URL, postgres_schema_url

    (runner.cwd / "w.yaml").write_text(
        queue_worker("both", transitions=[("waiting", "done", "finish")])
    )
    with postgres_schema_url() as url:
        runner.env["SMC_DB"] = url
        schema = url.rsplit("schema=", 1)[1]
        events = postgres_channel_name(schema, machine_channel("both"))
        jobs = postgres_channel_name(schema, JOBS_CHANNEL)

        def last_query_is(channel: str) -> set[int]:
            with psycopg.connect(PG_URL, autocommit=True) as connection:
                rows = connection.execute(
                    "SELECT pid FROM pg_stat_activity WHERE query = %s", (f'LISTEN "{channel}"',)
                ).fetchall()
            return {pid for (pid,) in rows}

        def completed() -> int:
            with open_store(url) as store:
                return store.queue_counts()["completed"]

        proc = runner.start("run", "w.yaml")
        # One connection ran LISTEN for the events, then for the jobs: its last statement.
        first = wait_until(lambda: last_query_is(jobs), 20, lambda: proc.output())
        assert len(first) == 1
        assert last_query_is(events) == set()
        with psycopg.connect(PG_URL, autocommit=True) as connection:
            connection.execute("SELECT pg_terminate_backend(%s)", (next(iter(first)),))
        again = wait_until(lambda: last_query_is(jobs) - first, 20, lambda: proc.output())
        assert len(again) == 1 and last_query_is(events) == set()
        wait_until(
            lambda: "wake-ups for events and new jobs restored" in proc.output(),
            20,
            lambda: proc.output(),
        )
        with open_store(url) as store:
            store.add_job("task", {})
        wait_until(lambda: completed() == 1, 10, lambda: proc.output())
        runner.run("send", "both", "finish")
        assert proc.wait(10) == 0, proc.output()


def test_a_timer_driven_machine_reads_its_inbox_when_rung_and_once_a_second_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A machine that a 20 ms timer wakes 50 times a second looked in the store for events
    # each time it went to sleep. Now it looks when its event channel rings, and once per
    # FALLBACK_POLL_SECONDS anyway: an event written without a ring (a lost one) still
    # arrives, within that second.
    machine = compile_machine(
        """
initial_state: tick
transitions:
  - {from: tick, to: tock, event: timeout(0.02)}
  - {from: tock, to: tick, event: timeout(0.02)}
  - {from: "*", to: done, event: finish}
actions:
  tick:
    - {type: add_to_list, list_key: ticks, value: "t"}
""",
        tmp_path,
    )
    database = tmp_path / "smc.db"
    looks: list[float] = []
    real_claim = SqlStore.claim_events

    def counted(self: SqlStore, target: str, *args: object, **kwargs: object) -> object:
        looks.append(time.monotonic())
        return real_claim(self, target, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SqlStore, "claim_events", counted)
    open_store(database).close()  # the schema, before the writer below

    def send_without_a_ring() -> None:
        time.sleep(1.5)
        with sqlite3.connect(database) as connection:
            connection.execute(
                "INSERT INTO machine_events (target_machine, event_type, payload, created_at) "
                "VALUES (?, 'finish', '{}', ?)",
                (machine.MACHINE_NAME, time.time()),
            )
        sent.append(time.monotonic())

    sent: list[float] = []
    writer = threading.Thread(target=send_without_a_ring)
    writer.start()
    started = time.monotonic()
    engine = run_engine(machine, database, timeout=10)
    finished = time.monotonic()
    writer.join()
    assert engine.context["current_state"] == "done"
    ticks = len(engine.context["ticks"])
    assert ticks >= 25, ticks  # about 35 in 1.5 s at 20 ms a transition
    # The first look, one a second after it, the one that finds the event: not one per sleep.
    assert len(looks) <= 2 + (finished - started) / FALLBACK_POLL_SECONDS + 1, (len(looks), ticks)
    assert finished - sent[0] < FALLBACK_POLL_SECONDS + 0.5
