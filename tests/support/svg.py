"""Reads the geometry back out of a rendered diagram (no tests here).

The SVGs come from the real renderers: Mermaid's CLI (``mmdc``, stateDiagram-v2 and flowchart)
and Graphviz's ``dot -Tsvg``. From each we take the boxes of the nodes, the clusters and their
titles, and each edge's end points and label box, so the tests can ask what a reader would:
is every label there and clear of the others, and does every arrow start and end at a state
(not at a group's box)? :func:`layout_problems` answers in sentences naming what is wrong.

Both renderers only translate their groups (Graphviz adds ``scale(1 1) rotate(0)``), which
is all this reader follows; any other transform is an error rather than a wrong measurement.
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

SVG = "{http://www.w3.org/2000/svg}"
XHTML = "{http://www.w3.org/1999/xhtml}"
START = "[*]"  # Mermaid's start and end points (and Graphviz's __start/__end) as one name

#: How far (px) an edge's end may be from its node's box: 0 in Mermaid (edges are clipped to
#: the box), the arrowhead's tip in Graphviz; a little slack for the curves' rounding.
END_TOLERANCE = 3.0
#: Graphviz's SVG has no text widths; a label's width is estimated as this many font sizes
#: per character, which is wider than Helvetica's average (so the estimate errs towards
#: reporting an overlap, never towards hiding one).
DOT_CHAR_WIDTH = 0.6


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    @staticmethod
    def around(points: Iterable[tuple[float, float]]) -> Box:
        xs, ys = zip(*points, strict=True)
        return Box(min(xs), min(ys), max(xs), max(ys))

    def union(self, other: Box) -> Box:
        return Box(
            min(self.x0, other.x0),
            min(self.y0, other.y0),
            max(self.x1, other.x1),
            max(self.y1, other.y1),
        )

    def overlaps(self, other: Box, slack: float = 1.0) -> bool:
        """True when the boxes share more than a ``slack``-wide strip (touching is fine)."""
        return (
            min(self.x1, other.x1) - max(self.x0, other.x0) > slack
            and min(self.y1, other.y1) - max(self.y0, other.y0) > slack
        )

    def distance(self, point: tuple[float, float]) -> float:
        x, y = point
        dx = max(self.x0 - x, 0.0, x - self.x1)
        dy = max(self.y0 - y, 0.0, y - self.y1)
        return float((dx * dx + dy * dy) ** 0.5)

    def __str__(self) -> str:
        return f"({self.x0:.0f},{self.y0:.0f})-({self.x1:.0f},{self.y1:.0f})"


@dataclass
class Node:
    id: str
    kind: str  # "state" or "point" (a start or end point)
    box: Box


@dataclass
class Edge:
    id: str
    start: tuple[float, float]  # where the line leaves its source
    end: list[tuple[float, float]]  # where it reaches its target (any of these points)
    label: str = ""
    label_box: Box | None = None
    route: list[tuple[float, float]] = field(default_factory=list)  # the points it runs through


@dataclass
class Rendered:
    nodes: dict[str, Node] = field(default_factory=dict)
    clusters: dict[str, Box] = field(default_factory=dict)
    cluster_titles: dict[str, Box] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)


# ---- reading SVG ------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d*\.?\d+(?:e[-+]?\d+)?", re.I)
_TRANSLATE = re.compile(r"^\s*(?:scale\(1(?:[ ,]+1)?\)\s*rotate\(0\)\s*)?translate\(([^)]*)\)\s*$")


def _offset(element: ET.Element, base: tuple[float, float]) -> tuple[float, float]:
    transform = element.get("transform")
    if transform is None:
        return base
    match = _TRANSLATE.match(transform)
    if match is None:
        raise ValueError(f"unsupported transform {transform!r}")
    numbers = [float(n) for n in _NUMBER.findall(match.group(1))] + [0.0]
    return base[0] + numbers[0], base[1] + numbers[1]


def _walk(
    element: ET.Element, base: tuple[float, float] = (0.0, 0.0)
) -> Iterator[tuple[ET.Element, tuple[float, float]]]:
    """Every element with the offset its coordinates are in (its own transform applied)."""
    here = _offset(element, base)
    yield element, here
    for child in element:
        yield from _walk(child, here)


def _float(element: ET.Element, name: str) -> float:
    return float(element.get(name) or 0.0)


def _pairs(text: str) -> list[tuple[float, float]]:
    numbers = [float(n) for n in _NUMBER.findall(text)]
    return list(zip(numbers[0::2], numbers[1::2], strict=False))


def _shape_box(element: ET.Element, at: tuple[float, float]) -> Box | None:
    """The box of one drawn shape (absolute coordinates in ``d`` and ``points``)."""
    tag = element.tag.removeprefix(SVG)
    ox, oy = at
    if tag in ("rect", "foreignObject"):
        width, height = _float(element, "width"), _float(element, "height")
        if width <= 0 or height <= 0:
            return None
        x, y = ox + _float(element, "x"), oy + _float(element, "y")
        return Box(x, y, x + width, y + height)
    if tag in ("circle", "ellipse"):
        rx = _float(element, "r") or _float(element, "rx")
        ry = _float(element, "r") or _float(element, "ry")
        cx, cy = ox + _float(element, "cx"), oy + _float(element, "cy")
        return Box(cx - rx, cy - ry, cx + rx, cy + ry)
    if tag in ("path", "polygon"):
        d = element.get("d") or element.get("points") or ""
        if re.search(r"[a-df-z]", d):  # relative commands: not followed here
            raise ValueError(f"relative path data {d[:40]!r}")
        pairs = _pairs(d)
        return Box.around((ox + x, oy + y) for x, y in pairs) if pairs else None
    return None


def _box_of(group: ET.Element, at: tuple[float, float], tags: set[str]) -> Box | None:
    """The box around the shapes (of kinds ``tags``) inside ``group``, whose own offset,
    transform included, is ``at``."""
    box = None
    descendants = (item for child in group for item in _walk(child, at))
    for element, offset in descendants:
        if element.tag.removeprefix(SVG) in tags:
            shape = _shape_box(element, offset)
            if shape is not None:
                box = shape if box is None else box.union(shape)
    return box


def _text(element: ET.Element) -> str:
    """The text a label shows, ``<br>`` as a line break, runs of spaces as one."""
    parts: list[str] = []

    def visit(node: ET.Element) -> None:
        if node.tag in (f"{XHTML}br", f"{SVG}br", "br"):
            parts.append("\n")
        parts.append(node.text or "")
        for child in node:
            visit(child)
            parts.append(child.tail or "")

    visit(element)
    lines = "".join(parts).split("\n")
    return "\n".join(" ".join(line.split()) for line in lines).strip()


def _classes(element: ET.Element) -> list[str]:
    return (element.get("class") or "").split()


# ---- Mermaid ----------------------------------------------------------------------------

_MERMAID_NODE_ID = re.compile(r"^.*?-(?:state|flowchart)-(.+)-\d+$")
_POINT_IDS = re.compile(r"(^|_)(start|end)$")


def parse_mermaid_svg(text: str) -> Rendered:
    """A Mermaid rendering (stateDiagram-v2 or flowchart) as boxes, points and labels."""
    root = ET.fromstring(text)
    rendered = Rendered()
    labels: dict[str, tuple[str, Box | None]] = {}
    for element, at in _walk(root):
        if element.tag != f"{SVG}g":
            continue
        classes = _classes(element)
        if "node" in classes and element.get("id"):
            match = _MERMAID_NODE_ID.match(element.get("id", ""))
            assert match, element.get("id")
            node_id = match.group(1)
            is_state = (
                "statediagram-state" in classes
                or "flowchart-label" in classes
                or ("default" in classes and not _POINT_IDS.search(node_id))
            )
            box = _box_of(element, at, {"rect", "circle", "ellipse", "path", "polygon"})
            assert box is not None, node_id
            if is_state:
                rendered.nodes[node_id] = Node(node_id, "state", box)
            else:
                rendered.nodes[node_id] = Node(node_id, "point", box)
        elif "cluster" in classes or "statediagram-cluster" in classes:
            cluster_id = element.get("data-id") or element.get("id") or ""
            outer = next(
                (e for e in element.iter(f"{SVG}rect") if "inner" not in _classes(e)), None
            )
            box = _box_of(element, at, {"rect"}) if outer is None else _shape_box(outer, at)
            # (the outer rect is a direct child of a plain <g>, so ``at`` is its offset)
            assert box is not None, cluster_id
            rendered.clusters[cluster_id] = box
            # (a parallel state's regions are drawn in untitled "divider" clusters)
            title = next(
                (e for e in element.iter(f"{SVG}g") if "cluster-label" in _classes(e)), None
            )
            if title is None:
                continue
            title_box = _box_of(title, _offset(title, at), {"foreignObject", "text"})
            if title_box is not None:
                rendered.cluster_titles[cluster_id] = title_box
        elif "label" in classes and element.get("data-id"):
            box = _box_of(element, at, {"foreignObject"})
            labels[element.get("data-id", "")] = (_text(element), box)
    for element, at in _walk(root):
        if element.tag == f"{SVG}path" and element.get("data-edge") == "true":
            points = json.loads(base64.b64decode(element.get("data-points", "")))
            xy = [(at[0] + float(p["x"]), at[1] + float(p["y"])) for p in points]
            edge_id = element.get("data-id") or element.get("id") or ""
            label, box = labels.get(edge_id, ("", None))
            edge = Edge(edge_id, xy[0], [xy[-1]], label, box if label else None, xy)
            rendered.edges.append(edge)
    return rendered


# ---- Graphviz ---------------------------------------------------------------------------


def parse_graphviz_svg(text: str) -> Rendered:
    """A ``dot -Tsvg`` rendering as boxes, points and labels (edge titles are ``a->b``)."""
    root = ET.fromstring(text)
    rendered = Rendered()
    for element, at in _walk(root):
        if element.tag != f"{SVG}g":
            continue
        classes = _classes(element)
        title = html.unescape(element.findtext(f"{SVG}title") or "")
        if "node" in classes:
            box = _box_of(element, at, {"path", "polygon", "ellipse"})
            assert box is not None, title
            kind = "point" if title.startswith(("__start", "__end")) else "state"
            rendered.nodes[title] = Node(title, kind, box)
        elif "cluster" in classes:
            box = _box_of(element, at, {"path", "polygon"})
            assert box is not None, title
            cluster_id = title.removeprefix("cluster_")
            rendered.clusters[cluster_id] = box
            heading = element.find(f"{SVG}text")
            if heading is not None:
                rendered.cluster_titles[cluster_id] = _dot_text_box([heading], at)
        elif "edge" in classes:
            path = element.find(f"{SVG}path")
            assert path is not None, title
            pairs = [(at[0] + x, at[1] + y) for x, y in _pairs(path.get("d", ""))]
            ends = [pairs[-1]]
            for head in element.findall(f"{SVG}polygon"):  # the arrowhead, its tip at the node
                ends.extend((at[0] + x, at[1] + y) for x, y in _pairs(head.get("points", "")))
            texts = element.findall(f"{SVG}text")
            label = "\n".join(t.text or "" for t in texts)
            box = _dot_text_box(texts, at) if texts else None
            rendered.edges.append(Edge(title, pairs[0], ends, label, box, pairs))
    return rendered


def _dot_text_box(texts: list[ET.Element], at: tuple[float, float]) -> Box:
    """The box of Graphviz text lines (``x`` is the centre or left end, ``y`` the baseline)."""
    box = None
    for line in texts:
        size = _float(line, "font-size")
        width = DOT_CHAR_WIDTH * size * len(line.text or "")
        x, y = at[0] + _float(line, "x"), at[1] + _float(line, "y")
        x0 = x - width / 2 if line.get("text-anchor") == "middle" else x
        part = Box(x0, y - 0.8 * size, x0 + width, y + 0.2 * size)
        box = part if box is None else box.union(part)
    assert box is not None
    return box


# ---- what a reader would notice ---------------------------------------------------------


def _nearest(rendered: Rendered, points: list[tuple[float, float]]) -> tuple[Node, float]:
    return min(
        ((node, min(node.box.distance(p) for p in points)) for node in rendered.nodes.values()),
        key=lambda pair: pair[1],
    )


def edge_ends(rendered: Rendered) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(source, target, label) of every drawn edge, found by where its line starts and
    ends; and a sentence for each end that is at no node (e.g. at a group's box)."""
    found, problems = [], []
    for edge in rendered.edges:
        ends = []
        for role, points in (("starts", [edge.start]), ("ends", edge.end)):
            node, distance = _nearest(rendered, points)
            if distance > END_TOLERANCE:
                where = [c for c, box in rendered.clusters.items() if _on_border(box, points)]
                problems.append(
                    f"edge {edge.id} ({edge.label!r}) {role} at no node "
                    f"({distance:.0f}px from {node.id}"
                    + (f"; on the border of group {where[0]}" if where else "")
                    + ")"
                )
            ends.append(START if node.kind == "point" else node.id)
        found.append((ends[0], ends[1], edge.label))
    return found, problems


