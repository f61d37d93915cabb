"""``write_json``: write ``value`` (any JSON value, e.g. ``"{payload}"``) to the file ``path``;
returns ``success`` (default ``written``). Used by tests to see exactly what a machine got."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from smc.runtime.actions import BaseAction


class WriteJsonAction(BaseAction):
    async def execute(self, context: dict[str, Any]) -> str | None:
        path = Path(str(self.params["path"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(json.dumps(self.params.get("value")), encoding="utf-8")
        temporary.replace(path)
        return str(self.params.get("success", "written"))
