"""``smc history``: the durable history (``docs/history.md``); ``smc history prune``.

``smc history [--machine M] [--job ID] [--trace T] [--kind K] [--since 10m|ISO] [--after-id N]
[--limit N] [--newest] [--format table|json|jsonl]`` lists history rows in the order they were
recorded (JSONL: one JSON object per line, the ledger format). ``smc history prune --older-than 7d``
deletes history rows, finished jobs, delivered events and finished workflow runs older than
the age given.
Exit codes: 0; 1 for a database problem; 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from smc.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    MAX_INT64,
    UsageError,
    add_database_option,
    check_range,
    command_name,
    complete_from,
    report_error,
)

#: What ``smc history`` lists at most, unless ``--limit`` says otherwise.
DEFAULT_LIMIT = 1000
#: The listing's filters, by their destination: ``smc history --machine M prune`` is refused
#: rather than pruning everything (prune removes by age alone).
_LISTING_OPTIONS = {
    "machine": "--machine",
    "job": "--job",
    "trace": "--trace",
    "kind": "--kind",
    "since": "--since",
    "after_id": "--after-id",
    "limit": "--limit",
    "newest": "--newest",
}


#: ``smc history``'s usage, both of its forms: argparse's own put a ``COMMAND ...`` after the
#: options, as if listing needed one, and left out prune's ``--older-than``. The options are
#: those of the parser (tests/cli/test_first_hour.py checks that each is here).
USAGE = """%(prog)s [-h] [--db PATH_OR_URL] [--machine NAME] [--job ID] [--trace ULID]
                   [--kind KIND]... [--since AGE|TIME] [--after-id N] [--limit N]
                   [--newest] [--format table|json|jsonl]
       %(prog)s prune [-h] [--db PATH_OR_URL] --older-than AGE [--format table|json]"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "history",
        usage=USAGE,
        help="what happened: transitions, jobs, events and errors, kept in the database",
        description=(
            "List the history the workers recorded in the database, oldest first; "
            "'smc history prune' deletes what is older than an age."
        ),
    )
    add_database_option(parser)
    parser.add_argument("--machine", default=None, metavar="NAME", help="only this machine")
    parser.add_argument("--job", default=None, metavar="ID", help="only rows about this job")
    parser.add_argument("--trace", default=None, metavar="ULID", help="only this trace")
    kind = parser.add_argument(
        "--kind",
        action="append",
        default=None,
        metavar="KIND",
        help="only rows of this kind (transition, job_claimed, error, ...); repeatable",
    )
    complete_from(kind, _history_kinds)
    parser.add_argument(
        "--since",
        default=None,
        metavar="AGE|TIME",
        help="only rows since 10m, 2h, 7d or an ISO time",
    )
    parser.add_argument(
        "--after-id", type=int, default=None, metavar="N", help="only rows after id N"
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help=f"at most N rows (default {DEFAULT_LIMIT})",
    )
    parser.add_argument(
        "--newest",
        action="store_true",
        default=None,
        help="the newest rows that match, up to --limit (still oldest first); default: the "
        "oldest",
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "jsonl"),
        default=None,
        help="a table for people, a JSON array, or JSON lines (default: table)",
    )
    parser.set_defaults(handler=_history)
    # prog given: argparse makes the subcommand's from the usage, here both forms of it.
    commands = parser.add_subparsers(
        dest="history_command",
        prog=parser.prog,
        title="subcommand (without one, smc history lists the history)",
        metavar="COMMAND",
    )
    prune = commands.add_parser(
        "prune",
        help="delete history, finished jobs, delivered events and finished workflow runs "
        "older than an age",
        description=(
            "Delete history rows, finished jobs (completed, failed, cancelled), delivered "
            "events (done, dead) and finished workflow runs older than --older-than. Prints "
            "how many of each went."
        ),
    )
    # --db and --format may come before "prune" too: unset here unless given, so that a
    # value given before stands (argparse copies a subcommand's defaults over it).
    add_database_option(prune, inherited=True)
    prune.add_argument(
        "--older-than", required=True, metavar="AGE", help="an age: 30m, 12h, 7d, 2w"
    )
    prune.add_argument(
        "--format", choices=("table", "json"), default=argparse.SUPPRESS, help="default: table"
    )
    prune.set_defaults(handler=_prune)


