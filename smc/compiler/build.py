"""``smc build``: checked models in, a package of generated files out, kept fresh cheaply.

What one build produces under the output directory (every path relative to it, ``/``-separated):

- ``<module>.py`` per machine (``codegen.generate_machine``) and ``__init__.py`` exporting every
  machine class; ``py.typed`` (PEP 561);
- ``diagrams/...`` from ``smc.compiler.diagrams`` when diagrams are on;
- ``.smc-manifest.json``: for every output, the sha256 of its bytes and, for modules, the
  source file and its source hash. Deterministic (sorted keys, no timestamps).

The manifest makes a no-op rebuild cheap: a module whose source hash and header path are
unchanged, and whose file still has the bytes the manifest recorded, is neither rendered nor
formatted. Files are written only when their bytes change, each atomically (temporary file in
the same directory + ``os.replace``). An output that the previous manifest lists but this build
no longer produces (its machine was removed) is deleted; files smc did not write are never
touched.

``check_outputs`` is ``--check``: it renders everything from scratch (no cache: the answer must
not depend on the manifest being right) and compares with the disk without writing.

``smc.compiler.project.compile_project`` sequences these steps with the checker and the no-op
fast path (``smc.compiler.buildcache``).
"""

from __future__ import annotations

import difflib
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from smc.compiler import codegen
from smc.compiler.config import DEFAULT_LINE_LENGTH
from smc.compiler.model import Machine
from smc.compiler.pylayout import format_modules

MANIFEST_NAME = ".smc-manifest.json"
MANIFEST_FORMAT = 1
INIT_NAME = "__init__.py"
MARKER_NAME = "py.typed"
DIAGRAMS_DIR = "diagrams"
#: Black's stable style changes only with its major version (pinned in pyproject.toml), so
#: the cache is keyed on the major alone: patch releases must not make the manifest differ.
FORMATTER = "black 26"
HASH_LINE = "# smc-source-sha256: "


class BuildError(Exception):
    """The checked machines cannot be built (e.g. two classes would get the same name)."""


OutputKind = Literal["module", "init", "marker", "diagram"]


@dataclass(frozen=True)
class Output:
    path: str  # relative to the output directory, "/"-separated
    kind: OutputKind
    text: str | None  # None: reused from disk unchanged (manifest hit)
    sha256: str
    source: str | None = None  # modules: the machine file relative to the build root
    source_sha256: str | None = None


@dataclass(frozen=True)
class BuildOptions:
    out_dir: Path
    #: Headers name sources relative to this directory (the nearest pyproject.toml's).
    root: Path
    diagrams: bool = True
    detail: str = "names"
    #: Worker processes for formatting (None: one per CPU; 1: none).
    jobs: int | None = None
    #: The width modules are laid out in: the user's black/ruff line length for ``out_dir``
    #: (``config.formatter_line_length``).
    line_length: int = DEFAULT_LINE_LENGTH


@dataclass
class WriteReport:
    """What ``write_outputs`` did, by output path."""

    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rendered: list[str] = field(default_factory=list)  # modules rendered (cache misses)
    #: Why each removed file is no longer produced (:func:`why_not_produced`).
    why_removed: dict[str, str] = field(default_factory=dict)


@dataclass
class Difference:
    path: str
    #: "missing", "stale" (the source changed), "hand-edited" (the file changed), "orphan"
    #: (this build no longer produces it: a build would remove it).
    status: str
    diff: str
    source: str | None = None
    #: Why, where the status alone would mislead (an orphan's cause, the manifest's case).
    reason: str = ""


def why_not_produced(path: str, options: BuildOptions) -> str:
    """Why an output the previous manifest lists is not one of this build's: diagrams left
    out by the options, or no input producing it (a machine removed or renamed)."""
    if path.startswith("diagrams/") and not options.diagrams:
        return "this build makes no diagrams: --no-diagrams, or diagrams = false in pyproject.toml"
    return "no input produces it any more: its machine was removed or renamed"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def relative_to_root(path: str | Path, root: Path) -> str:
    """``path`` (absolute, or relative to the working directory) relative to the build root,
    with ``/`` separators, so headers do not depend on where or on which OS the build ran."""
    absolute = Path(os.path.abspath(path))
    return Path(os.path.relpath(absolute, root)).as_posix()


