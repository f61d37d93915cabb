"""The expression language of ``when:`` guards and ``expr:`` assignments (docs/language.md,
"Expressions").

An expression is Python expression syntax restricted by an allowlist. The text is parsed with
:mod:`ast` (parsing only: nothing in this module evaluates, executes or compiles code), every
node is checked against the allowlist and the :class:`Scope` (the names, fields and states
the expression may use, with their types), and what passes becomes a small tree of this
module's own node classes (:data:`Node`). :func:`to_python` writes the generated module's
code from that tree alone: each node class has one fixed template, and the only text taken
from the expression is literals (through ``repr``) and names the scope declared, rewritten
to ``ctx.<field>``, ``payload["<field>"]``, ``job["<field>"]`` and
``self.in_state(State.<MEMBER>)``. A construct outside the allowlist has no node class, so
it cannot reach the generated code: there is nothing to escape and nothing to sanitise.

Problems (:class:`Problem`) carry character offsets into the expression text; the caller
places them in the YAML file.

The runtime never imports this module: generated code holds the compiled expressions.
"""

from __future__ import annotations

import ast
import difflib
import keyword
import math
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, TypeAlias

from smc.compiler.pylayout import pystr
from smc.machine import SCXML_PROCESSOR, SCXML_PROCESSOR_SHORT, ProcessorType

#: Longer text is refused before it is parsed: a guard that needs more belongs in a named
#: guard (``guard:``), and the cap bounds the work of parsing and checking.
MAX_LENGTH = 1000
#: How deeply nodes may nest. The checker and the emitter recurse once per level, so this
#: keeps them far from Python's recursion limit whatever the text.
MAX_DEPTH = 64

#: The names the generated code uses; an expression's own names are always qualified by
#: one of them, so no expression name can collide with anything in the generated module.
CONTEXT_VAR = "ctx"
PAYLOAD_VAR = "payload"
JOB_VAR = "job"
SELF_VAR = "self"
STATE_ENUM = "State"

#: Names an expression gives a meaning of its own: a context field so named cannot be read
#: by an expression (the schema of ``context:`` should refuse them).
RESERVED_NAMES = frozenset({"payload", "job", "event", "machine", "len", "In"})
#: The fields of ``event``, the event being handled.
EVENT_FIELDS = ("name", "data", "type", "send_id")
#: The fields of ``machine``: its name (a constant) and its instance's session id.
MACHINE_FIELDS = ("name", "session_id", "io_processors", "processor_type")

# ---- types --------------------------------------------------------------------------------

#: JSON Schema's simple types (``integer`` is also a ``number``).
Kind = Literal["integer", "number", "string", "boolean", "null", "array", "object"]
KINDS: tuple[Kind, ...] = ("integer", "number", "string", "boolean", "null", "array", "object")
_NUMERIC: frozenset[Kind] = frozenset({"integer", "number"})
_KIND_WORDS: Mapping[Kind, str] = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "a boolean",
    "null": "null",
    "array": "a list",
    "object": "an object",
}


@dataclass(frozen=True)
class ValueType:
    """What a value can be, as far as the schemas say: a set of JSON Schema types (empty when
    nothing is known: any value), an object's declared fields, a list's item type and, for
    a literal or an ``enum``/``const`` of plain values, the only values it can have."""

    kinds: frozenset[Kind] = frozenset()
    #: The declared fields (JSON Schema ``properties``), when the value may be an object and
    #: its schema lists them; ``None`` when it lists none (then no field can be checked).
    fields: Mapping[str, Field] | None = field(default=None, hash=False)
    #: A list's item type (JSON Schema ``items``); ``None`` when not known.
    items: ValueType | None = None
    #: The only values it can have, as :func:`value_key` keys: a literal's one value, an
    #: ``enum``'s or ``const``'s when they are all plain (no list or object); ``None`` when
    #: the value is not limited to a few.
    values: frozenset[tuple[str, Any]] | None = None
    #: Whether its null comes only from ``event.name`` or ``event.type`` read in a state's
    #: actions, which the class writes as a constant in each of the actions' variants (one
    #: per event that enters the state): a string in every variant but the start's, which
    #: only a state the machine starts in has (``Scope.at_start``).
    null_by_variant: bool = False

    @property
    def known(self) -> bool:
        return bool(self.kinds)

    def describe(self) -> str:
        """``"an integer"``, ``"a string or null"``, ``"a value of any type"``."""
        if not self.kinds:
            return "a value of any type"
        # null last: "a string or null"
        order = [kind for kind in KINDS if kind != "null"] + ["null"]
        return " or ".join(_KIND_WORDS[kind] for kind in order if kind in self.kinds)

    def describe_exactly(self) -> str:
        """:meth:`describe` with the few values it can have (``"one of 'fast', 'slow'"``)
        and a list's items (``"a list of integers"``): what an assignment's value and its
        location are told apart by."""
        if self.values is not None:
            return _one_of(self.values)
        if self.kinds == {"array"} and self.items is not None and self.items.known:
            items = self.items
            if items.values is not None:
                return "a list of " + _one_of(items.values).removeprefix("one of ")
            order = [kind for kind in KINDS if kind != "null"] + ["null"]
            return "a list of " + " or ".join(_ITEM_WORDS[k] for k in order if k in items.kinds)
        return self.describe()


@dataclass(frozen=True)
class Field:
    """A declared field of an object: its type, and whether the schema requires it (a field
    that may be missing reads as null)."""

    type: ValueType
    required: bool = True


_ITEM_WORDS: Mapping[Kind, str] = {
    "integer": "integers",
    "number": "numbers",
    "string": "strings",
    "boolean": "booleans",
    "null": "nulls",
    "array": "lists",
    "object": "objects",
}


def _one_of(values: frozenset[tuple[str, Any]]) -> str:
    """``'fast'``, ``one of 'fast', 'slow'``: the values as an expression writes them (eight
    at most, sorted, so the message is the same on every run)."""
    words = sorted(repr(value) for _, value in values)
    if len(words) == 1:
        return words[0]
    shown = ", ".join(words[:8]) + (f", ... ({len(words)} values)" if len(words) > 8 else "")
    return "one of " + shown


def value_key(value: Any) -> tuple[str, Any] | None:
    """How a plain value (null, a boolean, a number, a string) is kept in
    :attr:`ValueType.values`: with a kind word, so ``True`` and ``1`` stay apart while ``1``
    and ``1.0`` (one JSON number) are one; ``None`` for a list or an object."""
    if value is None or isinstance(value, bool | str):
        return (_value_kind(value), value)
    if isinstance(value, int | float):
        return ("number", value)
    return None


def _values_of(values: list[Any]) -> frozenset[tuple[str, Any]] | None:
    keys = [value_key(value) for value in values]
    if not keys or any(key is None for key in keys):
        return None
    return frozenset(key for key in keys if key is not None)


def literal(value: Any) -> ValueType:
    """The type of the literal ``value`` (a plain value): its kind, and that one value."""
    return ValueType(frozenset({_value_kind(value)}), values=_values_of([value]))


ANY = ValueType()
BOOLEAN = ValueType(frozenset({"boolean"}))
INTEGER = ValueType(frozenset({"integer"}))
NUMBER = ValueType(frozenset({"number"}))
STRING = ValueType(frozenset({"string"}))
NULL = ValueType(frozenset({"null"}))


def schema_type(schema: Any) -> ValueType:
    """The :class:`ValueType` of a JSON Schema (a mapping; anything else is any value).

    Read: ``type`` (a name or a list), else the types of ``enum``/``const`` values, else
    ``object`` when ``properties`` is given; ``anyOf``/``oneOf`` as the union of their
    branches; ``properties`` with ``required``; ``items`` when it is one schema. Everything
    else (``default``, formats, bounds) does not change what an expression may do."""
    if not isinstance(schema, Mapping):
        return ANY
    kinds: set[Kind] = set()
    values: frozenset[tuple[str, Any]] | None = None
    if "const" in schema:
        values = _values_of([schema["const"]])
    elif isinstance(schema.get("enum"), list):
        values = _values_of(schema["enum"])
    declared = schema.get("type")
    names = [declared] if isinstance(declared, str) else declared
    if isinstance(names, list):
        kinds.update(kind for kind in KINDS if kind in names)
    elif "const" in schema:
        kinds.add(_value_kind(schema["const"]))
    elif isinstance(schema.get("enum"), list):
        kinds.update(_value_kind(value) for value in schema["enum"])
    branches = schema.get("anyOf", schema.get("oneOf"))
    if not kinds and isinstance(branches, list) and branches:
        types = [schema_type(branch) for branch in branches]
        if any(not branch.known for branch in types):
            return ANY
        merged = types[0]
        for branch in types[1:]:
            merged = union(merged, branch)
        return merged
    properties = schema.get("properties")
    if not kinds and isinstance(properties, Mapping):
        kinds.add("object")
    fields: Mapping[str, Field] | None = None
    if "object" in kinds and isinstance(properties, Mapping):
        required = schema.get("required")
        needed = {str(name) for name in required} if isinstance(required, list) else set()
        fields = MappingProxyType(
            {
                str(name): Field(schema_type(sub), str(name) in needed)
                for name, sub in properties.items()
            }
        )
    items = schema.get("items")
    item_type = schema_type(items) if "array" in kinds and isinstance(items, Mapping) else None
    return ValueType(frozenset(kinds), fields, item_type, values)


