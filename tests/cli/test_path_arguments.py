"""Wrong file and database arguments, as a new user types them: a directory where a file is
expected, an empty string (an unset ``"$VAR"``), a module name importlib cannot take. Each is
one ``smc CMD: error: …`` line and exit 2, with nothing written; never a traceback, and never
the current directory standing in for an empty path. Real ``python -m smc`` subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smc.runtime.monitor import MonitorPublisher, monitor_dir
from smc.runtime.store import open_store
from tests.support import PROJECT_ROOT
from tests.support.cli import command_name, run_smc
from tests.support.harness import wait_until

SMC = [sys.executable, "-m", "smc"]

RELEASE = str(PROJECT_ROOT / "examples" / "workflows" / "release.yaml")
SIMPLE_WORKER = str(PROJECT_ROOT / "examples" / "simple_worker" / "simple_worker.yaml")


def _one_error_line(stderr: str, command: str) -> str:
    lines = stderr.splitlines()
    assert "Traceback" not in stderr
    assert lines and lines[-1].startswith(f"smc {command}: error: "), stderr
    return lines[-1]


def _written(directory: Path) -> list[str]:
    """What a command left in ``directory`` besides the machine cache run_smc points there."""
    return sorted(entry.name for entry in directory.iterdir() if entry.name != "cache")


@pytest.mark.parametrize("subcommand", ["run", "diagram"])
def test_a_workflow_command_given_a_directory_says_it_is_one(
    tmp_path: Path, subcommand: str
) -> None:
    """It said "DIR: no such file", as if the path were mistyped."""
    folder = tmp_path / "workflows"
    folder.mkdir()
    db = str(tmp_path / "smc.db")
    result = run_smc("workflow", subcommand, str(folder), "--db", db, cwd=tmp_path)
    assert result.returncode == 2
    line = _one_error_line(result.stderr, f"workflow {subcommand}")
    assert line == (
        f"smc workflow {subcommand}: error: {folder} is a directory: smc workflow "
        f"{subcommand} takes one workflow file (WORKFLOW.yaml)"
    )
    assert _written(tmp_path) == ["workflows"]


@pytest.mark.parametrize("command", ["check", "build", "diagram", "paths", "run"])
def test_a_missing_machine_file_is_said_to_be_missing_in_the_same_words(
    tmp_path: Path, command: str
) -> None:
    """``smc run`` passed on the C library's "No such file or directory" where the others say
    "no such file or directory"."""
    result = run_smc(command, "missing.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert _one_error_line(result.stderr, command) == (
        f"smc {command}: error: missing.yaml: no such file or directory"
    )
    assert _written(tmp_path) == []


def test_a_workflow_file_that_is_missing_is_still_said_to_be_missing(tmp_path: Path) -> None:
    result = run_smc("workflow", "run", "missing.yaml", "--db", "smc.db", cwd=tmp_path)
    assert result.returncode == 2
    assert _one_error_line(result.stderr, "workflow run") == (
        "smc workflow run: error: missing.yaml: no such file"
    )
    assert _written(tmp_path) == []


@pytest.mark.parametrize(
    ("arguments", "argument_name"),
    [
        (["check", ""], "PATH"),
        (["build", SIMPLE_WORKER, "-o", ""], "-o/--output"),
        (["build", SIMPLE_WORKER, "--emit-tests", ""], "--emit-tests"),
        (["diagram", SIMPLE_WORKER, "-o", ""], "-o/--output"),
        (["paths", ""], "PATH"),
        (["export", SIMPLE_WORKER, "-o", ""], "-o/--output"),
        (["import", ""], "FILE"),
        (["run", ""], "CONFIG.yaml|CHART.scxml|MODULE:Class"),
        (["workflow", "run", ""], "FILE"),
        (["workflow", "run", RELEASE, "--runs-dir", ""], "--runs-dir"),
        (["jobs", "add", "--type", "task", "--db", ""], "--db"),
        (["status", "--db", ""], "--db"),
    ],
)
def test_an_empty_path_is_refused_not_taken_for_the_current_directory(
    tmp_path: Path, arguments: list[str], argument_name: str
) -> None:
    """``-o ''`` wrote a whole package into the current directory, ``smc check ''`` checked
    it, ``--db ''`` queued into ./smc.db and ``smc run ''`` was a traceback (exit 3)."""
    result = run_smc(*arguments, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    subcommand = " ".join(arguments[:2] if arguments[0] in ("jobs", "workflow") else arguments[:1])
    assert _one_error_line(result.stderr, subcommand) == (
        f"smc {subcommand}: error: argument {argument_name}: must not be empty"
    )
    assert _written(tmp_path) == []


@pytest.mark.parametrize("target", [":SimpleWorker", ".simple_worker", ".simple_worker:Class"])
def test_smc_run_of_a_target_that_names_no_module_exits_2(tmp_path: Path, target: str) -> None:
    """importlib raises ValueError and TypeError for these, which were a traceback (exit 3)."""
    result = run_smc("run", target, "--db", "smc.db", cwd=tmp_path)
    assert result.returncode == 2
    assert _one_error_line(result.stderr, "run") == (
        f"smc run: error: {target!r} names no module: pass a machine file (CONFIG.yaml), "
        "MODULE:Class or path/to/module.py"
    )
    assert _written(tmp_path) == []


@pytest.mark.parametrize(
    ("arguments", "command"),
    [
        (["status"], "status"),
        (["jobs", "add", "--type", "task"], "jobs add"),
        (["jobs", "list"], "jobs list"),
        (["send", "simple_worker", "stop"], "send"),
        (["history"], "history"),
        (["history", "prune", "--older-than", "1d"], "history prune"),
        (["workflow", "status"], "workflow status"),
        (["workflow", "run", RELEASE], "workflow run"),
        (["run", SIMPLE_WORKER], "run"),
    ],
)
@pytest.mark.parametrize("given_as", ["--db", "sqlite URL", "$SMC_DB"])
def test_a_database_that_is_a_directory_is_a_usage_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    arguments: list[str],
    command: str,
    given_as: str,
) -> None:
    """SQLite said only "unable to open database file", exit 1, as if the database were
    broken; the worker and the scheduler did the same after starting up."""
    folder = tmp_path / "data"
    folder.mkdir()
    if given_as == "$SMC_DB":
        monkeypatch.setenv("SMC_DB", str(folder))
        database_option: list[str] = []
    else:
        monkeypatch.delenv("SMC_DB", raising=False)
        target = str(folder) if given_as == "--db" else f"sqlite://{folder}"
        database_option = ["--db", target]
    result = run_smc(*arguments, *database_option, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    option = "$SMC_DB" if given_as == "$SMC_DB" else "--db"
    assert _one_error_line(result.stderr, command) == (
        f"smc {command}: error: {option}: {folder} is a directory; give a database file "
        f"(e.g. {folder / 'smc.db'})"
    )
    assert _written(tmp_path) == ["data"]
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(
    ("arguments", "command", "option"),
    [
        (["build", SIMPLE_WORKER, "-o"], "build", "-o/--output"),
        (["build", SIMPLE_WORKER, "--emit-tests"], "build", "--emit-tests"),
        (["diagram", SIMPLE_WORKER, "-o"], "diagram", "-o/--output"),
    ],
)
def test_an_output_directory_that_is_a_file_is_a_usage_error(
    tmp_path: Path, arguments: list[str], command: str, option: str
) -> None:
    """Writing into it was a NotADirectoryError traceback (exit 3)."""
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    result = run_smc(*arguments, str(notes), cwd=tmp_path)
    assert result.returncode == 2
    assert _one_error_line(result.stderr, command) == (
        f"smc {command}: error: argument {option}: {notes} is a file, not a directory"
    )
    assert notes.read_text() == "mine\n"


@pytest.mark.parametrize("command", ["build", "diagram"])
def test_an_output_directory_that_cannot_be_made_is_one_line(tmp_path: Path, command: str) -> None:
    """Inside a file: mkdir fails. It was a traceback (exit 3)."""
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    inside = notes / "out"
    result = run_smc(command, SIMPLE_WORKER, "-o", str(inside), cwd=tmp_path)
    assert result.returncode == 2
    line = _one_error_line(result.stderr, command)
    assert line.startswith(f"smc {command}: error: cannot write {inside}"), line
    assert notes.read_text() == "mine\n"


@pytest.mark.parametrize(
    "arguments",
    [
        ["jobs", "add", "--type", "task", "--machine-file"],
        ["send", "simple_worker", "stop", "--machine-file"],
    ],
)
def test_a_machine_file_option_given_a_directory_says_it_is_one(
    tmp_path: Path, arguments: list[str]
) -> None:
    """It said "DIR: no such file"; nothing is queued or sent."""
    folder = tmp_path / "machines"
    folder.mkdir()
    result = run_smc(*arguments, str(folder), "--db", "smc.db", cwd=tmp_path)
    assert result.returncode == 2
    command = command_name(arguments)
    assert _one_error_line(result.stderr, command) == (
        f"smc {command}: error: --machine-file {folder} is a directory: give one machine file"
    )
    assert _written(tmp_path) == ["machines"]


def test_smc_run_of_a_file_that_is_no_machine_says_what_it_takes(tmp_path: Path) -> None:
    """It was imported as a module by its stem: "cannot import notes.txt: No module named
    'notes'"."""
    (tmp_path / "notes.txt").write_text("initial_state: a\n")
    result = run_smc("run", "notes.txt", "--db", "smc.db", cwd=tmp_path)
    assert result.returncode == 2
    assert _one_error_line(result.stderr, "run") == (
        "smc run: error: notes.txt: smc run takes a machine file (*.yaml, *.yml, *.scxml), "
        "MODULE:Class or path/to/module.py"
    )
    assert _written(tmp_path) == ["notes.txt"]


