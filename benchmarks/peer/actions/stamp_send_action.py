"""Bench action ``stamp_send``: put the wall-clock send time in the context as ``sent_at``.

Runs right before ``send_event`` in the same state; returns no event so the list goes on.
"""

from __future__ import annotations

import time
from typing import Any


class StampSendAction:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    async def execute(self, context: dict[str, Any]) -> None:
        context["sent_at"] = time.time()
        return None
