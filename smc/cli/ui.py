"""``smc ui``: the web monitor (issue 15): a page showing every machine, its state on its
diagram, template instances on a Kanban board, the job queue, the activity log and traces,
updated live. See docs/monitor.md, "The web monitor".

Exit codes: 0 stopped by Ctrl-C/SIGTERM; 1 the database cannot be opened or the port cannot
be bound; 2 usage error (an empty --host, a bind beyond loopback without a token, an empty
token file, no database at --db: the monitor makes none).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from smc.cli.common import EXIT_OK, EXIT_PROBLEMS, UsageError, add_database_option
from smc.safe_text import os_error_reason

#: ``smc ui --nice``'s default (docs/monitor.md, "Scale"): the server's CPU weight against a
#: worker at the default priority is about a tenth (the kernel's weights fall by about 1.25
#: a step), so on a saturated host it takes a tenth of what it would, and on one with a core
#: to spare it runs as before.
DEFAULT_NICE = 10


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ui",
        help="serve the web monitor: machines, diagrams, jobs and activity, live",
        description=(
            "Serve the web monitor for the machines using the database. It binds 127.0.0.1 "
            "by default; any other address needs --token or --token-file, and every request "
            "must then present the token (open /?token=TOKEN once in the browser)."
        ),
    )
    add_database_option(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8520, help="port (default 8520)")
    tokens = parser.add_mutually_exclusive_group()
    tokens.add_argument("--token", default=None, help="the token every request must present")
    tokens.add_argument(
        "--token-file",
        default=None,
        metavar="FILE",
        help="read the token from FILE (its first line), keeping it out of the process list",
    )
    parser.add_argument(
        "--feed",
        choices=("auto", "history", "sockets"),
        default="auto",
        help=(
            "where the live records come from: the database's history (every host; the "
            "machines write nothing more), the machines' monitor sockets on this host, or "
            "auto: the history when the database keeps it (default)"
        ),
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=DEFAULT_NICE,
        metavar="N",
        help=(
            f"lower the server's CPU priority by N (0-19, default {DEFAULT_NICE}): on a host "
            "it shares with workers, the monitor yields the CPU to the machines it watches; "
            "0 keeps the priority it was started with"
        ),
    )
    parser.set_defaults(handler=_ui)


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file is not None:
        try:
            text = Path(args.token_file).read_text(encoding="utf-8")
        except OSError as error:
            reason = os_error_reason(error)
            raise UsageError(f"--token-file: cannot read {args.token_file}: {reason}") from None
        except UnicodeDecodeError:
            raise UsageError(
                f"--token-file: {args.token_file} is not UTF-8 text (the token's first line)"
            ) from None
        lines = text.splitlines()
        token = lines[0].strip() if lines else ""
        if not token:
            raise UsageError("--token-file: the file holds no token")
        return token
    if args.token is not None and not args.token.strip():
        raise UsageError("--token must not be empty")
    token_value: str | None = args.token
    return token_value


def _ui(args: argparse.Namespace) -> int:
    from smc.runtime.store import NoDatabaseError, StoreError
    from smc.ui.server import is_loopback, serve

    if not args.host.strip():
        # An empty host (an unset "$HOST") binds every interface: said as a mistake, never
        # taken for 0.0.0.0 nor reported as "--host  makes the monitor reachable".
        raise UsageError(
            "--host is empty: give the address to bind (127.0.0.1, the default; 0.0.0.0 for "
            "every interface)"
        )
    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    if not 0 <= args.nice <= 19:
        raise UsageError("--nice must be between 0 and 19")
    token = _token(args)
    if token is not None and len(token) < 16:
        raise UsageError("the token must be at least 16 characters")
    if not is_loopback(args.host) and token is None:
        raise UsageError(
            f"--host {args.host} makes the monitor reachable from other hosts: give --token "
            "or --token-file (or bind 127.0.0.1)"
        )
    try:
        serve(args.db, args.host, args.port, token, feed=args.feed, nice=args.nice)
    except NoDatabaseError as error:
        raise UsageError(f"--db: {error} (smc ui makes none)") from None
    except StoreError as error:
        print(f"smc ui: error: {error}", file=sys.stderr)
        return EXIT_PROBLEMS
    except OSError as error:
        reason = error.strerror or str(error)
        print(f"smc ui: error: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_OK
