"""``smc monitor``: follow the live stream of transitions, job claims and errors (issue 5).

Connects to every running machine's monitor socket (the directory comes from ``--db``), picks
up machines that start later, and prints the merged stream: one line per record, either human
(``12:00:01.123 simple_worker  waiting --new_job--> processing  job=42``) or the raw JSON lines.
Exit codes: 0; 1 when ``--count`` records did not arrive before ``--timeout``; Ctrl-C exits 0.

With a PostgreSQL ``--db`` the stream is the durable history instead (``docs/history.md``):
every machine using the database, on every host, followed by id with the server's NOTIFY on
history inserts waking the reader and a poll every 100 ms (each connection rings at most every
``HISTORY_RING_GAP``: a ring costs the server per listening connection).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from smc.cli.common import EXIT_OK, EXIT_PROBLEMS, UsageError, add_database_option

#: How long ``smc monitor --db postgresql://…`` waits before trying a database that failed.
RETRY_SECONDS = 1.0

#: How often ``smc monitor`` looks again for a ``--db`` that is not there yet.
DATABASE_POLL_SECONDS = 0.2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "monitor",
        help="live tail of every running machine's transitions, jobs and errors",
        description=(
            "Follow the socket monitor of every machine using the database (or one machine), "
            "including machines that start later."
        ),
    )
    add_database_option(parser)
    parser.add_argument("--machine", default=None, metavar="NAME", help="only this machine")
    parser.add_argument(
        "--format",
        choices=("human", "json"),
        default="human",
        help="one line per record for people, or JSON lines for programs (default: human)",
    )
    parser.add_argument("--count", type=int, default=None, metavar="N", help="exit after N records")
    parser.add_argument(
        "--timeout", type=float, default=None, metavar="S", help="exit after S seconds"
    )
    parser.set_defaults(handler=_monitor)


def _monitor(args: argparse.Namespace) -> int:
    from smc.runtime.monitor import follow_lines, format_human, monitor_dir, safe_json_line
    from smc.runtime.store import StoreError

    if args.count is not None and args.count < 1:
        raise UsageError("--count must be at least 1")
    if args.timeout is not None and not 0 <= args.timeout < float("inf"):  # NaN too
        raise UsageError("--timeout must be a finite number of seconds, not negative")
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    try:
        store, waited = _open_when_made(args, deadline)
    except StoreError as error:
        print(f"smc monitor: error: {error}", file=sys.stderr)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        return EXIT_OK
    if store is None:  # --timeout passed before a machine made the database
        return _finished(args, 0)
    if deadline is not None:
        args.timeout = max(0.0, deadline - time.monotonic())
    try:
        if not waited:  # a machine just made it: it may not have registered yet
            _note_when_no_machine_has_run(store, args)
    except StoreError as error:
        store.close()
        print(f"smc monitor: error: {error}", file=sys.stderr)
        return EXIT_PROBLEMS
    if store.socket_dir is None:  # PostgreSQL: machines on every host, through the history
        try:
            return _follow_history(store, args, from_the_start=waited)
        finally:
            store.close()
    try:
        directory = monitor_dir(store)
    finally:
        store.close()

    seen = 0
    try:
        for line, record in follow_lines(directory, args.machine, timeout=args.timeout):
            text = safe_json_line(line, record) if args.format == "json" else format_human(record)
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
            seen += 1
            if args.count is not None and seen >= args.count:
                break
    except KeyboardInterrupt:
        return EXIT_OK  # Ctrl-C is how a live tail ends: no message, no traceback
    return _finished(args, seen)


def _open_when_made(args: argparse.Namespace, deadline: float | None) -> tuple[Any, bool]:
    """The store ``--db`` names, once it is there, and whether it had to wait for it: a
    monitor makes no database (a mistyped ``--db`` made an empty one, and later commands read
    it as a database where nothing had run). Until a machine makes it the monitor says so
    once and waits; the store is None when ``deadline`` passes first."""
    from smc.runtime.store import NoDatabaseError, describe_database, open_store
    from smc.safe_text import escape_controls

    noted = False
    while True:
        try:
            return open_store(args.db, create=False), noted
        except NoDatabaseError as error:
            if not error.can_appear:
                raise UsageError(f"--db: {error}") from None
            if not noted:
                database = escape_controls(describe_database(args.db))
                print(
                    f"smc monitor: note: no database at {database} yet (smc monitor makes "
                    "none); waiting for a machine to start with it",
                    file=sys.stderr,
                    flush=True,
                )
                noted = True
        if deadline is not None and time.monotonic() >= deadline:
            return None, noted
        time.sleep(DATABASE_POLL_SECONDS)


def _note_when_no_machine_has_run(store: Any, args: argparse.Namespace) -> None:
    """Not an error: the monitor picks up machines that start later. But a mistyped --db (a
    new, empty database) or --machine would otherwise wait for ever with nothing said."""
    from smc.safe_text import escape_controls

    names = {machine.name for machine in store.list_machines()}
    database = escape_controls(store.location)
    if not names:
        print(
            f"smc monitor: note: no machine has run with {database} yet; waiting for one "
            "to start",
            file=sys.stderr,
            flush=True,
        )
    elif args.machine is not None and args.machine not in names:
        print(
            f"smc monitor: note: no machine named '{escape_controls(args.machine)}' has run "
            f"with {database}; waiting for it to start (`smc status` lists the machines)",
            file=sys.stderr,
            flush=True,
        )


def _finished(args: argparse.Namespace, seen: int) -> int:
    if args.count is not None and seen < args.count:
        print(f"smc monitor: {seen} of {args.count} records before the timeout", file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK


def _follow_history(store: Any, args: argparse.Namespace, *, from_the_start: bool) -> int:
    """Print the history rows committed from now on, as monitor records; ``from_the_start``
    (a database the monitor waited for, just made by a machine's start): every row, so that
    the start of the machine that made it is not skipped."""
    from smc.runtime.history import HistoryCursor, follow_history, history_record
    from smc.runtime.store import HistoryRow, StoreError

    deadline = None if args.timeout is None else time.monotonic() + args.timeout

    def stop() -> bool:
        return deadline is not None and time.monotonic() >= deadline

    seen = 0
    try:
        # From now on; after a database error, from where the follower was (the store opens
        # a new connection at its next call), so that nothing is printed twice or skipped:
        # the cursor keeps the ids of a gap still waited for, which commit later (PostgreSQL).
        start = 0 if from_the_start else store.last_history_id()
        cursor: HistoryCursor[HistoryRow] = HistoryCursor(start)
        away = False
        while not stop():
            try:
                rows = follow_history(
                    store,
                    machine=args.machine,
                    poll_seconds=0.1 if deadline is None else min(0.1, args.timeout),
                    stop=stop,
                    cursor=cursor,
                )
                for row in rows:
                    if away:
                        away = False
                        print("smc monitor: the database answers again", file=sys.stderr)
                    _print_record(history_record(row), args.format)
                    seen += 1
                    if args.count is not None and seen >= args.count:
                        return _finished(args, seen)
            except StoreError as error:
                if not away:
                    away = True
                    print(
                        f"smc monitor: {error}; following on once it answers",
                        file=sys.stderr,
                    )
                time.sleep(RETRY_SECONDS)
                continue
            break
    except KeyboardInterrupt:
        return EXIT_OK
    except StoreError as error:  # not even where the history ends: nothing to follow
        print(f"smc monitor: error: {error}", file=sys.stderr)
        return EXIT_PROBLEMS
    return _finished(args, seen)


def _print_record(record: dict[str, Any], output: str) -> None:
    import json

    from smc.runtime.monitor import format_human

    # JSON ASCII-escaped: one document a line, no terminal escapes, whatever the names and
    # payloads hold.
    text = json.dumps(record, separators=(",", ":")) if output == "json" else format_human(record)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
