"""The durable history written by real ``smc run`` workers, on both backends
(``docs/history.md``): a worker killed with SIGKILL leaves no gap before the kill, and one
trace id follows a job across three machines (``send_event``, ``start_fsm``)."""

from __future__ import annotations

import functools
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from smc.runtime.history import history_record
from smc.runtime.store import HistoryRow, Store, open_store
from tests.support.backends import StoreTime
from tests.support.harness import REPO, Runner, wait_until

WORKER = """
initial_state: waiting
metadata: {machine_name: worker}
states: [waiting, processing, finishing]
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: processing, to: finishing, event: job_done}
  - {from: finishing, to: waiting, event: job_completed}
actions:
  waiting:
    - {type: check_database_queue, job_type: task, wait: 0.2}
  processing:
    - {type: set_context, key: last_job, value: "{id}", success: job_done}
  finishing:
    - {type: complete_job, success: job_completed}
"""


def _use(runner: Runner, store_url: str) -> None:
    """Run the runner's processes against ``store_url`` (a SQLite file or a PG schema)."""
    runner.env["SMC_DB"] = store_url


def _transitions(rows: list[HistoryRow]) -> list[HistoryRow]:
    return [row for row in rows if row.kind == "transition"]


def test_a_sigkilled_worker_leaves_no_gap_in_its_history(runner: Runner, store_url: str) -> None:
    _use(runner, store_url)
    (runner.cwd / "worker.yaml").write_text(WORKER)
    with open_store(store_url) as store:
        for number in range(3000):
            store.add_job("task", {"n": number}, job_id=f"job-{number:04d}")
    worker = runner.start("run", "worker.yaml", "--db", store_url)

    def some_done() -> bool:
        with open_store(store_url) as store:
            return store.queue_counts()["completed"] >= 150

    wait_until(some_done, 60, worker.output)
    worker.signal(signal.SIGKILL)  # mid-stream: no stop, no last write
    assert worker.wait(10) == -signal.SIGKILL

    with open_store(store_url) as store:
        machine = store.get_machine("worker")
        rows = store.history(machine="worker", limit=100_000)
        jobs = {job.id: job for job in store.list_jobs(limit=100_000)}
    assert machine is not None
    assert rows[0].kind == "machine_started" and rows[0].to_state == "waiting"
    assert not [row for row in rows if row.kind == "machine_stopped"]  # it never stopped
    transitions = _transitions(rows)
    # One unbroken chain from the start state: no transition is missing between two others.
    state = "waiting"
    for row in transitions:
        assert row.from_state == state, f"gap before history row {row}"
        state = str(row.to_state)
    # The registry never shows a state the history has not reached: it is written with the
    # transitions that led there, so the last one recorded before its write leads to the
    # state it shows (the history may be ahead: a claim or a completion also writes it).
    assert machine.updated_at is not None
    before_write = [row for row in transitions if row.ts <= machine.updated_at]
    assert before_write and before_write[-1].to_state == machine.state
    # Every finished job's story is whole: claimed, both of its transitions, completed,
    # in that order, in the job's own trace.
    completed = [job for job in jobs.values() if job.status == "completed"]
    assert len(completed) >= 150
    for job in completed:
        story = [row for row in rows if row.job_id == job.id]
        assert [(row.kind, row.event) for row in story if row.kind != "transition"] == [
            ("job_claimed", "task"),
            ("job_completed", "task"),
        ]
        moves = [(row.from_state, row.to_state) for row in _transitions(story)]
        assert moves[:2] == [("waiting", "processing"), ("processing", "finishing")]
        assert {row.trace_id for row in story} == {job.trace_id}
        assert story[0].attempt == 1
    # ... and the job the kill interrupted, if claimed, has its claim recorded.
    for job in jobs.values():
        if job.status == "processing":
            claims = [row for row in rows if row.job_id == job.id and row.kind == "job_claimed"]
            assert len(claims) == 1


