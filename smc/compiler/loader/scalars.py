"""Where each character of a scalar's value is written in the YAML text.

The loader knows where a scalar starts (its first character, quote or block indicator); an
expression's problem is at a character offset into the scalar's *value*. Between the two
stand YAML's quoting and folding: a single-quoted scalar writes ``'`` as ``''``, a
double-quoted one has escapes (``\\n``, ``\\x41``, an escaped line break), and every style but
the literal block folds line breaks and drops indentation. :func:`scalar_positions` walks the
value and the source together, matching each value character to the source character (or
escape) that produced it and passing over the whitespace that folding removed. When the two
cannot be matched (an alias, or text the walk does not follow) it gives up, and the caller
points at the scalar's start instead: a position is never guessed outside the scalar.
"""

from __future__ import annotations

from collections.abc import Sequence

from smc.compiler.loader.document import Pos

#: A double-quoted scalar's one-character escapes (YAML 1.1, as PyYAML reads them).
_ESCAPES = {
    "0": "\0",
    "a": "\x07",
    "b": "\x08",
    "t": "\t",
    "\t": "\t",
    "n": "\n",
    "v": "\x0b",
    "f": "\x0c",
    "r": "\r",
    "e": "\x1b",
    " ": " ",
    '"': '"',
    "/": "/",
    "\\": "\\",
    "N": "\x85",
    "_": "\xa0",
    "L": "\u2028",
    "P": "\u2029",
}
#: Escapes followed by hexadecimal digits, with how many.
_CODES = {"x": 2, "u": 4, "U": 8}
#: What a line break of the source may be in the value (``lines`` hides which it was).
_BREAKS = ("\n", "\u2028", "\u2029")


class _Cursor:
    """A place in ``lines`` (0-based line and column); the end of a line reads as ``\\n``
    and the end of the text as ``""``."""

    def __init__(self, lines: Sequence[str], line: int, col: int) -> None:
        self.lines = lines
        self.line = line
        self.col = col

    def peek(self, ahead: int = 0) -> str:
        line, col = self.line, self.col
        for _ in range(ahead):
            line, col = self._next(line, col)
        if line >= len(self.lines):
            return ""
        text = self.lines[line]
        # Every line ends with a break (the last one too: ``splitlines`` drops the final one).
        return text[col] if col < len(text) else "\n"

    def _next(self, line: int, col: int) -> tuple[int, int]:
        if line < len(self.lines) and col < len(self.lines[line]):
            return line, col + 1
        return line + 1, 0

    def advance(self, count: int = 1) -> None:
        for _ in range(count):
            self.line, self.col = self._next(self.line, self.col)

    @property
    def pos(self) -> Pos:
        return Pos(self.line + 1, self.col + 1)


def _escape(cursor: _Cursor) -> tuple[str, int] | None:
    """The character a double-quoted escape at ``cursor`` (on its ``\\``) stands for, and
    its length in the source; None for one that is not known."""
    kind = cursor.peek(1)
    if kind in _ESCAPES:
        return _ESCAPES[kind], 2
    digits = _CODES.get(kind)
    if digits is None:
        return None
    text = "".join(cursor.peek(2 + i) for i in range(digits))
    try:
        return chr(int(text, 16)), 2 + digits
    except ValueError:
        return None


def _block_indent(lines: Sequence[str], header: str, first: int) -> int | None:
    """The indentation of a block scalar's content: that of its first line that is not
    blank (None with an explicit indentation indicator, which this does not follow)."""
    if any(char.isdigit() for char in header.split("#")[0]):
        return None
    for text in lines[first:]:
        if text.strip(" "):
            return len(text) - len(text.lstrip(" "))
    return 0


def scalar_positions(lines: Sequence[str], start: Pos, value: str) -> list[Pos] | None:
    """For a scalar whose value is ``value``, written from ``start`` (1-based) in ``lines``,
    the position of each character of the value and, last, of its end (so offset
    ``len(value)`` has one too). None when the source does not read as that value."""
    if not 1 <= start.line <= len(lines) or not 1 <= start.col <= len(lines[start.line - 1]):
        return None
    cursor = _Cursor(lines, start.line - 1, start.col - 1)
    style = cursor.peek()
    indent: int | None = None
    if style in ("'", '"'):
        cursor.advance()
    elif style in ("|", ">"):
        indent = _block_indent(lines, lines[cursor.line][cursor.col :], cursor.line + 1)
        if indent is None:
            return None
        cursor.line, cursor.col = cursor.line + 1, 0  # the content starts on the next line

    def next_line() -> None:
        """Past a line break and the next line's indentation (a block scalar's own
        indentation; in the other styles every leading blank, which folding drops)."""
        cursor.advance()
        skipped = 0
        while cursor.peek() in (" ", "\t") and (indent is None or skipped < indent):
            if indent is not None and cursor.peek() == "\t":
                break
            cursor.advance()
            skipped += 1

    if indent is not None:
        cursor.col = 0
        while cursor.peek() == " " and cursor.col < indent:
            cursor.advance()
    positions: list[Pos] = []
    for char in value:
        while True:
            found = cursor.peek()
            if not found:
                return None
            if style == '"' and found == "\\":
                if cursor.peek(1) == "\n":  # an escaped line break: nothing in the value
                    cursor.advance()
                    next_line()
                    continue
                escape = _escape(cursor)
                if escape is None or escape[0] != char:
                    return None
                positions.append(cursor.pos)
                cursor.advance(escape[1])
                break
            if found == style and style in ("'", '"'):
                if style == "'" and char == "'" and cursor.peek(1) == "'":
                    positions.append(cursor.pos)
                    cursor.advance(2)
                    break
                return None  # the closing quote before the value's end
            if found == "\n":
                # A line break is itself (a literal block, or one of several folded; YAML
                # keeps U+2028 and U+2029 as written), a space (folded), or nothing (the
                # first of several, or a chomped one).
                if char in _BREAKS or (char == " " and style != "|"):
                    positions.append(cursor.pos)
                    next_line()
                    break
                next_line()
                continue
            if found == char:
                positions.append(cursor.pos)
                cursor.advance()
                break
            if found in (" ", "\t"):  # blanks that folding drops before a line break
                cursor.advance()
                continue
            return None
    positions.append(cursor.pos)
    return positions


def offset_position(lines: Sequence[str], start: Pos, value: str, offset: int) -> Pos:
    """Where character ``offset`` of ``value`` (a scalar written from ``start``) is, or
    ``start`` when that cannot be known."""
    positions = scalar_positions(lines, start, value)
    if positions is None:
        return start
    return positions[max(0, min(offset, len(value)))]
