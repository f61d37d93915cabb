"""The README's five-minute tour, as a new user types it: a workflow is run only after a
worker for its job types was started (without one the tour's ``smc workflow run`` waited for
ever), checked by the real ``smc check``, whose SMC125 says when no machine checked with a
workflow claims one of its job types."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from tests.support import PROJECT_ROOT
from tests.support.cli import run_smc


def _tour_commands() -> list[list[str]]:
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    tour = text.split("## Five-minute tour", 1)[1]
    block = tour.split("```sh\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def test_the_tour_starts_a_worker_for_every_job_type_of_the_workflow_it_runs(
    tmp_path: Path,
) -> None:
    commands = _tour_commands()
    workflow_runs = [
        index for index, words in enumerate(commands) if words[:3] == ["smc", "workflow", "run"]
    ]
    assert workflow_runs, commands
    for index in workflow_runs:
        workflow = str(PROJECT_ROOT / commands[index][3])
        workers = [
            str(PROJECT_ROOT / words[2])
            for words in commands[:index]
            if words[:2] == ["smc", "run"] and words[-1] == "&"
        ]
        result = run_smc("check", "--format", "json", *workers, workflow, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        unclaimed = [d["message"] for d in json.loads(result.stdout) if d["code"] == "SMC125"]
        assert unclaimed == [], (commands[index], workers)
