"""Pictures written as Graphviz DOT (a machine's states, the system's machines), and DOT
rendered to SVG or PNG by the real ``dot`` binary.

Both kinds of diagram share the attributes below: laid out left to right, rounded boxes, one
font, and a look per :data:`~smc.compiler.diagrams.model.NodeKind`. Every label goes through
:func:`dot_label`, so no name from YAML can break the syntax.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import graphviz

from smc.compiler.diagrams.model import (
    COMPOSITE_KINDS,
    HEADER_TEXT,
    SYSTEM_KINDS,
    Edge,
    Node,
    NodeKind,
    Picture,
    title_line,
)
from smc.safe_text import escape_controls

ImageFormat = Literal["svg", "png"]


class DiagramError(Exception):
    """A diagram could not be rendered (e.g. Graphviz is missing); the message is one line."""


FONT = "Helvetica"
GRAPH_ATTRS: Mapping[str, str] = {"rankdir": "LR", "fontname": FONT}
NODE_ATTRS: Mapping[str, str] = {
    "shape": "box",
    "style": "rounded",
    "fontname": FONT,
    "fontsize": "12",
}
EDGE_ATTRS: Mapping[str, str] = {"fontname": FONT, "fontsize": "10"}

#: Attributes by node kind, over the label and NODE_ATTRS.
KIND_ATTRS: Mapping[NodeKind, Mapping[str, str]] = {
    "state": {},
    "any": {"style": "rounded,dashed", "fontname": f"{FONT} Oblique", "color": "gray40"},
    "external": {
        "style": "rounded,dashed,filled",
        "fillcolor": "gray96",
        "color": "gray55",
        "fontcolor": "gray30",
    },
    "machine": {},
    "waiting": {"style": "rounded,filled,bold", "fillcolor": "#fff3cd", "color": "#d97706"},
    "unbuilt": {"style": "rounded,dashed", "color": "gray55", "fontcolor": "gray30"},
    # Statecharts: history pseudo-states are circles; composites are clusters, not nodes.
    "history": {"shape": "circle", "style": "solid", "fontsize": "10", "width": "0.3"},
    "deep_history": {"shape": "circle", "style": "solid", "fontsize": "10", "width": "0.3"},
    "compound": {},
    "parallel": {},
}

_START_ID = "__start"
_END_ID = "__end"


def dot_label(lines: Sequence[str], *, left: bool = False) -> str:
    r"""A DOT label showing ``lines`` literally: controls escaped visibly, backslashes
    doubled (so ``\n`` in a name is not a line break), ``&`` written ``&amp;`` (Graphviz
    decodes entities), lines joined with DOT's own ``\n`` (or ``\l``, left-justified), and
    marked not-HTML so a name like ``<b>`` is not taken for an HTML label."""
    # "&" as "&amp;": Graphviz decodes entities even in plain labels, so "a &amp; b" would
    # otherwise show as "a & b".
    # Controls written visibly first (``\x00``, ``\x1b``, ``\u202e``): a NUL ended the
    # quoted string for ``dot`` ("syntax error"), ESC and bidi overrides reached the file raw.
    escaped = [
        escape_controls(" ".join(line.splitlines())).replace("\\", "\\\\").replace("&", "&amp;")
        for line in lines
    ]
    text = "".join(line + "\\l" for line in escaped) if left else "\\n".join(escaped)
    marked: str = graphviz.nohtml(text)
    return marked


def _digraph(name: str, graph_attrs: Mapping[str, str]) -> graphviz.Digraph:
    return graphviz.Digraph(
        # Escaped as a label is: the graphviz package quotes an id but leaves its backslashes
        # alone (DOT's escapes), so a title ending in "\\" would close the quotes early and
        # the rest of the line be read as DOT. nohtml: "<b>x</b>" is a quoted name.
        name=dot_label([name]),
        comment=HEADER_TEXT,
        graph_attr=dict(graph_attrs),
        node_attr=dict(NODE_ATTRS),
        edge_attr=dict(EDGE_ATTRS),
    )


def _node_attrs(node: Node) -> dict[str, str]:
    if node.kind in SYSTEM_KINDS:  # a caption: every line centred
        label = dot_label([node.label, *node.details])
    else:
        label = dot_label([node.label])
        if node.details:  # the name centred, then one left-justified line per detail
            label = graphviz.nohtml(label + "\\n" + dot_label(node.details, left=True))
    return {"label": label, **KIND_ATTRS[node.kind]}


def _add_edge(graph: graphviz.Digraph, picture: Picture, edge: Edge) -> None:
    attrs: dict[str, str] = {}
    if edge.labels:
        attrs["label"] = dot_label(edge.labels)
    if edge.labels and edge.timers == len(edge.labels):
        attrs["style"] = "dashed"
    if picture.nodes[edge.source].kind == "any":
        attrs["color"] = "gray40"
    graph.edge(edge.source, edge.target, **attrs)


def dot_state_diagram(picture: Picture) -> str:
    """A machine (or one group of it): titled, groups as ``cluster_`` subgraphs, a start
    point and, when a final state is drawn, an end point."""
    if picture.nested:
        return dot_chart_diagram(picture)
    graph = _digraph(
        picture.title,
        {**GRAPH_ATTRS, "label": dot_label([picture.title]), "labelloc": "t", "fontsize": "16"},
    )
    graph.node(_START_ID, label="", shape="point", width="0.18")
    for cluster in picture.clusters:
        with graph.subgraph(name=f"cluster_{cluster.id}") as sub:
            sub.attr(
                label=dot_label([cluster.label]), style="rounded", color="gray50", fontsize="13"
            )
            for node in picture.nodes.values():
                if node.cluster == cluster.id:
                    sub.node(node.id, **_node_attrs(node))
    for node in picture.nodes.values():
        if node.cluster is None:
            graph.node(node.id, **_node_attrs(node))
    if picture.ends:
        graph.node(
            _END_ID, label="", shape="doublecircle", style="filled", fillcolor="black", width="0.12"
        )
    for target in picture.starts:
        graph.edge(_START_ID, target)
    for edge in picture.edges.values():
        _add_edge(graph, picture, edge)
    for source in picture.ends:
        graph.edge(source, _END_ID)
    source_text: str = graph.source
    return source_text


# ---- a statechart: nested clusters -------------------------------------------------------


def _point_id(kind: str, owner: str | None) -> str:
    """A start or end point's id: ``__start`` at the top, ``__start__<state>`` in a state
    (node ids made from names never start with ``_``, see ``model.slug``)."""
    return f"__{kind}" if owner is None else f"__{kind}__{owner}"


def _entry_anchor(picture: Picture, node_id: str) -> str:
    """The node an edge into a composite is drawn to (and clipped at its cluster's border):
    its start point, the leftmost thing in it, or for a parallel state its first region's."""
    if node_id in picture.initials:
        return _point_id("start", node_id)
    children = picture.children(node_id)
    return _entry_anchor(picture, children[0].id) if children else node_id


def _exit_anchor(picture: Picture, node_id: str) -> str:
    """The node an edge out of a composite is drawn from: its last state in file order, which
    the layout tends to put to the right (so the edge and its label lie outside the cluster)."""
    inner = [n for n in picture.children(node_id) if n.kind not in ("history", "deep_history")]
    if not inner:
        return _entry_anchor(picture, node_id)
    last = inner[-1]
    return _exit_anchor(picture, last.id) if last.kind in COMPOSITE_KINDS else last.id


def _chart_edge(graph: graphviz.Digraph, picture: Picture, edge: Edge) -> None:
    """An edge; one that starts or ends at a composite is drawn from or to its anchor and
    clipped at the cluster (``ltail``/``lhead``), unless the other end is inside it."""
    attrs: dict[str, str] = {}
    source, target = edge.source, edge.target
    if source in picture.nodes and picture.nodes[source].kind in COMPOSITE_KINDS:
        source = _exit_anchor(picture, edge.source)
        if edge.source not in picture.ancestors(edge.target):
            attrs["ltail"] = f"cluster_{edge.source}"
    if picture.nodes[target].kind in COMPOSITE_KINDS:
        target = _entry_anchor(picture, edge.target)
        if edge.source not in picture.nodes or edge.target not in picture.ancestors(edge.source):
            attrs["lhead"] = f"cluster_{edge.target}"
    if edge.labels:
        # Graphviz places a ``label`` before it clips the edge at its tail's cluster, often
        # inside the cluster (the tail is the cluster's last state); an ``xlabel`` is placed
        # by the edge as drawn. (An edge into a cluster goes to its start point, the first
        # thing in it, so its ``label`` is outside.)
        attrs["xlabel" if "ltail" in attrs else "label"] = dot_label(edge.labels)
    if edge.labels and edge.timers == len(edge.labels):
        attrs["style"] = "dashed"
    if source in picture.nodes and picture.nodes[edge.source].kind == "any":
        attrs["color"] = "gray40"
    graph.edge(source, target, **attrs)


def dot_chart_diagram(picture: Picture) -> str:
    """A statechart: compound states as ``cluster_`` subgraphs, each with its start point; a
    parallel state's regions as dashed clusters side by side in it; history pseudo-states as
    circled ``H`` / ``H*``. An edge from a composite to itself or to a state inside it is a
    line of the composite's title (``Picture.title_edges``)."""
    graph = _digraph(
        picture.title,
        {
            **GRAPH_ATTRS,
            "compound": "true",  # edges clipped at a cluster's border (lhead, ltail)
            "label": dot_label([picture.title]),
            "labelloc": "t",
            "fontsize": "16",
        },
    )
    in_titles = picture.title_edges()
    titled = {id(edge) for edges in in_titles.values() for edge in edges}

    def points(sub: graphviz.Digraph, owner: str | None) -> None:
        if owner is None or owner in picture.initials:
            sub.node(_point_id("start", owner), label="", shape="point", width="0.18")
        if any(n.id in picture.ends for n in picture.children(owner)):
            sub.node(
                _point_id("end", owner),
                label="",
                shape="doublecircle",
                style="filled",
                fillcolor="black",
                width="0.12",
            )

    def fill(sub: graphviz.Digraph, owner: str | None) -> None:
        points(sub, owner)
        for node in picture.children(owner):
            if node.kind not in COMPOSITE_KINDS:
                sub.node(node.id, **_node_attrs(node))
                continue
            title = [node.label, *node.details]
            title.extend(title_line(picture, edge) for edge in in_titles.get(node.id, []))
            region = owner is not None and picture.nodes[owner].kind == "parallel"
            with sub.subgraph(name=f"cluster_{node.id}") as cluster:
                cluster.attr(
                    label=dot_label(title),
                    style="rounded,dashed" if region else "rounded",
                    color="gray50",
                    fontsize="13",
                )
                fill(cluster, node.id)

    fill(graph, None)
    for owner in [None, *picture.initials]:
        starts = picture.starts if owner is None else [picture.initials[owner]]
        for target in starts:
            _chart_edge(graph, picture, Edge(_point_id("start", owner), target))
    for edge in picture.edges.values():
        if id(edge) not in titled:
            _chart_edge(graph, picture, edge)
    for source in picture.ends:
        graph.edge(source, _point_id("end", picture.nodes[source].parent))
    source_text: str = graph.source
    return source_text


def dot_system_diagram(picture: Picture) -> str:
    """The machines built together: untitled (the graph is named after the picture), no
    start or end point."""
    graph = _digraph(picture.title, GRAPH_ATTRS)
    for node in picture.nodes.values():
        graph.node(node.id, **_node_attrs(node))
    for edge in picture.edges.values():
        _add_edge(graph, picture, edge)
    source_text: str = graph.source
    return source_text


def render_image(dot_source: str, fmt: ImageFormat) -> bytes:
    """Render DOT text to SVG or PNG with the ``dot`` binary."""
    try:
        data: bytes = graphviz.Source(dot_source).pipe(format=fmt)
    except graphviz.ExecutableNotFound as error:
        raise DiagramError(
            "Graphviz's `dot` was not found on PATH: install Graphviz "
            "(e.g. `apt-get install graphviz`, `brew install graphviz`) to render SVG or PNG"
        ) from error
    except graphviz.CalledProcessError as error:
        stderr = error.stderr.decode("utf-8", "replace") if error.stderr else ""
        first = (
            stderr.strip().splitlines()[0] if stderr.strip() else f"exit code {error.returncode}"
        )
        raise DiagramError(f"Graphviz `dot` failed: {first}") from error
    return data
