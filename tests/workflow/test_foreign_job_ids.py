"""A job id a run would give its task, taken first by someone else's job (docs/workflows.md,
"Job ids"): ``smc jobs add --id r1.a.1`` before run ``r1`` queues task ``a``. Real ``smc
workflow run`` and ``smc run`` worker processes, on SQLite and on PostgreSQL. The run never
takes that job's outcome as its task's: the attempt fails, saying whose id it is, and a
retry runs the task under the next attempt's id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from ulid import ULID

from smc.runtime.store import open_store
from smc.workflow.model import Workflow
from smc.workflow.scheduler import Scheduler, start_run
from tests.support.harness import Proc, Runner, wait_until
from tests.support.machines import queue_worker

#: Each job appends its id to effects.log: what really ran.
TASK_SCRIPT = """#!/bin/sh
printf '%s\\n' "$1" >> effects.log
"""


def _setup(runner: Runner, store_url: str) -> None:
    script = runner.cwd / "task.sh"
    script.write_text(TASK_SCRIPT)
    script.chmod(0o755)
    runner.env["SMC_DB"] = store_url


def _worker(runner: Runner, store_url: str) -> Proc:
    path = runner.cwd / "w1.yaml"
    path.write_text(yaml.safe_dump(yaml.safe_load(queue_worker("w1", "./task.sh {id}"))))
    proc = runner.start("run", str(path))

    def running() -> bool:
        assert proc.popen.poll() is None, proc.output()
        with open_store(store_url) as store:
            row = store.get_machine("w1")
        return row is not None and row.status == "running"

    wait_until(running, 30, proc.output)
    return proc


def _effects(runner: Runner) -> list[str]:
    path = runner.cwd / "effects.log"
    return path.read_text().split() if path.exists() else []


def _workflow(runner: Runner, text: str) -> Path:
    path = runner.cwd / "wf.yaml"
    path.write_text(text)
    return path


def _ledger(runner: Runner, run_id: str) -> list[dict[str, Any]]:
    result = runner.run("workflow", "status", run_id, "--format", "jsonl")
    return [json.loads(line) for line in result.stdout.splitlines()]


def _status(runner: Runner, run_id: str) -> dict[str, Any]:
    result = runner.run("workflow", "status", run_id, "--format", "json")
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_a_users_job_under_a_tasks_id_is_not_the_tasks_outcome(
    runner: Runner, store_url: str
) -> None:
    """The user's job ran and completed before the run: the run used to count task ``a`` as
    completed by it (``a`` never ran). Now attempt 1 fails naming the id, attempt 2 runs."""
    _setup(runner, store_url)
    added = runner.run("jobs", "add", "--type", "t", "--id", "r1.a.1", "--data", '{"mine": 1}')
    assert added.stdout.strip() == "r1.a.1"
    worker = _worker(runner, store_url)

    def user_job_done() -> bool:
        with open_store(store_url) as store:
            job = store.get_job("r1.a.1")
        return job is not None and job.status == "completed"

    wait_until(user_job_done, 30, worker.output)
    path = _workflow(
        runner,
        "workflow: w\ntasks:\n"
        "  a: {job_type: t, retry: {max_attempts: 2, backoff: 50ms}}\n"
        "  b: {job_type: t, needs: [a]}\n",
    )
    result = runner.run("workflow", "run", str(path), "--run-id", "r1", timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _effects(runner) == ["r1.a.1", "r1.a.2", "r1.b.1"]
    moves = [(e["from"], e["to"], e["attempt"], e["job_id"]) for e in _ledger(runner, "r1")]
    assert [m for m in moves if m[:2] != ("FAILED", "PENDING")] == [
        ("PENDING", "RUNNING", 1, "r1.a.1"),
        ("RUNNING", "FAILED", 1, "r1.a.1"),
        ("PENDING", "RUNNING", 2, "r1.a.2"),
        ("RUNNING", "COMPLETED", 2, "r1.a.2"),
        ("PENDING", "RUNNING", 1, "r1.b.1"),
        ("RUNNING", "COMPLETED", 1, "r1.b.1"),
    ]
    failed = next(e for e in _ledger(runner, "r1") if e["to"] == "FAILED")
    assert "r1.a.1" in failed["error"] and "did not queue" in failed["error"]
    # The user's job is left as it was: its data, its status.
    with open_store(store_url) as store:
        job = store.get_job("r1.a.1")
    assert job is not None and job.status == "completed" and job.data == {"mine": 1}


def test_a_pending_users_job_under_a_tasks_id_fails_the_task_at_once(
    runner: Runner, store_url: str
) -> None:
    """The user's job waits for a job type no worker takes: the run used to wait for it
    forever. Now the task fails (one attempt) and the run ends failed, its dependents
    skipped; the user's job is still there, pending."""
    _setup(runner, store_url)
    runner.run("jobs", "add", "--type", "nobody", "--id", "r2.a.1")
    path = _workflow(
        runner, "workflow: w\ntasks:\n  a: {job_type: t}\n  b: {job_type: t, needs: [a]}\n"
    )
    result = runner.run("workflow", "run", str(path), "--run-id", "r2", timeout=40, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    status = _status(runner, "r2")
    tasks = {t["task"]: (t["state"], t["attempt"], t["job_id"]) for t in status["tasks"]}
    assert status["status"] == "failed"
    assert tasks == {"a": ("FAILED", 1, "r2.a.1"), "b": ("SKIPPED", 0, None)}
    error = next(t["last_error"] for t in status["tasks"] if t["task"] == "a")
    assert "r2.a.1" in error and "did not queue" in error
    with open_store(store_url) as store:
        job = store.get_job("r2.a.1")
    assert job is not None and job.status == "pending" and job.job_type == "nobody"


def test_a_job_naming_the_run_from_another_trace_is_not_the_runs(tmp_path: Path) -> None:
    """A job whose data names run ``r3``, task and attempt, but not the trace of this run
    ``r3`` (a run of the same id before it, or data written to look like it): the scheduler
    does not take it. One in its own trace is taken, as after a scheduler killed between
    queueing it and recording it."""
    workflow = Workflow.from_data({"workflow": "w", "tasks": {"a": {"job_type": "t"}}})
    with open_store(str(tmp_path / "smc.db")) as store:
        workflow, trace_id = start_run(store, workflow, "r3", str(ULID()))
        context = {"run_id": "r3", "workflow": "w", "task": "a", "attempt": 1, "needs": {}}
        store.add_job("t", {"workflow": {**context, "trace_id": str(ULID())}}, job_id="r3.a.1")
        scheduler = Scheduler(store, workflow, "r3", trace_id, runs_dir=tmp_path / ".runs")
        outcome = scheduler.run()
        assert outcome.status == "failed" and outcome.states == {"a": "FAILED"}
        (task,) = store.list_workflow_tasks("r3")
        assert task.last_error is not None and "did not queue" in task.last_error

        workflow, trace_id = start_run(store, workflow, "r4", str(ULID()))
        context = {**context, "run_id": "r4", "trace_id": trace_id}
        store.add_job("t", {"workflow": context}, job_id="r4.a.1")
        store.cancel_job("r3.a.1")  # left pending by the run above: not the one to claim
        claimed = store.claim_job("me")
        assert claimed is not None and claimed.id == "r4.a.1"
        store.complete_job(claimed.id, claimed.claim_token, result={"ok": 1})
        scheduler = Scheduler(store, workflow, "r4", trace_id, runs_dir=tmp_path / ".runs")
        outcome = scheduler.run()
        assert outcome.status == "completed" and outcome.states == {"a": "COMPLETED"}
