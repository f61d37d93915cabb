"""Pictures written as Mermaid: a machine's ``stateDiagram-v2`` (a statechart's with nested
composite states), the system's ``flowchart``.

Every label goes through :func:`mermaid_text`, so no name from YAML can break the syntax.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from smc.compiler.diagrams.model import HEADER_TEXT, Edge, Node, Picture, title_line

_MERMAID_SAFE_PUNCTUATION = frozenset(" _.,()/'*+!?=@~^$-")


_MERMAID_PLAIN = re.compile(r"[A-Za-z0-9 _.,()/'*+!?=@~^$-]*")


@functools.lru_cache(maxsize=65536)
def mermaid_text(text: str) -> str:
    """Text for a Mermaid label: anything but letters, digits and harmless punctuation becomes
    a ``#NNN;`` entity code, which Mermaid decodes when it draws the label."""
    if _MERMAID_PLAIN.fullmatch(text):
        return text
    out = []
    for ch in text:
        if ch in "\r\n\t":
            ch = " "
        category = unicodedata.category(ch)
        if (ch.isascii() and (ch.isalnum() or ch in _MERMAID_SAFE_PUNCTUATION)) or (
            not ch.isascii() and category[0] not in "CZ"
        ):
            out.append(ch)
        else:
            out.append(f"#{ord(ch)};")
    return "".join(out)


_LINE_BREAK = "<br/>"


# ---- a machine: stateDiagram-v2 ---------------------------------------------------------

_STATE_CLASSES = (
    "classDef anyState fill:#ffffff,stroke:#777777,stroke-dasharray:5 5,font-style:italic",
    "classDef external fill:#f4f4f4,stroke:#999999,stroke-dasharray:4 4,color:#555555",
)


def mermaid_state_diagram(picture: Picture) -> str:
    if picture.nested:
        return mermaid_chart_diagram(picture)
    # Left to right, as the DOT diagrams: edges then enter a group from its side, not through
    # its title (self-loops are written inside their state, see below).
    lines = [f"%% {HEADER_TEXT}", "stateDiagram-v2", "    direction LR"]
    indent = "    "

    # A self-loop is written inside its state's box ("↻ no_jobs"), not drawn: Mermaid's layout
    # puts a self-loop's label in the gap beside the state, over the label of the state's
    # first outgoing edge (simple_worker's no_jobs over new_job), and cannot be steered.
    loops = {e.source: e for e in picture.edges.values() if e.source == e.target}

    def node_lines(node: Node, pad: str) -> list[str]:
        out = [f'{pad}state "{mermaid_text(node.label)}" as {node.id}']
        out.extend(f"{pad}{node.id} : {mermaid_text(line)}" for line in node.details)
        loop = loops.get(node.id)
        if loop is not None:
            label = ", ".join(mermaid_text(text) for text in loop.labels)
            out.append(f"{pad}{node.id} : ↻ {label}" if label else f"{pad}{node.id} : ↻")
        return out

    def edge_line(edge: Edge, pad: str) -> list[str]:
        if edge.source == edge.target:
            return []  # in the state's box (node_lines)
        label = _LINE_BREAK.join(mermaid_text(text) for text in edge.labels)
        return [f"{pad}{edge.source} --> {edge.target}" + (f" : {label}" if label else "")]

    for cluster in picture.clusters:
        members = [n for n in picture.nodes.values() if n.cluster == cluster.id]
        member_ids = {n.id for n in members}
        lines.append(f'{indent}state "{mermaid_text(cluster.label)}" as {cluster.id} {{')
        for node in members:
            lines.extend(node_lines(node, indent * 2))
        for edge in picture.edges.values():
            if edge.source in member_ids and edge.target in member_ids:
                lines.extend(edge_line(edge, indent * 2))
        lines.extend(f"{indent * 2}{n} --> [*]" for n in picture.ends if n in member_ids)
        lines.append(f"{indent}}}")
    inner = {n.id for n in picture.nodes.values() if n.cluster is not None}
    for node in picture.nodes.values():
        if node.cluster is None:
            lines.extend(node_lines(node, indent))
    lines.extend(f"{indent}[*] --> {n}" for n in picture.starts)
    for edge in picture.edges.values():
        same_cluster = (
            edge.source in inner
            and edge.target in inner
            and picture.nodes[edge.source].cluster == picture.nodes[edge.target].cluster
        )
        if not same_cluster:
            lines.extend(edge_line(edge, indent))
    lines.extend(f"{indent}{n} --> [*]" for n in picture.ends if n not in inner)
    styled = [
        (kind, [n.id for n in picture.nodes.values() if n.kind == kind and n.cluster is None])
        for kind, css in (("any", "anyState"), ("external", "external"))
    ]
    if any(node_ids for _kind, node_ids in styled):
        lines.extend(indent + line for line in _STATE_CLASSES)
        for kind, node_ids in styled:
            css = "anyState" if kind == "any" else "external"
            if node_ids:
                lines.append(f"{indent}class {','.join(node_ids)} {css}")
    return "\n".join(lines) + "\n"


# ---- the system: flowchart --------------------------------------------------------------

_FLOWCHART_CLASSES = (
    "classDef unsent fill:#fff3cd,stroke:#d97706,stroke-width:2px",
    "classDef external fill:#f4f4f4,stroke:#999999,stroke-dasharray:4 4",
)


