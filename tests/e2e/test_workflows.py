"""Workflows end to end (docs/workflows.md): ``smc workflow run`` processes and ordinary
``smc run`` worker processes on a real database. Each worker (the tests' ``queue_worker``)
runs ``./task.sh TYPE JOB_ID``, which appends the job id (``<run>.<task>.<attempt>``) to
``effects.log`` (the effect log: what really ran) and fails or succeeds by the task's
name."""

from __future__ import annotations

import json
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from smc.runtime.store import open_store
from tests.support.harness import REPO, Proc, Runner, wait_until
from tests.support.machines import queue_worker

EXAMPLE = REPO / "examples" / "workflows"

TASK_SCRIPT = """#!/bin/sh
# $1: the job type, $2: the job id, <run>.<task>.<attempt>
printf '%s\\n' "$2" >> effects.log
task=$(printf '%s' "$2" | cut -d. -f2)
attempt=$(printf '%s' "$2" | cut -d. -f3)
case "$task" in
  flaky) [ "$attempt" -ge 3 ] ;;
  broken*) exit 1 ;;
  *) sleep "${TASK_SLEEP:-0}" ;;
esac
"""


def _setup(runner: Runner, db: str | None = None) -> None:
    script = runner.cwd / "task.sh"
    script.write_text(TASK_SCRIPT)
    script.chmod(0o755)
    if db is not None:
        runner.env["SMC_DB"] = db


def _worker(runner: Runner, name: str, job_type: str | None = None) -> Proc:
    """The tests' queue worker running ``./task.sh`` for each job: of any type, or of
    ``job_type`` only."""
    machine = yaml.safe_load(queue_worker(name, "./task.sh {job_type} {id}"))
    if job_type is not None:
        machine["actions"]["waiting"][0]["job_type"] = job_type
    path = runner.cwd / f"{name}.yaml"
    path.write_text(yaml.safe_dump(machine, sort_keys=False))
    return runner.start("run", str(path))


def _wait_workers(runner: Runner, db: str, workers: list[tuple[Proc, str]]) -> None:
    for proc, name in workers:

        def running(proc: Proc = proc, name: str = name) -> bool:
            if proc.popen.poll() is not None:
                pytest.fail(f"{name} exited:\n{proc.output()}")
            with open_store(db) as store:
                row = store.get_machine(name)
            return row is not None and row.status == "running"

        wait_until(running, 30, lambda proc=proc: proc.output())


def _effects(runner: Runner) -> list[str]:
    path = runner.cwd / "effects.log"
    return path.read_text().split() if path.exists() else []


def _workflow(runner: Runner, text: str, name: str = "wf.yaml") -> Path:
    path = runner.cwd / name
    path.write_text(text)
    return path


def _status(runner: Runner, run_id: str) -> dict[str, object]:
    result = runner.run("workflow", "status", run_id, "--format", "json")
    data: dict[str, object] = json.loads(result.stdout)
    return data


def _ledger(runner: Runner, run_id: str) -> list[dict[str, Any]]:
    """The run's ledger: its task transitions from the history, as ``smc workflow status
    RUN --format jsonl`` prints them."""
    result = runner.run("workflow", "status", run_id, "--format", "jsonl")
    return [json.loads(line) for line in result.stdout.splitlines()]


def _trace(runner: Runner, trace_id: str) -> list[dict[str, Any]]:
    """Every history row of a trace, as ``smc history --trace T --format jsonl`` prints it."""
    result = runner.run("history", "--trace", trace_id, "--limit", "100000", "--format", "jsonl")
    return [json.loads(line) for line in result.stdout.splitlines()]


def _moves(store_url: str, run_id: str) -> int:
    """How many task transitions of the run the history holds."""
    with open_store(store_url) as store:
        return sum(
            1 for row in store.history(kinds=["transition"], limit=100000) if row.source == run_id
        )


