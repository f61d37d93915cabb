"""The architecture's rules, checked on the source (docs/architecture.md, "Layers"):

- data flows one way: the worker runtime (``smc.runtime``), ``smc.testing`` and generated
  modules never load the compiler (``smc.compiler``);
- there is no import cycle inside ``smc/`` — counting every import, including one inside a
  function (a function-level import is the usual way to hide a cycle);
- code that takes any machine class types it as ``type[GeneratedMachine]``, and every
  generated class has every member of that Protocol.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import smc
from smc.machine import GeneratedMachine

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_ROOT = PROJECT_ROOT / "smc"

#: The layers that must run without the compiler installed beside them.
RUNTIME_PACKAGES = ("smc.runtime", "smc.testing", "smc.workflow")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _smc_modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def _imported_modules(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """Every ``smc`` module that ``name`` imports anywhere in its body (module level, inside
    functions, under ``TYPE_CHECKING``): ``from a import b`` counts ``a.b`` when ``b`` is a
    module, else ``a``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                if f"{source}.{alias.name}" in known:
                    yield f"{source}.{alias.name}"
                elif source in known:
                    yield source


def _import_graph() -> dict[str, set[str]]:
    modules = _smc_modules()
    known = set(modules)
    return {
        name: {target for target in _imported_modules(name, path, known) if target != name}
        for name, path in modules.items()
    }


def test_the_import_graph_is_read_from_the_source() -> None:
    """The graph the cycle test sorts is the real one: known edges are in it."""
    graph = _import_graph()
    assert "smc.machine" in graph["smc"]
    assert "smc.runtime.store" in graph["smc.runtime.engine"] or any(
        target.startswith("smc.runtime.store") for target in graph["smc.runtime.engine"]
    )
    assert any(target.startswith("smc.compiler") for target in graph["smc.cli.build"])


def test_no_import_cycle_inside_smc() -> None:
    try:
        order = list(TopologicalSorter(_import_graph()).static_order())
    except CycleError as error:
        cycle = " -> ".join(error.args[1])
        pytest.fail(f"import cycle inside smc/: {cycle}")
    assert len(order) == len(_smc_modules())


def test_runtime_modules_do_not_import_the_compiler_in_their_source() -> None:
    graph = _import_graph()
    offenders = sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        if name.startswith(RUNTIME_PACKAGES) or name in ("smc", "smc.machine", "smc.catalog")
        for target in targets
        if target.startswith(("smc.compiler", "smc.cli", "smc.ui"))
    )
    assert offenders == []


def test_the_web_monitor_loads_the_compiler_only_to_draw_a_diagram() -> None:
    """``smc.ui`` sits beside the CLI, above both the runtime and the compiler; it imports the
    compiler only inside the function that draws a machine type (``smc.ui.diagrams``), so
    serving the page, the stream and the API loads no compiler module."""
    graph = _import_graph()
    users = sorted(
        name
        for name, targets in graph.items()
        if name.startswith("smc.ui") and any(t.startswith("smc.compiler") for t in targets)
    )
    assert users == ["smc.ui.diagrams"]
    script = (
        "import json, sys\n"
        "import smc.ui.app, smc.ui.server, smc.cli.ui\n"
        "print(json.dumps(sorted(n for n in sys.modules if n.startswith('smc.compiler'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(result.stdout) == []


def test_loading_the_runtime_and_generated_modules_loads_no_compiler_module() -> None:
    """In a fresh interpreter: import every module of ``smc.runtime`` and ``smc.testing`` and
    every generated module, then look at what was loaded."""
    runtime_modules = sorted(
        info.name
        for package in RUNTIME_PACKAGES
        for info in pkgutil.walk_packages(
            importlib.import_module(package).__path__, prefix=f"{package}."
        )
    )
    generated_modules = sorted(
        f"generated.{path.stem}"
        for path in (PROJECT_ROOT / "generated").glob("*.py")
        if path.stem != "__init__"
    )
    assert "smc.runtime.engine" in runtime_modules and "smc.testing.runtime" in runtime_modules
    assert "generated.simple_worker" in generated_modules
    script = (
        "import importlib, json, sys\n"
        f"for name in {json.dumps(runtime_modules + generated_modules)}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(n for n in sys.modules if n.split('.')[:2] in "
        "(['smc', 'compiler'], ['smc', 'cli']))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def _protocol_members() -> set[str]:
    members = set(GeneratedMachine.__annotations__)
    members |= {
        name
        for name, value in vars(GeneratedMachine).items()
        if not name.startswith("_") and (callable(value) or isinstance(value, property))
    }
    return members


def test_every_generated_class_has_every_member_of_the_protocol() -> None:
    import generated

    members = _protocol_members()
    assert {"fire", "can_fire", "state", "INITIAL_STATE", "TRANSITIONS"} <= members
    classes = [getattr(generated, name) for name in generated.__all__]
    assert len(classes) >= 7
    for machine in classes:
        missing = sorted(name for name in members if not hasattr(machine, name))
        assert missing == [], f"{machine.__name__} lacks {missing}"


def _machine_parameters(path: Path) -> Iterator[tuple[str, str]]:
    """``(where, annotation)`` for each parameter or attribute that holds a machine class:
    named ``machine``, ``machine_cls`` or ``machine_class`` and annotated with ``type[...]``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            name, annotation = node.arg, node.annotation
        elif isinstance(node, ast.AnnAssign):
            target = node.target
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
            annotation = node.annotation
        else:
            continue
        text = ast.unparse(annotation)
        if name in ("machine", "machine_cls", "machine_class") and "type[" in text:
            yield f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} {name}", text


def test_the_runtime_and_testing_take_machines_as_generated_machine() -> None:
    """The generated-code contract is what the runtime and ``smc.testing`` use: a machine
    class is ``type[GeneratedMachine]`` there, never ``type[Any]``, so mypy holds their
    reads of a class to the Protocol's members."""
    found = [
        (where, text)
        for package in ("runtime", "testing")
        for path in sorted((PACKAGE_ROOT / package).rglob("*.py"))
        for where, text in _machine_parameters(path)
    ]
    assert len(found) >= 5
    wrong = [f"{where}: {text}" for where, text in found if "GeneratedMachine" not in text]
    assert wrong == []


def test_smc_package_is_the_runtime_base() -> None:
    """The top-level package is what generated modules import: only ``smc.machine``."""
    assert _import_graph()["smc"] == {"smc.machine"}
    assert smc.IllegalTransition.__module__ == "smc.machine"