SENDER = """
initial_state: waiting
metadata: {machine_name: alpha}
states: [waiting, handing_over, handed_over]
transitions:
  - {from: waiting, to: handing_over, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: handing_over, to: handed_over, event: event_sent}
actions:
  waiting:
    - {type: check_database_queue, job_type: order, wait: 0.5}
  handing_over:
    - type: send_event
      target_machine: beta
      event_type: launch
      payload: {order: "{order}"}
"""

LAUNCHER = """
initial_state: idle
metadata: {machine_name: beta}
states: [idle, launching, waiting_for_child, finished]
transitions:
  - {from: idle, to: launching, event: launch}
  - {from: launching, to: waiting_for_child, event: launched}
  - {from: waiting_for_child, to: finished, event: child_done}
actions:
  launching:
    - type: start_fsm
      yaml_path: child.yaml
      machine_name: gamma
      context_vars: [payload.order as order]
      success: launched
"""

CHILD = """
initial_state: reporting
metadata: {machine_name: gamma}
states: [reporting, done]
transitions:
  - {from: reporting, to: done, event: event_sent}
actions:
  reporting:
    - type: send_event
      target_machine: beta
      event_type: child_done
      payload: {order: "{order}"}
"""


def test_one_trace_follows_a_job_across_three_machines(runner: Runner, store_url: str) -> None:
    _use(runner, store_url)
    for name, text in (("alpha", SENDER), ("beta", LAUNCHER), ("child", CHILD)):
        (runner.cwd / f"{name}.yaml").write_text(text)
    beta = runner.start("run", "beta.yaml", "--db", store_url)
    alpha = runner.start("run", "alpha.yaml", "--db", store_url)
    added = runner.run(
        "jobs", "add", "--db", store_url, "--type", "order", "--data", '{"order": 7}'
    )
    job_id = added.stdout.strip().split()[-1]

    def finished() -> bool:
        with open_store(store_url) as store:
            row = store.get_machine("beta")
        return row is not None and row.state == "finished"

    wait_until(finished, 60, lambda: beta.output() + alpha.output())
    # The job, its claim, alpha's hand-over, beta's launch, gamma's start and report.
    steps = (
        ("", "job_added", "order"),
        ("alpha", "job_claimed", "order"),
        ("alpha", "transition", "new_job"),
        ("beta", "event_sent", "launch"),
        ("beta", "event_received", "launch"),
        ("beta", "transition", "launch"),
        ("gamma", "machine_started", None),
        ("gamma", "transition", "event_sent"),
        ("beta", "event_sent", "child_done"),
        ("beta", "event_received", "child_done"),
        ("beta", "transition", "child_done"),
    )
    with open_store(store_url) as store:
        job = store.get_job(job_id)
        assert job is not None and job.trace_id is not None
        trace = job.trace_id

        def told() -> list[tuple[str, str, str | None]]:
            return [(row.machine, row.kind, row.event) for row in store.history(trace_id=trace)]

        # A machine's transitions are recorded with its next write (gamma's report with its
        # registry write or its stop, after beta may have finished): wait for the whole story.
        wait_until(lambda: set(steps) <= set(told()), 20, lambda: _dump(store, trace))
        rows = store.history(trace_id=trace)
        events = store.list_events(limit=100)
    story = [(row.machine, row.kind, row.event) for row in rows]
    # In the order it happened (ids grow with commits).
    assert story.index(("alpha", "job_claimed", "order")) < story.index(
        ("beta", "event_received", "launch")
    )
    assert story.index(("gamma", "machine_started", None)) < story.index(
        ("beta", "event_received", "child_done")
    )
    # The events the machines created carry the trace themselves.
    assert {event.trace_id for event in events} == {trace}
    assert {row.trace_id for row in rows} == {trace}


def _dump(store: Store, trace: str) -> str:
    return json.dumps([row.to_dict() for row in store.history(trace_id=trace)], indent=1)


