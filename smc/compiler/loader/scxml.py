"""An SCXML document (W3C State Chart XML, python datamodel) -> the plain machine document the
YAML loader produces, so the schema, the checker and the code generator are shared.

``load_scxml_text`` returns a :class:`LoadedDocument` whose ``path`` and ``text`` are the
SCXML file's and whose positions are those of its elements and attributes, so every later
diagnostic (an unknown state, a type mismatch in a ``cond``) points into the ``.scxml``;
``smc import`` writes the same data as YAML (``to_yaml``, deterministic bytes).

The document is untrusted. It is parsed with expat (what ``xml.etree.ElementTree`` uses
underneath; read directly for the line and column of each element): a ``<!DOCTYPE>`` is
refused, so no entity is ever declared, expanded or fetched, and the depth and the number of
elements are bounded. Attribute text reaches the machine only as data: expressions are parsed
with :mod:`ast` (which runs nothing) to rewrite a few SCXML names, and the result goes to the
expression checker like any ``when:``.

What maps (docs/language.md, "SCXML import"):

- ``<state>``, ``<parallel>``, ``<final>``, ``<history>``, ``<initial>``, ``initial=`` and
  ``<transition event cond target type>`` onto smc's statechart items and transitions (one
  without ``target`` onto a targetless transition; its content onto its ``actions:``, which
  run when it is taken); ``initial="a b"`` and an ``<initial>`` to several targets onto an
  ``initial``/``initial_state`` list; the content of an ``<initial>`` transition onto the
  state's ``initial_actions:``, of a history's transition onto its ``default_actions:``;
- ``<datamodel><data id expr>`` onto ``context:`` fields typed from the literal (a field
  without ``expr`` is untyped, default null); under ``binding="late"`` a state's own data is
  an untyped field assigned on the state's first entry (``late_block``); ``<data src>``
  names a file beside the document, read at import (``Importer.data_source``): its value
  is the field's default (untyped);
- ``<raise>``, ``<log>``, ``<assign>``, ``<if>/<elseif>/<else>`` and ``<send event delay>``
  (``eventexpr``/``delayexpr``: ``event_expr``/``delay_expr``; ``idlocation``:
  ``id_location``) to the machine itself onto the actions of the same names; a ``<send
  idlocation>`` that becomes a raise (it fails, or it sends to ``#_internal``) onto a raise
  with ``id_location``, whose event carries the id (``_event.sendid``: ``event.send_id``);
- in expressions, ``true``/``false``/``null`` (not data ids) are ``True``/``False``/``None``,
  ``_event.name`` and ``_event.type`` are ``event.name`` and ``event.type`` (the event being
  handled), ``_event`` as a value ``event``, ``_name`` the document's name,
  ``_ioprocessors`` ``machine.io_processors``, and the ``_event`` fields the document
  decides are constants (``EventFacts``; ``origintype`` is ``machine.processor_type``, the
  SCXML processor's type, equal to its URI and to ``'scxml'``); ``_event`` or a data id
  alone as a condition is its truth in smc's language;
- a computed ``<send>`` target or type is an ``if`` block dispatching it as SCXML does
  (``Importer.routing``); ``_ioprocessors[<SCXML>]['location']`` is this session's address;
- executable content that fails whatever the data (an assignment to a system variable or to
  no data id, an expression Python cannot parse, an unsupported send type) is a raise of
  ``error.execution``, and the rest of its block is left out (``Importer.fails``); so is a
  ``<send>`` to a target SCXML's processor cannot address (``baz``); one to another session,
  ``#_parent`` or an invoked child (none exists) is a raise of ``error.communication``;
- a ``cond`` Python cannot parse leaves its transition out and raises ``error.execution``
  first in the transitions selected after it was evaluated (``carry_cond_errors``).

Event descriptors are expanded here, because smc matches event names exactly: a transition's
``event="a b.* *"`` becomes one transition per event of the document's closed set of names it
matches (SCXML's prefix match: ``a`` matches ``a`` and ``a.x``; ``*`` everything), in the
set's order. The set, in document order: every event a ``<raise>`` or ``<send>`` names and
every plain descriptor a transition names, ``done.state.<id>`` at each compound or parallel
state, then ``error.execution`` and ``error.communication``. A transition that an earlier one
from the same state always takes first (same event, no ``cond``, or the same ``cond``) is dead
in SCXML and is left out, as smc would refuse it (SMC012, SMC013).

Everything else is an SMC101 error naming the feature, at its element: ``<invoke>``,
``<script>``, ``<foreach>``, ``<cancel>``, ``<donedata>``, ``<content>``, ``<param>``, a
``<send>`` to a URI with a scheme or with ``namelist``, a ``<data src>`` that is a URL or
out of the document's folder, the ``_event`` fields the document does not decide and
``_x``. An attribute SCXML does not define is ignored with a warning (SMC102), and so is a
``<data src>`` file that cannot be read (SMC103: empty, error.execution at the start).
Malformed XML is SMC100.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from xml.parsers import expat

import yaml

from smc.compiler.diagnostics import Diagnostic
from smc.compiler.loader.document import LoadedDocument, PathKey

SCXML_NS = "http://www.w3.org/2005/07/scxml"
SCXML_SUFFIX = ".scxml"

#: Bounds on the document, as the YAML loader's (MAX_DEPTH, MAX_NODES).
MAX_DEPTH = 64
MAX_ELEMENTS = 100_000

#: Executable content smc runs when a transition is taken (the rest of a transition's
#: ``actions:`` keep the design-style meaning, docs/language.md): anything else inside a
#: ``<transition>`` is refused. All that the import maps: ``<raise>`` (and a ``<send>`` to
#: ``#_internal``) as the chart core's raise, the others as the class's pure actions.
TRANSITION_ACTIONS = frozenset({"assign", "raise", "send", "log", "if"})

#: Events the SCXML processor itself raises, which a ``*`` descriptor also matches.
PLATFORM_EVENTS = ("error.execution", "error.communication")

#: Elements smc has no counterpart for, with what to say about each.
UNSUPPORTED = {
    "invoke": "<invoke> (external services and child sessions)",
    "script": "<script> (smc runs no code from a document)",
    "foreach": "<foreach>",
    "cancel": "<cancel> (a delayed send cannot be cancelled)",
    "donedata": "<donedata> (done events carry no data)",
    "content": "<content> (events carry no data)",
    "param": "<param> (events carry no data)",
    "finalize": "<finalize>",
}

#: Attributes each element may have (anything else: SMC102, ignored).
_ATTRIBUTES = {
    "scxml": {"initial", "name", "version", "datamodel", "binding", "exmode"},
    "state": {"id", "initial"},
    "parallel": {"id"},
    "final": {"id"},
    "history": {"id", "type"},
    "initial": set(),
    "transition": {"event", "cond", "target", "type"},
    "onentry": set(),
    "onexit": set(),
    "datamodel": set(),
    "data": {"id", "expr", "src"},
    "raise": {"event"},
    "log": {"label", "expr"},
    "assign": {"location", "expr"},
    "if": {"cond"},
    "elseif": {"cond"},
    "else": set(),
    "send": {
        "event",
        "eventexpr",
        "target",
        "targetexpr",
        "type",
        "typeexpr",
        "id",
        "idlocation",
        "delay",
        "delayexpr",
        "namelist",
    },
}
_EXECUTABLE = ("raise", "log", "assign", "if", "send")
_SELF_TARGETS = ("", "#_internal")
_SCXML_PROCESSOR = "http://www.w3.org/TR/scxml/#SCXMLEventProcessor"
#: A target with a URI scheme (``http://host/x``): a place smc cannot tell unreachable.
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_DELAY = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)\s*$")
_SYSTEM_NAMES = ("_sessionid", "_name", "_ioprocessors", "_x")


#: The largest file ``<data src>`` may name (its value becomes a default in the class).
MAX_SOURCE_BYTES = 1 << 20


class _Loaded(NamedTuple):
    """The value a ``<data src>`` file holds."""

    value: Any


class _Unreadable(NamedTuple):
    """A ``<data src>`` file that cannot be read (SCXML 5.3: error.execution)."""


class _Mark(NamedTuple):
    """A parser mark as the YAML loader keeps them: 0-based line and column."""

    line: int
    column: int


@dataclass
class Element:
    """One element: its local name, attributes, children and where it and each attribute's
    value (its opening quote) start (1-based line and column)."""

    tag: str
    namespace: str
    attrib: dict[str, str]
    line: int
    col: int
    attr_pos: dict[str, tuple[int, int]] = field(default_factory=dict)
    children: list[Element] = field(default_factory=list)
    text: str = ""

    def iter(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            yield from child.iter()


class ScxmlSyntaxError(Exception):
    def __init__(self, line: int, col: int, message: str, hint: str) -> None:
        super().__init__(message)
        self.line, self.col, self.message, self.hint = line, col, message, hint


# ---- parsing ------------------------------------------------------------------------


def _char_col(lines: list[bytes], line: int, byte_col: int) -> int:
    """The 1-based character column of a 0-based byte column on a 1-based line."""
    if not 1 <= line <= len(lines):
        return byte_col + 1
    return len(lines[line - 1][:byte_col].decode("utf-8", "replace")) + 1


def _attribute_positions(
    raw: bytes, start: int, names: list[str], lines: list[bytes]
) -> dict[str, tuple[int, int]]:
    """Where each attribute's value (its quote) is, scanning the start tag at ``start``."""
    end = raw.find(b">", start)
    tag = raw[start : end if end >= 0 else len(raw)]
    found: dict[str, tuple[int, int]] = {}
    for name in names:
        local = re.escape(name.encode("utf-8", "replace"))
        match = re.search(rb"[\s](?:[\w.\-]+:)?" + local + rb"\s*=\s*(?=[\"'])", tag)
        if match is None:
            continue
        at = start + match.end()
        line = raw.count(b"\n", 0, at) + 1
        byte_col = at - (raw.rfind(b"\n", 0, at) + 1)
        found[name] = (line, _char_col(lines, line, byte_col))
    return found


