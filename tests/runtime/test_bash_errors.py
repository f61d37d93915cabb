"""What a failed ``bash`` command leaves in the context (``last_error`` and the fields beside
it), which the job's and a workflow task's last error show: a real command run by a real
engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.harness import compile_machine, run_engine
from tests.support.machines import one_command


@pytest.mark.parametrize(
    ("command", "error"),
    [
        ("echo 'disk full' >&2; exit 3", "command failed (exit 3): disk full"),
        ("echo 'on stdout only'; exit 1", "command failed (exit 1)"),
    ],
)
def test_a_failed_commands_error_is_its_exit_code_and_what_it_wrote_to_stderr(
    command: str, error: str, tmp_path: Path
) -> None:
    """The error a failed command leaves (the job's and a workflow task's last error) is its
    exit code and its stderr; with nothing on stderr, the exit code alone (it ended in a
    colon, as if a reason had been lost)."""
    machine = compile_machine(one_command("failing", command), tmp_path)
    engine = run_engine(machine, tmp_path / "smc.db")
    assert engine.context["current_state"] == "failed"
    assert engine.context["last_error"] == error
    assert engine.context["last_error_exit_code"] == int(error.split("exit ")[1][0])
