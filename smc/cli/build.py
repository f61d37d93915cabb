"""``smc build``: check machine files, then write the generated package (or, with ``--check``,
say whether it is up to date).

Settings come from ``[tool.smc-compiler]`` in the nearest pyproject.toml (``output``,
``detail``, ``diagrams``, ``strict``); command-line flags win. Exit codes: 0 built (or fresh),
1 checker errors or (``--check``) outputs out of date, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smc.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    UsageError,
    cannot_write,
    output_directory_argument,
)
from smc.cli.compile import add_check_options, print_diagnostics

if TYPE_CHECKING:
    from smc.compiler.check import CheckResult
    from smc.compiler.project import BuildReport


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "build",
        help="compile machine files into a typed Python package",
        description="Check machine files together, then write one typed module per machine, "
        "an __init__.py exporting every machine class, py.typed, diagrams and a manifest. "
        "Files are written only when their bytes change. With --check nothing is written: "
        "exit 1 and a unified diff when an output is missing, stale or hand-edited.",
    )
    add_check_options(parser)
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        type=output_directory_argument,
        default=None,
        help="output directory (default: [tool.smc-compiler] output, else generated/)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with a diff if any output is missing or out of date",
    )
    parser.add_argument(
        "--diagrams",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write diagrams under OUT/diagrams/ (default: on, or [tool.smc-compiler] diagrams)",
    )
    parser.add_argument(
        "--detail",
        choices=("names", "full"),
        default=None,
        help="diagram detail: state and event names, or actions too (default: names)",
    )
    parser.add_argument(
        "--emit-tests",
        metavar="DIR",
        type=output_directory_argument,
        default=None,
        help="also write generated pytest tests for the machines into DIR",
    )
    parser.set_defaults(handler=run_build)


def run_build(args: argparse.Namespace) -> int:
    from smc.compiler.check import InputError
    from smc.compiler.config import ConfigError
    from smc.compiler.project import BuildRequest, compile_project, display_path

    request = BuildRequest(
        paths=args.paths,
        actions_dirs=args.actions_dir,
        output=Path(args.output) if args.output is not None else None,
        diagrams=args.diagrams,
        detail=args.detail,
        strict=args.strict,
        check=args.check,
        emit_tests=Path(args.emit_tests) if args.emit_tests is not None else None,
        # JSON and GitHub output is printed even when there is nothing to report.
        may_skip_check=args.format == "text",
    )

    def on_checked(result: CheckResult) -> None:
        print_diagnostics(result, args.format)

    try:
        report = compile_project(request, on_checked)
    except (ConfigError, InputError) as error:
        raise UsageError(str(error)) from error
    except BrokenPipeError:
        raise
    except OSError as error:  # the inputs were read (InputError): an output cannot be written
        raise cannot_write(error) from None

    shown = display_path(report.out_dir)
    if report.outcome == "fresh":
        print(
            f"smc build: {report.machines} machine(s) -> {shown}/: up to date "
            "(inputs and outputs unchanged since the last clean build)",
            file=sys.stderr,
        )
        return EXIT_OK
    if report.outcome == "rejected":
        assert report.checked is not None
        reason = "errors" if report.checked.errors else "warnings (--strict)"
        print(f"smc build: not building: the checker found {reason}", file=sys.stderr)
        return EXIT_PROBLEMS
    if report.outcome == "failed":
        print(f"smc build: error: {report.error}", file=sys.stderr)
        return EXIT_PROBLEMS
    if report.outcome == "checked":
        return _print_differences(args, report, shown)

    for path in report.outputs.written:
        print(f"wrote {shown}/{path}", file=sys.stderr)
    for path in report.outputs.removed:
        why = report.outputs.why_removed.get(path, "this build no longer produces it")
        print(f"removed {shown}/{path}: {why}", file=sys.stderr)
    if request.emit_tests is not None:
        for path in report.tests_written:
            print(f"wrote {display_path(request.emit_tests)}/{path}", file=sys.stderr)
    print(
        f"smc build: {report.machines} machine(s) -> {shown}/: "
        f"{len(report.outputs.written)} written, {len(report.outputs.removed)} removed, "
        f"{len(report.outputs.unchanged)} unchanged",
        file=sys.stderr,
    )
    return EXIT_OK


#: Why each file ``smc build --check`` lists is out of date.
_EXPLAIN = {
    "missing": "missing",
    "stale": "stale: its source changed since it was generated",
    "hand-edited": "hand-edited: the source is unchanged but the file differs",
    "orphan": "orphan: this build no longer produces it (a build removes it)",
}


def _build_options(args: argparse.Namespace) -> list[str]:
    """The options of this ``smc build --check`` that the build it suggests needs too: the
    same output, diagrams, detail, tests and action folders."""
    options: list[str] = []
    if args.output is not None:
        options += ["-o", args.output]
    if args.diagrams is not None:
        options.append("--diagrams" if args.diagrams else "--no-diagrams")
    if args.detail is not None:
        options += ["--detail", args.detail]
    if args.emit_tests is not None:
        options += ["--emit-tests", args.emit_tests]
    for folder in args.actions_dir or ():
        options += ["--actions-dir", folder]
    return options


def _print_differences(args: argparse.Namespace, report: BuildReport, shown: str) -> int:
    if not report.differences:
        print(f"smc build --check: {shown}/ is up to date", file=sys.stderr)
        return EXIT_OK
    for difference in report.differences:
        sys.stdout.write(difference.diff)
    for difference in report.differences:
        explained = difference.reason or _EXPLAIN[difference.status]
        print(f"{difference.path}: {explained}", file=sys.stderr)
    command = shlex.join(["smc", "build", *args.paths, *_build_options(args)])
    print(
        f"smc build --check: {len(report.differences)} file(s) out of date; "
        f"run `{command}` to update",
        file=sys.stderr,
    )
    return EXIT_PROBLEMS
