"""``smc build``: checked models in, a package of generated files out, kept fresh cheaply.

What one build produces under the output directory (every path relative to it, ``/``-separated):

- ``<module>.py`` per machine (``codegen.generate_machine``) and ``__init__.py`` exporting every
  machine class; ``py.typed`` (PEP 561);
- ``diagrams/...`` from ``smc.compiler.diagrams`` when that module is installed and diagrams
  are on;
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
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Literal

from smc.compiler import codegen
from smc.compiler.config import DEFAULT_LINE_LENGTH
from smc.compiler.model import Machine
from smc.compiler.pylayout import format_modules
from smc.compiler.resources import installation_stamp

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
class BuildReport:
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rendered: list[str] = field(default_factory=list)  # modules rendered (cache misses)
    diagrams_available: bool = True


@dataclass
class Difference:
    path: str
    #: "missing", "stale" (the source changed), "hand-edited" (the file changed), "orphan"
    #: (its machine is gone: a build would remove it).
    status: str
    diff: str
    source: str | None = None


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


# ---- optional collaborators ---------------------------------------------------------------


def _optional_module(name: str) -> ModuleType | None:
    """``name`` if it is installed, else None. Only absence is tolerated: an error raised while
    importing a module that exists propagates (it is a bug, not a missing feature)."""
    if importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name)


def diagrams_module() -> ModuleType | None:
    return _optional_module("smc.compiler.diagrams")


def testgen_module() -> ModuleType | None:
    return _optional_module("smc.compiler.testgen")


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
        if isinstance(path, str) and isinstance(entry, dict) and _safe_relative(path)
    }


def _safe_relative(path: str) -> bool:
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


def _read_bytes(path: Path) -> bytes | None:
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
        on_disk = _read_bytes(options.out_dir / path)
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
    module = diagrams_module()
    if module is None:
        return []
    # Rendered every time: diagrams are plain text (cheap), and their generator's version is
    # not ours to track, so caching them could keep a stale diagram.
    machine_diagrams: Callable[..., Mapping[str, str]] = module.machine_diagrams
    system_diagrams: Callable[..., Mapping[str, str]] = module.system_diagrams
    texts: dict[str, str] = {}
    for machine in machines:
        texts.update(machine_diagrams(machine, detail=detail))
    texts.update(system_diagrams(machines))
    outputs = []
    for relative, text in texts.items():
        path = f"{DIAGRAMS_DIR}/{Path(relative).as_posix()}"
        if not _safe_relative(path):
            raise BuildError(f"the diagram generator returned an unsafe path {relative!r}")
        outputs.append(Output(path, "diagram", text, sha256_text(text)))
    return outputs


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


def write_outputs(outputs: Sequence[Output], out_dir: Path) -> BuildReport:
    """Write what changed, the manifest last; remove what the previous manifest lists and
    this build does not produce."""
    report = BuildReport()
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
        if _read_bytes(target) == data:
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
            _remove_empty_parents(target.parent, out_dir)
    manifest_path = out_dir / MANIFEST_NAME
    if _read_bytes(manifest_path) != manifest.encode("utf-8"):
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


def build(machines: Sequence[Machine], inputs: Sequence[str], options: BuildOptions) -> BuildReport:
    outputs = plan_outputs(machines, inputs, options, use_cache=True)
    report = write_outputs(outputs, options.out_dir)
    report.diagrams_available = diagrams_module() is not None
    return report


# ---- --check ------------------------------------------------------------------------------


def _header_hash(text: str) -> str | None:
    for line in text.splitlines()[:8]:
        if line.startswith(HASH_LINE):
            return line[len(HASH_LINE) :].strip()
    return None


def _unified(path: str, label: str, old: str, new: str, fromfile_note: str) -> str:
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
    for path, expected, kind, expected_source_sha in expected_files:
        on_disk = _read_bytes(options.out_dir / path)
        if on_disk is None:
            diff = _unified(path, prefix, "", expected, "missing")
            differences.append(Difference(path, "missing", diff, sources.get(path)))
            continue
        if on_disk == expected.encode("utf-8"):
            continue
        current = on_disk.decode("utf-8", errors="replace")
        if kind is None:  # the manifest: it follows the outputs, so it is only ever stale
            stale = True
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
        diff = _unified(path, prefix, current, expected, status)
        differences.append(Difference(path, status, diff, sources.get(path)))
    produced = {o.path for o in outputs}
    for path in sorted(set(previous) - produced):
        on_disk = _read_bytes(options.out_dir / path)
        if on_disk is None:
            continue
        diff = _unified(path, prefix, on_disk.decode("utf-8", errors="replace"), "", "orphan")
        differences.append(Difference(path, "orphan", diff))
    return sorted(differences, key=lambda d: d.path)


# ---- --emit-tests -------------------------------------------------------------------------


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
    module = testgen_module()
    if module is None:
        raise BuildError("--emit-tests needs smc.compiler.testgen, which is not installed")
    emitted: Mapping[str, str] = module.emit_tests(machines, package)
    for relative in emitted:
        if not _safe_relative(Path(relative).as_posix()):
            raise BuildError(f"the test generator returned an unsafe path {relative!r}")
    return {Path(relative).as_posix(): text for relative, text in sorted(emitted.items())}


def write_changed(directory: Path, files: Mapping[str, bytes]) -> list[str]:
    """Write (atomically) each file whose bytes differ from what is on disk; returns the
    relative paths written, in ``files`` order."""
    written = []
    for relative, data in files.items():
        target = directory / relative
        if _read_bytes(target) != data:
            write_atomic(target, data)
            written.append(relative)
    return written


def check_tests(files: Mapping[str, str], tests_dir: Path, label: str) -> list[Difference]:
    differences = []
    for relative, text in files.items():
        on_disk = _read_bytes(tests_dir / relative)
        if on_disk == text.encode("utf-8"):
            continue
        current = "" if on_disk is None else on_disk.decode("utf-8", errors="replace")
        status = "missing" if on_disk is None else "stale"
        differences.append(
            Difference(relative, status, _unified(relative, label, current, text, status))
        )
    return differences


# ---- the no-op fast path ------------------------------------------------------------------
#
# The manifest lets a build skip black, but the checker still has to run to know that nothing
# changed, and on a large project the checker is most of a no-op rebuild. A clean build (no
# diagnostics at all) therefore also records a fingerprint of everything the checker and the
# generators read: the input files' bytes, the action directories' listings, the options, and
# the smc installation itself (each compiler source, template and schema file's size and
# mtime) plus the Python and black versions. When the next build has the same fingerprint and
# every output still has its recorded bytes, the result is known without checking: nothing to
# do. It lives in ``<build root>/.smc-cache/`` (never committed: it holds machine-specific
# mtimes), unlike the manifest, which is deterministic and committed with the outputs.

CACHE_DIR = ".smc-cache"
CACHE_FORMAT = 1
#: Written into the cache folder when smc creates it (as ruff and pytest do with theirs), so
#: the folder never shows up in ``git status``, whatever the project's own .gitignore says.
CACHE_GITIGNORE = "# Created by smc build: a local cache, never committed.\n*\n"


def _cache_path(options: BuildOptions) -> Path:
    key = sha256_text(str(options.out_dir.resolve()))[:16]
    return options.root / CACHE_DIR / f"build-{key}.json"


def input_fingerprint(
    inputs: Sequence[str],
    files: Sequence[str],
    action_dirs: Sequence[str],
    options: BuildOptions,
    strict: bool,
) -> str:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    try:
        black_version = version("black")
    except PackageNotFoundError:
        black_version = "?"
    digest = hashlib.sha256()
    header = {
        "cache": CACHE_FORMAT,
        "cwd": os.getcwd(),
        "inputs": inputs_label(inputs, options.root),
        "root": str(options.root.resolve()),
        "out": str(options.out_dir.resolve()),
        "diagrams": options.diagrams,
        "detail": options.detail,
        "line_length": options.line_length,
        "strict": strict,
        "python": platform.python_version(),
        "black": black_version,
        "installation": installation_stamp(),
        "action_dirs": [
            (d, sorted(p.name for p in Path(d).iterdir()) if Path(d).is_dir() else None)
            for d in action_dirs
        ],
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    for name in files:
        digest.update(b"\0" + os.path.abspath(name).encode() + b"\0")
        digest.update(Path(name).read_bytes())
    return digest.hexdigest()


def _outputs_intact(out_dir: Path, recorded: Mapping[str, str]) -> bool:
    for path, expected in recorded.items():
        data = _read_bytes(out_dir / path)
        if data is None or sha256_bytes(data) != expected:
            return False
    return True


def up_to_date(fingerprint: str, options: BuildOptions) -> int | None:
    """The number of machines if the last clean build had this fingerprint and its outputs
    are untouched (a no-op), else None."""
    try:
        record = json.loads(_cache_path(options).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("key") != fingerprint:
        return None
    outputs = record.get("outputs")
    machines = record.get("machines")
    if not isinstance(outputs, dict) or not isinstance(machines, int):
        return None
    if not _outputs_intact(options.out_dir, outputs):
        return None
    return machines


def remember_clean_build(fingerprint: str, options: BuildOptions, machines: int) -> None:
    """Record a clean build for ``up_to_date``; a cache that cannot be written is no error."""
    outputs = {
        path: entry["sha256"]
        for path, entry in read_manifest(options.out_dir).items()
        if isinstance(entry.get("sha256"), str)
    }
    manifest = _read_bytes(options.out_dir / MANIFEST_NAME)
    if manifest is None:
        return
    outputs[MANIFEST_NAME] = sha256_bytes(manifest)
    record = {"key": fingerprint, "machines": machines, "outputs": outputs}
    text = json.dumps(record, indent=1, sort_keys=True) + "\n"
    path = _cache_path(options)
    with contextlib.suppress(OSError):
        _make_cache_dir(path.parent)
        write_atomic(path, text.encode("utf-8"))


def _make_cache_dir(directory: Path) -> None:
    if not directory.is_dir():
        directory.mkdir(parents=True, exist_ok=True)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text(CACHE_GITIGNORE, encoding="utf-8")


def forget_clean_build(options: BuildOptions) -> None:
    with contextlib.suppress(OSError):
        _cache_path(options).unlink(missing_ok=True)
