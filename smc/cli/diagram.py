"""``smc diagram``: check machine files and write their diagrams.

Text formats need nothing but smc; SVG and PNG are rendered by Graphviz's ``dot`` binary.
Every output is computed before anything is written, so a missing ``dot`` (one line, exit 1)
leaves the output directory as it was; files whose bytes did not change are not rewritten.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from smc.cli import EXIT_OK, EXIT_PROBLEMS, UsageError

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
        help="output directory (default: OUT/diagrams/ where smc build writes them, OUT being "
        "[tool.smc-compiler] output, else generated/)",
    )
    parser.add_argument("--strict", action="store_true", help="fail on warnings too")
    parser.add_argument(
        "--actions-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="a directory of user actions; their file names are known action types (repeatable)",
    )
    parser.set_defaults(handler=run_diagram)


def _wanted(formats: list[str] | None) -> set[str]:
    chosen = set(formats or DEFAULT_FORMATS)
    if "all" in chosen:
        chosen = set(FORMATS) - {"all"}
    return chosen


def build_outputs(
    machines: list[Any], formats: set[str], detail: str
) -> tuple[dict[str, bytes], list[str]]:
    """Relative path -> bytes for every requested file, and the problems found (clashing
    file names). Raises DiagramError when an image cannot be rendered."""
    from smc.compiler.diagrams import (
        machine_diagrams,
        machine_module,
        render_image,
        system_diagrams,
    )

    texts: dict[str, str] = {}
    owners: dict[str, str] = {}
    problems: list[str] = []
    for machine in machines:
        module = machine_module(machine)
        if module in owners:
            problems.append(
                f"{machine.path}: machine {machine.name!r} would overwrite the diagrams of "
                f"{owners[module]} ({module}.*): give the machines different names"
            )
            continue
        owners[module] = f"{machine.name!r} in {machine.path}"
        texts.update(machine_diagrams(machine, detail="full" if detail == "full" else "names"))
    if machines:
        texts.update(system_diagrams(machines))

    outputs: dict[str, bytes] = {}
    for name, text in texts.items():
        suffix = Path(name).suffix
        if (suffix in (".mmd", ".md") and "mermaid" in formats) or (
            suffix == ".dot" and "dot" in formats
        ):
            outputs[name] = text.encode("utf-8")
        if suffix == ".dot":
            stem = name[: -len(".dot")]
            for image in ("svg", "png"):
                if image in formats:
                    outputs[f"{stem}.{image}"] = render_image(
                        text, "svg" if image == "svg" else "png"
                    )
    return dict(sorted(outputs.items())), problems


def run_diagram(args: argparse.Namespace) -> int:
    from smc.cli.compile import run_checker
    from smc.compiler.build import DIAGRAMS_DIR, write_changed
    from smc.compiler.config import ConfigError, load_config
    from smc.compiler.diagrams import DiagramError

    # One default for both commands: the diagrams folder of smc build's output, same detail.
    try:
        config = load_config()
    except ConfigError as error:
        raise UsageError(str(error)) from error
    detail = args.detail or config.detail
    directory = Path(args.output) if args.output is not None else config.output_dir / DIAGRAMS_DIR
    # Here --format means the diagram formats; diagnostics are printed as text.
    result = run_checker(args.paths, args.actions_dir)
    if result.failed(strict=args.strict):
        print("smc diagram: no diagrams written (fix the problems above)", file=sys.stderr)
        return EXIT_PROBLEMS
    try:
        outputs, problems = build_outputs(result.machines, _wanted(args.formats), detail)
    except DiagramError as error:
        print(f"smc diagram: error: {error}", file=sys.stderr)
        return EXIT_PROBLEMS
    if problems:
        for problem in problems:
            print(f"smc diagram: error: {problem}", file=sys.stderr)
        return EXIT_PROBLEMS
    written = len(write_changed(directory, outputs))
    print(
        f"smc diagram: {len(result.machines)} machine(s): wrote {written} file(s), "
        f"{len(outputs) - written} unchanged, in {directory}",
        file=sys.stderr,
    )
    return EXIT_OK
