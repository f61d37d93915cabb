"""Bench action ``record_arrival``: append ``seq sent_at applied_at`` for the event just
applied to the file BENCH_STAMPS, then return ``stamped``.

It runs as the first action of the state the event led to, so ``applied_at`` is the moment the
receiving machine acted on the event.
"""

from __future__ import annotations

import os
import time
from typing import Any


class RecordArrivalAction:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    async def execute(self, context: dict[str, Any]) -> str:
        applied_at = time.time()
        payload = (context.get("event_data") or {}).get("payload") or {}
        with open(os.environ["BENCH_STAMPS"], "a", encoding="utf-8") as stamps:
            stamps.write(f"{payload.get('seq')} {payload.get('sent_at')} {applied_at:.6f}\n")
        return "stamped"
