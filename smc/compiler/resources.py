"""Where the compiler's data files are: ``templates/`` and ``schemas/``.

In a source checkout they sit beside the package; an installed wheel carries them as
``smc/_data/templates`` and ``smc/_data/schemas`` (hatch ``force-include``).
"""

from __future__ import annotations

from pathlib import Path


def data_dir(name: str) -> Path:
    """``templates/`` or ``schemas/``: inside the wheel (``smc/_data``) or the source tree."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_data" / name, package.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"smc data directory {name!r} is missing from the installation")


def installation_stamp() -> list[tuple[str, int, int]]:
    """(path, size, mtime) of every file a compile reads besides its inputs: ``smc/catalog.py``,
    the compiler's modules, the templates and the schemas. A cache keyed on it goes stale
    when smc is edited or upgraded."""
    package = Path(__file__).resolve().parent.parent
    files = [package / "catalog.py"]
    for folder in (package / "compiler", data_dir("templates"), data_dir("schemas")):
        files.extend(
            path
            for path in sorted(folder.iterdir())
            if path.is_file() and path.suffix in (".py", ".jinja", ".json")
        )
    stamp = []
    for path in files:
        info = path.stat()
        stamp.append((str(path), info.st_size, info.st_mtime_ns))
    return stamp
