"""What a new user meets in their first hour with ``smc``, as they type it: an empty
``--host``, the usage of ``smc history``, completing ``--status``, a build whose test
directory cannot be written, the run checkpoints ``smc workflow run`` leaves in the project.
Real ``python -m smc`` subprocesses."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from smc.runtime.store import HISTORY_KINDS, JOB_STATUSES
from tests.support.cli import run_smc


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
    script = run_smc("completion", "bash", cwd=tmp_path)
    assert script.returncode == 0, script.stderr
    (tmp_path / "smc.bash").write_text(script.stdout)
    probe = """
    source ./smc.bash || exit 9
    words() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _shtab_smc;
              printf '%s\\n' "${COMPREPLY[@]}" | sort | tr '\\n' ' '; echo; }
    words smc jobs list --status ""
    words smc jobs list --status fa
    words smc history --kind ""
    """
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    statuses, failed, kinds = (set(line.split()) for line in result.stdout.splitlines())
    assert statuses == set(JOB_STATUSES)
    assert failed == {"failed"}
    assert kinds == set(HISTORY_KINDS)
    refused = run_smc("jobs", "list", "--status", "done", "--db", "smc.db", cwd=tmp_path)
    assert refused.returncode == 2
    _one_error_line(refused.stderr, "jobs")
    assert not (tmp_path / "smc.db").exists()
