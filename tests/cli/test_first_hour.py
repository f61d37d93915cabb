"""What a new user meets in their first hour with ``smc``, as they type it: an empty
``--host``, the usage of ``smc history``, completing ``--status``, a build whose test
directory cannot be written, the run checkpoints ``smc workflow run`` leaves in the project.
Real ``python -m smc`` subprocesses."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smc.cli import build_parser
from smc.runtime.store import HISTORY_KINDS, JOB_STATUSES, open_store
from tests.support import PROJECT_ROOT
from tests.support.cli import bash_completions, run_smc


def _one_error_line(stderr: str, command: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"smc {command}: error: "), stderr
    return lines[0]


@pytest.mark.parametrize("host", ["", " "])
@pytest.mark.parametrize("token", [[], ["--token", "t" * 16]])
def test_smc_ui_with_an_empty_host_says_the_host_is_empty(
    tmp_path: Path, host: str, token: list[str]
) -> None:
    """An unset ``"$HOST"`` was said to make the monitor "reachable from other hosts"
    (``--host  makes ...``); with a token it was taken for every interface."""
    database = tmp_path / "smc.db"
    result = run_smc("ui", "--host", host, *token, "--db", str(database), cwd=tmp_path)
    assert result.returncode == 2
    assert _one_error_line(result.stderr, "ui") == (
        "smc ui: error: --host is empty: give the address to bind (127.0.0.1, the default; "
        "0.0.0.0 for every interface)"
    )
    assert not database.exists()


def test_the_status_and_kind_options_complete_to_their_values_in_real_bash(
    tmp_path: Path,
) -> None:
    """``smc jobs list --status <TAB>`` offered nothing (the command checks the value itself,
    so argparse had no choices for shtab), nor did ``smc history --kind <TAB>``; a wrong
    value is still refused by the command, in one line."""
    statuses, failed, kinds = bash_completions(
        tmp_path, 'smc jobs list --status ""', "smc jobs list --status fa", 'smc history --kind ""'
    )
    assert statuses == set(JOB_STATUSES)
    assert failed == {"failed"}
    assert kinds == set(HISTORY_KINDS)
    refused = run_smc("jobs", "list", "--status", "done", "--db", "smc.db", cwd=tmp_path)
    assert refused.returncode == 2
    _one_error_line(refused.stderr, "jobs list")
    assert not (tmp_path / "smc.db").exists()


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            found: argparse.ArgumentParser = action.choices[name]
            return found
    raise AssertionError(f"no subcommand {name}")


def _long_options(parser: argparse.ArgumentParser) -> list[str]:
    return [
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ]


def test_smc_history_usage_shows_the_listing_without_a_command_and_prune_with_its_options(
    tmp_path: Path,
) -> None:
    """The usage ended in ``COMMAND ...``, as if listing needed a subcommand (it needs none),
    and said nothing of prune's options (``--older-than`` is required)."""
    history = _subparser(build_parser(), "history")
    prune = _subparser(history, "prune")
    result = run_smc("history", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    usage = result.stdout.split("\n\n")[0]
    listing, pruning = usage.split("\n       smc history prune ")
    assert listing.startswith("usage: smc history [")
    assert "COMMAND" not in listing
    for option in _long_options(history):
        assert f"[{option}" in listing, option
    assert "[--format table|json|jsonl]" in listing
    for option in _long_options(prune):
        assert option in pruning, option
    assert " --older-than AGE " in f" {pruning} " and "[--format table|json]" in pruning
    # Both forms do what the usage says: the listing with no command, prune with its age.
    database = tmp_path / "smc.db"
    open_store(str(database)).close()
    listed = run_smc("history", "--db", str(database), "--format", "jsonl", cwd=tmp_path)
    assert listed.returncode == 0 and listed.stdout == "", listed.stderr
    pruned = run_smc("history", "prune", "--db", str(database), "--older-than", "7d", cwd=tmp_path)
    assert pruned.returncode == 0, pruned.stderr
    without_age = run_smc("history", "prune", "--db", str(database), cwd=tmp_path)
    assert without_age.returncode == 2
    prune_help = run_smc("history", "prune", "--help", cwd=tmp_path)
    assert prune_help.stdout.startswith("usage: smc history prune [")


def _git(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(project), *args], capture_output=True, text=True, check=False
    )


