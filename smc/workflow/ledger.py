"""The ledger of a run: its history rows, and their JSONL export in the ledger's format.

Every task transition is a history row (``docs/workflows.md``, "The history of a run"),
written by the store in the same transaction as the task's row: the ``transition`` of the
machine ``<workflow>/<task>``, in the run's trace, with the run id as its ``source``. The
workers' rows for the run's jobs (claims, their own transitions, completions) are in the same
trace. This module reads a run's rows back:

- :func:`run_history`: every row of the run's trace, in the order recorded (all pages);
- :func:`ledger_entries`: the task transitions among them as ledger lines (``run_id``,
  ``trace_id``, ``task``, ``from``, ``event``, ``to``, ``attempt``, ``job_id``, ``ts``, and
  ``error`` when the move has one) — the format of the ``.runs/<run>/ledger.jsonl`` file the
  scheduler appended to before the history existed, which ``smc workflow status RUN
  --format jsonl`` prints now.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smc.runtime.store import HistoryRow, Store, WorkflowRun

#: Rows read per query while collecting a run's history.
_PAGE = 1000


def run_history(store: Store, run: WorkflowRun) -> list[HistoryRow]:
    """Every history row of ``run``'s trace, in id order: the run's own rows, its tasks'
    moves, and the rows of the workers that ran its jobs."""
    rows: list[HistoryRow] = []
    after: int | None = None
    while True:
        page = store.history(trace_id=run.trace_id, after_id=after, limit=_PAGE)
        rows.extend(page)
        if len(page) < _PAGE:
            return rows
        after = page[-1].id


def is_task_row(row: HistoryRow, run: WorkflowRun) -> bool:
    """Whether ``row`` is a move of one of ``run``'s tasks (not a worker's transition)."""
    return (
        row.kind == "transition"
        and row.source == run.run_id
        and row.machine.startswith(f"{run.workflow}/")
    )


def ledger_entries(rows: Sequence[HistoryRow], run: WorkflowRun) -> list[dict[str, Any]]:
    """The task transitions among ``rows`` as ledger lines, in the order recorded."""
    prefix = len(run.workflow) + 1
    entries: list[dict[str, Any]] = []
    for row in rows:
        if not is_task_row(row, run):
            continue
        entry: dict[str, Any] = {
            "id": row.id,
            "run_id": run.run_id,
            "trace_id": row.trace_id,
            "task": row.machine[prefix:],
            "from": row.from_state,
            "event": row.event,
            "to": row.to_state,
            "attempt": row.attempt,
            "job_id": row.job_id,
            "ts": row.ts,
        }
        if row.excerpt:
            entry["error"] = row.excerpt
        entries.append(entry)
    return entries


def run_dir(runs_dir: Path, run_id: str) -> Path:
    """``<runs_dir>/<run id>``: a run id is a ULID or a name checked by the CLI, never a
    path."""
    if not run_id or os.sep in run_id or run_id in (".", "..") or "/" in run_id:
        raise ValueError(f"not a run id: {run_id!r}")
    return runs_dir / run_id
