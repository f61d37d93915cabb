"""The store's workflow tables (smc/runtime/store/workflows.py), on both backends: a run and
its tasks created once, task moves fenced by the state they leave and by the scheduler's
token, one scheduler per run, cancellation, and the upgrade of a version-2 database."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from smc.runtime.store import Store, open_store
from smc.runtime.store.rows import EXCERPT_LIMIT


def _create(store_url: str) -> None:
    with open_store(store_url) as store:
        created = store.create_workflow_run(
            "r1", "release", "t1", {"workflow": "release"}, ["build", "test"], "PENDING"
        )
        assert created
        again = store.create_workflow_run("r1", "other", "t2", {}, ["x"], "PENDING")
        assert not again


#: What a scheduler puts in the data of attempt 1 of run r1's task build (the run it names
#: is how a prune knows the job is the run's).
BUILD_1_DATA = {"workflow": {"run_id": "r1", "task": "build", "attempt": 1}}


def _build_job_queued(store: Store) -> str:
    """Take run r1 (``_create``) and do what its scheduler does for task build's first
    attempt: queue job ``r1.build.1``, then record the task RUNNING with it. The run's token."""
    token = store.take_workflow_run("r1", stale_after=30)
    assert token is not None
    store.add_job("build", BUILD_1_DATA, job_id="r1.build.1")
    assert store.update_workflow_task(
        "r1",
        "build",
        token,
        from_state="PENDING",
        from_attempt=0,
        state="RUNNING",
        attempt=1,
        event="to_RUNNING",
        job_id="r1.build.1",
    )
    return token


def test_a_run_is_created_once_with_its_tasks_in_order(store_url: str) -> None:
    _create(store_url)
    with open_store(store_url) as store:
        run = store.get_workflow_run("r1")
        assert run is not None
        assert (run.workflow, run.trace_id, run.status) == ("release", "t1", "running")
        assert run.definition == {"workflow": "release"} and not run.cancel_requested
        tasks = store.list_workflow_tasks("r1")
        assert [(t.task, t.state, t.attempt, t.job_id) for t in tasks] == [
            ("build", "PENDING", 0, None),
            ("test", "PENDING", 0, None),
        ]
        assert store.get_workflow_run("nope") is None
        assert [r.run_id for r in store.list_workflow_runs()] == ["r1"]


def test_task_moves_are_fenced_by_state_attempt_and_token(store_url: str) -> None:
    """...and each move the store takes, and only those, is a history row of the run's
    trace, as are the run's start, cancel request and finish."""
    _create(store_url)
    with open_store(store_url) as store:
        token = store.take_workflow_run("r1", stale_after=30)
        assert token is not None
        # This process holds it and is alive: nobody else takes it.
        assert store.take_workflow_run("r1", stale_after=30) is None
        move: dict[str, Any] = {
            "from_state": "PENDING",
            "from_attempt": 0,
            "state": "RUNNING",
            "attempt": 1,
            "event": "to_RUNNING",
        }
        assert store.update_workflow_task("r1", "build", token, **move, job_id="j1")
        # The same move again finds the task moved already: nothing written.
        assert not store.update_workflow_task("r1", "build", token, **move, job_id="j2")
        assert not store.update_workflow_task("r1", "test", "not-the-token", **move, job_id="j")
        done: dict[str, Any] = {
            "from_state": "RUNNING",
            "from_attempt": 1,
            "state": "COMPLETED",
            "attempt": 1,
            "event": "to_COMPLETED",
        }
        assert store.update_workflow_task(
            "r1", "build", token, **done, job_id="j1", result={"out": 1}
        )
        build = store.list_workflow_tasks("r1")[0]
        assert (build.state, build.attempt, build.job_id, build.result) == (
            "COMPLETED",
            1,
            "j1",
            {"out": 1},
        )
        assert store.heartbeat_workflow_run("r1", token)
        assert store.cancel_workflow_run("r1")
        run = store.get_workflow_run("r1")
        assert run is not None and run.cancel_requested
        assert store.finish_workflow_run("r1", token, "cancelled")
        assert not store.cancel_workflow_run("r1")
        assert not store.heartbeat_workflow_run("r1", token)
        run = store.get_workflow_run("r1")
        assert run is not None and run.status == "cancelled" and run.finished_at is not None
        rows = store.history(trace_id="t1")
    assert [
        (r.kind, r.machine, r.from_state, r.event, r.to_state, r.job_id, r.attempt, r.source)
        for r in rows
    ] == [
        ("workflow_started", "release", None, None, "running", None, None, "r1"),
        ("transition", "release/build", "PENDING", "to_RUNNING", "RUNNING", "j1", 1, "r1"),
        ("transition", "release/build", "RUNNING", "to_COMPLETED", "COMPLETED", "j1", 1, "r1"),
        ("workflow_cancel_requested", "release", None, None, None, None, None, "r1"),
        ("workflow_finished", "release", "running", None, "cancelled", None, None, "r1"),
    ]
    assert {r.trace_id for r in rows} == {"t1"}
    assert rows[0].excerpt == f"scheduler pid {os.getpid()} on {socket.gethostname()}"