@pytest.mark.parametrize("kind", ["plain directory", "missing", "file"])
def test_a_checkpoint_repository_that_is_no_git_tree_is_refused_before_the_run(
    tmp_path: Path, kind: str
) -> None:
    """git said so only when the first checkpoint was due, after the tasks before it had run,
    and the scheduler stopped with the run unfinished."""
    repository = tmp_path / "checkpoints"
    if kind == "plain directory":
        repository.mkdir()
        reason = f"{repository} is not a Git working tree (git init it, or name one)"
    elif kind == "file":
        repository.write_text("")
        reason = f"{repository}: is not a directory"
    else:
        reason = f"{repository}: no such directory"
    given = run_smc(
        "workflow",
        "run",
        RELEASE,
        "--checkpoint-repo",
        str(repository),
        "--db",
        "smc.db",
        cwd=tmp_path,
    )
    assert given.returncode == 2
    assert _one_error_line(given.stderr, "workflow run") == (
        f"smc workflow run: error: --checkpoint-repo {reason}"
    )
    workflow = tmp_path / "w.yaml"
    workflow.write_text(
        f"workflow: w\ncheckpoint_repository: {repository}\n"
        "tasks:\n  only: {job_type: build, checkpoint: done}\n"
    )
    in_file = run_smc("workflow", "run", "w.yaml", "--db", "smc.db", cwd=tmp_path)
    assert in_file.returncode == 2
    assert _one_error_line(in_file.stderr, "workflow run") == (
        f"smc workflow run: error: w.yaml: checkpoint_repository {reason}"
    )
    assert "smc.db" not in _written(tmp_path)  # no run was made


