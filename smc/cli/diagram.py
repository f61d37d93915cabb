"""``smc diagram``: check machine files and write their diagrams.

Text formats need nothing but smc; SVG and PNG are rendered by Graphviz's ``dot`` binary.
Every output is computed before anything is written, so a missing ``dot`` (one line, exit 1)
leaves the output directory as it was; files whose bytes did not change are not rewritten.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smc.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    UsageError,
    add_actions_dir_option,
    cannot_write,
    output_directory_argument,
    path_argument,
)
from smc.cli.compile import print_diagnostics

if TYPE_CHECKING:
    from smc.compiler.check import CheckResult

FORMATS = ("mermaid", "dot", "svg", "png", "all")
DEFAULT_FORMATS = ("mermaid", "dot")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "diagram",
        help="draw machines as Mermaid, Markdown, Graphviz DOT, SVG or PNG",
        description="Check machine files and write, per machine, NAME.mmd and NAME.md "
        "(mermaid), NAME.dot (dot), NAME.svg / NAME.png (rendered by Graphviz's dot), one "
        "diagram per group for machines with groups, and the system diagram (system.*) of all "
        "machines given. Exit 0 ok, 1 problems (check errors, or dot missing), 2 usage error.",
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        type=path_argument,
        help="machine files, or directories searched for *.yaml / *.yml",
    )
    parser.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=FORMATS,
        metavar="{" + ",".join(FORMATS) + "}",
        help="what to write (repeatable; default: mermaid and dot; all = every format)",
    )
    parser.add_argument(
        "--detail",
        choices=("names", "full"),
        default=None,
        help="names: states and events; full: also each state's actions and the events they "
        "return (default: [tool.smc-compiler] detail, else names, as smc build)",
    )
    parser.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="DIR",
        type=output_directory_argument,
        help="output directory (default: OUT/diagrams/ where smc build writes them, OUT being "
        "[tool.smc-compiler] output, else generated/)",
    )
    parser.add_argument("--strict", action="store_true", help="fail on warnings too")
    add_actions_dir_option(parser)
    parser.set_defaults(handler=run_diagram)


def _wanted(formats: list[str] | None) -> set[str]:
    chosen = set(formats or DEFAULT_FORMATS)
    if "all" in chosen:
        chosen = set(FORMATS) - {"all"}
    return chosen


def run_diagram(args: argparse.Namespace) -> int:
    from smc.compiler.check import InputError
    from smc.compiler.config import ConfigError
    from smc.compiler.project import DiagramRequest, draw_diagrams

    request = DiagramRequest(
        paths=args.paths,
        actions_dirs=args.actions_dir,
        formats=_wanted(args.formats),
        detail=args.detail,
        output=Path(args.output) if args.output is not None else None,
        strict=args.strict,
    )

    def on_checked(result: CheckResult) -> None:
        # Here --format means the diagram formats; diagnostics are printed as text.
        print_diagnostics(result, "text")

    try:
        report = draw_diagrams(request, on_checked)
    except (ConfigError, InputError) as error:
        raise UsageError(str(error)) from error
    except BrokenPipeError:
        raise
    except OSError as error:  # the inputs were read (InputError): an output cannot be written
        raise cannot_write(error) from None
    if report.outcome == "rejected":
        print("smc diagram: no diagrams written (fix the problems above)", file=sys.stderr)
        return EXIT_PROBLEMS
    if report.outcome == "failed":
        for problem in report.errors:
            print(f"smc diagram: error: {problem}", file=sys.stderr)
        return EXIT_PROBLEMS
    written = len(report.written)
    print(
        f"smc diagram: {report.machines} machine(s): wrote {written} file(s), "
        f"{len(report.files) - written} unchanged, in {report.directory}",
        file=sys.stderr,
    )
    return EXIT_OK
