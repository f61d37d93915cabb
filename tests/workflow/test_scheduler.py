"""The scheduler in this process against a real SQLite file, with a worker thread that
claims the jobs through its own store connection and completes or fails them as a task
table says (the end-to-end tests in tests/e2e/test_workflows.py use real ``smc run``
workers)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ulid import ULID

from smc import IllegalTransition
from smc.runtime.checkpoints import git_checkpoint
from smc.runtime.history import history_record
from smc.runtime.store import JobRefusedError, Store, StoreError, open_store
from smc.workflow import scheduler as scheduler_module
from smc.workflow.contract import TaskExecution
from smc.workflow.ledger import ledger_entries, run_history
from smc.workflow.model import Workflow
from smc.workflow.plan import CycleError, plan, plan_graph
from smc.workflow.scheduler import RunHeld, Scheduler, job_id_for, start_run
from smc.workflow.tracing import run_span_id
from tests.support import PROJECT_ROOT

#: task name -> what its job does on attempt N: True completes it, False fails it, a float
#: sleeps that long first and completes.
Behaviour = Callable[[str, int], bool | float]


class Worker:
    def __init__(self, db: Path | str, behaviour: Behaviour) -> None:
        self.db = db
        self.behaviour = behaviour
        self.ran: list[str] = []
        self.data: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, daemon=True)

    def __enter__(self) -> Worker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _work(self) -> None:
        with open_store(str(self.db)) as store:
            while not self._stop.is_set():
                try:
                    self._one(store)
                except StoreError:  # a lost connection (the fault tests): the next reconnects
                    time.sleep(0.01)

    def _one(self, store: Store) -> None:
        job = store.claim_job("thread-worker", lease_seconds=2.0)
        if job is None:
            time.sleep(0.005)
            return
        self.ran.append(job.id)
        self.data[job.id] = job.data
        task, attempt = job.data["workflow"]["task"], job.data["workflow"]["attempt"]
        outcome = self.behaviour(task, attempt)
        if isinstance(outcome, float):
            time.sleep(outcome)
            outcome = True
        if outcome:
            store.complete_job(job.id, job.claim_token, result={"task": task})
        else:
            store.fail_job(job.id, f"{task} failed", job.claim_token)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "smc.db"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    with open_store(str(db)) as opened:
        yield opened


def _workflow(tasks: dict[str, dict[str, object]], on_failure: str = "skip_dependents") -> Workflow:
    return Workflow.from_data({"workflow": "w", "on_failure": on_failure, "tasks": tasks})


def _scheduler(
    store: Store, workflow: Workflow, tmp_path: Path, run_id: str = "run1", **options: object
) -> Scheduler:
    workflow, trace_id = start_run(store, workflow, run_id, str(ULID()))
    return Scheduler(
        store,
        workflow,
        run_id,
        trace_id,
        runs_dir=tmp_path / ".runs",
        poll_interval=0.005,
        **options,  # type: ignore[arg-type]
    )


# ---- planning -----------------------------------------------------------------------------


def test_ties_are_broken_by_file_order_and_waves_group_the_order() -> None:
    result = plan_graph({"z": [], "a": ["z"], "m": [], "b": ["z", "m"], "c": ["a", "b"]})
    assert result.waves == (("z", "m"), ("a", "b"), ("c",))
    assert result.order == ("z", "m", "a", "b", "c")
    assert result.dependents["z"] == ("a", "b")


def test_a_cycle_is_graphlibs_cycle_error() -> None:
    with pytest.raises(CycleError) as raised:
        plan_graph({"a": ["b"], "b": ["a"]})
    assert set(raised.value.args[1]) == {"a", "b"}


def test_a_workflow_round_trips_through_its_stored_form() -> None:
    workflow = _workflow(
        {
            "a": {"job_type": "x", "retry": {"max_attempts": 3, "backoff": "2s"}, "timeout": "10m"},
            "b": {"job_type": "y", "needs": ["a"], "data": {"k": 1}, "checkpoint": "done"},
        }
    )
    assert Workflow.from_data(workflow.to_data()) == workflow
    assert workflow.task("a").retry.delay(1) == 2.0 and workflow.task("a").retry.delay(3) == 8.0
    assert workflow.task("a").timeout == 600.0
    assert plan(workflow).order == ("a", "b")


def test_the_contract_class_is_fresh_from_its_source() -> None:
    """smc/workflow/contract is ``smc build`` output of the execution contract's YAML, like
    generated/ is of examples/: stale or hand-edited, this fails."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "smc",
            "build",
            "--no-diagrams",
            "-o",
            "smc/workflow/contract",
            "examples/execution/task_execution.yaml",
            "--check",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---- running ------------------------------------------------------------------------------