def parse_scxml(raw: bytes) -> Element:
    """The element tree of ``raw``; ``ScxmlSyntaxError`` for malformed XML, a DOCTYPE, or a
    document too deep or too large."""
    lines = raw.split(b"\n")
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[Element] = []
    roots: list[Element] = []
    count = [0]

    # Expat's columns count characters (code points), not bytes: 0-based, so one is added.
    def where() -> tuple[int, int]:
        return parser.CurrentLineNumber, parser.CurrentColumnNumber + 1

    def start(name: str, attrs: dict[str, str]) -> None:
        line, col = where()
        count[0] += 1
        if len(stack) >= MAX_DEPTH or count[0] > MAX_ELEMENTS:
            raise ScxmlSyntaxError(
                line,
                col,
                f"the document is nested more than {MAX_DEPTH} deep or has more than "
                f"{MAX_ELEMENTS} elements",
                "a state machine this large is not supported",
            )
        namespace, _, local = name.rpartition(" ")
        attrib: dict[str, str] = {}
        for key, value in attrs.items():
            key_ns, _, key_local = key.rpartition(" ")
            if key_ns:  # attributes of other namespaces (conf:, xmlns) are not SCXML's
                continue
            attrib[key_local] = value
        element = Element(local, namespace, attrib, line, col)
        element.attr_pos = _attribute_positions(raw, parser.CurrentByteIndex, list(attrib), lines)
        (stack[-1].children if stack else roots).append(element)
        stack.append(element)

    def end(name: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if stack:
            stack[-1].text += data

    def refuse_dtd(*args: Any) -> None:
        line, col = where()
        raise ScxmlSyntaxError(
            line,
            col,
            "the document has a <!DOCTYPE>: smc reads no DTD and expands no entity",
            "remove the DOCTYPE (an SCXML document needs none)",
        )

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    parser.ExternalEntityRefHandler = refuse_dtd  # type: ignore[assignment]
    try:
        parser.Parse(raw, True)
    except expat.ExpatError as error:
        raise ScxmlSyntaxError(
            error.lineno,
            error.offset + 1,
            f"invalid XML: {expat.ErrorString(error.code)}",
            "fix the XML syntax at this point",
        ) from None
    if not roots:
        raise ScxmlSyntaxError(1, 1, "the document has no root element", "")
    return roots[0]


# ---- expressions -----------------------------------------------------------------------


class _Refused(Exception):
    """A construct the import cannot map (becomes SMC101 at the attribute)."""


@dataclass(frozen=True)
class EventFacts:
    """What the document says about where its events come from, for the ``_event`` fields
    the import maps statically (docs/language.md, "SCXML import")."""

    #: the machine's name (``<scxml name>``), which ``_name`` is; None: not given.
    name: str | None = None
    #: events some ``<send>`` sends and no ``<raise>`` raises (external, from the SCXML
    #: event processor), in document order.
    sent_only: tuple[str, ...] = ()
    #: events both sent and raised: their ``origintype`` is not known statically.
    mixed: tuple[str, ...] = ()
    #: whether the document has a ``<send>`` at all (then ``origin`` is not null).
    sends: bool = False
    #: whether some ``<send>`` has an ``id``/``idlocation`` (then ``sendid`` is not null).
    send_ids: bool = False
    #: when the document decides each event's ``sendid``: (event, the ``<send id>`` that
    #: sends it), for the events sent with an id (any other event: none); None: undecided.
    sendids: tuple[tuple[str, str], ...] | None = None
    #: whether some ``<send idlocation>`` becomes a raise whose event carries the id it
    #: draws (``_carries``): then ``_event.sendid`` of an event no ``<send id>`` decides is
    #: ``event.send_id`` (None for every event but those), else None.
    carried_ids: bool = False
    #: data id -> its JSON Schema types, to read a bare id in a condition as Python's truth
    #: of its value (``cond="Var1"`` with a string: ``Var1 != ''``).
    data_types: tuple[tuple[str, tuple[str, ...]], ...] = ()


#: The fields of SCXML's ``_event`` (``hasattr(_event, "x")`` is true for each).
SCXML_EVENT_FIELDS = ("name", "type", "sendid", "origin", "origintype", "invokeid", "data")


class _Rewrite(ast.NodeTransformer):
    def __init__(
        self, data_ids: set[str], event: str | None, facts: EventFacts, condition: bool
    ) -> None:
        self.data_ids = data_ids
        self.event = event
        self.facts = facts
        self.condition = condition
        self.changed = False

    def _new(self, text: str, node: ast.AST) -> ast.expr:
        self.changed = True
        made = ast.parse(text, mode="eval").body
        for child in ast.walk(made):
            ast.copy_location(child, node)
        return made

    def visit_Name(self, node: ast.Name) -> ast.AST:
        constants = {"true": True, "false": False, "null": None}
        if node.id in self.data_ids:
            return node
        if node.id in constants:
            self.changed = True
            return ast.copy_location(ast.Constant(constants[node.id]), node)
        if node.id == "_event":
            # as a value: smc's event object (name, type, data)
            return self._new("event", node)
        if node.id == "_name" and self.facts.name is not None:
            self.changed = True
            return ast.copy_location(ast.Constant(self.facts.name), node)
        if node.id == "_sessionid":
            return self._new("machine.session_id", node)
        if node.id == "_ioprocessors":
            return self._new("machine.io_processors", node)
        if node.id in _SYSTEM_NAMES:
            raise _Refused(f"the system variable `{node.id}`")
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        if self.condition and isinstance(node.op, ast.Not):
            truth = self.truth(node.operand)
            if truth is not None:
                return ast.copy_location(ast.UnaryOp(ast.Not(), truth), node)
        self.generic_visit(node)
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        if not self.condition:
            self.generic_visit(node)
            return node
        values: list[ast.expr] = []
        for value in node.values:
            truth = self.truth(value)
            values.append(truth if truth is not None else self.visit(value))
        node.values = values
        return node

    def truth(self, node: ast.expr) -> ast.expr | None:
        """Python's truth of ``node`` as a condition smc's language accepts, for ``_event``
        (whether an event has been handled) and a bare data id of known type; else None."""
        if _is_event(node):
            return self._new("event.name is not None", node)
        if not isinstance(node, ast.Name):
            return None
        types = dict(self.facts.data_types).get(node.id)
        if not types:  # untyped: the generated code takes Python's truth itself
            return None
        name = node.id
        tests = {"string": f"{name} != ''", "integer": f"{name} != 0", "number": f"{name} != 0"}
        kinds = [t for t in types if t != "null"]
        if kinds == ["boolean"] and "null" not in types:
            return None
        if not kinds:
            return self._new(f"{name} is not None", node)
        if len(kinds) == 1 and kinds[0] in tests:
            test = tests[kinds[0]]
            return self._new(f"{name} is not None and {test}" if "null" in types else test, node)
        return None

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        if _io_location(node):
            return self._new(_SELF_ADDRESS, node)
        self.generic_visit(node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if _io_location(node):
            return self._new(_SELF_ADDRESS, node)
        # hasattr(_event, "field"): SCXML's event has every one of its fields
        if (
            isinstance(node.func, ast.Name)
            and node.func.id == "hasattr"
            and len(node.args) == 2
            and not node.keywords
            and _is_event(node.args[0])
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in SCXML_EVENT_FIELDS
        ):
            self.changed = True
            return ast.copy_location(ast.Constant(True), node)
        self.generic_visit(node)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if not _is_event(node.value):
            self.generic_visit(node)
            return node
        facts = self.facts
        if node.attr == "name":
            return self._new("event.name", node)
        if node.attr == "type":
            return self._new("event.type", node)
        if node.attr == "invokeid":  # smc invokes nothing
            return self._new("None", node)
        if node.attr == "sendid" and not facts.send_ids:
            return self._new("None", node)
        if node.attr == "sendid" and facts.sendids is not None:
            # each event sent with an id is sent with that one only (``sendid_facts``); an
            # event raised by a send that carries its id has it (``_carries``)
            text = "event.send_id" if facts.carried_ids else "None"
            for sendid in reversed(list(dict.fromkeys(i for _, i in facts.sendids))):
                names = repr([n for n, i in facts.sendids if i == sendid])
                text = f"{sendid!r} if event.name in {names} else {text}"
            return self._new(text, node)
        if node.attr == "origin" and not facts.mixed:
            if not facts.sent_only:
                return self._new("None", node)
            # an event this session sent itself comes from this session (6.2.4)
            names = repr(list(facts.sent_only))
            return self._new(f"{_SELF_ADDRESS} if event.name in {names} else None", node)
        if node.attr == "origintype" and not facts.mixed:
            if not facts.sent_only:
                return self._new("None", node)
            # the SCXML processor's type: its URI, equal to its short form 'scxml' too
            names = repr(list(facts.sent_only))
            return self._new(f"machine.processor_type if event.name in {names} else None", node)
        if node.attr == "data":
            raise _Refused("`_event.data` (the events of an SCXML import carry no data)")
        raise _Refused(f"`_event.{node.attr}`")


def _sendid_facts(
    sends: list[Element], raised: set[str], data_ids: set[str]
) -> tuple[tuple[str, str], ...] | None:
    """Each event's ``_event.sendid`` when the document decides it, for the events a
    ``<send>`` to this session delivers (the others' is ``event.send_id``: see
    ``_carries``): every ``<send>`` with an ``id`` is a plain send to this session of a
    named event (no ``target``, ``type``, computed attribute or ``namelist``: nothing that
    fails or raises and puts the id on an error or internal event), an event so sent is
    sent with no other id (nor without one) and never raised (nor a platform or done
    event), no ``<send>`` computes its event and every ``idlocation`` is on a ``<send>``
    that becomes a raise carrying its id (``_carries``): the id a ``<send idlocation>``
    to this session draws goes with the event it sends, out of the machine, and the
    event is delivered by ``fire``, which takes no id."""
    ids: dict[str, str | None] = {}
    plain = {"event", "id", "delay"}
    for element in sends:
        attrib = element.attrib
        if "eventexpr" in attrib:
            return None
        if "idlocation" in attrib:
            if not _carries(attrib, data_ids):
                return None
            continue
        sendid = attrib.get("id")
        event = attrib.get("event", "").strip()
        if attrib.get("type", _SCXML_PROCESSOR) == _SCXML_PROCESSOR:
            attrib = {k: v for k, v in attrib.items() if k != "type"}
        if sendid is not None and (not event or not set(attrib) <= plain):
            return None
        internal = event in raised or event in PLATFORM_EVENTS or event.startswith("done.")
        if ids.setdefault(event, sendid) != sendid or (sendid is not None and internal):
            return None
    return tuple((event, sendid) for event, sendid in ids.items() if sendid is not None)


def _carries(attrib: dict[str, str], data_ids: set[str]) -> bool:
    """Whether a ``<send idlocation>`` becomes a raise whatever the data, whose event
    carries the id it draws (``Importer.send``): its type is one the processor does not
    support, or its target one it cannot address (error.execution), another session
    (error.communication) or ``#_internal`` (the event itself); fixed attributes only (a
    computed type or target may also send out of the machine), no ``namelist`` (a name
    that is no location fails before the id is drawn) and a location that is a data id."""
    if attrib.get("idlocation", "").strip() not in data_ids or "namelist" in attrib:
        return False
    if "typeexpr" in attrib or "targetexpr" in attrib:
        return False
    if attrib.get("type", _SCXML_PROCESSOR) != _SCXML_PROCESSOR:
        return True
    target = attrib.get("target", "").strip()
    return target == "#_internal" or (target != "" and not _URI_SCHEME.match(target))


def _types_of(schema: Any) -> tuple[str, ...]:
    """A context field's JSON Schema types (none: untyped, any value)."""
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(kind, str):
        return (kind,)
    return tuple(kind) if isinstance(kind, list) else ()


#: This session's address for the SCXML event processor (``#_scxml_<sessionid>``).
_SELF_ADDRESS = "'#_scxml_' + machine.session_id"


def _io_location(node: ast.AST) -> bool:
    """``_ioprocessors[<the SCXML processor>]['location']`` (or ``.get('location')``):
    this session's address."""
    if isinstance(node, ast.Call):
        if node.keywords or len(node.args) != 1:
            return False
        func, key = node.func, node.args[0]
        if not (isinstance(func, ast.Attribute) and func.attr == "get"):
            return False
        base = func.value
    elif isinstance(node, ast.Subscript):
        base, key = node.value, node.slice
    else:
        return False
    return (
        isinstance(key, ast.Constant)
        and key.value == "location"
        and isinstance(base, ast.Subscript)
        and isinstance(base.value, ast.Name)
        and base.value.id == "_ioprocessors"
        and isinstance(base.slice, ast.Constant)
        and base.slice.value in (_SCXML_PROCESSOR, "scxml")
    )


def _operand(text: str) -> str:
    """``text`` as an operand of ``==``: parenthesized unless it is a name, a field or a
    literal (text that does not parse is left for the checker, parenthesized)."""
    try:
        body = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return f"({text})"
    simple = isinstance(body, ast.Name | ast.Attribute | ast.Constant | ast.Subscript)
    return text.strip() if simple else f"({text})"


def _raise(event: str, id_location: str | None = None) -> dict[str, Any]:
    """A raise of ``event``; with ``id_location``, one that draws an id into that data id,
    which the event carries (a ``<send idlocation>`` that becomes a raise)."""
    action = {"type": "raise", "event": event}
    if id_location is not None:
        action["id_location"] = id_location
    return action


def _raises(actions: Any) -> bool:
    """Whether imported actions (an `if` block's branches too) contain a raise."""
    if isinstance(actions, list):
        return any(_raises(action) for action in actions)
    if isinstance(actions, dict):
        return actions.get("type") == "raise" or any(
            _raises(value) for value in actions.values() if isinstance(value, list | dict)
        )
    return False


def data_source_path(document: str, src: str) -> Path | str:
    """The file a ``<data src>`` of the document at ``document`` names: ``file:name`` or
    ``name``, a relative path resolved in the document's folder and staying inside it
    (symbolic links followed); else why not (smc fetches no URL and reads nothing else)."""
    relative = src.strip()
    scheme = _URI_SCHEME.match(relative)
    if scheme is not None:
        if scheme.group(0).lower() != "file:" or relative[5:].startswith("/"):
            return "smc fetches nothing: only a file beside the document, `file:name` or `name`"
        relative = relative[5:]
    folder = Path(document).resolve().parent
    if not relative or Path(relative).is_absolute():
        return "only a file inside the document's folder"
    target = (folder / relative).resolve()
    if not target.is_relative_to(folder):
        return "only a file inside the document's folder"
    return target


def data_source_files(document: str, raw: bytes) -> list[Path]:
    """The files the document's ``<data src>`` elements name (those it may read: inside its
    folder, whether they exist or not), for the caches whose key is what a build reads;
    none when the document is not well-formed (the import then reads nothing)."""
    try:
        root = parse_scxml(raw)
    except ScxmlSyntaxError:
        return []
    found: list[Path] = []
    for element in root.iter():
        if element.tag == "data" and "src" in element.attrib:
            target = data_source_path(document, element.attrib["src"])
            if isinstance(target, Path):
                found.append(target)
    return found


def _read_source(target: Path) -> bytes:
    """A ``<data src>`` file's bytes: a regular file (not a pipe or a device, which could
    block or never end) of at most ``MAX_SOURCE_BYTES``; OSError or ValueError else."""
    if target.exists() and not target.is_file():
        raise ValueError("it is not a regular file")
    with target.open("rb") as handle:
        raw = handle.read(MAX_SOURCE_BYTES + 1)
    if len(raw) > MAX_SOURCE_BYTES:
        raise ValueError(f"it is larger than {MAX_SOURCE_BYTES} bytes")
    return raw


def data_sources_key(document: str, raw: bytes) -> bytes:
    """What the document's ``<data src>`` files hold, as bytes for a cache key (each file's
    path and digest, or that it cannot be read): a build of the document is reused only
    while they are unchanged, since their values are compiled into the class."""
    parts: list[bytes] = []
    for source in data_source_files(document, raw):
        try:
            mark = b"+" + hashlib.sha256(_read_source(source)).hexdigest().encode()
        except (OSError, ValueError):
            mark = b"-"
        parts.append(str(source).encode("utf-8", "surrogateescape") + b"\0" + mark)
    return b"\0".join(parts)


def _sent_events(data: Any) -> Iterator[str]:
    """The events the ``send`` actions in imported data (at any depth) name."""
    if isinstance(data, list):
        for item in data:
            yield from _sent_events(item)
    elif isinstance(data, dict):
        if data.get("type") == "send" and isinstance(data.get("event"), str):
            yield data["event"]
        for value in data.values():
            if isinstance(value, list | dict):
                yield from _sent_events(value)


def _unparsable(text: str | None) -> bool:
    """Whether ``text`` is no Python expression at all (``1 = 1``): evaluating it always
    fails. Parsing only; nothing is evaluated."""
    if text is None:
        return False
    try:
        ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return True
    except (ValueError, RecursionError, MemoryError):
        return False
    return False


def _is_event(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "_event"


def translate(
    text: str,
    data_ids: set[str],
    event: str | None = None,
    facts: EventFacts | None = None,
    *,
    condition: bool = True,
) -> str:
    """``text`` (a python-datamodel expression) in smc's expression language: unchanged
    unless an SCXML name is rewritten (then ``ast.unparse``d). Text that does not parse is
    left for the expression checker to report (SMC090). ``_Refused`` for what cannot map."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return text
    rewrite = _Rewrite(data_ids, event, facts or EventFacts(), condition)
    try:
        truth = rewrite.truth(tree.body) if condition else None
        new = rewrite.visit(tree) if truth is None else ast.Expression(truth)
    except RecursionError:
        return text
    if not rewrite.changed:
        return text
    try:
        return ast.unparse(new)
    except (RecursionError, ValueError):
        return text


_LITERAL_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (type(None), "null"),
    (list, "array"),
    (dict, "object"),
)


def literal_value(text: str, data_ids: set[str], name: str | None = None) -> Any:
    """The value of a literal expression (numbers, strings, booleans, None, lists, tuples
    and dicts of them; ``true``/``false``/``null`` too), walked from its ``ast`` without
    evaluating anything; ``_name`` is ``name``, the machine's name, when given.
    ``_Refused`` for anything else."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise _Refused("a <data> `expr` that is not a literal") from None
    constants = {"true": True, "false": False, "null": None}

    def value(node: ast.AST, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise _Refused("a <data> `expr` nested too deep")
        if isinstance(node, ast.Constant) and isinstance(
            node.value, bool | int | float | str | type(None)
        ):
            return node.value
        if isinstance(node, ast.Name) and node.id in constants and node.id not in data_ids:
            return constants[node.id]
        if isinstance(node, ast.Name) and node.id == "_name" and name is not None:
            return name
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub | ast.UAdd)
            and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, int | float)
            and not isinstance(node.operand.value, bool)
        ):
            number = node.operand.value
            return -number if isinstance(node.op, ast.USub) else number
        if isinstance(node, ast.List | ast.Tuple):
            return [value(item, depth + 1) for item in node.elts]
        if isinstance(node, ast.Dict) and all(
            isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys
        ):
            return {
                k.value: value(v, depth + 1)  # type: ignore[union-attr]
                for k, v in zip(node.keys, node.values, strict=True)
            }
        raise _Refused("a <data> `expr` that is not a literal (smc's context defaults are values)")

    return value(tree.body)


def json_type(value: Any) -> str:
    for kind, name in _LITERAL_TYPES:
        if type(value) is kind:
            return name
    return "null"


# ---- the import ------------------------------------------------------------------------


class Importer:
    def __init__(self, path: str, text: str, root: Element) -> None:
        self.path = path
        self.root = root
        self.doc = LoadedDocument(path=path, text=text, data=None)
        self.problems: list[Diagnostic] = []
        self.data_ids: set[str] = set()
        self.events: list[str] = []
        self.transitions: list[dict[str, Any]] = []
        # per transition index: the element it came from (for positions)
        self.transition_elements: list[Element] = []
        self.data: dict[str, Any] = {}
        self.facts = EventFacts()
        #: the element ``fails`` mapped last, until ``content`` has seen it
        self.failed: Element | None = None
        #: the ``<data>`` whose ``expr`` Python cannot parse (``raise_at_start``)
        self.init_errors: list[Element] = []
        #: binding="late": each state's own <data> (id, element), bound on its first entry,
        #: and the boolean field that says it has been (``late_block``).
        self.late: dict[str, list[tuple[str, Element]]] = {}
        self.late_flags: dict[str, str] = {}
        #: a `cond` Python cannot parse, per (source, event), waiting for the transitions
        #: after it that carry its error.execution (``transition``)
        self.cond_errors: dict[tuple[str, str | None], list[Element]] = {}
        self.cond_sources: list[tuple[str, Element]] = []

    # -- reporting and positions

    def refuse(self, element: Element, what: str, hint: str = "", attr: str | None = None) -> None:
        line, col = (
            element.attr_pos.get(attr, (element.line, element.col))
            if attr
            else (
                element.line,
                element.col,
            )
        )
        self.problems.append(
            Diagnostic(
                self.path,
                line,
                col,
                "SMC101",
                f"SCXML feature not supported by smc: {what}",
                hint
                or "smc compiles the statechart core of SCXML (docs/language.md, "
                "SCXML import); rewrite this part or leave it out",
            )
        )

    def place(self, path: PathKey, element: Element, attr: str | None = None) -> None:
        line, col = (
            element.attr_pos.get(attr, (element.line, element.col))
            if attr
            else (
                element.line,
                element.col,
            )
        )
        mark = _Mark(line - 1, col - 1)
        self.doc.values[path] = mark
        self.doc.keys[path] = mark

    # -- the walk

    def check_attributes(self, element: Element) -> bool:
        """Whether ``element`` is an SCXML element this import knows; reports unknown
        attributes (SMC102) and unsupported elements (SMC101)."""
        if element.namespace not in (SCXML_NS, ""):
            self.refuse(element, f"the element <{element.tag}> of namespace {element.namespace}")
            return False
        if element.tag in UNSUPPORTED:
            self.refuse(element, UNSUPPORTED[element.tag])
            return False
        known = _ATTRIBUTES.get(element.tag)
        if known is None:
            self.refuse(element, f"the element <{element.tag}>", "it is not an SCXML element")
            return False
        for name in element.attrib:
            if name not in known:
                line, col = element.attr_pos.get(name, (element.line, element.col))
                self.problems.append(
                    Diagnostic(
                        self.path,
                        line,
                        col,
                        "SMC102",
                        f"<{element.tag}> has no attribute {name!r} in SCXML; it is ignored",
                        "attributes known here: " + (", ".join(sorted(known)) or "none"),
                    )
                )
        return True

    def run(self) -> LoadedDocument:
        root = self.root
        if root.tag != "scxml" or root.namespace not in (SCXML_NS, ""):
            self.problems.append(
                Diagnostic(
                    self.path,
                    root.line,
                    root.col,
                    "SMC100",
                    f"the root element is <{root.tag}>, not <scxml>",
                    f'an SCXML document is <scxml xmlns="{SCXML_NS}">',
                )
            )
            return self.doc
        self.check_attributes(root)
        datamodel = root.attrib.get("datamodel", "python")
        if datamodel != "python":
            line, col = root.attr_pos.get("datamodel", (root.line, root.col))
            self.problems.append(
                Diagnostic(
                    self.path,
                    line,
                    col,
                    "SMC102",
                    f"datamodel {datamodel!r}: its expressions are read as the python "
                    "datamodel's (smc's expression language)",
                    'write datamodel="python"',
                )
            )
        if root.attrib.get("binding", "early") not in ("early", "late"):
            self.refuse(root, f"binding={root.attrib['binding']!r}", attr="binding")
        data: dict[str, Any] = {}
        if "name" in root.attrib:
            data["name"] = root.attrib["name"]
            self.place(("name",), root, "name")
        self.data = data
        self.facts = EventFacts(name=root.attrib.get("name"))
        self.collect_data()
        self.collect_events()
        states = [s for s in root.children if s.tag in ("state", "parallel", "final")]
        initial = root.attrib.get("initial", "").split()
        if initial:
            data["initial_state"] = initial[0] if len(initial) == 1 else initial
            self.place(("initial_state",), root, "initial")
            for i in range(len(initial) if len(initial) > 1 else 0):
                self.place(("initial_state", i), root, "initial")
        elif states and "id" in states[0].attrib:
            data["initial_state"] = states[0].attrib["id"]
            self.place(("initial_state",), states[0])
        items: list[Any] = []
        for child in root.children:
            if not self.check_attributes(child):
                continue
            if child.tag in ("state", "parallel", "final"):
                item = self.state(child, ("states", len(items)))
                if item is not None:
                    items.append(item)
            elif child.tag != "datamodel":
                self.refuse(child, f"<{child.tag}> directly inside <scxml>")
        if self.init_errors:
            self.raise_at_start(items, data.get("initial_state"))
        if self.cond_sources:
            self.carry_cond_errors(items)
        if self.context:
            data["context"] = self.context
        data["states"] = items
        self.place(("states",), root)
        for index, (element, transition) in enumerate(
            zip(self.transition_elements, self.transitions, strict=True)
        ):
            self.place_transition(index, element, transition)
        data["transitions"] = self.transitions
        self.place(("transitions",), root)
        taken = {t.get("event") for t in self.transitions}
        if any(name not in taken for name in _sent_events([items, self.transitions])):
            # an event sent that no transition takes (SCXML discards it when it comes):
            # the machine declares its events, so it has that one too
            data["events"] = list(self.events)
            self.place(("events",), root)
        self.place((), root)
        self.doc.data = data
        return self.doc

    # -- data

    def raise_at_start(self, items: list[Any], start: object) -> None:
        """Each ``<data expr>`` Python cannot parse places error.execution in the internal
        queue when the machine starts, before anything the initial state raises: a raise
        first in the initial state's on-entry actions, which run once only when no
        transition enters that state again (else refused)."""
        index = next((i for i, item in enumerate(items) if item.get("name") == start), None)
        inside: set[str] = set()
        work = [items[index]] if index is not None else []
        while work:
            item = work.pop()
            inside.add(str(item.get("name")))
            work += [c for c in item.get("states", ()) if isinstance(c, dict)]
        targets = set()
        for transition in self.transitions:
            to = transition["to"]
            targets.update(to if isinstance(to, list) else [to])
        if index is None or targets & inside:
            for element in self.init_errors:
                self.refuse(
                    element,
                    "a <data> `expr` Python cannot parse or `src` smc cannot read "
                    "(error.execution when the machine starts), in a document whose initial "
                    "state is entered again",
                    attr="expr",
                )
            return
        count = len(self.init_errors)
        prefix: PathKey = ("states", index, "on_entry")
        for table in (self.doc.values, self.doc.keys):
            moved = {
                (*key[:3], key[3] + count, *key[4:]): mark
                for key, mark in table.items()
                if key[:3] == prefix and len(key) > 3 and isinstance(key[3], int)
            }
            for key in [
                k for k in table if k[:3] == prefix and len(k) > 3 and isinstance(k[3], int)
            ]:
                del table[key]
            table.update(moved)
        item = items[index]
        item["on_entry"] = [_raise(PLATFORM_EVENTS[0]) for _ in range(count)] + list(
            item.get("on_entry", [])
        )
        for number, element in enumerate(self.init_errors):
            self.place((*prefix, number), element, "expr")
            self.place((*prefix, number, "type"), element, "expr")
            self.place((*prefix, number, "event"), element, "expr")
        self.place(prefix, self.init_errors[0], "expr")

    def collect_data(self) -> None:
        self.context: dict[str, Any] = {}
        elements = [e for e in self.root.iter() if e.tag == "data"]
        self.data_ids = {e.attrib["id"] for e in elements if "id" in e.attrib}
        for element in self.root.iter():
            if element.tag == "datamodel":
                for child in element.children:
                    if child.tag != "data":
                        self.check_attributes(child)
                        self.refuse(child, f"<{child.tag}> inside <datamodel>")
        assigned: dict[str, list[str]] = {}
        for element in self.root.iter():
            if element.tag == "assign" and "expr" in element.attrib:
                try:
                    value = literal_value(element.attrib["expr"], self.data_ids)
                except _Refused:
                    continue
                assigned.setdefault(element.attrib.get("location", ""), []).append(json_type(value))
            elif element.tag == "send" and "idlocation" in element.attrib:
                # the send's id, a string, is stored there
                assigned.setdefault(element.attrib["idlocation"].strip(), []).append("string")
        owner: dict[int, str] = {}  # a state's own <data> -> its id, under binding="late"
        if self.root.attrib.get("binding") == "late":
            for state in self.root.iter():
                if state.tag in ("state", "parallel") and state.attrib.get("id"):
                    for model in (c for c in state.children if c.tag == "datamodel"):
                        owner.update((id(d), state.attrib["id"]) for d in model.children)
        for element in elements:
            self.check_attributes(element)
            name = element.attrib.get("id")
            if not name:
                self.refuse(element, "a <data> without an `id`")
                continue
            if "src" in element.attrib:
                if "expr" in element.attrib or element.text.strip() or element.children:
                    self.refuse(element, "<data> with `src` and a value of its own", attr="src")
                    continue
                loaded = self.data_source(element)
                if loaded is None:
                    continue  # refused
                element.attr_pos["expr"] = element.attr_pos.get("src", (element.line, element.col))
                if isinstance(loaded, _Unreadable):
                    # SCXML 5.3: error.execution, and the data is there, empty
                    self.init_errors.append(element)
                    self.context[name] = {"default": None}
                    self.place(("context", name), element)
                    self.place(("context", name, "default"), element, "src")
                    continue
                # untyped: the value is the file's, which the document does not state
                self.context[name] = {"default": loaded.value}
                self.place(("context", name), element)
                self.place(("context", name, "default"), element, "src")
                continue
            if element.text.strip() and not element.children and "expr" not in element.attrib:
                # inline content that is a literal value is that value (SCXML 5.3)
                with contextlib.suppress(_Refused):
                    element.attrib["expr"] = repr(literal_value(element.text, self.data_ids))
            if (element.text.strip() and "expr" not in element.attrib) or element.children:
                self.refuse(element, "<data> with inline content (write `expr`)")
                continue
            path: PathKey = ("context", name)
            if id(element) in owner:
                # SCXML 5.2.2: created when the machine starts (empty), its value assigned
                # when its state is first entered (an `if` first in that state's on_entry)
                self.late.setdefault(owner[id(element)], []).append((name, element))
                self.context[name] = {"default": None}
                self.place(path, element)
                self.place((*path, "default"), element)
                continue
            if "expr" not in element.attrib:
                self.context[name] = {"default": None}
            else:
                try:
                    value = literal_value(
                        element.attrib["expr"], self.data_ids, self.root.attrib.get("name")
                    )
                except _Refused:
                    if _unparsable(element.attrib["expr"]):
                        # SCXML 5.3: error.execution, and the data is there, empty
                        self.init_errors.append(element)
                        self.context[name] = {"default": None}
                        self.place(path, element)
                        self.place((*path, "default"), element, "expr")
                        continue
                    # computed when the machine starts, over the data before it (early
                    # binding: document order)
                    try:
                        text = translate(
                            element.attrib["expr"], self.data_ids, facts=self.facts, condition=False
                        )
                    except _Refused as why:
                        self.refuse(element, str(why), attr="expr")
                        continue
                    self.context[name] = {"expr": text}
                    self.place(path, element)
                    self.place((*path, "expr"), element, "expr")
                    continue
                types = [json_type(value)]
                for other in assigned.get(name, []):
                    if other not in types and not (other == "integer" and "number" in types):
                        types.append(other)
                if "number" in types and "integer" in types:
                    types.remove("integer")
                schema: dict[str, Any] = {"type": types[0] if len(types) == 1 else types}
                schema["default"] = value
                self.context[name] = schema
            self.place(path, element)
            self.place((*path, "default"), element, "expr")

        # a name no expression of the document can mean: none of its words
        taken = set(self.data_ids) | set(re.findall(r"\w+", self.doc.text))
        for owner_id, bound in self.late.items():
            flag = "bound_" + re.sub(r"\W", "_", owner_id)
            while flag in taken:
                flag += "_"
            taken.add(flag)
            self.late_flags[owner_id] = flag
            self.context[flag] = {"type": "boolean", "default": False}
            self.place(("context", flag), bound[0][1])
            self.place(("context", flag, "default"), bound[0][1])

    def data_source(self, element: Element) -> _Loaded | _Unreadable | None:
        """The value ``<data src>`` names (docs/language.md, "SCXML import"): a file beside
        the document (``file:name`` or ``name``, relative, inside the document's folder),
        read at import (``MAX_SOURCE_BYTES`` at most) and taken as a literal value
        (``literal_value``: parsed, never evaluated), or else, as SCXML's ECMAScript
        datamodel takes content that is not JSON (B.2.2), as its text with whitespace
        normalized: a string. A file that cannot be read is ``_Unreadable`` (SCXML 5.3:
        error.execution when the machine starts; a warning, SMC103). Anything else (a URL
        to fetch, an absolute path, a path out of the folder) is refused: None."""
        src = element.attrib["src"].strip()
        target = data_source_path(self.path, src)
        if isinstance(target, str):
            self.refuse(element, f"<data src={src!r}> ({target})", attr="src")
            return None
        line, col = element.attr_pos.get("src", (element.line, element.col))
        try:
            text = _read_source(target).decode("utf-8").removeprefix("\ufeff")
        except (OSError, ValueError) as error:
            why = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            self.problems.append(
                Diagnostic(
                    self.path,
                    line,
                    col,
                    "SMC103",
                    f"<data src={src!r}> cannot be read ({why}): the data is empty and "
                    "error.execution is raised when the machine starts",
                    "put the file beside the document, or give the value with `expr`",
                )
            )
            return _Unreadable()
        try:
            return _Loaded(literal_value(text, set()))
        except _Refused:
            return _Loaded(" ".join(text.split()))

    def late_block(self, state: str, path: PathKey) -> dict[str, Any] | None:
        """binding="late": the state's <data> assigned, in document order, the first time it
        is entered (before its <onentry>, SCXML 5.2.2), and its flag set. An `expr` Python
        cannot parse is error.execution there (the data stays empty)."""
        flag = self.late_flags[state]
        then: list[Any] = []
        for name, element in self.late[state]:
            where: PathKey = (*path, "then", len(then))
            text = element.attrib.get("expr", "None")
            if _unparsable(text):
                then.append(_raise(PLATFORM_EVENTS[0]))
                self.place((*where, "event"), element, "expr")
            else:
                try:
                    expr = translate(text, self.data_ids, facts=self.facts, condition=False)
                except _Refused as why:
                    self.refuse(element, str(why), attr="expr")
                    return None
                then.append({"type": "assign", "location": name, "expr": expr})
                self.place((*where, "location"), element, "id")
                self.place((*where, "expr"), element, "expr")
            self.place(where, element)
            self.place((*where, "type"), element)
        first = self.late[state][0][1]
        where = (*path, "then", len(then))
        then.append({"type": "assign", "location": flag, "expr": "True"})
        for key in (where, (*where, "type"), (*where, "location"), (*where, "expr")):
            self.place(key, first)
        for key in (path, (*path, "type"), (*path, "when"), (*path, "then")):
            self.place(key, first)
        return {"type": "if", "when": f"not {flag}", "then": then}

    # -- events

    def collect_events(self) -> None:
        """The closed set of event names, in document order (see the module)."""
        found: dict[str, None] = {}
        for element in self.root.iter():
            if element.tag in ("raise", "send") and element.attrib.get("event"):
                found.setdefault(element.attrib["event"].strip(), None)
            elif element.tag == "send" and "eventexpr" in element.attrib:
                try:
                    value = literal_value(element.attrib["eventexpr"], self.data_ids)
                except _Refused:
                    value = None
                if isinstance(value, str) and value.strip():
                    found.setdefault(value.strip(), None)
            elif element.tag == "transition":
                for descriptor in element.attrib.get("event", "").split():
                    name = descriptor.removesuffix(".*").rstrip(".")
                    if name and name != "*" and "*" not in name:
                        found.setdefault(name, None)
            elif (
                element.tag in ("state", "parallel")
                and "id" in element.attrib
                and (
                    element.tag == "parallel"
                    or any(c.tag in ("state", "parallel", "final") for c in element.children)
                )
            ):
                found.setdefault(f"done.state.{element.attrib['id']}", None)
        for name in PLATFORM_EVENTS:
            found.setdefault(name, None)
        self.events = list(found)
        sent: dict[str, None] = {}
        raised: set[str] = set()
        sends = [e for e in self.root.iter() if e.tag == "send"]
        for element in self.root.iter():
            name = element.attrib.get("event", "").strip()
            if element.tag == "raise" or (
                element.tag == "send" and element.attrib.get("target", "").strip() == "#_internal"
            ):
                raised.add(name)
            elif element.tag == "send" and name:
                sent.setdefault(name, None)
        self.facts = EventFacts(
            name=self.root.attrib.get("name"),
            sent_only=tuple(n for n in sent if n not in raised),
            mixed=tuple(n for n in sent if n in raised),
            sends=bool(sends),
            send_ids=any("id" in e.attrib or "idlocation" in e.attrib for e in sends),
            sendids=_sendid_facts(sends, raised, set(self.data_ids)),
            carried_ids=any(_carries(e.attrib, set(self.data_ids)) for e in sends),
            data_types=tuple((name, _types_of(schema)) for name, schema in self.context.items()),
        )

    def expand(self, descriptors: str) -> list[str]:
        matched: dict[str, None] = {}
        for descriptor in descriptors.split():
            prefix = descriptor.removesuffix("*").rstrip(".")
            for name in self.events:
                if descriptor == "*" or name == prefix or name.startswith(prefix + "."):
                    matched.setdefault(name, None)
        return [name for name in self.events if name in matched]

    # -- states

    def state(self, element: Element, path: PathKey) -> dict[str, Any] | None:
        name = element.attrib.get("id")
        if not name:
            self.refuse(
                element,
                f"a <{element.tag}> without an `id`",
                "give the state an id: smc states are named",
            )
            return None
        item: dict[str, Any] = {"name": name}
        self.place(path, element)
        self.place((*path, "name"), element, "id")
        if element.tag == "final":
            item["final"] = True
        if element.tag == "parallel":
            item["parallel"] = True
        initial = element.attrib.get("initial", "").split()
        if initial:
            self.initial_targets(item, path, initial, element, "initial")
        children: list[Any] = []
        on_entry: list[Any] = []
        on_exit: list[Any] = []
        if name in self.late:
            block = self.late_block(name, (*path, "on_entry", 0))
            if block is not None:
                on_entry.append(block)
        for child in element.children:
            if not self.check_attributes(child):
                continue
            tag = child.tag
            if element.tag == "final" and tag not in ("onentry", "onexit"):
                self.refuse(child, f"<{tag}> inside a <final>")
            elif tag in ("state", "parallel", "final"):
                sub = self.state(child, (*path, "states", len(children)))
                if sub is not None:
                    children.append(sub)
            elif tag == "history":
                sub = self.history(child, (*path, "states", len(children)))
                if sub is not None:
                    children.append(sub)
            elif tag == "initial":
                self.initial(child, item, path, element)
            elif tag == "onentry":
                on_entry.extend(self.content(child.children, (*path, "on_entry"), len(on_entry)))
            elif tag == "onexit":
                on_exit.extend(self.content(child.children, (*path, "on_exit"), len(on_exit)))
            elif tag == "transition":
                self.transition(child, name)
            elif tag == "datamodel":
                pass  # collected with the others (collect_data)
            else:
                self.refuse(child, f"<{tag}> inside <{element.tag}>")
        if on_entry:
            item["on_entry"] = on_entry
        if on_exit:
            item["on_exit"] = on_exit
        if children:
            item["states"] = children
        return item

    def history(self, element: Element, path: PathKey) -> dict[str, Any] | None:
        name = element.attrib.get("id")
        if not name:
            self.refuse(element, "a <history> without an `id`")
            return None
        kind = element.attrib.get("type", "shallow")
        if kind not in ("shallow", "deep"):
            self.refuse(element, f"history type {kind!r}", attr="type")
            return None
        item: dict[str, Any] = {"name": name, "history": kind}
        self.place(path, element)
        for child in element.children:
            if not self.check_attributes(child):
                continue
            if child.tag != "transition":
                self.refuse(child, f"<{child.tag}> inside <history>")
                continue
            if child.children:
                actions = self.content(child.children, (*path, "default_actions"), 0)
                if actions:
                    item["default_actions"] = actions
            targets = child.attrib.get("target", "").split()
            if targets:
                item["to"] = targets[0] if len(targets) == 1 else targets
                self.place((*path, "to"), child, "target")
        return item

    def initial(
        self, element: Element, item: dict[str, Any], path: PathKey, parent: Element
    ) -> None:
        transitions = [c for c in element.children if c.tag == "transition"]
        if "initial" in parent.attrib:
            self.refuse(element, "both an `initial` attribute and an <initial> element")
            return
        if len(transitions) != 1 or len(element.children) != 1:
            self.refuse(element, "an <initial> that is not one <transition>")
            return
        (transition,) = transitions
        self.check_attributes(transition)
        if transition.children:
            actions = self.content(transition.children, (*path, "initial_actions"), 0)
            if actions:
                item["initial_actions"] = actions
        targets = transition.attrib.get("target", "").split()
        if not targets:
            self.refuse(transition, "an <initial> transition without a target", attr="target")
            return
        self.initial_targets(item, path, targets, transition, "target")

    def initial_targets(
        self, item: dict[str, Any], path: PathKey, targets: list[str], element: Element, attr: str
    ) -> None:
        """``initial:`` for a state item: one name, or a list for several."""
        item["initial"] = targets[0] if len(targets) == 1 else list(targets)
        self.place((*path, "initial"), element, attr)
        for i in range(len(targets) if len(targets) > 1 else 0):
            self.place((*path, "initial", i), element, attr)

    # -- transitions

    def transition(self, element: Element, source: str) -> None:
        targets = element.attrib.get("target", "").split()
        cond = element.attrib.get("cond")
        kind = element.attrib.get("type", "external")
        if kind not in ("external", "internal"):
            self.refuse(element, f"transition type {kind!r}", attr="type")
            return
        path_probe: PathKey = ("transitions", len(self.transitions), "actions")
        actions = self.content(element.children, path_probe, 0, transition=True)
        if actions is None:
            return
        if "event" in element.attrib:
            events: list[str | None] = list(self.expand(element.attrib["event"]))
        else:
            events = [None]
        for event in events:
            transition: dict[str, Any] = {"from": source}
            if event is not None:
                transition["event"] = event
            if _unparsable(cond):
                # never enabled; each evaluation raises error.execution (SCXML 5.9)
                if not self.dead({**transition, "when": cond}):
                    self.cond_errors.setdefault((source, event), []).append(element)
                    self.cond_sources.append((source, element))
                continue
            errors = self.cond_errors.get((source, event), []) if not self.dead(transition) else []
            if cond is None:
                self.cond_errors.pop((source, event), None)
            if len(targets) == 1:
                transition["to"] = targets[0]
            elif targets:
                transition["to"] = list(targets)
            elif not actions and not errors:
                transition["to"] = []  # targetless: takes the event, runs nothing
            if cond is not None:
                try:
                    transition["when"] = translate(cond, self.data_ids, event, self.facts)
                except _Refused as refused:
                    self.refuse(element, str(refused), attr="cond")
                    return
            if kind == "internal" and targets:
                transition["type"] = "internal"
            if self.dead(transition):
                continue
            if actions or errors:
                index = len(self.transitions)
                # an earlier `cond` Python cannot parse was evaluated (and failed) whenever
                # this one is selected: its error.execution first (``carry_cond_errors``)
                transition["actions"] = [_raise(PLATFORM_EVENTS[0]) for _ in errors] + actions
                # positions of the actions, as placed under the first expansion
                for key, mark in list(self.doc.values.items()):
                    if key[:3] == path_probe and (index != path_probe[1] or errors):
                        moved: PathKey = ()
                        if len(key) > 3 and isinstance(key[3], int):
                            moved = (key[3] + len(errors), *key[4:])
                        self.doc.values[("transitions", index, "actions", *moved)] = mark
                        self.doc.keys[("transitions", index, "actions", *moved)] = mark
                for number, error in enumerate(errors):
                    for key in ((number,), (number, "type"), (number, "event")):
                        self.place(("transitions", index, "actions", *key), error, "cond")
            self.transitions.append(transition)
            self.transition_elements.append(element)

    def carry_cond_errors(self, items: list[Any]) -> None:
        """A `cond` Python cannot parse is false, and each evaluation places error.execution
        in the internal queue (SCXML 5.9). The import leaves its transition out and raises
        the error first in the actions of each later transition from the same state on the
        same event, up to the first without a cond: exactly those selected after it was
        evaluated. That holds when one is always selected after it (else the error would be
        raised with nothing taken), when nothing preempts the selected one (no <parallel>
        around the state) and when no <onexit> raises (they run before a transition's
        actions, after the selection): else refused."""
        under_parallel: set[str] = set()
        exit_raises = False

        def walk(item: Any, parallel: bool) -> None:
            nonlocal exit_raises
            if not isinstance(item, dict):
                return
            if parallel:
                under_parallel.add(str(item.get("name")))
            exit_raises |= _raises(item.get("on_exit", []))
            for child in item.get("states", ()):
                walk(child, parallel or bool(item.get("parallel")))

        for item in items:
            walk(item, False)
        pending = {id(e) for errors in self.cond_errors.values() for e in errors}
        for source, element in self.cond_sources:
            why = ""
            if id(element) in pending:
                why = "with no later transition on its event without a cond"
            elif source in under_parallel:
                why = "in a state inside a <parallel>"
            elif exit_raises:
                why = "in a document whose <onexit> raises events"
            if why:
                self.refuse(
                    element,
                    "a `cond` Python cannot parse (false, error.execution each time it is "
                    f"evaluated) {why}",
                    attr="cond",
                )

    def dead(self, transition: dict[str, Any]) -> bool:
        """Whether an earlier transition from the same source on the same event is always
        taken first (no condition, or the same one)."""
        for earlier in self.transitions:
            same = earlier["from"] == transition["from"]
            if (
                same
                and earlier.get("event") == transition.get("event")
                and ("when" not in earlier or earlier.get("when") == transition.get("when"))
            ):
                return True
        return False

    def place_transition(self, index: int, element: Element, transition: dict[str, Any]) -> None:
        path: PathKey = ("transitions", index)
        self.place(path, element)
        self.place((*path, "from"), element)
        self.place((*path, "to"), element, "target")
        if isinstance(transition.get("to"), list):
            for i in range(len(transition["to"])):
                self.place((*path, "to", i), element, "target")
        self.place((*path, "event"), element, "event")
        if "when" in transition:
            self.place((*path, "when"), element, "cond")
        self.place((*path, "type"), element, "type")

    # -- executable content

    def content(
        self, elements: list[Element], path: PathKey, start: int, *, transition: bool = False
    ) -> list[Any]:
        """The actions for ``elements`` (under ``path``, numbered from ``start``); refused
        ones are reported and left out (the document then fails to import anyway)."""
        actions: list[Any] = []
        self.failed = None
        for element in elements:
            if self.failed is not None:
                break  # the rest of the block is skipped after an error (SCXML 4.9)
            if not self.check_attributes(element):
                continue
            if element.tag not in _EXECUTABLE:
                self.refuse(element, f"<{element.tag}> as executable content")
                continue
            where: PathKey = (*path, start + len(actions))
            action = self.action(element, where)
            if action is None:
                continue
            if transition and action["type"] not in TRANSITION_ACTIONS:
                self.refuse(
                    element,
                    f"<{element.tag}> on a transition (smc runs only `assign` when a "
                    "transition is taken)",
                    "move it into the target state's <onentry>, or the source's <onexit>, "
                    "where that means the same",
                )
                continue
            actions.append(action)
        return actions

    def expression(
        self, element: Element, attr: str, path: PathKey, *, condition: bool | None = None
    ) -> str | None:
        text = element.attrib.get(attr)
        if text is None:
            self.refuse(element, f"<{element.tag}> without `{attr}`")
            return None
        try:
            value = translate(text, self.data_ids, facts=self.facts, condition=attr == "cond")
        except _Refused as refused:
            self.refuse(element, str(refused), attr=attr)
            return None
        self.place(path, element, attr)
        return value

    def action(self, element: Element, path: PathKey) -> dict[str, Any] | None:
        tag = element.attrib
        self.place(path, element)
        self.place((*path, "type"), element)
        if element.tag == "raise":
            if not tag.get("event"):
                self.refuse(element, "<raise> without `event`")
                return None
            self.place((*path, "event"), element, "event")
            return {"type": "raise", "event": tag["event"].strip()}
        if element.tag == "log":
            action: dict[str, Any] = {"type": "log", "label": tag.get("label", "")}
            self.place((*path, "label"), element, "label")
            if "expr" in tag:
                expr = self.expression(element, "expr", (*path, "expr"))
                if expr is None:
                    return None
                action["expr"] = expr
            return action
        if element.tag == "assign":
            location = tag.get("location", "").strip()
            if element.children or element.text.strip():
                self.refuse(element, "<assign> with inline content (write `expr`)")
                return None
            if location in (*_SYSTEM_NAMES, "_event"):
                # SCXML: assigning to a system variable fails, with error.execution
                # in the internal queue; the variable keeps its value.
                return self.fails(element)
            root = re.split(r"[.\[]", location, maxsplit=1)[0].strip()
            if root not in self.data_ids:
                return self.fails(element)  # no such location: SCXML 5.4, error.execution
            if _unparsable(tag.get("expr")):
                return self.fails(element)  # the python datamodel cannot evaluate it
            if not re.fullmatch(r"[A-Za-z_]\w*", location):
                self.refuse(
                    element,
                    f"assigning to {location!r} (only a <data> id can be a location)",
                    attr="location",
                )
                return None
            expr = self.expression(element, "expr", (*path, "expr"))
            if expr is None:
                return None
            self.place((*path, "location"), element, "location")
            return {"type": "assign", "location": location, "expr": expr}
        if element.tag == "if":
            return self.if_block(element, path)
        return self.send(element, path)

    def fails(self, element: Element, id_location: str | None = None) -> dict[str, Any]:
        """An element the document makes fail whatever the data (SCXML places
        error.execution in the internal queue and skips the rest of its block): a raise of
        error.execution; ``content`` leaves out the elements after it. ``id_location``: a
        failed ``<send idlocation>``'s, whose id the error carries (``carried_id``)."""
        self.failed = element
        return _raise(PLATFORM_EVENTS[0], id_location)

    def carried_id(self, path: PathKey, element: Element, id_location: str | None) -> str | None:
        """A ``<send idlocation>`` that becomes a raise (it fails, or it sends to
        ``#_internal``): the raise draws the send's id into the location and its event
        carries it (``raise`` with ``id_location``: ``_event.sendid`` is ``event.send_id``,
        docs/language.md); placed at the attribute."""
        if id_location is not None:
            self.place((*path, "id_location"), element, "idlocation")
        return id_location

    def if_block(self, element: Element, path: PathKey) -> dict[str, Any] | None:
        when = self.expression(element, "cond", (*path, "when"))
        if when is None:
            return None
        block: dict[str, Any] = {"type": "if", "when": when, "then": []}
        branch: list[Any] = block["then"]
        branch_path: PathKey = (*path, "then")
        for child in element.children:
            if child.tag == "elseif":
                self.check_attributes(child)
                elifs = block.setdefault("elif", [])
                if "else" in block:
                    self.refuse(child, "<elseif> after <else>")
                    return None
                here: PathKey = (*path, "elif", len(elifs))
                cond = self.expression(child, "cond", (*here, "when"))
                if cond is None:
                    return None
                entry: dict[str, Any] = {"when": cond, "then": []}
                elifs.append(entry)
                self.place(here, child)
                branch, branch_path = entry["then"], (*here, "then")
            elif child.tag == "else":
                self.check_attributes(child)
                if "else" in block:
                    self.refuse(child, "a second <else>")
                    return None
                block["else"] = []
                self.place((*path, "else"), child)
                branch, branch_path = block["else"], (*path, "else")
            else:
                branch.extend(self.content([child], branch_path, len(branch)))
                if self.failed is not None:
                    # the rest of the enclosing block too, which only running shows
                    self.refuse(
                        self.failed,
                        "an element that always fails (error.execution) inside <if>",
                    )
                    self.failed = None
                    return None
        return block

    def send(self, element: Element, path: PathKey) -> dict[str, Any] | None:
        tag = dict(element.attrib)
        for attr in ("eventexpr", "targetexpr", "typeexpr", "delayexpr"):
            # a string literal is the attribute it computes (``delayexpr="'1s'"``)
            if attr in tag and attr[:-4] not in tag:
                try:
                    value = literal_value(tag[attr], self.data_ids)
                except _Refused:
                    value = None
                if isinstance(value, str):
                    tag[attr[:-4]] = value
                    element.attr_pos.setdefault(attr[:-4], element.attr_pos.get(attr, (0, 0)))
                    del tag[attr]
        if any(name not in self.data_ids for name in tag.get("namelist", "").split()):
            return self.fails(element)  # SCXML 6.2: a name that is no location
        if "namelist" in tag:
            self.refuse(element, "<send namelist>", attr="namelist")
            return None
        id_location = tag.get("idlocation", "").strip() or None
        if "idlocation" in tag and id_location not in self.data_ids:
            return self.fails(element)  # SCXML 6.2: an idlocation that is no location
        routed: dict[str, str] = {}
        for attr in ("typeexpr", "targetexpr"):
            if attr in tag:
                # decided when the send runs: an `if` around it (``routing``)
                text = self.expression(element, attr, (*path, "when"), condition=False)
                if text is None:
                    return None
                routed[attr] = text
                tag.pop(attr[: -len("expr")], None)
        computed: dict[str, Any] = {}
        for attr, key in (("eventexpr", "event_expr"), ("delayexpr", "delay_expr")):
            if attr in tag:
                # an expression over the data: the class computes it when it sends
                text = self.expression(element, attr, (*path, key), condition=False)
                if text is None:
                    return None
                computed[key] = text
        for child in element.children:
            self.check_attributes(child)
            if child.tag not in UNSUPPORTED:
                self.refuse(child, f"<{child.tag}> inside <send>")
            return None
        if tag.get("type", _SCXML_PROCESSOR) != _SCXML_PROCESSOR:
            # SCXML 6.2.4: a type the processor does not support is error.execution
            return self.fails(element, self.carried_id(path, element, id_location))
        target = tag.get("target", "").strip()
        if target not in _SELF_TARGETS and not _URI_SCHEME.match(target):
            if not target.startswith("#_"):
                # SCXML 6.2.4: a target the SCXML processor cannot address ("baz")
                return self.fails(element, self.carried_id(path, element, id_location))
            if "delay" in tag or "delay_expr" in computed:
                self.refuse(element, f"a delayed <send> to {target!r}", attr="target")
                return None
            # another session (`#_scxml_<id>`: this one's id is drawn when the machine is
            # created), `#_parent` or an invoked child: none exists for an imported machine,
            # so SCXML 6.2.4's error.communication, in the internal queue (the block goes on)
            self.place((*path, "event"), element, "target")
            return _raise(PLATFORM_EVENTS[1], self.carried_id(path, element, id_location))
        if target not in _SELF_TARGETS:
            self.refuse(
                element, f"a <send> to {target!r} (only to the machine itself)", attr="target"
            )
            return None
        event = tag.get("event", "").strip()
        if not event and "event_expr" not in computed:
            self.refuse(element, "<send> without `event`")
            return None
        if event:
            self.place((*path, "event"), element, "event")
        delay = 0.0
        if "delay" in tag and "delay_expr" not in computed:
            match = _DELAY.match(tag["delay"])
            if match is None:
                self.refuse(
                    element, f"the delay {tag['delay']!r} (write `Ns` or `Nms`)", attr="delay"
                )
                return None
            delay = float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)
            self.place((*path, "delay"), element, "delay")
        if target == "#_internal" and not computed:
            if delay:
                self.refuse(element, "a delayed <send> to #_internal", attr="delay")
                return None
            return _raise(event, self.carried_id(path, element, id_location))
        if target == "#_internal":
            self.refuse(element, "a computed <send> to #_internal", attr="target")
            return None
        action: dict[str, Any] = {"type": "send"}
        if event:
            action["event"] = event
        action.update(computed)
        if delay:
            action["delay"] = int(delay) if delay == int(delay) else delay
        if id_location is not None:
            # a new id each time it runs, stored in the data (SCXML 6.2: idlocation)
            action["id_location"] = id_location
            self.place((*path, "id_location"), element, "idlocation")
        if routed:
            return self.routing(element, path, action, routed)
        return action

    def routing(
        self, element: Element, path: PathKey, send: dict[str, Any], routed: dict[str, str]
    ) -> dict[str, Any] | None:
        """A ``<send>`` whose type or target is computed, as SCXML dispatches it when it
        runs: an unsupported type is error.execution; the target ``#_scxml_<this
        session>`` (or none) sends it, ``#_internal`` raises it, any other is
        error.communication (6.2.4). An ``if`` block of those branches, in that order."""
        branches: list[tuple[str | None, list[Any]]] = []
        # each raise it may become carries the id it draws (SCXML: the error a failed
        # send raises has the send's id)
        carried = send.get("id_location")
        if "typeexpr" in routed:
            kind = _operand(routed["typeexpr"])
            failed = _raise(PLATFORM_EVENTS[0], carried)
            branches.append((f"{kind} != {_SCXML_PROCESSOR!r}", [failed]))
        if "targetexpr" in routed:
            target = _operand(routed["targetexpr"])
            mine = f"{target} == {_SELF_ADDRESS}"
            branches.append((mine, [send]))
            if "event" in send and "delay" not in send and "delay_expr" not in send:
                inside = _raise(send["event"], carried)
                branches.append((f"{target} == '#_internal'", [inside]))
            branches.append((None, [_raise(PLATFORM_EVENTS[1], carried)]))
        else:
            branches.append((None, [send]))
        block: dict[str, Any] = {"type": "if"}
        attr = "targetexpr" if "targetexpr" in routed else "typeexpr"
        for number, (when, actions) in enumerate(branches):
            if number == 0:
                block["when"], block["then"] = when, actions
                where: PathKey = (*path, "then")
            elif when is not None:
                block.setdefault("elif", []).append({"when": when, "then": actions})
                where = (*path, "elif", len(block["elif"]) - 1)
                self.place(where, element, attr)
                self.place((*where, "when"), element, attr)
                where = (*where, "then")
            else:
                block["else"] = actions
                where = (*path, "else")
            self.place(where, element)
            self.place((*where, 0), element)
            self.place((*where, 0, "type"), element)
            if "event" in actions[0]:
                self.place((*where, 0, "event"), element)
            if "id_location" in actions[0]:
                self.place((*where, 0, "id_location"), element, "idlocation")
        self.place((*path, "when"), element, attr)
        return block


