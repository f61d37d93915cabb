"""The row types of the store's workflow tables and the part of the ``Store`` protocol that
reads and writes them (the statements and their implementation: ``workflows.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

#: How a run ends: ``running`` until its scheduler finishes or cancels it.
WORKFLOW_RUN_STATUSES = ("running", "completed", "failed", "cancelled")


@dataclass(frozen=True)
class WorkflowRun:
    run_id: str
    workflow: str
    trace_id: str
    definition: dict[str, Any]
    status: str
    cancel_requested: bool
    scheduler_host: str | None
    scheduler_pid: int | None
    scheduler_token: str | None
    #: Seconds since the scheduler's last heartbeat (None: never held).
    heartbeat_age: float | None
    created_at: float
    updated_at: float
    finished_at: float | None


@dataclass(frozen=True)
class WorkflowTask:
    run_id: str
    task: str
    position: int
    #: The execution contract's state name: PENDING, RUNNING, COMPLETED, FAILED, SKIPPED,
    #: CANCELLED.
    state: str
    attempt: int
    job_id: str | None
    last_error: str | None
    result: Any
    updated_at: float


class WorkflowStore(Protocol):
    """What the store offers workflows (part of :class:`~smc.runtime.store.base.Store`)."""

    def create_workflow_run(
        self,
        run_id: str,
        workflow: str,
        trace_id: str,
        definition: dict[str, Any],
        tasks: Sequence[str],
        initial_state: str,
    ) -> bool:
        """Record a new run and its tasks (in ``initial_state``) in one transaction; False
        (and nothing written) when ``run_id`` exists already."""
        ...

    def get_workflow_run(self, run_id: str) -> WorkflowRun | None: ...

    def list_workflow_runs(self, limit: int = 100) -> list[WorkflowRun]:
        """Runs, newest first."""
        ...

    def list_workflow_tasks(self, run_id: str) -> list[WorkflowTask]:
        """The run's tasks in file order."""
        ...

    def take_workflow_run(self, run_id: str, stale_after: float) -> str | None:
        """Become the run's scheduler: a token for the calls below, or None while another
        scheduler holds it (one that is alive: a holder on this host whose process is gone,
        or whose heartbeat is older than ``stale_after`` seconds, is replaced). Recorded in
        the history (``workflow_started``), as are a release (``workflow_stopped``), a finish
        (``workflow_finished``) and a cancel request (``workflow_cancel_requested``)."""
        ...

    def heartbeat_workflow_run(self, run_id: str, token: str) -> bool:
        """Keep holding the run; False: another scheduler took it over."""
        ...

    def release_workflow_run(self, run_id: str, token: str) -> bool: ...

    def update_workflow_task(
        self,
        run_id: str,
        task: str,
        token: str,
        *,
        from_state: str,
        from_attempt: int,
        state: str,
        attempt: int,
        event: str,
        job_id: str | None,
        last_error: str | None = None,
        result: Any = None,
    ) -> bool:
        """Move one task from (``from_state``, ``from_attempt``) to (``state``, ``attempt``)
        by the contract's ``event``, and record the move in the history in the same
        transaction (a ``transition`` of ``<workflow>/<task>``, in the run's trace): False
        (nothing written) when it is not there any more or ``token`` no longer holds the
        run."""
        ...

    def finish_workflow_run(self, run_id: str, token: str, status: str) -> bool: ...

    def cancel_workflow_run(self, run_id: str) -> bool:
        """Ask the run's scheduler to cancel it; False when the run is not running."""
        ...


__all__ = ["WORKFLOW_RUN_STATUSES", "WorkflowRun", "WorkflowStore", "WorkflowTask"]
