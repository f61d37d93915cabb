"""Failure drills (issue 5): real ``smc run`` worker processes, real signals, real files.

Each drill asserts on real state — job rows, effect logs written by the jobs' own shell
commands, files the machines wrote — with bounded waits. See docs/drills.md for what each one
proves.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from smc.runtime.monitor import monitor_dir, monitor_socket_path
from tests.support.harness import Runner, wait_until
from tests.support.machines import instant_worker

#: A simple_worker whose job is the shell command given (a YAML literal block). Not the shared
#: tests.support.machines.queue_worker on purpose: the drills run simple_worker's own shape
#: (complete_job in ``finishing``) and a multi-line command with a 120 s timeout.
WORKER = """\
name: Drill worker
initial_state: waiting
metadata:
  machine_name: drill_worker
states: [waiting, processing, finishing]
events: [new_job, no_jobs, job_done, job_completed, error]
transitions:
  - {{from: waiting, to: processing, event: new_job}}
  - {{from: waiting, to: waiting, event: no_jobs}}
  - {{from: processing, to: finishing, event: job_done}}
  - {{from: processing, to: waiting, event: error}}
  - {{from: finishing, to: waiting, event: job_completed}}
actions:
  waiting:
    - type: check_database_queue
      job_type: task
  processing:
    - type: bash
      timeout: 120
      command: |-
{command}
      success: job_done
  finishing:
    - type: complete_job
      success: job_completed
