"""Untrusted text made safe for one line of a log or a terminal (``docs/runtime.md``, "Logs and
untrusted text").

Job data, event payloads, file names and machine names can hold a newline (which would start
what looks like a new log record: log forging), terminal escape sequences (ESC, other C0 and C1
controls: clearing the screen, moving the cursor, rewriting what was printed) or bidirectional
overrides (which make text display in a different order than it is stored).
:func:`escape_controls` writes each such character visibly, as Python would in a string
literal: ``\\n``, ``\\r``, ``\\t``, ``\\x1b``, ``\\u202e``. Everything else, including other
non-ASCII text, is kept as it is; backslashes are not doubled (the escaping is for safety, so
a line stays one line of inert text, not a reversible encoding).
"""

from __future__ import annotations

import logging
import re
from typing import Final

#: C0 controls and DEL, C1 controls, the Arabic letter mark, the left-to-right and
#: right-to-left marks, the bidi embeddings/overrides and isolates, and the Unicode line and
#: paragraph separators.
_UNSAFE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")

_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with every control, bidi-control and line-separator character escaped."""
    if _UNSAFE.search(text) is None:
        return text  # the common case: nothing to copy
    return _UNSAFE.sub(_escape, text)


def has_controls(text: str) -> bool:
    """Whether :func:`escape_controls` would change ``text``."""
    return _UNSAFE.search(text) is not None


class OneLineFormatter(logging.Formatter):
    """A log formatter that keeps each record on one line whatever its message holds: the
    message (with the arguments interpolated: job data, payloads, names) goes through
    :func:`escape_controls`. A traceback or stack attached to a record (only at DEBUG in the
    runtime) keeps its lines, each escaped and indented with ``  | ``, so no continuation line
    can pass for a record of its own (records start with their timestamp)."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        details = [record.exc_text or "", self.formatStack(record.stack_info or "")]
        for detail in details:
            for part in detail.splitlines():
                line += "\n  | " + escape_controls(part)
        return line


__all__ = ["OneLineFormatter", "escape_controls", "has_controls"]


def os_error_reason(error: OSError) -> str:
    """What went wrong, in smc's own words' style: the C library's text in lower case
    ("no such file or directory", "permission denied"), without Python's ``[Errno 2]`` and the
    path repeated after it."""
    reason = str(error.strerror or type(error).__name__)
    return reason[:1].lower() + reason[1:]
