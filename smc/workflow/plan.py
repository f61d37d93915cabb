"""Ordering a workflow's tasks: the standard library's :class:`graphlib.TopologicalSorter`
does the sorting (and finds a cycle); this module only breaks its ties by file order and
groups the order into waves.

A *wave* is the set of tasks whose needs are all in earlier waves: the visible grouping
(``smc workflow diagram``, ``status``). The scheduler does not wait for a wave to finish:
a task starts as soon as its own needs have completed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter

from smc.workflow.model import Workflow

__all__ = ["CycleError", "Plan", "plan", "plan_graph"]


@dataclass(frozen=True)
class Plan:
    #: Every task, needs before dependents; ties broken by file order.
    order: tuple[str, ...]
    #: ``order`` cut into waves.
    waves: tuple[tuple[str, ...], ...]
    #: task -> the tasks that need it directly, in file order.
    dependents: Mapping[str, tuple[str, ...]]


def plan_graph(needs: Mapping[str, Sequence[str]]) -> Plan:
    """The plan of ``needs`` (task -> the tasks it needs; the mapping's order is the file
    order). Raises :class:`graphlib.CycleError` (its ``args[1]`` the cycle, each task
    needed by the next, the first repeated at the end) and ``KeyError`` for a need that is
    not a task."""
    index = {name: position for position, name in enumerate(needs)}
    sorter: TopologicalSorter[str] = TopologicalSorter()
    dependents: dict[str, list[str]] = {name: [] for name in needs}
    for name, required in needs.items():
        for need in required:
            if need not in index:
                raise KeyError(need)
            dependents[need].append(name)
        sorter.add(name, *required)
    sorter.prepare()
    waves: list[tuple[str, ...]] = []
    while sorter.is_active():
        wave = tuple(sorted(sorter.get_ready(), key=index.__getitem__))
        waves.append(wave)
        sorter.done(*wave)
    order = tuple(name for wave in waves for name in wave)
    return Plan(
        order=order,
        waves=tuple(waves),
        dependents={
            name: tuple(sorted(set(d), key=index.__getitem__)) for name, d in dependents.items()
        },
    )


def plan(workflow: Workflow) -> Plan:
    """The plan of a checked workflow."""
    return plan_graph({task.name: task.needs for task in workflow.tasks})
