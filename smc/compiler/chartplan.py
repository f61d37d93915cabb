"""What a statechart's generated module holds beyond a flat machine's: the dispatch table of
situations, the steps its hooks and the runtime follow, the hooks' names, on-exit actions
and timers scoped to compound states. Plain data (NamedTuples), like ``smc.compiler.plan``;
``templates/chart.py.jinja`` writes it.

The hierarchy is resolved here, once, by ``statechart.build_table``: the generated class
dispatches an event with one tuple index and one dict lookup, whatever the depth of the
chart. A *situation* is a stable configuration (plus the history memory that can still
matter); a *step* is what one entry of the table does, in order: states exited, events whose
transitions were taken, states entered (``("exit", state)``, ``("on", event)``,
``("entry", state)``). Steps are shared between entries that do the same thing.

Each situation also has a *state view*, what ``m.state`` answers: the deepest state that
holds every active leaf (the leaf itself in a chart without parallel states; the parallel
state, or an ancestor of it, while several regions are active). See docs/language.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from smc.compiler import commands, names
from smc.compiler.charts import machine_table
from smc.compiler.model import Machine
from smc.compiler.statechart import Chart

#: The hook methods a chart class declares: ``on_enter_<state>``, ``on_exit_<state>`` and
#: ``on_<event>``, with the state's or event's snake-case name.
ENTER_HOOK, EXIT_HOOK, EVENT_HOOK = "on_enter_", "on_exit_", "on_"


class EntryPlan(NamedTuple):
    """One accepted event of a situation: ``(next situation, its state view, step)``."""

    event: str  # member
    next: int
    state: str  # member
    step: int


class SituationPlan(NamedTuple):
    configuration: tuple[str, ...]  # members, document order
    state: str  # member: the state view
    final: bool
    entries: tuple[EntryPlan, ...]


class MovePlan(NamedTuple):
    kind: str  # "exit", "on" or "entry"
    member: str  # a State member ("exit", "entry") or an Event member ("on")


class HookPlan(NamedTuple):
    kind: str  # "exit", "on" or "entry"
    member: str
    method: str  # on_enter_x / on_exit_x / on_e
    name: str  # the YAML name, for the docstring


class ExitActionsPlan(NamedTuple):
    member: str
    actions: tuple[Any, ...]
    action_sources: tuple[str, ...]


class ChartPlan(NamedTuple):
    situations: tuple[SituationPlan, ...]
    steps: tuple[tuple[MovePlan, ...], ...]
    initial_step: int
    hooks: tuple[HookPlan, ...]
    exit_actions: tuple[ExitActionsPlan, ...]
    #: the state views' rows ``(state, event, state)``, deduplicated, for ``TRANSITIONS``.
    transitions: tuple[tuple[str, str, str], ...]


def hook_names(machine: Machine) -> list[tuple[str, str, str]]:
    """``(kind, YAML name, hook method)`` for every state (enter, exit) and event of a
    chart; the checker (SMC051) makes sure they are distinct identifiers."""
    hooks: list[tuple[str, str, str]] = []
    for state in machine.states:
        if state.kind == "history":
            continue
        snake = names.snake(state.name)
        if snake is not None:
            hooks.append(("entry", state.name, ENTER_HOOK + snake))
            hooks.append(("exit", state.name, EXIT_HOOK + snake))
    for event in machine.events:
        snake = names.snake(event.name)
        if snake is not None:
            hooks.append(("on", event.name, EVENT_HOOK + snake))
    return hooks


def chart_plan(
    machine: Machine,
    state_member: Mapping[str, str],
    event_member: Mapping[str, str],
    source_path: str,
) -> ChartPlan:
    """The chart part of ``machine``'s module plan (``machine.is_chart``)."""
    chart, table = machine_table(machine)
    views = [state_view(chart, configuration) for configuration in table.configurations]

    steps: dict[tuple[MovePlan, ...], int] = {}

    def step_of(moves: Sequence[tuple[str, str | int]]) -> int:
        plan = _moves(chart, moves, state_member, event_member)
        return steps.setdefault(plan, len(steps))

    initial_step = step_of(table.initial_moves)
    situations = []
    rows: dict[tuple[str, str, str], None] = {}
    for index, configuration in enumerate(table.configurations):
        entries = []
        for event in table.events:  # the chart's order: deterministic
            found = table.dispatch[index].get(event)
            if found is None:
                continue
            target = found[0]
            step = step_of(table.moves[index][event])
            entries.append(
                EntryPlan(event_member[event], target, state_member[views[target]], step)
            )
            row = (state_member[views[index]], event_member[event], state_member[views[target]])
            rows[row] = None
        situations.append(
            SituationPlan(
                configuration=tuple(state_member[name] for name in configuration),
                state=state_member[views[index]],
                final=table.final[index],
                entries=tuple(entries),
            )
        )
    hooks = tuple(
        HookPlan(kind, (state_member if kind != "on" else event_member)[name], method, name)
        for kind, name, method in hook_names(machine)
    )
    exit_actions = tuple(
        ExitActionsPlan(
            member=state_member[state.name],
            actions=tuple(commands.action_data(a) for a in state.on_exit),
            action_sources=tuple(f"{source_path}:{a.pos.line}:{a.pos.col}" for a in state.on_exit),
        )
        for state in machine.states
        if state.on_exit
    )
    return ChartPlan(
        situations=tuple(situations),
        steps=tuple(steps),
        initial_step=initial_step,
        hooks=hooks,
        exit_actions=exit_actions,
        transitions=tuple(rows),
    )


def _moves(
    chart: Chart,
    moves: Sequence[tuple[str, str | int]],
    state_member: Mapping[str, str],
    event_member: Mapping[str, str],
) -> tuple[MovePlan, ...]:
    """The table's moves as the generated code holds them: a taken transition becomes its
    event's ``on`` move (once for the transitions of one microstep on the same event);
    eventless transitions and ``done.state.*`` events have no hook and no move."""
    plan: list[MovePlan] = []
    for kind, what in moves:
        if kind == "transition":
            assert isinstance(what, int)
            event = chart.transitions[what].event
            if event is None or event not in event_member:
                continue
            move = MovePlan("on", event_member[event])
            if plan and plan[-1] == move:
                continue
            plan.append(move)
        else:
            assert isinstance(what, str)
            plan.append(MovePlan(kind, state_member[what]))
    return tuple(plan)


def state_view(chart: Chart, configuration: Sequence[str]) -> str:
    """The deepest state holding every active leaf (see the module docstring)."""
    active = set(configuration)
    leaves = [name for name in configuration if not (set(chart.child_states(name)) & active)]
    if len(leaves) == 1:
        return leaves[0]
    line = [leaves[0], *chart.ancestors(leaves[0])]
    for candidate in line:
        if all(leaf == candidate or chart.is_descendant(leaf, candidate) for leaf in leaves):
            return candidate
    # leaves in several top-level states cannot happen: the root is compound
    raise AssertionError(f"no state holds {leaves!r}")
