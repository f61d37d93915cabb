"""``check_events``: a stand-in for the action statemachine-engine removed.

On smc the runtime delivers inbound events to an idle machine by itself, so this action does
nothing and returns None: the state's action list goes on, the machine goes idle and the next
event arrives as usual.
"""

from __future__ import annotations

from typing import Any

from smc.runtime.actions import BaseAction


class CheckEventsAction(BaseAction):
    async def execute(self, context: dict[str, Any]) -> str | None:
        return None