def _value_kind(value: Any) -> Kind:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def union(a: ValueType, b: ValueType) -> ValueType:
    """A value that is one of ``a`` or ``b`` (the branches of a conditional, ``x or y``)."""
    if not a.known or not b.known:
        return ANY
    fields = a.fields if a.fields is not None else b.fields
    # A list of unknown items (an empty literal: none at all) takes the other's item type.
    items = b.items if a.items is None else a.items if b.items is None else union(a.items, b.items)
    values = a.values | b.values if a.values is not None and b.values is not None else None
    kinds = a.kinds | b.kinds
    by_variant = "null" in kinds and all(
        side.null_by_variant for side in (a, b) if "null" in side.kinds
    )
    return ValueType(kinds, fields, items, values, by_variant)


def _nullable(value: ValueType) -> ValueType:
    if not value.known:
        return value
    values = value.values | {("null", None)} if value.values is not None else None
    return ValueType(value.kinds | {"null"}, value.fields, value.items, values)


def _apart(a: ValueType, b: ValueType) -> bool:
    """Whether ``a`` and ``b`` are each limited to a few values (a literal, an ``enum`` or
    ``const``) and share none: they can never be equal. Not with a fraction among them:
    mypy and pyright have no literal type of a float (``1 == 1.5`` is no error to them)."""
    if a.values is None or b.values is None or a.values & b.values:
        return False
    return not any(isinstance(value, float) for _, value in a.values | b.values)


def _never_meet(a: ValueType, b: ValueType, a_node: ast.expr, b_node: ast.expr) -> bool:
    """Whether comparing ``a`` with ``b`` (or with ``b``'s items) is one mypy or pyright
    refuses in the generated code: both typed by their values (an ``enum`` or ``const``
    field is ``Literal[...]``), which they share none of. Two literals too (``0 == 1``:
    the class writes them as they are, and both refuse it)."""
    return _apart(a, b) and _typed_exactly(a_node) and _typed_exactly(b_node)


def _typed_exactly(node: ast.expr) -> bool:
    """Whether mypy or pyright types ``node`` by its values, as the checker does: a literal
    (``'x'``, ``-1``), a read of a field (an ``enum``/``const`` field is ``Literal[...]``),
    or a conditional or ``and``/``or`` of such (pyright types ``0 if ok else 2`` as
    ``Literal[0, 2]``, and mypy ``0 if ok else 0`` as ``Literal[0]``: each refuses comparing
    it with ``1``). A list display both widen to its kind."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return _typed_exactly(node.operand)
    if isinstance(node, ast.IfExp):
        return _typed_exactly(node.body) and _typed_exactly(node.orelse)
    if isinstance(node, ast.BoolOp):
        return all(_typed_exactly(value) for value in node.values)
    return isinstance(node, ast.Constant | ast.Name | ast.Attribute | ast.Subscript)


def _event_read(node: ast.expr) -> bool:
    """Whether ``node`` is ``event.<field>``: a constant where the class runs it, so a
    comparison of it alone with a value limited to others is decided where the module is
    built (:func:`_decided`), not refused."""
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "event"
    )


def _numeric_view(kinds: frozenset[Kind]) -> frozenset[str]:
    """Kinds with ``integer`` read as ``number``, to ask whether two values can be equal."""
    return frozenset("number" if kind == "integer" else kind for kind in kinds)


def fits(value: ValueType, target: ValueType) -> bool:
    """Whether every value of type ``value`` is one ``target`` accepts (unknown types fit):
    its kinds, a list's items (when both are known), and the values of an ``enum`` or
    ``const`` (the generated class types such a field ``Literal[...]``: only a value known
    to be one of them fits)."""
    if not value.known or not target.known:
        return True
    kinds_fit = all(
        kind in target.kinds or (kind == "integer" and "number" in target.kinds)
        for kind in value.kinds
    )
    if not kinds_fit:
        return False
    values = value.values
    if values is None and value.kinds <= {"boolean", "null"}:
        # a boolean is one of two values (`not flag` fits `enum: [true, false]`)
        values = _values_of([v for v in (True, False, None) if _value_kind(v) in value.kinds])
    if target.values is not None and (values is None or not values <= target.values):
        return False
    if value.items is not None and target.items is not None:
        items = value.items
        if items.null_by_variant and len(items.kinds) > 1:
            # An item that is null only in a variant the class never has (`[event.type]` in
            # the actions of a state the machine does not start in, which the class compiles
            # once per event, each a constant) is taken for its other kinds; one that is null
            # (`[None]`), or may be (`[payload.x]` of an optional `x`, a nullable field, the
            # event's type in a state the machine starts in), is not: mypy refuses it too.
            values = items.values - {("null", None)} if items.values is not None else None
            items = replace(items, kinds=items.kinds - {"null"}, values=values)
        return fits(items, target.items)
    return True


# ---- scope --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What an expression may name: the context fields (bare names), the event's payload
    (``payload.<field>``; ``None`` when there is no payload schema), the job's data
    (``job.<field>``; ``None`` when no job data schema applies) and the states ``In()`` may
    name. ``event`` is the transition's event, for messages."""

    # Mappings are left out of the hash (they have none); equality still compares them.
    context: Mapping[str, ValueType] = field(hash=False)
    states: frozenset[str] = frozenset()
    payload: ValueType | None = None
    job: ValueType | None = None
    event: str | None = None
    #: The actions of a state the machine enters when it starts: there, in the variant of its
    #: actions for the start, no event is handled yet and the class writes ``None`` for
    #: ``event.name`` and ``event.type`` (``ValueType.null_by_variant`` is not set).
    at_start: bool = False

    @classmethod
    def from_schemas(
        cls,
        *,
        context: Mapping[str, Any] | None = None,
        states: Iterable[str] = (),
        payload: Any = None,
        job: Any = None,
        event: str | None = None,
    ) -> Scope:
        """A scope from schemas as written in the machine: ``context`` maps each field to its
        schema (``{type: integer, default: 0}``), ``payload`` and ``job`` are JSON Schemas of
        objects (or ``None``)."""
        return cls(
            context=MappingProxyType(
                {str(name): schema_type(spec) for name, spec in (context or {}).items()}
            ),
            states=frozenset(states),
            payload=None if payload is None else schema_type(payload),
            job=None if job is None else schema_type(job),
            event=event,
        )


# ---- problems -----------------------------------------------------------------------------

#: syntax: not one expression (or too long, too deep); construct: outside the allowlist;
#: name: an unknown name, field or state; type: a mismatch the schemas show.
ProblemKind = Literal["syntax", "construct", "name", "type"]


class Problem(NamedTuple):
    """Why an expression is refused; ``start``/``end`` are character offsets into its text
    (0-based, end exclusive)."""

    kind: ProblemKind
    message: str
    start: int
    end: int
    hint: str = ""


class _Refused(Exception):
    """Stops the checker at a problem; the problem is already recorded."""


# ---- the checked tree ---------------------------------------------------------------------

CompareOp = Literal["==", "!=", "<", "<=", ">", ">=", "in", "not in", "is", "is not"]
ArithOp = Literal["+", "-", "*", "/", "//", "%"]


@dataclass(frozen=True)
class Const:
    value: int | float | str | bool | None


@dataclass(frozen=True)
class ContextField:
    """A context field, by its name in the machine."""

    name: str


@dataclass(frozen=True)
class Root:
    """The whole event payload or job data."""

    root: Literal["payload", "job"]


@dataclass(frozen=True)
class Item:
    """A field of an object (``key`` a string; ``optional`` when the schema does not require
    it, read with ``.get``) or an element of a list or string (``key`` an integer)."""

    base: Node
    key: str | int
    optional: bool = False


@dataclass(frozen=True)
class EventName:
    """``event.name``: the name of the event being handled, which the code generator knows
    where each expression runs (``Names.event``) and writes as a constant."""


@dataclass(frozen=True)
class EventType:
    """``event.type``: how the event being handled came (SCXML's ``_event.type``:
    ``event_type``), which the code generator knows where each expression runs
    (``Names.event_internal``) and writes as a constant."""


@dataclass(frozen=True)
class EventSendId:
    """``event.send_id``: the id the event being handled carries (SCXML's ``_event.sendid``),
    a string or None. Only an event a ``raise`` with ``id_location`` queued carries one (the
    id that raise drew; ``Names.carries``): the class keeps it while that event is handled.
    Any other event carries none: one given to ``fire``, a raise without ``id_location``, a
    done event, and every event of a machine with no such raise (then it is None, a
    constant)."""


@dataclass(frozen=True)
class EventValue:
    """``event`` as a value: an object of its fields ``name``, ``type`` and ``data`` (the
    payload where one applies, else None), made where it is read (SCXML's ``_event``)."""

    with_payload: bool


def event_type(event: str | None, internal: bool) -> str | None:
    """``event.type`` of ``event``: ``'external'`` for an event given to ``fire`` (from
    outside or sent by the machine), ``'internal'`` for one a ``raise`` queued, and
    ``'platform'`` for one the machine queued itself: the chart core's ``done.state.<id>``,
    and ``error.<...>`` (the events SCXML's processor raises, which an import maps onto
    raises); None where no event is handled yet."""
    if event is None:
        return None
    if not internal:
        return "external"
    platform = event == "error" or event.startswith(("error.", "done."))
    return "platform" if platform else "internal"


@dataclass(frozen=True)
class MachineField:
    """``machine.name`` (the machine's name, a constant of the generated module),
    ``machine.session_id`` (the instance's session id, ``m.session_id``) or
    ``machine.io_processors`` (SCXML's ``_ioprocessors``: each event I/O processor the
    instance is reached through, by type, with its ``location``: an object made of the
    session id, ``IO_PROCESSOR_TYPES``) or ``machine.processor_type`` (the type of the
    processor the machine sends and receives through, SCXML's: ``smc.ProcessorType``, its
    URI, equal to its short form ``'scxml'`` too; SCXML's ``_event.origintype``)."""

    field: Literal["name", "session_id", "io_processors", "processor_type"]


