"""``smc run``'s compiled machines: one machine file compiled to one module, cached by content.

A worker started on a YAML file needs its generated class, and compiling costs the checker and
the code generator. So the module is kept in a cache directory (``$SMC_CACHE_DIR``, else
``$XDG_CACHE_HOME/smc/machines`` or ``~/.cache/smc/machines``) under a name keyed on the file's
bytes (an SCXML document's with its ``<data src>`` files'), its path as given, smc's version
and the installation stamp, and reused while all of them are unchanged. Only a miss imports
the checker and the code generator (inside ``compile_machine_file``, not at the top), so a
worker started from the cache never loads them (an SCXML document's hit loads its importer,
to read its ``<data src>`` names).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from smc import __version__
from smc.compiler.resources import installation_stamp
from smc.safe_text import os_error_reason

if TYPE_CHECKING:
    from smc.compiler.check import CheckResult


class MachineCacheError(Exception):
    """The machine file cannot be read, or its module cannot be written to the cache."""


@dataclass(frozen=True)
class CompiledMachine:
    #: The generated module; None when the file has errors (see ``checked``).
    module_path: Path | None
    #: The checker's result; None on a cache hit (the file was not checked again).
    checked: CheckResult | None = None


def machine_cache_dir() -> Path:
    """Where compiled machine files are cached."""
    explicit = os.environ.get("SMC_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "smc" / "machines"


def compile_machine_file(yaml_path: str, actions_dirs: Sequence[str]) -> CompiledMachine:
    """``yaml_path`` compiled to a cached module: reused while the file, its path and the
    compiler's code, templates and schemas are unchanged, else checked with ``actions_dirs``
    as all the places user actions come from (an action type none of them provides is an
    error, SMC030) and generated."""
    try:
        source = Path(yaml_path).read_bytes()
    except OSError as error:
        # Worded as smc check words it ("no such file or directory").
        raise MachineCacheError(f"{yaml_path}: {os_error_reason(error)}") from None
    key = hashlib.sha256()
    for part in (__version__, repr(installation_stamp()), yaml_path):
        key.update(part.encode() + b"\0")
    key.update(source)
    if yaml_path.lower().endswith(".scxml"):
        # its <data src> files are compiled into the class too (read here, cheaply: a hit
        # still loads neither the checker nor the code generator)
        from smc.compiler.loader.scxml import data_sources_key

        key.update(b"\0" + data_sources_key(yaml_path, source))
    directory = machine_cache_dir()
    stem = "".join(c if c.isalnum() else "_" for c in Path(yaml_path).stem)
    module_path = directory / f"{stem}_{key.hexdigest()[:24]}.py"
    if module_path.is_file():
        return CompiledMachine(module_path)
    # Only a cache miss pays for the checker (YAML, JSON Schema) and the code generator.
    from smc.compiler.build import write_atomic
    from smc.compiler.check import InputError, check_paths, refuse_not_yet_compiled
    from smc.compiler.codegen import generate_machine

    try:
        result = check_paths([yaml_path], actions_dirs, runtime=True)
    except InputError as error:
        raise MachineCacheError(str(error)) from None
    refuse_not_yet_compiled(result, building=True)
    if result.errors or not result.machines:
        return CompiledMachine(None, result)
    text = generate_machine(result.machines[0], yaml_path)
    try:
        # Atomic: several workers may build the same file at once; each writes its own
        # temporary file and renames it over the target (same bytes, so the last one wins).
        write_atomic(module_path, text.encode("utf-8"))
    except OSError as error:
        raise MachineCacheError(
            f"cannot write the compiled machine to {directory}: {error}"
        ) from None
    return CompiledMachine(module_path, result)