def test_the_release_example_runs_to_completion(runner: Runner) -> None:
    repo = runner.cwd / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    runner.env.update(
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@t",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@t",
    )
    worker = runner.start("run", str(EXAMPLE / "release_worker.yaml"))
    runner.wait_running(worker, "release_worker")
    result = runner.run(
        "workflow",
        "run",
        str(EXAMPLE / "release.yaml"),
        "--run-id",
        "rel1",
        "--checkpoint-repo",
        str(repo),
        timeout=60,
    )
    assert result.stdout.split("\n")[:4] == [
        "build: COMPLETED",
        "test_a: COMPLETED",
        "test_b: COMPLETED",
        "publish: COMPLETED",
    ]
    effects = (runner.cwd / "data" / "release" / "effects.log").read_text().splitlines()
    assert effects[0] == "build rel1.build.1" and effects[-1] == "publish rel1.publish.1"
    assert sorted(effects[1:3]) == ["test rel1.test_a.1", "test rel1.test_b.1"]
    ledger = _ledger(runner, "rel1")
    assert [(e["task"], e["from"], e["to"]) for e in ledger if e["task"] == "build"] == [
        ("build", "PENDING", "RUNNING"),
        ("build", "RUNNING", "COMPLETED"),
    ]
    status = _status(runner, "rel1")
    assert {e["trace_id"] for e in ledger} == {status["trace_id"]}
    assert status["status"] == "completed"
    # One trace holds the scheduler's moves and the worker process's rows for each job: after
    # the job was queued, the worker claimed it, made its own transitions with it and completed
    # it, all before the task's move to COMPLETED. (The scheduler queues the job before it
    # records the move to RUNNING, so the claim may come before or after that move.)
    rows = _trace(runner, str(status["trace_id"]))
    build = [
        (row["kind"], row["machine"])
        for row in rows
        if row["job_id"] == "rel1.build.1" or row["machine"] == "release/build"
    ]
    worker_rows = [row for row in build if row[1] == "release_worker"]
    assert worker_rows[0] == ("job_claimed", "release_worker")
    assert worker_rows[-1] == ("job_completed", "release_worker")
    assert ("transition", "release_worker") in worker_rows
    added = next(i for i, row in enumerate(build) if row[0] == "job_added")
    completed_move = len(build) - 1 - build[::-1].index(("transition", "release/build"))
    assert added < build.index(worker_rows[0])
    assert build.index(worker_rows[-1]) < completed_move
    checkpoint = json.loads(
        (runner.cwd / ".runs" / "rel1" / "checkpoints" / "publish.json").read_text()
    )
    assert checkpoint["attempt"] == 1 and checkpoint["checkpoint"] == "ship-complete"
    assert checkpoint["trace_id"] == status["trace_id"]
    log = subprocess.run(
        ["git", "-C", str(repo), "log", "--format=%s"], capture_output=True, text=True, check=True
    )
    assert log.stdout.splitlines() == ["ship-complete: rel1"]


def test_a_task_that_fails_twice_then_succeeds_is_retried(runner: Runner) -> None:
    _setup(runner)
    worker = _worker(runner, "w1")
    runner.wait_running(worker, "w1")
    path = _workflow(
        runner,
        "workflow: retrying\ntasks:\n"
        "  flaky: {job_type: t, retry: {max_attempts: 3, backoff: 100ms}}\n"
        "  after: {job_type: t, needs: [flaky]}\n",
    )
    runner.run("workflow", "run", str(path), "--run-id", "r2", timeout=60)
    assert _effects(runner) == ["r2.flaky.1", "r2.flaky.2", "r2.flaky.3", "r2.after.1"]
    ledger = _ledger(runner, "r2")
    moves = [(e["from"], e["to"], e["attempt"]) for e in ledger if e["task"] == "flaky"]
    assert moves == [
        ("PENDING", "RUNNING", 1),
        ("RUNNING", "FAILED", 1),
        ("FAILED", "PENDING", 1),
        ("PENDING", "RUNNING", 2),
        ("RUNNING", "FAILED", 2),
        ("FAILED", "PENDING", 2),
        ("PENDING", "RUNNING", 3),
        ("RUNNING", "COMPLETED", 3),
    ]
    # The backoff is the queue's run_after: the second attempt waited 100 ms, the third 200
    # (each job created with its run_after in one call, so the two are that far apart).
    with runner.store() as store:
        second, third = store.get_job("r2.flaky.2"), store.get_job("r2.flaky.3")
    assert second is not None and third is not None
    assert second.run_after - second.created_at == pytest.approx(0.1, abs=0.02)
    assert third.run_after - third.created_at == pytest.approx(0.2, abs=0.02)


def test_a_failing_task_skips_its_dependents(runner: Runner) -> None:
    _setup(runner)
    worker = _worker(runner, "w1")
    runner.wait_running(worker, "w1")
    path = _workflow(
        runner,
        "workflow: skipping\ntasks:\n"
        "  broken: {job_type: t, retry: {max_attempts: 2, backoff: 50ms}}\n"
        "  child: {job_type: t, needs: [broken]}\n"
        "  grandchild: {job_type: t, needs: [child]}\n"
        "  other: {job_type: t}\n"
        "on_failure: skip_dependents\n",
    )
    result = runner.run("workflow", "run", str(path), "--run-id", "r3", timeout=60, check=False)
    assert result.returncode == 1, result.stderr
    assert sorted(_effects(runner)) == ["r3.broken.1", "r3.broken.2", "r3.other.1"]
    tasks = {t["task"]: (t["state"], t["attempt"]) for t in _status(runner, "r3")["tasks"]}  # type: ignore[union-attr]
    assert tasks == {
        "broken": ("FAILED", 2),
        "child": ("SKIPPED", 0),
        "grandchild": ("SKIPPED", 0),
        "other": ("COMPLETED", 1),
    }
    assert _status(runner, "r3")["status"] == "failed"