def test_a_job_queued_by_a_killed_scheduler_is_not_queued_again(
    store: Store, db: Path, tmp_path: Path
) -> None:
    """The window between queueing a task's job and recording it RUNNING: the job is there,
    the task PENDING. The next scheduler finds the job (same id) and runs it once."""
    workflow = _workflow({"a": {"job_type": "x"}, "b": {"job_type": "x", "needs": ["a"]}})
    scheduler = _scheduler(store, workflow, tmp_path)
    # As the killed scheduler wrote it: its data names the run, the task, the attempt and the
    # run's trace (a job under the id that does not is someone else's: test_foreign_job_ids).
    queued = {"run_id": "run1", "workflow": "w", "task": "a", "attempt": 1, "needs": {}}
    queued["trace_id"] = scheduler.trace_id
    store.add_job("x", {"workflow": queued}, job_id=job_id_for("run1", "a", 1))
    with Worker(db, lambda task, attempt: True) as worker:
        outcome = scheduler.run()
    assert outcome.status == "completed"
    assert worker.ran == ["run1.a.1", "run1.b.1"]
    # Each job says what it is, and carries what the tasks it needs produced.
    assert worker.data["run1.b.1"]["workflow"] == {
        "run_id": "run1",
        "workflow": "w",
        "task": "b",
        "attempt": 1,
        "trace_id": scheduler.trace_id,
        "needs": {"a": {"task": "a"}},
    }


def test_a_finished_run_is_reported_not_run_again(store: Store, db: Path, tmp_path: Path) -> None:
    workflow = _workflow({"a": {"job_type": "x"}})
    with Worker(db, lambda task, attempt: True) as worker:
        assert _scheduler(store, workflow, tmp_path).run().status == "completed"
        again = _scheduler(store, workflow, tmp_path).run()
    assert again.status == "completed" and again.states == {"a": "COMPLETED"}
    assert worker.ran == ["run1.a.1"]


def test_a_second_scheduler_of_a_held_run_is_refused(store: Store, tmp_path: Path) -> None:
    workflow = _workflow({"a": {"job_type": "x"}})
    _scheduler(store, workflow, tmp_path)
    token = store.take_workflow_run("run1", stale_after=30)
    assert token is not None
    with pytest.raises(RunHeld):
        _scheduler(store, workflow, tmp_path).run()


def test_fail_fast_cancels_every_unfinished_task(store: Store, db: Path, tmp_path: Path) -> None:
    workflow = _workflow(
        {
            "broken": {"job_type": "x"},
            "slow": {"job_type": "x"},
            "after": {"job_type": "x", "needs": ["slow"]},
        },
        on_failure="fail_fast",
    )
    with Worker(db, lambda task, attempt: task != "broken" and 0.3) as worker:
        outcome = _scheduler(store, workflow, tmp_path).run()
    assert outcome.status == "failed"
    assert outcome.states == {"broken": "FAILED", "slow": "CANCELLED", "after": "CANCELLED"}
    assert "run1.after.1" not in worker.ran


def test_a_cancel_request_cancels_the_queued_jobs_and_the_scheduler_retries_none(
    store: Store, db: Path, tmp_path: Path
) -> None:
    """``cancel_workflow_run`` cancels the run's queued jobs itself (with its scheduler
    dead, a worker once ran them after the cancel). The live scheduler that then finds its
    task's job cancelled must not take it for a failure: that queued the task's next
    attempt, a job nobody wanted."""
    workflow = _workflow({"a": {"job_type": "x", "retry": {"max_attempts": 3, "backoff": "10ms"}}})
    scheduler = _scheduler(store, workflow, tmp_path)

    def cancel_once_queued() -> None:
        with open_store(str(db)) as other:
            deadline = time.monotonic() + 10
            while other.get_job("run1.a.1") is None:
                assert time.monotonic() < deadline
                time.sleep(0.005)
            assert other.cancel_workflow_run("run1")
            job = other.get_job("run1.a.1")
            assert job is not None and job.status == "cancelled"  # at once, by the request

    canceller = threading.Thread(target=cancel_once_queued)
    canceller.start()
    outcome = scheduler.run()
    canceller.join(10)
    assert outcome.status == "cancelled" and outcome.states == {"a": "CANCELLED"}
    assert store.get_job("run1.a.2") is None
    [task] = store.list_workflow_tasks("run1")
    assert (task.attempt, task.last_error) == (1, "the run was cancelled")
    # The scheduler's job names its run in its data: a retry by hand is refused.
    with pytest.raises(JobRefusedError, match="workflow run 'run1'"):
        store.retry_job("run1.a.1")


