"""A checked ``model.Machine`` as a ``statechart.Chart``: the wiring between the model and the
semantic core (which imports nothing of the compiler).

What the model leaves implicit is made explicit here, as the machine means it:

- a top-level state with no way out is final (``Machine.final_states``);
- ``from: "*"`` becomes one transition from every non-final atomic state, at the wildcard's
  place in file order (each source's own transitions keep their order);
- of several targets nested in one another only the innermost count (``_deepest``);
- a history state without ``to:`` defaults to its parent's initial child (every region of
  a parallel parent);
- a guarded transition's cond is its written transition's ``index`` (``Transition.index``),
  its actions its pure actions (``Transition.actions``); an ``if`` block's branch's cond is a
  ``BranchCond`` (``core_action``);
- a state's on-entry actions are its ``on_entry``, then ``actions: {state: [...]}``
  (``State.on_entry``); actions are the plain data the generated code holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from smc.compiler.exprcheck import transition_scope
from smc.compiler.expressions import Expression, Scope, parse_expression, parse_guard
from smc.compiler.model import IF, Action, Machine, Position, nested_actions
from smc.compiler.model import State as ModelState
from smc.compiler.model import Transition as ModelTransition
from smc.compiler.statechart import Chart, DispatchTable, State, Transition, build_table
from smc.compiler.statechart.chart import Cond
from smc.compiler.statechart.tables import Specialize


@dataclass(frozen=True, order=True)
class BranchCond:
    """The cond of an ``if`` block's branch in the chart: the block (by where its ``type``
    is written, unique in a file) and the branch's number (``chartplan`` compiles it)."""

    pos: Position
    branch: int


@dataclass(frozen=True, order=True)
class EventIs:
    """The cond of one branch of the block ``core_action`` wraps around an action that reads
    ``event.name``: whether the event being handled is ``event`` (None: none yet). The
    chart core decides it where the action runs (``_specialize``), so the branch it takes
    says which event that is, and ``chartplan`` compiles the action for that event."""

    pos: Position
    event: str | None
    #: whether the event came from the internal queue (None: either; ``EventCase``)
    internal: bool | None = None


class Specialized(NamedTuple):
    """A cond as ``_specialize`` leaves it for the program: the written cond, the active
    states where it is evaluated (when it reads ``In()``) and the event being handled
    there (when it reads ``event.name``: ``event_known``), and whether that event came from
    the internal queue (when the machine reads ``event.type``; else None)."""

    cond: object
    active: frozenset[str] | None
    event_known: bool
    event: str | None
    internal: bool | None = None


class EventCase(NamedTuple):
    """An event an action may run for, and whether it came from the internal queue (None
    when the machine reads no ``event.type``: then it does not matter)."""

    name: str | None
    internal: bool | None


def event_choices(machine: Machine) -> tuple[EventCase, ...]:
    """The events an action may run for, in the order of ``EventIs`` branches: none (the
    start), then the machine's events; each twice, from outside and from the internal
    queue, when the machine reads ``event.type`` (only then: each branch is compiled)."""
    if not reads_event_type(machine):
        return (EventCase(None, None), *(EventCase(e.name, None) for e in machine.events))
    return (
        EventCase(None, False),
        *(EventCase(e.name, internal) for e in machine.events for internal in (False, True)),
    )


def reads_event_type(machine: Machine) -> bool:
    """Whether an expression of ``machine`` reads ``event.type`` (kept per machine: asked
    for each action that reads the event)."""
    cached = _READS_TYPE.get(id(machine))
    if cached is not None and cached[0] is machine:
        return cached[1]
    found = False
    for transition in machine.transitions:
        if transition.when is not None:
            found = found or _reads_type_text(
                transition.when, transition_scope(machine, transition)
            )
    for action, owner in _all_actions(machine):
        scope = transition_scope(machine, owner)
        found = found or any(_reads_type_text(text, scope) for text in _action_texts(action))
    if len(_READS_TYPE) >= _TABLES_KEPT:
        _READS_TYPE.clear()
    _READS_TYPE[id(machine)] = (machine, found)
    return found


#: id(machine) -> (the machine, whether it reads ``event.type``)
_READS_TYPE: dict[int, tuple[Machine, bool]] = {}


def _reads_type_text(text: str, scope: Scope) -> bool:
    parsed = parse_expression(text, scope=scope)
    return isinstance(parsed, Expression) and parsed.uses_event_type


def _action_texts(action: Action) -> list[str]:
    """The expressions an action (an ``if`` block: its branches' conditions) reads itself."""
    texts: list[str] = []
    if action.type == IF:
        texts += [b.when for b in action.branches if b.when is not None]
    else:
        for key in ("expr", "event_expr", "delay_expr"):
            if isinstance(action.params.get(key), str):
                texts.append(action.params[key])
        payload = action.params.get("payload")
        if isinstance(payload, dict):
            texts += [str(v) for v in payload.values()]
    return texts


