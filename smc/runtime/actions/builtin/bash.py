"""The ``bash`` built-in action: a shell command in its own process group, with a timeout, its
output kept (up to a bound) for the log, and the values it uses passed out of band
(``smc.runtime.shell``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Mapping
from typing import Any

from smc.catalog import BASH_VALUES_PARAM, default_event
from smc.runtime.actions.base import BaseAction
from smc.runtime.actions.builtin.params import number_param
from smc.runtime.shell import CommandValueError, command_environment

#: How much of each output stream of a ``bash`` command is kept for the log.
BASH_OUTPUT_LOG_LIMIT = 64 * 1024
DEFAULT_BASH_TIMEOUT = 30.0
#: How long a stop waits for a killed command to be reaped before it goes on without it.
KILLED_COMMAND_REAP_SECONDS = 5.0


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
        timeout = number_param(self.params.get("timeout"), DEFAULT_BASH_TIMEOUT, "timeout")
        cwd = self.params.get("cwd") or None
        logger.debug("bash: %s", command)
        starting = asyncio.ensure_future(
            asyncio.create_subprocess_shell(
                command,
                stdin=subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group, killed as a whole
                cwd=cwd,
                env=environment,
            )
        )
        try:
            process = await asyncio.shield(starting)
        except asyncio.CancelledError:
            # Stopped while the command was starting (its first lines may already have
            # run). asyncio's own clean-up would kill only the shell and then wait for pipes
            # that the shell's children still hold: the stop hung for as long as the
            # command's `sleep` (seen under heavy load). Let it start; kill the group.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                async with asyncio.timeout(KILLED_COMMAND_REAP_SECONDS):
                    started = await starting
                    _kill_group(started)
                    await started.wait()
            raise
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
            # ("Event loop is closed") on the worker's way out. Bounded: ``wait()`` also waits
            # for the pipes to reach end-of-file, which under heavy load was seen not to come,
            # and a stop must never hang on it; a second cancellation cuts it short too.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                async with asyncio.timeout(KILLED_COMMAND_REAP_SECONDS):
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
