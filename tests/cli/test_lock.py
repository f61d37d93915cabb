"""The committed lock (constraints.txt) pins every dependency the test command installs, at a
version inside the range pyproject.toml declares: a dependency added or a range moved without
refreshing the lock (``bash scripts/lock.sh``) fails here, not on someone's fresh clone."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCKED_EXTRAS = ("dev", "postgres", "testing")


def locked_versions() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", line
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def declared_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    texts = list(project["dependencies"])
    for extra in LOCKED_EXTRAS:
        texts += project["optional-dependencies"][extra]
    return [Requirement(text) for text in texts]


def test_the_lock_pins_every_declared_dependency_inside_its_range() -> None:
    pins = locked_versions()
    outside = {}
    for requirement in declared_requirements():
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None or not requirement.specifier.contains(pinned, prereleases=True):
            outside[str(requirement)] = pinned
    assert outside == {}, f"refresh the lock with `bash scripts/lock.sh`: {outside}"
