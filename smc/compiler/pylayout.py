"""Python source laid out as black lays it out, and black itself where that is not enough.

Every generated module is in black's style at the line length of the user's own formatter
(black's, else ruff's, read by ``config.formatter_line_length``; 88 by default). The
templates are written in it with every fixed line at most 79 columns; what depends on the
machine is written here:

- string literals with the quotes black chooses (``pystr``);
- data literals laid out as black lays them out at that width (``layout``): on one line if
  it fits, else one item per line with a trailing comma, recursively;
- an assignment's value too long for its line in parentheses on a line of its own
  (``RightHandSide``), and a ``Literal[...]`` split as black splits a subscript;
- a string too long for its line split into implicitly concatenated pieces in parentheses
  (a layout black and ``ruff format`` both keep).

So no line is longer than the width and the module needs no ``noqa``. A module whose every
line fits is already what black would make of it and is used as rendered
(``in_black_style``); any other module (a name too long for one line, say, or a line length
under 79) goes through black in-process (``format_modules``, in worker processes when there
are enough). black is the judge either way: the tests run it over the examples, the corpus
and random machines with hostile names and assert it changes nothing
(``test_codegen_format.py``), and run black, ``ruff format`` and ``ruff check`` on modules
built in fresh projects at several line lengths (``test_codegen_tools.py``).
Skipping black where it would change nothing is what makes a cold build of a hundred
machines take about a second instead of seven (black spends ~0.3 ms a line only to parse a
module).

The templates place a node with a mark (``mark``); ``lay_out_marks`` then lays it out where
it stands, with the text before it on its line as prefix and the text after as suffix, so the
template, not this module, decides indentation.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from smc.compiler.config import DEFAULT_LINE_LENGTH

# ---- literals --------------------------------------------------------------------------


def pystr(text: str) -> str:
    """``repr(text)`` with the quotes black chooses (double quotes, unless they need more
    escapes than single quotes), so the module is in black's style as rendered. Only the
    quote character and the escaping of quotes differ from ``repr()``."""
    if '"' not in text and "'" not in text:
        return '"' + repr(text)[1:-1] + '"'
    # A quote inside: black's own rule decides (it is compiled, and cheap per call).
    from black.strings import normalize_string_quotes

    return str(normalize_string_quotes(repr(text)))


def literal(value: Any) -> str:
    """A Python literal for plain data (``plan.plain_data``); strings through ``pystr()``."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{pystr(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, str):
        return pystr(value)
    return repr(value)


def doc_literal(text: str) -> str:
    """``repr(text)`` made safe inside a triple-double-quoted docstring."""
    return repr(text).replace('"', '\\"')


def header_path(path: str) -> str:
    """``path`` made safe for a one-line comment: a file name holding a newline or another
    unprintable character is written with Python escapes, so it cannot end the comment and
    start code."""
    return path if path.isprintable() else repr(path)[1:-1]


# ---- layout nodes ----------------------------------------------------------------------
#
# A line these rules cannot place (say, an event name so long that a call must be split) is
# left too long, and ``in_black_style`` sends that module to black.


@dataclass(frozen=True)
class Seq:
    """A bracketed literal: items are code, or (prefix, node) pairs such as dict entries.
    A ``subscript`` (``Literal[...]``) is split as black splits one: its items on one line
    of their own when they fit there, else one per line."""

    open: str
    close: str
    items: tuple[Node | tuple[str, Node], ...]
    one_tuple: bool = False
    subscript: bool = False
    #: the literal on one line, made once: ``layout`` measures it at every level it splits.
    text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # most items are code (``State.x``): kept as they are without a call each
        inner = ", ".join([i if isinstance(i, str) else _flat_item(i) for i in self.items])
        text = self.open + inner + ("," if self.one_tuple else "") + self.close
        object.__setattr__(self, "text", text)


@dataclass(frozen=True)
class Text:
    """A string constant, written ``pystr(value)``; one too long for its line is split
    (``layout``)."""

    value: str


class RightHandSide:
    """The value of an assignment (code). Too long for its line, black puts it in
    parentheses on a line of its own when it fits there; otherwise it splits the value
    further, which is left to black (``in_black_style`` sees the line too long).

    A plain class, not a dataclass: creating one at import costs a no-op build ~1 ms."""

    __slots__ = ("code",)

    def __init__(self, code: str) -> None:
        self.code = code


Node = str | Seq | Text | RightHandSide


def data_node(value: Any) -> Node:
    """Plain data (``plan.plain_data``) as a layout node (strings as ``Text``)."""
    if isinstance(value, dict):
        return Seq("{", "}", tuple((f"{pystr(k)}: ", data_node(v)) for k, v in value.items()))
    if isinstance(value, list):
        return Seq("[", "]", tuple(data_node(v) for v in value))
    if isinstance(value, str):
        return Text(value)
    return literal(value)


