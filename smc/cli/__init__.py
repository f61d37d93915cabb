"""The ``smc`` command line: one sub-module per family of commands.

- ``smc.cli.compile``  check, schema; ``smc.cli.build``, ``.diagram``, ``.paths`` (the compiler);
- ``smc.cli.queue``    jobs, send, status (the job queue and event store);
- ``smc.cli.run``, ``smc.cli.monitor``  run, monitor (the worker runtime);
- ``smc.cli.history``  history, history prune (the durable history);
- ``smc.cli.completion``  completion (shell completion scripts, by shtab).

Each module has ``register(subparsers)``; heavy imports happen inside the command handlers,
so ``smc --help`` stays fast. Exit codes: 0 ok, 1 problems found, 2 usage error, 3 bug.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from smc import __version__
from smc.cli import build as build_commands
from smc.cli import compile as compile_commands
from smc.cli import completion as completion_commands
from smc.cli import diagram as diagram_commands
from smc.cli import export as export_commands
from smc.cli import history as history_commands
from smc.cli import importing as import_commands
from smc.cli import monitor as monitor_commands
from smc.cli import paths as paths_commands
from smc.cli import queue as queue_commands
from smc.cli import run as run_commands
from smc.cli import ui as ui_commands
from smc.cli import workflow as workflow_commands
from smc.cli.common import (
    EXIT_BUG,
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    UsageError,
    add_actions_dir_option,
    add_database_option,
    check_database_driver,
    command_name,
    parse_json_argument,
    report_error,
)

__all__ = [
    "EXIT_BUG",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "EXIT_USAGE",
    "UsageError",
    "add_actions_dir_option",
    "add_database_option",
    "build_parser",
    "check_database_driver",
    "main",
    "parse_json_argument",
]


class CommandParser(argparse.ArgumentParser):
    """The parser of one command (``smc jobs list``): an argument it does not know is its
    error, shown with its own usage. argparse hands a subcommand's leftovers up to ``smc``
    itself, which answered ``smc jobs list --bogus`` with the usage of ``smc COMMAND``."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smc",
        description="The state machine compiler: check, build, draw, run and test YAML machines.",
    )
    parser.add_argument("--version", action="version", version=f"smc {__version__}")
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=CommandParser
    )
    subparsers.required = True
    compile_commands.register(subparsers)
    build_commands.register(subparsers)
    diagram_commands.register(subparsers)
    paths_commands.register(subparsers)
    export_commands.register(subparsers)
    import_commands.register(subparsers)
    queue_commands.register(subparsers)
    run_commands.register(subparsers)
    monitor_commands.register(subparsers)
    history_commands.register(subparsers)
    workflow_commands.register(subparsers)
    ui_commands.register(subparsers)
    completion_commands.register(subparsers, parser)
    return parser


#: Options whose value is an age: a negative one (``--older-than -1d``) would otherwise be
#: taken by argparse for an option, and refused with "expected one argument" instead of
#: the age's own message.
AGE_OPTIONS = frozenset({"--older-than", "--since", "--history-retention"})


def _attach_negative_ages(argv: Sequence[str]) -> list[str]:
    """``--since -1d`` as ``--since=-1d``, so that the age is checked (and refused) as an
    age. Only a value that starts with a dash and a digit is attached: ``--since --db X``
    stays a missing value."""
    joined: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token == "--":
            joined.append(token)
            joined.extend(tokens)
            break
        if token in AGE_OPTIONS:
            following = next(tokens, None)
            if following is not None and following[:1] == "-" and following[1:2].isdigit():
                joined.append(f"{token}={following}")
                continue
            joined.append(token)
            if following is not None:
                joined.append(following)
            continue
        joined.append(token)
    return joined


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_attach_negative_ages(sys.argv[1:] if argv is None else argv))
    if getattr(args, "actions_dir", None) == [] and Path("actions").is_dir():
        # As `smc run` finds user actions: the checker knows the same types, so `smc check`
        # says what `smc run` will do (a type ./actions provides is no SMC034 warning).
        args.actions_dir = ["actions"]
    try:
        check_database_driver(args)
        result: int = args.handler(args)
        return result
    except UsageError as error:
        # One line, whatever the message quotes (a file name, a job id) holds.
        report_error(args, str(error))
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"smc {command_name(args)}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except UnicodeEncodeError as error:
        undecodable = _undecodable_argument(sys.argv[1:] if argv is None else argv, error)
        if undecodable is None:
            return _internal_error(args)
        from smc.safe_text import escape_controls

        # Bytes that are not UTF-8 in an argument (Python keeps them as lone surrogates) fail
        # where the text is encoded, for the database or the terminal: nothing was written.
        report_error(args, f"argument {escape_controls(undecodable)!r} is not valid UTF-8")
        return EXIT_USAGE
    except Exception:
        return _internal_error(args)


def _internal_error(args: argparse.Namespace) -> int:
    """An internal failure is a bug, said as such, never a bare traceback (called in the
    ``except`` clause: the traceback is the one being handled)."""
    print(
        f"smc {command_name(args)}: internal error (this is a bug in smc {__version__}; "
        "please report it with the details below)",
        file=sys.stderr,
    )
    traceback.print_exc(limit=-3, file=sys.stderr)
    return EXIT_BUG


def _undecodable_argument(argv: Sequence[str], error: UnicodeEncodeError) -> str | None:
    """The command-line argument holding the undecodable bytes ``error`` met, if one does:
    the characters it failed on are the surrogates ``os.fsdecode`` makes of such bytes."""
    failed = error.object[error.start : error.end]
    if not isinstance(failed, str) or not all("\udc80" <= c <= "\udcff" for c in failed):
        return None
    return next((arg for arg in argv if failed in arg), None)