"""

#: The same worker with a no-op job (no process spawned), for drills that need speed.
FAST_WORKER = instant_worker("drill_fast")


def write_worker(runner: Runner, *command_lines: str) -> Path:
    body = "\n".join(f"        {line}" for line in command_lines)
    path = runner.cwd / "worker.yaml"
    path.write_text(WORKER.format(command=body), encoding="utf-8")
    return path


def effects(runner: Runner) -> list[str]:
    log = runner.cwd / "effects.log"
    return log.read_text().split() if log.exists() else []


def statuses(runner: Runner, ids: list[str]) -> dict[str, str]:
    found = runner.job_statuses()
    return {job: found.get(job, "missing") for job in ids}


def all_completed(runner: Runner, ids: list[str]) -> bool:
    return set(statuses(runner, ids).values()) == {"completed"}


# --- 1. SIGKILL a worker mid-job -------------------------------------------------------------


@pytest.mark.slow
def test_sigkill_mid_job_runs_it_exactly_once_more_after_the_lease(runner: Runner) -> None:
    config = write_worker(
        runner,
        "echo {id} >> effects.log",
        "if [ -e started-{id} ]; then exit 0; fi",  # the second attempt finishes at once
        "touch started-{id}",
        "echo $$ > sleeper.pid",
        "exec sleep {hold}",
    )
    first = runner.start("run", str(config), "--machine-name", "w1", "--lease-seconds", "1")
    runner.wait_running(first, "w1")
    runner.run("jobs", "add", "--type", "task", "--id", "victim", "--data", '{"hold": 120}')
    sleeper = runner.cwd / "sleeper.pid"

    def held_mid_job() -> bool:
        job = runner.store().get_job("victim")
        return job is not None and job.status == "processing" and sleeper.exists()

    wait_until(held_mid_job, 20, lambda: first.output())
    first.popen.kill()  # SIGKILL: no clean-up, the claim stays "processing"
    first.popen.wait(10)
    with contextlib.suppress(ProcessLookupError, ValueError):
        os.kill(int(sleeper.read_text()), signal.SIGKILL)  # the orphaned job process
    with runner.store() as store:
        job = store.get_job("victim")
        assert job is not None and job.status == "processing" and job.claimed_by == "w1"
        # The registry does not believe the dead worker's "running" row.
        dead = store.get_machine("w1")
        assert dead is not None and dead.status == "dead"
    # Work queued while nobody runs is not lost either.
    later = [
        runner.run("jobs", "add", "--type", "task", "--data", '{"hold": 0}').stdout.strip()
        for _ in range(3)
    ]

    second = runner.start("run", str(config), "--machine-name", "w2", "--lease-seconds", "1")
    wait_until(
        lambda: all_completed(runner, ["victim", *later]),
        30,
        lambda: f"{statuses(runner, ['victim', *later])}\n{second.output()}",
    )
    with runner.store() as store:
        job = store.get_job("victim")
        assert job is not None
        assert job.status == "completed"
        assert job.attempts == 2
        assert job.claimed_by == "w2"
    # Ran once by the killed worker (cut short) and exactly once more: the at-least-once window.
    counts = Counter(effects(runner))
    assert counts == Counter({"victim": 2, **{job_id: 1 for job_id in later}})


# --- 2. four workers, 2,000 jobs, each exactly once --------------------------------------------


@pytest.mark.slow
def test_four_workers_two_thousand_jobs_each_completed_exactly_once(runner: Runner) -> None:
    config = write_worker(runner, "echo {id} >> effects.log")
    ids = [f"job-{number:04d}" for number in range(2000)]
    with runner.store() as store:
        for job_id in ids[:1000]:  # half queued before the workers start …
            store.add_job("task", {"n": job_id}, job_id=job_id)
    workers = [
        runner.start("run", str(config), "--machine-name", f"w{index}") for index in range(4)
    ]
    for index, worker in enumerate(workers):
        runner.wait_running(worker, f"w{index}")
    with runner.store() as store:
        for job_id in ids[1000:]:  # … and half while they run
            store.add_job("task", {"n": job_id}, job_id=job_id)
    wait_until(
        lambda: runner.store().queue_counts()["completed"] == len(ids),
        120,
        lambda: f"{runner.store().queue_counts()}\n{workers[0].output()[-3000:]}",
    )
    with runner.store() as store:
        jobs = store.list_jobs(limit=len(ids) + 10)
    assert sorted(job.id for job in jobs) == ids
    assert {job.status for job in jobs} == {"completed"}
    assert {job.attempts for job in jobs} == {1}
    # The external effect log proves no job ran twice and none was skipped.
    executed = effects(runner)
    assert len(executed) == len(ids)
    assert sorted(executed) == ids
    for worker in workers:
        assert worker.popen.poll() is None, worker.output()


# --- 3. shell injection through job data --------------------------------------------------------


HOSTILE_NAMES = [
    "x; touch pwned",
    "$(touch pwned2)",
    "`touch pwned3`",
    "'; touch pwned4; '",
    '"; touch pwned5; "',
    "x\ny; touch pwned6",
    "$HOME ${HOME} \\$ \\ '\"",
    "-n",
]


@pytest.mark.slow
def test_job_data_cannot_inject_shell_commands(runner: Runner) -> None:
    config = write_worker(
        runner,
        "printf '%s\\n' {name} > plain-{id}.txt",
        "printf '%s\\n' '{name}' > single-{id}.txt",
        "printf '%s\\n' \"{name}\" > double-{id}.txt",
        # Data named like the command: it must not replace the YAML command.
        "echo {id} >> effects.log",
    )
    worker = runner.start("run", str(config))
    runner.wait_running(worker, "drill_worker")
    ids = [
        runner.run(
            "jobs", "add", "--type", "task", "--data", json.dumps({"name": name, "command": "rm"})
        ).stdout.strip()
        for name in HOSTILE_NAMES
    ]
    wait_until(lambda: all_completed(runner, ids), 30, lambda: worker.output())
    for job_id, name in zip(ids, HOSTILE_NAMES, strict=True):
        for context in ("plain", "single", "double"):
            written = (runner.cwd / f"{context}-{job_id}.txt").read_text()
            assert written == name + "\n", (context, name)
    assert sorted(effects(runner)) == sorted(ids)
    assert not [path.name for path in runner.cwd.iterdir() if path.name.startswith("pwned")]


# --- 4. a 1 MB event payload -------------------------------------------------------------------


RECEIVER = """\
name: Drill receiver
initial_state: idle
metadata:
  machine_name: drill_receiver
states: [idle, received, done]
events: [big, recorded]
transitions:
  - {from: idle, to: received, event: big}
  - {from: received, to: done, event: recorded}
actions:
  received:
    - type: bash
      command: "printf '%s' {payload.size} > size.txt"
    - type: record_payload
"""

RECORD_PAYLOAD = '''\
import hashlib


class RecordPayloadAction:
    """Writes the length and SHA-256 of the applied event's payload blob."""

    def __init__(self, config):
        self.config = config

    async def execute(self, context):
        blob = context["event_data"]["payload"]["blob"]
        digest = hashlib.sha256(blob.encode()).hexdigest()
        with open("payload.txt", "w") as out:
            out.write(f"{len(blob)} {digest}")
        return "recorded"
