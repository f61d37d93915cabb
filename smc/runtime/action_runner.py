"""Runs one action of a state for the engine and says which event it returned.

The action's parameters are interpolated over the context, the action is built and executed.
An action that raises returns its error event (the error is logged, published and put into
the context as ``last_error``), and the machine's current job is failed when it is finished.
A database fault (:class:`StoreError`) is not the action's failure: the action is run again
once the database lets it through (``docs/runtime.md``, "Database faults").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from smc.runtime.actions.registry import PreparedAction
from smc.runtime.context import interpolate
from smc.runtime.faults import FaultReporter
from smc.runtime.ledger import JobLedger
from smc.runtime.store import DuplicateJobError, StoreError

#: An action that hit a database fault is run again after this pause (until it gets through).
STORE_FAULT_RETRY_SECONDS = 1.0

#: What :meth:`ActionRunner._run` returns for an action that raised, and for one that the
#: database refused.
_FAILED = object()
_FAULT = object()


class ActionRunner:
    """Executes prepared actions against ``context``, each given ``runtime`` as
    ``action.runtime`` (the engine: the services of ``actions.base.ActionRuntime``)."""

    def __init__(
        self,
        runtime: object,
        context: dict[str, Any],
        jobs: JobLedger,
        faults: FaultReporter,
        logger: logging.Logger,
        publish: Callable[..., None],
    ) -> None:
        self._runtime = runtime
        self._context = context
        self._jobs = jobs
        self._faults = faults
        self._logger = logger
        self._publish = publish

    async def execute(self, prepared: PreparedAction) -> str | None:
        """Run ``prepared`` (again after each database fault); the event it returned, its
        error event when it raised, or None."""
        context = self._context
        config: Mapping[str, Any] = prepared.config
        if prepared.interpolated:
            config = dict(config)
            for key in prepared.interpolated:
                config[key] = interpolate(config[key], context)
        result = await self._run(prepared, config)
        while result is _FAULT:
            # A database fault is not the action's failure (nor its job's: failing the job would
            # spend its attempts on the fault): run it again once the database lets it through.
            # Timers wait meanwhile, as for any running action; a stop cancels the pause.
            await asyncio.sleep(STORE_FAULT_RETRY_SECONDS)
            result = await self._run(prepared, config)
        if result is _FAILED:
            result = prepared.error_event
        else:
            self._faults.recovered(f"run {prepared.type}")
        if result is None:
            return None
        event = str(result)
        if event == prepared.error_event and self._jobs.current is not None:
            self._jobs.current_failed(
                str(context.get("last_error") or f"action {prepared.type} returned {event}")
            )
        return event

    async def _run(self, prepared: PreparedAction, config: Mapping[str, Any]) -> Any:
        """The action's result; ``_FAILED`` when it raised (logged, recorded in the context,
        published); ``_FAULT`` when the database refused (a :class:`StoreError`, reported)."""
        try:
            action = prepared.cls(config)
            with contextlib.suppress(AttributeError):
                action.runtime = self._runtime
            return await action.execute(self._context)
        except asyncio.CancelledError:
            raise
        except DuplicateJobError as error:  # the action's mistake, not a database fault
            return self._raised(prepared, error)
        except StoreError as error:
            self._faults.report(f"run {prepared.type}", error)
            return _FAULT
        except (Exception, SystemExit) as error:
            # SystemExit too: a user action's sys.exit() ended the worker with no word, and
            # gave its job back uncounted, so every restart ended on the same job.
            return self._raised(prepared, error)

    def _raised(self, prepared: PreparedAction, error: BaseException) -> object:
        context = self._context
        self._logger.error(
            "%s: action %s failed: %s: %s",
            prepared.source,
            prepared.type,
            type(error).__name__,
            error,
            exc_info=error if self._logger.isEnabledFor(logging.DEBUG) else None,
        )
        context["last_error"] = f"{type(error).__name__}: {error}"
        context["last_error_action"] = prepared.type
        self._publish(
            "error", action=prepared.type, source=prepared.source, error=context["last_error"]
        )
        return _FAILED


__all__ = ["STORE_FAULT_RETRY_SECONDS", "ActionRunner"]
