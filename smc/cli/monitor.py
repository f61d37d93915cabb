"""``smc monitor``: follow the live stream of transitions (issue 5)."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    del subparsers  # filled in by the monitor work