#: The event I/O processor types ``machine.io_processors`` holds: SCXML's event processor
#: (C.1), by its URI and by its short name. The class has that one only: it sends only to
#: itself, at ``IO_LOCATION_PREFIX`` + its session id.
IO_PROCESSOR_TYPES = (SCXML_PROCESSOR, SCXML_PROCESSOR_SHORT)
IO_LOCATION_PREFIX = "#_scxml_"
#: ``machine.io_processors``'s type: an object with a field per processor type, each an
#: object with its ``location`` (a string).
IO_PROCESSORS = ValueType(
    frozenset({"object"}),
    fields={
        kind: Field(
            ValueType(frozenset({"object"}), fields={"location": Field(STRING)}), required=True
        )
        for kind in IO_PROCESSOR_TYPES
    },
)


@dataclass(frozen=True)
class Length:
    arg: Node


@dataclass(frozen=True)
class InState:
    state: str


@dataclass(frozen=True)
class Unary:
    op: Literal["not", "-", "+"]
    operand: Node


@dataclass(frozen=True)
class Arith:
    op: ArithOp
    left: Node
    right: Node
    #: For ``*`` and ``%``, which operands the checker could not type (a schema without
    #: ``type``): their values are checked to be numbers where the expression runs, as the
    #: checker would have. Else a string or list from job data repeats (``job.s * job.n``)
    #: or formats (``job.f % 1`` with ``'%999999999d'``) into as much memory as it asks for.
    numbers_only: tuple[bool, bool] = (False, False)


@dataclass(frozen=True)
class Logic:
    op: Literal["and", "or"]
    values: tuple[Node, ...]


@dataclass(frozen=True)
class Comparison:
    left: Node
    ops: tuple[CompareOp, ...]
    rights: tuple[Node, ...]
    #: The only values each operand can have (left first; for the right of `in`, its
    #: items'), as :attr:`ValueType.values`; ``None`` where not limited. A comparison of
    #: ``event.name`` or ``event.type``, constants in the class, with an ``enum`` field is
    #: decided with them where the module is built (mypy refuses `"go" == <Literal>`).
    domains: tuple[frozenset[tuple[str, Any]] | None, ...] = ()
    #: Whether each operand may be null (unknown types may): ``event.send_id``,
    #: ``event.name`` where no event is handled yet, constants None in the class, compared
    #: with a value that never is are decided too (pyright refuses `None == <str>`).
    nullable: tuple[bool, ...] = ()


@dataclass(frozen=True)
class Conditional:
    test: Node
    body: Node
    orelse: Node


@dataclass(frozen=True)
class SequenceLiteral:
    """A list or tuple literal (both a list: a JSON array); ``spread`` marks the items that
    are lists whose items it holds in their place (``['x'] + picks`` is ``['x', *picks]``:
    see :func:`_joined`)."""

    items: tuple[Node, ...]
    spread: tuple[bool, ...] = ()


Node: TypeAlias = (
    Const
    | ContextField
    | Root
    | Item
    | EventName
    | EventType
    | EventSendId
    | EventValue
    | MachineField
    | Length
    | InState
    | Unary
    | Arith
    | Logic
    | Comparison
    | Conditional
    | SequenceLiteral
)


@dataclass(frozen=True)
class Expression:
    """A checked expression: its text, its tree, its type, and what it reads."""

    text: str
    node: Node
    type: ValueType
    context_fields: frozenset[str] = frozenset()
    uses_payload: bool = False
    uses_job: bool = False
    states: frozenset[str] = frozenset()
    #: whether it reads ``event.name`` (the code generator must know the event).
    uses_event: bool = False
    #: whether it reads ``event.type`` (the code generator must know how the event came).
    uses_event_type: bool = False
    #: whether it reads ``machine.session_id``.
    uses_session: bool = False
    #: whether it reads ``machine.processor_type`` (the module imports ``ProcessorType``).
    uses_processor_type: bool = False


# ---- parsing and checking -----------------------------------------------------------------


def parse_expression(
    text: str, *, scope: Scope, expect: ValueType | None = None
) -> Expression | list[Problem]:
    """Check an ``expr:`` (or any expression) against ``scope``; with ``expect``, its value
    must fit that type (an assignment's location). Never raises: whatever ``text`` is, the
    result is an :class:`Expression` or its problems, in text order."""
    return _parse(text, scope, expect, guard=False)


def parse_guard(text: str, *, scope: Scope) -> Expression | list[Problem]:
    """Check a ``when:`` condition: an expression that is true or false (a comparison, a
    boolean operator, ``In()``, a boolean field)."""
    return _parse(text, scope, BOOLEAN, guard=True)


def _parse(
    text: str, scope: Scope, expect: ValueType | None, *, guard: bool
) -> Expression | list[Problem]:
    if len(text) > MAX_LENGTH:
        return [
            Problem(
                "syntax",
                f"the expression is longer than {MAX_LENGTH} characters",
                MAX_LENGTH,
                len(text),
                "move the logic into a named guard (`guard:`)",
            )
        ]
    # eval() strips leading blanks; ast.parse() calls them an indent. Strip them here too.
    body = text.lstrip()
    base = len(text) - len(body)
    if not body.strip():
        return [Problem("syntax", "the expression is empty", 0, len(text))]
    positions = _Positions(body, base)
    if "\x00" in body:  # refused by the parser, with a column that differs by version
        at = text.index("\x00")
        return [Problem("syntax", "the expression holds a null character", at, at + 1)]
    tree = _parse_tree(body, positions)
    if isinstance(tree, Problem):
        return [tree]
    too_deep = _too_deep(tree.body, positions)
    if too_deep is not None:
        return [too_deep]
    checker = _Checker(text, positions, scope)
    try:
        node, value = checker.check(tree.body)
    except _Refused:
        pass  # the problems are recorded
    except RecursionError:  # not reached under MAX_DEPTH; kept so nothing can escape
        return [Problem("syntax", "the expression is nested too deeply", 0, len(text))]
    if checker.problems:
        # Sorted on every field, so the order never depends on a set's (hash seeded) order.
        return sorted(
            set(checker.problems),
            key=lambda problem: (problem.start, problem.end, problem.kind, problem.message),
        )
    if expect is not None and not fits(value, expect):
        start, end = positions.span(tree.body)
        if guard:
            message = f"a `when:` condition must be true or false; this is {value.describe()}"
            hint = "compare it (`==`, `<`, `in`, `is None`) or test it with `not`"
        else:
            message = (
                f"the value is {value.describe_exactly()}, and its location takes "
                f"{expect.describe_exactly()}"
            )
            whole = "number" in value.kinds and "integer" in expect.kinds
            hint = "use `//` for whole-number division" if whole else ""
            if expect.values is not None and fits(value, replace(expect, values=None)):
                hint = (
                    "a field with `enum` or `const` takes only those values (the generated "
                    "class types it `Literal[...]`): write one of them, choose between them "
                    "with `... if ... else ...`, or read a field declared with the same values"
                )
            items = expect.items
            if (
                items is not None
                and items.values is not None
                and fits(value, replace(expect, items=replace(items, values=None)))
            ):
                hint = (
                    "a list of `enum` or `const` values (`list[Literal[...]]`) takes only items "
                    "known to be among them: literals, or fields declared with them; a list "
                    "inside a conditional on the left of `+` is typed by its kind: join the "
                    "lists outside it (`['x'] + picks`, `picks + ['x']`)"
                )
        return [Problem("type", message, start, end, hint)]
    return Expression(
        text=text,
        node=node,
        type=value,
        context_fields=frozenset(checker.context_fields),
        uses_payload=checker.uses_payload,
        uses_job=checker.uses_job,
        states=frozenset(checker.states),
        uses_event=checker.uses_event,
        uses_event_type=checker.uses_event_type,
        uses_session=checker.uses_session,
        uses_processor_type=checker.uses_processor_type,
    )


#: Nodes ``ast`` gives a position (operators and contexts have none).
Positioned: TypeAlias = ast.expr | ast.stmt


class _Positions:
    """Character offsets into the original text from ``ast`` positions (1-based lines,
    UTF-8 byte columns) in the parsed text, which starts ``base`` characters in."""

    def __init__(self, body: str, base: int) -> None:
        self.body = body
        self.base = base
        self.length = base + len(body)
        # Python's tokenizer ends a line at \r\n, \r or \n (and nothing else).
        self.lines: list[tuple[int, str]] = []
        start = 0
        for match in re.finditer(r"\r\n|\r|\n", body):
            self.lines.append((start, body[start : match.end()]))
            start = match.end()
        self.lines.append((start, body[start:]))

    def _clamp(self, offset: int) -> int:
        return max(0, min(offset, self.length))

    def at(self, lineno: int | None, col_bytes: int | None) -> int:
        if not lineno or lineno > len(self.lines) or col_bytes is None:
            return self._clamp(self.base)
        start, line = self.lines[lineno - 1]
        chars = len(line.encode("utf-8", "surrogatepass")[:col_bytes].decode("utf-8", "ignore"))
        return self._clamp(self.base + start + chars)

    def at_char(self, lineno: int | None, col_chars: int | None) -> int:
        """For ``SyntaxError``, whose ``offset`` counts characters from 1."""
        if not lineno or lineno > len(self.lines):
            return self._clamp(self.base)
        start, _ = self.lines[lineno - 1]
        return self._clamp(self.base + start + max((col_chars or 1) - 1, 0))

    def span(self, node: Positioned) -> tuple[int, int]:
        start = self.at(node.lineno, node.col_offset)
        end = self.at(node.end_lineno, node.end_col_offset)
        return start, max(start, end)