def test_continue_runs_dependents_of_a_failed_task(store: Store, db: Path, tmp_path: Path) -> None:
    workflow = _workflow(
        {"broken": {"job_type": "x"}, "after": {"job_type": "x", "needs": ["broken"]}},
        on_failure="continue",
    )
    with Worker(db, lambda task, attempt: task != "broken"):
        outcome = _scheduler(store, workflow, tmp_path).run()
    assert outcome.status == "failed"
    assert outcome.states == {"broken": "FAILED", "after": "COMPLETED"}


def test_an_attempt_past_its_timeout_fails_and_is_retried(
    store: Store, db: Path, tmp_path: Path
) -> None:
    workflow = _workflow(
        {
            "slow": {
                "job_type": "x",
                "timeout": "100ms",
                "retry": {"max_attempts": 2, "backoff": "10ms"},
            }
        }
    )
    with Worker(db, lambda task, attempt: 0.5 if attempt == 1 else True):
        outcome = _scheduler(store, workflow, tmp_path).run()
    assert outcome.status == "completed"
    run = store.get_workflow_run("run1")
    assert run is not None
    ledger = ledger_entries(run_history(store, run), run)
    failed = [e for e in ledger if e["to"] == "FAILED"]
    assert [(e["attempt"], e["error"]) for e in failed] == [(1, "timed out after 0.1s")]
    job = store.get_job("run1.slow.1")
    assert job is not None and job.status == "failed"


def test_a_job_no_worker_claims_is_reported_once_and_the_run_waits_for_one(
    store: Store, db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """With no worker taking the task's job type, `smc workflow run` waited without a word
    (the README's tour starts a worker of another type)."""
    monkeypatch.setattr(scheduler_module, "UNCLAIMED_NOTICE_SECONDS", 0.3)
    caplog.set_level(logging.WARNING, logger="smc.workflow")

    def notices() -> list[str]:
        return [r.getMessage() for r in caplog.records if "no worker has claimed" in r.getMessage()]

    def late_worker() -> None:
        deadline = time.monotonic() + 30
        while not notices() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)  # polls after the notice: said once, not at each
        with Worker(db, lambda task, attempt: True) as worker:
            while not worker.ran and time.monotonic() < deadline:
                time.sleep(0.01)

    late = threading.Thread(target=late_worker, daemon=True)
    late.start()
    outcome = _scheduler(store, _workflow({"build": {"job_type": "x"}}), tmp_path).run()
    late.join(30)
    assert outcome.status == "completed"
    [notice] = notices()
    assert notice.startswith("task build: job run1.build.1 (type 'x') has waited")


