"""Export a ``Chart`` as a standard SCXML document (https://www.w3.org/TR/scxml/), so the same
chart can run in any SCXML interpreter (the tests run it in python-statemachine).

The output is deterministic (element and attribute order follow the chart). Raise actions
become ``<raise event=.../>``; every other action, opaque to SCXML, becomes a harmless
``<log label=.../>`` whose label says which action it stands for (by default
``entry|<state>|<position>``, ``exit|...`` or ``transition|<order>|<position>``), so an
interpreter's log shows the order the actions ran in.

Conds. The core never reads a cond, so it cannot know what SCXML expression one stands for:
``to_scxml`` asks its ``cond`` argument. The default writes a string cond as it is (the text
of the expression, for a datamodel that reads it) and refuses any other cond with
``ScxmlExportError``; a caller whose conds are ids passes a function that writes each one's
expression. An ``if`` block that can raise (``conditional_branches``, the one kind the
semantics open) becomes ``<if cond>``/``<elseif cond>``/``<else>`` with its actions written
one by one; any other ``if`` block is an opaque action, a ``<log>`` like the rest.

Names come from machine files and are not trusted: they only ever reach the document as
attribute values through ElementTree (which escapes them), and a name that SCXML would read
differently (an id that is not an XML name, an event with spaces or ``*``, which SCXML reads
as several descriptors or a wildcard) is refused rather than written.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

from .chart import (
    Action,
    ActionRef,
    Chart,
    Cond,
    State,
    StatechartError,
    conditional_branches,
    is_opened,
    raised_event,
)

SCXML_NAMESPACE = "http://www.w3.org/2005/07/scxml"

# An XML NCName, closely enough: SCXML ids are xsd:ID, and IDREFS lists split on spaces.
_ID = re.compile(r"[^\W\d][\w.\-]*")
# An SCXML event name: dot-separated tokens; "*" and spaces mean something else there.
_EVENT = re.compile(r"[\w\-]+(?:\.[\w\-]+)*")
# smc's timer events (``timeout(60)``: the compiler's TIMEOUT_EVENT; the core knows no model).
_TIMER = re.compile(r"timeout\(\d+(?:\.\d+)?\)")


class ScxmlExportError(StatechartError):
    """A name cannot be written as SCXML without changing its meaning."""


Label = Callable[[ActionRef, Action], str]
CondText = Callable[[Cond], str]


def default_label(ref: ActionRef, action: Action) -> str:
    """``kind|owner|position``: which action of which state or transition ran (an action
    inside an opened ``if`` block: its position path joined with dots, ``2.1.0``)."""
    position = ref.position
    where = str(position) if isinstance(position, int) else ".".join(map(str, position))
    return f"{ref.kind}|{ref.owner}|{where}"


def default_cond(cond: Cond) -> str:
    """A string cond is the expression's text; any other is refused (see the module)."""
    if not isinstance(cond, str):
        raise ScxmlExportError(
            f"the cond {cond!r} is not an expression's text: pass to_scxml a cond function "
            "that writes it"
        )
    return cond


def to_scxml(chart: Chart, *, label: Label = default_label, cond: CondText = default_cond) -> str:
    """The chart as an SCXML document (a string, with its XML declaration)."""
    root = ET.Element(
        "scxml",
        {
            "xmlns": SCXML_NAMESPACE,
            "version": "1.0",
            "name": chart.name,
            "initial": _ids(chart.initial),
        },
    )
    for state in chart.states:
        if state.parent is None:
            _add_state(root, chart, state, label, cond)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _add_state(
    parent: ET.Element, chart: Chart, state: State, label: Label, cond: CondText
) -> None:
    tag = {"atomic": "state", "compound": "state"}.get(state.kind, state.kind)
    element = ET.SubElement(parent, tag, {"id": _id(state.name)})
    if state.kind == "history":
        assert state.history_type is not None
        element.set("type", state.history_type)
        default = ET.SubElement(element, "transition", {"target": _ids(state.default)})
        for i, action in enumerate(state.default_actions):
            _add_action(default, ActionRef("default", state.name, i), action, label, cond)
        return
    if state.initial_actions or any(
        chart.state(name).kind == "history" for name in state.initial_targets
    ):
        initial = ET.SubElement(element, "initial")
        initial_t = ET.SubElement(initial, "transition", {"target": _ids(state.initial_targets)})
        for i, action in enumerate(state.initial_actions):
            _add_action(initial_t, ActionRef("initial", state.name, i), action, label, cond)
    elif state.initial_targets:
        element.set("initial", _ids(state.initial_targets))
    for kind, actions in (("entry", state.on_entry), ("exit", state.on_exit)):
        if actions:
            block = ET.SubElement(element, "on" + kind)
            for i, action in enumerate(actions):
                ref = ActionRef(kind, state.name, i)  # type: ignore[arg-type]
                _add_action(block, ref, action, label, cond)
    for transition in chart.transitions:
        if transition.source != state.name:
            continue
        attributes = {}
        if transition.event is not None:
            attributes["event"] = _event(transition.event)
        if transition.cond is not None:
            attributes["cond"] = cond(transition.cond)
        if transition.targets:
            attributes["target"] = _ids(transition.targets)
        if transition.type == "internal" and transition.targets:
            # a targetless transition exits nothing whatever its type, and some
            # interpreters (python-statemachine) refuse type="internal" without a target
            attributes["type"] = "internal"
        element_t = ET.SubElement(element, "transition", attributes)
        for i, action in enumerate(transition.actions):
            ref = ActionRef("transition", transition.order, i)
            _add_action(element_t, ref, action, label, cond)
    for child in state.children:
        _add_state(element, chart, chart.state(child), label, cond)


def _add_action(
    parent: ET.Element, ref: ActionRef, action: Action, label: Label, cond: CondText
) -> None:
    event = raised_event(action)
    branches = conditional_branches(action) if is_opened(action) else None
    if event is not None:
        ET.SubElement(parent, "raise", {"event": _event(event)})
    elif branches is not None:
        block = ET.SubElement(parent, "if", {"cond": cond(branches[0][0])})
        path = (ref.position,) if isinstance(ref.position, int) else ref.position
        for number, (when, actions) in enumerate(branches):
            if number:  # SCXML's <elseif>/<else> are markers inside <if>, before their actions
                if when is None:
                    ET.SubElement(block, "else")
                else:
                    ET.SubElement(block, "elseif", {"cond": cond(when)})
            for position, inner in enumerate(actions):
                inner_ref = ref._replace(position=(*path, number, position))
                _add_action(block, inner_ref, inner, label, cond)
    else:
        ET.SubElement(parent, "log", {"label": label(ref, action)})


def _id(name: str) -> str:
    if not _ID.fullmatch(name):
        raise ScxmlExportError(f"state name {name!r} is not an SCXML id (an XML name)")
    return name


def _ids(names: tuple[str, ...]) -> str:
    return " ".join(_id(name) for name in names)


def _event(name: str) -> str:
    if _TIMER.fullmatch(name):
        # A state's timer would be a delayed <send> on entry and its <cancel> on exit; smc
        # import reads no <cancel>, so the document could not come back: refused, and said so.
        raise ScxmlExportError(
            f"event {name!r} is a state's timer, which smc export does not write as SCXML "
            "yet (it would be a delayed <send> on entry, cancelled on exit)"
        )
    if not _EVENT.fullmatch(name):
        raise ScxmlExportError(f"event {name!r} is not an SCXML event name")
    return name