#: Statements named when the text parses as one: "import statements are not allowed".
_STATEMENT_WORDS: Mapping[type[ast.stmt], str] = {
    ast.Import: "import",
    ast.ImportFrom: "import",
    ast.FunctionDef: "def",
    ast.AsyncFunctionDef: "def",
    ast.ClassDef: "class",
    ast.Return: "return",
    ast.Delete: "del",
    ast.For: "for",
    ast.AsyncFor: "for",
    ast.While: "while",
    ast.If: "if",
    ast.With: "with",
    ast.AsyncWith: "with",
    ast.Raise: "raise",
    ast.Try: "try",
    ast.Assert: "assert",
    ast.Global: "global",
    ast.Nonlocal: "nonlocal",
    ast.Pass: "pass",
    ast.Break: "break",
    ast.Continue: "continue",
    ast.Match: "match",
}


def _parse_tree(body: str, positions: _Positions) -> ast.Expression | Problem:
    """``ast.parse`` in eval mode, every failure a problem. Parsing builds a tree and runs
    nothing; warnings about the text (an invalid escape, say) are not the user's concern
    here and must not become errors under ``-W error``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(body, mode="eval")
    except SyntaxError as error:
        statement = _as_statement(body, positions)
        if statement is not None:
            return statement
        # Python gives no column (0) when the text ends before the expression does.
        at_end = not error.offset
        start = positions.length if at_end else positions.at_char(error.lineno, error.offset)
        message = error.msg if isinstance(error.msg, str) else "invalid syntax"
        return Problem("syntax", f"not a valid expression: {message}", start, start)
    except (RecursionError, MemoryError):
        return Problem(
            "syntax", "the expression is nested too deeply", positions.base, positions.length
        )
    except ValueError:  # text that is not valid Unicode (a lone surrogate)
        at = next((i for i, char in enumerate(body) if "\ud800" <= char <= "\udfff"), 0)
        return Problem(
            "syntax",
            "not a valid expression: it holds a character that is not valid text",
            positions.base + at,
            positions.base + at + 1 if at < len(body) else positions.length,
        )


def _as_statement(body: str, positions: _Positions) -> Problem | None:
    """When the text is Python statements rather than an expression, say which."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = ast.parse(body, mode="exec")
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return None
    for statement in module.body:
        if isinstance(statement, ast.Expr):
            continue
        start, end = positions.span(statement)
        if isinstance(statement, ast.Assign | ast.AugAssign | ast.AnnAssign):
            return Problem(
                "construct",
                "assignment is not allowed: an expression only computes a value",
                start,
                end,
                "to compare, write `==`" if isinstance(statement, ast.Assign) else "",
            )
        word = _STATEMENT_WORDS.get(type(statement))
        what = f"`{word}` statements" if word else "statements"
        return Problem("construct", f"{what} are not allowed: write one expression", start, end)
    if len(module.body) > 1:
        start, end = positions.span(module.body[1])
        return Problem("construct", "only one expression is allowed", start, end)
    return None


def _too_deep(root: ast.expr, positions: _Positions) -> Problem | None:
    """The first node nested deeper than ``MAX_DEPTH``, found without recursion."""
    # Each node with the closest node above it that has a position (operators have none).
    stack: list[tuple[ast.AST, Positioned, int]] = [(root, root, 1)]
    while stack:
        node, placed, depth = stack.pop()
        if isinstance(node, Positioned):
            placed = node
        if depth > MAX_DEPTH:
            start, end = positions.span(placed)
            return Problem(
                "syntax", f"the expression is nested more than {MAX_DEPTH} deep", start, end
            )
        stack.extend((child, placed, depth + 1) for child in ast.iter_child_nodes(node))
    return None


_ARITH: Mapping[type[ast.operator], ArithOp] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
}
_REFUSED_OPERATORS: Mapping[type[ast.operator], str] = {
    ast.Pow: "**",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.MatMult: "@",
}
_COMPARE: Mapping[type[ast.cmpop], CompareOp] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}
_ORDERING = frozenset({"<", "<=", ">", ">="})
#: Constructs refused by name, the message for each.
_REFUSED: Mapping[type[ast.AST], str] = {
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.NamedExpr: "assignment expressions (`:=`) are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed",
    ast.Starred: "starred expressions (`*x`) are not allowed",
    ast.Dict: "dict literals are not allowed",
    ast.Set: "set literals are not allowed",
    ast.Await: "`await` is not allowed",
    ast.Yield: "`yield` is not allowed",
    ast.YieldFrom: "`yield` is not allowed",
    ast.Slice: "slices are not allowed",
}
CALLS_MESSAGE = "function calls other than len() and In() are not allowed"
UNDERSCORE_MESSAGE = "names starting with '_' are not allowed"

_Result: TypeAlias = tuple[Node, ValueType]


