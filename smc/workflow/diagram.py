"""A workflow as a flowchart: Mermaid or DOT, one subgraph per wave, an edge per need, and
with a run's states each task's state in its label (and a class/colour per state).

Task names are identifiers (the schema's pattern), so they are used as node ids as they are;
the other text (job types, states) is escaped for each format. The DOT output quotes and
escapes node ids too, and takes other node ids (``ids``): the web monitor draws a run's stored
definition, which no schema checked again, with ids of its own (``smc.ui.workflows``).
"""

from __future__ import annotations

from collections.abc import Mapping

from smc.workflow.model import Workflow
from smc.workflow.plan import plan

#: Each contract state's fill colour (the web monitor's legend uses the same).
STATE_COLOURS = {
    "PENDING": "#eeeeee",
    "RUNNING": "#9ecbff",
    "COMPLETED": "#a5e0a5",
    "FAILED": "#f4a6a6",
    "SKIPPED": "#dddddd",
    "CANCELLED": "#f6d19b",
}


def _mermaid_text(text: str) -> str:
    return "".join(f"#{ord(c)};" if c in '"#<>&;' or not c.isprintable() else c for c in text)


def mermaid(workflow: Workflow, states: Mapping[str, str] | None = None) -> str:
    states = states or {}
    lines = ["flowchart LR"]
    for number, wave in enumerate(plan(workflow).waves, start=1):
        lines.append(f'  subgraph wave{number}["wave {number}"]')
        for name in wave:
            task = workflow.task(name)
            label = f"{name}<br/>{_mermaid_text(task.job_type)}"
            if name in states:
                label += f"<br/>{_mermaid_text(states[name])}"
            lines.append(f'    {name}["{label}"]')
        lines.append("  end")
    for task in workflow.tasks:
        for need in task.needs:
            lines.append(f"  {need} --> {task.name}")
    for state, colour in STATE_COLOURS.items():
        members = [name for name, s in states.items() if s == state]
        if members:
            lines.append(f"  classDef {state.lower()} fill:{colour}")
            lines.append(f"  class {','.join(members)} {state.lower()}")
    return "\n".join(lines)


def _dot_text(text: str) -> str:
    return "".join(
        "\\" + c if c in '"\\' else c if c.isprintable() else f"\\\\x{ord(c):02x}" for c in text
    )


def _dot_label(text: str) -> str:
    # Graphviz reads HTML entities in labels (``&amp;`` is drawn as ``&``): a name's ``&``
    # is written as one so that the name is drawn as it is.
    return _dot_text(text).replace("&", "&amp;")


def dot(
    workflow: Workflow,
    states: Mapping[str, str] | None = None,
    ids: Mapping[str, str] | None = None,
) -> str:
    """The DOT flowchart; ``ids`` maps task names to node ids (default: the names)."""
    states = states or {}

    def node(name: str) -> str:
        return _dot_text(ids[name] if ids is not None else name)

    lines = [f'digraph "{_dot_text(workflow.name)}" {{', "  rankdir=LR;", "  node [shape=box];"]
    for number, wave in enumerate(plan(workflow).waves, start=1):
        lines.append(f'  subgraph "cluster_wave{number}" {{ label="wave {number}";')
        for name in wave:
            label = f"{_dot_label(name)}\\n{_dot_label(workflow.task(name).job_type)}"
            style = ""
            if name in states:
                label += f"\\n{_dot_label(states[name])}"
                colour = STATE_COLOURS.get(states[name], "#ffffff")
                style = f', style=filled, fillcolor="{colour}"'
            lines.append(f'    "{node(name)}" [label="{label}"{style}];')
        lines.append("  }")
    for task in workflow.tasks:
        for need in task.needs:
            lines.append(f'  "{node(need)}" -> "{node(task.name)}";')
    lines.append("}")
    return "\n".join(lines)
