"""``smc export``: a machine file written in another tool's format (SCXML, W3C's statechart
standard), for tools that read it (python-statemachine, Qt SCXML, scxmlcc, …)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from smc.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    UsageError,
    add_actions_dir_option,
    path_argument,
)


def register(subparsers: Any) -> None:
    export = subparsers.add_parser(
        "export",
        help="write a machine as a standard SCXML document",
        description="Check one machine file, then write it as an SCXML document (W3C State "
        "Chart XML): states, compound and parallel states, history, transitions (eventless "
        "and internal ones included), on-entry and on-exit actions — raise as <raise>, any "
        "other action as a <log> naming it. Exit 0 ok, 1 errors in the file or a name SCXML "
        "cannot hold, 2 usage error.",
    )
    export.add_argument("path", metavar="FILE", type=path_argument, help="one machine file")
    export.add_argument(
        "--format", choices=("scxml",), default="scxml", help="the format (default: scxml)"
    )
    export.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        type=path_argument,
        help="write to FILE instead of standard output",
    )
    add_actions_dir_option(export)
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    from smc.cli.compile import run_checker
    from smc.compiler.charts import machine_chart
    from smc.compiler.statechart import ScxmlExportError, to_scxml

    if Path(args.path).is_dir():
        raise UsageError(f"{args.path} is a directory: export takes one machine file")
    result = run_checker([args.path], args.actions_dir, compiling=True)
    if result.errors:
        return EXIT_PROBLEMS
    if len(result.machines) != 1:
        raise UsageError(f"{args.path}: no machine to export")
    machine = result.machines[0]
    try:
        text = to_scxml(machine_chart(machine))
    except ScxmlExportError as error:
        print(f"smc export: {machine.path}: {error}", file=sys.stderr)
        return EXIT_PROBLEMS
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot write {args.output}: {error.strerror}") from error
    else:
        sys.stdout.write(text)
    return EXIT_OK
