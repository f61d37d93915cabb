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

from smc.compiler.diagrams.model import HEADER_TEXT, SYSTEM_KINDS, Edge, Node, NodeKind, Picture

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
}

_START_ID = "__start"
_END_ID = "__end"


def dot_label(lines: Sequence[str], *, left: bool = False) -> str:
    r"""A DOT label showing ``lines`` literally: backslashes doubled (so ``\n`` in a name is
    not a line break), lines joined with DOT's own ``\n`` (or ``\l``, left-justified), and
    marked not-HTML so a name like ``<b>`` is not taken for an HTML label."""
    escaped = [" ".join(line.splitlines()).replace("\\", "\\\\") for line in lines]
    text = "".join(line + "\\l" for line in escaped) if left else "\\n".join(escaped)
    marked: str = graphviz.nohtml(text)
    return marked


def _digraph(name: str, graph_attrs: Mapping[str, str]) -> graphviz.Digraph:
    return graphviz.Digraph(
        name=name,
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
