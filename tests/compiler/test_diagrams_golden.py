"""Golden files for the diagrams: the bytes smc writes for known machines.

The inputs (tests/golden/diagrams/inputs/) cover groups, wildcards, timeouts, self-loops,
actions that emit, send and start, and names that would break an unescaped diagram. After an
intended change to the output, regenerate the expected files and review the diff:

    SMC_UPDATE_GOLDEN=1 pytest tests/compiler/test_diagrams_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from smc.compiler.check import check_paths
from smc.compiler.diagrams import machine_diagrams, system_diagrams

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "diagrams"
INPUTS = GOLDEN / "inputs"
UPDATE = os.environ.get("SMC_UPDATE_GOLDEN") == "1"


def _rendered() -> dict[str, str]:
    """Expected path (relative to GOLDEN) -> text, for every input and both detail levels."""
    result = check_paths([str(INPUTS)])
    assert not result.errors, result.errors
    out: dict[str, str] = {}
    for machine in result.machines:
        for detail in ("names", "full"):
            for name, text in machine_diagrams(machine, detail=detail).items():
                out[f"{detail}/{name}"] = text
    for name, text in system_diagrams(result.machines).items():
        out[f"system/{name}"] = text
    return out


RENDERED = _rendered()


def test_golden_files_are_exactly_the_rendered_set() -> None:
    on_disk = {
        p.relative_to(GOLDEN).as_posix()
        for sub in ("names", "full", "system")
        for p in (GOLDEN / sub).rglob("*")
        if p.is_file()
    }
    if UPDATE:
        for stale in on_disk - set(RENDERED):
            (GOLDEN / stale).unlink()
        return
    assert on_disk == set(RENDERED)


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_golden(name: str) -> None:
    path = GOLDEN / name
    data = RENDERED[name].encode("utf-8")
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
    assert path.read_bytes() == data, f"{name} differs; see the module docstring to regenerate"
