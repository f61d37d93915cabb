"""The compiler's entry points for a project: ``smc build`` and ``smc diagram`` in one call each.

``compile_project`` reads ``[tool.smc-compiler]`` (the request's values win), takes the no-op
fast path when the last clean build read exactly the same inputs (``buildcache``), and
otherwise checks the machine files and builds the generated package (``build``) or, for
``--check``, compares it with the disk. ``draw_diagrams`` checks the files and writes their
diagrams in the requested formats.

Neither prints: each returns a report for the command line to print, and hands the checker's
result to ``on_checked`` as soon as it exists (diagnostics show before a long build). A
malformed ``[tool.smc-compiler]`` raises ``ConfigError``, a missing input or actions directory
``InputError``: the caller's usage errors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from smc.compiler import buildcache
from smc.compiler.build import (
    DIAGRAMS_DIR,
    INIT_NAME,
    BuildError,
    BuildOptions,
    Difference,
    WriteReport,
    build,
    check_outputs,
    diagram_texts,
    read_bytes,
    safe_relative,
    unified_diff,
    write_changed,
)
from smc.compiler.check import (
    CheckResult,
    check_paths,
    refuse_not_yet_compiled,
    require_action_dirs,
)
from smc.compiler.config import formatter_line_length, load_config
from smc.compiler.model import Machine

OnChecked = Callable[[CheckResult], None]


def display_path(path: Path) -> str:
    """``path`` as the user would type it: relative to the working directory when inside."""
    relative = os.path.relpath(path.resolve(), Path.cwd().resolve())
    shown = Path(relative) if not relative.startswith("..") else path
    return shown.as_posix()


def _checked(
    paths: Sequence[str],
    actions_dirs: Sequence[str],
    on_checked: OnChecked | None,
    *,
    compiling: bool = False,
    building: bool = False,
    walking: bool = False,
) -> CheckResult:
    """The checker's result, handed to ``on_checked`` as soon as it exists; ``compiling``:
    the caller generates code (what it cannot compile yet is an error, SMC094)."""
    require_action_dirs(actions_dirs)
    result = check_paths(paths, actions_dirs)
    if compiling:
        refuse_not_yet_compiled(result, building=building, walking=walking)
    if on_checked is not None:
        on_checked(result)
    return result


# ---- smc build ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildRequest:
    paths: Sequence[str]
    actions_dirs: Sequence[str] = ()
    #: None: the ``[tool.smc-compiler]`` value (or its default).
    output: Path | None = None
    diagrams: bool | None = None
    detail: str | None = None
    #: Fail on warnings too; so does ``strict = true`` in ``[tool.smc-compiler]``.
    strict: bool = False
    #: Compare with the disk and write nothing (``smc build --check``).
    check: bool = False
    #: Also write (or, with ``check``, compare) generated pytest tests in this directory.
    emit_tests: Path | None = None
    #: Whether a build whose inputs are those of the last clean build may skip the checker.
    #: False when the caller must show the checker's output even when it is empty (JSON).
    may_skip_check: bool = True


#: ``fresh``: the fast path, nothing checked or written; ``rejected``: the checker found errors
#: (or warnings, when strict), nothing written; ``failed``: the machines cannot be built
#: (``error``); ``built``: see ``outputs`` and ``tests_written``; ``checked`` (``--check``):
#: see ``differences``, empty when everything is up to date.
BuildOutcome = Literal["fresh", "rejected", "failed", "built", "checked"]


@dataclass
class BuildReport:
    outcome: BuildOutcome
    out_dir: Path
    machines: int
    #: The checker's result; None when the fast path skipped it.
    checked: CheckResult | None = None
    outputs: WriteReport = field(default_factory=WriteReport)
    tests_written: list[str] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    error: str = ""


def compile_project(request: BuildRequest, on_checked: OnChecked | None = None) -> BuildReport:
    """Check and build (or, with ``request.check``, compare) the machine files of a project;
    see the module docstring."""
    config = load_config()
    out_dir = request.output if request.output is not None else config.output_dir
    strict = request.strict or config.strict
    options = BuildOptions(
        out_dir=out_dir,
        root=config.root,
        diagrams=config.diagrams if request.diagrams is None else request.diagrams,
        detail=request.detail or config.detail,
        # Modules are laid out at the line length the user's black/ruff apply to the output.
        line_length=formatter_line_length(Path(os.path.abspath(out_dir))),
    )

    fingerprint = None
    if request.may_skip_check and not request.check and request.emit_tests is None:
        fingerprint = buildcache.project_fingerprint(
            request.paths, request.actions_dirs, options, strict
        )
        machines = None if fingerprint is None else buildcache.up_to_date(fingerprint, options)
        if machines is not None:
            return BuildReport("fresh", out_dir, machines)

    # Emitted path tests do not follow guards yet: with --emit-tests a machine with guards
    # or assignments gets its random walk only, and a warning (SMC079) says so.
    walking = request.emit_tests is not None
    result = _checked(
        request.paths,
        request.actions_dirs,
        on_checked,
        compiling=True,
        building=not walking,
        walking=walking,
    )
    report = BuildReport("rejected", out_dir, len(result.machines), result)
    if result.failed(strict=strict):
        return report
    try:
        if request.check:
            report.differences = check_outputs(
                result.machines, request.paths, options, label=display_path(out_dir)
            )
            report.differences += _stale_tests(request.emit_tests, result.machines, out_dir)
            report.outcome = "checked"
            return report
        tests = _planned_tests(request.emit_tests, result.machines, out_dir)
        also = {request.emit_tests: tests} if request.emit_tests is not None else {}
        report.outputs = build(result.machines, request.paths, options, also)
        if request.emit_tests is not None:
            report.tests_written = write_changed(request.emit_tests, tests)
    except BuildError as error:
        report.outcome, report.error = "failed", str(error)
        return report

    if fingerprint is not None and not result.diagnostics:
        buildcache.remember_clean_build(fingerprint, options, len(result.machines))
    else:
        buildcache.forget_clean_build(options)
    report.outcome = "built"
    return report


# ---- --emit-tests -------------------------------------------------------------------------


def _planned_tests(
    tests_dir: Path | None, machines: Sequence[Machine], out_dir: Path
) -> dict[str, bytes]:
    """``--emit-tests``: the test files to write (``write_changed`` writes those whose bytes
    changed); none without it."""
    if tests_dir is None:
        return {}
    files = emitted_tests(machines, import_package(out_dir))
    return {relative: text.encode("utf-8") for relative, text in files.items()}


def _stale_tests(
    tests_dir: Path | None, machines: Sequence[Machine], out_dir: Path
) -> list[Difference]:
    """``--emit-tests`` with ``--check``: how the test files differ from what would be written."""
    if tests_dir is None:
        return []
    files = emitted_tests(machines, import_package(out_dir))
    return check_tests(files, tests_dir, display_path(tests_dir))


def import_package(out_dir: Path) -> str:
    """The dotted name the output package is imported as: ``out_dir``'s name, prefixed by
    every enclosing directory that is itself a package (has an ``__init__.py``)."""
    resolved = out_dir.resolve()
    parts = [resolved.name]
    parent = resolved.parent
    while (parent / INIT_NAME).is_file() and parent != parent.parent:
        parts.append(parent.name)
        parent = parent.parent
    return ".".join(reversed(parts))


def emitted_tests(machines: Sequence[Machine], package: str) -> dict[str, str]:
    # Imported here, not at the top: only --emit-tests needs the test generator.
    from smc.compiler.testgen import emit_tests

    emitted = emit_tests(machines, package)
    for relative in emitted:
        if not safe_relative(Path(relative).as_posix()):
            raise BuildError(f"the test generator returned an unsafe path {relative!r}")
    return {Path(relative).as_posix(): text for relative, text in sorted(emitted.items())}


def check_tests(files: Mapping[str, str], tests_dir: Path, label: str) -> list[Difference]:
    """How the test files in ``tests_dir`` differ from ``files`` (missing or stale)."""
    differences = []
    for relative, text in files.items():
        on_disk = read_bytes(tests_dir / relative)
        if on_disk == text.encode("utf-8"):
            continue
        current = "" if on_disk is None else on_disk.decode("utf-8", errors="replace")
        status = "missing" if on_disk is None else "stale"
        differences.append(
            Difference(relative, status, unified_diff(relative, label, current, text, status))
        )
    return differences


# ---- smc diagram --------------------------------------------------------------------------


@dataclass(frozen=True)
class DiagramRequest:
    paths: Sequence[str]
    #: Any of ``mermaid`` (.mmd and .md files), ``dot``, ``svg``, ``png``.
    formats: Collection[str]
    actions_dirs: Sequence[str] = ()
    #: None: the ``[tool.smc-compiler]`` value, as ``smc build`` draws them.
    detail: str | None = None
    #: None: the diagrams folder of ``smc build``'s output directory.
    output: Path | None = None
    strict: bool = False


#: ``rejected``: the checker found errors (or warnings, when strict); ``failed``: see
#: ``errors`` (an image that cannot be rendered, machines whose files would clash); both
#: write nothing. ``drawn``: see ``written``.
DiagramOutcome = Literal["rejected", "failed", "drawn"]


@dataclass
class DiagramReport:
    outcome: DiagramOutcome
    directory: Path
    machines: int
    checked: CheckResult
    errors: list[str] = field(default_factory=list)
    #: Every file the formats ask for (relative paths), and those whose bytes changed.
    files: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)


def draw_diagrams(request: DiagramRequest, on_checked: OnChecked | None = None) -> DiagramReport:
    """Check the machine files and write their diagrams; nothing is written unless every file
    could be computed (a missing Graphviz leaves the directory as it was)."""
    # Imported here, not at the top: ``smc build``'s fast path imports this module and never
    # draws, and the diagrams module's graphviz import would cost it tens of milliseconds.
    from smc.compiler.diagrams import DiagramError

    # One default for both commands: the diagrams folder of smc build's output, same detail.
    config = load_config()
    detail = request.detail or config.detail
    directory = request.output if request.output is not None else config.output_dir / DIAGRAMS_DIR
    result = _checked(request.paths, request.actions_dirs, on_checked)
    report = DiagramReport("rejected", directory, len(result.machines), result)
    if result.failed(strict=request.strict):
        return report
    report.outcome = "failed"
    try:
        outputs, report.errors = diagram_files(result.machines, request.formats, detail)
    except DiagramError as error:
        report.errors = [str(error)]
        return report
    if report.errors:
        return report
    report.files = list(outputs)
    report.written = write_changed(directory, outputs)
    report.outcome = "drawn"
    return report


def diagram_files(
    machines: Sequence[Machine], formats: Collection[str], detail: str
) -> tuple[dict[str, bytes], list[str]]:
    """``smc diagram``'s files: relative path -> bytes for every requested format
    (``mermaid``: .mmd and .md, ``dot``, ``svg``, ``png``), and the problems found (clashing
    file names). Raises ``DiagramError`` when an image cannot be rendered."""
    from smc.compiler.diagrams import render_image  # imported here: see diagram_texts

    if not machines:
        return {}, []
    texts, problems = diagram_texts(machines, detail)
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
