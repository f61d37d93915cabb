"""``smc paths``: the shortest event path to every state and through every transition."""

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

DEFAULT_PACKAGE = "generated"


def register(subparsers: Any) -> None:
    paths = subparsers.add_parser(
        "paths",
        help="list the shortest event paths through each machine, or write them as pytest tests",
        description="Check the machine files, then give for each machine the shortest event "
        "path from the initial state to every state and through every transition "
        "(breadth-first, in table order; a statechart's over its configurations), as text or "
        "as a pytest module. "
        "Exit 0 ok, 1 errors in the files, 2 usage error.",
    )
    paths.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        type=path_argument,
        help="machine files, or directories searched for *.yaml / *.yml",
    )
    paths.add_argument(
        "--format",
        choices=("text", "pytest"),
        default="text",
        help="text: one line per path; pytest: a test module replaying every path "
        "(default: text)",
    )
    paths.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        type=path_argument,
        help="write to FILE instead of standard output",
    )
    paths.add_argument(
        "--package",
        default=DEFAULT_PACKAGE,
        metavar="NAME",
        help="with --format pytest: the package the generated machine modules are "
        f"imported from (default: {DEFAULT_PACKAGE})",
    )
    add_actions_dir_option(paths)
    paths.set_defaults(handler=run_paths)


def run_paths(args: argparse.Namespace) -> int:
    from smc.cli.compile import run_checker
    from smc.compiler.paths import format_text, plan_paths

    if not all(part.isidentifier() for part in args.package.split(".")):
        raise UsageError(f"--package {args.package!r} is not a dotted Python name")
    # Diagnostics always go to stderr as text: --format here chooses the output.
    result = run_checker(args.paths, args.actions_dir, compiling=True, walking=True)
    if result.errors:
        return EXIT_PROBLEMS
    # A machine with guards gets no paths (SMC079, a warning printed above).
    from smc.compiler.check import follows_data

    machines = sorted((m for m in result.machines if not follows_data(m)), key=lambda m: m.path)
    if args.format == "pytest":
        # Imported here: the test generator needs Jinja2 and black, which --format text
        # does not.
        from smc.compiler.testgen import render_tests

        text = render_tests(machines, args.package, random_walks=False)
    else:
        text = format_text(plan_paths(m) for m in machines)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot write {args.output}: {error.strerror}") from error
    else:
        sys.stdout.write(text)
    return EXIT_OK
