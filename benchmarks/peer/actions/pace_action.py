"""Bench action ``pace``: wait BENCH_SPACING seconds, then count one more event to send.

Loaded by both runtimes (smc and statemachine-engine construct an action with its config dict
and await ``execute(context)``). Returns ``next``, or ``all_sent`` after BENCH_COUNT events.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any


class PaceAction:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    async def execute(self, context: dict[str, Any]) -> str:
        sent = int(context.get("seq") or 0)
        if sent >= int(os.environ["BENCH_COUNT"]):
            return "all_sent"
        await asyncio.sleep(float(os.environ["BENCH_SPACING"]))
        context["seq"] = sent + 1
        return "next"
