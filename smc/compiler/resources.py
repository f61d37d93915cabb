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
