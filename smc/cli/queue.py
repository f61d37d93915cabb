"""``smc jobs``, ``smc send``, ``smc status``: the job queue and event store (owned by the
runtime store work; see issue 5)."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    del subparsers  # filled in by the store work
