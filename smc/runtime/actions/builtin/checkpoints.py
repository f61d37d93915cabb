"""``git_checkpoint``: an empty Git commit ``<name>: <run id>`` in a repository, made once
(smc/runtime/checkpoints.py; the workflow scheduler's task option ``checkpoint:`` does the
same after a task completes, docs/workflows.md)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from smc.catalog import default_event
from smc.runtime.actions.base import BaseAction
from smc.runtime.checkpoints import CheckpointError, git_checkpoint
from smc.runtime.context import to_text

#: What a checkpoint name and a run id may hold: they become one line of a commit message.
_LINE = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")


class GitCheckpointAction(BaseAction):
    """``git_checkpoint``: ``git commit --allow-empty -m "<name>: <run id>"`` in
    ``repository`` (default: the working directory), unless that commit is there already.
    ``run_id`` defaults to the current job's ``workflow.run_id`` (a workflow task's job)."""

    _DEFAULT_ERROR = default_event("git_checkpoint", "error")
    _DEFAULT_SUCCESS = default_event("git_checkpoint", "success")

    async def execute(self, context: dict[str, Any]) -> str | None:
        logger = self.runtime.logger
        name = to_text(self.params.get("name", ""))
        run_id = self.params.get("run_id")
        if run_id is None:
            workflow = context.get("workflow")
            run_id = workflow.get("run_id") if isinstance(workflow, Mapping) else None
        run_text = "" if run_id is None else to_text(run_id)
        if not _LINE.match(name) or not _LINE.match(run_text):
            logger.warning(
                "git_checkpoint: needs a name and a run id of one line each (got %r, %r)",
                name,
                run_text,
            )
            return self.event("error", self._DEFAULT_ERROR)
        repository = Path(to_text(self.params.get("repository", ".")))
        try:
            made = await asyncio.to_thread(git_checkpoint, repository, name, run_text)
        except (CheckpointError, OSError) as error:
            logger.warning("git_checkpoint: %s", error)
            context["last_error"] = str(error)
            return self.event("error", self._DEFAULT_ERROR)
        logger.info(
            "git_checkpoint %s: %s", "made" if made else "already there", f"{name}: {run_text}"
        )
        return self.event("success", self._DEFAULT_SUCCESS)