def mermaid_flowchart(picture: Picture) -> str:
    """The system diagram: a flowchart, as state diagrams have no free-form nodes. A node's
    details are lines under its label; ``waiting`` and ``unbuilt`` nodes are highlighted."""
    indent = "    "
    lines = [f"%% {HEADER_TEXT}", "flowchart LR"]
    for node in picture.nodes.values():
        label = _LINE_BREAK.join(mermaid_text(line) for line in [node.label, *node.details])
        lines.append(f'{indent}{node.id}["{label}"]')
    for edge in picture.edges.values():
        text = _LINE_BREAK.join(mermaid_text(label) for label in edge.labels)
        lines.append(f'{indent}{edge.source} -->|"{text}"| {edge.target}')
    lines.extend(indent + line for line in _FLOWCHART_CLASSES)
    for kind, css in (("waiting", "unsent"), ("unbuilt", "external")):
        node_ids = [n.id for n in picture.nodes.values() if n.kind == kind]
        if node_ids:
            lines.append(f"{indent}class {','.join(node_ids)} {css}")
    return "\n".join(lines) + "\n"


# ---- a statechart: nested composite states -----------------------------------------------

_CHART_CLASSES = (
    "classDef history fill:#ffffff,stroke:#333333,font-weight:bold",
    *_STATE_CLASSES,
)


def _edge_container(picture: Picture, edge: Edge) -> str | None:
    """The composite an edge is written in: the one holding both ends directly (not a
    parallel state, whose regions are separate blocks), else the top level. Written in a
    composite, an edge to a state nested deeper would move that state into the composite:
    Mermaid places a state where an edge names it."""
    parent = picture.nodes[edge.source].parent
    if parent is None or parent != picture.nodes[edge.target].parent:
        return None
    return parent if picture.nodes[parent].kind != "parallel" else None


def mermaid_chart_diagram(picture: Picture) -> str:
    """A statechart: compound states as composite states holding their children (each with
    its ``[*] -->`` initial mark), a parallel state's regions separated by ``--``, history
    pseudo-states as states labelled ``H`` / ``H*``. A self-loop is written in its state's
    box (``↻ tick``); an edge from a composite to itself or to a state inside it in the
    composite's title (``Picture.title_edges``)."""
    lines = [f"%% {HEADER_TEXT}", "stateDiagram-v2", "    direction LR"]
    indent = "    "
    loops = {e.source: e for e in picture.edges.values() if e.source == e.target}
    in_titles = picture.title_edges()
    titled = {id(edge) for edges in in_titles.values() for edge in edges}
    placed: dict[str | None, list[Edge]] = {}
    for edge in picture.edges.values():
        if edge.source != edge.target and id(edge) not in titled:
            placed.setdefault(_edge_container(picture, edge), []).append(edge)

    def loop_text(node_id: str) -> str | None:
        loop = loops.get(node_id)
        if loop is None:
            return None
        label = ", ".join(mermaid_text(text) for text in loop.labels)
        return f"↻ {label}" if label else "↻"

    def block(parent: str | None, depth: int) -> list[str]:
        pad = indent * depth
        out: list[str] = []
        if parent is None:
            out.extend(f"{pad}[*] --> {n}" for n in picture.starts)
        elif parent in picture.initials:
            out.append(f"{pad}[*] --> {picture.initials[parent]}")
        children = picture.children(parent)
        parallel = parent is not None and picture.nodes[parent].kind == "parallel"
        for index, node in enumerate(children):
            if parallel and index:
                out.append(f"{pad}--")
            out.extend(node_lines(node, depth))
        out.extend(edge_line(edge, pad) for edge in placed.get(parent, []))
        out.extend(f"{pad}{n.id} --> [*]" for n in children if n.id in picture.ends)
        return out

    def node_lines(node: Node, depth: int) -> list[str]:
        pad = indent * depth
        if node.kind in ("compound", "parallel"):
            # One line: Mermaid's composite title does not grow for more, and shows no
            # description, so a composite's actions are left to the DOT diagram.
            marks = [title_line(picture, edge) for edge in in_titles.get(node.id, [])]
            title = mermaid_text(" · ".join([node.label, *marks]))
            return [
                f'{pad}state "{title}" as {node.id} {{',
                *block(node.id, depth + 1),
                f"{pad}}}",
            ]
        out = [f'{pad}state "{mermaid_text(node.label)}" as {node.id}']
        out.extend(f"{pad}{node.id} : {mermaid_text(line)}" for line in node.details)
        loop = loop_text(node.id)
        if loop is not None:
            out.append(f"{pad}{node.id} : {loop}")
        return out

    def edge_line(edge: Edge, pad: str) -> str:
        label = _LINE_BREAK.join(mermaid_text(text) for text in edge.labels)
        return f"{pad}{edge.source} --> {edge.target}" + (f" : {label}" if label else "")

    lines.extend(block(None, 1))
    styled = {
        css: [n.id for n in picture.nodes.values() if n.kind in kinds]
        for css, kinds in (
            ("history", ("history", "deep_history")),
            ("anyState", ("any",)),
        )
    }
    if any(styled.values()):
        lines.extend(indent + line for line in _CHART_CLASSES)
        lines.extend(
            f"{indent}class {','.join(node_ids)} {css}"
            for css, node_ids in styled.items()
            if node_ids
        )
    return "\n".join(lines) + "\n"
