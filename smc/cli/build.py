"""``smc build``: check machine files, then write the generated package (or, with ``--check``,
say whether it is up to date).

Settings come from ``[tool.smc-compiler]`` in the nearest pyproject.toml (``output``,
``detail``, ``diagrams``, ``strict``); command-line flags win. Exit codes: 0 built (or fresh),
1 checker errors or (``--check``) outputs out of date, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from smc.cli import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, UsageError
from smc.cli.compile import add_check_options, run_checker


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
        default=None,
        help="also write generated pytest tests for the machines into DIR",
    )
    parser.set_defaults(handler=run_build)


def _display(path: Path) -> str:
    """``path`` as the user would type it: relative to the working directory when inside."""
    relative = os.path.relpath(path.resolve(), Path.cwd().resolve())
    shown = Path(relative) if not relative.startswith("..") else path
    return shown.as_posix()


def run_build(args: argparse.Namespace) -> int:
    from smc.compiler import build
    from smc.compiler.config import ConfigError, formatter_line_length, load_config

    out_dir = Path(args.output) if args.output is not None else None
    try:
        config = load_config()
        out_dir = out_dir if out_dir is not None else config.output_dir
        # Modules are laid out at the line length the user's black/ruff apply to OUT.
        line_length = formatter_line_length(Path(os.path.abspath(out_dir)))
    except ConfigError as error:
        raise UsageError(str(error)) from error
    strict = bool(args.strict or config.strict)
    diagrams = config.diagrams if args.diagrams is None else bool(args.diagrams)
    detail = args.detail or config.detail
    options = build.BuildOptions(
        out_dir=out_dir,
        root=config.root,
        diagrams=diagrams,
        detail=detail,
        line_length=line_length,
    )

    if args.emit_tests is not None and build.testgen_module() is None:
        print(
            "smc build: error: --emit-tests needs the test generator (smc.compiler.testgen), "
            "which this installation of smc does not have; nothing was built",
            file=sys.stderr,
        )
        return EXIT_USAGE

    fingerprint = None
    if not args.check and args.emit_tests is None and args.format == "text":
        fingerprint = _fingerprint(args, build, options, strict)
        machines = None if fingerprint is None else build.up_to_date(fingerprint, options)
        if machines is not None:
            print(
                f"smc build: {machines} machine(s) -> {_display(out_dir)}/: up to date "
                "(inputs and outputs unchanged since the last clean build)",
                file=sys.stderr,
            )
            return EXIT_OK

    result = run_checker(args.paths, args.actions_dir, args.format)
    if result.failed(strict=strict):
        reason = "errors" if result.errors else "warnings (--strict)"
        print(f"smc build: not building: the checker found {reason}", file=sys.stderr)
        return EXIT_PROBLEMS

    shown = _display(out_dir)
    try:
        if args.check:
            return _check(args, build, result.machines, options, shown)
        report = build.build(result.machines, args.paths, options)
        tests_written = _emit_tests(args, build, result.machines, options, write=True)
    except build.BuildError as error:
        print(f"smc build: error: {error}", file=sys.stderr)
        return EXIT_PROBLEMS

    if fingerprint is not None and not result.diagnostics:
        build.remember_clean_build(fingerprint, options, len(result.machines))
    else:
        build.forget_clean_build(options)
    if diagrams and not report.diagrams_available:
        print(
            "smc build: note: diagrams skipped (smc.compiler.diagrams is not installed)",
            file=sys.stderr,
        )
    for path in report.written:
        print(f"wrote {shown}/{path}", file=sys.stderr)
    for path in report.removed:
        print(f"removed {shown}/{path} (its machine is no longer an input)", file=sys.stderr)
    for path in tests_written:
        print(f"wrote {_display(Path(args.emit_tests))}/{path}", file=sys.stderr)
    print(
        f"smc build: {len(result.machines)} machine(s) -> {shown}/: "
        f"{len(report.written)} written, {len(report.removed)} removed, "
        f"{len(report.unchanged)} unchanged",
        file=sys.stderr,
    )
    return EXIT_OK


def _fingerprint(args: argparse.Namespace, build: Any, options: Any, strict: bool) -> str | None:
    """The no-op fast path's key, or None when the inputs cannot be listed (the checker then
    runs and reports why)."""
    from smc.compiler.check import InputError, collect_files

    try:
        files = collect_files(args.paths)
        key: str = build.input_fingerprint(args.paths, files, args.actions_dir, options, strict)
    except (InputError, OSError):
        return None
    return key


def _emit_tests(
    args: argparse.Namespace, build: Any, machines: Any, options: Any, *, write: bool
) -> Any:
    if args.emit_tests is None:
        return []
    tests_dir = Path(args.emit_tests)
    files = build.emitted_tests(machines, build.import_package(options.out_dir))
    if write:
        encoded = {relative: text.encode("utf-8") for relative, text in files.items()}
        return build.write_changed(tests_dir, encoded)
    return build.check_tests(files, tests_dir, _display(tests_dir))


def _check(args: argparse.Namespace, build: Any, machines: Any, options: Any, shown: str) -> int:
    differences = build.check_outputs(machines, args.paths, options, label=shown)
    differences += _emit_tests(args, build, machines, options, write=False)
    if not differences:
        print(f"smc build --check: {shown}/ is up to date", file=sys.stderr)
        return EXIT_OK
    for difference in differences:
        sys.stdout.write(difference.diff)
    explain = {
        "missing": "missing",
        "stale": "stale: its source changed since it was generated",
        "hand-edited": "hand-edited: the source is unchanged but the file differs",
        "orphan": "orphan: its machine is no longer an input (a build removes it)",
    }
    for difference in differences:
        print(f"{difference.path}: {explain[difference.status]}", file=sys.stderr)
    command = " ".join(["smc build", *args.paths])
    print(
        f"smc build --check: {len(differences)} file(s) out of date; run `{command}` to update",
        file=sys.stderr,
    )
    return EXIT_PROBLEMS
