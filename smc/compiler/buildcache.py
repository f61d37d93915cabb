"""The no-op fast path of ``smc build``: a fingerprint of everything a build reads.

The manifest lets a build skip black, but the checker still has to run to know that nothing
changed, and on a large project the checker is most of a no-op rebuild. A clean build (no
diagnostics at all) therefore also records a fingerprint of everything the checker and the
generators read: the input files' bytes (an SCXML document's with its ``<data src>``
files'), the action directories' listings, the options, and the smc installation itself
(each compiler source, template and schema file's size and mtime) plus the Python and black
versions. When the next build has the same fingerprint and
every output still has its recorded bytes, the result is known without checking: nothing to
do. It lives in ``<build root>/.smc-cache/`` (never committed: it holds machine-specific
mtimes), unlike the manifest, which is deterministic and committed with the outputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from smc.compiler.build import (
    MANIFEST_NAME,
    BuildOptions,
    inputs_label,
    read_bytes,
    read_manifest,
    sha256_bytes,
    sha256_text,
    write_atomic,
)
from smc.compiler.check import InputError, collect_files
from smc.compiler.loader.scxml import data_sources_key, is_scxml
from smc.compiler.resources import installation_stamp

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
        data = Path(name).read_bytes()
        digest.update(data)
        if is_scxml(name):  # its <data src> files are compiled into the class too
            digest.update(b"\0" + data_sources_key(name, data))
    return digest.hexdigest()


def project_fingerprint(
    inputs: Sequence[str], action_dirs: Sequence[str], options: BuildOptions, strict: bool
) -> str | None:
    """The fast path's key for building ``inputs``, or None when they cannot be listed or
    read (the checker then runs and reports why)."""
    try:
        return input_fingerprint(inputs, collect_files(inputs), action_dirs, options, strict)
    except (InputError, OSError):
        return None


def _outputs_intact(out_dir: Path, recorded: Mapping[str, str]) -> bool:
    for path, expected in recorded.items():
        data = read_bytes(out_dir / path)
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
    manifest = read_bytes(options.out_dir / MANIFEST_NAME)
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
