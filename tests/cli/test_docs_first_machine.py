"""docs/language.md's first machine, as a new user copies it: it checks clean and a real worker
runs a job through it to completion (its bash command was ``process {job_id}``, a program no
machine has: every job failed with exit 127 and was retried)."""

from __future__ import annotations

import json

from tests.support import PROJECT_ROOT
from tests.support.harness import Runner, wait_until


def _first_machine() -> str:
    text = (PROJECT_ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    section = text.split("## A first machine", 1)[1]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_the_first_machine_of_the_language_guide_checks_and_completes_a_job(
    runner: Runner,
) -> None:
    machine = runner.cwd / "simple_worker.yaml"
    machine.write_text(_first_machine(), encoding="utf-8")
    checked = runner.run("check", "--format", "json", str(machine), check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert [d for d in json.loads(checked.stdout) if d["severity"] == "error"] == []
    worker = runner.start("run", str(machine))
    runner.wait_running(worker, "simple_worker")
    job = runner.run("jobs", "add", "--type", "task", "--data", "{}").stdout.strip()
    wait_until(
        lambda: runner.job_statuses().get(job) == "completed",
        20,
        lambda: f"the job never completed ({runner.job_statuses()}):\n{worker.output()}",
    )
    with runner.store() as store:
        stored = store.get_job(job)
    assert stored is not None and stored.attempts == 1, stored
