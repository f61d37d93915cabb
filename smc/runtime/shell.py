"""Shell commands from templates: every interpolated value quoted for where it lands.

The command text comes from the machine file only; values from the context (job data, event
payloads) are inserted as *data*. The template is scanned left to right with a stack of
quoting contexts (POSIX ``sh`` rules), and each ``{a.b.c}`` placeholder is replaced by its
value quoted for the context it sits in:

- unquoted (also inside ``$( … )`` and backticks, which start a new command):
  ``shlex.quote(value)``;
- inside single quotes: the value's ``'`` is written as ``'\\''`` (close, escaped quote, reopen);
- inside double quotes: ``\\``, ``"``, ``$`` and the backtick are backslash-escaped;
- inside backquotes (at any depth) the result is escaped once more per level, because the
  shell removes one level of backslash escapes (of backslash, backquote and dollar) before it
  runs backquoted text.

So ``{"name": "x; touch pwned"}`` in ``echo {name}``, ``echo '{name}'`` or ``echo "{name}"``
prints the text and never runs ``touch``. A placeholder whose path is missing is left as
written (it is part of the author's command, not data).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any, Final

from smc.runtime.context import MISSING, PLACEHOLDER, lookup, to_text

_UNQUOTED: Final = "unquoted"
_SINGLE: Final = "single"
_DOUBLE: Final = "double"
_SUBSTITUTION: Final = "substitution"  # $( ... ): unquoted inside
_BACKTICK: Final = "backtick"  # ` ... `: unquoted inside
_PARENTHESIS: Final = "parenthesis"  # ( ... ) subshell: unquoted inside

_DOUBLE_QUOTE_SPECIAL: Final = str.maketrans({"\\": "\\\\", '"': '\\"', "$": "\\$", "`": "\\`"})


_BACKQUOTE_SPECIAL: Final = str.maketrans({"\\": "\\\\", "`": "\\`", "$": "\\$"})


def quote_for(context: str, value: str) -> str:
    """``value`` written safely for a quoting context (see the module docstring)."""
    if context == _SINGLE:
        return value.replace("'", "'\\''")
    if context == _DOUBLE:
        return value.translate(_DOUBLE_QUOTE_SPECIAL)
    return shlex.quote(value)


def render_command(template: str, context: Mapping[str, Any]) -> str:
    """The command ``template`` with every placeholder replaced by its quoted value."""
    if "{" not in template:
        return template
    out: list[str] = []
    stack = [_UNQUOTED]
    index = 0
    length = len(template)
    while index < length:
        char = template[index]
        top = stack[-1]
        if char == "{":
            match = PLACEHOLDER.match(template, index)
            if match is not None:
                value = lookup(context, match.group(1))
                if value is MISSING:
                    out.append(match.group(0))
                else:
                    quoted = quote_for(top, to_text(value))
                    # Backquoted text is de-escaped once (\\, \` and \$) before it runs: escape
                    # once per enclosing backquote level.
                    for _ in range(stack.count(_BACKTICK)):
                        quoted = quoted.translate(_BACKQUOTE_SPECIAL)
                    out.append(quoted)
                index = match.end()
                continue
        out.append(char)
        index += 1
        if top == _SINGLE:
            if char == "'":
                stack.pop()
            continue
        if char == "\\" and index < length:
            # An escaped character is literal text (in double quotes and unquoted alike).
            out.append(template[index])
            index += 1
            continue
        if top == _DOUBLE:
            if char == '"':
                stack.pop()
            elif char == "$" and template.startswith("(", index):
                out.append("(")
                index += 1
                stack.append(_SUBSTITUTION)
            elif char == "`":
                stack.append(_BACKTICK)
            continue
        # unquoted, or inside a command substitution
        if char == "'":
            stack.append(_SINGLE)
        elif char == '"':
            stack.append(_DOUBLE)
        elif char == "$" and template.startswith("(", index):
            out.append("(")
            index += 1
            stack.append(_SUBSTITUTION)
        elif char == "(":
            stack.append(_PARENTHESIS)
        elif char == ")" and top in (_SUBSTITUTION, _PARENTHESIS):
            stack.pop()
        elif char == "`":
            if top == _BACKTICK:
                stack.pop()
            else:
                stack.append(_BACKTICK)
    return "".join(out)