class _Checker:
    """One walk over an expression's tree: each allowlisted node checked and turned into its
    :data:`Node`; anything else recorded as a problem. A child that fails makes its parent
    fail (``_Refused``) after the problems of its siblings are recorded too."""

    def __init__(self, text: str, positions: _Positions, scope: Scope) -> None:
        self.text = text
        self.positions = positions
        self.scope = scope
        self.problems: list[Problem] = []
        self.context_fields: set[str] = set()
        self.states: set[str] = set()
        self.uses_payload = False
        self.uses_job = False
        self.uses_event = False
        self.uses_event_type = False
        self.uses_session = False
        self.uses_processor_type = False
        #: The reads a None test narrowed where the walk is (``x`` in ``x + 1`` of ``x is
        #: not None and x + 1 > 2``), and the declared type of each read, to narrow from.
        self.narrowed: dict[Node, ValueType] = {}
        self.read_types: dict[Node, ValueType] = {}

    # -- helpers --

    def refuse(
        self,
        kind: ProblemKind,
        message: str,
        node: Positioned,
        hint: str = "",
        *,
        at: tuple[int, int] | None = None,
    ) -> _Refused:
        start, end = at if at is not None else self.positions.span(node)
        self.problems.append(Problem(kind, message, start, end, hint))
        return _Refused()

    def source(self, node: Positioned) -> str:
        """The text of ``node`` as written, quoted for a message (shortened when long)."""
        start, end = self.positions.span(node)
        written = " ".join(self.text[start:end].split())
        return f"`{written}`" if len(written) <= 40 else f"`{written[:37]}...`"

    def check_all(self, nodes: Iterable[ast.expr]) -> list[_Result]:
        results: list[_Result] = []
        failed = False
        for node in nodes:
            try:
                results.append(self.check(node))
            except _Refused:
                failed = True
        if failed:
            raise _Refused()
        return results

    def check_narrowed(self, node: ast.expr, narrowed: Mapping[Node, ValueType]) -> _Result:
        """:meth:`check` where the reads in ``narrowed`` have those types."""
        saved = self.narrowed
        self.narrowed = {**saved, **narrowed}
        try:
            return self.check(node)
        finally:
            self.narrowed = saved

    def narrowing(self, test: Node | None, truth: bool) -> dict[Node, ValueType]:
        """What ``test`` being ``truth`` shows of the reads it tests, as mypy and pyright
        narrow them: ``x is not None`` true, ``x`` is not null; ``x is None`` true, it is
        null; ``x`` itself true, it is not null (nor a false value of an ``enum``), false,
        it is a false value (``0``, ``''``, ``False``, None: :func:`_by_truth`); through
        ``not``, and through an ``and`` that holds or an ``or`` that does not (each of its
        parts then does the same)."""
        if test is not None and _narrowable(test) and test in self.read_types:
            narrowed = _by_truth(self.read_types[test], truth)
            return {} if narrowed is None else {test: narrowed}
        if isinstance(test, Unary) and test.op == "not":
            return self.narrowing(test.operand, not truth)
        if isinstance(test, Logic) and (test.op == "and") == truth:
            found: dict[Node, ValueType] = {}
            for part in test.values:
                found.update(self.narrowing(part, truth))
            return found
        if not (
            isinstance(test, Comparison)
            and len(test.ops) == 1
            and test.ops[0] in ("is", "is not")
            and isinstance(test.rights[0], Const)
            and test.rights[0].value is None
            and _narrowable(test.left)
        ):
            return {}
        value = self.read_types.get(test.left)
        if value is None or "null" not in value.kinds:
            return {}
        if (test.ops[0] == "is") == truth:
            return {test.left: NULL}
        kinds = value.kinds - {"null"}
        values = value.values - {("null", None)} if value.values is not None else None
        return {test.left: replace(value, kinds=kinds, values=values)} if kinds else {}

    # -- the walk --

    def check(self, node: ast.expr) -> _Result:
        inner, value = self.check_node(node)
        if _narrowable(inner):
            self.read_types[inner] = value
            value = self.narrowed.get(inner, value)
        return inner, value

    def check_node(self, node: ast.expr) -> _Result:
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Attribute):
            return self.attribute(node)
        if isinstance(node, ast.Subscript):
            return self.subscript(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.BoolOp):
            return self.bool_op(node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.IfExp):
            return self.conditional(node)
        if isinstance(node, ast.List | ast.Tuple):
            return self.sequence(node)
        message = _REFUSED.get(type(node), f"`{type(node).__name__}` is not allowed")
        raise self.refuse("construct", message, node)

    def constant(self, node: ast.Constant) -> _Result:
        value = node.value
        if value is None or isinstance(value, bool | int | str):
            return Const(value), literal(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.refuse("construct", "the number is too large", node)
            return Const(value), literal(value)
        if isinstance(value, bytes):
            message = "bytes literals are not allowed"
        elif isinstance(value, complex):
            message = "complex numbers are not allowed"
        else:
            message = f"the constant {self.source(node)} is not allowed"
        raise self.refuse("construct", message, node)

    def name(self, node: ast.Name) -> _Result:
        if not isinstance(node.ctx, ast.Load):
            raise self.refuse("construct", "assignment is not allowed", node)
        name = node.id
        if name.startswith("_"):
            raise self.refuse("construct", UNDERSCORE_MESSAGE, node)
        if name == "payload":
            return self.root(node, "payload")
        if name == "job":
            return self.root(node, "job")
        if name == "event":
            return self.event_value()
        if name == "machine":
            raise self.refuse(
                "construct",
                "`machine` is read through its fields: `machine.name`, `machine.session_id`, "
                "`machine.io_processors`, `machine.processor_type`",
                node,
            )
        if name in ("len", "In"):
            raise self.refuse("construct", f"`{name}` can only be called: `{name}(...)`", node)
        value = self.scope.context.get(name)
        if value is None:
            raise self.refuse("name", f"unknown name '{name}'", node, self.name_hint(name))
        self.context_fields.add(name)
        return ContextField(name), value

    def name_hint(self, name: str) -> str:
        for root, value in (("payload", self.scope.payload), ("job", self.scope.job)):
            if value is not None and value.fields is not None and name in value.fields:
                return f"did you mean '{root}.{name}'?"
        candidates = [*self.scope.context]
        candidates += ["payload"] if self.scope.payload is not None else []
        candidates += ["job"] if self.scope.job is not None else []
        hint = did_you_mean(name, candidates)
        if hint or self.scope.context:
            return hint
        return "the machine declares no `context:` fields"

    def root(self, node: ast.Name, name: Literal["payload", "job"]) -> _Result:
        if name == "payload":
            value = self.scope.payload
            if value is None:
                if self.scope.event is None:
                    message = "there is no payload here: no event carries one"
                else:
                    message = f"there is no payload here: event '{self.scope.event}' declares none"
                raise self.refuse(
                    "name", message, node, "declare the payload's schema under `events:`"
                )
            self.uses_payload = True
        else:
            value = self.scope.job
            if value is None:
                raise self.refuse(
                    "name",
                    "there is no job data here",
                    node,
                    "declare the job's data schema under `jobs:`",
                )
            self.uses_job = True
        return Root(name), value

    def attribute(self, node: ast.Attribute) -> _Result:
        if not isinstance(node.ctx, ast.Load):
            raise self.refuse("construct", "assignment is not allowed", node)
        start, end = self.positions.span(node)
        attr_at = (max(start, end - len(node.attr)), end)
        if node.attr.startswith("_"):
            raise self.refuse("construct", UNDERSCORE_MESSAGE, node, at=attr_at)
        if isinstance(node.value, ast.Name) and node.value.id == "event":
            return self.event_field(node, node.value, node.attr, attr_at)
        if isinstance(node.value, ast.Name) and node.value.id == "machine":
            if node.attr == "name":
                return MachineField("name"), STRING
            if node.attr == "session_id":
                self.uses_session = True
                return MachineField("session_id"), STRING
            if node.attr == "io_processors":
                self.uses_session = True
                return MachineField("io_processors"), IO_PROCESSORS
            if node.attr == "processor_type":
                self.uses_processor_type = True
                return MachineField("processor_type"), STRING
            raise self.refuse(
                "name",
                f"`machine` has no field '{node.attr}' (it has: {', '.join(MACHINE_FIELDS)})",
                node,
                did_you_mean(node.attr, MACHINE_FIELDS),
                at=attr_at,
            )
        base, base_type = self.check(node.value)
        return self.field(node, node.value, base, base_type, node.attr, attr_at)

    def event_value(self) -> _Result:
        """``event`` as a value: an object with ``name`` and ``type`` (strings; null where no
        event may be handled yet) and ``data`` (the payload, or null where none applies)."""
        self.uses_event = self.uses_event_type = True
        text = self.event_text()
        payload = self.scope.payload
        if payload is not None:
            self.uses_payload = True
        fields = {
            "name": Field(text),
            "type": Field(text),
            "data": Field(NULL if payload is None else payload),
        }
        return EventValue(payload is not None), ValueType(frozenset({"object"}), fields=fields)

    def event_text(self) -> ValueType:
        """What ``event.name`` and ``event.type`` are: a string in a transition's scope; in
        a state's actions a string or null, the null only in the start's variant."""
        if self.scope.event is not None:
            return STRING
        return replace(_nullable(STRING), null_by_variant=not self.scope.at_start)

    def event_field(self, node: ast.expr, base: ast.Name, key: str, at: tuple[int, int]) -> _Result:
        """``event.name`` (a string; null where no event may be handled yet: a state's
        actions and eventless transitions run when the machine starts too) and
        ``event.data`` (the event's payload, as ``payload``)."""
        if not isinstance(base.ctx, ast.Load):
            raise self.refuse("construct", "assignment is not allowed", base)
        if key == "name":
            self.uses_event = True
            if self.scope.event is not None:
                # the class writes it as that name, a literal: it fits a list of `enum`s
                return EventName(), literal(self.scope.event)
            return EventName(), self.event_text()
        if key == "type":
            self.uses_event = self.uses_event_type = True
            return EventType(), self.event_text()
        if key == "data":
            return self.root(base, "payload")
        if key == "send_id":
            # how the event came decides whether it can carry an id (only a raised one)
            self.uses_event = self.uses_event_type = True
            return EventSendId(), _nullable(STRING)
        raise self.refuse(
            "name",
            f"`event` has no field '{key}' (it has: {', '.join(EVENT_FIELDS)})",
            node,
            did_you_mean(key, EVENT_FIELDS),
            at=at,
        )

    def field(
        self,
        node: ast.expr,
        base_node: ast.expr,
        base: Node,
        base_type: ValueType,
        key: str,
        at: tuple[int, int],
    ) -> _Result:
        written = self.source(base_node)
        if isinstance(base, Root) and base.root == "payload" and self.scope.event is not None:
            written = f"the payload of event '{self.scope.event}'"
        if base_type.known and not base_type.kinds <= {"object"}:
            raise self.refuse(
                "type",
                f"{written} is {base_type.describe()}, so it has no field '{key}' to read",
                node,
                _null_hint(base_type),
                at=at,
            )
        if base_type.fields is None:
            raise self.refuse(
                "name",
                f"{written} declares no fields, so '{key}' cannot be checked",
                node,
                "list its fields under `properties:` in its schema",
                at=at,
            )
        declared = base_type.fields.get(key)
        if declared is None:
            raise self.refuse(
                "name",
                f"{written} has no field '{key}'",
                node,
                did_you_mean(key, base_type.fields),
                at=at,
            )
        value = declared.type if declared.required else _nullable(declared.type)
        return Item(base, key, optional=not declared.required), value

    def subscript(self, node: ast.Subscript) -> _Result:
        if not isinstance(node.ctx, ast.Load):
            raise self.refuse("construct", "assignment is not allowed", node)
        index = node.slice
        key: str | int | None = None
        if isinstance(index, ast.Constant) and isinstance(index.value, str | int):
            if not isinstance(index.value, bool):
                key = index.value
        elif (
            isinstance(index, ast.UnaryOp)
            and isinstance(index.op, ast.USub)
            and isinstance(index.operand, ast.Constant)
            and type(index.operand.value) is int
        ):
            key = -index.operand.value
        if key is None:
            if isinstance(index, ast.Slice):
                raise self.refuse("construct", _REFUSED[ast.Slice], index)
            raise self.refuse(
                "construct",
                "an index must be a string or integer literal (`x[0]`, `x['key']`)",
                index,
            )
        base, base_type = self.check(node.value)
        if isinstance(key, str):
            return self.field(node, node.value, base, base_type, key, self.positions.span(index))
        if base_type.known and not base_type.kinds <= {"array", "string"}:
            raise self.refuse(
                "type",
                f"{self.source(node.value)} is {base_type.describe()}, so it has no items to read",
                node,
                _null_hint(base_type),
            )
        value = ANY
        if base_type.known:
            parts = [base_type.items or ANY] if "array" in base_type.kinds else []
            parts += [STRING] if "string" in base_type.kinds else []
            value = parts[0] if len(parts) == 1 else union(parts[0], parts[1])
        return Item(base, key), value

    def call(self, node: ast.Call) -> _Result:
        func = node.func
        if not (isinstance(func, ast.Name) and func.id in ("len", "In")):
            raise self.refuse("construct", CALLS_MESSAGE, node)
        if node.keywords or len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
            raise self.refuse("construct", f"{func.id}() takes exactly one argument", node)
        (arg,) = node.args
        if func.id == "In":
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                raise self.refuse(
                    "construct", "In() takes a state's name as a string literal: In('busy')", arg
                )
            if arg.value not in self.scope.states:
                raise self.refuse(
                    "name",
                    f"unknown state '{arg.value}'",
                    arg,
                    did_you_mean(arg.value, self.scope.states),
                )
            self.states.add(arg.value)
            return InState(arg.value), BOOLEAN
        inner, value = self.check(arg)
        if value.known and not value.kinds <= {"string", "array", "object"}:
            raise self.refuse(
                "type",
                f"len() needs a string, a list or an object, and {self.source(arg)} is "
                f"{value.describe()}",
                node,
                _null_hint(value),
            )
        return Length(inner), INTEGER

    def conditional(self, node: ast.IfExp) -> _Result:
        """``body if test else orelse``: ``body`` is read where ``test`` holds and ``orelse``
        where it does not, each with the reads ``test`` compares with None narrowed."""
        failed = False
        test: Node | None = None
        try:
            test, _ = self.check(node.test)
        except _Refused:
            failed = True
        results: list[_Result] = []
        for branch, truth in ((node.body, True), (node.orelse, False)):
            try:
                results.append(self.check_narrowed(branch, self.narrowing(test, truth)))
            except _Refused:
                failed = True
        if failed or test is None:
            raise _Refused()
        (body, body_type), (orelse, orelse_type) = results
        return Conditional(test, body, orelse), union(body_type, orelse_type)

    def bool_op(self, node: ast.BoolOp) -> _Result:
        op: Literal["and", "or"] = "and" if isinstance(node.op, ast.And) else "or"
        # Each value is read only where those before it held (`and`) or did not (`or`).
        narrowed: dict[Node, ValueType] = {}
        results: list[_Result] = []
        failed = False
        for operand in node.values:
            try:
                result = self.check_narrowed(operand, narrowed)
            except _Refused:
                failed = True
                continue
            results.append(result)
            narrowed.update(self.narrowing(result[0], op == "and"))
        if failed:
            raise _Refused()
        value: ValueType | None = None
        for index, (_, other) in enumerate(results):
            if op == "or" and index < len(results) - 1 and other.known:
                # Each operand of an `or` but the last is its value only where it is true,
                # so never null (`last or 'none'` is a string), as mypy and pyright type it.
                truthy = _by_truth(other, True)
                if truthy is None:
                    continue  # never true (`None or 'x'`): never the value
                other = replace(truthy, null_by_variant=False)
            value = other if value is None else union(value, other)
        assert value is not None  # the last operand always counts
        return Logic(op, tuple(inner for inner, _ in results)), value

    def unary(self, node: ast.UnaryOp) -> _Result:
        if isinstance(node.op, ast.Invert):
            raise self.refuse("construct", "the `~` operator is not allowed", node)
        operand, value = self.check(node.operand)
        if isinstance(node.op, ast.Not):
            return Unary("not", operand), BOOLEAN
        sign: Literal["-", "+"] = "-" if isinstance(node.op, ast.USub) else "+"
        if value.known and not value.kinds <= _NUMERIC:
            raise self.refuse(
                "type",
                f"`{sign}` needs a number, and {self.source(node.operand)} is {value.describe()}",
                node,
                _null_hint(value),
            )
        if sign == "-" and value.values is not None:  # -1 is the literal -1
            negated = frozenset((kind, -number) for kind, number in value.values)
            value = ValueType(value.kinds, value.fields, value.items, negated)
        return Unary(sign, operand), value

    def binary(self, node: ast.BinOp) -> _Result:
        refused = _REFUSED_OPERATORS.get(type(node.op))
        if refused is not None:
            raise self.refuse("construct", f"the `{refused}` operator is not allowed", node)
        op = _ARITH[type(node.op)]
        (left, left_type), (right, right_type) = self.check_all((node.left, node.right))
        checks = (False, False)
        if op in ("*", "%"):
            checks = (not left_type.known, not right_type.known)
            # A string or a list beside a value the checker cannot type: `label * job.n` or
            # `'%99999999d' % job.n` would repeat or format into as much as the data asks.
            typed = [side for side in (left_type, right_type) if side.known] if any(checks) else []
            for side in typed:
                if not side.kinds <= _NUMERIC:
                    raise self.refuse(
                        "type",
                        f"`{op}` cannot take {side.describe()}: arithmetic takes numbers",
                        node,
                        _null_hint(left_type, right_type)
                        or "`*` and `%` take numbers (`+` joins two strings or two lists)",
                    )
        result = Arith(op, left, right, checks)
        if not left_type.known or not right_type.known:
            return result, NUMBER if op == "/" else ANY
        kinds = left_type.kinds | right_type.kinds
        if kinds <= _NUMERIC:
            whole = kinds == {"integer"} and op != "/"
            return result, INTEGER if whole else NUMBER
        if op == "+" and kinds == {"string"}:
            return result, STRING
        if op == "+" and kinds == {"array"}:
            joined = union(left_type, right_type)
            if isinstance(left, SequenceLiteral):
                # mypy types a list display on the left of `+` alone (`['x']` a list of
                # str, which then does not fit a list of `enum`s): one display holds both
                return _joined(left, right), joined
            if _widened(left) and joined.items is not None:
                joined = replace(joined, items=replace(joined.items, values=None))
            return result, joined
        raise self.refuse(
            "type",
            f"`{op}` cannot take {left_type.describe()} and {right_type.describe()}",
            node,
            _null_hint(left_type, right_type)
            or "arithmetic takes numbers (and `+` joins two strings or two lists)",
        )

    def compare(self, node: ast.Compare) -> _Result:
        ops: list[CompareOp] = []
        for cmpop, right in zip(node.ops, node.comparators, strict=True):
            word = _COMPARE[type(cmpop)]
            if word in ("is", "is not") and not (
                isinstance(right, ast.Constant) and right.value is None
            ):
                raise self.refuse(
                    "construct",
                    "`is` and `is not` are only allowed with None (`x is None`)",
                    node,
                    "compare values with `==`",
                )
            ops.append(word)
        results = self.check_all((node.left, *node.comparators))
        operands = (node.left, *node.comparators)
        decided = len(ops) == 1 and any(_event_read(operand) for operand in operands)
        for index, op in enumerate(ops):
            self.compare_pair(
                node,
                op,
                operands[index],
                results[index][1],
                operands[index + 1],
                results[index + 1][1],
                decided=decided,
            )
        domains = [results[0][1].values]
        for op, (_, value) in zip(ops, results[1:], strict=True):
            items = value.items if op in ("in", "not in") else value
            domains.append(items.values if items is not None else None)
        return (
            Comparison(
                results[0][0],
                tuple(ops),
                tuple(inner for inner, _ in results[1:]),
                tuple(domains),
                tuple(not value.known or "null" in value.kinds for _, value in results),
            ),
            BOOLEAN,
        )

    def compare_pair(
        self,
        node: ast.Compare,
        op: CompareOp,
        left_node: ast.expr,
        left: ValueType,
        right_node: ast.expr,
        right: ValueType,
        *,
        decided: bool = False,
    ) -> None:
        """Refuse ``left op right`` where the types show it wrong; ``decided``: a comparison
        with ``event.<field>`` that the class decides where it is built when the values
        share none (:func:`_decided`), so no such comparison is left in its code."""
        a, b = self.source(left_node), self.source(right_node)
        if op in ("is", "is not"):
            if left.known and "null" not in left.kinds:
                raise self.refuse(
                    "type", f"{a} is {left.describe()}, never None: `{op} None` is constant", node
                )
            return
        if not left.known or not right.known:
            return
        if op in _ORDERING:
            if (left.kinds | right.kinds) <= _NUMERIC or left.kinds == right.kinds == {"string"}:
                return
            raise self.refuse(
                "type",
                f"{a} ({left.describe()}) and {b} ({right.describe()}) "
                f"cannot be compared with `{op}`",
                node,
                _null_hint(left, right)
                or "`<`, `<=`, `>`, `>=` compare two numbers or two strings",
            )
        if op in ("==", "!="):
            outcome = "never true" if op == "==" else "always true"
            if not _numeric_view(left.kinds) & _numeric_view(right.kinds):
                raise self.refuse(
                    "type",
                    f"{a} is {left.describe()} and {b} {right.describe()}: `{op}` is {outcome}",
                    node,
                )
            if not decided and _never_meet(left, right, left_node, right_node):
                raise self.refuse(
                    "type",
                    f"{a} ({left.describe_exactly()}) and {b} ({right.describe_exactly()}) "
                    f"share no value: `{op}` is {outcome}",
                    node,
                )
            return
        # in / not in
        if not right.kinds <= {"array", "string", "object"}:
            raise self.refuse(
                "type",
                f"`{op}` needs a list, a string or an object on its right, "
                f"and {b} is {right.describe()}",
                node,
                _null_hint(right),
            )
        if right.kinds == {"string"} and left.kinds != {"string"}:
            raise self.refuse(
                "type", f"{a} is {left.describe()}: `{op}` a string needs a string", node
            )
        items = right.items
        if (
            right.kinds == {"array"}
            and items is not None
            and items.known
            and not _numeric_view(left.kinds) & _numeric_view(items.kinds)
        ):
            raise self.refuse(
                "type",
                f"{a} is {left.describe()} and the items of {b} are {items.describe()}: "
                f"`{op}` is {'never' if op == 'in' else 'always'} true",
                node,
            )
        if (
            right.kinds == {"array"}
            and items is not None
            and not decided
            and _never_meet(left, items, left_node, right_node)
        ):
            raise self.refuse(
                "type",
                f"{a} ({left.describe_exactly()}) and the items of {b} "
                f"({items.describe_exactly()}) share no value: "
                f"`{op}` is {'never' if op == 'in' else 'always'} true",
                node,
            )

    def sequence(self, node: ast.List | ast.Tuple) -> _Result:
        if not isinstance(node.ctx, ast.Load):
            raise self.refuse("construct", "assignment is not allowed", node)
        results = self.check_all(node.elts)
        items: ValueType | None = None
        for _, value in results:
            items = value if items is None else union(items, value)
        return (
            SequenceLiteral(tuple(inner for inner, _ in results)),
            ValueType(frozenset({"array"}), None, items),
        )


def _joined(left: SequenceLiteral, right: Node) -> SequenceLiteral:
    """``left + right`` of two lists as one display, ``right`` spread in it unless it is a
    display too: typed in the place it is written, as mypy and pyright type a display, so
    ``['x'] + picks`` fits a list of ``enum`` values (``["x"] + ctx.picks`` is a
    ``list[str]`` to mypy, which refused it)."""
    left_spread = left.spread or (False,) * len(left.items)
    if isinstance(right, SequenceLiteral):
        right_spread = right.spread or (False,) * len(right.items)
        return SequenceLiteral(left.items + right.items, left_spread + right_spread)
    return SequenceLiteral((*left.items, right), (*left_spread, True))


def _widened(node: Node) -> bool:
    """Whether mypy, typing ``node`` alone (on the left of ``+``), widens its list's items
    to their kind: a display of literals inside a conditional or ``and``/``or``, or a sum
    that starts with one (``(['x'] if ok else picks) + picks`` is a ``list[str]``)."""
    if isinstance(node, SequenceLiteral):
        return True
    if isinstance(node, Conditional):
        return _widened(node.body) or _widened(node.orelse)
    if isinstance(node, Logic):
        return any(_widened(value) for value in node.values)
    if isinstance(node, Arith):
        return _widened(node.left)
    return False


#: The false value of each kind mypy and pyright have a literal type for.
_FALSE_VALUES: Mapping[Kind, Any] = {"integer": 0, "string": "", "boolean": False, "null": None}


def _by_truth(value: ValueType, truth: bool) -> ValueType | None:
    """``value`` where it was tested true (``truth``) or false, as mypy and pyright narrow
    it; None where the test shows nothing the checker can say (or nothing is left)."""
    if not value.known:
        return None
    if truth:
        kinds = value.kinds - {"null"}
        values = value.values
        if values is not None:
            values = frozenset(key for key in values if key[1])
        elif kinds == {"boolean"}:
            values = _values_of([True])
    else:
        if not value.kinds <= _FALSE_VALUES.keys():
            return None  # a false number, list or object has no literal type
        kinds = value.kinds
        values = _values_of([_FALSE_VALUES[kind] for kind in sorted(kinds)])
        if values is not None and value.values is not None:
            values &= value.values
    if not kinds or values == frozenset():
        return None
    if values is not None:
        kinds = frozenset(kind for kind in kinds if any(_fits_kind(key, kind) for key in values))
    return replace(value, kinds=kinds, values=values)


def _fits_kind(key: tuple[str, Any], kind: Kind) -> bool:
    """Whether the value of the :func:`value_key` ``key`` is of ``kind``."""
    if key[0] == "number":
        return kind == "number" or (kind == "integer" and float(key[1]).is_integer())
    return key[0] == kind


def _narrowable(node: Node) -> bool:
    """Whether mypy and pyright narrow the code of the read ``node`` after a None test, so
    the checker may: an attribute (``ctx.x``, ``self._event_send_id``), a constant
    (``event.name``) or an item at a literal key or index (``ctx.tags[0]``); not an optional
    field, read with ``.get()`` (a call, which neither narrows)."""
    if isinstance(node, ContextField | EventName | EventType | EventSendId):
        return True
    if isinstance(node, Item):
        return not node.optional and (isinstance(node.base, Root) or _narrowable(node.base))
    return False


def _null_hint(*values: ValueType) -> str:
    if any("null" in value.kinds for value in values):
        return (
            "it may be null (its schema allows null, or does not require the field); "
            "only `==`, `!=`, `is None` and `is not None` take a value that may be null"
        )
    return ""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """The hint offering the closest candidate, worded as the checker's other hints
    (``smc.compiler.analysis.context.did_you_mean``)."""
    options = sorted({str(candidate) for candidate in candidates})
    close = difflib.get_close_matches(str(name), options, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


# ---- emitting Python ----------------------------------------------------------------------


@dataclass(frozen=True)
class Names:
    """The generated module's names for what an expression reads: each context field's
    attribute on the context object, each state's ``State`` member."""

    context: Mapping[str, str] = field(default_factory=dict, hash=False)
    states: Mapping[str, str] = field(default_factory=dict, hash=False)
    #: Where the expression runs, the event being handled (None: none yet, at the start),
    #: which ``event.name`` is; ``event_known`` False when the caller did not work it out
    #: (then ``event.name`` is a ``KeyError``: a compiler bug).
    event: str | None = None
    event_known: bool = False
    #: with ``event_known``, whether that event was raised (queued inside the machine) or
    #: given to ``fire``, which ``event.type`` is (None: not worked out, a compiler bug
    #: where ``event.type`` is read).
    event_internal: bool | None = None
    #: the code of ``machine.session_id`` (the instance's attribute; a parameter where the
    #: initial context is computed).
    session: str = "self.session_id"
    #: whether some ``raise`` of the machine has ``id_location``: then an event raised
    #: carries the id the class keeps while it is handled (``event.send_id``); else none.
    carries: bool = False


# Python's precedence levels, lowest first (the grammar's: conditional, or, and, not,
# comparison, sum, term, unary sign, atom).
_TEST, _OR, _AND, _NOT, _CMP, _SUM, _TERM, _FACTOR, _ATOM = range(1, 10)
_ARITH_TOKENS: Mapping[str, tuple[str, int]] = {
    "+": ("+", _SUM),
    "-": ("-", _SUM),
    "*": ("*", _TERM),
    "/": ("/", _TERM),
    "//": ("//", _TERM),
    "%": ("%", _TERM),
}
_SIGNS: Mapping[str, str] = {"-": "-", "+": "+"}
_COMPARE_TOKENS: Mapping[str, str] = {op: op for op in _COMPARE.values()}


def to_python(expression: Expression, names: Names) -> str:
    """The Python source of ``expression`` for the generated module, over ``ctx`` (the
    context object), ``payload`` (the event's payload, a dict), ``job`` (the job's data, a
    dict) and ``self`` (the machine, for ``In()``). One line, in black's style, with only the
    parentheses Python needs; the same expression and names give the same text.

    Raises ``KeyError`` for a field or state ``names`` lacks and ``ValueError`` for a name
    that is not a plain identifier: both are compiler bugs, not user errors.

    With ``names.event_known``, ``event.name`` is that event's name, and what it makes
    constant is folded (``event.name == 'go'`` is ``True`` or ``False``), so the generated
    code holds no comparison of two constants."""
    return _emit(_folded(expression, names), names, _TEST)


def _folded(expression: Expression, names: Names) -> Node:
    node = expression.node
    if names.event_known and expression.uses_event:
        kind: str | _Unknown | None = _UNKNOWN
        if names.event_internal is not None:
            kind = event_type(names.event, names.event_internal)
        node = _fold(node, names.event, kind)
    return node


def reads_context(expression: Expression, names: Names) -> bool:
    """Whether the code :func:`to_python` writes for ``expression`` reads ``ctx``: an
    expression over context fields may no longer, once ``event.name`` made part of it
    constant (``mode == event.name`` where ``mode`` cannot be that name is ``False``)."""
    return _reads(_folded(expression, names), "ctx")


def reads_job(expression: Expression, names: Names) -> bool:
    """Whether the code :func:`to_python` writes for ``expression`` reads ``job`` (as
    :func:`reads_context`)."""
    return expression.uses_job and _reads(_folded(expression, names), "job")


def _reads(root: Node, what: Literal["ctx", "job"]) -> bool:
    def reads(node: Node) -> bool:
        if isinstance(node, ContextField):
            return what == "ctx"
        if isinstance(node, Root):
            return what == "job" and node.root == "job"
        if isinstance(node, Comparison):
            return any(reads(part) for part in (node.left, *node.rights))
        if isinstance(node, Arith):
            return reads(node.left) or reads(node.right)
        if isinstance(node, Conditional):
            return any(reads(part) for part in (node.test, node.body, node.orelse))
        if isinstance(node, Logic):
            return any(reads(part) for part in node.values)
        if isinstance(node, SequenceLiteral):
            return any(reads(part) for part in node.items)
        if isinstance(node, Unary):
            return reads(node.operand)
        if isinstance(node, Item):
            return reads(node.base)
        if isinstance(node, Length):
            return reads(node.arg)
        return False

    return reads(root)


class _Unknown:
    """``event.type`` where the caller did not work out how the event came."""


_UNKNOWN = _Unknown()


_FOLDABLE: Mapping[str, Any] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "is": lambda a, b: a is b,
    "is not": lambda a, b: a is not b,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
}


def _constant_of(node: Node) -> tuple[bool, Any]:
    """Whether ``node`` is a constant (a literal, or a list or tuple of literals), and it."""
    if isinstance(node, Const):
        return True, node.value
    if (
        isinstance(node, SequenceLiteral)
        and not any(node.spread)
        and all(isinstance(i, Const) for i in node.items)
    ):
        return True, tuple(i.value for i in node.items if isinstance(i, Const))
    if isinstance(node, MachineField) and node.field == "processor_type":
        # a constant: compared with a literal, its own ``==`` decides (the short form too)
        return True, ProcessorType(SCXML_PROCESSOR)
    return False, None


def _decided(node: Comparison, left: Node, rights: tuple[Node, ...]) -> bool | None:
    """A one-operator comparison of ``event.name`` or ``event.type`` (now ``left`` or the
    right a constant) with a value limited to a few others that do not hold it: decided
    (``mode == 'go'`` is false where ``mode`` is ``fast`` or ``slow``); else ``None``."""
    if len(node.ops) != 1 or len(node.domains) != 2 or len(node.nullable) != 2:
        return None
    op = node.ops[0]
    events = (EventName, EventType, EventSendId)
    if isinstance(node.left, events) and isinstance(left, Const) and op in ("==", "!="):
        value, domain, nullable = left.value, node.domains[1], node.nullable[1]
    elif isinstance(node.rights[0], events) and isinstance(rights[0], Const):
        value, domain, nullable = rights[0].value, node.domains[0], node.nullable[0]
        if op in ("in", "not in"):
            return None  # a string in a string, or a list on the left: not decided here
    elif isinstance(node.left, events) and isinstance(left, Const) and op in ("in", "not in"):
        value, domain, nullable = left.value, node.domains[1], True
    else:
        return None
    if op in ("is", "is not"):
        return None
    if value is None and not nullable and op in ("==", "!="):
        return op == "!="
    if domain is None or value_key(value) in domain:
        return None
    return op in ("!=", "not in")


def _fold(node: Node, event: str | None, kind: str | _Unknown | None = _UNKNOWN) -> Node:
    """``node`` with ``event.name`` as ``event`` (``event.type`` as ``kind``), and the
    comparisons, ``not``, ``and``, ``or`` and conditionals that this makes constant folded
    (over literal values only: nothing is evaluated but ``==``, ``!=``, ``is``, ``in``
    between literals)."""
    if isinstance(node, EventName):
        return Const(event)
    if isinstance(node, EventType):
        if isinstance(kind, _Unknown):
            raise KeyError("event.type where how the event came is not known")
        return Const(kind)
    if isinstance(node, EventValue) and isinstance(kind, _Unknown):
        raise KeyError("event where how the event came is not known")
    if isinstance(node, EventSendId) and (event is None or kind == "external"):
        return Const(None)  # only a raised event carries an id
    if isinstance(node, Comparison):
        left = _fold(node.left, event, kind)
        rights = tuple(_fold(r, event, kind) for r in node.rights)
        operands = [_constant_of(n) for n in (left, *rights)]
        if all(known for known, _ in operands) and all(op in _FOLDABLE for op in node.ops):
            values = [value for _, value in operands]
            result = all(
                bool(_FOLDABLE[op](values[i], values[i + 1])) for i, op in enumerate(node.ops)
            )
            return Const(result)
        decided = _decided(node, left, rights)
        if decided is not None:
            return Const(decided)
        return Comparison(left, node.ops, rights, node.domains, node.nullable)
    if isinstance(node, Unary):
        operand = _fold(node.operand, event, kind)
        if node.op == "not" and isinstance(operand, Const) and isinstance(operand.value, bool):
            return Const(not operand.value)
        return Unary(node.op, operand)
    if isinstance(node, Logic):
        folded = tuple(_fold(v, event, kind) for v in node.values)
        if all(isinstance(v, Const) and isinstance(v.value, bool) for v in folded):
            flags = [bool(v.value) for v in folded if isinstance(v, Const)]
            return Const(all(flags) if node.op == "and" else any(flags))
        return Logic(node.op, folded)
    if isinstance(node, Conditional):
        test = _fold(node.test, event, kind)
        body, orelse = _fold(node.body, event, kind), _fold(node.orelse, event, kind)
        if isinstance(test, Const) and isinstance(test.value, bool):
            return body if test.value else orelse
        return Conditional(test, body, orelse)
    if isinstance(node, Item):
        return Item(_fold(node.base, event, kind), node.key, node.optional)
    if isinstance(node, Length):
        return Length(_fold(node.arg, event, kind))
    if isinstance(node, Arith):
        return replace(
            node, left=_fold(node.left, event, kind), right=_fold(node.right, event, kind)
        )
    if isinstance(node, SequenceLiteral):
        return replace(node, items=tuple(_fold(i, event, kind) for i in node.items))
    return node


def _identifier(name: str) -> str:
    """A generated name, refused unless it is a plain public identifier."""
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


def _emit(node: Node, names: Names, need: int) -> str:
    text, level = _emit_node(node, names)
    return f"({text})" if level < need else text


def _emit_node(node: Node, names: Names) -> tuple[str, int]:
    if isinstance(node, Const):
        return _constant(node.value)
    if isinstance(node, ContextField):
        return f"{CONTEXT_VAR}.{_identifier(names.context[node.name])}", _ATOM
    if isinstance(node, Root):
        return (PAYLOAD_VAR if node.root == "payload" else JOB_VAR), _ATOM
    if isinstance(node, Item):
        base = _emit(node.base, names, _ATOM)
        if isinstance(node.key, str):
            key = pystr(node.key)
            return (f"{base}.get({key})" if node.optional else f"{base}[{key}]"), _ATOM
        return f"{base}[{int(node.key)}]", _ATOM
    if isinstance(node, EventName):
        if not names.event_known:
            raise KeyError("event.name where the event is not known")
        return _constant(names.event)
    if isinstance(node, EventType | EventValue):
        if not names.event_known or names.event_internal is None:
            raise KeyError("event.type where how the event came is not known")
        kind = _constant(event_type(names.event, names.event_internal))[0]
        if isinstance(node, EventType):
            return kind, _ATOM
        data = PAYLOAD_VAR if node.with_payload else "None"
        name = _constant(names.event)[0]
        return f'{{"name": {name}, "type": {kind}, "data": {data}}}', _ATOM
    if isinstance(node, EventSendId):
        if not names.event_known or names.event_internal is None:
            raise KeyError("event.send_id where how the event came is not known")
        if names.carries and names.event is not None and names.event_internal:
            # set where the event was taken from the internal queue (chartplan's "take")
            return f"{SELF_VAR}._event_send_id", _ATOM
        return "None", _ATOM
    if isinstance(node, MachineField):
        if node.field == "name":
            return "MACHINE_NAME", _ATOM
        if node.field == "processor_type":
            return f"ProcessorType({pystr(SCXML_PROCESSOR)})", _ATOM
        if node.field == "io_processors":
            # a new object each time it is read: changing it changes nothing
            location = f"{pystr(IO_LOCATION_PREFIX)} + {_session_code(names.session)}"
            kinds = ", ".join(
                f"{pystr(kind)}: {{{pystr('location')}: {location}}}" for kind in IO_PROCESSOR_TYPES
            )
            return "{" + kinds + "}", _ATOM
        return _session_code(names.session), _ATOM
    if isinstance(node, Length):
        return f"len({_emit(node.arg, names, _TEST)})", _ATOM
    if isinstance(node, InState):
        member = _identifier(names.states[node.state])
        return f"{SELF_VAR}.in_state({STATE_ENUM}.{member})", _ATOM
    # Operators are written from this module's own tables, never from a node's field.
    if isinstance(node, Unary):
        if node.op == "not":
            return f"not {_emit(node.operand, names, _NOT)}", _NOT
        return f"{_SIGNS[node.op]}{_emit(node.operand, names, _FACTOR)}", _FACTOR
    if isinstance(node, Arith):
        word, level = _ARITH_TOKENS[node.op]
        left_check, right_check = node.numbers_only
        left = _operand(node.left, names, level, left_check)
        right = _operand(node.right, names, level + 1, right_check)
        return f"{left} {word} {right}", level
    if isinstance(node, Logic):
        word, level = ("or", _OR) if node.op == "or" else ("and", _AND)
        return f" {word} ".join(_emit(value, names, level + 1) for value in node.values), level
    if isinstance(node, Comparison):
        parts = [_emit(node.left, names, _CMP + 1)]
        for op, operand in zip(node.ops, node.rights, strict=True):
            parts += [_COMPARE_TOKENS[op], _emit(operand, names, _CMP + 1)]
        return " ".join(parts), _CMP
    if isinstance(node, Conditional):
        body = _emit(node.body, names, _OR)
        test = _emit(node.test, names, _OR)
        return f"{body} if {test} else {_emit(node.orelse, names, _TEST)}", _TEST
    # A tuple literal is a list too: the value is a JSON array, and a tuple would never
    # equal the list the same data decodes to (`pair == (1, 2)` was always false).
    spread = node.spread or (False,) * len(node.items)
    items = (
        # `*` takes a sum or tighter (Python's `*` bitwise_or): anything else in parentheses
        "*" + _emit(item, names, _SUM) if spreads else _emit(item, names, _TEST)
        for item, spreads in zip(node.items, spread, strict=True)
    )
    return "[" + ", ".join(items) + "]", _ATOM


def _operand(node: Node, names: Names, need: int, numbers_only: bool) -> str:
    """An arithmetic operand; ``numbers_only`` (``Arith.numbers_only``) behind a unary plus,
    which takes only numbers (a TypeError for a string or a list, which the runtime reports
    as the guard's or action's error) and keeps a number as it is."""
    return "+" + _emit(node, names, _FACTOR) if numbers_only else _emit(node, names, need)


def _session_code(code: str) -> str:
    """``Names.session``: ``self.session_id`` or a plain identifier, nothing else."""
    if code == "self.session_id":
        return code
    return _identifier(code)


def _constant(value: int | float | str | bool | None) -> tuple[str, int]:
    if value is None or isinstance(value, bool):
        return repr(value), _ATOM
    if isinstance(value, str):
        return pystr(value), _ATOM
    if isinstance(value, int):
        return str(int(value)), _ATOM if value >= 0 else _FACTOR
    if not math.isfinite(value):
        raise ValueError("a number too large for Python source")
    # black writes an exponent without its "+": 1e16, not repr's 1e+16.
    return repr(float(value)).replace("e+", "e"), _ATOM if value >= 0 else _FACTOR
