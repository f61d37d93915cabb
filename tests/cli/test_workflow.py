"""``smc check`` on workflow files and ``smc workflow`` commands that need no worker, through
real ``python -m smc`` subprocesses (runs with workers: tests/e2e/test_workflows.py)."""

from __future__ import annotations

import json
from pathlib import Path

from smc.runtime.store import open_store
from tests.support import PROJECT_ROOT
from tests.support.cli import run_smc

RELEASE = str(PROJECT_ROOT / "examples" / "workflows" / "release.yaml")
CYCLE = """workflow: w
tasks:
  a: {job_type: x, needs: [c]}
  b: {job_type: x, needs: [a]}
  c: {job_type: x, needs: [b]}
"""


def test_check_reports_a_cycle_at_its_place_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(CYCLE)
    result = run_smc("check", "--format", "json", "w.yaml", cwd=tmp_path)
    assert result.returncode == 1
    found = [(d["line"], d["col"], d["code"]) for d in json.loads(result.stdout)]
    assert found == [(3, 28, "SMC121")]


def test_check_and_build_tell_workflows_from_machines(tmp_path: Path) -> None:
    """examples/ holds a workflow beside machines: both check, and the build writes no
    module for the workflow."""
    result = run_smc("check", str(PROJECT_ROOT / "examples"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    built = run_smc("build", str(PROJECT_ROOT / "examples"), "-o", "out", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "out" / "release_worker.py").exists()
    assert not list((tmp_path / "out").glob("release.py"))


def test_diagram_draws_waves_and_needs(tmp_path: Path) -> None:
    mermaid = run_smc("workflow", "diagram", RELEASE, cwd=tmp_path)
    assert mermaid.returncode == 0, mermaid.stderr
    lines = mermaid.stdout.splitlines()
    assert lines[0] == "flowchart LR"
    assert '  subgraph wave2["wave 2"]' in lines
    assert "  test_a --> publish" in lines and "  build --> test_b" in lines
    dot = run_smc("workflow", "diagram", RELEASE, "--format", "dot", cwd=tmp_path)
    assert '  "test_b" -> "publish";' in dot.stdout.splitlines()


def test_run_refuses_bad_input(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(CYCLE)
    db = str(tmp_path / "smc.db")
    assert run_smc("workflow", "run", "w.yaml", "--db", db, cwd=tmp_path).returncode == 1
    machine = str(PROJECT_ROOT / "examples" / "simple_worker" / "simple_worker.yaml")
    assert run_smc("workflow", "run", machine, "--db", db, cwd=tmp_path).returncode == 2
    bad_id = run_smc("workflow", "run", RELEASE, "--run-id", "../x", "--db", db, cwd=tmp_path)
    assert bad_id.returncode == 2
    assert not (tmp_path / ".runs").exists()


def test_status_and_cancel_of_an_unknown_run_exit_1(tmp_path: Path) -> None:
    db = str(tmp_path / "smc.db")
    open_store(db).close()
    assert run_smc("workflow", "status", "nope", "--db", db, cwd=tmp_path).returncode == 1
    assert run_smc("workflow", "cancel", "nope", "--db", db, cwd=tmp_path).returncode == 1
    listed = run_smc("workflow", "status", "--format", "json", "--db", db, cwd=tmp_path)
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


def test_status_cancel_and_diagram_make_no_database_and_exit_2(tmp_path: Path) -> None:
    """Only ``run`` makes a database: the others, on a mistyped --db, once made an empty one
    and ``status`` listed no runs, as if all were well."""
    db = str(tmp_path / "typo.db")
    for command in (
        ["status"],
        ["status", "r1"],
        ["cancel", "r1"],
        ["diagram", RELEASE, "--run-id", "r1"],
    ):
        result = run_smc("workflow", *command, "--db", db, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        prefix = f"smc workflow {command[0]}: error: --db: cannot open"
        assert result.stderr.startswith(prefix), result.stderr
        assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_diagram_of_an_unknown_run_exits_1(tmp_path: Path) -> None:
    db = str(tmp_path / "smc.db")
    open_store(db).close()
    result = run_smc("workflow", "diagram", RELEASE, "--run-id", "nope", "--db", db, cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == "smc workflow diagram: error: no run 'nope'\n"


def test_a_priority_beyond_32_bits_is_a_check_error_not_a_traceback(tmp_path: Path) -> None:
    """The queue refuses it (its column is 32 bits): the schema does, before the run is made."""
    (tmp_path / "w.yaml").write_text(
        "workflow: w\ntasks:\n  a: {job_type: x, priority: 4294967296}\n"
    )
    db = str(tmp_path / "smc.db")
    result = run_smc("workflow", "run", "w.yaml", "--db", db, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "SMC120" in result.stdout + result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "smc.db").exists()


def test_schema_prints_the_workflow_schema(tmp_path: Path) -> None:
    result = run_smc("schema", "--workflow", cwd=tmp_path)
    assert result.returncode == 0
    schema_file = PROJECT_ROOT / "schemas" / "workflow.schema.json"
    assert result.stdout == schema_file.read_text(encoding="utf-8")


def test_sigterm_lets_go_of_the_run_and_a_resume_uses_the_stored_definition(
    tmp_path: Path,
) -> None:
    """A second scheduler of a held run is refused (exit 4); the first, stopped with SIGTERM,
    releases the run (no holder left in the store); the run resumed from a changed file goes
    on with the definition it started with."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from smc.runtime.store import open_store

    db = str(tmp_path / "smc.db")
    (tmp_path / "w.yaml").write_text("workflow: w\ntasks:\n  a: {job_type: nobody}\n")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    command = [sys.executable, "-m", "smc", "workflow", "run", "w.yaml", "--run-id", "s1"]
    scheduler = subprocess.Popen(
        [*command, "--db", db], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30

    def queued() -> bool:  # the task's move to RUNNING is in the history
        with open_store(db) as store:
            return bool(store.history(kinds=["transition"]))

    while not (Path(db).exists() and queued()):
        assert time.monotonic() < deadline and scheduler.poll() is None
        time.sleep(0.05)
    second = run_smc("workflow", "run", "w.yaml", "--run-id", "s1", "--db", db, cwd=tmp_path)
    assert second.returncode == 4  # the first one is alive and holds the run
    scheduler.send_signal(signal.SIGTERM)
    assert scheduler.wait(30) == 130
    with open_store(db) as store:
        run = store.get_workflow_run("s1")
        assert run is not None and run.status == "running" and run.scheduler_pid is None
        store.cancel_workflow_run("s1")
    (tmp_path / "w.yaml").write_text("workflow: w\ntasks:\n  other: {job_type: nobody}\n")
    resumed = run_smc("workflow", "run", "w.yaml", "--run-id", "s1", "--db", db, cwd=tmp_path)
    assert resumed.returncode == 1  # cancelled
    assert resumed.stdout.splitlines() == ["a: CANCELLED"]
    assert "resuming it with the definition it started with" in resumed.stderr
    # The run's story: two schedulers, the first let go (SIGTERM), the cancel request and
    # with it the queued job's cancel (no scheduler held the run: a worker once ran the job
    # after the cancel), the task's two moves, the finish; the ledger is the task's moves.
    status = run_smc(
        "workflow", "status", "s1", "--history", "--format", "json", "--db", db, cwd=tmp_path
    )
    history = json.loads(status.stdout)["history"]
    assert [(row["kind"], row["machine"]) for row in history] == [
        ("workflow_started", "w"),
        ("job_added", ""),
        ("transition", "w/a"),
        ("workflow_stopped", "w"),
        ("workflow_cancel_requested", "w"),
        ("job_cancelled", ""),
        ("workflow_started", "w"),
        ("transition", "w/a"),
        ("workflow_finished", "w"),
    ]
    ledger = run_smc("workflow", "status", "s1", "--format", "jsonl", "--db", db, cwd=tmp_path)
    lines = [json.loads(line) for line in ledger.stdout.splitlines()]
    assert [(e["task"], e["from"], e["to"], e["attempt"], e["job_id"]) for e in lines] == [
        ("a", "PENDING", "RUNNING", 1, "s1.a.1"),
        ("a", "RUNNING", "CANCELLED", 1, "s1.a.1"),
    ]
    assert lines[1]["error"] == "the run was cancelled"
    table = run_smc("workflow", "status", "s1", "--history", "--db", db, cwd=tmp_path)
    rows = [line.split() for line in table.stdout.split("\n\n")[1].splitlines()[1:]]
    assert [row[0] for row in rows] == [str(entry["id"]) for entry in history]
    assert "run s1 started (scheduler pid" in table.stdout
    usage = run_smc("workflow", "status", "--history", "--db", db, cwd=tmp_path)
    assert usage.returncode == 2


def test_smc_run_of_a_workflow_says_what_to_run_instead(tmp_path: Path) -> None:
    result = run_smc("run", RELEASE, "--db", str(tmp_path / "smc.db"), cwd=tmp_path)
    assert result.returncode == 2
    assert "smc workflow run" in result.stderr
