"""``smc run``: run one machine as a long-lived worker process.

The target is a machine file (``*.yaml``/``*.yml``) or an SCXML document (``*.scxml``),
compiled here — the CLI, not the runtime, uses the compiler — to a module cached by content
hash, or an already generated class (``package.module:Class`` or
``path/to/module.py[:Class]``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

from smc.catalog import COMPILED_SUFFIXES, YAML_SUFFIXES
from smc.cli.common import (
    EXIT_PROBLEMS,
    EXIT_USAGE,
    UsageError,
    add_actions_dir_option,
    add_database_option,
    parse_json_argument,
    path_argument,
)
from smc.safe_text import OneLineFormatter, escape_controls

#: The longest job lease: a live worker renews its leases every few seconds anyway, and beyond
#: this a crashed worker's jobs would wait for ages (PostgreSQL refuses astronomical intervals).
MAX_LEASE_SECONDS = 86400.0


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run",
        help="run a machine as a worker (jobs, events, timers)",
        description="Run one machine until it reaches a final state or gets SIGINT/SIGTERM. "
        "A YAML file is checked and compiled first (cached by content hash under "
        "$SMC_CACHE_DIR, $XDG_CACHE_HOME/smc or ~/.cache/smc). Exit 0 on a clean stop, "
        "1 when the file has errors or the database cannot be used, 2 for a usage error "
        "or an unknown action type.",
    )
    run.add_argument(
        "target",
        metavar="CONFIG.yaml|CHART.scxml|MODULE:Class",
        type=path_argument,
        help="a machine file, or a generated class (package.module:Class, path/to/module.py)",
    )
    run.add_argument("--machine-name", default=None, help="run under this name (templates)")
    add_actions_dir_option(run, worker=True)
    run.add_argument(
        "--lease-seconds",
        type=float,
        default=30.0,
        metavar="S",
        help="job lease; renewed every S/3 while the machine lives (default 30)",
    )
    add_database_option(run)
    run.add_argument(
        "--initial-context",
        default=None,
        metavar="JSON",
        help="a JSON object for the context, @FILE or - for stdin",
    )
    run.add_argument(
        "--log-level",
        default="info",
        type=str.lower,
        choices=("debug", "info", "warning", "error"),
        help="default info",
    )
    run.add_argument(
        "--monitor-readers",
        type=int,
        default=None,
        metavar="N",
        help="most monitor readers at once; more are refused (default $SMC_MONITOR_MAX_READERS "
        "or 64, at most a quarter of the open-file limit)",
    )
    run.add_argument(
        "--log-dir",
        default="logs",
        metavar="DIR",
        type=path_argument,
        help="where start_fsm writes each child machine's output (default ./logs)",
    )
    run.add_argument(
        "--history-retention",
        default=None,
        metavar="AGE",
        help="prune history, finished jobs and delivered events older than AGE (30m, 12h, 7d; "
        "off: never), checked hourly (default $SMC_HISTORY_RETENTION or 7d)",
    )
    run.add_argument(
        "--trace-id",
        default=None,
        metavar="ULID",
        help="the trace the machine starts in (start_fsm passes its own; default: none until "
        "it takes a job or an event)",
    )
    run.set_defaults(handler=run_command)


class _Formatter(OneLineFormatter):
    def format(self, record: logging.LogRecord) -> str:
        record.short_name = escape_controls(
            record.name.removeprefix("smc.machine.").removeprefix("smc.")
        )
        return super().format(record)


def _configure_logging(level: str) -> None:
    # A worker logs a line for each transition it makes outside a job (a timer-driven
    # machine: dozens a second), so it gathers only what its format shows: no caller's file
    # and line, thread, or process names (the logging HOWTO's "Optimization" settings). They
    # were a quarter of what a record cost; a user's handler that wants them sees None.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter("%(asctime)s %(levelname)-7s [%(short_name)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def build_cached(yaml_path: str, actions_dirs: list[str]) -> Path:
    """Compile ``yaml_path`` to a cached module (``smc.compiler.machinecache``) and return the
    module's path. Diagnostics go to stderr; errors raise :class:`BuildFailed`."""
    from smc.compiler.machinecache import MachineCacheError, compile_machine_file

    try:
        compiled = compile_machine_file(yaml_path, actions_dirs)
    except MachineCacheError as error:
        raise UsageError(str(error)) from None
    result = compiled.checked
    if result is not None:
        # A cache miss: the file was checked (a hit was clean when it was compiled).
        from smc.compiler.diagnostics import format_text

        for diagnostic in result.diagnostics:
            if diagnostic.code == "SMC040":
                # A machine is run alone, so it is checked alone: every machine it sends to
                # is "not among the checked files", and a correct set-up warned on each
                # start. `smc check DIR` checks the targets' names together.
                continue
            print(format_text(diagnostic, result.sources.get(diagnostic.path)), file=sys.stderr)
    if compiled.module_path is None:
        assert result is not None
        if result.workflows and not result.errors:
            raise UsageError(
                f"{yaml_path} is a workflow, not a machine: run it with smc workflow run"
            )
        # Only unknown action types: the exit code the action registry gives them (2).
        unknown_types = bool(result.errors) and all(d.code == "SMC030" for d in result.errors)
        raise BuildFailed(
            f"{yaml_path}: {len(result.errors)} error(s); not started",
            EXIT_USAGE if unknown_types else EXIT_PROBLEMS,
        )
    return compiled.module_path