def test_history_cli_lists_filters_and_prints_jsonl(runner: Runner, store_url: str) -> None:
    _use(runner, store_url)
    (runner.cwd / "worker.yaml").write_text(WORKER)
    runner.run("jobs", "add", "--db", store_url, "--type", "task", "--id", "j\x1b[2Jone")
    runner.run("jobs", "add", "--db", store_url, "--type", "task", "--id", "two")
    worker = runner.start("run", "worker.yaml", "--db", store_url)

    def done() -> bool:
        with open_store(store_url) as store:
            return store.queue_counts()["completed"] == 2

    wait_until(done, 30, worker.output)
    worker.stop()
    lines = runner.run("history", "--db", store_url, "--format", "jsonl").stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert {record["kind"] for record in records} >= {
        "job_added",
        "job_claimed",
        "transition",
        "job_completed",
        "machine_started",
        "machine_stopped",
    }
    assert [record["id"] for record in records] == sorted(record["id"] for record in records)
    only_two = runner.run("history", "--db", store_url, "--job", "two", "--format", "json")
    assert {record["job_id"] for record in json.loads(only_two.stdout)} == {"two"}
    table = runner.run("history", "--db", store_url, "--machine", "worker").stdout
    assert "\x1b" not in table and "\\x1b[2J" in table  # the hostile id, escaped
    assert "waiting --new_job--> processing" in table
    shown = runner.run("jobs", "show", "--db", store_url, "two").stdout
    assert "job_claimed" in shown and "job_completed" in shown


def test_an_idle_workers_polls_are_in_no_trace(runner: Runner, store_url: str) -> None:
    """A job's trace ends with what the job caused: the worker's idle ``no_jobs`` polls after
    it are recorded in no trace (they once were in the last job's, and filled its trace with
    a poll every few seconds until the next job)."""
    _use(runner, store_url)
    (runner.cwd / "worker.yaml").write_text(WORKER)
    with open_store(store_url) as store:
        job = store.add_job("task", job_id="traced")
    worker = runner.start("run", "worker.yaml", "--db", store_url)

    def idle_after_the_job() -> bool:
        with open_store(store_url) as store:
            rows = store.history(machine="worker", limit=100_000)
        done = [row.id for row in rows if row.kind == "job_completed"]
        return (
            bool(done)
            and sum(1 for row in rows if row.event == "no_jobs" and row.id > done[0]) >= 3
        )

    wait_until(idle_after_the_job, 30, worker.output)
    worker.stop()
    with open_store(store_url) as store:
        traced = store.history(trace_id=job.trace_id, limit=100_000)
        everything = store.history(machine="worker", limit=100_000)
    kinds = [row.kind for row in traced]
    assert "job_completed" in kinds and "transition" in kinds
    completed = next(row.id for row in traced if row.kind == "job_completed")
    assert [row for row in traced if row.event == "no_jobs" and row.id > completed] == []
    idle = [row for row in everything if row.event == "no_jobs" and row.id > completed]
    assert len(idle) >= 3 and {row.trace_id for row in idle} == {None}


ADDER = """
initial_state: adding
metadata: {machine_name: adder}
states: [adding, done]
transitions:
  - {from: adding, to: done, event: added}
actions:
  adding:
    - {type: add_follow_up, success: added}
"""

ADD_FOLLOW_UP = """
from smc.runtime.actions import BaseAction


class AddFollowUpAction(BaseAction):
    async def execute(self, context):
        self.runtime.store.add_job("follow_up", {"n": 1}, job_id="follow-up")
        return self.params.get("success", "added")
"""


def test_a_job_a_machine_adds_names_the_machine_as_its_source(
    runner: Runner, store_url: str
) -> None:
    """Its ``job_added`` row says which machine added it (it said nothing, and the page's
    trace put it among what came from outside); one added by a command has no source."""
    _use(runner, store_url)
    (runner.cwd / "adder.yaml").write_text(ADDER)
    (runner.cwd / "actions").mkdir()
    (runner.cwd / "actions" / "add_follow_up.py").write_text(ADD_FOLLOW_UP)
    runner.run("jobs", "add", "--db", store_url, "--type", "outside", "--id", "from-cli")
    adder = runner.start("run", "adder.yaml", "--db", store_url)

    def added() -> bool:
        with open_store(store_url) as store:
            return store.get_job("follow-up") is not None

    wait_until(added, 30, adder.output)
    adder.stop()
    with open_store(store_url) as store:
        rows = store.history(kinds=["job_added"])
    assert {row.job_id: row.source for row in rows} == {"from-cli": None, "follow-up": "adder"}


