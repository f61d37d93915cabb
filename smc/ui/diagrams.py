"""A machine type's picture for the page: the compiler's own DOT rendered to SVG by Graphviz,
cleaned, and each state's shape marked with the state's name.

The machine is read from the file the registry names (``MachineRow.config_path``) with the
compiler's checker, drawn by ``smc.compiler.diagrams`` exactly as ``smc diagram --format svg``
draws it, and rendered by the real ``dot`` binary. Graphviz writes a node's id as the
``<title>`` of its ``<g class="node">`` (a compound or parallel state of a statechart is the
cluster ``cluster_<id>``); the node ids come from ``machine_ids``, so each state's shape is
found by its id and given a ``data-state`` attribute holding the state's name, which the page
matches against the states the machines report.

The SVG is rebuilt from a whitelist of elements and attributes before it is served: Graphviz
escapes labels, but the page inserts the SVG into its document, so nothing but shapes and
text may survive — no script, no event handler attribute, no link, no foreign object,
whatever a name held.

A ``<title>`` is what a browser shows when the pointer rests on the shape: a state's says the
state's name (its controls escaped, as the labels have them), and the other shapes' (edges,
the start and end points, a group's frame) have none. Graphviz's own titles are its ids
(``b_new_b``, ``__start->received``): the page once showed those as the states' tooltips.
"""

from __future__ import annotations

import hashlib
import os
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from smc.safe_text import escape_controls

SVG_NS = "http://www.w3.org/2000/svg"
_Q = "{" + SVG_NS + "}"

#: The SVG elements Graphviz uses for a state diagram; anything else is dropped.
ALLOWED_ELEMENTS = frozenset(
    {"svg", "g", "title", "path", "polygon", "polyline", "ellipse", "text", "tspan"}
)
#: Presentation attributes kept (no ``style``, no ``on*``, no ``href``).
ALLOWED_ATTRIBUTES = frozenset(
    {
        "id",
        "class",
        "viewBox",
        "transform",
        "fill",
        "stroke",
        "stroke-width",
        "stroke-dasharray",
        "stroke-opacity",
        "fill-opacity",
        "points",
        "d",
        "cx",
        "cy",
        "rx",
        "ry",
        "x",
        "y",
        "text-anchor",
        "font-family",
        "font-size",
        "font-weight",
        "font-style",
    }
)


MACHINE_SUFFIXES = (".yaml", ".yml", ".scxml")


class DiagramUnavailable(Exception):
    """The machine's picture cannot be drawn (file gone, errors in it, no Graphviz)."""


@dataclass
class MachineType:
    """One machine file as the page needs it."""

    key: str
    config_path: str
    name: str
    title: str
    template: bool
    states: list[str]
    #: Column groups for the Kanban board: (group name or None, its states), in file order.
    columns: list[tuple[str | None, list[str]]]
    #: State -> its ancestors (a statechart's compound and parallel states), innermost first.
    ancestors: dict[str, list[str]] = field(default_factory=dict)
    svg: str | None = None
    svg_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "config_path": self.config_path,
            "name": self.name,
            "title": self.title,
            "template": self.template,
            "states": self.states,
            "columns": [{"group": group, "states": states} for group, states in self.columns],
            "ancestors": self.ancestors,
            "svg": self.svg,
            "svg_error": self.svg_error,
        }


