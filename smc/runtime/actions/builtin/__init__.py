"""The built-in actions, with statemachine-engine's parameter names and returned events.

Parameters and default events are listed in ``smc.catalog.BUILTIN_ACTIONS`` (each class reads
its default events from there when it is defined) and documented in ``docs/actions.md``. Every
action gets its parameters already interpolated (``self.params``), except ``bash``'s
``command`` (its values are passed out of band, ``smc.runtime.shell``) and ``send_event``'s
``payload``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from smc.catalog import BASH_VALUES_PARAM, DEFAULT_SENT_EVENT, default_event
from smc.runtime.actions.base import BaseAction
from smc.runtime.context import (
    MISSING,
    PLACEHOLDER,
    interpolate_string,
    job_to_dict,
    lookup,
    to_text,
)
from smc.runtime.jsonlimits import JsonLimitError, check_json_text
from smc.runtime.shell import CommandValueError, command_environment
from smc.runtime.store import StoreError

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "success": logging.INFO,  # statemachine-engine's extra level
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

#: How much of each output stream of a ``bash`` command is kept for the log.
BASH_OUTPUT_LOG_LIMIT = 64 * 1024
DEFAULT_BASH_TIMEOUT = 30.0
DEFAULT_QUEUE_WAIT = 5.0
DEFAULT_POLL_INTERVAL = 1.0


def _level(value: Any) -> int:
    return _LEVELS.get(str(value).lower(), logging.INFO)


def _number(value: Any, default: float, what: str) -> float:
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, not {value!r}") from None


# --- context and logging -----------------------------------------------------------------------


class LogAction(BaseAction):
    """``log``: write ``message`` at ``level`` (debug, info, success, warning, error)."""

    async def execute(self, context: dict[str, Any]) -> str | None:
        message = to_text(self.params.get("message", ""))
        self.runtime.logger.log(_level(self.params.get("level", "info")), "%s", message)
        return None


class ActivityLogAction(BaseAction):
    """``activity_log``: like ``log``, and published on the monitor as ``activity_log``."""

    _DEFAULT_SUCCESS = default_event("activity_log", "success")

    async def execute(self, context: dict[str, Any]) -> str | None:
        message = to_text(self.params.get("message", ""))
        level = str(self.params.get("level", "info")).lower()
        self.runtime.logger.log(_level(level), "%s", message)
        self.runtime.publish("activity_log", message=message, level=level)
        return self.event("success", self._DEFAULT_SUCCESS)


class SleepAction(BaseAction):
    """``sleep``: wait ``duration`` seconds without blocking the process; returns ``wake_up``."""

    async def execute(self, context: dict[str, Any]) -> str | None:
        await asyncio.sleep(max(_number(self.params.get("duration"), 1.0, "duration"), 0.0))
        return "wake_up"


class SetContextAction(BaseAction):
    """``set_context``: ``context[key] = value``."""

    _DEFAULT_SUCCESS = default_event("set_context", "success")

    async def execute(self, context: dict[str, Any]) -> str | None:
        key = self.params.get("key")
        if not isinstance(key, str) or not key:
            raise ValueError("set_context needs a key")
        context[key] = self.params.get("value")
        return self.event("success", self._DEFAULT_SUCCESS)


class AddToListAction(BaseAction):
    """``add_to_list``: append ``value`` to the list at ``list_key`` (default ``items``)."""

    _DEFAULT_ERROR = default_event("add_to_list", "error")
    _DEFAULT_SUCCESS = default_event("add_to_list", "success")

    async def execute(self, context: dict[str, Any]) -> str | None:
        key = str(self.params.get("list_key", "items"))
        items = context.setdefault(key, [])
        if not isinstance(items, list):
            self.runtime.logger.error("add_to_list: context key %r is not a list", key)
            context["last_error"] = f"context key {key!r} is not a list"
            return self.event("error", self._DEFAULT_ERROR)
        items.append(self.params.get("value"))
        return self.event("success", self._DEFAULT_SUCCESS)


class PopFromListAction(BaseAction):
    """``pop_from_list``: take the first item of ``list_key`` into ``store_as``."""

    _DEFAULT_EMPTY = default_event("pop_from_list", "empty")
    _DEFAULT_SUCCESS = default_event("pop_from_list", "success")

    async def execute(self, context: dict[str, Any]) -> str | None:
        key = str(self.params.get("list_key", "items"))
        items = context.get(key)
        if not isinstance(items, list) or not items:
            if items is not None and not isinstance(items, list):
                self.runtime.logger.error("pop_from_list: context key %r is not a list", key)
            return self.event("empty", self._DEFAULT_EMPTY)
        item = items.pop(0)
        store_as = self.params.get("store_as")
        if store_as:
            context[str(store_as)] = item
        return self.event("success", self._DEFAULT_SUCCESS)


# --- shell -------------------------------------------------------------------------------------


async def _drain(stream: asyncio.StreamReader | None, limit: int) -> tuple[bytes, int]:
    """Read a stream to its end, keeping the first ``limit`` bytes; returns (kept, total)."""
    if stream is None:
        return b"", 0
    kept = bytearray()
    total = 0
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return bytes(kept), total
        total += len(chunk)
        if len(kept) < limit:
            kept.extend(chunk[: limit - len(kept)])


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


class BashAction(BaseAction):
    """``bash``: run ``command`` with ``/bin/sh``; ``success`` (``job_done``) on exit 0, else
    ``error_mappings[str(code)]`` or ``error`` (``error``). The command only ever comes from
    the machine file, as the compiler rewrote it: its placeholders' values are passed in the
    environment (``smc.runtime.shell``), never pasted into the shell text. A value that cannot
    be passed (unresolved placeholder, NUL) fails the action with its error event."""

    RAW_PARAMS = frozenset({"command", BASH_VALUES_PARAM})
    _DEFAULT_ERROR = default_event("bash", "error")
    _DEFAULT_SUCCESS = default_event("bash", "success")

    async def execute(self, context: dict[str, Any]) -> str | None:
        command = self.params.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ValueError("bash needs a command")
        logger = self.runtime.logger
        try:
            environment = command_environment(command, self.params.get(BASH_VALUES_PARAM), context)
        except CommandValueError as error:
            logger.error("bash: %s; not run: %s", error, command)
            _record_failure(context, str(error), command, None)
            return self.event("error", self._DEFAULT_ERROR)
        timeout = _number(self.params.get("timeout"), DEFAULT_BASH_TIMEOUT, "timeout")
        cwd = self.params.get("cwd") or None
        logger.debug("bash: %s", command)
        process = await asyncio.create_subprocess_shell(
            command,
            stdin=subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, killed as a whole on timeout
            cwd=cwd,
            env=environment,
        )
        readers = (
            asyncio.ensure_future(_drain(process.stdout, BASH_OUTPUT_LOG_LIMIT)),
            asyncio.ensure_future(_drain(process.stderr, BASH_OUTPUT_LOG_LIMIT)),
        )
        try:
            async with asyncio.timeout(timeout):
                code = await process.wait()
                (out, out_total), (err, err_total) = await readers[0], await readers[1]
        except TimeoutError:
            _kill_group(process)
            await process.wait()
            logger.error("bash: timed out after %gs: %s", timeout, command)
            _record_failure(context, f"command timed out after {timeout:g}s", command, None)
            return self.event("error", self._DEFAULT_ERROR)
        except BaseException:
            _kill_group(process)  # cancelled (shutdown): leave no orphaned command behind
            # Reap it now, so its pipes are closed while the loop still runs: left to the
            # garbage collector, they are closed after the loop, which prints a traceback
            # ("Event loop is closed") on the worker's way out. A second cancellation (a
            # second signal) cuts this wait short; the group is already killed.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await process.wait()
            raise
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        failed = code != 0
        _log_output(logger, "stdout", out, out_total, logging.INFO)
        _log_output(logger, "stderr", err, err_total, logging.WARNING if failed else logging.INFO)
        if not failed:
            return self.event("success", self._DEFAULT_SUCCESS)
        error_text = err.decode("utf-8", "replace").strip()
        logger.error("bash: exit code %s: %s", code, command)
        _record_failure(context, f"command failed (exit {code}): {error_text}", command, code)
        mappings = self.params.get("error_mappings")
        if isinstance(mappings, Mapping) and str(code) in mappings:
            return str(mappings[str(code)])
        return self.event("error", self._DEFAULT_ERROR)


def _record_failure(context: dict[str, Any], message: str, command: str, code: int | None) -> None:
    context["last_error"] = message
    context["last_error_action"] = "bash"
    context["last_error_command"] = command
    context["last_error_exit_code"] = code


def _log_output(logger: logging.Logger, name: str, data: bytes, total: int, level: int) -> None:
    if not data or not logger.isEnabledFor(level):
        return
    text = data.decode("utf-8", "replace").rstrip("\n")
    for line in text.split("\n"):
        logger.log(level, "bash %s: %s", name, line)
    if total > len(data):
        logger.log(level, "bash %s: ... (%d more bytes not logged)", name, total - len(data))


# --- jobs --------------------------------------------------------------------------------------


def _job_types(value: Any) -> list[str] | None:
    if value is None or value == "" or value == "*":
        return None
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    return [str(value)]


class CheckDatabaseQueueAction(BaseAction):
    """``check_database_queue``: claim the next job (``job_type``, ``machine_type``) and return
    ``new_job``; with none, wait up to ``wait`` seconds (5) for one — woken at once when a job
    is added, polling every ``poll_interval`` (1 s) as a fallback — then return ``no_jobs``.

    It first finishes the machine's previous job (docs/runtime.md, "Job completion"). An
    inbound event with a transition, an expired timer or a stop request ends the wait early
    (the action returns None and the engine handles it).
    """

    async def execute(self, context: dict[str, Any]) -> str | None:
        runtime = self.runtime
        job_types = _job_types(self.params.get("job_type"))
        machine_type = self.params.get("machine_type") or None
        wait = max(_number(self.params.get("wait"), DEFAULT_QUEUE_WAIT, "wait"), 0.0)
        poll = _number(self.params.get("poll_interval"), DEFAULT_POLL_INTERVAL, "poll_interval")
        poll = max(poll, 0.01)
        runtime.ensure_jobs_waker()
        deadline = time.monotonic() + wait
        while True:
            # The previous job is finished first; if the database refuses, no new job is
            # claimed until it accepts (nothing is lost, nothing runs twice meanwhile).
            job = None
            if await runtime.finish_current_job():
                try:
                    job = runtime.store.claim_job(
                        runtime.machine_name,
                        job_types,
                        None if machine_type is None else str(machine_type),
                        runtime.lease_seconds,
                    )
                except StoreError as error:
                    runtime.report_store_error("claim a job", error)
                else:
                    runtime.store_recovered("claim a job")
            if job is not None:
                runtime.job_claimed(job, current=True)
                return "new_job"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "no_jobs"
            if await runtime.wait_for_work(min(remaining, poll)) == "interrupted":
                return None


class GetPendingJobsAction(BaseAction):
    """``get_pending_jobs``: the runnable pending jobs (not claimed) into ``store_as``."""

    _DEFAULT_SUCCESS = default_event("get_pending_jobs", "success")
    _DEFAULT_EMPTY = default_event("get_pending_jobs", "empty")

    async def execute(self, context: dict[str, Any]) -> str | None:
        store_as = str(self.params.get("store_as", "pending_jobs"))
        limit = self.params.get("limit")
        jobs = self.runtime.store.list_pending(
            self.params.get("job_type") or None,
            self.params.get("machine_type") or None,
            None if limit in (None, "") else int(limit),
        )
        context[store_as] = [job_to_dict(job) for job in jobs]
        if jobs:
            return self.event("success", self._DEFAULT_SUCCESS)
        return self.event("empty", self._DEFAULT_EMPTY)


def _resolved_job_id(value: Any) -> str | None:
    """``value`` as a job id; None when it is missing or still holds an unresolved
    ``{placeholder}`` (the context had no such key)."""
    if value is None or value == "" or (isinstance(value, str) and PLACEHOLDER.search(value)):
        return None
    return str(value)


class ClaimJobAction(BaseAction):
    """``claim_job``: claim one pending job by ``job_id`` (the controller pattern). The job is
    *held*: its lease is renewed while this machine runs, until someone finishes it."""

    _DEFAULT_ALREADY_CLAIMED = default_event("claim_job", "already_claimed")
    _DEFAULT_SUCCESS = default_event("claim_job", "success")

    async def execute(self, context: dict[str, Any]) -> str | None:
        job_id = _resolved_job_id(self.params.get("job_id"))
        if job_id is None:
            raise ValueError(f"claim_job needs a job_id (got {self.params.get('job_id')!r})")
        runtime = self.runtime
        job = runtime.store.claim_job_by_id(job_id, runtime.machine_name, runtime.lease_seconds)
        if job is None:
            runtime.logger.info("job %s already claimed or not pending", job_id)
            return self.event("already_claimed", self._DEFAULT_ALREADY_CLAIMED)
        runtime.job_claimed(job, current=False)  # sets context["current_job"]
        return self.event("success", self._DEFAULT_SUCCESS)


class CompleteJobAction(BaseAction):
    """``complete_job``: mark ``job_id`` (default: the current job) completed."""

    _DEFAULT_ERROR = default_event("complete_job", "error")
    _DEFAULT_SUCCESS = default_event("complete_job", "success")

    async def execute(self, context: dict[str, Any]) -> str | None:
        runtime = self.runtime
        given = self.params.get("job_id") or runtime.current_job_id
        job_id = _resolved_job_id(given)
        if job_id is None:
            runtime.logger.warning("complete_job: no job to complete (job_id %r)", given)
            return self.event("error", self._DEFAULT_ERROR)
        if not runtime.finish_job(job_id, result=self.params.get("result")):
            runtime.logger.warning(
                "complete_job: job %s is not processing (or no longer ours)", job_id
            )
            return self.event("error", self._DEFAULT_ERROR)
        return self.event("success", self._DEFAULT_SUCCESS)


class FailJobAction(BaseAction):
    """``fail_job``: mark ``job_id`` (default: the current job) failed with ``reason``;
    ``retry: true`` puts it back to pending with backoff while attempts remain."""

    _DEFAULT_ERROR = default_event("fail_job", "error")
    _DEFAULT_SUCCESS = default_event("fail_job", "success")

    async def execute(self, context: dict[str, Any]) -> str | None:
        runtime = self.runtime
        given = self.params.get("job_id") or runtime.current_job_id
        job_id = _resolved_job_id(given)
        if job_id is None:
            runtime.logger.warning("fail_job: no job to fail (job_id %r)", given)
            return self.event("error", self._DEFAULT_ERROR)
        reason = to_text(
            self.params.get("reason") or context.get("last_error") or "failed by the machine"
        )
        retry = bool(self.params.get("retry", False))
        if not runtime.finish_job(job_id, reason=reason, retry=retry):
            runtime.logger.warning("fail_job: job %s is not processing (or no longer ours)", job_id)
            return self.event("error", self._DEFAULT_ERROR)
        return self.event("success", self._DEFAULT_SUCCESS)


class WaitForJobsAction(BaseAction):
    """``wait_for_jobs``: are the jobs listed in ``tracked_jobs_key`` (``spawned_jobs``)
    finished? Sets ``completed_jobs``, ``failed_jobs`` (failed or cancelled) and
    ``pending_jobs``; returns ``success`` (``all_jobs_complete``) when none is pending,
    ``timeout_event`` (``timeout``) after ``timeout`` seconds (300) of waiting, otherwise
    ``pending`` (None: a ``timeout(N)`` transition paces the next check)."""

    _DEFAULT_SUCCESS = default_event("wait_for_jobs", "success")
    _DEFAULT_TIMEOUT_EVENT = default_event("wait_for_jobs", "timeout_event")
    _DEFAULT_PENDING = default_event("wait_for_jobs", "pending")

    async def execute(self, context: dict[str, Any]) -> str | None:
        key = str(self.params.get("tracked_jobs_key", "spawned_jobs"))
        tracked = context.get(key)
        if not isinstance(tracked, list) or not tracked:
            self.runtime.logger.warning("wait_for_jobs: no jobs tracked in %r", key)
            return "no_jobs_tracked"
        job_ids = [str(item) for item in tracked]
        started = context.setdefault("wait_start_time", time.time())
        statuses = self.runtime.store.wait_job_statuses(job_ids)
        completed = [j for j in job_ids if statuses.get(j) == "completed"]
        failed = [j for j in job_ids if statuses.get(j) in ("failed", "cancelled")]
        pending = [
            j for j in job_ids if statuses.get(j) not in ("completed", "failed", "cancelled")
        ]
        context["completed_jobs"] = completed
        context["failed_jobs"] = failed
        context["pending_jobs"] = pending
        if not pending:
            context.pop("wait_start_time", None)
            return self.event("success", self._DEFAULT_SUCCESS)
        timeout = _number(self.params.get("timeout"), 300.0, "timeout")
        if time.time() - float(started) > timeout:
            context.pop("wait_start_time", None)
            self.runtime.logger.warning(
                "wait_for_jobs: %d job(s) still pending after %gs", len(pending), timeout
            )
            return self.event("timeout_event", self._DEFAULT_TIMEOUT_EVENT)
        return self.event("pending", self._DEFAULT_PENDING)


# --- machines ----------------------------------------------------------------------------------


def build_payload(template: Any, context: Mapping[str, Any]) -> Any:
    """``send_event``'s payload: strings interpolated; a string that is exactly one unresolved
    placeholder becomes None (as in statemachine-engine)."""
    if template is None:
        return {}
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template)
        if whole is not None:
            value = lookup(context, whole.group(1))
            return None if value is MISSING else value
        return interpolate_string(template, context)
    if isinstance(template, Mapping):
        return {str(key): build_payload(value, context) for key, value in template.items()}
    if isinstance(template, list | tuple):
        return [build_payload(item, context) for item in template]
    return template


class SendEventAction(BaseAction):
    """``send_event``: store ``event_type`` with ``payload`` for ``target_machine`` (any size;
    delivered when the target is idle, even if it starts later); returns ``success``
    (``event_sent``)."""

    RAW_PARAMS = frozenset({"payload"})
    _DEFAULT_SUCCESS = default_event("send_event", "success")

    async def execute(self, context: dict[str, Any]) -> str | None:
        runtime = self.runtime
        target = self.params.get("target_machine") or self.params.get("target")
        if not target:
            raise ValueError("send_event needs a target_machine")
        event_type = str(self.params.get("event_type") or DEFAULT_SENT_EVENT)
        payload = build_payload(self.params.get("payload"), context)
        job_id = runtime.current_job_id or (
            context.get("id") if isinstance(context.get("id"), str) else None
        )
        runtime.store.send_event(
            str(target), event_type, payload, source=runtime.machine_name, job_id=job_id
        )
        runtime.logger.debug("sent %s to %s", event_type, target)
        return self.event("success", self._DEFAULT_SUCCESS)


_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9_.@-]")


def child_log_path(log_dir: Path, machine_name: str) -> Path:
    """``<log_dir>/<machine>.log`` (characters unsafe in a file name replaced by ``_``)."""
    return log_dir / f"{_UNSAFE_FILE_CHARS.sub('_', machine_name) or 'machine'}.log"


def _context_vars(spec: Any, context: Mapping[str, Any], logger: logging.Logger) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if not spec:
        return values
    entries = spec if isinstance(spec, list | tuple) else [spec]
    for entry in entries:
        text = str(entry).strip()
        path, _, name = text.partition(" as ")
        path, name = path.strip(), (name.strip() or path.strip().rsplit(".", 1)[-1])
        value = lookup(context, path)
        if value is MISSING:
            logger.warning("start_fsm: context variable %r not found", path)
            continue
        values[name] = value
    return values


class StartFsmAction(BaseAction):
    """``start_fsm``: start ``smc run <yaml_path> --machine-name <machine_name>`` as a child
    process (its own process group; output appended to ``<log dir>/<machine>.log``), with
    ``context_vars`` as its initial context; ``store_pid`` appends the pid to
    ``spawned_pids``."""

    _DEFAULT_ERROR = default_event("start_fsm", "error")
    _DEFAULT_SUCCESS = default_event("start_fsm", "success")

    async def execute(self, context: dict[str, Any]) -> str | None:
        runtime = self.runtime
        yaml_path = self.params.get("yaml_path")
        if not yaml_path:
            raise ValueError("start_fsm needs a yaml_path")
        machine_name = self.params.get("machine_name")
        initial = _context_vars(self.params.get("context_vars"), context, runtime.logger)
        command = [sys.executable, "-m", "smc", "run", str(yaml_path)]
        if machine_name:
            command += ["--machine-name", str(machine_name)]
        initial_text = json.dumps(initial, default=str)
        try:
            # Each value sits one level below the context's top: a value at the nesting limit
            # would make the child refuse its --initial-context (exit 2) where nobody sees it.
            check_json_text(initial_text)
        except JsonLimitError as error:
            reason = f"the initial context for {yaml_path} {error}"
            runtime.logger.error("start_fsm: %s", reason)
            context["last_error"] = reason
            return self.event("error", self._DEFAULT_ERROR)
        command += [
            "--initial-context",
            initial_text,
            "--db",
            runtime.database,
            "--log-dir",
            str(runtime.log_dir),
            "--log-level",
            runtime.log_level,
        ]
        for directory in runtime.actions_dirs:
            command += ["--actions-dir", os.path.abspath(directory)]
        extra = self.params.get("additional_args") or []
        command += [str(arg) for arg in (extra if isinstance(extra, list | tuple) else [extra])]
        log_path = child_log_path(runtime.log_dir, str(machine_name or Path(str(yaml_path)).stem))
        try:
            runtime.log_dir.mkdir(parents=True, exist_ok=True)
            with open(log_path, "ab") as log_file:
                # Output goes to a file, never to a pipe nobody reads (the child would freeze).
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as error:
            runtime.logger.error("start_fsm: cannot start %s: %s", yaml_path, error)
            context["last_error"] = f"cannot start {yaml_path}: {error}"
            return self.event("error", self._DEFAULT_ERROR)
        runtime.track_child(process)
        runtime.logger.info(
            "started %s (pid %d, log %s)", machine_name or yaml_path, process.pid, log_path
        )
        if self.params.get("store_pid"):
            pids = context.setdefault("spawned_pids", [])
            if isinstance(pids, list):
                pids.append(process.pid)
        return self.event("success", self._DEFAULT_SUCCESS)


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
}