'''


def test_one_megabyte_event_payload_is_delivered(runner: Runner) -> None:
    (runner.cwd / "receiver.yaml").write_text(RECEIVER)
    actions = runner.cwd / "drill_actions"
    actions.mkdir()
    (actions / "record_payload.py").write_text(RECORD_PAYLOAD)
    receiver = runner.start("run", "receiver.yaml", "--actions-dir", str(actions))
    runner.wait_running(receiver, "drill_receiver")
    blob = os.urandom(500_000).hex()  # 1,000,000 characters
    payload = runner.cwd / "payload.json"
    payload.write_text(json.dumps({"blob": blob, "size": len(blob)}))
    assert payload.stat().st_size > 1_000_000
    runner.run("send", "drill_receiver", "big", "--payload", f"@{payload}")
    # Its final state is reached only through the 1 MB event: the machine then exits 0.
    assert receiver.wait(30) == 0, receiver.output()
    assert (runner.cwd / "size.txt").read_text() == "1000000"
    digest = hashlib.sha256(blob.encode()).hexdigest()
    assert (runner.cwd / "payload.txt").read_text() == f"1000000 {digest}"
    with runner.store() as store:
        (event,) = store.list_events(target="drill_receiver")
        assert event.status == "done"


# --- 5. a monitor reader that never reads ------------------------------------------------------


MONITOR_OPTIONS = ["--format", "json", "--count", "25", "--timeout", "90"]


@pytest.mark.slow
def test_monitor_reader_that_never_reads_does_not_slow_the_machine(runner: Runner) -> None:
    (runner.cwd / "fast.yaml").write_text(FAST_WORKER)
    worker = runner.start("run", "fast.yaml")
    runner.wait_running(worker, "drill_fast")
    with runner.store() as store:
        path = monitor_socket_path(monitor_dir(store), "drill_fast")
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stuck.connect(str(path))  # connected, never reads (until the end)

    # A live `smc monitor` alongside, as a user would run it.
    monitor = subprocess.Popen(
        [sys.executable, "-m", "smc", "monitor", "--machine", "drill_fast", *MONITOR_OPTIONS],
        cwd=runner.cwd,
        env=runner.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(monitor.stdout or []), daemon=True)
    reader.start()
    try:
        # Probe jobs until the monitor shows it is connected (it prints their records).
        def monitor_connected() -> bool:
            runner.run("jobs", "add", "--type", "task")
            time.sleep(0.3)
            return bool(lines)

        wait_until(monitor_connected, 30, lambda: f"smc monitor printed nothing\n{worker.output()}")
        jobs = 3000  # ~3 MB of records: far beyond the stuck reader's buffers
        with runner.store() as store:
            for _ in range(jobs):
                store.add_job("task")
        wait_until(
            lambda: runner.store().queue_counts()["pending"] == 0
            and runner.store().queue_counts()["processing"] == 0,
            90,  # a generous sanity bound; normal speed is ~1,000 jobs/s
            lambda: f"{runner.store().queue_counts()}\n{worker.output()[-3000:]}",
        )
        assert runner.store().queue_counts()["failed"] == 0
        assert monitor.wait(30) == 0, monitor.stderr.read() if monitor.stderr else ""
        reader.join(10)
    finally:
        monitor.kill()
    # The stuck reader was cut off (end-of-file after what was buffered), not waited for.
    stuck.settimeout(20)
    received = b""
    while chunk := stuck.recv(1 << 16):
        received += chunk
    stuck.close()
    records = [json.loads(line) for line in received.splitlines()]
    assert 0 < len(records) < jobs * 3
    assert worker.popen.poll() is None, worker.output()
    # What `smc monitor --format json` printed: versioned transition records of that machine.
    printed = [json.loads(line) for line in lines]
    assert len(printed) == 25
    transitions = [record for record in printed if record["kind"] == "transition"]
    assert transitions
    for record in transitions:
        assert record["v"] == 1 and record["machine"] == "drill_fast"
        assert {"from", "event", "to", "ts"} <= record.keys()
    assert {(r["from"], r["event"], r["to"]) for r in transitions} & {
        ("waiting", "new_job", "processing"),
        ("processing", "job_done", "finishing"),
        ("finishing", "job_completed", "waiting"),
    }


# --- 6. malformed job JSON ---------------------------------------------------------------------


def insert_malformed_job(runner: Runner, job_id: str) -> None:
    """A row another tool wrote: data that is not JSON (the store API refuses to write one)."""
    with runner.store() as store:
        now = time.time()
        store.connection.execute(  # type: ignore[attr-defined]
            "INSERT INTO jobs (id, job_type, data, run_after, created_at) "
            "VALUES (?, 'task', '{not json', ?, ?)",
            (job_id, now, now),
        )


def test_malformed_job_json_fails_that_job_and_the_worker_carries_on(runner: Runner) -> None:
    config = write_worker(runner, "echo {id} >> effects.log")
    insert_malformed_job(runner, "bad-before")
    good = [runner.run("jobs", "add", "--type", "task").stdout.strip() for _ in range(2)]
    worker = runner.start("run", str(config))
    runner.wait_running(worker, "drill_worker")
    wait_until(lambda: all_completed(runner, good), 20, lambda: worker.output())
    insert_malformed_job(runner, "bad-while-running")
    good += [runner.run("jobs", "add", "--type", "task").stdout.strip() for _ in range(2)]
    wait_until(lambda: all_completed(runner, good), 20, lambda: worker.output())
    with runner.store() as store:
        for job_id in ("bad-before", "bad-while-running"):
            job = store.get_job(job_id)
            assert job is not None and job.status == "failed", job
            assert job.last_error is not None and "not valid JSON" in job.last_error
            assert job.attempts <= 1  # failed at once, never retried
    assert sorted(effects(runner)) == sorted(good)
    assert worker.popen.poll() is None, worker.output()
    assert "Traceback" not in worker.output()


# --- 7. read-only database ---------------------------------------------------------------------


def test_read_only_database_is_one_clear_line_and_loses_nothing(runner: Runner) -> None:
    config = write_worker(runner, "echo {id} >> effects.log")
    ids = [runner.run("jobs", "add", "--type", "task").stdout.strip() for _ in range(3)]
    read_only = runner.start("run", str(config), "--db", f"sqlite://{runner.db}?mode=ro")
    assert read_only.wait(30) == 1
    output = read_only.output().strip()
    assert "Traceback" not in output
    error_lines = [line for line in output.splitlines() if "read-only" in line]
    assert len(error_lines) == 1, output
    assert str(runner.db) in error_lines[0]
    assert statuses(runner, ids) == {job: "pending" for job in ids}
    # The fault cleared (a writable open): every job runs, once.
    worker = runner.start("run", str(config))
    wait_until(lambda: all_completed(runner, ids), 20, lambda: worker.output())
    assert sorted(effects(runner)) == sorted(ids)


def _chattr(flag: str, *paths: Path) -> bool:
    chattr = shutil.which("chattr")
    if chattr is None:
        return False
    result = subprocess.run([chattr, flag, *map(str, paths)], capture_output=True)
    return result.returncode == 0


def test_database_made_immutable_mid_run_errors_then_recovers(runner: Runner) -> None:
    """The file becomes unwritable under a running worker (``chattr +i``, which stops root
    too, unlike chmod) and later writable again: clear errors, no crash, nothing lost."""
    config = write_worker(runner, "echo {id} >> effects.log")
    worker = runner.start("run", str(config), "--lease-seconds", "3")
    runner.wait_running(worker, "drill_worker")
    files = [runner.db, runner.db.with_name(runner.db.name + "-wal")]  # never -shm: mmapped
    probe = runner.cwd / "probe"
    probe.touch()
    if os.geteuid() != 0 or not _chattr("+i", probe):
        pytest.skip("needs root and a file system with the immutable attribute (ext4, xfs)")
    _chattr("-i", probe)
    with runner.store() as store:
        release = time.time() + 1.0  # claimable once the file is already immutable
        ids = [store.add_job("task", run_after=release).id for _ in range(5)]
    assert _chattr("+i", *files)
    try:
        time.sleep(4.0)  # the worker tries to claim (and heartbeat) against the frozen file
        assert worker.popen.poll() is None, worker.output()
        assert statuses(runner, ids) == {job: "pending" for job in ids}
    finally:
        assert _chattr("-i", *files)
    wait_until(lambda: all_completed(runner, ids), 30, lambda: worker.output())
    output = worker.output()
    assert "Traceback" not in output
    assert [line for line in output.splitlines() if str(runner.db) in line and "ERROR" in line]
    with runner.store() as store:
        assert {store.get_job(job).attempts for job in ids} == {1}  # type: ignore[union-attr]
    assert sorted(effects(runner)) == sorted(ids)
