"""What every action is: a class with ``async def execute(self, context) -> str | None``.

An action is constructed for each run with its parameters from the machine file, already
interpolated over the context (``self.params``; ``self.config`` is the same dict plus ``type``,
``description`` and a ``params`` copy, so actions written for statemachine-engine, which read
``self.config.get("params", {})``, work unchanged). ``execute`` returns the name of an event
(or None). Built-in actions also use ``self.runtime``, the engine's services
(:class:`ActionRuntime`); user actions may use it too.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from smc.catalog import COMMON_KEYS

if TYPE_CHECKING:
    from smc.runtime.store import Job, Store

#: Why :meth:`ActionRuntime.wait_for_work` returned.
WaitResult = Literal["rung", "interrupted", "timeout"]


class ActionRuntime(Protocol):
    """The engine services an action may use (implemented by ``smc.runtime.engine.Engine``)."""

    store: Store
    machine_name: str
    #: The database as given (``--db``), absolute for SQLite: what child machines are given.
    database: str
    lease_seconds: float
    #: Where ``start_fsm`` writes each child's output (``<log_dir>/<machine>.log``).
    log_dir: Path
    actions_dirs: tuple[str, ...]
    log_level: str
    logger: logging.Logger

    def publish(self, kind: str, **fields: Any) -> None:
        """Publish one record on the machine's monitor socket (never blocks or raises)."""

    def job_claimed(self, job: Job, *, current: bool) -> dict[str, Any]:
        """Record a claim: ``current`` jobs become the machine's current job (completed
        automatically, see docs/runtime.md); others are held (lease renewed) until finished.
        Returns the job as the context's ``current_job`` dict."""

    def queue_empty(self) -> None:
        """The queue had no job for the machine: it leaves the trace it was working in, so
        that its idle polls are in no trace (docs/history.md, "Trace ids")."""

    def refuse_invalid_job(self, job: Job) -> bool:
        """Check a job just claimed against the machine's schema of its type's data
        (``JOB_DATA_SCHEMAS``): when it does not match, fail it at once (not retried, the
        schema's message as its error), log and publish it, and return True: the caller
        must not run it. False (nothing done) when it matches or no schema applies."""

    def claim_token(self, job_id: str) -> str | None:
        """The claim token of ``job_id`` when this machine claimed it (for fenced updates)."""

    def job_finished(self, job_id: str) -> None:
        """Stop tracking ``job_id`` (it was completed or failed by an action)."""

    def finish_job(
        self,
        job_id: str,
        *,
        reason: str | None = None,
        retry: bool = False,
        result: Any = None,
    ) -> bool:
        """Complete ``job_id`` (``reason`` None; ``result`` is stored) or fail it with
        ``reason`` (``retry``: back to pending while attempts remain), fenced by this machine's
        claim token when it holds the job; stop tracking it and publish ``job_completed`` or
        ``job_failed``. True also when this machine claimed the job and its lease was lost
        meanwhile (logged as a warning: the job is no longer ours, not the action's failure);
        False when the job is not processing and this machine does not hold it. Database
        errors propagate (``StoreError``)."""

    def report_store_error(self, what: str, error: Exception) -> None:
        """Log a database fault once (then at most every 30 s) and publish it."""

    def store_recovered(self, what: str | None = None) -> None:
        """Note that the database did ``what`` (as given to :meth:`report_store_error`; None:
        anything): the fault is over (logged once) when the operation that failed first works."""

    @property
    def current_job_id(self) -> str | None:
        """The id of the machine's current job, if any."""

    async def finish_current_job(self) -> bool:
        """Complete (or, after a failed action, fail with retry) the current job, if any.
        False when the database refused (the job stays current and is finished later)."""

    def ensure_jobs_waker(self) -> None:
        """Listen for the ``jobs`` channel from now on."""

    async def wait_for_work(self, timeout: float) -> WaitResult:
        """Sleep until the jobs channel rings (``"rung"``), something needs the machine — an
        inbound event with a transition, an expired timer, a stop request
        (``"interrupted"``) — or ``timeout`` seconds pass (``"timeout"``)."""

    def track_child(self, process: Any) -> None:
        """Reap a spawned child process when it exits."""


@functools.cache
def _logger_of(class_name: str) -> logging.Logger:
    """``smc.actions.<ClassName>`` (looked up once per class: actions are built per run)."""
    return logging.getLogger(f"smc.actions.{class_name}")


class BaseAction:
    """Base class for actions (built-in and user). Subclasses implement :meth:`execute`.

    ``RAW_PARAMS`` names parameters the engine must *not* interpolate because the action
    interpolates them itself (``bash`` quotes values for the shell; ``send_event`` maps
    unresolved placeholders to None).
    """

    RAW_PARAMS: ClassVar[frozenset[str]] = frozenset()

    runtime: ActionRuntime

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config: dict[str, Any] = dict(config)
        self.params: dict[str, Any] = {
            key: value for key, value in self.config.items() if key not in COMMON_KEYS
        }
        self.config.setdefault("params", dict(self.params))
        self.logger = _logger_of(type(self).__name__)

    async def execute(self, context: dict[str, Any]) -> str | None:
        raise NotImplementedError

    # statemachine-engine's helper methods, for actions ported from it.

    def get_config_value(self, key: str, default: Any = None) -> Any:
        return self.config.get(key, default)

    def get_description(self) -> str:
        return str(self.config.get("description", f"{type(self).__name__} action"))

    def get_machine_name(self, context: Mapping[str, Any]) -> str:
        return str(context.get("machine_name", "unknown"))

    def event(self, name: str, default: str | None) -> str | None:
        """The event named by parameter ``name`` (an empty value means none), else ``default``."""
        value = self.params.get(name)
        if value is None:
            return default
        return str(value) or None