def test_a_long_error_is_cut_to_an_excerpt_in_the_moves_row(store_url: str) -> None:
    _create(store_url)
    with open_store(store_url) as store:
        token = store.take_workflow_run("r1", stale_after=30)
        assert token is not None
        assert store.update_workflow_task(
            "r1",
            "build",
            token,
            from_state="PENDING",
            from_attempt=0,
            state="SKIPPED",
            attempt=0,
            event="to_SKIPPED",
            job_id=None,
            last_error="é" * 2000,
        )
        (row,) = store.history(trace_id="t1", kinds=["transition"])
    assert row.excerpt == "é" * (EXCERPT_LIMIT - 1) + "…"
    assert (row.job_id, row.attempt, row.to_state) == (None, 0, "SKIPPED")


def test_finished_runs_are_pruned_with_the_history(store_url: str) -> None:
    _create(store_url)
    with open_store(store_url) as store:
        assert store.create_workflow_run("r2", "other", "t2", {}, ["a"], "PENDING")
        token = store.take_workflow_run("r1", stale_after=30)
        assert token is not None and store.finish_workflow_run("r1", token, "completed")
        # Pending and running ones are never pruned, finished ones once older than the age.
        assert store.prune_history(3600)["workflow_runs"] == 0
        time.sleep(0.05)
        removed = store.prune_history(0.01)
        assert removed["workflow_runs"] == 1
        assert store.get_workflow_run("r1") is None and store.list_workflow_tasks("r1") == []
        assert store.get_workflow_run("r2") is not None
        assert len(store.list_workflow_tasks("r2")) == 1


def test_a_running_runs_finished_task_jobs_are_kept_until_the_run_is_pruned(
    store_url: str,
) -> None:
    """A task's job that completed while its run still runs is the task's outcome, read by
    the scheduler when it resumes: a prune once deleted it, and the resumed run failed the
    task ("job … is missing") and skipped the rest."""
    _create(store_url)
    with open_store(store_url) as store:
        token = _build_job_queued(store)
        store.add_job("other", job_id="loose")
        for job_id in ("r1.build.1", "loose"):
            claimed = store.claim_job("w", [job_id.split(".")[1] if "." in job_id else "other"])
            assert claimed is not None and store.complete_job(job_id, claimed.claim_token)
        time.sleep(0.05)
        assert store.prune_history(0.01)["jobs"] == 1  # the loose one
        assert store.get_job("loose") is None and store.get_job("r1.build.1") is not None
        assert store.finish_workflow_run("r1", token, "completed")
        time.sleep(0.05)
        removed = store.prune_history(0.01)
        assert (removed["jobs"], removed["workflow_runs"]) == (1, 1)
        assert store.get_job("r1.build.1") is None


def test_a_job_named_after_a_running_run_is_kept_before_its_task_names_it(
    store_url: str,
) -> None:
    """A scheduler killed after queueing ``r1.build.1`` but before recording it in the task's
    row: a prune deleted the job once a worker finished it, and the resumed run queued the task
    again and ran it twice."""
    _create(store_url)
    with open_store(store_url) as store:
        token = store.take_workflow_run("r1", stale_after=30)
        assert token is not None
        store.add_job("build", BUILD_1_DATA, job_id="r1.build.1")
        claimed = store.claim_job("w", ["build"])
        assert claimed is not None and store.complete_job("r1.build.1", claimed.claim_token)
        time.sleep(0.05)
        assert store.prune_history(0.01)["jobs"] == 0
        assert store.get_job("r1.build.1") is not None


