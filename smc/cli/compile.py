"""``smc check`` and ``smc schema``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smc.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    UsageError,
    add_actions_dir_option,
    path_argument,
)

if TYPE_CHECKING:
    from smc.compiler.check import CheckResult


def add_check_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that runs the checker."""
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        type=path_argument,
        help="machine files, or directories searched for *.yaml / *.yml",
    )
    parser.add_argument("--strict", action="store_true", help="fail on warnings too")
    parser.add_argument(
        "--format",
        choices=("text", "json", "github"),
        default="text",
        help="how diagnostics are printed (default: text)",
    )
    add_actions_dir_option(parser)


def register(subparsers: Any) -> None:
    check = subparsers.add_parser(
        "check",
        help="check machine files and report problems",
        description="Load, validate and analyse machine files "
        "together. Exit 0 clean, 1 errors (or warnings with --strict), 2 usage error, "
        "3 internal error (a bug in smc).",
    )
    add_check_options(check)
    check.set_defaults(handler=run_check)

    schema = subparsers.add_parser(
        "schema",
        help="print the machine JSON Schema",
        description="Print the JSON Schema of machine files (draft 2020-12), or write it to "
        "FILE: point your editor's YAML language server at it for completion and "
        "validation (docs/editor.md).",
    )
    schema.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        type=path_argument,
        default=None,
        help="write the schema to FILE instead of standard output",
    )
    schema.add_argument(
        "--workflow",
        action="store_true",
        help="the schema of workflow files instead (docs/workflows.md)",
    )
    schema.set_defaults(handler=run_schema)


def run_checker(
    paths: Sequence[str],
    actions_dirs: Sequence[str],
    fmt: str = "text",
    *,
    compiling: bool = False,
    walking: bool = False,
) -> CheckResult:
    """Run the checker over ``paths`` and print its diagnostics in ``fmt`` (``text``,
    ``json`` or ``github``); returns the CheckResult. ``compiling``: the caller compiles
    the machines (``smc paths``, ``smc export``), so what cannot be compiled yet is an
    error too (SMC094)."""
    from smc.compiler.check import (
        InputError,
        check_paths,
        refuse_not_yet_compiled,
        require_action_dirs,
    )

    try:
        require_action_dirs(actions_dirs)
        result = check_paths(paths, actions_dirs)
    except InputError as error:
        raise UsageError(str(error)) from error
    if compiling:
        refuse_not_yet_compiled(result, walking=walking)
    print_diagnostics(result, fmt)
    return result


def print_diagnostics(result: CheckResult, fmt: str) -> None:
    """``json`` and ``github`` go to stdout; ``text`` goes to stderr with a summary line."""
    from smc.compiler.diagnostics import format_github, format_json, format_text

    if fmt == "json":
        print(format_json(result.diagnostics))
    elif fmt == "github":
        for diagnostic in result.diagnostics:
            print(format_github(diagnostic))
    else:
        out = sys.stderr
        for diagnostic in result.diagnostics:
            print(format_text(diagnostic, result.sources.get(diagnostic.path)), file=out)
        errors, warnings = len(result.errors), len(result.warnings)
        files = len(result.sources)
        if errors or warnings:
            print(f"{errors} error(s), {warnings} warning(s) in {files} file(s)", file=out)


def run_check(args: argparse.Namespace) -> int:
    result = run_checker(args.paths, args.actions_dir, args.format)
    if args.format == "text" and not result.diagnostics:
        workflows = f", {len(result.workflows)} workflow(s)" if result.workflows else ""
        print(
            f"ok: {len(result.machines)} machine(s){workflows} checked, no problems",
            file=sys.stderr,
        )
    return EXIT_PROBLEMS if result.failed(strict=args.strict) else EXIT_OK


def run_schema(args: argparse.Namespace) -> int:
    from smc.compiler.schema import schema_path, workflow_schema_path

    path = workflow_schema_path() if args.workflow else schema_path()
    text = path.read_text(encoding="utf-8")
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot write {args.output}: {error.strerror or error}") from None
    print(f"smc schema: wrote {args.output}", file=sys.stderr)
    return EXIT_OK