def core_action(
    action: Action, machine: Machine, transition: ModelTransition | None = None
) -> object:
    """An action as the chart core holds it: plain data (``Action.as_data``), but an ``if``
    block in the core's shape (``statechart.chart.conditional_branches``), each branch's cond
    a ``BranchCond``; a block whose conditions read ``In()`` says ``open: True``, so the core
    evaluates them where the macrostep is (``_in_state_conds`` specializes them).
    ``transition``: the transition it is written on (None: a state's), for its scope."""
    if action.type != IF:
        if not reads_event(machine, action, transition):
            return action.as_data()
        # One branch per event it may run for, each decided where it runs (_specialize).
        wrapped = [
            {"cond": EventIs(action.pos, case.name, case.internal), "actions": (action.as_data(),)}
            for case in event_choices(machine)
        ]
        return {"type": IF, "branches": tuple(wrapped), "open": True}
    branches = [
        {
            "cond": None if branch.when is None else BranchCond(action.pos, number),
            "actions": tuple(core_action(inner, machine, transition) for inner in branch.actions),
        }
        for number, branch in enumerate(action.branches)
    ]
    data: dict[str, object] = {"type": IF, "branches": tuple(branches)}
    if any(_reads_in(machine, when, transition) for when in _branch_conditions(action)) or any(
        reads_event(machine, inner, transition) for inner in nested_actions((action,))
    ):
        data["open"] = True
    return data


def reads_event(machine: Machine, action: Action, transition: ModelTransition | None) -> bool:
    """Whether ``action`` itself (an ``if`` block: one of its branches' conditions) reads
    ``event.name``."""
    scope = transition_scope(machine, transition)
    return any(_reads_event_text(text, scope) for text in _action_texts(action))


def _reads_event_text(text: str, scope: Scope) -> bool:
    parsed = parse_expression(text, scope=scope)
    return isinstance(parsed, Expression) and parsed.uses_event


def _branch_conditions(action: Action) -> Iterator[str]:
    """The conditions of an ``if`` block's branches, at any depth."""
    for inner in nested_actions((action,)):
        for branch in inner.branches:
            if branch.when is not None:
                yield branch.when


def _reads_in(machine: Machine, when: str, transition: ModelTransition | None) -> bool:
    parsed = parse_guard(when, scope=transition_scope(machine, transition))
    return isinstance(parsed, Expression) and bool(parsed.states)


def _deepest(machine: Machine, targets: tuple[str, ...]) -> tuple[str, ...]:
    """The targets without those that enclose another one: ``to: [r1, x]`` with x inside r1
    means x (r1 is entered as its ancestor). SCXML would also enter r1's initial child."""
    return tuple(t for t in targets if not any(t in machine.ancestors(other) for other in targets))


def machine_chart(machine: Machine) -> Chart:
    """The chart of a machine that checked without errors (flat or not)."""
    finals = set(machine.final_states)
    states: list[State] = []

    def add(state: ModelState) -> None:
        kind = "final" if state.name in finals and state.kind == "atomic" else state.kind
        default = state.history_default
        initials = _deepest(machine, state.initials)
        if state.kind == "history" and not default and state.parent is not None:
            # no ``to:``: the parent's initial child, or every region of a parallel parent
            # (docs/language.md, Statecharts)
            parent = machine.state(state.parent)
            if parent.initial is not None:
                default = _deepest(machine, parent.initials) or (parent.initial,)
            else:
                default = tuple(c for c in parent.children if machine.state(c).kind != "history")
        states.append(
            State(
                name=state.name,
                kind=kind,
                parent=state.parent,
                children=state.children,
                initial=initials[0] if initials else state.initial,
                initials=initials if len(initials) > 1 else (),
                on_entry=tuple(core_action(action, machine) for action in state.on_entry),
                on_exit=tuple(core_action(action, machine) for action in state.on_exit),
                initial_actions=tuple(
                    core_action(action, machine) for action in state.initial_actions
                ),
                default_actions=tuple(
                    core_action(action, machine) for action in state.default_actions
                ),
                history_type=state.history,
                default=default,
            )
        )
        for child in state.children:
            add(machine.state(child))

    for name in machine.top_states:
        add(machine.state(name))

    transitions = [
        Transition(
            source=source,
            targets=_targets(machine, written),
            event=written.event,
            type="internal" if written.internal else "external",
            order=order,
            # The written transition's index names its condition (``chartplan`` compiles
            # it); its actions are its pure actions, run by the generated class.
            actions=tuple(core_action(action, machine, written) for action in written.actions),
            cond=written.index if written.guarded else None,
        )
        for order, (written, source) in enumerate(_chart_transitions(machine))
    ]
    return Chart(
        states=tuple(states),
        transitions=tuple(transitions),
        initial=_deepest(machine, tuple(name for name, _ in machine.initial_targets)),
        name=machine.name,
    )


