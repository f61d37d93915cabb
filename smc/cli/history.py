"""``smc history``: the durable history (``docs/history.md``); ``smc history prune``.

``smc history [--machine M] [--job ID] [--trace T] [--kind K] [--since 10m|ISO] [--after-id N]
[--limit N] [--format table|json|jsonl]`` lists history rows in the order they were recorded
(JSONL: one JSON object per line, the ledger format). ``smc history prune --older-than 7d``
deletes history rows, finished jobs, delivered events and finished workflow runs older than
the age given.
Exit codes: 0; 1 for a database problem; 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from smc.cli.common import EXIT_OK, EXIT_PROBLEMS, UsageError, add_database_option


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "history",
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
    parser.add_argument(
        "--kind",
        action="append",
        default=None,
        metavar="KIND",
        help="only rows of this kind (transition, job_claimed, error, ...); repeatable",
    )
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
        "--limit", type=int, default=1000, metavar="N", help="at most N rows (default 1000)"
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "jsonl"),
        default="table",
        help="a table for people, a JSON array, or JSON lines (default: table)",
    )
    parser.set_defaults(handler=_history)
    commands = parser.add_subparsers(dest="history_command", metavar="COMMAND")
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
    add_database_option(prune)
    prune.add_argument(
        "--older-than", required=True, metavar="AGE", help="an age: 30m, 12h, 7d, 2w"
    )
    prune.add_argument(
        "--format", choices=("table", "json"), default="table", help="default: table"
    )
    prune.set_defaults(handler=_prune)


def _open(args: argparse.Namespace) -> Any:
    from smc.runtime.store import open_store

    return open_store(args.db)


def _history(args: argparse.Namespace) -> int:
    from smc.runtime.history import history_table, parse_since
    from smc.runtime.store import HISTORY_KINDS, StoreError

    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
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
                limit=args.limit,
            )
    except StoreError as error:
        print(f"smc history: error: {error}", file=sys.stderr)
        return EXIT_PROBLEMS
    if args.format == "jsonl":
        for row in rows:
            print(json.dumps(row.to_dict(), ensure_ascii=False))
    elif args.format == "json":
        print(json.dumps([row.to_dict() for row in rows], indent=2, ensure_ascii=False))
    elif rows:
        print(history_table(rows))
    return EXIT_OK


def _prune(args: argparse.Namespace) -> int:
    from smc.runtime.history import parse_age
    from smc.runtime.store import StoreError

    try:
        age = parse_age(args.older_than)
    except ValueError as error:
        raise UsageError(f"--older-than: {error}") from None
    try:
        with _open(args) as store:
            removed = store.prune_history(age)
    except StoreError as error:
        print(f"smc history: error: {error}", file=sys.stderr)
        return EXIT_PROBLEMS
    if args.format == "json":
        print(json.dumps(removed))
    else:
        print(
            f"pruned {removed['history']} history rows, {removed['jobs']} finished jobs, "
            f"{removed['events']} delivered events, {removed['workflow_runs']} finished "
            "workflow runs"
        )
    return EXIT_OK


__all__ = ["register"]
