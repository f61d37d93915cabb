"""The machine context and ``{a.b.c}`` interpolation over it.

The context is a plain ``dict`` the actions read and write: ``machine_name``,
``current_state``, the initial context, the current job (``current_job`` plus its keys copied to
the top level, as statemachine-engine does), the last inbound event (``event_data``,
``payload``), and whatever actions store (``last_error``, ``store_as`` keys, ...).

Interpolation rules (``docs/runtime.md``):

- ``{a.b.c}`` walks dicts by key and lists by index (``{items.0.name}``);
- a placeholder whose path is missing is left exactly as written;
- a string that is exactly one placeholder becomes the value itself, keeping its type
  (``"{spawned_jobs}"`` gives the list, ``"{job_id}"`` an int if the id is an int);
- inside a longer string a value is written with :func:`to_text` (strings as they are, ``None``
  as the empty string, containers as JSON);
- anything that is not a plain dotted path (``{x|length}``, ``{}``, ``{ a }``) is not a
  placeholder and stays as written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

#: ``{name}`` or ``{name.key.0.more}``; names are identifiers, later segments may be digits.
PLACEHOLDER: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*)\}")


class _Missing:
    """The marker for "no such path" (distinct from a stored ``None``)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()

#: Context keys the runtime owns: a job's data never overwrites them when it is copied to the
#: top level (so ``{"machine_name": ...}`` in job data cannot impersonate another machine).
RESERVED_KEYS: Final = frozenset(
    {
        "machine_name",
        "current_state",
        "current_job",
        "event_data",
        "payload",
        "id",
        "job_id",
        "job_type",
    }
)


def lookup(context: Mapping[str, Any], path: str) -> Any:
    """The value at dotted ``path`` in ``context``, or :data:`MISSING`."""
    value: Any = context
    for segment in path.split("."):
        if isinstance(value, Mapping):
            if segment in value:
                value = value[segment]
                continue
            return MISSING
        if isinstance(value, list | tuple) and segment.lstrip("-").isdigit():
            index = int(segment)
            if -len(value) <= index < len(value):
                value = value[index]
                continue
        return MISSING
    return value


def to_text(value: Any) -> str:
    """How a value is written inside a longer string."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False, sort_keys=False, default=str)
    return str(value)


def has_placeholder(value: Any) -> bool:
    """Whether interpolating ``value`` could change it (cheap check for the hot path)."""
    if isinstance(value, str):
        return "{" in value and PLACEHOLDER.search(value) is not None
    if isinstance(value, Mapping):
        return any(has_placeholder(k) or has_placeholder(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_placeholder(item) for item in value)
    return False


def interpolate_string(text: str, context: Mapping[str, Any]) -> Any:
    """Interpolate one string (see the module docstring for the rules)."""
    if "{" not in text:
        return text
    whole = PLACEHOLDER.fullmatch(text)
    if whole is not None:
        value = lookup(context, whole.group(1))
        return text if value is MISSING else value

    def replace(match: re.Match[str]) -> str:
        value = lookup(context, match.group(1))
        return match.group(0) if value is MISSING else to_text(value)

    return PLACEHOLDER.sub(replace, text)


def interpolate(value: Any, context: Mapping[str, Any]) -> Any:
    """Interpolate every string in ``value`` (dicts and lists recursively; keys too)."""
    if isinstance(value, str):
        return interpolate_string(value, context)
    if isinstance(value, Mapping):
        return {
            (interpolate_string(k, context) if isinstance(k, str) else k): interpolate(v, context)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [interpolate(item, context) for item in value]
    return value


def job_to_dict(job: Any) -> dict[str, Any]:
    """A job (``smc.runtime.store.Job``) as the context and ``get_pending_jobs`` show it.

    Both ``id`` and ``job_id`` hold the id (statemachine-engine configs use either).
    """
    try:
        data = job.data
    except ValueError:
        data = job.data_json  # malformed data is shown as its text; it is never claimed
    return {
        "id": job.id,
        "job_id": job.id,
        "job_type": job.job_type,
        "machine_type": job.machine_type,
        "data": data,
        "priority": job.priority,
        "attempts": job.attempts,
        "status": job.status,
        "created_at": job.created_at,
    }


def new_context(
    machine_name: str, state: str, initial: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The context a machine starts with."""
    context: dict[str, Any] = dict(initial or {})
    context["machine_name"] = machine_name
    context["current_state"] = state
    return context