def _targets(machine: Machine, written: ModelTransition) -> tuple[str, ...]:
    """A chart transition's targets: none for a targetless one (its model ``target`` is its
    source), else the innermost of those written."""
    if written.targetless:
        return ()
    return _deepest(machine, written.targets or (written.target,))


def written_transitions(machine: Machine) -> tuple[ModelTransition, ...]:
    """For each transition of ``machine_chart(machine)``, by its document order, the
    transition written in the file it comes from: ``from: "*"`` is one written transition
    but one chart transition per source, and coverage counts what was written."""
    return tuple(written for written, _source in _chart_transitions(machine))


def machine_table(machine: Machine) -> tuple[Chart, DispatchTable]:
    """The chart of ``machine`` and its dispatch table, explored under the machine's events
    in declaration order: the situations and their numbers that the generated class holds
    (``chartplan``), that the path tests name (``paths``) and that the checker builds to
    find what only running shows (``analysis.chart.check_chart_table``). Kept for the last
    machines asked: ``smc build`` checks a machine and then generates it, and exploring a
    large chart twice doubled its build."""
    cached = _TABLES.get(id(machine))
    if cached is not None and cached[0] is machine:
        return cached[1]
    chart = machine_chart(machine)
    external = set(chart.external_events())
    events = [event.name for event in machine.events if event.name in external]
    result = chart, build_table(
        chart,
        events=events,
        specialize=_specialize(machine),
        origins=reads_event_type(machine),
    )
    if len(_TABLES) >= _TABLES_KEPT:
        _TABLES.clear()
    _TABLES[id(machine)] = (machine, result)
    return result


#: id(machine) -> (the machine, its chart and table); the machine is held so that its id
#: cannot be reused while the entry stands.
_TABLES: dict[int, tuple[Machine, tuple[Chart, DispatchTable]]] = {}
_TABLES_KEPT = 64


def _specialize(machine: Machine) -> Specialize | None:
    """A ``when:`` that reads ``In()`` is about the configuration where it is evaluated,
    in the middle of a macrostep, which the generated class does not hold (it knows the
    situation it started from), and one that reads ``event.name`` about the event being
    handled there: its cond becomes a ``Specialized`` there, and ``chartplan`` compiles
    each ``In()`` of it to the constant it is in those states and ``event.name`` to that
    event's name. An ``EventIs`` cond is decided at once."""
    reading: set[object] = set()
    events: set[object] = set()
    for transition in machine.transitions:
        if transition.when is not None:
            if _reads_in(machine, transition.when, transition):
                reading.add(transition.index)
            scope = transition_scope(machine, transition)
            if _reads_event_text(transition.when, scope):
                events.add(transition.index)
    for top, owner in top_actions(machine):
        for action in nested_actions((top,)):
            for number, branch in enumerate(action.branches):
                if branch.when is not None:
                    if _reads_in(machine, branch.when, owner):
                        reading.add(BranchCond(action.pos, number))
                    scope = transition_scope(machine, owner)
                    if _reads_event_text(branch.when, scope):
                        events.add(BranchCond(action.pos, number))
    wraps = any(reads_event(machine, action, owner) for action, owner in _all_actions(machine))
    if not reading and not events and not wraps:
        return None

    typed = reads_event_type(machine)

    def specialize(
        cond: Cond, configuration: frozenset[str], event: str | None, internal: bool
    ) -> object:
        if isinstance(cond, EventIs):
            return cond.event == event and cond.internal in (None, internal)
        if cond not in reading and cond not in events:
            return cond
        active = configuration if cond in reading else None
        if cond not in events:
            return Specialized(cond, active, False, None)
        return Specialized(cond, active, True, event, internal if typed else None)

    return specialize


def _all_actions(machine: Machine) -> Iterator[tuple[Action, ModelTransition | None]]:
    for top, owner in top_actions(machine):
        for action in nested_actions((top,)):
            yield action, owner


def top_actions(machine: Machine) -> Iterator[tuple[Action, ModelTransition | None]]:
    """The actions of the states and the transitions' own, with their transition."""
    for state in machine.states:
        for action in state.written_actions:
            yield action, None
    for transition in machine.transitions:
        for action in transition.actions:
            yield action, transition


def _chart_transitions(machine: Machine) -> list[tuple[ModelTransition, str]]:
    """(written transition, source) for each chart transition, in document order."""
    finals = set(machine.final_states)
    wildcard_sources = [s.name for s in machine.wildcard_sources if s.name not in finals]
    expanded: list[tuple[ModelTransition, str]] = []
    for written in sorted(machine.transitions, key=lambda t: t.index):
        sources = wildcard_sources if written.wildcard else [written.source]
        expanded.extend((written, source) for source in sources)
    return expanded


__all__ = [
    "BranchCond",
    "EventCase",
    "EventIs",
    "Specialized",
    "core_action",
    "event_choices",
    "machine_chart",
    "machine_table",
    "reads_event",
    "reads_event_type",
    "top_actions",
    "written_transitions",
]
