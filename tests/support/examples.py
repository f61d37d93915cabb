"""The examples compiled into an importable package, for the tests of ``smc.testing`` (no tests
here)."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from smc.compiler.check import check_paths
from smc.compiler.codegen import generate_init, generate_machine, module_names

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def imported_examples(directory: Path, package: str) -> Iterator[ModuleType]:
    """Compile ``examples/`` into the package ``package`` in ``directory`` (as ``smc build``
    writes it) and import it; on exit it is unimported and ``directory`` leaves ``sys.path``.
    Each test module names its own package, so their imports never share a module."""
    result = check_paths([str(ROOT / "examples")])
    assert not result.errors
    package_dir = directory / package
    package_dir.mkdir()
    for machine in result.machines:
        module = module_names(machine).module
        (package_dir / f"{module}.py").write_text(generate_machine(machine, machine.path))
    (package_dir / "__init__.py").write_text(generate_init(result.machines, "examples"))
    sys.path.insert(0, str(directory))
    try:
        yield importlib.import_module(package)
    finally:
        sys.path.remove(str(directory))
        for name in [n for n in sys.modules if n.split(".")[0] == package]:
            del sys.modules[name]
