"""``smc.workflow.diagram.dot`` drawn by the real ``dot``: names that are not identifiers (a
stored definition's) stay one node each, and each label is drawn as the text it is."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from smc.compiler.diagrams.dot import render_image
from smc.workflow.diagram import dot
from smc.workflow.model import Workflow

SVG = "{http://www.w3.org/2000/svg}"
ODD = ['a"b', "c\\N d", "x & y &amp; z", "p -> q"]


def _workflow() -> Workflow:
    tasks = {name: {"job_type": f"t {name}"} for name in ODD}
    tasks[ODD[1]]["needs"] = [ODD[0]]  # type: ignore[assignment]
    tasks[ODD[3]]["needs"] = [ODD[1], ODD[2]]  # type: ignore[assignment]
    return Workflow.from_data({"workflow": "w&amp;", "tasks": tasks})


def _drawn(text: str) -> ET.Element:
    return ET.fromstring(render_image(text, "svg"))


def test_odd_names_are_one_node_each_with_their_own_text() -> None:
    for ids in (None, {name: f"n{i}" for i, name in enumerate(ODD)}):
        root = _drawn(dot(_workflow(), {ODD[2]: "RUNNING"}, ids=ids))
        nodes = [g for g in root.iter(SVG + "g") if g.get("class") == "node"]
        edges = [g for g in root.iter(SVG + "g") if g.get("class") == "edge"]
        assert len(nodes) == 4 and len(edges) == 3
        texts = [t.text for t in root.iter(SVG + "text")]
        for name in ODD:
            assert name in texts and f"t {name}" in texts
        assert "RUNNING" in texts
        if ids is not None:  # the web monitor finds each task's node by its id
            titles = sorted(g.findtext(SVG + "title") or "" for g in nodes)
            assert titles == sorted(ids.values())
