"""Run a generated machine with its real actions against a real, temporary SQLite store.

``MachineRun`` is for properties about what a machine *does* (``MachineTest`` checks what it
*is*): add jobs and events to a fresh store, run the machine in-process on the real engine
(``smc.runtime.engine``, the code ``smc run`` uses) until a condition on the store holds,
then inspect the store and the transitions taken. With Hypothesis generating the jobs, "every
job added is completed exactly once" becomes a property over random job mixes::

    @given(st.lists(st.text(max_size=20), max_size=8))
    def test_every_job_is_completed_once(messages):
        with tempfile.TemporaryDirectory() as tmp, MachineRun(SimpleWorker, tmp) as run:
            ids = [run.add_job("task", {"message": m}).id for m in messages]
            result = run.run(until=run.jobs_finished(ids))
            assert all(result.jobs[i].status == "completed" for i in ids)
            assert result.events.count("job_completed") == len(ids)

Each run is a new engine and a new machine instance in its initial state; the store (and the
directory) persist across runs of one ``MachineRun``. While it runs, the process's working
directory is the run's directory, because actions such as ``bash`` resolve relative paths
there (so runs cannot overlap within one process).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from smc.machine import GeneratedMachine
from smc.runtime.engine import Engine
from smc.runtime.store import Job, Store, open_store

#: Job statuses after which nothing happens to a job any more (a retried failure is pending).
FINISHED_STATUSES = frozenset({"completed", "failed", "cancelled"})
#: How often the stop condition is checked while the machine runs.
POLL_SECONDS = 0.01

StopCondition = Callable[[Store], bool]


class RunTimeout(AssertionError):
    """The stop condition did not hold within the time given (the machine was stopped)."""


@dataclass
class RunResult:
    """What one run did: the engine's exit code, every transition in order, and the jobs."""

    exit_code: int
    #: ``(source, event, target)`` for every transition, in order.
    transitions: list[tuple[str, str, str]]
    #: The state the machine stopped in.
    final_state: str
    #: Every job in the store after the run, by id.
    jobs: dict[str, Job] = field(default_factory=dict)

    @property
    def events(self) -> list[str]:
        """The events that fired, in order."""
        return [event for _, event, _ in self.transitions]


class MachineRun:
    """A machine class, its actions and a SQLite store in ``directory`` (``smc.db``).

    Use as a context manager (it opens and closes the store). ``actions_dirs`` are user action
    directories, as ``smc run --actions-dir``; ``initial_context`` seeds the context.
    """

    def __init__(
        self,
        machine_cls: type[GeneratedMachine],
        directory: str | Path,
        *,
        actions_dirs: Iterable[str | Path] = (),
        initial_context: Mapping[str, Any] | None = None,
        machine_name: str | None = None,
        lease_seconds: float = 30.0,
    ) -> None:
        self.machine_cls = machine_cls
        self.directory = Path(directory).resolve()
        self.database = str(self.directory / "smc.db")
        self.actions_dirs = tuple(str(Path(d).resolve()) for d in actions_dirs)
        self.initial_context = dict(initial_context or {})
        self.machine_name = machine_name or str(machine_cls.MACHINE_NAME)
        self.lease_seconds = lease_seconds
        self._store: Store | None = None

    def __enter__(self) -> MachineRun:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._store = open_store(self.database)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    @property
    def store(self) -> Store:
        """The test's own connection to the run's database."""
        if self._store is None:
            raise RuntimeError("use MachineRun as a context manager: with MachineRun(...) as run")
        return self._store

    # ---- arranging -----------------------------------------------------------------

    def add_job(self, job_type: str, data: Any = None, **options: Any) -> Job:
        """Queue a job (``Store.add_job``: ``job_id``, ``priority``, ``machine_type``, …)."""
        return self.store.add_job(job_type, data, **options)

    def send_event(self, event: str, payload: Any = None, source: str | None = None) -> int:
        """Send the machine an event through the store, as ``smc send`` does."""
        return self.store.send_event(self.machine_name, event, payload, source=source)

    # ---- stop conditions -----------------------------------------------------------

    def jobs_finished(self, job_ids: Iterable[str]) -> StopCondition:
        """Holds once every one of ``job_ids`` is completed, failed or cancelled."""
        wanted = list(job_ids)

        def finished(store: Store) -> bool:
            statuses = store.wait_job_statuses(wanted)
            return all(statuses.get(job_id) in FINISHED_STATUSES for job_id in wanted)

        return finished

    def in_state(self, state: str) -> StopCondition:
        """Holds once the machine registry says the machine is in ``state``."""

        def reached(store: Store) -> bool:
            row = store.get_machine(self.machine_name)
            return row is not None and str(row.state) == state

        return reached

    # ---- running -------------------------------------------------------------------

    def run(self, *, until: StopCondition | None = None, timeout: float = 30.0) -> RunResult:
        """Run the machine until ``until(store)`` holds (then stop it as SIGTERM would) or it
        reaches a final state. Raises :class:`RunTimeout` after ``timeout`` seconds."""
        engine = Engine(
            self.machine_cls,
            database=self.database,
            machine_name=self.machine_name,
            actions_dirs=self.actions_dirs,
            lease_seconds=self.lease_seconds,
            initial_context=self.initial_context,
            log_dir=self.directory / "logs",
            monitor=False,
        )
        transitions: list[tuple[str, str, str]] = []

        def record(source: Any, event: Any, target: Any) -> None:
            transitions.append((str(source), str(event), str(target)))

        engine.machine.add_listener(record)
        with contextlib.chdir(self.directory):
            exit_code, timed_out = asyncio.run(self._drive(engine, until, timeout))
        if timed_out:
            raise RunTimeout(
                f"{self.machine_name}: the stop condition did not hold within {timeout} s "
                f"(state {engine.machine.state}, {len(transitions)} transitions)"
            )
        jobs = {job.id: job for job in self.store.list_jobs(limit=1_000_000)}
        return RunResult(exit_code, transitions, str(engine.machine.state), jobs)

    async def _drive(
        self, engine: Engine, until: StopCondition | None, timeout: float
    ) -> tuple[int, bool]:
        running = asyncio.create_task(engine.run())
        deadline = time.monotonic() + timeout
        timed_out = False
        # A separate connection for the condition: the test's own may be mid-use elsewhere.
        watcher = open_store(self.database)
        try:
            while not running.done():
                if until is not None and until(watcher):
                    engine.request_stop()
                    break
                if time.monotonic() >= deadline:
                    timed_out = True
                    engine.request_stop()
                    break
                await asyncio.wait({running}, timeout=POLL_SECONDS)
            exit_code = await running
        finally:
            watcher.close()
        return exit_code, timed_out
