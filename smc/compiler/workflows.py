"""Checking workflow files (docs/workflows.md): a YAML document whose top level has a
``workflow:`` key is a workflow, not a machine. It is validated against
``schemas/workflow.schema.json`` (SMC120), its ``needs:`` checked (SMC122 unknown task,
SMC123 a task named twice, SMC126 a `data.workflow` key the
scheduler would replace), its tasks ordered by :mod:`smc.workflow.plan` (the standard
library's ``graphlib``), which finds a cycle (SMC121, one error listing the cycle in order)
and the tasks behind one (SMC124); with machines checked beside it, a job type no machine
claims is a warning (SMC125).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from smc.compiler import schema
from smc.compiler.diagnostics import Diagnostic
from smc.compiler.loader import LoadedDocument
from smc.compiler.model import Machine
from smc.workflow.model import Workflow
from smc.workflow.plan import CycleError, plan_graph

#: The actions that claim jobs from the queue by type (``job_type``; none: any type).
_CLAIMING_ACTIONS = frozenset({"check_database_queue"})


def is_workflow(data: Any) -> bool:
    """Whether loaded data is a workflow file rather than a machine: a ``workflow:`` key at
    its top level (the machine schema has none)."""
    return isinstance(data, dict) and "workflow" in data


def check_workflow(doc: LoadedDocument) -> tuple[Workflow | None, list[Diagnostic]]:
    """The workflow of ``doc`` and its problems; ``None`` when it has errors."""
    invalid = schema.validate_workflow(doc)
    if invalid:
        return None, invalid
    data: dict[str, Any] = doc.data
    tasks: Mapping[str, Any] = data["tasks"]
    diagnostics: list[Diagnostic] = []

    def at(path: tuple[Any, ...], code: str, message: str, hint: str = "") -> None:
        pos = doc.pos(path)
        diagnostics.append(Diagnostic(doc.path, pos.line, pos.col, code, message, hint))

    needs: dict[str, list[str]] = {}
    for name, task in tasks.items():
        if "workflow" in (task.get("data") or {}):
            pos = doc.pos(("tasks", name, "data", "workflow"), key=True)
            diagnostics.append(
                Diagnostic(
                    doc.path,
                    pos.line,
                    pos.col,
                    "SMC126",
                    f"task {name!r}: `data.workflow` is where the scheduler puts the run, task "
                    "and attempt, replacing what is written here",
                    "rename the key",
                )
            )
        kept: list[str] = []
        for index, need in enumerate(task.get("needs") or ()):
            where = ("tasks", name, "needs", index)
            if need not in tasks:
                close = _close_match(need, tasks)
                at(
                    where,
                    "SMC122",
                    f"task {name!r} needs {need!r}, which is not a task of this workflow",
                    f"did you mean {close!r}?" if close else "declare it under `tasks:`",
                )
            elif need in kept:
                at(where, "SMC123", f"task {name!r} needs {need!r} twice", "remove one")
            else:
                kept.append(need)
        needs[name] = kept
    try:
        plan_graph(needs)
    except CycleError as error:
        cycle: list[str] = list(error.args[1])
        diagnostics.extend(_cycle_problems(doc, tasks, needs, cycle))
    if any(d.is_error for d in diagnostics):
        return None, diagnostics
    return Workflow.from_data(data, doc.path), diagnostics


def _close_match(name: str, tasks: Iterable[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(name, list(tasks), n=1)
    return found[0] if found else None


def _cycle_problems(
    doc: LoadedDocument,
    tasks: Mapping[str, Any],
    needs: Mapping[str, Sequence[str]],
    cycle: list[str],
) -> list[Diagnostic]:
    """SMC121 for the cycle graphlib found (each task in it needed by the next), as one
    error at the first ``needs:`` entry of the cycle in file order, listing every edge with
    where it is written; SMC124 for each task that needs one in the cycle."""
    members = cycle[:-1]
    # graphlib lists each task before the one that needs it: read it the other way, as
    # "a needs b", starting from the task written first so the message is stable.
    order = list(reversed(members))
    first = min(range(len(order)), key=lambda i: list(tasks).index(order[i]))
    order = order[first:] + order[:first]
    edges = []
    for position, name in enumerate(order):
        need = order[(position + 1) % len(order)]
        index = list(tasks[name].get("needs") or ()).index(need)
        pos = doc.pos(("tasks", name, "needs", index))
        edges.append((name, need, pos))
    start = edges[0][2]
    listing = ", ".join(f"{a} needs {b} ({pos.line}:{pos.col})" for a, b, pos in edges)
    loop = " -> ".join([*order, order[0]])
    problems = [
        Diagnostic(
            doc.path,
            start.line,
            start.col,
            "SMC121",
            f"the tasks need each other in a cycle: {loop}: {listing}",
            "remove one of these `needs:` entries",
        )
    ]
    blocked = set(members)
    changed = True
    while changed:
        changed = False
        for name, required in needs.items():
            if name not in blocked and any(need in blocked for need in required):
                blocked.add(name)
                changed = True
                pos = doc.pos(("tasks", name), key=True)
                problems.append(
                    Diagnostic(
                        doc.path,
                        pos.line,
                        pos.col,
                        "SMC124",
                        f"task {name!r} can never start: it needs a task of the cycle "
                        f"{' -> '.join([*order, order[0]])}",
                        "break the cycle",
                    )
                )
    return problems


def check_job_types(
    doc_path: str, workflow: Workflow, doc: LoadedDocument, machines: Sequence[Machine]
) -> list[Diagnostic]:
    """SMC125: with machines checked beside the workflow, each task's job type should be
    claimed by one of them (a ``check_database_queue`` of that type, or of any type)."""
    if not machines:
        return []
    claimed: set[str | None] = set()
    for machine in machines:
        for state in machine.states:
            for action in state.written_actions:
                if action.type in _CLAIMING_ACTIONS:
                    job_type = action.params.get("job_type")
                    claimed.add(job_type if isinstance(job_type, str) else None)
        for transition in machine.transitions:
            for action in transition.actions:
                if action.type in _CLAIMING_ACTIONS:
                    job_type = action.params.get("job_type")
                    claimed.add(job_type if isinstance(job_type, str) else None)
    if None in claimed:
        return []
    problems = []
    for task in workflow.tasks:
        if task.job_type not in claimed:
            pos = doc.pos(("tasks", task.name, "job_type"))
            problems.append(
                Diagnostic(
                    doc_path,
                    pos.line,
                    pos.col,
                    "SMC125",
                    f"no checked machine claims job type {task.job_type!r} (task {task.name!r})",
                    "add a worker machine whose check_database_queue takes this job type",
                )
            )
    return problems
