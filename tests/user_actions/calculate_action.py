"""``calculate``: the other user action of statemachine-engine's custom_actions example.

Operands ``a`` and ``b`` come from the event payload; ``operation`` from the action's
parameters, else the payload, else ``add``. The result goes to ``calculation_result`` in the
context and, as a line, to ``calculations.txt`` in the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smc.runtime.actions import BaseAction

_OPERATIONS = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "divide": lambda a, b: a / b if b else None,
}


class CalculateAction(BaseAction):
    async def execute(self, context: dict[str, Any]) -> str | None:
        payload = context.get("event_data", {}).get("payload") or {}
        a, b = payload.get("a", 0), payload.get("b", 0)
        operation = self.params.get("operation") or payload.get("operation", "add")
        if operation not in _OPERATIONS:
            context["last_error"] = f"unknown operation {operation!r}"
            return str(self.params.get("error", "error"))
        result = _OPERATIONS[operation](a, b)
        context["calculation_result"] = result
        self.logger.info("calculation: %s %s %s = %s", a, operation, b, result)
        with Path("calculations.txt").open("a", encoding="utf-8") as out:
            out.write(f"{a} {operation} {b} = {result}\n")
        return str(self.params.get("success", "success"))
