"""The built-in actions, with statemachine-engine's parameter names and returned events.

Parameters and default events are listed in ``smc.catalog.BUILTIN_ACTIONS`` (each class reads
its default events from there when it is defined) and documented in ``docs/actions.md``. Every
action gets its parameters already interpolated (``self.params``), except ``bash``'s
``command`` (its values are passed out of band, ``smc.runtime.shell``) and ``send_event``'s
``payload``.

By family: :mod:`~smc.runtime.actions.builtin.context` (the context and the log),
:mod:`~smc.runtime.actions.builtin.bash`, :mod:`~smc.runtime.actions.builtin.jobs` (the job
queue) and :mod:`~smc.runtime.actions.builtin.machines` (``send_event``, ``start_fsm``).
:data:`BUILTIN_CLASSES` maps each action type to its class; every name is importable from here.
"""

from __future__ import annotations

from collections.abc import Mapping

from smc.runtime.actions.base import BaseAction
from smc.runtime.actions.builtin.bash import BASH_OUTPUT_LOG_LIMIT, DEFAULT_BASH_TIMEOUT, BashAction
from smc.runtime.actions.builtin.checkpoints import GitCheckpointAction
from smc.runtime.actions.builtin.context import (
    ActivityLogAction,
    AddToListAction,
    LogAction,
    PopFromListAction,
    SetContextAction,
    SleepAction,
)
from smc.runtime.actions.builtin.jobs import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_QUEUE_WAIT,
    CheckDatabaseQueueAction,
    ClaimJobAction,
    CompleteJobAction,
    FailJobAction,
    GetPendingJobsAction,
    WaitForJobsAction,
)
from smc.runtime.actions.builtin.machines import (
    SendEventAction,
    StartFsmAction,
    build_payload,
    child_log_path,
)

BUILTIN_CLASSES: Mapping[str, type[BaseAction]] = {
    "log": LogAction,
    "activity_log": ActivityLogAction,
    "sleep": SleepAction,
    "set_context": SetContextAction,
    "add_to_list": AddToListAction,
    "pop_from_list": PopFromListAction,
    "bash": BashAction,
    "check_database_queue": CheckDatabaseQueueAction,
    "get_pending_jobs": GetPendingJobsAction,
    "claim_job": ClaimJobAction,
    "complete_job": CompleteJobAction,
    "fail_job": FailJobAction,
    "wait_for_jobs": WaitForJobsAction,
    "send_event": SendEventAction,
    "start_fsm": StartFsmAction,
    "git_checkpoint": GitCheckpointAction,
}

__all__ = [
    "BASH_OUTPUT_LOG_LIMIT",
    "BUILTIN_CLASSES",
    "DEFAULT_BASH_TIMEOUT",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_QUEUE_WAIT",
    "ActivityLogAction",
    "AddToListAction",
    "BashAction",
    "CheckDatabaseQueueAction",
    "ClaimJobAction",
    "CompleteJobAction",
    "FailJobAction",
    "GetPendingJobsAction",
    "GitCheckpointAction",
    "LogAction",
    "PopFromListAction",
    "SendEventAction",
    "SetContextAction",
    "SleepAction",
    "StartFsmAction",
    "WaitForJobsAction",
    "build_payload",
    "child_log_path",
]
