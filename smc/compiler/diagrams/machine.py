"""One machine's diagrams: its picture (and one per group) written as Mermaid and DOT, and
its Markdown page."""

from __future__ import annotations

from smc.compiler import names
from smc.compiler.diagrams.chart import chart_picture
from smc.compiler.diagrams.dot import dot_state_diagram
from smc.compiler.diagrams.markdown import machine_markdown
from smc.compiler.diagrams.mermaid import mermaid_state_diagram
from smc.compiler.diagrams.model import Detail, full_picture, group_picture, machine_ids, slug
from smc.compiler.model import Machine


def machine_module(machine: Machine) -> str:
    """The file stem for a machine's diagrams (the generated module's name)."""
    module = names.module(machine.name)
    return module if module is not None else slug(machine.name).lower()


def machine_diagrams(machine: Machine, *, detail: Detail = "names") -> dict[str, str]:
    """Relative output path -> text for one machine (see the package docstring)."""
    module = machine_module(machine)
    ids = machine_ids(machine)
    full = (
        chart_picture(machine, ids, detail)
        if machine.is_chart
        else full_picture(machine, ids, detail)
    )
    out: dict[str, str] = {}
    overview_mmd = mermaid_state_diagram(full)
    out[f"{module}.mmd"] = overview_mmd
    out[f"{module}.dot"] = dot_state_diagram(full)
    group_sections = []
    # A chart's nesting shows its structure: its groups get no diagrams (see ``chart``).
    for index, group in enumerate(() if machine.is_chart else machine.groups):
        picture = group_picture(machine, ids, index, detail)
        stem = f"{module}.{group.id}"
        mmd = mermaid_state_diagram(picture)
        out[f"{stem}.mmd"] = mmd
        out[f"{stem}.dot"] = dot_state_diagram(picture)
        group_sections.append((group.name, mmd))
    out[f"{module}.md"] = machine_markdown(machine, overview_mmd, group_sections)
    return dict(sorted(out.items()))
