"""smc.testing.runtime.MachineRun: examples run with their real actions on a real SQLite
store, with Hypothesis choosing the jobs and events."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smc.testing.runtime import MachineRun, RunTimeout
from tests.support.examples import imported_examples

PACKAGE = "smc_runtime_examples"

#: Job data the shell must pass through unharmed: any text but NUL (which no argv can hold)
#: and lone surrogates (which JSON cannot hold).
MESSAGES = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)
JOBS = st.lists(
    st.tuples(st.sampled_from(["task", "other"]), st.integers(1, 9), MESSAGES), max_size=8
)


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    with imported_examples(tmp_path_factory.mktemp("generated"), PACKAGE) as package:
        yield package


def test_every_task_job_is_completed_exactly_once(examples: ModuleType) -> None:
    """simple_worker: each ``task`` job is claimed once, in priority order, processed by its
    bash action (output file with the job's message) and completed; other types stay queued."""

    @settings(max_examples=30, deadline=None, derandomize=True, database=None)
    @given(jobs=JOBS)
    def property_(jobs: list[tuple[str, int, str]]) -> None:
        with tempfile.TemporaryDirectory() as tmp, MachineRun(examples.SimpleWorker, tmp) as run:
            added = [
                (run.add_job(kind, {"message": text}, priority=priority), kind, priority, text)
                for kind, priority, text in jobs
            ]
            tasks = [
                (job.id, priority, n, text)
                for n, (job, kind, priority, text) in enumerate(added)
                if kind == "task"
            ]
            result = run.run(until=run.jobs_finished(job_id for job_id, *_ in tasks))
            assert result.exit_code == 0
            for job_id, _priority, _n, text in tasks:
                job = result.jobs[job_id]
                assert (job.status, job.attempts) == ("completed", 1)
                output = Path(tmp, "data", "output", f"{job_id}.txt")
                assert output.read_bytes() == f"processed {text}\n".encode()
            for job, kind, _, _ in added:
                if kind != "task":
                    assert (result.jobs[job.id].status, result.jobs[job.id].attempts) == (
                        "pending",
                        0,
                    )
            # exactly once: one claim and one completion per task job, nothing else
            assert result.events.count("new_job") == len(tasks)
            assert result.events.count("job_completed") == len(tasks)
            assert "error" not in result.events
            # claimed by priority, then in the order added
            started = sorted(tasks, key=lambda t: result.jobs[t[0]].started_at or 0.0)
            assert [t[0] for t in started] == [t[0] for t in sorted(tasks, key=lambda t: t[1:3])]

    property_()


def test_events_drive_the_controller_to_its_final_state(examples: ModuleType) -> None:
    """task_controller: every ``task_completed`` event sent is recorded once, in order, then
    ``stop`` ends the run in the final state (no stop condition needed)."""

    @settings(max_examples=8, deadline=None, derandomize=True, database=None)
    @given(jobs=st.lists(st.integers(1, 10**6), max_size=5))
    def property_(jobs: list[int]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            with MachineRun(examples.TaskController, tmp) as run:
                for job in jobs:
                    run.send_event("task_completed", {"job_id": job, "machine": "w1"}, "w1")
                run.send_event("stop")
                result = run.run(timeout=20)
            assert result.exit_code == 0
            assert result.final_state == "stopped"
            assert result.events == ["task_completed", "recorded"] * len(jobs) + ["stop"]
            log = Path(tmp, "data", "controller", "completed.txt")
            lines = log.read_text().splitlines() if jobs else []
            assert lines == [f"{job} by w1" for job in jobs]

    property_()


def test_a_condition_that_never_holds_times_out(examples: ModuleType, tmp_path: Path) -> None:
    with MachineRun(examples.SimpleWorker, tmp_path) as run:
        job = run.add_job("other")
        with pytest.raises(RunTimeout, match=r"did not hold within 0\.5 s"):
            run.run(until=run.jobs_finished([job.id]), timeout=0.5)
        # the machine was stopped cleanly: the registry says so, the job was never touched
        machine = run.store.get_machine("simple_worker")
        assert machine is not None and machine.status == "stopped"
        assert run.store.get_job(job.id) is not None
        assert run.store.get_job(job.id).status == "pending"  # type: ignore[union-attr]


def test_runs_share_the_store_and_start_from_the_initial_state(
    examples: ModuleType, tmp_path: Path
) -> None:
    with MachineRun(examples.SimpleWorker, tmp_path) as run:
        first = run.add_job("task", {"message": "one"})
        result = run.run(until=run.jobs_finished([first.id]))
        assert result.transitions[0] == ("initializing", "initialized", "waiting")
        second = run.add_job("task", {"message": "two"})
        again = run.run(until=run.jobs_finished([second.id]))
        assert again.transitions[0] == ("initializing", "initialized", "waiting")
        assert again.events.count("new_job") == 1  # the first job is not run twice
        assert {j.status for j in again.jobs.values()} == {"completed"}
        assert run.in_state("waiting")(run.store)
