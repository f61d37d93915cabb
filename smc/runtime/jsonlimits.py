"""Limits on the JSON values that cross the queue: job data, event payloads, job results and
the initial context (``docs/queue.md``, "Limits on JSON values").

A value nested deeper than :data:`MAX_JSON_DEPTH` or longer than :data:`MAX_JSON_BYTES` as
compact JSON is refused where it enters (the CLI, the store API) and, when a row holding one
was written some other way, where it is read (the worker fails the job or drops the event).
Without a bound, a few kilobytes of ``[[[[…]]]]`` exhaust Python's recursion limit in whatever
walks the value next (decoding, encoding, interpolation), far from where it came in.

The checks work on the JSON text and cost almost nothing for ordinary values: the size is a
``len``, and the exact depth is only computed when the text holds more than
:data:`MAX_JSON_DEPTH` brackets in all (the depth cannot exceed the number of brackets).
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

#: Deepest nesting of arrays and objects accepted (``[]`` is depth 1, ``[[]]`` depth 2).
MAX_JSON_DEPTH: Final = 64
#: Longest compact JSON text accepted, in bytes (4 MiB: four times the 1 MiB payloads the
#: runtime is tested to deliver, far below what either database could hold).
MAX_JSON_BYTES: Final = 4 << 20
#: Longest stored JSON text decoded. Twice :data:`MAX_JSON_BYTES` because a database may return
#: a value accepted at the limit longer than it was written: PostgreSQL prints ``jsonb`` with a
#: space after every ``:`` and ``,`` (``[1,1]`` comes back as ``[1, 1]``: at most 1.5 times).
MAX_STORED_JSON_BYTES: Final = 2 * MAX_JSON_BYTES

#: A JSON string literal (the unrolled form scans long strings without backtracking).
_STRING: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
#: Every character except brackets, removed before counting levels.
_NOT_BRACKET: Final = re.compile(r"[^\[\]{}]+")
_TO_SQUARE: Final = str.maketrans("{}", "[]")
#: How a value beyond :data:`MAX_JSON_DEPTH` is described (after its subject).
TOO_DEEP: Final = f"nests arrays/objects deeper than the limit of {MAX_JSON_DEPTH} levels"


class JsonLimitError(ValueError):
    """A JSON value or text is beyond :data:`MAX_JSON_DEPTH` or :data:`MAX_JSON_BYTES`. The
    message is a predicate (``nests deeper than 64 levels …``) meant to follow a subject such
    as ``job data``."""


def _too_deep(text: str, limit: int) -> bool:
    """Whether the arrays and objects of the JSON ``text`` nest deeper than ``limit``."""
    if text.count("[") + text.count("{") <= limit:
        return False  # the common case: too few brackets to nest that deep
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text)).translate(_TO_SQUARE)
    # Each round removes the innermost level (every "[]" is a level with nothing inside);
    # what is left after ``limit`` rounds is nested deeper than that.
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace("[]", "")
    return bool(brackets)


def _size(text: str) -> int:
    """The UTF-8 length of ``text`` (smc's own JSON text is ASCII: one byte a character)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def check_json_text(text: str, max_bytes: int = MAX_JSON_BYTES) -> None:
    """Raise :class:`JsonLimitError` when the JSON ``text`` is longer than ``max_bytes`` or
    nests deeper than :data:`MAX_JSON_DEPTH`."""
    # A character is at most 4 bytes: only long non-ASCII text is measured in bytes.
    if len(text) > max_bytes or (len(text) * 4 > max_bytes and _size(text) > max_bytes):
        raise JsonLimitError(
            f"is {_size(text):,} bytes of JSON; the limit is {max_bytes:,} "
            f"({max_bytes >> 20} MiB)"
        )
    if _too_deep(text, MAX_JSON_DEPTH):
        raise JsonLimitError(TOO_DEEP)


def decode_json(text: str) -> Any:
    """The value of the stored JSON ``text`` (a row's data, payload or result), within
    :data:`MAX_STORED_JSON_BYTES` and :data:`MAX_JSON_DEPTH`. Raises :class:`JsonLimitError`
    beyond them and ``ValueError`` (``json.JSONDecodeError``) for text that is not JSON."""
    check_json_text(text, MAX_STORED_JSON_BYTES)
    try:
        return json.loads(text)
    except RecursionError:  # unreachable within the depth limit; never let it escape
        raise JsonLimitError(TOO_DEEP) from None


def unstorable_text(value: Any) -> str | None:
    """Why ``value`` (already JSON-encodable, within the depth limit) cannot be stored on every
    backend, or None: PostgreSQL's ``jsonb`` refuses the NUL character and unpaired UTF-16
    surrogates in strings and keys, so both backends refuse them alike."""
    if isinstance(value, str):
        if "\x00" in value:
            return "contains a NUL character (\\u0000), which the database cannot store"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired surrogate (\\ud800-\\udfff), which is not Unicode text"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            problem = unstorable_text(key) or unstorable_text(item)
            if problem is not None:
                return problem
    elif isinstance(value, list | tuple):
        for item in value:
            problem = unstorable_text(item)
            if problem is not None:
                return problem
    return None


def may_hold_unstorable_text(encoded: str) -> bool:
    """Whether the ASCII JSON text ``encoded`` (``json.dumps`` with ``ensure_ascii``) might hold
    a NUL or a surrogate: a cheap filter before :func:`unstorable_text` walks the value."""
    return "\\u" in encoded and ("\\u0000" in encoded or "\\ud" in encoded)


__all__ = [
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_STORED_JSON_BYTES",
    "TOO_DEEP",
    "JsonLimitError",
    "check_json_text",
    "decode_json",
    "may_hold_unstorable_text",
    "unstorable_text",
]