def test_a_run_is_kept_while_a_job_of_it_runs_and_its_jobs_go_with_it(store_url: str) -> None:
    """A cancelled run whose job a worker still held was pruned, the job kept (still running);
    a new run given the same id then took that job as its own task's outcome and ran nothing."""
    _create(store_url)
    with open_store(store_url) as store:
        token = _build_job_queued(store)
        claimed = store.claim_job("w", ["build"])
        assert claimed is not None
        assert store.finish_workflow_run("r1", token, "cancelled")
        time.sleep(0.05)
        assert store.prune_history(0.01)["workflow_runs"] == 0  # its job still runs
        assert store.get_workflow_run("r1") is not None
        assert store.complete_job("r1.build.1", claimed.claim_token)
        removed = store.prune_history(0.01)  # the job finished just now: it goes with its run
        assert removed["workflow_runs"] == 1
        assert store.get_workflow_run("r1") is None and store.get_job("r1.build.1") is None
        # the id is free: a new run of it queues its own job
        assert store.create_workflow_run("r1", "release", "t3", {}, ["build"], "PENDING")
        store.add_job("build", BUILD_1_DATA, job_id="r1.build.1")


def test_a_dead_schedulers_run_is_taken_over_at_once(store_url: str, tmp_path: Path) -> None:
    """A scheduler on this host whose process is gone is replaced without waiting for its
    heartbeat to go stale (the SIGKILL-and-restart case)."""
    _create(store_url)
    script = (
        "import sys\nfrom smc.runtime.store import open_store\n"
        "with open_store(sys.argv[1]) as s:\n"
        "    assert s.take_workflow_run('r1', stale_after=3600)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    subprocess.run([sys.executable, "-c", script, store_url], check=True, env=env, timeout=60)
    with open_store(store_url) as store:
        run = store.get_workflow_run("r1")
        assert run is not None and run.scheduler_pid not in (None, os.getpid())
        token = store.take_workflow_run("r1", stale_after=3600)
        assert token is not None
        assert store.release_workflow_run("r1", token)


def test_a_version_2_sqlite_database_gains_the_workflow_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with open_store(str(path)) as store:
        store.add_job("x", job_id="kept")
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("DROP TABLE workflow_tasks")
        connection.execute("DROP TABLE workflow_runs")
        connection.execute("UPDATE schema_version SET version = 2")
        connection.commit()
    with open_store(str(path)) as store:
        assert store.get_job("kept") is not None
        assert store.create_workflow_run("r", "w", "t", {}, ["a"], "PENDING")
    with contextlib.closing(sqlite3.connect(path)) as connection:
        assert connection.execute("SELECT version FROM schema_version").fetchall() == [(3,)]


def test_a_workflow_tasks_job_is_not_retried_by_hand(store_url: str) -> None:
    """Its run's scheduler follows the job: retried as a queue job, it ran a second time
    while the workflow still said FAILED (a reviewer did, from the web monitor's button).
    Its retries are the workflow's; the refusal says so and changes nothing."""
    import pytest

    from smc.runtime.store import JobRefusedError

    _create(store_url)
    with open_store(store_url) as store:
        token = store.take_workflow_run("r1", stale_after=30)
        assert token is not None

        def run_attempt(attempt: int, leaving: str) -> None:
            job_id = f"r1.build.{attempt}"
            data = {"workflow": {"run_id": "r1", "task": "build", "attempt": attempt}}
            store.add_job("build", data, job_id=job_id, max_attempts=1)
            assert store.update_workflow_task(
                "r1",
                "build",
                token,
                from_state=leaving,
                from_attempt=attempt - 1,
                state="RUNNING",
                attempt=attempt,
                event="to_running",
                job_id=job_id,
            )

        run_attempt(1, "PENDING")
        claimed = store.claim_job("w")
        assert claimed is not None and claimed.id == "r1.build.1"
        assert store.fail_job(claimed.id, "broke", claim_token=claimed.claim_token)
        with pytest.raises(JobRefusedError, match="workflow run 'r1'"):
            store.retry_job("r1.build.1")
        job = store.get_job("r1.build.1")
        assert job is not None and (job.status, job.attempts) == ("failed", 1)
        # An earlier attempt too, once the task's row holds the next one.
        run_attempt(2, "RUNNING")
        with pytest.raises(JobRefusedError, match="task 'build' of workflow run 'r1'"):
            store.retry_job("r1.build.1")
        # A job of no workflow is retried as before, one whose id merely looks like a task's
        # attempt too (its data does not name the run).
        for job_id in ("plain", "r1.build.9"):
            store.add_job("build", {"workflow": "mine"}, job_id=job_id, max_attempts=1)
            assert store.cancel_job(job_id) and store.retry_job(job_id)
