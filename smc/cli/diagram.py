"""`smc diagram` (placeholder: registered by the work on this command)."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    del subparsers
