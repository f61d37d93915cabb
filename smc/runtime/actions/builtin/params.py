"""Reading a built-in action's parameters."""

from __future__ import annotations

from typing import Any


def number_param(value: Any, default: float, what: str) -> float:
    """``value`` as a number of seconds or the like: ``default`` when empty; a ``ValueError``
    naming the parameter (``what``) when it is not a number."""
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, not {value!r}") from None
