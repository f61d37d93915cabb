"""Golden files: expected bytes on disk, compared with what smc renders now.

``SMC_UPDATE_GOLDEN=1`` rewrites them instead (then review the diff): a file that changed is
rewritten, a file nothing renders any more is removed."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

UPDATE = os.environ.get("SMC_UPDATE_GOLDEN") == "1"


def check_golden_set(golden: Path, folders: Iterable[str], rendered: Mapping[str, str]) -> None:
    """The files under ``golden/<folder>`` are exactly the ``rendered`` names."""
    on_disk = {
        path.relative_to(golden).as_posix()
        for folder in folders
        for path in (golden / folder).rglob("*")
        if path.is_file()
    }
    if UPDATE:
        for stale in on_disk - set(rendered):
            (golden / stale).unlink()
        return
    assert on_disk == set(rendered)


def check_golden_file(golden: Path, name: str, text: str) -> None:
    """``golden/name`` holds exactly ``text`` (UTF-8)."""
    path = golden / name
    data = text.encode("utf-8")
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
    assert path.read_bytes() == data, f"{name} differs; see the module docstring to regenerate"
