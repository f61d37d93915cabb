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


#: Words a flag's text may be, as YAML 1.1 reads them, and a placeholder may fill in.
_FLAG_WORDS = {
    "true": True, "yes": True, "on": True, "1": True,
    "false": False, "no": False, "off": False, "0": False,
}  # fmt: skip


def flag_param(value: Any, default: bool, what: str) -> bool:
    """``value`` as a yes or no: ``default`` when empty; the text ``"false"`` (a placeholder's,
    or a quoted YAML value) is false, not a non-empty string that ``bool()`` takes as true; a
    ``ValueError`` naming the parameter (``what``) for anything else."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _FLAG_WORDS:
        return _FLAG_WORDS[value.strip().lower()]
    raise ValueError(f"{what} must be true or false, not {value!r}")


def whole_number_param(value: Any, what: str) -> int:
    """``value`` (a number, or the text of one a placeholder filled in) as an int; a
    ``ValueError`` naming the parameter (``what``) otherwise."""
    if isinstance(value, str):
        value = value.strip()
    if isinstance(value, bool):  # int(True) is 1: `limit: yes` is no number
        raise ValueError(f"{what} must be a whole number (got {value!r})")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a whole number (got {value!r})") from None
    if isinstance(value, float) and number != value:
        raise ValueError(f"{what} must be a whole number (got {value!r})")
    return number