def _layered(width: int, depth: int) -> str:
    """``depth`` layers of ``width`` tasks; each needs two of the layer before."""
    lines = ["workflow: layered", "tasks:"]
    for layer in range(depth):
        for index in range(width):
            needs = ""
            if layer:
                before = {f"t{layer - 1}_{index}", f"t{layer - 1}_{(index + 1) % width}"}
                needs = f", needs: [{', '.join(sorted(before))}]"
            lines.append(f"  t{layer}_{index}: {{job_type: t{needs}}}")
    return "\n".join(lines) + "\n"


@pytest.mark.slow
def test_a_killed_scheduler_resumes_and_runs_every_task_exactly_once(
    runner: Runner, store_url: str
) -> None:
    """SIGKILL the scheduler three times at different points of the run, restart it with
    the same run id each time: the run finishes, and the effect log shows every task run
    once, at its first attempt."""
    _setup(runner, store_url)
    runner.env["TASK_SLEEP"] = "0.05"
    workers = [(_worker(runner, f"w{n}"), f"w{n}") for n in (1, 2)]
    _wait_workers(runner, store_url, workers)
    path = _workflow(runner, _layered(width=4, depth=6))
    for kill_after in (3, 15, 30):
        scheduler = runner.start("workflow", "run", str(path), "--run-id", "kill1")

        def far_enough(scheduler: Proc = scheduler, kill_after: int = kill_after) -> bool:
            done = scheduler.popen.poll() is not None
            return done or _moves(store_url, "kill1") >= kill_after

        wait_until(far_enough, 60, scheduler.output)
        assert scheduler.popen.poll() is None, scheduler.output()
        scheduler.signal(signal.SIGKILL)
        scheduler.wait(10)
    final = runner.start("workflow", "run", str(path), "--run-id", "kill1")
    assert final.wait(120) == 0, final.output()
    effects = _effects(runner)
    counts = Counter(effects)
    assert len(counts) == 24 and set(counts.values()) == {1}, counts
    assert all(job.endswith(".1") for job in effects)
    with open_store(store_url) as store:
        run = store.get_workflow_run("kill1")
        assert run is not None and run.status == "completed"
        assert {t.state for t in store.list_workflow_tasks("kill1")} == {"COMPLETED"}
    # Every task was queued once: four schedulers, no duplicate job.
    with open_store(store_url) as store:
        jobs = [job.id for job in store.list_jobs(limit=1000)]
    assert sorted(jobs) == sorted(effects)
    # The history lost and doubled nothing across the kills: each task moved exactly
    # PENDING -> RUNNING -> COMPLETED, at attempt 1; four schedulers took the run, the last
    # finished it.
    ledger = _ledger(runner, "kill1")
    stories: dict[str, list[tuple[str, str, int]]] = {}
    for entry in ledger:
        stories.setdefault(entry["task"], []).append((entry["from"], entry["to"], entry["attempt"]))
    assert len(stories) == 24
    assert all(
        story == [("PENDING", "RUNNING", 1), ("RUNNING", "COMPLETED", 1)]
        for story in stories.values()
    ), stories
    rows = _trace(runner, str(_status(runner, "kill1")["trace_id"]))
    assert [row["kind"] for row in rows if row["machine"] == "layered"] == [
        "workflow_started"
    ] * 4 + ["workflow_finished"]
    # Each job: added once, claimed once, completed once, by a worker, in the run's trace.
    for kind in ("job_added", "job_claimed", "job_completed"):
        assert sorted(row["job_id"] for row in rows if row["kind"] == kind) == sorted(effects)