TICKER = """
initial_state: idle
metadata: {machine_name: ticker}
states: [idle, handling]
transitions:
  - {from: idle, to: handling, event: ping}
  - {from: handling, to: idle, event: timeout(0.3)}
  - {from: idle, to: idle, event: timeout(0.1)}
"""


def test_a_timers_loop_with_no_job_ends_the_trace_and_a_timers_move_keeps_it(
    runner: Runner, store_url: str
) -> None:
    """An event's trace follows what it caused, a timer's move out of the state it led to
    included; a timer's loop with no job in hand is a poll (as ``no_jobs`` is) and is in no
    trace (every tick once filled the last event's trace for ever)."""
    _use(runner, store_url)
    (runner.cwd / "ticker.yaml").write_text(TICKER)
    ticker = runner.start("run", "ticker.yaml", "--db", store_url)

    def ticks_after(event: str) -> int:
        with open_store(store_url) as store:
            rows = _transitions(store.history(machine="ticker", limit=100_000))
        moved = [row.id for row in rows if row.event == event]
        return sum(1 for row in rows if moved and row.id > moved[0] and row.from_state == "idle")

    wait_until(lambda: _has_ticked(store_url), 30, ticker.output)
    runner.run("send", "--db", store_url, "ticker", "ping")
    wait_until(lambda: ticks_after("timeout(0.3)") >= 3, 30, ticker.output)
    ticker.stop()
    with open_store(store_url) as store:
        [sent] = store.history(kinds=["event_sent"])
        rows = _transitions(store.history(machine="ticker", limit=100_000))
    traced = [(row.from_state, row.event, row.to_state) for row in rows if row.trace_id]
    assert traced == [("idle", "ping", "handling"), ("handling", "timeout(0.3)", "idle")]
    assert {row.trace_id for row in rows if row.trace_id} == {sent.trace_id}
    ticks = [row for row in rows if row.event == "timeout(0.1)"]
    assert len(ticks) >= 4 and {row.trace_id for row in ticks} == {None}


def _has_ticked(store_url: str) -> bool:
    with open_store(store_url) as store:
        return bool(store.history(machine="ticker", kinds=["transition"], limit=1))


def test_a_dropped_event_is_recorded_in_its_own_trace(runner: Runner, store_url: str) -> None:
    """An event with no transition where the machine is: its drop is in the event's trace,
    with its sending (it was once in the trace the machine had been working in), and the
    machine's own trace is left as it was."""
    _use(runner, store_url)
    (runner.cwd / "worker.yaml").write_text(WORKER)
    with open_store(store_url) as store:
        job = store.add_job("task", job_id="earlier")
    worker = runner.start("run", "worker.yaml", "--db", store_url)

    def recorded(kind: str) -> bool:
        with open_store(store_url) as store:
            return bool(store.history(machine="worker", kinds=[kind]))

    wait_until(lambda: recorded("job_completed"), 30, worker.output)
    runner.run("send", "--db", store_url, "worker", "bogus")
    wait_until(lambda: recorded("event_dropped"), 30, worker.output)
    worker.stop()
    with open_store(store_url) as store:
        [sent] = store.history(kinds=["event_sent"])
        [dropped] = store.history(kinds=["event_dropped"])
    assert sent.trace_id is not None and sent.trace_id != job.trace_id
    assert dropped.trace_id == sent.trace_id and dropped.event == "bogus"


