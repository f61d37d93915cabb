"""``smc import``: an SCXML document (W3C State Chart XML, python datamodel) written as the
equivalent smc machine file, after checking it as ``smc check`` would."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from smc.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    UsageError,
    add_actions_dir_option,
    path_argument,
)


def register(subparsers: Any) -> None:
    command = subparsers.add_parser(
        "import",
        help="write an SCXML document as a machine file",
        description="Read an SCXML document (python datamodel), check the machine it means "
        "as `smc check` would, and write it as YAML (deterministic bytes). What smc does not "
        "support (<invoke>, <script>, a send to another target, ...) is an error at its "
        "element. Exit 0 ok, 1 errors in the document, 2 malformed XML or usage error.",
    )
    command.add_argument("path", metavar="FILE", type=path_argument, help="one .scxml document")
    command.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        type=path_argument,
        help="write to FILE instead of standard output",
    )
    add_actions_dir_option(command)
    command.set_defaults(handler=run_import)


def run_import(args: argparse.Namespace) -> int:
    from smc.cli.compile import run_checker
    from smc.compiler.loader.scxml import load_scxml_file, to_yaml

    if Path(args.path).is_dir():
        raise UsageError(f"{args.path} is a directory: import takes one SCXML document")
    if not Path(args.path).is_file():
        raise UsageError(f"{args.path}: no such file")
    if not args.path.lower().endswith(".scxml"):
        raise UsageError(f"{args.path}: import reads an SCXML document (*.scxml)")
    result = run_checker([args.path], args.actions_dir)
    if any(d.code in ("SMC100", "SMC007") for d in result.errors):
        return EXIT_USAGE
    if result.errors:
        return EXIT_PROBLEMS
    doc, _ = load_scxml_file(args.path)
    if doc is None:  # the checker loaded it; only a file changed meanwhile gets here
        return EXIT_PROBLEMS
    text = to_yaml(doc.data)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot write {args.output}: {error.strerror}") from error
        print(f"smc import: wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK
