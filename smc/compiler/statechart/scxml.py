"""Export a ``Chart`` as a standard SCXML document (https://www.w3.org/TR/scxml/), so the same
chart can run in any SCXML interpreter (the tests run it in python-statemachine).

The output is deterministic (element and attribute order follow the chart). Raise actions
become ``<raise event=.../>``; every other action, opaque to SCXML, becomes a harmless
``<log label=.../>`` whose label says which action it stands for (by default
``entry|<state>|<position>``, ``exit|...`` or ``transition|<order>|<position>``), so an
interpreter's log shows the order the actions ran in.

Names come from machine files and are not trusted: they only ever reach the document as
attribute values through ElementTree (which escapes them), and a name that SCXML would read
differently (an id that is not an XML name, an event with spaces or ``*``, which SCXML reads
as several descriptors or a wildcard) is refused rather than written.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

from .chart import Action, ActionRef, Chart, State, StatechartError, raised_event

SCXML_NAMESPACE = "http://www.w3.org/2005/07/scxml"

# An XML NCName, closely enough: SCXML ids are xsd:ID, and IDREFS lists split on spaces.
_ID = re.compile(r"[^\W\d][\w.\-]*")
# An SCXML event name: dot-separated tokens; "*" and spaces mean something else there.
_EVENT = re.compile(r"[\w\-]+(?:\.[\w\-]+)*")


class ScxmlExportError(StatechartError):
    """A name cannot be written as SCXML without changing its meaning."""


def default_label(ref: ActionRef, action: Action) -> str:
    """``kind|owner|position``: which action of which state or transition ran."""
    return f"{ref.kind}|{ref.owner}|{ref.position}"


def to_scxml(chart: Chart, *, label: Callable[[ActionRef, Action], str] = default_label) -> str:
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
            _add_state(root, chart, state, label)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _add_state(
    parent: ET.Element, chart: Chart, state: State, label: Callable[[ActionRef, Action], str]
) -> None:
    tag = {"atomic": "state", "compound": "state"}.get(state.kind, state.kind)
    element = ET.SubElement(parent, tag, {"id": _id(state.name)})
    if state.kind == "history":
        assert state.history_type is not None
        element.set("type", state.history_type)
        ET.SubElement(element, "transition", {"target": _ids(state.default)})
        return
    if state.initial is not None:
        element.set("initial", _id(state.initial))
    for kind, actions in (("entry", state.on_entry), ("exit", state.on_exit)):
        if actions:
            block = ET.SubElement(element, "on" + kind)
            for i, action in enumerate(actions):
                _add_action(block, ActionRef(kind, state.name, i), action, label)  # type: ignore[arg-type]
    for transition in chart.transitions:
        if transition.source != state.name:
            continue
        attributes = {}
        if transition.event is not None:
            attributes["event"] = _event(transition.event)
        if transition.targets:
            attributes["target"] = _ids(transition.targets)
        if transition.type == "internal" and transition.targets:
            # a targetless transition exits nothing whatever its type, and some
            # interpreters (python-statemachine) refuse type="internal" without a target
            attributes["type"] = "internal"
        element_t = ET.SubElement(element, "transition", attributes)
        for i, action in enumerate(transition.actions):
            _add_action(element_t, ActionRef("transition", transition.order, i), action, label)
    for child in state.children:
        _add_state(element, chart, chart.state(child), label)


def _add_action(
    parent: ET.Element, ref: ActionRef, action: Action, label: Callable[[ActionRef, Action], str]
) -> None:
    event = raised_event(action)
    if event is not None:
        ET.SubElement(parent, "raise", {"event": _event(event)})
    else:
        ET.SubElement(parent, "log", {"label": label(ref, action)})


def _id(name: str) -> str:
    if not _ID.fullmatch(name):
        raise ScxmlExportError(f"state name {name!r} is not an SCXML id (an XML name)")
    return name


def _ids(names: tuple[str, ...]) -> str:
    return " ".join(_id(name) for name in names)


def _event(name: str) -> str:
    if not _EVENT.fullmatch(name):
        raise ScxmlExportError(f"event {name!r} is not an SCXML event name")
    return name