def test_the_spans_of_a_run_form_one_trace_across_three_workers(runner: Runner) -> None:
    pytest.importorskip("opentelemetry.sdk")
    _setup(runner)
    spans_file = runner.cwd / "spans.jsonl"
    runner.env["SMC_OTEL_FILE"] = str(spans_file)
    workers = [(_worker(runner, f"w_{kind}", kind), f"w_{kind}") for kind in ("b", "t", "p")]
    for proc, name in workers:
        runner.wait_running(proc, name)
    path = _workflow(
        runner,
        "workflow: traced\ntasks:\n"
        "  build: {job_type: b}\n"
        "  test: {job_type: t, needs: [build]}\n"
        "  publish: {job_type: p, needs: [test]}\n",
    )
    runner.run("workflow", "run", str(path), "--run-id", "tr1", "--otel", timeout=60)
    trace_id = str(_status(runner, "tr1")["trace_id"])
    from ulid import ULID

    expected = f"{int(ULID.from_str(trace_id)):032x}"

    def spans() -> list[dict[str, object]]:
        if not spans_file.exists():
            return []
        return [json.loads(line) for line in spans_file.read_text().splitlines()]

    # Each worker's last transition (back to waiting) is exported when it ends its span.
    wait_until(lambda: len({s["pid"] for s in spans()}) >= 4, 20, lambda: str(spans()))
    found = spans()
    assert {s["trace_id"] for s in found} == {expected}
    tasks = {s["attributes"]["smc.task"]: s for s in found if s["name"].startswith("task ")}  # type: ignore[index]
    assert set(tasks) == {"build", "test", "publish"}
    scheduler_pid = tasks["build"]["pid"]
    by_worker: dict[object, set[object]] = {}
    for span in found:
        if span["pid"] != scheduler_pid:
            by_worker.setdefault(span["pid"], set()).add(span["parent_span_id"])
    assert len(by_worker) == 3
    # Each worker's transition spans hang under the span of the task attempt it ran.
    task_spans = {s["span_id"] for s in tasks.values()}
    assert all(parents <= task_spans and len(parents) == 1 for parents in by_worker.values())


def test_cancel_stops_a_run(runner: Runner) -> None:
    _setup(runner)
    path = _workflow(
        runner, "workflow: idle\ntasks:\n  a: {job_type: nobody}\n  b: {job_type: t, needs: [a]}\n"
    )
    scheduler = runner.start("workflow", "run", str(path), "--run-id", "c1")
    wait_until(
        lambda: runner.db.exists() and _moves(str(runner.db), "c1") > 0, 30, scheduler.output
    )
    runner.run("workflow", "cancel", "c1")
    assert scheduler.wait(30) == 1
    status = _status(runner, "c1")
    assert status["status"] == "cancelled"
    assert [(e["task"], e["to"]) for e in _ledger(runner, "c1")] == [
        ("a", "RUNNING"),
        ("a", "CANCELLED"),
        ("b", "CANCELLED"),
    ]
    assert {t["task"]: t["state"] for t in status["tasks"]} == {"a": "CANCELLED", "b": "CANCELLED"}  # type: ignore[union-attr]
    with runner.store() as store:
        job = store.get_job("c1.a.1")
    assert job is not None and job.status == "cancelled"
    story = [row["kind"] for row in _trace(runner, str(status["trace_id"]))]
    assert story == [
        "workflow_started",
        "job_added",
        "transition",
        "workflow_cancel_requested",
        "job_cancelled",
        "transition",
        "transition",
        "workflow_finished",
    ]


SENDER = """
initial_state: waiting
metadata: {machine_name: sender}
transitions:
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: waiting, to: working, event: new_job}
  - {from: working, to: waiting, event: event_sent}
actions:
  waiting:
    - {type: check_database_queue, job_type: notify}
  working:
    - {type: send_event, target_machine: listener, event_type: built}
"""

LISTENER = """
initial_state: idle
metadata: {machine_name: listener}
transitions:
  - {from: idle, to: heard, event: built}
  - {from: heard, to: idle, event: noted}
actions:
  heard:
    - {type: set_context, key: heard, value: true, success: noted}
"""


def test_an_event_sent_for_a_task_joins_the_runs_trace(runner: Runner) -> None:
    """A worker sends an event to another machine while it holds a task's job: the
    receiver's transitions on it are spans of the run's trace, under that task's attempt."""
    pytest.importorskip("opentelemetry.sdk")
    spans_file = runner.cwd / "spans.jsonl"
    runner.env["SMC_OTEL_FILE"] = str(spans_file)
    for name, text in (("sender", SENDER), ("listener", LISTENER)):
        (runner.cwd / f"{name}.yaml").write_text(text)
        runner.wait_running(runner.start("run", str(runner.cwd / f"{name}.yaml")), name)
    path = _workflow(runner, "workflow: notified\ntasks:\n  tell: {job_type: notify}\n")
    runner.run("workflow", "run", str(path), "--run-id", "ev1", "--otel", timeout=60)

    def spans() -> list[dict[str, Any]]:
        if not spans_file.exists():
            return []
        return [json.loads(line) for line in spans_file.read_text().splitlines()]

    def heard() -> list[dict[str, Any]]:
        return [s for s in spans() if s["name"] == "listener idle -> heard"]

    wait_until(heard, 20, lambda: str(spans()))
    (task,) = [s for s in spans() if s["name"] == "task tell"]
    (span,) = heard()
    assert span["trace_id"] == task["trace_id"]
    assert span["parent_span_id"] == task["span_id"]
    assert span["attributes"]["smc.job_id"] == "ev1.tell.1"