def test_the_history_holds_each_tasks_moves_in_the_runs_trace_with_the_workers_rows(
    store_url: str, tmp_path: Path
) -> None:
    """Both backends: every move of every task (a retried one included) is a history row,
    in order, in the run's trace, which the jobs and so the worker's rows carry too."""
    workflow = _workflow(
        {
            "a": {"job_type": "x", "retry": {"max_attempts": 2, "backoff": "10ms"}},
            "b": {"job_type": "x", "needs": ["a"]},
            "c": {"job_type": "x", "needs": ["b"]},
        },
        on_failure="fail_fast",
    )
    with open_store(store_url) as store:
        scheduler = _scheduler(store, workflow, tmp_path)
        with Worker(store_url, lambda task, attempt: not (task == "a" and attempt == 1)):
            assert scheduler.run().status == "completed"
        run = store.get_workflow_run("run1")
        assert run is not None
        rows = run_history(store, run)
    trace = scheduler.trace_id
    assert {row.trace_id for row in rows} == {trace}
    moves = [
        (row.machine, row.from_state, row.event, row.to_state, row.attempt, row.job_id)
        for row in rows
        if row.kind == "transition"
    ]
    assert [move for move in moves if move[0] == "w/a"] == [
        ("w/a", "PENDING", "to_RUNNING", "RUNNING", 1, "run1.a.1"),
        ("w/a", "RUNNING", "to_FAILED", "FAILED", 1, "run1.a.1"),
        ("w/a", "FAILED", "to_PENDING", "PENDING", 1, "run1.a.1"),
        ("w/a", "PENDING", "to_RUNNING", "RUNNING", 2, "run1.a.2"),
        ("w/a", "RUNNING", "to_COMPLETED", "COMPLETED", 2, "run1.a.2"),
    ]
    for task in ("b", "c"):
        assert [move for move in moves if move[0] == f"w/{task}"] == [
            (f"w/{task}", "PENDING", "to_RUNNING", "RUNNING", 1, f"run1.{task}.1"),
            (f"w/{task}", "RUNNING", "to_COMPLETED", "COMPLETED", 1, f"run1.{task}.1"),
        ]
    # Interleaved with the queue's rows of each job, in the order things happened: queued
    # first; then the worker's claim and completion, and the scheduler's RUNNING, in an order
    # that is not fixed (the scheduler queues the job before it records the move, so a quick
    # worker may claim it, or even complete it, in between); COMPLETED last, once the
    # scheduler has seen the completion.
    story = [
        (row.kind, row.machine, row.to_state)
        for row in rows
        if row.job_id == "run1.b.1" or row.machine == "w/b"
    ]
    claimed = ("job_claimed", "thread-worker", None)
    completed = ("job_completed", "thread-worker", None)
    running = ("transition", "w/b", "RUNNING")
    assert story[0] == ("job_added", "", None)
    assert sorted(story[1:4]) == sorted([claimed, completed, running])
    assert story.index(claimed) < story.index(completed)
    assert story[4:] == [("transition", "w/b", "COMPLETED")]
    assert [row.kind for row in rows if row.machine == "w"] == [
        "workflow_started",
        "workflow_finished",
    ]
    assert rows[-1].to_state == "completed"
    ledger = ledger_entries(rows, run)
    assert [(e["task"], e["from"], e["to"]) for e in ledger][:2] == [
        ("a", "PENDING", "RUNNING"),
        ("a", "RUNNING", "FAILED"),
    ]
    assert ledger[1]["error"] == "a failed" and ledger[1]["run_id"] == "run1"
    # `smc monitor --db postgresql://…` shows the failed move's excerpt as its error.
    failed = next(row for row in rows if row.machine == "w/a" and row.to_state == "FAILED")
    assert history_record(failed)["error"] == "a failed"


def test_the_contract_refuses_an_illegal_move_before_anything_is_written(
    store: Store, tmp_path: Path
) -> None:
    workflow = _workflow({"a": {"job_type": "x"}})
    scheduler = _scheduler(store, workflow, tmp_path)
    scheduler._token = store.take_workflow_run("run1", stale_after=30)
    scheduler._load()
    task = scheduler._tasks["a"]
    with pytest.raises(IllegalTransition):
        scheduler._move(task, TaskExecution.Event.TO_COMPLETED)  # PENDING cannot complete
    assert [t.state for t in store.list_workflow_tasks("run1")] == ["PENDING"]
    assert store.history(kinds=["transition"]) == []


def test_checkpoints_are_written_once_per_completed_task(
    store: Store, db: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "config", "user.email", "t@t"], check=True)
    subprocess.run(["git", "-C", str(repo), "config", "user.name", "t"], check=True)
    workflow = _workflow({"a": {"job_type": "x", "checkpoint": "a-done"}, "b": {"job_type": "x"}})
    with Worker(db, lambda task, attempt: True):
        _scheduler(store, workflow, tmp_path, checkpoint_repository=repo).run()
    checkpoints = tmp_path / ".runs" / "run1" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["a.json", "b.json"]
    # A scheduler killed after the commit and before the JSON file makes both again on
    # resume: the commit is found and not made twice.
    assert not git_checkpoint(repo, "a-done", "run1")
    log = subprocess.run(
        ["git", "-C", str(repo), "log", "--format=%s"], capture_output=True, text=True
    )
    assert log.stdout.splitlines() == ["a-done: run1"]


