"""``greet``: the user action statemachine-engine's custom_actions example expects.

Reads ``name`` from the event payload (default ``World``), stores ``greeting`` in the context,
writes it to ``greetings.txt`` in the working directory (so tests can see it) and returns its
``success`` parameter (default ``success``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smc.runtime.actions import BaseAction


class GreetAction(BaseAction):
    async def execute(self, context: dict[str, Any]) -> str | None:
        payload = context.get("event_data", {}).get("payload") or {}
        name = payload.get("name", "World") if isinstance(payload, dict) else "World"
        greeting = f"Hello, {name}!"
        context["greeting"] = greeting
        self.logger.info("%s", greeting)
        with Path("greetings.txt").open("a", encoding="utf-8") as out:
            out.write(greeting + "\n")
        return str(self.config.get("params", {}).get("success", "success"))
