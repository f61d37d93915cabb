"""The JSONL ledger of a run: ``.runs/<run id>/ledger.jsonl``, one task transition per line
(run id, trace id, task, from, event, to, attempt, job id, ts).

The store is the run's truth (its tasks' rows); the ledger is the export a person or a tool
reads. Each line is written after the store has recorded the transition, so a scheduler
killed between the two loses that line (the row is there); none is written for a
transition the store refused. When the store's history table lands (the history issue), the
transition goes there, in the same transaction as the task's row, and this file becomes its
JSONL export.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Append mode: a resumed run goes on with the same file.
        self._file = path.open("a", encoding="utf-8")

    def write(self, **entry: Any) -> dict[str, Any]:
        line = {**entry, "ts": time.time()}
        self._file.write(json.dumps(line, separators=(",", ":"), sort_keys=False) + "\n")
        self._file.flush()
        return line

    def close(self) -> None:
        self._file.close()


def read_ledger(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a ledger (a line cut short by a kill is left out)."""
    entries: list[dict[str, Any]] = []
    if not path.exists():
        return entries
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries


def run_dir(runs_dir: Path, run_id: str) -> Path:
    """``<runs_dir>/<run id>``: a run id is a ULID or a name checked by the CLI, never a
    path."""
    if not run_id or os.sep in run_id or run_id in (".", "..") or "/" in run_id:
        raise ValueError(f"not a run id: {run_id!r}")
    return runs_dir / run_id