PANEL = """
initial_state: panel
metadata: {machine_name: panel}
states:
  - name: panel
    parallel: true
    states:
      - {name: power, initial: power_off, states: [power_off, power_on]}
      - {name: signal, initial: signal_red, states: [signal_red, signal_green]}
transitions:
  - {from: power_off, to: power_on, event: switch}
  - {from: signal_red, to: signal_green, event: toggle}
"""


def test_a_parallel_charts_rows_carry_its_configuration_to_smc_history(
    runner: Runner, store_url: str
) -> None:
    """A real ``smc run`` of a two-region parallel chart: its start and each move keep every
    active state (``to_state`` is the parallel state itself, which says neither region's);
    ``smc history --format jsonl`` and the monitor record show them; other rows keep none."""
    _use(runner, store_url)
    (runner.cwd / "panel.yaml").write_text(PANEL)
    panel = runner.start("run", "panel.yaml", "--db", store_url)

    def recorded(kind: str, count: int) -> bool:
        with open_store(store_url) as store:
            return len(store.history(machine="panel", kinds=[kind])) == count

    wait_until(lambda: recorded("machine_started", 1), 20, panel.output)
    for count, event in enumerate(("switch", "toggle"), start=1):
        runner.run("send", "--db", store_url, "panel", event)
        wait_until(functools.partial(recorded, "transition", count), 20, panel.output)
    panel.stop()
    lines = runner.run("history", "--db", store_url, "--machine", "panel", "--format", "jsonl")
    records = [json.loads(line) for line in lines.stdout.splitlines()]
    shown = [(r["kind"], r["to_state"], r["configuration"]) for r in records]
    assert [entry for entry in shown if entry[2] is not None] == [
        ("machine_started", "panel", ["panel", "power", "power_off", "signal", "signal_red"]),
        ("transition", "panel", ["panel", "power", "power_on", "signal", "signal_red"]),
        ("transition", "panel", ["panel", "power", "power_on", "signal", "signal_green"]),
    ]
    assert {kind for kind, _, states in shown if states is None} == {
        "event_sent",
        "event_received",
        "machine_stopped",
    }
    with open_store(store_url) as store:
        last = store.history(machine="panel", kinds=["transition"])[-1]
    assert history_record(last)["configuration"] == list(last.configuration or ())
    assert history_record(last)["configuration"][-1] == "signal_green"


def test_pruning_by_age_keeps_what_the_policy_says(store_url: str) -> None:
    clock = StoreTime(store_url)
    with clock.open() as store:
        old = store.add_job("task", job_id="old")
        store.add_job("task", job_id="old-pending")
        store.claim_job("w", ["task"])  # takes "old"
        store.complete_job(old.id)
        store.send_event("m", "ping")
        [event] = store.claim_events("m")
        store.ack_event(event.id, event.claim_token or "")
        store.send_event("m", "still-pending")
        clock.advance(8 * 86400)
        young = store.add_job("task", job_id="young")
        store.claim_job("w", ["task"])  # takes "old-pending"
        store.claim_job("w", ["task"])  # takes "young"
        store.complete_job(young.id)
        before = store.history(limit=100_000)
        removed = store.prune_history(7 * 86400)
        after = store.history(limit=100_000)
        remaining_jobs = {job.id for job in store.list_jobs(limit=100)}
        remaining_events = {event.event_type for event in store.list_events(limit=100)}
    cutoff = clock.clock.time() - 7 * 86400  # history rows carry the store's clock
    # History older than the retention is gone, the rest kept whole and in order; so is the
    # story of a job still running, whatever its age (its added row is 8 days old).
    assert after == [row for row in before if row.ts >= cutoff or row.job_id == "old-pending"]
    assert any(row.ts < cutoff and row.kind == "job_added" for row in after)
    assert removed["history"] == len(before) - len(after) > 0
    # Finished jobs and delivered events older than the retention are gone; jobs still open
    # (whatever their age) and young ones stay.
    assert remaining_jobs == {"old-pending", "young"} and removed["jobs"] == 1
    assert remaining_events == {"still-pending"} and removed["events"] == 1
    # A second prune finds nothing; pruning everything keeps the newest history row, so ids
    # are never handed out again.
    with clock.open() as store:
        assert store.prune_history(7 * 86400) == {
            "history": 0,
            "jobs": 0,
            "events": 0,
            "workflow_runs": 0,
        }
        newest = store.history(limit=100_000)[-1]
        running = [row.id for row in store.history(job_id="old-pending")]
        clock.advance(30 * 86400)
        store.prune_history(86400)
        assert [row.id for row in store.history()] == [*running, newest.id]
        store.add_job("task", job_id="later")
        assert store.history()[-1].id > newest.id


