"""The ``bash`` built-in action: a shell command in its own process group, with a timeout, its
output kept (up to a bound) for the log, and the values it uses passed out of band
(``smc.runtime.shell``).

A command must not outlive the worker that runs it, however the worker ends: after a SIGKILL
the job comes back when its lease ends and runs again elsewhere, and a command left running
would run twice at once (two ``rsync`` to one place). A stop or a timeout kills the command's
group from here; a worker that is killed cannot, so each worker has a :class:`CommandWatchdog`,
a ``/bin/sh`` loop that holds the read end of a pipe from the worker and kills the groups of
the commands still running when that pipe closes, which the kernel does when the worker dies
for any reason. A command waits at a start gate until its group is on the watchdog's list, so
none runs unwatched. Why this and not ``PR_SET_PDEATHSIG`` or a subreaper: ``docs/actions.md``,
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
#: GROUP`` or ``done GROUP`` (numbers the worker writes, never anyone's text). At the pipe's end
#: (the worker is gone) it kills every group still listed. Ended groups are taken off the list
#: so a group id the system gives again later is never killed.
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

#: Put before the command's own text: the shell waits for the worker's word (a line on its
#: standard input) that the watchdog lists its group, then takes /dev/null as its input, as
#: every command always had. One line, no newline: the command's line numbers are unchanged.
#: When the word never comes (the worker died, or could not start its watchdog) the command
#: does not run. The variable it reads is unset again, so the command sees nothing of it.
START_GATE = "read -r smc_start_gate || exit 125; unset smc_start_gate; exec </dev/null; "


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

    def watch(self, group: int) -> None:
        """List ``group``: killed when this process dies before :meth:`done`. Raises
        ``OSError`` when no watchdog can be started (the command must then not run)."""
        with self._lock:
            self._watched.add(group)
            try:
                self._tell(f"watch {group}\n")
            except OSError:
                self._watched.discard(group)
                raise

    def done(self, group: int) -> None:
        """Take ``group`` off the list (its command ended, or was killed from here)."""
        with self._lock:
            if group not in self._watched:
                return
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

    def _tell(self, line: str) -> None:
        if self._process is not None:
            try:
                os.write(self._pipe, line.encode())
                return
            except BrokenPipeError:  # the watchdog was killed: start another one
                self._forget_process()
        self._start()
        os.write(self._pipe, "".join(f"watch {group}\n" for group in self._watched).encode())

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
        gate_reading, gate = os.pipe()
        starting = asyncio.ensure_future(
            asyncio.create_subprocess_shell(
                START_GATE + command,
                stdin=gate_reading,  # the start gate; then the command reads /dev/null
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group, killed as a whole
                cwd=cwd,
                env=environment,
            )
        )
        starting.add_done_callback(lambda _: os.close(gate_reading))
        try:
            try:
                process = await asyncio.shield(starting)
            except asyncio.CancelledError:
                # Stopped while the command was starting (it waits at the gate: none of its
                # own lines ran). asyncio's own clean-up would kill only the shell and then
                # wait for its pipes (a stop was seen hanging on that under heavy load). Let
                # it start; kill the group.
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    async with asyncio.timeout(KILLED_COMMAND_REAP_SECONDS):
                        started = await starting
                        _kill_group(started)
                        await started.wait()
                raise
            try:
                WATCHDOG.watch(process.pid)
            except OSError as error:
                _kill_group(process)
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(KILLED_COMMAND_REAP_SECONDS):
                        await process.wait()
                raise OSError(f"the command's watchdog cannot be started: {error}") from error
            # It fails only when the shell has already ended (bad syntax on the first line):
            # its exit code and message are the action's result, as before.
            with contextlib.suppress(OSError):
                os.write(gate, b"\n")
        finally:
            os.close(gate)
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
