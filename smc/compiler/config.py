"""``[tool.smc-compiler]`` from the user's ``pyproject.toml``.

The nearest ``pyproject.toml`` at or above the working directory is the project's: its
directory is the *build root* (generated headers name sources relative to it, and a relative
``output`` is taken from it). Without one, the working directory is the build root and every
setting keeps its default. Command-line flags win over the file.

Known keys: ``output`` (str), ``detail`` (``"names"`` or ``"full"``), ``diagrams`` (bool),
``strict`` (bool). An unknown key or a value of the wrong type is a ``ConfigError``, reported
with the file it came from, never ignored.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TABLE = "smc-compiler"
DETAILS = ("names", "full")


class ConfigError(Exception):
    """The ``[tool.smc-compiler]`` table is malformed."""


@dataclass(frozen=True)
class BuildConfig:
    #: The directory of the nearest pyproject.toml (else the working directory), absolute.
    root: Path
    #: The pyproject.toml it was read from, if any.
    pyproject: Path | None = None
    output: str = "generated"
    detail: str = "names"
    diagrams: bool = True
    strict: bool = False

    @property
    def output_dir(self) -> Path:
        """``output`` resolved against the build root (an absolute ``output`` stays as is)."""
        return self.root / self.output


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` in ``start`` or one of its parents."""
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


_TYPES: dict[str, type] = {"output": str, "detail": str, "diagrams": bool, "strict": bool}


def load_config(cwd: Path | None = None) -> BuildConfig:
    """The settings for a build started in ``cwd`` (default: the working directory)."""
    start = (cwd or Path.cwd()).resolve()
    pyproject = find_pyproject(start)
    if pyproject is None:
        return BuildConfig(root=start)
    try:
        with open(pyproject, "rb") as handle:
            document = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{pyproject}: cannot read: {error}") from error
    table: Any = document.get("tool", {}).get(TABLE, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{pyproject}: [tool.{TABLE}] must be a table")
    values: dict[str, Any] = {}
    for key, value in sorted(table.items()):
        expected = _TYPES.get(key)
        if expected is None:
            known = ", ".join(sorted(_TYPES))
            raise ConfigError(f"{pyproject}: [tool.{TABLE}] has unknown key {key!r} ({known})")
        if not isinstance(value, expected):
            raise ConfigError(
                f"{pyproject}: [tool.{TABLE}] {key} must be a {expected.__name__}, "
                f"not {type(value).__name__}"
            )
        values[key] = value
    if values.get("detail", "names") not in DETAILS:
        raise ConfigError(
            f"{pyproject}: [tool.{TABLE}] detail must be one of {', '.join(DETAILS)}, "
            f"not {values['detail']!r}"
        )
    if values.get("output") == "":
        raise ConfigError(f"{pyproject}: [tool.{TABLE}] output must not be empty")
    return BuildConfig(root=pyproject.parent, pyproject=pyproject, **values)