def inputs_label(paths: Sequence[str], root: Path) -> str:
    """The inputs as the ``__init__`` docstring names them: normalised, sorted."""
    return ", ".join(sorted({relative_to_root(p, root) for p in paths}))


# ---- the manifest -------------------------------------------------------------------------


def read_manifest(out_dir: Path) -> dict[str, dict[str, str]]:
    """The outputs the previous build recorded; empty when there is none or it is unusable
    (an unreadable manifest only costs a full rebuild, and removes nothing)."""
    try:
        data = json.loads((out_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        return {}
    outputs = data.get("outputs")
    if not isinstance(outputs, dict):
        return {}
    return {
        path: entry
        for path, entry in outputs.items()
        if isinstance(path, str) and isinstance(entry, dict) and safe_relative(path)
    }


def safe_relative(path: str) -> bool:
    """A manifest path may only name a file inside the output directory."""
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and ".." not in parts and "" not in parts


def render_manifest(outputs: Sequence[Output]) -> str:
    entries: dict[str, dict[str, str]] = {}
    for output in outputs:
        entry = {"sha256": output.sha256}
        if output.source is not None and output.source_sha256 is not None:
            entry["source"] = output.source
            entry["source_sha256"] = output.source_sha256
        entries[output.path] = entry
    document = {
        "format": MANIFEST_FORMAT,
        "generator": f"smc codegen {codegen.CODEGEN_VERSION}",
        "formatter": FORMATTER,
        "templates_sha256": codegen.templates_digest(),
        "outputs": entries,
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# ---- planning -----------------------------------------------------------------------------


def _class_names_unique(machines: Sequence[Machine]) -> None:
    owners: dict[str, str] = {}
    for machine in machines:
        class_name = codegen.module_names(machine).class_name
        other = owners.get(class_name)
        if other is not None:
            raise BuildError(
                f"machines {other!r} and {machine.name!r} both become class {class_name!r}; "
                "rename one of them (metadata.machine_name)"
            )
        owners[class_name] = machine.name


def read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def plan_outputs(
    machines: Sequence[Machine],
    inputs: Sequence[str],
    options: BuildOptions,
    *,
    use_cache: bool,
) -> list[Output]:
    """Every output of the build, sorted by path. With ``use_cache``, a module the manifest
    proves current is not rendered (``Output.text`` is None)."""
    _class_names_unique(machines)
    previous = read_manifest(options.out_dir) if use_cache else {}
    outputs: list[Output] = []

    def cached(path: str, source: str, source_sha: str) -> Output | None:
        entry = previous.get(path)
        if entry is None or entry.get("source") != source:
            return None
        if entry.get("source_sha256") != source_sha:
            return None
        on_disk = read_bytes(options.out_dir / path)
        if on_disk is None or sha256_bytes(on_disk) != entry.get("sha256"):
            return None
        return Output(path, "module", None, entry["sha256"], source, source_sha)

    misses: list[tuple[str, str, str, str]] = []  # path, source, source hash, rendered
    for machine in machines:
        path = codegen.module_names(machine).module + ".py"
        source = relative_to_root(machine.path, options.root)
        context = codegen.machine_context(machine, source, options.line_length)
        source_sha = context["source_hash"]
        hit = cached(path, source, source_sha)
        if hit is not None:
            outputs.append(hit)
            continue
        misses.append((path, source, source_sha, codegen.render_context(context)))
    formatted = format_modules(
        [rendered for _, _, _, rendered in misses], options.jobs, options.line_length
    )
    for (path, source, source_sha, _), text in zip(misses, formatted, strict=True):
        outputs.append(Output(path, "module", text, sha256_text(text), source, source_sha))

    label = inputs_label(inputs, options.root)
    init_sha = codegen.init_hash(machines, label, options.line_length)
    hit = cached(INIT_NAME, label, init_sha)
    if hit is not None:
        outputs.append(Output(INIT_NAME, "init", None, hit.sha256, label, init_sha))
    else:
        text = codegen.generate_init(machines, label, options.line_length)
        outputs.append(Output(INIT_NAME, "init", text, sha256_text(text), label, init_sha))

    outputs.append(Output(MARKER_NAME, "marker", "", sha256_text("")))

    if options.diagrams:
        outputs.extend(_diagram_outputs(machines, options.detail))

    seen: set[str] = set()
    for output in outputs:
        if output.path in seen or output.path == MANIFEST_NAME:
            raise BuildError(f"two outputs would be written to {output.path!r}")
        seen.add(output.path)
    return sorted(outputs, key=lambda output: output.path)


def _diagram_outputs(machines: Sequence[Machine], detail: str) -> list[Output]:
    # Rendered every time: diagrams are plain text (cheap), and the manifest's cache key does
    # not cover the diagram generator, so caching them could keep a stale diagram. A machine
    # left out for a clash needs no message here: its module file clashes too, and
    # plan_outputs refuses that.
    texts, _ = diagram_texts(machines, detail)
    outputs = []
    for relative, text in texts.items():
        path = f"{DIAGRAMS_DIR}/{Path(relative).as_posix()}"
        if not safe_relative(path):
            raise BuildError(f"the diagram generator returned an unsafe path {relative!r}")
        outputs.append(Output(path, "diagram", text, sha256_text(text)))
    return outputs


def diagram_texts(machines: Sequence[Machine], detail: str) -> tuple[dict[str, str], list[str]]:
    """Relative path -> text of every machine's diagrams and of the system diagram, as
    ``smc build`` and ``smc diagram`` write them; and, for each machine left out because its
    files would overwrite another machine's, why."""
    # Imported here, not at the top: a no-op build never draws, and this module's graphviz
    # import would cost it tens of milliseconds.
    from smc.compiler.diagrams import machine_diagrams, machine_module, system_diagrams

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
    texts.update(system_diagrams(machines))
    return texts, problems


# ---- writing ------------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so a reader sees the old file or the new one, never
    half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_outputs(outputs: Sequence[Output], options: BuildOptions) -> WriteReport:
    """Write what changed, the manifest last; remove what the previous manifest lists and
    this build does not produce."""
    out_dir = options.out_dir
    report = WriteReport()
    previous = read_manifest(out_dir)
    manifest = render_manifest(outputs)
    for output in outputs:
        target = out_dir / output.path
        if output.text is None:
            report.unchanged.append(output.path)
            continue
        if output.kind == "module":
            report.rendered.append(output.path)
        data = output.text.encode("utf-8")
        if read_bytes(target) == data:
            report.unchanged.append(output.path)
            continue
        write_atomic(target, data)
        report.written.append(output.path)
    produced = {output.path for output in outputs}
    for path in sorted(set(previous) - produced):
        target = out_dir / path
        if target.is_file():
            target.unlink()
            report.removed.append(path)
            report.why_removed[path] = why_not_produced(path, options)
            _remove_empty_parents(target.parent, out_dir)
    manifest_path = out_dir / MANIFEST_NAME
    if read_bytes(manifest_path) != manifest.encode("utf-8"):
        write_atomic(manifest_path, manifest.encode("utf-8"))
        report.written.append(MANIFEST_NAME)
    return report


def _remove_empty_parents(directory: Path, out_dir: Path) -> None:
    while directory != out_dir and out_dir in directory.parents:
        try:
            directory.rmdir()
        except OSError:  # not empty
            return
        directory = directory.parent


def require_writable(directory: Path, relatives: Iterable[str]) -> None:
    """Raise the ``OSError`` writing ``directory/relative`` would meet, for each path, before
    anything is written: a directory to make under a file (ENOTDIR), a directory where a file
    goes (EISDIR), a directory this process may not write into (EACCES, EROFS). So a build
    whose last output cannot be written writes none (``smc build --emit-tests DIR`` once wrote
    the whole package, then failed on DIR)."""
    checked: set[Path] = set()
    for relative in relatives:
        target = directory / relative
        if target.is_dir():
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
        _require_creatable(target.parent, checked)


def _require_creatable(folder: Path, checked: set[Path]) -> None:
    """``folder`` is a directory this process can create files in, or can be made one."""
    if folder in checked:
        return
    missing: Path | None = None  # the outermost directory that would have to be made
    existing = folder
    while not existing.exists():
        missing = existing
        if existing.parent == existing:
            break
        existing = existing.parent
    culprit = str(missing if missing is not None else folder)
    if not existing.is_dir():
        raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), culprit)
    if not os.access(existing, os.W_OK | os.X_OK):
        code = errno.EROFS if _read_only(existing) else errno.EACCES
        raise OSError(code, os.strerror(code), culprit)
    checked.add(folder)


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def write_changed(directory: Path, files: Mapping[str, bytes]) -> list[str]:
    """Write (atomically) each file whose bytes differ from what is on disk; returns the
    relative paths written, in ``files`` order."""
    written = []
    for relative, data in files.items():
        target = directory / relative
        if read_bytes(target) != data:
            write_atomic(target, data)
            written.append(relative)
    return written


def build(
    machines: Sequence[Machine],
    inputs: Sequence[str],
    options: BuildOptions,
    also: Mapping[Path, Iterable[str]] | None = None,
) -> WriteReport:
    """Plan and write the package; ``also``: other files the caller writes after it (a
    directory and paths in it), checked writable with the package's before anything is."""
    outputs = plan_outputs(machines, inputs, options, use_cache=True)
    require_writable(options.out_dir, [MANIFEST_NAME, *(output.path for output in outputs)])
    for directory, relatives in (also or {}).items():
        require_writable(directory, relatives)
    return write_outputs(outputs, options)


# ---- --check ------------------------------------------------------------------------------


def _header_hash(text: str) -> str | None:
    for line in text.splitlines()[:8]:
        if line.startswith(HASH_LINE):
            return line[len(HASH_LINE) :].strip()
    return None


def unified_diff(path: str, label: str, old: str, new: str, fromfile_note: str) -> str:
    """``old`` -> ``new`` as a unified diff of ``label/path``, each line ending in a newline."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"{label}/{path} ({fromfile_note})",
        tofile=f"{label}/{path} (smc build)",
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def check_outputs(
    machines: Sequence[Machine],
    inputs: Sequence[str],
    options: BuildOptions,
    *,
    label: str | None = None,
) -> list[Difference]:
    """What a build would change, with a unified diff each; empty when everything is fresh.
    ``label`` prefixes the paths in the diffs (default: the output directory as given)."""
    outputs = plan_outputs(machines, inputs, options, use_cache=False)
    previous = read_manifest(options.out_dir)
    prefix = label if label is not None else options.out_dir.as_posix()
    differences: list[Difference] = []
    expected_files: list[tuple[str, str, OutputKind | None, str | None]] = [
        (o.path, o.text or "", o.kind, o.source_sha256) for o in outputs
    ]
    expected_files.append((MANIFEST_NAME, render_manifest(outputs), None, None))
    sources = {o.path: o.source for o in outputs}
    produced = {o.path for o in outputs}
    orphans = {
        path: on_disk
        for path in sorted(set(previous) - produced)
        if (on_disk := read_bytes(options.out_dir / path)) is not None
    }
    for path, expected, kind, expected_source_sha in expected_files:
        on_disk = read_bytes(options.out_dir / path)
        if on_disk is None:
            diff = unified_diff(path, prefix, "", expected, "missing")
            differences.append(Difference(path, "missing", diff, sources.get(path)))
            continue
        if on_disk == expected.encode("utf-8"):
            continue
        current = on_disk.decode("utf-8", errors="replace")
        reason = ""
        if kind is None:  # the manifest: it follows the outputs
            # Checked last: with every output as a build would write it, the manifest alone
            # differing was edited (or written by another tool), not left behind.
            stale = bool(differences or orphans)
            reason = (
                "stale: it lists the outputs, and a build changes them"
                if stale
                else "hand-edited: every output is up to date, but the manifest is not the one "
                "a build writes"
            )
        elif kind in ("module", "init"):
            # The header says what the file was generated from: another source hash means
            # the source (or the templates) changed since; the same one means the file was
            # edited by hand.
            stale = _header_hash(current) != expected_source_sha
        else:
            # No header to read: the manifest says whether smc wrote these exact bytes.
            recorded = previous.get(path, {}).get("sha256")
            stale = recorded == sha256_bytes(on_disk)
        status = "stale" if stale else "hand-edited"
        diff = unified_diff(path, prefix, current, expected, status)
        differences.append(Difference(path, status, diff, sources.get(path), reason))
    for path, on_disk in orphans.items():
        diff = unified_diff(path, prefix, on_disk.decode("utf-8", errors="replace"), "", "orphan")
        reason = f"orphan, a build removes it: {why_not_produced(path, options)}"
        differences.append(Difference(path, "orphan", diff, None, reason))
    return sorted(differences, key=lambda d: d.path)