# ---- entry points --------------------------------------------------------------------


def load_scxml_text(path: str, raw: bytes) -> tuple[LoadedDocument | None, list[Diagnostic]]:
    """An SCXML document as the loaded machine document (positions in the SCXML text), with
    the import's diagnostics; ``None`` when it cannot be used at all (malformed, or a
    feature smc does not support: SMC100, SMC101)."""
    text = raw.decode("utf-8", "replace").removeprefix("\ufeff")
    try:
        root = parse_scxml(raw)
    except ScxmlSyntaxError as error:
        return None, [Diagnostic(path, error.line, error.col, "SMC100", error.message, error.hint)]
    importer = Importer(path, text, root)
    doc = importer.run()
    problems = importer.problems
    if any(d.is_error for d in problems) or doc.data is None:
        return None, problems
    return doc, problems


def load_scxml_file(path: str) -> tuple[LoadedDocument | None, list[Diagnostic]]:
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        return None, [
            Diagnostic(path, 1, 1, "SMC007", f"cannot read the file: {error.strerror}", "")
        ]
    return load_scxml_text(path, raw)


def is_scxml(path: str) -> bool:
    return path.lower().endswith(SCXML_SUFFIX)


def to_yaml(data: dict[str, Any]) -> str:
    """The imported machine as YAML text (deterministic: keys in the import's order)."""
    return yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )


__all__ = [
    "SCXML_SUFFIX",
    "Element",
    "ScxmlSyntaxError",
    "data_source_files",
    "data_source_path",
    "data_sources_key",
    "is_scxml",
    "load_scxml_file",
    "load_scxml_text",
    "parse_scxml",
    "to_yaml",
    "translate",
]
