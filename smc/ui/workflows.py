"""The web monitor's Workflows section: runs as the page lists them, and a run's DAG as SVG.

A run's picture is ``smc workflow diagram``'s DOT (``smc.workflow.diagram.dot``) drawn from the
definition the run keeps in the store (``workflow_runs.definition``, what the scheduler runs,
even when the file has changed since), rendered by the real ``dot`` binary and cleaned by the
monitor's own whitelist (``smc.ui.diagrams.clean_svg``). It is drawn **without** states: the
layout then never changes while the run goes on, and the page colours each node by its task's
state as it polls the run (each node's ``<g>`` carries ``data-state`` = the task's name, the
same mark the machine diagrams use for a state).

The definition comes from the database, and nothing checked it against the schema since it
was written: its task names are not trusted to be identifiers. The DOT's node ids are
therefore ``task0``, ``task1``… (by position), never the names, and the labels are escaped
by ``diagram.dot``; a definition that cannot be read or planned (a cycle) gives an error to
show, not a crash.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from smc.runtime.store.workflow_rows import WorkflowRun, WorkflowTask
from smc.ui.diagrams import render_svg
from smc.workflow.diagram import STATE_COLOURS, dot
from smc.workflow.model import Workflow

#: The execution contract's task states, in the order the page lists them.
TASK_STATES = tuple(STATE_COLOURS)
#: Runs listed (newest first).
RUN_LIST_LIMIT = 100
#: A running run's scheduler not heard from for longer (it beats every 2 s; another takes
#: the run over after 30 s) is shown as silent: killed, most likely, so the run moves only
#: once one is started again (a cancel request included).
SCHEDULER_SILENT_SECONDS = 10.0


def run_summary(run: WorkflowRun, tasks: list[WorkflowTask]) -> dict[str, Any]:
    """One run as the list shows it: no definition, no scheduler token, counts by state."""
    counts = Counter(task.state for task in tasks)
    return {
        "run_id": run.run_id,
        "workflow": run.workflow,
        "trace_id": run.trace_id,
        "status": run.status,
        "cancel_requested": run.cancel_requested,
        "scheduler_host": run.scheduler_host,
        "scheduler_pid": run.scheduler_pid,
        "heartbeat_age": run.heartbeat_age,
        "scheduler_silent": run.status == "running"
        and (
            run.scheduler_pid is None
            or (run.heartbeat_age is not None and run.heartbeat_age > SCHEDULER_SILENT_SECONDS)
        ),
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "finished_at": run.finished_at,
        "tasks": len(tasks),
        "counts": {state: counts[state] for state in sorted(counts)},
    }


def task_dict(task: WorkflowTask, job_type: str | None) -> dict[str, Any]:
    return {
        "task": task.task,
        "position": task.position,
        "state": task.state,
        "attempt": task.attempt,
        "job_id": task.job_id,
        "job_type": job_type,
        "last_error": task.last_error,
        "updated_at": task.updated_at,
    }


def job_types(definition: dict[str, Any]) -> dict[str, str]:
    """Task name -> job type, from a stored definition (whatever of it can be read)."""
    tasks = definition.get("tasks") if isinstance(definition, dict) else None
    if not isinstance(tasks, dict):
        return {}
    return {
        str(name): str(spec["job_type"])
        for name, spec in tasks.items()
        if isinstance(spec, dict) and "job_type" in spec
    }


def draw(definition: dict[str, Any]) -> tuple[str | None, str | None]:
    """The run's DAG as cleaned SVG (or None) and why not (or None)."""
    try:
        workflow = Workflow.from_data(definition)
        ids = {name: f"task{position}" for position, name in enumerate(workflow.names)}
        dot_text = dot(workflow, ids=ids)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
        return None, f"the run's workflow cannot be drawn: {error!r}"
    return render_svg(dot_text, {node_id: name for name, node_id in ids.items()})


class RunDiagrams:
    """Each run's picture, drawn once: a run's definition never changes."""

    def __init__(self, limit: int = 200) -> None:
        self._lock = threading.Lock()
        self._limit = limit
        self._by_run: dict[str, tuple[str | None, str | None]] = {}

    def clear(self) -> None:
        """Forget every picture (the database file was replaced: its runs are others)."""
        with self._lock:
            self._by_run.clear()

    def get(self, run_id: str, definition: dict[str, Any]) -> tuple[str | None, str | None]:
        with self._lock:
            found = self._by_run.get(run_id)
        if found is not None:
            return found
        drawn = draw(definition)
        with self._lock:
            if len(self._by_run) >= self._limit:
                self._by_run.pop(next(iter(self._by_run)))
            self._by_run[run_id] = drawn
        return drawn