def _run_workflow_to_its_end(project: Path, *options: str) -> None:
    """``smc workflow run w.yaml`` of one task, whose job this test completes as a worker."""
    (project / "w.yaml").write_text("workflow: w\ntasks:\n  a: {job_type: chore}\n")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "SMC_CACHE_DIR": str(project / "c")}
    command = ["workflow", "run", "w.yaml", "--run-id", "r1", "--db", "smc.db", *options]
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "smc", *command],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        job = None
        while job is None:
            assert time.monotonic() < deadline and scheduler.poll() is None
            time.sleep(0.05)
            if (project / "smc.db").exists():
                with open_store(str(project / "smc.db")) as store:
                    job = store.claim_job("tester", ["chore"])
                    if job is not None:
                        assert store.complete_job(job.id, job.claim_token, {"ok": True})
        _, stderr = scheduler.communicate(timeout=60)
        assert scheduler.returncode == 0, stderr
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
            scheduler.wait()


def test_the_runs_directory_smc_workflow_run_makes_is_ignored_by_git(tmp_path: Path) -> None:
    """The run checkpoints (``.runs/RUN/checkpoints/TASK.json``) were untracked files in the
    user's ``git status``, one more each run."""
    project = tmp_path / "project"
    project.mkdir()
    assert _git(project, "init", "-q").returncode == 0
    _run_workflow_to_its_end(project)
    checkpoint = project / ".runs" / "r1" / "checkpoints" / "a.json"
    assert checkpoint.is_file()
    assert (project / ".runs" / ".gitignore").is_file()
    assert _git(project, "check-ignore", "-q", str(checkpoint)).returncode == 0
    untracked = _git(project, "status", "--porcelain", "--untracked-files=all", "-z")
    assert untracked.returncode == 0
    assert [p for p in untracked.stdout.split("\0") if p.startswith("?? .runs")] == []


def test_a_runs_directory_that_is_there_already_is_left_as_it_is(tmp_path: Path) -> None:
    """``--runs-dir`` naming a directory of the user's: nothing is added to its top."""
    project = tmp_path / "project"
    mine = project / "artifacts"
    mine.mkdir(parents=True)
    _run_workflow_to_its_end(project, "--runs-dir", "artifacts")
    assert (mine / "r1" / "checkpoints" / "a.json").is_file()
    assert sorted(entry.name for entry in mine.iterdir()) == ["r1"]


def _written(directory: Path) -> dict[str, bytes | None]:
    """Every path under ``directory`` but the machine cache, with a file's bytes."""
    return {
        str(path.relative_to(directory)): path.read_bytes() if path.is_file() else None
        for path in sorted(directory.rglob("*"))
        if path.relative_to(directory).parts[0] != "cache"
    }


@pytest.mark.parametrize(
    ("layout", "options", "unwritable"),
    [
        # --emit-tests inside a file: generated/ was written in full, then the tests failed.
        ({"notes.txt": "mine\n"}, ["--emit-tests", "notes.txt/tests"], "notes.txt/tests"),
        # a test file's place taken by a directory: the same.
        (
            {"t/test_simple_worker.py/keep": "mine\n"},
            ["-o", "out", "--emit-tests", "t"],
            "t/test_simple_worker.py",
        ),
        # the package's diagrams folder is a file: __init__.py was written before it.
        ({"out/diagrams": "mine\n"}, ["-o", "out", "--emit-tests", "t"], "out/diagrams"),
    ],
    ids=["tests-under-a-file", "test-file-is-a-directory", "diagrams-is-a-file"],
)
def test_a_build_with_an_output_it_cannot_write_writes_nothing(
    tmp_path: Path, layout: dict[str, str], options: list[str], unwritable: str
) -> None:
    for relative, text in layout.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    before = _written(tmp_path)
    examples = str(PROJECT_ROOT / "examples")
    result = run_smc("build", examples, *options, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"smc build: error: cannot write {unwritable}: "), result.stderr
    assert _written(tmp_path) == before


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("status", []),
        ("jobs list", []),
        ("jobs show", ["j1"]),
        ("history", []),
        ("history prune", ["--older-than", "7d"]),
        ("paths", ["machine.yaml"]),
        ("check", ["machine.yaml"]),
        ("workflow run", ["w.yaml"]),
    ],
)
def test_an_unknown_option_is_the_commands_error_with_its_usage(
    tmp_path: Path, name: str, arguments: list[str]
) -> None:
    """``smc jobs list --bogus`` answered with the usage of ``smc COMMAND``: argparse handed
    the leftover up to ``smc`` itself."""
    result = run_smc(*name.split(), *arguments, "--bogus", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert f" smc {name} [" in lines[0], result.stderr  # its own usage, not smc COMMAND's
    assert lines[-1].startswith(f"smc {name}: error: ") and "--bogus" in lines[-1]
    assert os.listdir(tmp_path) == []  # nothing read, nothing made
