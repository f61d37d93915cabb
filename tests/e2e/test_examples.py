"""The project's examples, run end to end: every machine of an example as its own ``smc run``
process, jobs added with ``smc jobs add`` while they run, every job completed with its files."""

from __future__ import annotations

import pytest

from tests.support.harness import REPO, Runner, wait_until

EXAMPLES = REPO / "examples"


def _all_completed(runner: Runner, ids: list[str]) -> bool:
    statuses = runner.job_statuses()
    failed = [job for job in ids if statuses.get(job) == "failed"]
    if failed:
        pytest.fail(f"jobs failed: {failed}")
    return all(statuses.get(job) == "completed" for job in ids)


def test_simple_worker_processes_jobs_added_while_it_runs(runner: Runner) -> None:
    worker = runner.start("run", str(EXAMPLES / "simple_worker" / "simple_worker.yaml"))
    runner.wait_running(worker, "simple_worker")
    ids = []
    for index in range(5):
        result = runner.run("jobs", "add", "--type", "task", "--data", f'{{"message": "m{index}"}}')
        ids.append(result.stdout.strip())
    wait_until(
        lambda: _all_completed(runner, ids),
        20,
        lambda: f"jobs {runner.job_statuses()}:\n{worker.output()}",
    )
    for index, job_id in enumerate(ids):
        output = runner.cwd / "data" / "output" / f"{job_id}.txt"
        assert output.read_text() == f"processed m{index}\n"


def test_controller_worker_records_every_job(runner: Runner) -> None:
    controller = runner.start("run", str(EXAMPLES / "controller_worker" / "controller.yaml"))
    worker = runner.start("run", str(EXAMPLES / "controller_worker" / "worker.yaml"))
    runner.wait_running(controller, "task_controller")
    runner.wait_running(worker, "task_worker")
    ids = [runner.run("jobs", "add", "--type", "task").stdout.strip() for _ in range(4)]
    wait_until(lambda: _all_completed(runner, ids), 20, lambda: worker.output())
    completed = runner.cwd / "data" / "controller" / "completed.txt"

    def recorded() -> list[str]:
        return completed.read_text().splitlines() if completed.exists() else []

    wait_until(
        lambda: len(recorded()) == len(ids),
        20,
        lambda: f"{recorded()}:\n{controller.output()}",
    )
    assert sorted(recorded()) == sorted(f"{job} by task_worker" for job in ids)
    for job in ids:
        assert (runner.cwd / "data" / "worker" / f"{job}.txt").read_text() == f"done {job}\n"


@pytest.mark.slow
def test_pipeline_runs_every_job_through_three_stages(runner: Runner) -> None:
    stages = [
        ("analyzer", "data_analyzer"),
        ("processor", "data_processor"),
        ("generator", "data_generator"),
    ]
    procs = [
        (runner.start("run", str(EXAMPLES / "pipeline" / f"{file}.yaml")), name)
        for file, name in stages
    ]
    for proc, name in procs:
        runner.wait_running(proc, name)
    ids = [runner.run("jobs", "add", "--type", "pipeline").stdout.strip() for _ in range(3)]
    final = runner.cwd / "data" / "final"
    wait_until(
        lambda: all((final / f"{job}_analysis.txt").exists() for job in ids)
        and _all_completed(runner, ids),
        30,
        lambda: "\n".join(proc.output() for proc, _ in procs),
    )
    for job in ids:
        assert (final / f"{job}_analysis.txt").read_text().strip() == "3"
        upper = (runner.cwd / "data" / "temp" / f"{job}.txt").read_text()
        assert upper.startswith(f"LINE ONE OF {job.upper()}")


def test_download_worker_chart_pauses_resumes_and_stops(runner: Runner) -> None:
    """The statechart example as a worker: jobs go through working's children, `pause`
    leaves the compound state `online` (its on_exit runs), `resume` goes back through the
    deep history, `stop` ends it with exit 0."""
    worker = runner.start("run", str(EXAMPLES / "download_worker" / "download_worker.yaml"))
    runner.wait_running(worker, "download_worker")
    ids = [
        runner.run(
            "jobs", "add", "--type", "download", "--data", f'{{"message": "d{i}"}}'
        ).stdout.strip()
        for i in range(3)
    ]
    wait_until(lambda: _all_completed(runner, ids), 20, worker.output)
    for index, job_id in enumerate(ids):
        saved = runner.cwd / "data" / "downloads" / f"{job_id}.txt"
        assert saved.read_text() == f"downloaded d{index}\n"
    for event in ("pause", "resume"):
        runner.run("send", "download_worker", event)
        wait_until(lambda e=event: f"--{e}-->" in worker.output(), 20, worker.output)
    runner.run("send", "download_worker", "stop")
    assert worker.wait(20) == 0, worker.output()
    lines = [line.split("] ", 1)[-1] for line in worker.output().splitlines()]
    # working's on_exit once per job; online's on_exit on pause and on stop, on_entry on start
    # and on resume (through the history state, back to waiting)
    assert sum(line.startswith("done with job") for line in lines) == 3
    assert lines.count("download worker leaving online") == 2
    assert lines.count("download worker online") == 2
    assert "paused --resume--> waiting" in lines
    assert lines[-2:] == ["reached final state stopped", "stopped in state stopped"]
