"""Model in, Python source out: one typed module per machine, plus the package ``__init__``.

The templates (``templates/*.jinja``) only place values that this module prepared: every name
from YAML reaches them either as ``repr()`` of the string (a literal) or as an identifier made
by ``smc.compiler.names`` and checked with ``str.isidentifier()``. Jinja2 runs with
``StrictUndefined`` and no autoescaping.

Every module is in black's style at the line length of the user's own formatter (black's,
else ruff's, read by ``config.formatter_line_length``; 88 by default). The templates are
written in it with every fixed line at most 79 columns, data literals are laid out as black
lays them out at that width (``layout()``), and a string too long for its line is split into
implicitly concatenated pieces in parentheses (a layout black and ``ruff format`` both keep),
so no line is longer than the width and the module needs no ``noqa``. A module whose every
line fits is already what black would make of it and is used as rendered; any other module (a
name too long for one line, say, or a line length under 79) goes through black in-process.
black is the judge either way: the tests run it over the examples, the corpus and random
machines with hostile names and assert it changes nothing
(``tests/compiler/test_codegen_format.py``), and run black, ``ruff format`` and ``ruff check``
on modules built in fresh projects at several line lengths
(``tests/compiler/test_codegen_tools.py``). Skipping
black where it would change nothing is what makes a cold build of a hundred machines take
about a second instead of seven (black spends ~0.3 ms a line only to parse a module).
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smc.compiler import commands, names
from smc.compiler.config import DEFAULT_LINE_LENGTH
from smc.compiler.model import Machine
from smc.compiler.resources import data_dir

if TYPE_CHECKING:
    import jinja2

#: Bumped when the generated code's shape changes; part of every output's hash.
CODEGEN_VERSION = "2"


class CodegenError(Exception):
    """The model cannot be compiled (the checker should have reported why)."""


@cache
def templates_dir() -> Path:
    return data_dir("templates")


@cache
def _environment() -> jinja2.Environment:
    # Imported here, not at the top: a no-op rebuild renders nothing and should not pay for
    # importing Jinja2 and black.
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env


@cache
def templates_digest() -> str:
    """A hash of the template set, so a template change marks every output stale."""
    digest = hashlib.sha256(CODEGEN_VERSION.encode())
    for path in sorted(templates_dir().glob("*.jinja")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """YAML data reduced to what a Python literal can hold (dates, sets... become strings)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(str(v) for v in value)
    return str(value)


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
    """A Python literal for plain data; strings always through ``pystr()`` (``repr()``)."""
    value = _plain(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{pystr(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, str):
        return pystr(value)
    return repr(value)


# ---- black's layout, where a line depends on the names ---------------------------------
#
# Data literals are laid out as black lays them out: on one line if it fits, else one item per
# line with a trailing comma, recursively; an assignment too long for a line gets its value in
# parentheses on the next (``assignment()``). Everything else in a module is template text in
# black's style. A line these rules cannot place (say, an event name so long that a call must
# be split) is left too long, and ``in_black_style`` sends that module to black.


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


@dataclass(frozen=True)
class Text:
    """A string constant, written ``pystr(value)``; one too long for its line is split
    (``layout``)."""

    value: str


Node = str | Seq | Text


def data_node(value: Any) -> Node:
    """Plain data as a layout node (strings through ``pystr()``, as in ``literal()``)."""
    value = _plain(value)
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


def flat(node: Node) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, Text):
        return pystr(node.value)
    inner = ", ".join(prefix + flat(value) for prefix, value in map(_split_item, node.items))
    return node.open + inner + ("," if node.one_tuple else "") + node.close


def layout(prefix: str, node: Node, suffix: str, indent: int, width: int) -> list[str]:
    """``prefix + node + suffix`` as lines at ``indent``, the way black splits them at
    ``width`` columns."""
    pad = " " * indent
    line = pad + prefix + flat(node) + suffix
    if black_width(line) <= width or isinstance(node, str):
        return [line]
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


def entry(prefix: str, node: Node, width: int) -> str:
    """One ``key: value,`` line (or lines) of a class-level dict, at the template's indent."""
    return "\n".join(layout(prefix, node, ",", 8, width))


def assignment(indent: int, target: str, value: str, width: int) -> str:
    """``target = value`` at ``indent``. Too long for a line, black puts the value in
    parentheses on a line of its own when it fits there; otherwise it splits the value
    further, which is left to black (``in_black_style`` sees the line too long)."""
    pad = " " * indent
    line = f"{pad}{target} = {value}"
    wrapped = f"{pad}    {value}"
    if black_width(line) <= width or black_width(wrapped) > width:
        return line
    return f"{pad}{target} = (\n{wrapped}\n{pad})"


def doc_literal(text: str) -> str:
    """``repr(text)`` made safe inside a triple-double-quoted docstring."""
    return repr(text).replace('"', '\\"')


def _hash_values(values: Mapping[str, Any]) -> str:
    payload = json.dumps(values, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(f"{payload}\0{templates_digest()}".encode()).hexdigest()


def header_path(path: str) -> str:
    """``path`` made safe for the one-line header comment: a file name holding a newline or
    another unprintable character is written with Python escapes, so it cannot end the
    comment and start code."""
    return path if path.isprintable() else repr(path)[1:-1]


@dataclass(frozen=True)
class ModuleNames:
    module: str
    class_name: str


#: Names every generated module binds at the top level besides the machine class: a class
#: with one of these names gets the suffix ``Machine`` (machine ``state`` -> ``StateMachine``).
MODULE_LEVEL_NAMES = frozenset(
    {
        "Any",
        "Callable",
        "ClassVar",
        "Event",
        "EventName",
        "Final",
        "IllegalTransition",
        "Listener",
        "Literal",
        "Mapping",
        "Never",
        "State",
        "StateName",
        "TypeAlias",
    }
)


def module_names(machine: Machine) -> ModuleNames:
    module, class_name = names.module(machine.name), names.pascal(machine.name)
    if module is None or class_name is None:
        raise CodegenError(f"machine name {machine.name!r} cannot become a Python identifier")
    if class_name in MODULE_LEVEL_NAMES:
        class_name += "Machine"
    return ModuleNames(module, class_name)


def _ident(convert: Any, name: str) -> str:
    ident = convert(name)
    if ident is None or not ident.isidentifier():
        raise CodegenError(f"name {name!r} cannot become a Python identifier")
    return str(ident)


def machine_context(
    machine: Machine, source_path: str, line_length: int = DEFAULT_LINE_LENGTH
) -> dict[str, Any]:
    """What ``machine.py.jinja`` renders: prepared literals and checked identifiers only.

    Its ``source_hash`` is the sha256 of everything the module is made from: the normalised
    model as the template sees it (names, table, actions and where they were written, the
    header path, the line length) and the template set. Same hash, same module; the
    ``# smc-source-sha256:`` header holds it."""
    values = _template_values(machine, source_path, line_length)
    values["source_hash"] = _hash_values(values)
    return values


def _names_alias(alias: str, values: Sequence[str], width: int) -> str:
    """``alias: TypeAlias = Literal[...]`` of ``values`` (``Never`` when there are none)."""
    target = f"{alias}: TypeAlias = "
    if not values:
        return target + "Never"
    node = Seq("Literal[", "]", tuple(pystr(v) for v in values), subscript=True)
    return "\n".join(layout(target, node, "", 0, width))


def _template_values(machine: Machine, source_path: str, width: int) -> dict[str, Any]:
    state_member = {s.name: _ident(names.member, s.name) for s in machine.states}
    event_member = {e.name: _ident(names.member, e.name) for e in machine.events}
    transitions = tuple_node(
        [
            tuple_node(
                [
                    f"State.{state_member[edge.source]}",
                    f"Event.{event_member[edge.event]}",
                    f"State.{state_member[edge.target]}",
                ]
            )
            for edge in machine.table
        ]
    )
    timeout_of = {e.name: e.timeout for e in machine.events}
    timers: dict[str, list[str]] = {}
    for edge in machine.table:
        seconds = timeout_of[edge.event]
        if seconds is not None:
            timers.setdefault(state_member[edge.source], []).append(
                f"({seconds!r}, Event.{event_member[edge.event]})"
            )
    finals = [f"State.{state_member[name]}" for name in machine.final_states]
    class_name = module_names(machine).class_name
    typing_names = ["Any", "ClassVar", "Final", "Literal", "TypeAlias"]
    if not machine.events:
        typing_names.insert(4, "Never")
    return {
        "line_length": width,
        "typing_import_line": "\n".join(
            layout("from typing import ", ", ".join(typing_names), "", 0, width)
        ),
        "state_name_line": _names_alias("StateName", [s.name for s in machine.states], width),
        "event_name_line": _names_alias("EventName", [e.name for e in machine.events], width),
        "state_alias_line": assignment(0, "State", f"{class_name}.State", width),
        "event_alias_line": assignment(0, "Event", f"{class_name}.Event", width),
        "transitions_alias_line": assignment(
            0, "_TRANSITIONS: Final", f"{class_name}.TRANSITIONS", width
        ),
        "source_path": header_path(source_path),
        "machine_name_literal": pystr(machine.name),
        "machine_name_doc": doc_literal(machine.name),
        "class_name": class_name,
        "all_names": "["
        + ", ".join(
            pystr(n) for n in sorted([class_name, "Event", "EventName", "State", "StateName"])
        )
        + "]",
        "style_literal": pystr(machine.style),
        "contract": machine.style == "contract",
        "initial_constant_line": assignment(
            4,
            "INITIAL_STATE: ClassVar[State]",
            f"State.{state_member[machine.initial_state]}",
            width,
        ),
        "initial_state_line": assignment(
            8,
            "self._state: State",
            f"State.{state_member[machine.initial_state]} if state is None else State(state)",
            width,
        ),
        "finals_line": "\n".join(
            layout(
                "FINAL_STATES: ClassVar[frozenset[State]] = ",
                (
                    Seq("frozenset(", ")", (Seq("{", "}", tuple(finals)),))
                    if finals
                    else "frozenset()"
                ),
                "",
                4,
                width,
            )
        ),
        "states": [
            {
                "member": state_member[s.name],
                "member_line": assignment(8, state_member[s.name], pystr(s.name), width),
                "has_actions": bool(s.actions),
                "actions_entry": entry(
                    f"State.{state_member[s.name]}: ",
                    tuple_node([data_node(commands.action_data(a)) for a in s.actions]),
                    width,
                ),
                "action_sources_entry": entry(
                    f"State.{state_member[s.name]}: ",
                    tuple_node(
                        [Text(f"{source_path}:{a.pos.line}:{a.pos.col}") for a in s.actions]
                    ),
                    width,
                ),
            }
            for s in machine.states
        ],
        "events": [
            {
                "member": event_member[e.name],
                "method": _ident(names.method, e.name),
                "on_line": "\n".join(
                    layout(
                        f"_ON_{event_member[e.name]}: Final[dict[str, State]] = ",
                        Seq("_BY_EVENT[", "]", (f"Event.{event_member[e.name]}",)),
                        "",
                        0,
                        width,
                    )
                ),
                "member_line": assignment(8, event_member[e.name], pystr(e.name), width),
                "method_entry": entry(
                    f"Event.{event_member[e.name]}: ", pystr(_ident(names.method, e.name)), width
                ),
                "literal_doc": doc_literal(e.name),
                "has_context_map": bool(e.context_map),
                "context_map_entry": entry(
                    f"Event.{event_member[e.name]}: ", data_node(dict(e.context_map)), width
                ),
            }
            for e in machine.events
        ],
        "transitions_lines": "\n".join(
            layout(
                "TRANSITIONS: ClassVar[tuple[tuple[State, Event, State], ...]] = ",
                transitions,
                "",
                4,
                width,
            )
        ),
        "groups": [
            {
                "entry": entry(
                    f"{pystr(g.name)}: ",
                    tuple_node([f"State.{state_member[s]}" for s in g.states if s in state_member]),
                    width,
                ),
            }
            for g in machine.groups
        ],
        "timeout_entries": [
            entry(f"State.{source}: ", tuple_node(items), width) for source, items in timers.items()
        ],
    }


def format_python(source: str, line_length: int = DEFAULT_LINE_LENGTH) -> str:
    import black
    from black.mode import Mode, TargetVersion

    return black.format_str(
        source, mode=Mode(line_length=line_length, target_versions={TargetVersion.PY311})
    )


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


def render_machine(
    machine: Machine, source_path: str, line_length: int = DEFAULT_LINE_LENGTH
) -> str:
    """The module for ``machine`` before formatting (``finish_module`` formats it)."""
    return render_context(machine_context(machine, source_path, line_length))


def render_context(context: Mapping[str, Any]) -> str:
    """The module for a ``machine_context()`` before formatting; a build that already holds
    the context (for its ``source_hash``) renders from it instead of preparing it again."""
    template = _environment().get_template("machine.py.jinja")
    return template.render(context)


def finish_module(rendered: str, line_length: int = DEFAULT_LINE_LENGTH) -> str:
    """A rendered module in black's style: as rendered when every line fits (it is black's
    output already, see ``in_black_style``), else formatted by black. A plain function of
    strings, so a build can run it in worker processes."""
    if in_black_style(rendered, line_length):
        return rendered
    return format_python(rendered, line_length)


def generate_machine(
    machine: Machine, source_path: str, line_length: int = DEFAULT_LINE_LENGTH
) -> str:
    """The generated module for ``machine``; ``source_path`` goes in the header."""
    return finish_module(render_machine(machine, source_path, line_length), line_length)


def _init_classes(machines: Sequence[Machine]) -> list[tuple[str, str]]:
    return sorted((module_names(m).module, module_names(m).class_name) for m in machines)


def init_hash(
    machines: Sequence[Machine], root: str, line_length: int = DEFAULT_LINE_LENGTH
) -> str:
    """What the package ``__init__`` depends on: the templates, the inputs, the line length
    and each machine's module and class name."""
    digest = hashlib.sha256(templates_digest().encode())
    digest.update(root.encode() + b"\0" + str(line_length).encode() + b"\0")
    for module, class_name in _init_classes(machines):
        digest.update(f"{module}\0{class_name}\0".encode())
    return digest.hexdigest()


def generate_init(
    machines: Sequence[Machine], root: str, line_length: int = DEFAULT_LINE_LENGTH
) -> str:
    """The package ``__init__``: imports and re-exports every machine class. ``root`` names
    the inputs in the docstring."""
    template = _environment().get_template("__init__.py.jinja")
    classes = _init_classes(machines)
    exports = Seq("[", "]", tuple(pystr(class_name) for _, class_name in classes))
    text = template.render(
        classes=classes,
        all_line="\n".join(layout("__all__ = ", exports, "", 0, line_length)),
        source_hash=init_hash(machines, root, line_length),
        root_doc=doc_literal(root),
    )
    return finish_module(text, line_length)
