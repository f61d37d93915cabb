"""Actions: the built-ins, user actions (``--actions-dir``, the ``smc.actions`` entry-point
group) and the registry that resolves them at start-up. See ``docs/actions.md``."""

from __future__ import annotations

from smc.runtime.actions.base import ActionRuntime, BaseAction, WaitResult
from smc.runtime.actions.registry import (
    ENTRY_POINT_GROUP,
    ActionLoadError,
    ActionRegistry,
    PreparedAction,
    default_actions_dirs,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ActionLoadError",
    "ActionRegistry",
    "ActionRuntime",
    "BaseAction",
    "PreparedAction",
    "WaitResult",
    "default_actions_dirs",
]