def tuple_node(items: Sequence[Node]) -> Node:
    return Seq("(", ")", tuple(items), one_tuple=len(items) == 1) if items else "()"


def _split_item(item: Node | tuple[str, Node]) -> tuple[str, Node]:
    return item if isinstance(item, tuple) else ("", item)


def _flat_item(item: Node | tuple[str, Node]) -> str:
    if isinstance(item, tuple):
        return item[0] + flat(item[1])
    return flat(item)


def flat(node: Node) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, Text):
        return pystr(node.value)
    if isinstance(node, RightHandSide):
        return node.code
    return node.text


def layout(prefix: str, node: Node, suffix: str, indent: int, width: int) -> list[str]:
    """``prefix + node + suffix`` as lines at ``indent``, the way black splits them at
    ``width`` columns."""
    pad = " " * indent
    line = pad + prefix + flat(node) + suffix
    if black_width(line) <= width or isinstance(node, str):
        return [line]
    if isinstance(node, RightHandSide):
        wrapped = pad + "    " + node.code
        if black_width(wrapped) > width:
            return [line]
        return [pad + prefix + "(", wrapped, pad + ")" + suffix]
    if isinstance(node, Text):
        return _split_text(prefix, node.value, suffix, indent, width) or [line]
    if not node.items:
        return [line]
    if node.subscript:
        # black keeps a subscript's items on one line of their own when they fit there (or
        # when there is only one), else it splits them one per line with a trailing comma.
        body = pad + "    " + ", ".join(flat(value) for _, value in map(_split_item, node.items))
        if len(node.items) == 1 or black_width(body) <= width:
            return [pad + prefix + node.open, body, pad + node.close + suffix]
    lines = [pad + prefix + node.open]
    # black explodes a body one item per line (adding a trailing comma) only when it has a
    # comma between items; a single item stays whole, without one (unless it is a 1-tuple).
    item_suffix = "," if len(node.items) > 1 or node.one_tuple else ""
    for item in node.items:
        item_prefix, value = _split_item(item)
        lines.extend(layout(item_prefix, value, item_suffix, indent + 4, width))
    lines.append(pad + node.close + suffix)
    return lines


def _split_text(prefix: str, value: str, suffix: str, indent: int, width: int) -> list[str]:
    """A string too long for its line, as implicitly concatenated pieces in parentheses, one
    piece a line, each line within ``width``::

        "command": (
            "printf 'processed %s\\n' {message} "
            "> data/output/{id}.txt"
        ),

    black (stable style) and ruff format keep this layout as it is: the parentheses are not
    redundant where a data literal's item stands, and pieces that do not fit on one line
    together stay one a line. The pieces join to exactly ``value``. Empty when no split
    fits (the line is then left long, and ``in_black_style`` decides)."""
    pad = " " * indent
    inner = pad + "    "
    if black_width(inner + pystr(value)) <= width:
        # Fits whole on a line of its own: one piece (ruff format would join more pieces).
        pieces = [value]
    else:
        pieces = string_pieces(value, width - len(inner))
    if not pieces:
        return []
    return [pad + prefix + "(", *(inner + pystr(p) for p in pieces), pad + ")" + suffix]


def string_pieces(value: str, width: int) -> list[str]:
    """``value`` cut into pieces whose literals (``pystr``) are each at most ``width``
    columns wide, preferring to cut after a space; empty when a single character does not
    fit. Greedy: each character's width in a literal is estimated once, then the piece is
    measured exactly only where the estimate was pessimistic (quotes)."""
    pieces: list[str] = []
    start = 0
    while start < len(value):
        used = 2  # the quotes
        end = start
        while end < len(value):
            char = value[end]
            # a quote may need escaping, whichever quotes the piece gets: count two
            cost = 2 if char in "'\"" else black_width(repr(char)[1:-1])
            if used + cost > width:
                break
            used += cost
            end += 1
        if end == start:
            return []
        # The estimate counts every quote as escaped; measure exactly how far the piece goes.
        while end < len(value) and black_width(pystr(value[start : end + 1])) <= width:
            end += 1
        if end < len(value):
            space = value.rfind(" ", start, end)
            if space >= start + (end - start) // 2:
                end = space + 1
        pieces.append(value[start:end])
        start = end
    return pieces


# ---- nodes placed by a template ----------------------------------------------------------

#: Brackets a node's index in rendered text. No value reaches a module raw (names are
#: identifiers or ``repr()``-escaped literals, paths are escaped when unprintable), so the
#: character can only come from a mark.
MARK = "\0"


def mark(nodes: list[Node], node: Node) -> str:
    """Where ``node`` goes in the rendered text: ``nodes`` keeps it until ``lay_out_marks``."""
    nodes.append(node)
    return f"{MARK}{len(nodes) - 1}{MARK}"