def test_monitor_follows_workers_on_other_hosts_through_postgres(
    runner: Runner, pg_url: str, tmp_path: Path
) -> None:
    # Two "hosts": the worker and the monitor share nothing but the PostgreSQL URL (their own
    # working and socket directories), so only the database can carry the stream.
    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"
    sockets_a = Path(tempfile.mkdtemp(prefix="smc-a-"))  # short: a socket path has a limit
    sockets_b = Path(tempfile.mkdtemp(prefix="smc-b-"))
    for host in (host_a, host_b):
        host.mkdir()
    # A worker that polls for jobs every 5 s: few idle transitions (no_jobs) in the stream.
    (host_a / "worker.yaml").write_text(WORKER.replace("wait: 0.2", "wait: 5"))
    env_a = dict(runner.env, SMC_SOCKET_DIR=str(sockets_a), SMC_DB=pg_url)
    env_b = dict(runner.env, SMC_SOCKET_DIR=str(sockets_b), SMC_DB=pg_url)
    monitor = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smc",
            "monitor",
            "--format",
            "json",
            "--count",
            "7",
            "--timeout",
            "60",
        ],
        cwd=host_b,
        env=env_b,
        stdout=subprocess.PIPE,
        stderr=(host_b / "monitor.err").open("wb"),
        text=True,
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "smc", "run", "worker.yaml"],
        cwd=host_a,
        env=env_a,
        stdout=(host_a / "worker.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        # The monitor follows from the moment it is ready, which a loaded host can take more
        # than a second to reach: its first record (the worker's start, or the worker's next
        # poll within 5 s) shows that it follows. Only then is the job added.
        assert monitor.stdout is not None
        first = monitor.stdout.readline()
        with open_store(pg_url) as store:
            store.add_job("task", job_id="far-away")
        out = first + monitor.stdout.read()
        monitor.wait(90)
        err = (host_b / "monitor.err").read_text()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
        if monitor.poll() is None:
            monitor.kill()
        shutil.rmtree(sockets_a, ignore_errors=True)
        shutil.rmtree(sockets_b, ignore_errors=True)
    assert monitor.returncode == 0, err + (host_a / "worker.log").read_text()
    records = [json.loads(line) for line in out.splitlines()]
    story = [(r["machine"], r["kind"], r["from"], r["to"], r["job_id"]) for r in records]
    assert ("", "job_added", None, None, "far-away") in story
    assert ("worker", "job_claimed", None, None, "far-away") in story
    assert ("worker", "transition", "waiting", "processing", "far-away") in story
    assert ("worker", "job_completed", None, None, "far-away") in story


def test_since_takes_any_iso_date_in_any_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--since 0001-01-01`` east of UTC once failed: the local offset left the calendar."""
    from smc.runtime.history import parse_since

    for zone in ("Asia/Tokyo", "America/Los_Angeles"):
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        try:
            assert parse_since("0001-01-01") == -62135596800.0  # taken as UTC there
            assert parse_since("9999-12-31T23:59") == 253402300740.0
            assert parse_since("2026-11-27T12:00+00:00") == 1795780800.0
        finally:
            monkeypatch.undo()
            time.tzset()


def test_monitor_through_postgres_follows_on_after_its_connections_drop(pg_url: str) -> None:
    """The server ends every connection of ``smc monitor --db postgresql://…`` (a restart, a
    failover, an administrator): it says so once, follows on from the last row it printed
    once the database answers, and misses nothing (it once exited with code 1)."""
    from tests.support.backends import connections_of, terminate

    name = f"smc-monitor-{uuid.uuid4().hex[:12]}"
    url = f"{pg_url}&application_name={name}"
    monitor = subprocess.Popen(
        [sys.executable, "-m", "smc", "monitor", "--db", url, "--format", "json"],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in monitor.stdout or ()]).start()

    def next_job() -> str | None:
        record = json.loads(lines.get(timeout=30))
        return record["job_id"] if record["kind"] == "job_added" else next_job()

    try:
        wait_until(lambda: len(connections_of(name)) == 2, 20, "the monitor never connected")
        with open_store(pg_url) as store:
            store.add_job("task", job_id="before")
            assert next_job() == "before"
            terminate(connections_of(name))  # its queries' and its LISTEN's
            store.add_job("task", job_id="during")
            store.add_job("task", job_id="after")
            assert [next_job(), next_job()] == ["during", "after"]
        assert monitor.poll() is None
    finally:
        monitor.send_signal(signal.SIGINT)
        _, err = monitor.communicate(timeout=20)
    assert monitor.returncode == 0, err
    # No machine runs in this schema, so the monitor first notes that (test_monitor.py).
    note, *notices = err.splitlines()
    assert note.startswith("smc monitor: note: no machine has run with "), err
    assert len(notices) == 2, err
    assert notices[0].startswith("smc monitor: ") and "following on once it answers" in notices[0]
    assert notices[1] == "smc monitor: the database answers again"


SMC_MONITOR = [sys.executable, "-m", "smc", "monitor"]


@pytest.mark.postgres
def test_monitor_waiting_for_a_postgres_database_prints_its_first_rows() -> None:
    """``smc monitor`` started before any machine made the schema's tables waits for them
    (it makes none) and then prints the rows from the first: it followed from the newest row
    once the tables were there, so the start of the machine that made them was skipped."""
    from tests.support.backends import postgres_schema_url

    with postgres_schema_url() as url:
        monitor = subprocess.Popen(
            [*SMC_MONITOR, "--db", url, "--format", "json", "--count", "2", "--timeout", "60"],
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(1.0)  # the monitor looks, finds no tables, and waits
            assert monitor.poll() is None
            with open_store(url) as store:  # made as a machine's start makes it
                store.add_job("task", job_id="first")
                store.add_job("task", job_id="second")
            out, err = monitor.communicate(timeout=60)
        finally:
            if monitor.poll() is None:
                monitor.kill()
    assert monitor.returncode == 0, err
    printed = [json.loads(line) for line in out.splitlines()]
    assert [(r["kind"], r["job_id"]) for r in printed] == [
        ("job_added", "first"),
        ("job_added", "second"),
    ]
    assert err.startswith("smc monitor: note: no database at "), err


@pytest.mark.postgres
def test_monitor_names_a_postgres_database_as_other_commands_do_with_no_password() -> None:
    """Its notes printed the --db URL as given: the password in it, and smc's ``schema``
    parameter where every other command says ``(schema NAME)``."""
    from tests.support.backends import postgres_schema_url

    with postgres_schema_url() as url:
        schema = url.rpartition("schema=")[2]
        secret_url = url.replace("postgresql://postgres@", "postgresql://postgres:s3cret@")
        assert secret_url != url  # trust authentication: the password is not needed
        waited = subprocess.run(
            [*SMC_MONITOR, "--db", secret_url, "--timeout", "0.3"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        open_store(url).close()
        noted = subprocess.run(
            [*SMC_MONITOR, "--db", secret_url, "--timeout", "0.3"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    shown = f"postgresql://postgres:***@127.0.0.1:5432/test (schema {schema})"
    assert waited.returncode == 0 and noted.returncode == 0
    assert waited.stderr.startswith(f"smc monitor: note: no database at {shown} yet ")
    assert noted.stderr.startswith(f"smc monitor: note: no machine has run with {shown} yet")
    assert "s3cret" not in waited.stderr + noted.stderr