def _on_border(box: Box, points: list[tuple[float, float]]) -> bool:
    return any(
        box.distance(p) <= END_TOLERANCE
        and min(abs(p[0] - box.x0), abs(p[0] - box.x1), abs(p[1] - box.y0), abs(p[1] - box.y1))
        <= END_TOLERANCE
        for p in points
    )


def _crosses(route: list[tuple[float, float]], box: Box) -> bool:
    """Whether the polyline through ``route`` runs through ``box`` (sampled every pixel or
    so; the route's points are on the drawn curve, which stays close to the polyline)."""
    for (x0, y0), (x1, y1) in itertools.pairwise(route):
        steps = max(1, int(max(abs(x1 - x0), abs(y1 - y0))))
        for i in range(steps + 1):
            t = i / steps
            if box.distance((x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)) == 0.0:
                return True
    return False


def layout_problems(rendered: Rendered, expected: Iterable[tuple[str, str, str]]) -> list[str]:
    """Everything a reader would trip over, as sentences (empty when the picture is clear):

    - an edge that starts or ends at no node (at a group's box, say);
    - the drawn edges differ from ``expected`` ((source, target, label) per edge, labels
      with lines joined by ``\\n``; start and end points are ``[*]``);
    - two edge labels overlap, or a label overlaps a node or a group's title;
    - an edge runs through a group's title.

    Not checked: an edge passing behind another edge's label (both renderers draw labels
    on a mostly opaque background, so the text stays readable; Mermaid's layout often puts
    them there).
    """
    found, problems = edge_ends(rendered)
    want, got = Counter(expected), Counter(found)
    for item in sorted((want - got).elements()):
        problems.append(f"edge {item[0]} -> {item[1]} ({item[2]!r}) is not drawn as such")
    for item in sorted((got - want).elements()):
        problems.append(f"unexpected edge {item[0]} -> {item[1]} ({item[2]!r})")
    labelled = [e for e in rendered.edges if e.label_box is not None]
    for index, edge in enumerate(labelled):
        assert edge.label_box is not None
        for other in labelled[index + 1 :]:
            assert other.label_box is not None
            if edge.label_box.overlaps(other.label_box):
                problems.append(
                    f"label {edge.label!r} {edge.label_box} overlaps "
                    f"label {other.label!r} {other.label_box}"
                )
        for node in rendered.nodes.values():
            if edge.label_box.overlaps(node.box):
                problems.append(f"label {edge.label!r} overlaps node {node.id}")
        for cluster, title in rendered.cluster_titles.items():
            if edge.label_box.overlaps(title):
                problems.append(f"label {edge.label!r} overlaps the title of group {cluster}")
    for edge in rendered.edges:
        for cluster, title in rendered.cluster_titles.items():
            inner = Box(title.x0 + 2, title.y0 + 2, title.x1 - 2, title.y1 - 2)
            if _crosses(edge.route, inner):
                problems.append(
                    f"edge {edge.id} ({edge.label!r}) runs through the title of {cluster}"
                )
    return problems
