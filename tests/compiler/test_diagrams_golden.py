"""Golden files for the diagrams: the bytes smc writes for known machines.

The inputs (tests/golden/diagrams/inputs/) cover groups, wildcards, timeouts, self-loops,
actions that emit, send and start, and names that would break an unescaped diagram. After an
intended change to the output, regenerate the expected files and review the diff:

    SMC_UPDATE_GOLDEN=1 pytest tests/compiler/test_diagrams_golden.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smc.compiler.check import check_paths
from smc.compiler.diagrams import machine_diagrams, system_diagrams
from tests.support.golden import check_golden_file, check_golden_set

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "diagrams"
INPUTS = GOLDEN / "inputs"


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
    check_golden_set(GOLDEN, ("names", "full", "system"), RENDERED)


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_golden(name: str) -> None:
    check_golden_file(GOLDEN, name, RENDERED[name])
