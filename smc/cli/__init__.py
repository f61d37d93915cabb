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
import math
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from smc import __version__

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_BUG = 3


class UsageError(Exception):
    """A command was called wrongly; reported in one line with exit code 2."""


#: The most JSON text an option reads (inline, from a file or stdin), before parsing: room for
#: indentation around a value that must fit in 4 MiB as compact JSON (docs/queue.md).
MAX_ARGUMENT_BYTES = 16 << 20


def parse_json_argument(text: str | None, option: str) -> Any:
    """The JSON value of a command-line ``option``: given inline, as ``@FILE`` or as ``-``
    (stdin); None when ``text`` is None. Anything that is not one storable JSON value (bad
    JSON, NaN, an out-of-range number, text that is not UTF-8, an unreadable or oversized file,
    nesting or size beyond the limits of ``smc.runtime.jsonlimits``) is a usage error."""
    if text is None:
        return None
    from smc.runtime.store.base import encode_json

    # A command-line argument is limited to 128 KiB on Linux (MAX_ARG_STRLEN), so large
    # documents come from a file or stdin; no JSON text starts with "@" or is just "-".
    if text == "-":
        text = _decode_utf8(sys.stdin.buffer.read(MAX_ARGUMENT_BYTES + 1), option, "stdin")
    elif text.startswith("@"):
        text = _decode_utf8(_read_file(text[1:], option), option, f"file {text[1:]}")
    elif len(text) > MAX_ARGUMENT_BYTES:  # unreachable on Linux; other systems allow more
        raise UsageError(f"{option} is longer than {MAX_ARGUMENT_BYTES >> 20} MiB")
    try:
        value = json.loads(
            text, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_int
        )
    except RecursionError:
        from smc.runtime.jsonlimits import TOO_DEEP

        raise UsageError(f"{option} {TOO_DEEP}") from None
    except ValueError as error:
        raise UsageError(f"{option} is not valid JSON: {error}") from None
    try:
        encode_json(value, option)  # the limits the store applies, checked here to say so
    except ValueError as error:
        raise UsageError(str(error)) from None
    return value


def _read_file(path: str, option: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_ARGUMENT_BYTES + 1)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UsageError(f"{option}: cannot read {path}: {reason}") from None


def _decode_utf8(data: bytes, option: str, source: str) -> str:
    if len(data) > MAX_ARGUMENT_BYTES:
        raise UsageError(f"{option}: {source} is longer than {MAX_ARGUMENT_BYTES >> 20} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(
            f"{option}: {source} is not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
            f"{error.start})"
        ) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


#: Python refuses to convert longer digit strings (sys.get_int_max_str_digits()); said plainly.
_MAX_INT_DIGITS = 4300


def _int(text: str) -> int:
    if len(text) > _MAX_INT_DIGITS:
        raise ValueError(f"an integer of more than {_MAX_INT_DIGITS} digits is out of range")
    return int(text)


def add_database_option(parser: argparse.ArgumentParser) -> None:
    """``--db``, for every command that opens the database (read by ``check_database_driver``)."""
    parser.add_argument(
        "--db",
        default=None,
        metavar="PATH_OR_URL",
        help="database file or postgresql:// URL (default: $SMC_DB, else ./smc.db)",
    )


def add_actions_dir_option(parser: argparse.ArgumentParser, *, worker: bool = False) -> None:
    """``--actions-dir`` (repeatable): for the checker, directories whose file names are known
    action types; for a ``worker``, where its user actions are loaded from."""
    if worker:
        purpose = "a directory of user actions (repeatable; default ./actions if it exists)"
    else:
        purpose = (
            "a directory of user actions; their file names are known action types (repeatable)"
        )
    parser.add_argument("--actions-dir", action="append", default=[], metavar="DIR", help=purpose)


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
        from smc.safe_text import escape_controls

        # One line, whatever the message quotes (a file name, a job id) holds.
        print(f"smc {args.command}: error: {escape_controls(str(error))}", file=sys.stderr)
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
