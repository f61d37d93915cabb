"""The monitor's records rendered for a terminal (``smc monitor``): one human line per record,
or the JSON line made safe to print."""

from __future__ import annotations

import json
import time
from typing import Any

from smc.safe_text import escape_controls


def format_human(record: dict[str, Any]) -> str:
    """``12:00:01.123 simple_worker  waiting --new_job--> processing  job=42`` and similar one
    line renderings of the other kinds (local time)."""
    ts = record.get("ts")
    try:
        seconds = float(ts)  # type: ignore[arg-type]
        clock = time.strftime("%H:%M:%S", time.localtime(seconds))
        stamp = f"{clock}.{int(seconds * 1000) % 1000:03d}"
    except (TypeError, ValueError):
        stamp = "??:??:??.???"
    machine = record.get("machine", "?")
    kind = record.get("kind", "?")
    if kind == "transition":
        body = f"{record.get('from')} --{record.get('event')}--> {record.get('to')}"
    else:
        body = str(kind)
        for key in ("from", "to", "event", "action", "message", "error", "reason"):
            value = record.get(key)
            if value not in (None, ""):
                body += f" {key}={_short(value)}"
    job_id = record.get("job_id")
    if job_id not in (None, ""):
        body += f"  job={job_id}"
    # Records carry untrusted text (job ids and data, event names, error messages): one line,
    # no terminal escape sequences, whatever it holds.
    return escape_controls(f"{stamp} {machine}  {body}")


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def safe_json_line(line: str, record: dict[str, Any]) -> str:
    """``line`` (a record as received) for a terminal: as it is when it is printable ASCII
    (always, from smc's publishers), else ``record`` encoded again with every non-ASCII and
    control character escaped, so the output stays one JSON document a line."""
    if line.isascii() and line.isprintable():
        return line
    return json.dumps(record, default=str, separators=(",", ":"))
