"""The examples compiled into an importable package, for the tests of ``smc.testing`` (no tests
here); ``imported_build`` does the same for any machine files with the real ``smc build``."""

from __future__ import annotations

import contextlib
import importlib
import subprocess
import sys
from collections.abc import Iterator, Sequence
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


@contextlib.contextmanager
def imported_build(sources: Sequence[Path], directory: Path, package: str) -> Iterator[ModuleType]:
    """``python -m smc build SOURCES -o DIRECTORY/PACKAGE`` (a real process), then the package
    imported; on exit it is unimported and ``directory`` leaves ``sys.path``."""
    command = ["build", *map(str, sources), "-o", str(directory / package), "--no-diagrams"]
    built = subprocess.run(
        [sys.executable, "-m", "smc", *command],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    sys.path.insert(0, str(directory))
    try:
        yield importlib.import_module(package)
    finally:
        sys.path.remove(str(directory))
        for name in [n for n in sys.modules if n.split(".")[0] == package]:
            del sys.modules[name]
