"""statemachine-engine's own example machines, read unchanged from the compatibility corpus,
run on the smc runtime and doing what they evidently mean (see the peer notes in
``../shared/research/statemachine-engine.md``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.corpus import require_corpus
from tests.support.harness import PEER, USER_ACTIONS, Runner, wait_until

EXAMPLES = PEER / "examples"


@pytest.fixture(autouse=True)
def _needs_the_corpus() -> None:
    require_corpus()


@pytest.mark.slow
def test_simple_worker_processes_jobs_added_while_running(runner: Runner) -> None:
    # The peer's worker never polls again after its first `no_jobs` and exits on entering
    # `completed`; here `completed` has a way out (continue_work), so it is not final.
    worker = runner.start("run", str(EXAMPLES / "simple_worker" / "config" / "worker.yaml"))
    runner.wait_running(worker, "simple_worker")
    ids = [runner.run("jobs", "add", "--type", "task").stdout.strip() for _ in range(2)]
    wait_until(
        lambda: all(runner.job_statuses().get(job) == "completed" for job in ids),
        20,
        lambda: f"{runner.job_statuses()}:\n{worker.output()}",
    )
    output = worker.output()
    for job in ids:
        assert f"bash stdout: Job {job} completed" in output
        assert f"Job {job} marked as completed" in output
    assert worker.popen.poll() is None, "the worker must keep running after `completed`"
    with runner.store() as store:
        row = store.get_machine("simple_worker")
    assert row is not None and row.status == "running"


@pytest.mark.slow
def test_timeout_demo_timers_fire_and_events_finish_it(runner: Runner) -> None:
    demo = runner.start("run", str(EXAMPLES / "timeout_demo" / "config" / "timeout_worker.yaml"))
    runner.wait_running(demo, "timeout_worker")
    wait_until(
        lambda: "timed_out --retry--> waiting" in demo.output(),
        15,
        lambda: demo.output(),
    )
    output = demo.output()
    assert "waiting --timeout(5)--> timed_out" in output
    runner.run("send", "timeout_worker", "start_work")
    runner.run("send", "timeout_worker", "work_done")
    assert demo.wait(20) == 0, demo.output()
    output = demo.output()
    assert "waiting --start_work--> processing" in output
    assert "processing --work_done--> completed" in output
    # The final state's actions run (the peer exits before running them).
    assert "Demo completed" in output
    assert "bash stdout: Cleanup complete" in output


@pytest.mark.slow
def test_controller_receives_the_workers_events(runner: Runner) -> None:
    config = EXAMPLES / "controller_worker" / "config"
    actions = ["--actions-dir", str(USER_ACTIONS)]  # check_events, removed from the peer
    controller = runner.start("run", str(config / "controller.yaml"), *actions)
    worker = runner.start("run", str(config / "worker.yaml"), *actions)
    runner.wait_running(controller, "task_controller")
    runner.wait_running(worker, "task_worker")
    ids = [runner.run("jobs", "add", "--type", "task").stdout.strip() for _ in range(2)]
    wait_until(
        lambda: all(f"Job {job} completed by task_worker" in controller.output() for job in ids),
        25,
        lambda: f"controller:\n{controller.output()}\nworker:\n{worker.output()}",
    )
    with runner.store() as store:
        events = store.list_events(target="task_controller")
    received = [e for e in events if e.event_type == "task_completed"]
    assert sorted(e.payload["job_id"] for e in received) == sorted(ids)
    assert {e.status for e in received} == {"done"}
    # Each event re-entered `monitoring` once: one echo per job, no repeats.
    for job in ids:
        assert controller.output().count(f"Job {job} completed by task_worker") == 1


def test_patient_records_controller_spawns_and_collects_workers(
    runner: Runner, tmp_path: Path
) -> None:
    # start_fsm's yaml_path is relative to the peer's folder: run from a copy of it.
    peer = tmp_path / "statemachine-engine"
    shutil.copytree(PEER, peer)
    runner.cwd = peer
    runner.db = peer / "smc.db"
    runner.env["SMC_DB"] = str(runner.db)
    ids = ["r1", "r2"]
    for job in ids:
        data = {"report_id": f"rep-{job}", "report_title": f"Title {job}", "summary_text": "..."}
        runner.run(
            "jobs",
            "add",
            "--type",
            "patient_records",
            "--machine-type",
            "patient_records",
            "--id",
            job,
            "--data",
            json.dumps(data),
        )
    controller = runner.start("run", "examples/patient_records/config/concurrent-controller.yaml")
    runner.wait_running(controller, "concurrent-controller")
    for job in ids:
        runner.wait_running_any(f"patient_record_{job}", 20, controller)
    # The workers move on after timeout(30)s; drive them with their manual events instead.
    for job in ids:
        runner.run("send", f"patient_record_{job}", "summary_complete")
        runner.run("send", f"patient_record_{job}", "validation_passed")
    wait_until(
        lambda: all(runner.job_statuses().get(job) == "completed" for job in ids),
        20,
        lambda: f"{runner.job_statuses()}\n{controller.output()}",
    )
    wait_until(
        lambda: "waiting_for_batch --all_jobs_complete--> checking_queue" in controller.output(),
        15,
        lambda: controller.output(),
    )
    for job in ids:
        log = (peer / "logs" / f"patient_record_{job}.log").read_text()
        assert f"Report rep-{job} validation passed" in log
        assert "shutting down" in log
        with runner.store() as store:
            row = store.get_machine(f"patient_record_{job}")
        assert row is not None and row.status == "stopped", log


def test_custom_actions_with_user_greet_and_calculate(runner: Runner) -> None:
    worker = runner.start(
        "run",
        str(EXAMPLES / "custom_actions" / "config" / "worker.yaml"),
        "--actions-dir",
        str(USER_ACTIONS),
    )
    runner.wait_running(worker, "custom_worker")
    runner.run("send", "custom_worker", "greet", "--payload", '{"name": "Ada"}')
    runner.run("send", "custom_worker", "calculate", "--payload", '{"a": 2, "b": 3}')
    runner.run("send", "custom_worker", "stop")
    assert worker.wait(20) == 0, worker.output()
    assert (runner.cwd / "greetings.txt").read_text() == "Hello, Ada!\n"
    assert (runner.cwd / "calculations.txt").read_text() == "2 add 3 = 5\n"
    assert "Worker shutting down" in worker.output()