def lay_out_marks(rendered: str, nodes: Sequence[Node], width: int) -> str:
    """``rendered`` with each marked node laid out where it stands: the line's leading
    spaces are its indent, the text before the mark its prefix, the text after it its
    suffix. One mark a line."""
    pieces: list[str] = []
    done = 0  # rendered[:done] is in pieces
    while (start := rendered.find(MARK, done)) != -1:
        end = rendered.index(MARK, start + 1)
        line_start = rendered.rfind("\n", 0, start) + 1
        line_end = rendered.find("\n", end)
        if line_end == -1:
            line_end = len(rendered)
        suffix = rendered[end + 1 : line_end]
        if MARK in suffix:
            raise ValueError(f"a template line holds more than one laid-out node: {suffix!r}")
        head = rendered[line_start:start]
        prefix = head.lstrip(" ")
        node = nodes[int(rendered[start + 1 : end])]
        pieces.append(rendered[done:line_start])
        pieces.append("\n".join(layout(prefix, node, suffix, len(head) - len(prefix), width)))
        done = line_end
    pieces.append(rendered[done:])
    return "".join(pieces)


# ---- black: the judge, and the formatter of what the rules above cannot lay out ----------


def black_width(line: str) -> int:
    """The width black measures for ``line``: its length, except that East Asian wide
    characters count as two columns (black's own ``str_width`` decides those)."""
    if line.isascii():
        return len(line)
    from black.strings import str_width

    return int(str_width(line))


def in_black_style(rendered: str, line_length: int = DEFAULT_LINE_LENGTH) -> bool:
    """Whether a rendered module is already black's output. The templates are in black's
    style and ``layout()`` splits data literals as black does, so the only thing black could
    still change is a line too long, which it would split, unless nothing on it can be split
    (``_unsplittable``)."""
    return all(
        black_width(line) <= line_length or _unsplittable(line) for line in rendered.splitlines()
    )


def _unsplittable(line: str) -> bool:
    """A line too long that black keeps as it is: a comment (black never wraps one), or one
    item of an exploded data literal that is a single constant (``"text",``) or a constant
    key and value (``"key": "text",``): no bracket to split at and nothing to join. Python's
    own parser decides what the item is, so no quoting trick can pass for one."""
    stripped = line.strip()
    if line.startswith("# "):
        return True
    if not stripped.endswith(","):
        return False
    try:
        tree = ast.parse("{" + stripped + "}", mode="eval").body
    except SyntaxError:
        return False
    if isinstance(tree, ast.Set) and len(tree.elts) == 1:
        return isinstance(tree.elts[0], ast.Constant)
    if isinstance(tree, ast.Dict) and len(tree.keys) == 1:
        return isinstance(tree.keys[0], ast.Constant) and isinstance(tree.values[0], ast.Constant)
    return False


def format_python(source: str, line_length: int = DEFAULT_LINE_LENGTH) -> str:
    import black
    from black.mode import Mode, TargetVersion

    return black.format_str(
        source, mode=Mode(line_length=line_length, target_versions={TargetVersion.PY311})
    )


def finish_module(rendered: str, line_length: int = DEFAULT_LINE_LENGTH) -> str:
    """A rendered module in black's style: as rendered when every line fits (it is black's
    output already, see ``in_black_style``), else formatted by black. A plain function of
    strings, so a build can run it in worker processes."""
    if in_black_style(rendered, line_length):
        return rendered
    return format_python(rendered, line_length)


#: Below this many modules to format, worker processes cost more than they save.
PARALLEL_THRESHOLD = 8


def format_modules(
    rendered: Sequence[str], jobs: int | None, line_length: int = DEFAULT_LINE_LENGTH
) -> list[str]:
    """Every rendered module in black's style. Most are already (``in_black_style``) and
    are finished here; the others go through black, in worker processes when there are
    enough of them (black costs ~0.1 s a module; each file is independent, the result is
    the same)."""
    # finish_module() for each module, with black run in worker processes when enough
    # modules need it.
    needs_black = [text for text in rendered if not in_black_style(text, line_length)]
    formatted = dict(
        zip(needs_black, _format_with_black(needs_black, jobs, line_length), strict=True)
    )
    return [formatted.get(text, text) for text in rendered]


def _format_with_black(rendered: Sequence[str], jobs: int | None, line_length: int) -> list[str]:
    workers = min(jobs or os.cpu_count() or 1, len(rendered))
    if workers < 2 or len(rendered) < PARALLEL_THRESHOLD:
        return [format_python(text, line_length) for text in rendered]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    methods = multiprocessing.get_all_start_methods()
    # fork: the workers start with the templates already loaded.
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    chunk = max(1, len(rendered) // (workers * 4))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        widths = [line_length] * len(rendered)
        return list(pool.map(format_python, rendered, widths, chunksize=chunk))
