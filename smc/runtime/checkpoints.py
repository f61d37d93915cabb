"""Checkpoints after a task completes (docs/workflows.md, Checkpoints): made by the workflow
scheduler after a task with ``checkpoint:`` completes, and by the ``git_checkpoint`` built-in
action in any machine (docs/actions.md).

- A JSON file per task, ``.runs/<run id>/checkpoints/<task>.json``: the task's outputs (its
  job's result), attempt, job id, run id and trace id; written atomically (a temporary file
  renamed over it), so a reader never sees half of one.
- The runs directory (``.runs``, or ``--runs-dir``), when the scheduler makes it, holds a
  ``.gitignore`` of ``*`` (as a venv and pytest's cache do): run checkpoints are the
  scheduler's own files, and the user's ``git status`` must not list them.
- With a checkpoint name and a repository: ``git commit --allow-empty -m "<name>: <run id>"``
  in that repository, run with an argument list (no shell; the name is checked by the schema
  and the run id by the CLI, and neither could reach a shell anyway). Idempotent: a commit
  with that exact message already on HEAD's history is not made again, so a scheduler
  killed after the commit and restarted does not commit twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any


class CheckpointError(Exception):
    """A Git checkpoint could not be made (git's own message)."""


#: What :func:`make_runs_directory` writes into the runs directory it makes.
RUNS_GITIGNORE = (
    "# Made by smc workflow run: run checkpoints stay out of Git (docs/workflows.md).\n*\n"
)


def make_runs_directory(runs_dir: Path) -> None:
    """Make ``runs_dir`` if it is not there, with a ``.gitignore`` that ignores it all; a
    directory that is there (the user's own ``--runs-dir``, an older ``.runs``) is left as
    it is."""
    if runs_dir.is_dir():
        return
    runs_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        runs_dir.mkdir()
    except FileExistsError:  # another scheduler made it first (and writes the file)
        return
    (runs_dir / ".gitignore").write_text(RUNS_GITIGNORE, encoding="utf-8")


def write_json_checkpoint(directory: Path, task: str, content: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{task}.json"
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{task}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(content, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def _git(repository: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repository), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def git_checkpoint(repository: Path, name: str, run_id: str) -> bool:
    """Commit ``<name>: <run id>`` (empty) in ``repository``; False when that commit exists
    already. Raises :class:`CheckpointError` when git fails."""
    message = f"{name}: {run_id}"
    found = _git(repository, "log", "--format=%s", "--fixed-strings", f"--grep={message}")
    if found.returncode == 0 and message in found.stdout.splitlines():
        return False
    done = _git(repository, "commit", "--allow-empty", "--no-verify", "-m", message)
    if done.returncode != 0:
        text = (done.stderr or done.stdout).strip().splitlines()
        raise CheckpointError(f"git commit in {repository}: {text[-1] if text else 'failed'}")
    return True
