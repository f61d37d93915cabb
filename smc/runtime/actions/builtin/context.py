"""Built-in actions on the machine's context and its log: ``log``, ``activity_log``, ``sleep``,
``set_context``, ``add_to_list``, ``pop_from_list``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from smc.catalog import default_event
from smc.runtime.actions.base import BaseAction
from smc.runtime.actions.builtin.params import number_param
from smc.runtime.context import to_text

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "success": logging.INFO,  # statemachine-engine's extra level
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def _level(value: Any) -> int:
    return _LEVELS.get(str(value).lower(), logging.INFO)


class LogAction(BaseAction):
    """``log``: write ``message`` at ``level`` (debug, info, success, warning, error)."""

    async def execute(self, context: dict[str, Any]) -> str | None:
        message = to_text(self.params.get("message", ""))
        self.runtime.logger.log(_level(self.params.get("level", "info")), "%s", message)
        return None


class ActivityLogAction(BaseAction):
    """``activity_log``: like ``log``, and published on the monitor as ``activity_log``."""

    _DEFAULT_SUCCESS = default_event("activity_log", "success")

    async def execute(self, context: dict[str, Any]) -> str | None:
        message = to_text(self.params.get("message", ""))
        level = str(self.params.get("level", "info")).lower()
        self.runtime.logger.log(_level(level), "%s", message)
        self.runtime.publish("activity_log", message=message, level=level)
        return self.event("success", self._DEFAULT_SUCCESS)


class SleepAction(BaseAction):
    """``sleep``: wait ``duration`` seconds without blocking the process; returns ``wake_up``."""

    async def execute(self, context: dict[str, Any]) -> str | None:
        await asyncio.sleep(max(number_param(self.params.get("duration"), 1.0, "duration"), 0.0))
        return "wake_up"


class SetContextAction(BaseAction):
    """``set_context``: ``context[key] = value``."""

    _DEFAULT_SUCCESS = default_event("set_context", "success")

    async def execute(self, context: dict[str, Any]) -> str | None:
        key = self.params.get("key")
        if not isinstance(key, str) or not key:
            raise ValueError("set_context needs a key")
        context[key] = self.params.get("value")
        return self.event("success", self._DEFAULT_SUCCESS)


class AddToListAction(BaseAction):
    """``add_to_list``: append ``value`` to the list at ``list_key`` (default ``items``)."""

    _DEFAULT_ERROR = default_event("add_to_list", "error")
    _DEFAULT_SUCCESS = default_event("add_to_list", "success")

    async def execute(self, context: dict[str, Any]) -> str | None:
        key = str(self.params.get("list_key", "items"))
        items = context.setdefault(key, [])
        if not isinstance(items, list):
            self.runtime.logger.error("add_to_list: context key %r is not a list", key)
            context["last_error"] = f"context key {key!r} is not a list"
            return self.event("error", self._DEFAULT_ERROR)
        items.append(self.params.get("value"))
        return self.event("success", self._DEFAULT_SUCCESS)


class PopFromListAction(BaseAction):
    """``pop_from_list``: take the first item of ``list_key`` into ``store_as``."""

    _DEFAULT_EMPTY = default_event("pop_from_list", "empty")
    _DEFAULT_SUCCESS = default_event("pop_from_list", "success")

    async def execute(self, context: dict[str, Any]) -> str | None:
        key = str(self.params.get("list_key", "items"))
        items = context.get(key)
        if not isinstance(items, list) or not items:
            if items is not None and not isinstance(items, list):
                self.runtime.logger.error("pop_from_list: context key %r is not a list", key)
            return self.event("empty", self._DEFAULT_EMPTY)
        item = items.pop(0)
        store_as = self.params.get("store_as")
        if store_as:
            context[str(store_as)] = item
        return self.event("success", self._DEFAULT_SUCCESS)