def test_smc_monitor_says_when_no_machine_has_run_with_its_database(tmp_path: Path) -> None:
    """A mistyped --db or --machine waited for ever, saying nothing; and the --db, made new
    and empty, then read as a database where nothing had run (smc status: "no machines
    registered")."""
    typo = tmp_path / "smc.bd"
    result = run_smc("monitor", "--db", str(typo), "--timeout", "0.2", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        f"smc monitor: note: no database at {typo} yet (smc monitor makes none); waiting for "
        "a machine to start with it"
    ]
    assert not typo.exists()
    assert run_smc("status", "--db", str(typo), cwd=tmp_path).returncode == 2
    # in a directory that does not exist no machine can make it: nothing to wait for
    nowhere = tmp_path / "nowhere" / "smc.db"
    refused = run_smc("monitor", "--db", str(nowhere), "--timeout", "30", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr == (
        f"smc monitor: error: --db: cannot open {nowhere}: directory {nowhere.parent} does not "
        "exist\n"
    )
    # a database made meanwhile (as a machine's start makes it) is followed once it is there
    made = tmp_path / "made.db"
    monitor = subprocess.Popen(
        [*SMC, "monitor", "--db", str(made), "--count", "1", "--format", "json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)
        assert not made.exists() and monitor.poll() is None
        with open_store(made) as store:
            directory = monitor_dir(store)
        with MonitorPublisher.open(directory, "late_worker") as publisher:
            wait_until(lambda: publisher.reader_count == 1, 30, "the monitor never connected")
            publisher.publish({"kind": "transition", "machine": "late_worker", "to": "b"})
            out, err = monitor.communicate(timeout=30)
    finally:
        if monitor.poll() is None:
            monitor.kill()
    assert monitor.returncode == 0, err
    assert json.loads(out)["machine"] == "late_worker"
    assert err.splitlines() == [
        f"smc monitor: note: no database at {made} yet (smc monitor makes none); waiting for "
        "a machine to start with it"
    ]
    database = tmp_path / "smc.db"
    with open_store(database) as store:
        store.register_machine("simple_worker", "waiting")
    arguments = ["monitor", "--db", str(database), "--timeout", "0.2"]
    followed = run_smc(*arguments, "--machine", "simple_worker", cwd=tmp_path)
    assert followed.returncode == 0 and followed.stderr == ""
    misspelt = run_smc(*arguments, "--machine", "simple_workr", cwd=tmp_path)
    assert misspelt.returncode == 0
    assert misspelt.stderr.splitlines() == [
        f"smc monitor: note: no machine named 'simple_workr' has run with {database}; "
        "waiting for it to start (`smc status` lists the machines)"
    ]
