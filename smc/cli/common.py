"""What every ``smc`` command shares: exit codes, the usage error, the ``--db`` and
``--actions-dir`` options, and reading a JSON argument. The command modules import it; the
package ``__init__`` (the parser and ``main``) imports them, so nothing here imports back."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

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


def name_argument(text: str) -> str:
    """An argparse ``type`` for a name (a job type, a machine, an event): an empty or blank
    one was queued or sent, where nothing would ever take it."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def path_argument(text: str) -> str:
    """An argparse ``type`` for a file or directory argument: an empty one is the current
    directory to ``pathlib`` (``smc build -o ''`` wrote a package into it, ``smc check ''``
    checked it, ``--db ''`` opened ./smc.db), never what an empty ``"$VAR"`` meant."""
    if text == "":
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def require_file(path: str, takes: str) -> None:
    """Refuse, in one line, a ``path`` that is no file: missing, or a directory (``takes``
    says what the command reads instead, e.g. "smc workflow run takes one workflow file")."""
    if os.path.isdir(path):
        raise UsageError(f"{path} is a directory: {takes}")
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file")
    if not os.path.isfile(path):
        raise UsageError(f"{path} is not a regular file: {takes}")


def output_directory_argument(text: str) -> str:
    """An argparse ``type`` for a directory a command writes into (``-o``, ``--emit-tests``):
    not empty, and not a file that is there (writing into it was a traceback)."""
    path = path_argument(text)
    if os.path.exists(path) and not os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"{path} is a file, not a directory")
    return path


def complete_from(action: argparse.Action, choices: Callable[[], Sequence[str]]) -> None:
    """Shell completion offers ``choices()`` for ``action``, an option whose values the
    command checks itself (against a list in the store, which ``smc --help`` and the other
    commands must not import): ``smc completion`` reads it; parsing is unchanged."""
    setattr(action, COMPLETION_CHOICES, choices)


#: The attribute :func:`complete_from` sets on an action.
COMPLETION_CHOICES = "smc_completion_choices"


def cannot_write(error: OSError) -> UsageError:
    """An output a command could not write, in one line: the path and the system's reason
    (a parent that is a file, no permission, a full disk)."""
    where = error.filename if error.filename is not None else "the output"
    return UsageError(f"cannot write {where}: {error.strerror or type(error).__name__}")


def add_database_option(parser: argparse.ArgumentParser, *, inherited: bool = False) -> None:
    """``--db``, for every command that opens the database (read by ``check_database_driver``).

    ``inherited``: the option of a subcommand whose command takes ``--db`` too (``smc history
    --db X prune``). Left unset when not given, so that the command's value stands: argparse
    copies a subcommand's defaults over what its command parsed."""
    parser.add_argument(
        "--db",
        default=argparse.SUPPRESS if inherited else None,
        metavar="PATH_OR_URL",
        type=path_argument,
        help="database file or postgresql:// URL (default: $SMC_DB, else ./smc.db)",
    )


def check_range(value: int, option: str, low: int, high: int) -> None:
    """Integers beyond what both databases store (32-bit columns, 64-bit ids and LIMIT) are
    refused here, not by the database in one backend's words."""
    if not low <= value <= high:
        raise UsageError(f"{option} must be between {low} and {high}")


#: The largest id and LIMIT both databases take (a signed 64-bit integer).
MAX_INT64 = 2**63 - 1


def add_actions_dir_option(parser: argparse.ArgumentParser, *, worker: bool = False) -> None:
    """``--actions-dir`` (repeatable): for the checker, directories whose file names are known
    action types; for a ``worker``, where its user actions are loaded from."""
    if worker:
        purpose = "a directory of user actions (repeatable; default ./actions if it exists)"
    else:
        purpose = (
            "a directory of user actions; their file names are known action types "
            "(repeatable; default ./actions if it exists, as for smc run)"
        )
    parser.add_argument("--actions-dir", action="append", default=[], metavar="DIR", help=purpose)


def check_database_driver(args: argparse.Namespace) -> None:
    """A command given a PostgreSQL database (``--db`` or ``$SMC_DB``) without psycopg
    installed is a usage error naming the extra to install, before anything runs; so is a
    SQLite database that is a directory (SQLite said only "unable to open database file",
    exit 1, as if the database were broken)."""
    if not hasattr(args, "db"):
        return
    from smc.runtime.store import (
        MissingDriverError,
        is_postgres_url,
        require_postgres_driver,
        resolve_database,
    )

    target = resolve_database(args.db)
    try:
        require_postgres_driver(target)
    except MissingDriverError as error:
        raise UsageError(str(error)) from None
    if is_postgres_url(target):
        return
    path = unquote(urlsplit(target).path) if target.startswith("sqlite:") else target
    if os.path.isdir(path):
        option = "--db" if args.db is not None else "$SMC_DB"
        raise UsageError(
            f"{option}: {path} is a directory; give a database file (e.g. "
            f"{os.path.join(path, 'smc.db')})"
        )


def command_name(args: argparse.Namespace) -> str:
    """The command as typed, subcommand included (``jobs add``, ``workflow run``), as
    argparse's own errors name it: ``smc jobs: error: …`` beside ``smc jobs add: error: …``
    for one command read as two."""
    subcommand = getattr(args, f"{args.command}_command", None)
    return args.command if subcommand is None else f"{args.command} {subcommand}"


def report_error(args: argparse.Namespace, message: str) -> None:
    """``smc <command>: error: <message>`` on stderr, one line whatever the message quotes."""
    from smc.safe_text import escape_controls

    print(f"smc {command_name(args)}: error: {escape_controls(message)}", file=sys.stderr)
