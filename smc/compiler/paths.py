"""Shortest event paths: to every state and through every transition of a machine.

The anchor is xstate's graph utilities (``getShortestPaths``): a breadth-first walk of the
transition graph from the initial state. Here every edge weighs one, so BFS gives shortest
paths, and it visits edges in table order (the priority order of ``Machine.table``), so the
same machine always yields the same paths. Each path reads like xstate's descriptions:
``"reaches completed: new_job -> job_done"``.

``smc paths`` prints them or writes them as pytest cases; ``smc build --emit-tests`` puts
them in the generated test modules (``smc.compiler.testgen``).

A statechart is walked over its *situations* instead (the generated class's dispatch table,
``charts.machine_table``; situation 0 is after starting), events in declaration order. A
state is reached when it is active, so a compound or parallel state is reached with its first
descendant; a written transition is covered when a step takes it, whichever event started
that step (an eventless transition or one on a raised event is taken inside the step of an
external event, or while starting).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from smc.compiler.chartplan import state_view
from smc.compiler.charts import machine_table, written_transitions
from smc.compiler.model import Edge, Machine, Transition
from smc.compiler.statechart import DispatchTable

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


def plan_paths(machine: Machine) -> AnyPathPlan:
    """The shortest path to each state and through each transition of ``machine`` (over
    its situations for a statechart, ``plan_chart_paths``)."""
    if machine.is_chart:
        return plan_chart_paths(machine)
    return plan_flat_paths(machine)


def plan_flat_paths(machine: Machine) -> PathPlan:
    """The shortest path to each state and through each table edge of a flat machine."""
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


def format_text(plans: Iterable[AnyPathPlan]) -> str:
    """The plans as plain text, one block per machine (``smc paths --format text``)."""
    lines: list[str] = []
    for plan in plans:
        if lines:
            lines.append("")
        if isinstance(plan, ChartPathPlan):
            lines.extend(_chart_text(plan))
        else:
            lines.extend(_flat_text(plan))
    return "\n".join(lines) + "\n"


def _flat_text(plan: PathPlan) -> list[str]:
    machine = plan.machine
    reachable = len(machine.table) - len(plan.unreachable_transitions)
    lines = [
        f"{machine.name} ({machine.path}): {len(plan.state_paths)}/{len(machine.states)} "
        f"states and {reachable}/{len(machine.table)} transitions reachable",
        "  states:",
    ]
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
    return lines


def _chart_text(plan: ChartPathPlan) -> list[str]:
    machine = plan.machine
    states = len(plan.state_paths) + len(plan.transient_states) + len(plan.unreachable_states)
    transitions = len(plan.transition_paths) + len(plan.unreachable_transitions)
    lines = [
        f"{machine.name} ({machine.path}): {len(plan.state_paths)}/{states} states and "
        f"{len(plan.transition_paths)}/{transitions} transitions reachable "
        f"({len(plan.table.configurations)} situations)",
        "  states:",
    ]
    lines.extend(f"    {path.description}" for path in plan.state_paths)
    lines.append("  transitions:")
    lines.extend(f"    {path.description}" for path in plan.transition_paths)
    if plan.transient_states:
        lines.append(
            "  states entered and left within one step: " + ", ".join(plan.transient_states)
        )
    if plan.unreachable_states:
        lines.append("  unreachable states: " + ", ".join(plan.unreachable_states))
    if plan.unreachable_transitions:
        lines.append("  transitions no step takes:")
        lines.extend(f"    {transition_label(t)}" for t in plan.unreachable_transitions)
    return lines


# ---- statecharts ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartStep:
    """One external event of a chart path: from situation ``source`` to ``target``
    (indexes of the generated class's ``CONFIGURATIONS``)."""

    source: int
    event: str
    target: int
    #: the state view after the step: what ``m.state`` answers
    view: str
    #: the written transitions the step takes (``Transition.index``), in the order taken
    taken: tuple[int, ...]


@dataclass(frozen=True)
class ChartPath:
    """External events from the start of a statechart."""

    kind: Literal["state", "transition"]
    #: the state reached (a state path) or the state view at the end (a transition path)
    target: str
    steps: tuple[ChartStep, ...]
    #: the written transition a transition path exists to cover (its last step takes it,
    #: or starting does when there are no steps)
    transition: Transition | None = None

    @property
    def events(self) -> tuple[str, ...]:
        return tuple(step.event for step in self.steps)

    @property
    def description(self) -> str:
        """``reaches busy: go`` or ``takes fetched from fetching to parsing: go -> fetched``."""
        events = ARROW.join(self.events) if self.steps else "(initial state)"
        if self.transition is None:
            return f"reaches {self.target}: {events}"
        return f"takes {transition_label(self.transition)}: {events}"

    @property
    def checks(self) -> tuple[tuple[str, str], ...]:
        """``(event, state)`` per step, as ``smc.testing.run_path`` replays a chart path:
        the state must be active after the step; it is the state view, except after the
        last step of a state path, where it is the state reached."""
        checks = [(step.event, step.view) for step in self.steps]
        if self.kind == "state" and checks:
            checks[-1] = (checks[-1][0], self.target)
        return tuple(checks)


@dataclass(frozen=True)
class ChartPathPlan:
    """Every path smc generates for one statechart, and what no path reaches."""

    machine: Machine
    #: the dispatch table of situations the paths walk (the generated class's)
    table: DispatchTable
    #: situation -> its state view
    views: tuple[str, ...]
    #: the written transitions starting takes (``Transition.index``)
    initial_taken: tuple[int, ...]
    #: one per reachable state (history pseudo-states are never active), in document order
    state_paths: tuple[ChartPath, ...]
    #: one per written transition some step takes, in file order
    transition_paths: tuple[ChartPath, ...]
    #: states entered and left within one step, never active between two events (the
    #: transition paths into and out of them cover them), in document order
    transient_states: tuple[str, ...]
    #: states never entered, in document order
    unreachable_states: tuple[str, ...]
    #: written transitions no step takes (their source is never active, or another
    #: transition always comes first)
    unreachable_transitions: tuple[Transition, ...]

    @property
    def paths(self) -> tuple[ChartPath, ...]:
        return self.state_paths + self.transition_paths

    @cached_property
    def covered_transitions(self) -> frozenset[int]:
        """``Transition.index`` of every written transition starting or a path takes."""
        return frozenset(self.initial_taken).union(
            index for path in self.paths for step in path.steps for index in step.taken
        )

    @cached_property
    def covered_states(self) -> frozenset[str]:
        """Every state active after starting or after some step of a path."""
        situations = {0}.union(step.target for path in self.paths for step in path.steps)
        return frozenset(name for s in situations for name in self.table.configurations[s])

    @cached_property
    def routes(self) -> tuple[tuple[int, int, str], ...]:
        """``(situation, the situation before it, the event from there)`` for every
        situation a path passes through but the start, in breadth-first order: the tree
        the emitted tests carry (``smc.testing.path_cases`` expands it)."""
        found: dict[int, tuple[int, str]] = {}
        for path in self.paths:
            steps = path.steps if path.kind == "state" else path.steps[:-1]
            for step in steps:
                found.setdefault(step.target, (step.source, step.event))
        return tuple((s, *found[s]) for s in sorted(found, key=self._order.__getitem__))

    @cached_property
    def _order(self) -> dict[int, int]:
        return {situation: i for i, situation in enumerate(_breadth_first(self.table)[0])}


def transition_label(transition: Transition) -> str:
    """A written transition in a test id: ``go from idle to busy``, ``(eventless) from
    parsing to idle``, ``split from idle to a and d``, ``stop from * to done``."""
    event = transition.event if transition.event is not None else "(eventless)"
    targets = " and ".join(transition.targets or (transition.target,))
    return f"{event} from {transition.source} to {targets}"


def _breadth_first(table: DispatchTable) -> tuple[list[int], dict[int, tuple[int, str]]]:
    """The situations in breadth-first order from 0 (events in table order), and the
    tree: situation -> (the situation before it, the event from there)."""
    order = [0]
    tree: dict[int, tuple[int, str]] = {}
    seen = {0}
    queue = deque([0])
    while queue:
        situation = queue.popleft()
        for event in table.events:
            found = table.dispatch[situation].get(event)
            if found is not None and found[0] not in seen:
                seen.add(found[0])
                tree[found[0]] = (situation, event)
                order.append(found[0])
                queue.append(found[0])
    return order, tree


def plan_chart_paths(machine: Machine) -> ChartPathPlan:
    """The shortest path to each state and through each written transition of a
    statechart: breadth first over its situations, ties to the event declared first."""
    chart, table = machine_table(machine)
    origin = [written.index for written in written_transitions(machine)]
    views = tuple(state_view(chart, configuration) for configuration in table.configurations)

    entered: set[str] = set()

    def taken(moves: Iterable[tuple[str, str | int]]) -> tuple[int, ...]:
        indexes: dict[int, None] = {}
        for kind, what in moves:
            if kind == "transition" and isinstance(what, int):
                indexes.setdefault(origin[what], None)
            elif kind == "entry" and isinstance(what, str):
                entered.add(what)
        return tuple(indexes)

    order, tree = _breadth_first(table)
    route: dict[int, tuple[ChartStep, ...]] = {0: ()}
    for situation in order[1:]:
        source, event = tree[situation]
        step = ChartStep(
            source, event, situation, views[situation], taken(table.moves[source][event])
        )
        route[situation] = (*route[source], step)

    first_active: dict[str, int] = {}
    first_taken: dict[int, tuple[ChartStep, ...]] = {}
    initial_taken = taken(table.initial_moves)
    for index in initial_taken:
        first_taken.setdefault(index, ())
    for situation in order:  # breadth first: the first found is on a shortest path
        for name in table.configurations[situation]:
            first_active.setdefault(name, situation)
        for event in table.events:
            found = table.dispatch[situation].get(event)
            if found is None:
                continue
            moves = table.moves[situation][event]
            step = ChartStep(situation, event, found[0], views[found[0]], taken(moves))
            for index in step.taken:
                first_taken.setdefault(index, (*route[situation], step))

    state_names = [s.name for s in machine.states if s.kind != "history"]
    state_paths = tuple(
        ChartPath("state", name, route[first_active[name]])
        for name in state_names
        if name in first_active
    )
    written = sorted(machine.transitions, key=lambda t: t.index)
    transition_paths = tuple(
        ChartPath(
            "transition",
            views[steps[-1].target] if steps else views[0],
            steps,
            transition,
        )
        for transition in written
        if (steps := first_taken.get(transition.index)) is not None
    )
    return ChartPathPlan(
        machine=machine,
        table=table,
        views=views,
        initial_taken=initial_taken,
        state_paths=state_paths,
        transition_paths=transition_paths,
        transient_states=tuple(n for n in state_names if n in entered - first_active.keys()),
        unreachable_states=tuple(n for n in state_names if n not in entered | first_active.keys()),
        unreachable_transitions=tuple(t for t in written if t.index not in first_taken),
    )


#: What ``plan_paths`` returns: a flat machine's plan or a statechart's.
AnyPathPlan = PathPlan | ChartPathPlan