class BuildFailed(Exception):
    """The machine file has errors (already printed)."""

    def __init__(self, message: str, exit_code: int = EXIT_PROBLEMS) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def directory_target_message(directory: str) -> str:
    """Why a directory cannot be run, and what to pass instead: ``smc run`` runs one machine
    per process, so even a folder holding a single machine file is not guessed at."""
    try:
        names = os.listdir(directory)
    except OSError:
        names = []
    files = sorted(
        os.path.join(directory, name)
        for name in names
        if name.endswith(YAML_SUFFIXES) and os.path.isfile(os.path.join(directory, name))
    )
    message = f"{directory} is a directory; smc run runs one machine per process"
    if not files:
        return f"{message}: pass a machine file (CONFIG.yaml) or MODULE:Class"
    shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
    return f"{message}: pass one machine file, e.g. {shown}"


def run_command(args: argparse.Namespace) -> int:
    from smc.runtime.signals import install_process_signals

    # Already installed by ``python -m smc``; the ``smc`` console script gets here first.
    signals = install_process_signals()
    from smc.runtime.monitor.start_lock import inherited_start_lock

    # First, before this process opens any file that could take the descriptor's number.
    start_lock = inherited_start_lock()

    from smc.runtime.actions import default_actions_dirs
    from smc.runtime.engine import Engine, StartupError
    from smc.runtime.loading import LoadError, load_machine_class

    if not (0 < args.lease_seconds <= MAX_LEASE_SECONDS):  # False for NaN too
        raise UsageError(
            f"--lease-seconds must be more than 0 and at most {MAX_LEASE_SECONDS:g} (a day)"
        )
    if args.monitor_readers is not None and args.monitor_readers < 1:
        raise UsageError("--monitor-readers must be at least 1")
    from smc.runtime.history import retention_seconds

    try:
        retention = retention_seconds(args.history_retention)
    except ValueError as error:
        raise UsageError(str(error)) from None
    trace_id = args.trace_id
    if trace_id == "":
        raise UsageError("--trace-id must not be empty")
    if trace_id is not None:
        from smc.runtime.store import canonical_trace_id

        # A ULID in any case is stored as trace ids are made (upper case); other text is a
        # trace id the store's API was given (it takes any), which start_fsm passes on.
        with contextlib.suppress(ValueError):
            trace_id = canonical_trace_id(trace_id)
    initial: dict[str, Any] = {}
    if args.initial_context:
        initial = parse_json_argument(args.initial_context, "--initial-context")
        if not isinstance(initial, dict):
            raise UsageError("--initial-context must be a JSON object")
    actions_dirs = list(default_actions_dirs(args.actions_dir))
    _configure_logging(args.log_level)
    target: str = args.target
    config_path: str | None = None
    if os.path.isdir(target):
        raise UsageError(directory_target_message(target))
    try:
        if target.endswith(COMPILED_SUFFIXES):
            config_path = os.path.abspath(target)
            machine_cls = load_machine_class(str(build_cached(target, actions_dirs)))
        else:
            module_name = target.partition(":")[0]
            if os.path.isfile(target) and not target.endswith(".py"):
                # A file that is no machine file and no module: importing its stem was a
                # search of sys.path for another module of that name.
                raise UsageError(
                    f"{target}: smc run takes a machine file "
                    f"({', '.join('*' + suffix for suffix in COMPILED_SUFFIXES)}), "
                    "MODULE:Class or path/to/module.py"
                )
            if module_name == "" or module_name.startswith("."):
                # importlib raises ValueError/TypeError for these, not ImportError.
                raise UsageError(
                    f"{target!r} names no module: pass a machine file (CONFIG.yaml), "
                    "MODULE:Class or path/to/module.py"
                )
            machine_cls = load_machine_class(target)
    except BuildFailed as error:
        print(f"smc run: {escape_controls(str(error))}", file=sys.stderr)
        return error.exit_code
    except LoadError as error:
        raise UsageError(str(error)) from None
    try:
        engine = Engine(
            machine_cls,
            database=args.db,
            machine_name=args.machine_name,
            actions_dirs=actions_dirs,
            lease_seconds=args.lease_seconds,
            initial_context=initial,
            log_dir=args.log_dir,
            log_level=args.log_level,
            config_path=config_path,
            monitor_readers=args.monitor_readers,
            trace_id=trace_id,
            history_retention=retention,
            start_lock=start_lock,
        )
    except StartupError as error:
        print(f"smc run: error: {escape_controls(str(error))}", file=sys.stderr)
        return error.exit_code
    if signals.requested:
        signals.ignore_from_now()
        return 0  # stopped before it started: nothing was claimed or registered
    import asyncio
    import gc

    # Everything loaded so far (the compiler, the machine class, the actions) lives as long as
    # the worker: move it out of the collector's reach so full collections stay short and
    # do not show up as event-latency spikes.
    gc.freeze()
    try:
        return asyncio.run(engine.run(signals))
    except StartupError as error:
        print(f"smc run: error: {escape_controls(str(error))}", file=sys.stderr)
        return error.exit_code
    finally:
        # The worker is done; only the interpreter's exit is left, and that resets handled
        # signals to their defaults, so a late signal would kill the process (-2/-15).
        signals.ignore_from_now()


__all__ = ["EXIT_USAGE", "BuildFailed", "build_cached", "register", "run_command"]
