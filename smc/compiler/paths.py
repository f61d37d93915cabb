"""Shortest event paths: to every state and through every transition of a machine.

The anchor is xstate's graph utilities (``getShortestPaths``): a breadth-first walk of the
transition graph from the initial state. Here every edge weighs one, so BFS gives shortest
paths, and it visits edges in table order (the priority order of ``Machine.table``), so the
same machine always yields the same paths. Each path reads like xstate's descriptions:
``"reaches completed: new_job -> job_done"``.

``smc paths`` prints them or writes them as pytest cases; ``smc build --emit-tests`` puts
them in the generated test modules (``smc.compiler.testgen``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from smc.compiler.model import Edge, Machine

ARROW = " -> "


@dataclass(frozen=True)
class EventPath:
    """Events from the initial state, each step the table edge it takes."""

    kind: Literal["state", "transition"]
    #: the state reached at the end
    target: str
    steps: tuple[Edge, ...]

    @property
    def events(self) -> tuple[str, ...]:
        return tuple(step.event for step in self.steps)

    @property
    def edge(self) -> Edge | None:
        """The transition this path exists to cover (its last step), for transition paths."""
        return self.steps[-1] if self.kind == "transition" and self.steps else None

    @property
    def description(self) -> str:
        """A readable test id: ``reaches finishing: initialized -> new_job -> job_done``."""
        events = ARROW.join(self.events) if self.steps else "(initial state)"
        if self.kind == "state":
            return f"reaches {self.target}: {events}"
        last = self.steps[-1]
        return f"takes {last.event} from {last.source} to {last.target}: {events}"


@dataclass(frozen=True)
class PathPlan:
    """Every path smc generates for one machine, and what cannot be reached."""

    machine: Machine
    #: one per reachable state, in declaration order
    state_paths: tuple[EventPath, ...]
    #: one per reachable transition of ``machine.table``, in table order
    transition_paths: tuple[EventPath, ...]
    unreachable_states: tuple[str, ...]
    unreachable_transitions: tuple[Edge, ...]

    @cached_property
    def covered_transitions(self) -> frozenset[tuple[str, str]]:
        """``(source, event)`` of every table edge some path takes."""
        return frozenset(
            (step.source, step.event)
            for path in self.state_paths + self.transition_paths
            for step in path.steps
        )

    @property
    def paths(self) -> tuple[EventPath, ...]:
        return self.state_paths + self.transition_paths


def shortest_paths(machine: Machine) -> dict[str, tuple[Edge, ...]]:
    """Reachable state -> the shortest list of edges from the initial state to it.

    Ties go to the edge that comes first in the table, then to the state found first.
    """
    outgoing: dict[str, list[Edge]] = {}
    for edge in machine.table:
        outgoing.setdefault(edge.source, []).append(edge)
    start = machine.initial_state
    if not machine.has_state(start):
        return {}
    found: dict[str, tuple[Edge, ...]] = {start: ()}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        route = found[state]
        for edge in outgoing.get(state, ()):
            if edge.target not in found:
                found[edge.target] = (*route, edge)
                queue.append(edge.target)
    return found


def plan_paths(machine: Machine) -> PathPlan:
    """The shortest path to each state and through each transition of ``machine``."""
    routes = shortest_paths(machine)
    state_paths = tuple(
        EventPath("state", name, routes[name]) for name in machine.state_names if name in routes
    )
    transition_paths = tuple(
        EventPath("transition", edge.target, (*routes[edge.source], edge))
        for edge in machine.table
        if edge.source in routes
    )
    return PathPlan(
        machine=machine,
        state_paths=state_paths,
        transition_paths=transition_paths,
        unreachable_states=tuple(n for n in machine.state_names if n not in routes),
        unreachable_transitions=tuple(e for e in machine.table if e.source not in routes),
    )


def format_text(plans: Iterable[PathPlan]) -> str:
    """The plans as plain text, one block per machine (``smc paths --format text``)."""
    lines: list[str] = []
    for plan in plans:
        machine = plan.machine
        reachable = len(machine.table) - len(plan.unreachable_transitions)
        if lines:
            lines.append("")
        lines.append(
            f"{machine.name} ({machine.path}): {len(plan.state_paths)}/{len(machine.states)} "
            f"states and {reachable}/{len(machine.table)} transitions reachable"
        )
        lines.append("  states:")
        lines.extend(f"    {path.description}" for path in plan.state_paths)
        lines.append("  transitions:")
        lines.extend(f"    {path.description}" for path in plan.transition_paths)
        if plan.unreachable_states:
            lines.append("  unreachable states: " + ", ".join(plan.unreachable_states))
        if plan.unreachable_transitions:
            lines.append("  unreachable transitions:")
            lines.extend(
                f"    {e.event} from {e.source} to {e.target}" for e in plan.unreachable_transitions
            )
    return "\n".join(lines) + "\n"
