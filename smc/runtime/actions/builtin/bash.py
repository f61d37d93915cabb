"""The ``bash`` built-in action: a shell command in its own process group, with a timeout, its
output kept (up to a bound) for the log, and the values it uses passed out of band
(``smc.runtime.shell``).

A command must not outlive the worker that runs it, however the worker ends: after a SIGKILL
the job comes back when its lease ends and runs again elsewhere, and a command left running
would run twice at once (two ``rsync`` to one place). A stop or a timeout kills the command's
group from here; a worker that is killed cannot, so each worker has a :class:`CommandWatchdog`,
a ``/bin/sh`` loop that holds the read end of a pipe from the worker and kills the groups of
the commands still running when that pipe closes, which the kernel does when the worker dies
for any reason. A command lists its own group there before it runs a line of its own, so none
runs unwatched. Why this and not ``PR_SET_PDEATHSIG`` or a subreaper: ``docs/actions.md``,
"When the worker dies". Linux and other Unix only, as the process groups already were.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import signal
import subprocess
import threading
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


#: The watchdog's loop: its standard input is the worker's pipe, one line a change, ``watch
#: GROUP`` (written by a command as it starts, ``START_ANNOUNCEMENT``) or ``done GROUP`` (by
#: the worker when it has reaped the command): numbers, never anyone's text. At the pipe's end
#: (the worker is gone, and every command that held the pipe has announced itself) it kills
#: every group still listed. Ended groups are taken off the list so a group id the system gives
#: again later is never killed.
WATCHDOG_SCRIPT = """\
IFS=' '
watched=
while read -r change group; do
    case $change in
        watch) watched="$watched $group" ;;
        done)
            kept=
            for each in $watched; do
                [ "$each" = "$group" ] || kept="$kept $each"
            done
            watched=$kept ;;
    esac
done
for each in $watched; do
    kill -s KILL -- "-$each"
done 2>/dev/null
"""

#: Put before the command's own text. The command starts with the watchdog's pipe as its
#: standard input: it writes its group (``$$``: it leads its own) there, then lets go of the
#: pipe and takes /dev/null as its input, as every command always had. So it is listed before
#: it runs a line of its own, however soon the worker dies: the pipe reaches its end only once
#: the command has let go of it. One line, no newline: the command's line numbers are
#: unchanged; no variable is set, and SIGPIPE is back to its default (a dead watchdog's pipe
#: must not kill the command). Nothing waits on the worker: a command starts as fast as before.
START_ANNOUNCEMENT = "trap '' PIPE; echo watch $$ >&0 2>/dev/null; trap - PIPE; exec </dev/null; "


class CommandWatchdog:
    """The worker's watchdog process (``WATCHDOG_SCRIPT``), started at the first command and
    kept for the worker's life; one per process, shared by every ``bash`` action it runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._pipe = -1
        #: The groups listed: told again to a watchdog started after one that died.
        self._watched: set[int] = set()
        os.register_at_fork(after_in_child=self._after_fork_in_child)

    def lifeline(self) -> int:
        """The write end of the watchdog's pipe, for a command's standard input (it lists its
        own group there: ``START_ANNOUNCEMENT``). Starts the watchdog when none runs (the first
        command, or the last watchdog was killed: the new one is told the commands running).
        Raises ``OSError`` when it cannot be started (the command must then not run)."""
        with self._lock:
            if self._process is not None and self._process.poll() is not None:
                self._forget_process()
            if self._process is None:
                self._start()
                listed = "".join(f"watch {group}\n" for group in sorted(self._watched))
                os.write(self._pipe, listed.encode())
            return self._pipe

    def started(self, group: int) -> None:
        """Note a command started: a watchdog started later is told its group."""
        with self._lock:
            self._watched.add(group)

    def done(self, group: int) -> None:
        """Take ``group`` off the list (its command ended, or was killed from here)."""
        with self._lock:
            self._watched.discard(group)
            if self._process is None:
                return
            try:
                os.write(self._pipe, f"done {group}\n".encode())
            except OSError:
                # The watchdog was killed (a stop's SIGTERM to every process of a service):
                # none is started for a removal; the next command's starts one and tells it.
                self._forget_process()

    def close(self) -> None:
        """Close the pipe (at exit): the watchdog kills what is still listed, then ends."""
        with self._lock:
            process, self._process = self._process, None
            if self._pipe >= 0:
                with contextlib.suppress(OSError):
                    os.close(self._pipe)
                self._pipe = -1
            if process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(KILLED_COMMAND_REAP_SECONDS)

    def _forget_process(self) -> None:
        if self._process is not None:
            self._process.poll()  # reaped, if it has ended
        with contextlib.suppress(OSError):
            os.close(self._pipe)
        self._process, self._pipe = None, -1

    def _start(self) -> None:
        reading, self._pipe = os.pipe()  # both ends close on exec: no command holds them
        try:
            self._process = subprocess.Popen(
                ["/bin/sh", "-c", WATCHDOG_SCRIPT, "smc-bash-watchdog"],
                stdin=reading,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                # its own session: a Ctrl-C to the worker's terminal does not end it
                start_new_session=True,
            )
        except BaseException:
            os.close(self._pipe)
            self._pipe = -1
            raise
        finally:
            os.close(reading)

    def _after_fork_in_child(self) -> None:
        # A copy of this process made by fork() alone (multiprocessing) must not hold the
        # pipe: the watchdog would not see it close when this process dies.
        if self._pipe >= 0:
            with contextlib.suppress(OSError):
                os.close(self._pipe)
        self._lock = threading.Lock()
        self._pipe, self._watched = -1, set()
        if self._process is not None:
            self._process.returncode = 0  # not ours to wait for in the copy
            self._process = None


WATCHDOG = CommandWatchdog()
atexit.register(WATCHDOG.close)


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
        try:
            lifeline = WATCHDOG.lifeline()
        except OSError as error:
            raise OSError(f"the command's watchdog cannot be started: {error}") from error
        starting = asyncio.ensure_future(
            asyncio.create_subprocess_shell(
                START_ANNOUNCEMENT + command,
                stdin=lifeline,  # to list its group; then the command reads /dev/null
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
            if starting.done() and not starting.cancelled() and starting.exception() is None:
                WATCHDOG.done(starting.result().pid)  # it may have listed itself
            raise
        WATCHDOG.started(process.pid)
        try:
            return await self._finish(process, command, timeout, context)
        finally:
            WATCHDOG.done(process.pid)

    async def _finish(
        self,
        process: asyncio.subprocess.Process,
        command: str,
        timeout: float,
        context: dict[str, Any],
    ) -> str | None:
        """Wait for the started ``process`` (up to ``timeout``), log its output, and give the
        action's event."""
        logger = self.runtime.logger
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
        # A command that wrote nothing to stderr says only how it ended ("exit 1: " read as
        # if its reason had been lost).
        reason = f"command failed (exit {code})" + (f": {error_text}" if error_text else "")
        _record_failure(context, reason, command, code)
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
