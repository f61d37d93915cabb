"""The ``smc`` command line: one sub-module per family of commands.

- ``smc.cli.compile``  check, schema; ``smc.cli.build``, ``.diagram``, ``.paths`` (the compiler);
- ``smc.cli.queue``    jobs, send, status (the job queue and event store);
- ``smc.cli.run``, ``smc.cli.monitor``  run, monitor (the worker runtime);
- ``smc.cli.completion``  completion (shell completion scripts, by shtab).

Each module has ``register(subparsers)``; heavy imports happen inside the command handlers,
so ``smc --help`` stays fast. Exit codes: 0 ok, 1 problems found, 2 usage error, 3 bug.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smc import __version__

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_BUG = 3


class UsageError(Exception):
    """A command was called wrongly; reported in one line with exit code 2."""


def parse_json_argument(text: str | None, option: str) -> Any:
    """The JSON value of a command-line ``option``: given inline, as ``@FILE`` or as ``-``
    (stdin); None when ``text`` is None. Bad JSON or an unreadable file is a usage error."""
    if text is None:
        return None
    # A command-line argument is limited to 128 KiB on Linux (MAX_ARG_STRLEN), so large
    # documents come from a file or stdin; no JSON text starts with "@" or is just "-".
    if text == "-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as error:
            raise UsageError(f"{option}: cannot read {text[1:]}: {error.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise UsageError(f"{option} is not valid JSON: {error}") from None


def build_parser() -> argparse.ArgumentParser:
    from smc.cli import build as build_commands
    from smc.cli import compile as compile_commands
    from smc.cli import completion as completion_commands
    from smc.cli import diagram as diagram_commands
    from smc.cli import monitor as monitor_commands
    from smc.cli import paths as paths_commands
    from smc.cli import queue as queue_commands
    from smc.cli import run as run_commands

    parser = argparse.ArgumentParser(
        prog="smc",
        description="The state machine compiler: check, build, draw, run and test YAML machines.",
    )
    parser.add_argument("--version", action="version", version=f"smc {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    compile_commands.register(subparsers)
    build_commands.register(subparsers)
    diagram_commands.register(subparsers)
    paths_commands.register(subparsers)
    queue_commands.register(subparsers)
    run_commands.register(subparsers)
    monitor_commands.register(subparsers)
    completion_commands.register(subparsers)
    return parser


def check_database_driver(args: argparse.Namespace) -> None:
    """A command given a PostgreSQL database (``--db`` or ``$SMC_DB``) without psycopg
    installed is a usage error naming the extra to install, before anything runs."""
    if not hasattr(args, "db"):
        return
    from smc.runtime.store import MissingDriverError, require_postgres_driver, resolve_database

    try:
        require_postgres_driver(resolve_database(args.db))
    except MissingDriverError as error:
        raise UsageError(str(error)) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_database_driver(args)
        result: int = args.handler(args)
        return result
    except UsageError as error:
        print(f"smc {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"smc {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception:  # an internal failure is a bug, said as such, never a bare traceback
        print(
            f"smc {args.command}: internal error (this is a bug in smc {__version__}; "
            "please report it with the details below)",
            file=sys.stderr,
        )
        traceback.print_exc(limit=-3, file=sys.stderr)
        return EXIT_BUG
