"""``smc run``, ``smc monitor``: the worker runtime (issue 5)."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    del subparsers  # filled in by the runtime work
