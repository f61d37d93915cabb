"""Built-in actions between machines: ``send_event`` to another machine (any size, delivered
when it is idle) and ``start_fsm`` to start one as a child process."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from smc.catalog import DEFAULT_SENT_EVENT, default_event
from smc.runtime.actions.base import BaseAction
from smc.runtime.context import MISSING, PLACEHOLDER, interpolate_string, lookup
from smc.runtime.jsonlimits import JsonLimitError, check_json_text
from smc.runtime.monitor.paths import NameHolder, monitor_dir, monitor_socket_path, name_holder
from smc.runtime.monitor.start_lock import (
    START_LOCK_ENV,
    release_start_lock,
    start_lock_path,
    take_start_lock,
)
from smc.runtime.store import MachineRow, StoreError


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


#: The ``smc run`` options that decide which name a child holds, and where (its database's
#: monitor sockets): given again in ``additional_args`` (argparse takes the last, and a unique
#: prefix), they make the namesake check unreliable, so it is not made.
_NAMING_OPTIONS = ("--machine-name", "--db")


def _renames_the_child(arguments: list[str]) -> bool:
    options = (argument.split("=", 1)[0] for argument in arguments)
    return any(
        len(option) > 2 and option.startswith("--") and known.startswith(option)
        for option in options
        for known in _NAMING_OPTIONS
    )


class StartFsmAction(BaseAction):
    """``start_fsm``: start ``smc run <yaml_path> --machine-name <machine_name>`` as a child
    process (its own process group; output appended to ``<log dir>/<machine>.log``), with
    ``context_vars`` as its initial context; ``store_pid`` appends the pid to
    ``spawned_pids``. It does not wait for the child's start-up.

    When a live machine on this host already holds ``machine_name`` (its monitor socket
    answers: the test the child itself would refuse on, :func:`name_holder`), nothing is
    started: the child asked for runs, so the action logs it and returns ``success``, and
    ``store_pid`` appends the running machine's pid (none, logged, when the system does not
    tell it). When the check cannot tell (an error), the child is started as usual. The check
    and the child's start-up hold the name's start lock (:mod:`smc.runtime.monitor.start_lock`):
    a second start of the name meanwhile waits until the child listens, then finds it running.
    A namesake on another host (the registry's row: running there, its heartbeat fresh) is
    not started again either, and ``store_pid`` appends no pid of another host's
    (docs/actions.md, "Child machines outlive their parent")."""

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
        trace_id = runtime.store.trace_id
        if trace_id is not None:
            # The child's work is caused by this machine's: it carries the same trace.
            command += ["--trace-id", trace_id]
        extra = self.params.get("additional_args") or []
        extra_args = [str(arg) for arg in (extra if isinstance(extra, list | tuple) else [extra])]
        command += extra_args
        lock: int | None = None
        lock_path: Path | None = None
        if machine_name and not _renames_the_child(extra_args):
            socket_path = self._socket_path(str(machine_name))
            if socket_path is not None:
                # Held from the check until the child holds the name (or refused it): a start
                # of the same name meanwhile waits, then finds the child running.
                lock_path = start_lock_path(socket_path)
                lock = await take_start_lock(lock_path)
                holder = self._namesake(socket_path)
                name = str(machine_name)
                elsewhere = None if holder is not None else self._running_elsewhere(name)
                if holder is not None or elsewhere is not None:
                    release_start_lock(lock, lock_path)
                    if holder is not None:
                        return self._already_running(name, holder, context)
                    assert elsewhere is not None
                    return self._already_running_elsewhere(elsewhere, context)
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
                    # The lock goes with the child, which lets go of it once it listens.
                    pass_fds=() if lock is None else (lock,),
                    env=None if lock is None else {**os.environ, START_LOCK_ENV: str(lock)},
                )
        except OSError as error:
            if lock_path is not None:
                release_start_lock(lock, lock_path)
            runtime.logger.error("start_fsm: cannot start %s: %s", yaml_path, error)
            context["last_error"] = f"cannot start {yaml_path}: {error}"
            return self.event("error", self._DEFAULT_ERROR)
        if lock is not None:
            os.close(lock)  # the child's copy holds it now
        runtime.track_child(process)
        runtime.logger.info(
            "started %s (pid %d, log %s)", machine_name or yaml_path, process.pid, log_path
        )
        if self.params.get("store_pid"):
            pids = context.setdefault("spawned_pids", [])
            if isinstance(pids, list):
                pids.append(process.pid)
        return self.event("success", self._DEFAULT_SUCCESS)

    def _socket_path(self, machine_name: str) -> Path | None:
        """Where a machine named ``machine_name`` listens on this host, or None when that
        cannot be told (then the child is started, and its own refusal guards)."""
        try:
            return monitor_socket_path(monitor_dir(self.runtime.store), machine_name)
        except (OSError, ValueError) as error:
            self.runtime.logger.debug("start_fsm: cannot check for %s: %s", machine_name, error)
            return None

    def _namesake(self, socket_path: Path) -> NameHolder | None:
        """The live machine on this host listening on ``socket_path``, or None: none does, or
        the check cannot tell (then the child is started, and its own refusal guards)."""
        try:
            return name_holder(socket_path)
        except OSError as error:
            self.runtime.logger.debug("start_fsm: cannot check %s: %s", socket_path, error)
            return None

    def _running_elsewhere(self, machine_name: str) -> MachineRow | None:
        """The registry's row of ``machine_name`` when it runs on another host (a shared
        PostgreSQL store: its row running, its heartbeat fresh), the test the child's start
        refuses on (``Engine._refuse_a_namesake``); None otherwise, or when the registry cannot
        be read (then the child is started, and its own refusal guards)."""
        try:
            row = self.runtime.store.get_machine(machine_name)
        except StoreError as error:
            self.runtime.logger.debug("start_fsm: cannot read %s's row: %s", machine_name, error)
            return None
        if row is None or row.status != "running" or row.host == socket.gethostname():
            return None
        return row

    def _already_running_elsewhere(self, row: MachineRow, context: dict[str, Any]) -> str | None:
        logger = self.runtime.logger
        logger.info(
            "start_fsm: %s is already running on %s (pid %s); not started again",
            row.name,
            row.host,
            "unknown" if row.pid is None else row.pid,
        )
        if self.params.get("store_pid"):
            # A pid on another host is no process here: a kill of spawned_pids would hit
            # whatever runs under that number on this one.
            logger.info("start_fsm: spawned_pids not extended: %s runs on another host", row.name)
        return self.event("success", self._DEFAULT_SUCCESS)

    def _already_running(
        self, machine_name: str, holder: NameHolder, context: dict[str, Any]
    ) -> str | None:
        logger = self.runtime.logger
        shown = "unknown" if holder.pid is None else str(holder.pid)
        logger.info(
            "start_fsm: %s is already running (pid %s); not started again", machine_name, shown
        )
        if self.params.get("store_pid"):
            if holder.pid is None:
                logger.info(
                    "start_fsm: spawned_pids not extended: the system does not tell the pid "
                    "of the running %s (its monitor socket's peer)",
                    machine_name,
                )
            else:
                pids = context.setdefault("spawned_pids", [])
                if isinstance(pids, list):
                    pids.append(holder.pid)
        return self.event("success", self._DEFAULT_SUCCESS)
