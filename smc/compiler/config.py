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


# ---- the line length of the user's formatter ------------------------------------------------

#: What black and ruff use when nothing is configured.
DEFAULT_LINE_LENGTH = 88
#: Ruff's own bounds for ``line-length``.
MAX_LINE_LENGTH = 320


def _toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from error


def _line_length(path: Path, table: Any) -> int | None:
    """``table``'s ``line-length``, None when unset; a bad value is a ``ConfigError``."""
    if not isinstance(table, dict) or "line-length" not in table:
        return None
    value = table["line-length"]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{path}: line-length must be an integer, not {value!r}")
    if not 1 <= value <= MAX_LINE_LENGTH:
        raise ConfigError(f"{path}: line-length must be between 1 and {MAX_LINE_LENGTH}")
    return value


def formatter_line_length(directory: Path) -> int:
    """The line length the user's black (else ruff) applies to files in ``directory``.

    Found as the tools find it, walking up from ``directory``: black reads the nearest
    ``pyproject.toml`` with a ``[tool.black]`` table, not above the repository root (a
    directory holding ``.git`` or ``.hg``); ruff the nearest ``.ruff.toml``, ``ruff.toml`` or
    ``pyproject.toml`` with a ``[tool.ruff]`` table. black's ``line-length`` wins when it sets
    one (generated modules are in black's style), else ruff's, else 88, both tools' default.
    User-level configuration (``~/.config``) is not read: the output must not depend on who
    builds it.
    """
    black: int | None = None
    black_done = False
    ruff: int | None = None
    ruff_done = False
    for folder in (directory, *directory.parents):
        pyproject = folder / "pyproject.toml"
        tool: Any = _toml(pyproject).get("tool", {}) if pyproject.is_file() else {}
        tool = tool if isinstance(tool, dict) else {}
        if not black_done and "black" in tool:
            black, black_done = _line_length(pyproject, tool["black"]), True
        if not black_done and ((folder / ".git").exists() or (folder / ".hg").is_dir()):
            black_done = True
        if not ruff_done:
            for name in (".ruff.toml", "ruff.toml"):
                if (folder / name).is_file():
                    ruff, ruff_done = _line_length(folder / name, _toml(folder / name)), True
                    break
            else:
                if "ruff" in tool:
                    ruff, ruff_done = _line_length(pyproject, tool["ruff"]), True
        if black_done and ruff_done:
            break
    if black is not None:
        return black
    return ruff if ruff is not None else DEFAULT_LINE_LENGTH