def _history_kinds() -> tuple[str, ...]:
    from smc.runtime.store import HISTORY_KINDS

    return HISTORY_KINDS


def _open(args: argparse.Namespace) -> Any:
    """The store ``--db`` names, which must be there: reading or pruning the history of a
    mistyped path once made an empty database there and printed nothing, or "pruned 0"."""
    from smc.runtime.store import NoDatabaseError, open_store

    try:
        return open_store(args.db, create=False)
    except NoDatabaseError as error:
        raise UsageError(f"--db: {error} (smc {command_name(args)} makes none)") from None


def _history(args: argparse.Namespace) -> int:
    from smc.runtime.history import history_table, parse_since
    from smc.runtime.store import HISTORY_KINDS, StoreError

    limit = DEFAULT_LIMIT if args.limit is None else args.limit
    check_range(limit, "--limit", 1, MAX_INT64)
    if args.after_id is not None:
        check_range(args.after_id, "--after-id", 0, MAX_INT64)
    for kind in args.kind or ():
        if kind not in HISTORY_KINDS:
            raise UsageError(f"--kind must be one of: {', '.join(HISTORY_KINDS)}")
    try:
        since = None if args.since is None else parse_since(args.since)
    except ValueError as error:
        raise UsageError(f"--since: {error}") from None
    try:
        with _open(args) as store:
            rows = store.history(
                machine=args.machine,
                job_id=args.job,
                trace_id=args.trace,
                since=since,
                after_id=args.after_id,
                kinds=args.kind,
                limit=limit,
                newest=bool(args.newest),
            )
    except StoreError as error:
        report_error(args, str(error))
        return EXIT_PROBLEMS
    # JSON with non-ASCII escaped, as every smc command prints it: names and payloads are
    # untrusted text, and a bidi override must not reach a terminal as itself.
    if args.format == "jsonl":
        for row in rows:
            print(json.dumps(row.to_dict()))
    elif args.format == "json":
        print(json.dumps([row.to_dict() for row in rows], indent=2))
    if not rows:
        # Said on stderr in every format (stdout stays empty, or `[]`, for scripts): nothing
        # printed at all read as a hang or a failure.
        print("smc history: no rows match", file=sys.stderr)
    elif args.format not in ("json", "jsonl"):  # the table (the default, None)
        print(history_table(rows))
        if len(rows) == limit:
            which = "newest" if args.newest else "oldest"
            other = "" if args.newest else ", --newest for the latest"
            print(
                f"smc history: note: the {which} {limit} rows that match; more may match "
                f"(--limit N{other}, --since, --after-id)",
                file=sys.stderr,
            )
    return EXIT_OK


def _prune(args: argparse.Namespace) -> int:
    from smc.runtime.history import parse_age
    from smc.runtime.store import StoreError

    given = [option for dest, option in _LISTING_OPTIONS.items() if getattr(args, dest) is not None]
    if given:
        raise UsageError(
            f"{', '.join(given)}: prune takes no filter (it removes everything finished "
            "that is older than --older-than); those options are for listing the history"
        )
    output = args.format or "table"
    if output not in ("table", "json"):
        raise UsageError(f"--format {output}: prune prints a table or json")
    try:
        age = parse_age(args.older_than)
    except ValueError as error:
        raise UsageError(f"--older-than: {error}") from None
    try:
        with _open(args) as store:
            removed = store.prune_history(age)
    except StoreError as error:
        report_error(args, str(error))
        return EXIT_PROBLEMS
    if output == "json":
        print(json.dumps(removed))
    else:
        print(
            f"pruned {removed['history']} history rows, {removed['jobs']} finished jobs, "
            f"{removed['events']} delivered events, {removed['workflow_runs']} finished "
            "workflow runs"
        )
    return EXIT_OK


__all__ = ["register"]