def type_key(config_path: str) -> str:
    """An opaque key for a machine file, so the page never sends a path back to the server."""
    return hashlib.sha256(config_path.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def clean_svg(svg_text: str, node_states: dict[str, str]) -> str:
    """The SVG rebuilt from the whitelist, each state's ``<g>`` marked ``data-state``.

    ``node_states`` maps a Graphviz title (a node id, or ``cluster_<id>``) to the state's
    name. The result has no width and height (the page scales it) and no XML declaration."""
    ET.register_namespace("", SVG_NS)
    root = ET.fromstring(svg_text)  # Graphviz's own output, from a DOT text we generated
    out = _copy(root, node_states)
    if out is None:  # pragma: no cover - Graphviz always writes an <svg> root
        raise DiagramUnavailable("Graphviz wrote no SVG")
    text: str = ET.tostring(out, encoding="unicode")
    return text


def _copy(element: ET.Element, node_states: dict[str, str]) -> ET.Element | None:
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith(_Q):
        return None
    local = tag[len(_Q) :]
    if local not in ALLOWED_ELEMENTS:
        return None
    copy = ET.Element(tag)
    for name, value in element.attrib.items():
        if name in ALLOWED_ATTRIBUTES:
            copy.set(name, value)
    copy.text = element.text
    copy.tail = element.tail
    for child in element:
        kept = _copy(child, node_states)
        if kept is not None:
            copy.append(kept)
    if local == "g" and element.get("class") in ("node", "cluster", "edge"):
        title = element.find(_Q + "title")
        state = node_states.get(title.text or "") if title is not None else None
        if state is not None:
            copy.set("data-state", state)
            copy.set("class", f"{element.get('class')} smc-state")
        for kept_title in copy.findall(_Q + "title"):
            if state is None:
                copy.remove(kept_title)
            else:
                kept_title.text = escape_controls(state)
    return copy


class DiagramCache:
    """Machine types by file, rebuilt when the file changes (its size and mtime)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_path: dict[str, tuple[tuple[int, int], MachineType]] = {}
        self.paths_by_key: dict[str, str] = {}

    def get(self, config_path: str) -> MachineType:
        # The path comes from the database: read only what can be a machine file.
        if not config_path.lower().endswith(MACHINE_SUFFIXES):
            raise DiagramUnavailable("not a machine file (.yaml, .yml or .scxml)")
        try:
            stat = os.stat(config_path)
        except OSError as error:
            raise DiagramUnavailable(f"cannot read the machine file: {error.strerror}") from error
        stamp = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._by_path.get(config_path)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        machine_type = load_type(config_path)
        with self._lock:
            self._by_path[config_path] = (stamp, machine_type)
            self.paths_by_key[machine_type.key] = config_path
        return machine_type


def load_type(config_path: str) -> MachineType:
    """Check the machine file and draw it (the compiler is imported here: the page's other
    parts work without it)."""
    from smc.compiler.check import check_files
    from smc.compiler.diagrams import DiagramError, machine_diagrams, machine_module
    from smc.compiler.diagrams.dot import render_image
    from smc.compiler.diagrams.model import machine_ids, machine_title

    result = check_files([config_path])
    if result.errors or not result.machines:
        raise DiagramUnavailable("the machine file has errors (smc check shows them)")
    machine = result.machines[0]
    states = [s.name for s in machine.states if s.kind != "history"]
    parents = {s.name: s.parent for s in machine.states}
    ancestors: dict[str, list[str]] = {}
    for state in states:
        chain: list[str] = []
        parent = parents.get(state)
        while parent is not None:
            chain.append(parent)
            parent = parents.get(parent)
        if chain:
            ancestors[state] = chain
    columns: list[tuple[str | None, list[str]]]
    if machine.is_chart:
        # A statechart's cards stand in its leaf states; a leaf is in the group that names
        # it or its nearest ancestor (the groups were once dropped for a chart's board).
        leaves = [
            s.name for s in machine.states if s.kind not in ("history", "compound", "parallel")
        ]
        named = {state: group.name for group in machine.groups for state in group.states}

        def group_of(leaf: str) -> str | None:
            return next((named[s] for s in [leaf, *ancestors.get(leaf, [])] if s in named), None)

        columns = [
            (group.name, members)
            for group in machine.groups
            if (members := [leaf for leaf in leaves if group_of(leaf) == group.name])
        ]
        rest = [leaf for leaf in leaves if group_of(leaf) is None]
    else:
        grouped = {state for group in machine.groups for state in group.states}
        columns = [(group.name, list(group.states)) for group in machine.groups]
        rest = [state for state in states if state not in grouped]
    if rest:
        columns.append((None, rest))
    machine_type = MachineType(
        key=type_key(config_path),
        config_path=config_path,
        name=machine.name,
        title=machine_title(machine),
        template=bool(machine.template),
        states=states,
        columns=columns,
        ancestors=ancestors,
    )
    ids = machine_ids(machine)
    composite = {s.name for s in machine.states if s.kind in ("compound", "parallel")}
    node_states = {
        (f"cluster_{node_id}" if state in composite else node_id): state
        for state, node_id in ids.states.items()
    }
    dot_text = machine_diagrams(machine)[f"{machine_module(machine)}.dot"]
    try:
        svg = render_image(dot_text, "svg").decode("utf-8")
        machine_type.svg = clean_svg(svg, node_states)
    except DiagramError as error:
        machine_type.svg_error = str(error)
    return machine_type


def render_svg(dot_text: str, node_states: dict[str, str]) -> tuple[str | None, str | None]:
    """DOT text drawn by ``dot`` and cleaned (``clean_svg``): the SVG, or None and why (no
    Graphviz, or it failed). For a workflow run's DAG (``smc.ui.workflows``); the compiler's
    renderer is imported here, as in ``load_type``."""
    from smc.compiler.diagrams import DiagramError
    from smc.compiler.diagrams.dot import render_image

    try:
        svg = render_image(dot_text, "svg").decode("utf-8")
    except DiagramError as error:
        return None, str(error)
    return clean_svg(svg, node_states), None
