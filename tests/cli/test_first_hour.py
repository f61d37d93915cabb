"""What a new user meets in their first hour with ``smc``, as they type it: an empty
``--host``, the usage of ``smc history``, completing ``--status``, a build whose test
directory cannot be written, the run checkpoints ``smc workflow run`` leaves in the project.
Real ``python -m smc`` subprocesses."""

from __future__ import annotations

from pathlib import Path

import pytest

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