def test_spans_of_a_run_share_its_trace_id(store: Store, db: Path, tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from smc.workflow.tracing import OtelTracer

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    workflow = _workflow(
        {
            "a": {"job_type": "x", "retry": {"max_attempts": 2, "backoff": "10ms"}},
            "b": {"job_type": "x", "needs": ["a"]},
        }
    )
    workflow, trace_id = start_run(store, workflow, "run1", str(ULID()))
    trace_int = int(ULID.from_str(trace_id))
    tracer = OtelTracer("w", "run1", trace_int, provider)
    scheduler = Scheduler(
        store,
        workflow,
        "run1",
        trace_id,
        runs_dir=tmp_path / ".runs",
        tracer=tracer,
        poll_interval=0.005,
    )
    with Worker(db, lambda task, attempt: task != "a" or attempt == 2):
        assert scheduler.run().status == "completed"
    spans = exporter.get_finished_spans()
    # A span per attempt; the retry edge, between attempts, is a span of its own.
    assert [(s.name, s.attributes["smc.attempt"]) for s in spans] == [
        ("task a", 1),
        ("task a FAILED -> PENDING", 1),
        ("task a", 2),
        ("task b", 1),
    ]
    assert {s.context.trace_id for s in spans} == {trace_int}
    assert {s.parent.span_id for s in spans if s.parent} == {run_span_id("run1")}
    assert spans[0].status.status_code.name == "ERROR"
    events = [(e.attributes["smc.from"], e.attributes["smc.to"]) for e in spans[3].events]
    assert events == [("PENDING", "RUNNING"), ("RUNNING", "COMPLETED")]


def test_a_checkpoint_a_killed_scheduler_missed_is_made_on_resume(
    store: Store, db: Path, tmp_path: Path
) -> None:
    """Killed after recording ``a`` COMPLETED and before its checkpoint: the next scheduler
    makes it (and does not run ``a`` again)."""
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "config", "user.email", "t@t"], check=True)
    subprocess.run(["git", "-C", str(repo), "config", "user.name", "t"], check=True)
    workflow = _workflow({"a": {"job_type": "x", "checkpoint": "a-done"}, "b": {"job_type": "x"}})
    scheduler = _scheduler(store, workflow, tmp_path, checkpoint_repository=repo)
    token = store.take_workflow_run("run1", stale_after=30)
    assert token is not None
    for source, target, attempt in (("PENDING", "RUNNING", 0), ("RUNNING", "COMPLETED", 1)):
        assert store.update_workflow_task(
            "run1",
            "a",
            token,
            from_state=source,
            from_attempt=attempt,
            state=target,
            attempt=1,
            event=f"to_{target}",
            job_id="run1.a.1",
            result={"built": True},
        )
    assert store.release_workflow_run("run1", token)
    with Worker(db, lambda task, attempt: True) as worker:
        assert scheduler.run().status == "completed"
    assert worker.ran == ["run1.b.1"]
    checkpoint = json.loads((tmp_path / ".runs" / "run1" / "checkpoints" / "a.json").read_text())
    assert checkpoint["outputs"] == {"built": True} and checkpoint["attempt"] == 1
    log = subprocess.run(
        ["git", "-C", str(repo), "log", "--format=%s"], capture_output=True, text=True
    )
    assert log.stdout.splitlines() == ["a-done: run1"]


def test_without_tracing_nothing_of_opentelemetry_is_imported() -> None:
    """Tracing off (no --otel, no $SMC_OTEL): a scheduler's tracer and a worker's engine set
    up without loading opentelemetry, installed though it is here."""
    script = (
        "import sys\n"
        "from smc.runtime.tracing import job_tracer\n"
        "from smc.workflow.scheduler import Scheduler\n"
        "from smc.workflow.tracing import make_tracer\n"
        "assert job_tracer('m') is None\n"
        "make_tracer(False, 'w', 'r', 1)\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("SMC_OTEL")}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.postgres
def test_the_scheduler_rides_out_lost_database_connections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every connection of this test (scheduler and worker, told apart from the rest of the
    server by their application name) is cut four times during a run of 20 chained tasks:
    the scheduler waits, goes on from the store's rows, and finishes the run."""
    import uuid

    import psycopg

    from tests.support.backends import PG_URL, postgres_schema_url

    name = f"smc-wf-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("PGAPPNAME", name)
    tasks: dict[str, dict[str, object]] = {"t0": {"job_type": "x"}}
    for index in range(1, 20):
        tasks[f"t{index}"] = {
            "job_type": "x",
            "needs": [f"t{index - 1}"],
            "retry": {"max_attempts": 3, "backoff": "10ms"},
        }
    cuts = []

    def cut() -> None:
        with psycopg.connect(PG_URL, autocommit=True, application_name="smc-test-admin") as admin:
            for _ in range(4):
                time.sleep(0.15)
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s",
                    (name,),
                ).fetchall()
                cuts.append(len(rows))

    with postgres_schema_url() as url, open_store(url) as store:
        scheduler = _scheduler(store, _workflow(tasks), tmp_path)
        cutter = threading.Thread(target=cut)
        with Worker(url, lambda task, attempt: 0.02):
            cutter.start()
            outcome = scheduler.run()
            cutter.join(10)
        assert outcome.status == "completed", outcome
        assert len(cuts) == 4 and sum(cuts) >= 4
        assert {t.state for t in store.list_workflow_tasks("run1")} == {"COMPLETED"}
