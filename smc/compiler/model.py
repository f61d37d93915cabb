"""The intermediate model: one immutable ``Machine`` per YAML file, whatever its input style.

Everything after the loader (analysis, code generation, diagrams, path generation) reads
this and only this. Wildcard transitions are kept as written (``Machine.transitions``) and
also expanded (``Machine.table``), so each consumer picks the view it needs.

A statechart is the same model with a tree over it: every state, at every depth, is in
``Machine.states`` in document order (parents before their children), each knowing its
``parent``, ``children`` and ``kind``; ``Machine.is_chart`` says whether anything beyond a
flat table is used. A flat machine has no parent, no children, every transition has one event
and one target, and so reads exactly as it always did.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

WILDCARD = "*"
#: The action type that sets a context field to an expression's value (``location``, ``expr``).
ASSIGN = "assign"
#: The conditional block: ``when``/``then``, optional ``elif`` and ``else`` (``Action.branches``).
IF = "if"
#: Sends an event to the machine itself, after the macrostep (``event``, ``delay``, ``payload``).
SEND = "send"
#: Queues an internal event (``event``), resolved by the chart core; on a transition it runs
#: when the transition is taken.
RAISE = "raise"
#: ``log``: with ``label``/``expr`` a pure action the generated class runs (``on_log``); with
#: ``message`` the runtime's log action.
LOG = "log"
#: The actions an ``if`` block's branches may hold: those the generated class runs (and
#: ``raise``, which the chart core resolves).
BRANCH_ACTIONS = ("assign", "raise", "log", "send", "if")
TIMEOUT_EVENT = re.compile(r"^timeout\((?P<seconds>\d+(?:\.\d+)?)\)$")
#: A ``send`` action's ``delay`` written as a string: seconds, or milliseconds with ``ms``
#: (SCXML's CSS2 times: ``"1.5s"``, ``"500ms"``; a bare ``"2"`` is seconds).
_DELAY = re.compile(r"^\s*(?P<amount>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>ms|s)?\s*$")


def parse_delay(value: object) -> float | None:
    """A ``send`` delay in seconds: a non-negative finite number, or a string ``_DELAY``
    reads; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DELAY.match(value)):
        seconds = float(match.group("amount"))
        if match.group("unit") == "ms":
            seconds /= 1000
    else:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


#: engine: statemachine-engine (actions keyed by state); design: actions on transitions with
#: ``params:``; contract: ``states`` map with ``allowed_transitions`` and no events.
Style = Literal["engine", "design", "contract"]

#: atomic: no children; compound: children, one active at a time (its ``initial`` first);
#: parallel: children are regions, all active together; final: declared final, no children;
#: history: a pseudo-state that restores its parent's last active children.
StateKind = Literal["atomic", "compound", "parallel", "final", "history"]
HistoryKind = Literal["shallow", "deep"]


@dataclass(frozen=True, order=True)
class Position:
    path: str
    line: int  # 1-based
    col: int  # 1-based

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True, eq=False)
class Action:
    """One action a state runs on entry. ``params`` are normalised: ``params:`` flattened
    into the inline keys and aliases replaced (``target`` -> ``target_machine``)."""

    type: str
    params: Mapping[str, Any]
    pos: Position
    description: str | None = None
    #: where it was written: under ``actions:`` (engine style) or on a transition (design).
    origin: Literal["state", "transition"] = "state"
    #: where each parameter's value and key were written (for precise diagnostics).
    param_pos: Mapping[str, Position] = field(default_factory=dict)
    param_key_pos: Mapping[str, Position] = field(default_factory=dict)
    #: an ``if`` block's branches, in order (``when``/``then``, each ``elif``, ``else``).
    branches: tuple[IfBranch, ...] = ()
    #: a ``send`` action's payload: field -> (where its key is, where its expression is).
    payload_pos: Mapping[str, tuple[Position, Position]] = field(default_factory=dict)

    @property
    def pure(self) -> bool:
        """Whether the generated class runs the action itself (docs/language.md, "Actions in
        the class"): ``assign``, ``if``, ``send``, ``log`` with ``label`` or ``expr``, and a
        ``raise`` with ``id_location`` (the class draws its id; the chart core queues it)."""
        if self.type in (ASSIGN, IF, SEND):
            return True
        if self.type == RAISE:
            return "id_location" in self.params
        return self.type == LOG and ("expr" in self.params or "label" in self.params)

    def as_data(self) -> dict[str, Any]:
        """The action as plain data, as the generated ``STATE_ACTIONS`` holds it."""
        data: dict[str, Any] = {"type": self.type}
        if self.description is not None:
            data["description"] = self.description
        data.update(self.params)
        return data


@dataclass(frozen=True, eq=False)
class IfBranch:
    """One branch of an ``if`` block: its condition (None for ``else``), where the condition
    is written, and its actions."""

    when: str | None
    when_pos: Position | None
    actions: tuple[Action, ...]
    #: where the branch is written (its ``when:`` key, or the ``else:`` key).
    pos: Position


def nested_actions(actions: Iterable[Action]) -> Iterator[Action]:
    """``actions`` and, after each ``if`` block, the actions of its branches (at any depth),
    in document order."""
    for action in actions:
        yield action
        for branch in action.branches:
            yield from nested_actions(branch.actions)


@dataclass(frozen=True)
class State:
    name: str
    pos: Position
    description: str | None = None
    #: True when written in ``final_states`` or with ``final: true``.
    declared_final: bool = False
    #: False when the state was only inferred from transitions (no ``states:`` entry).
    declared: bool = True
    #: the on-entry actions: ``on_entry:`` in the state's item, then ``actions: {state:}``,
    #: then design-style actions of transitions from the state.
    actions: tuple[Action, ...] = ()
    # ---- statecharts (all defaults for a flat machine) ---------------------------------
    kind: StateKind = "atomic"
    #: the enclosing state's name; None at the top level.
    parent: str | None = None
    #: the direct children's names, in document order (the regions of a parallel state).
    children: tuple[str, ...] = ()
    #: a compound state's initial child: written (``initial:``, ``initial_state:``) or its
    #: first child that is not a history pseudo-state. None for every other kind.
    initial: str | None = None
    #: where ``initial`` was written; None when it is the default.
    initial_pos: Position | None = None
    #: every state ``initial:`` names when it is a list (``initial`` is the first): several
    #: descendants in different regions of a parallel descendant; empty for one.
    initials: tuple[str, ...] = ()
    initials_pos: tuple[Position, ...] = ()
    #: a compound state's ``initial_actions:``: run when it is entered by default (its initial
    #: transition's actions, SCXML's ``<initial><transition>`` content).
    initial_actions: tuple[Action, ...] = ()
    #: a history state's ``default_actions:``: run when its default is taken.
    default_actions: tuple[Action, ...] = ()
    #: a history pseudo-state's kind; None for a state.
    history: HistoryKind | None = None
    #: a history pseudo-state's default ``to:`` (entered when there is nothing to restore);
    #: empty: its parent's initial child.
    history_default: tuple[str, ...] = ()
    history_default_pos: tuple[Position, ...] = ()
    on_exit: tuple[Action, ...] = ()

    @property
    def on_entry(self) -> tuple[Action, ...]:
        """The on-entry actions (the same as ``actions``)."""
        return self.actions

    @property
    def written_actions(self) -> tuple[Action, ...]:
        """Every action list of the state: on entry, on exit, initial, default."""
        return (*self.actions, *self.on_exit, *self.initial_actions, *self.default_actions)

    @property
    def initial_targets(self) -> tuple[tuple[str, Position | None], ...]:
        """A compound state's initial states with where each is written (none for a state
        that is not compound, or one without children)."""
        if self.initials:
            return tuple(zip(self.initials, self.initials_pos, strict=True))
        return () if self.initial is None else ((self.initial, self.initial_pos),)

    @property
    def is_atomic(self) -> bool:
        """A leaf of the tree that can be active: atomic or final, not a pseudo-state."""
        return self.kind in ("atomic", "final")


@dataclass(frozen=True)
class Event:
    name: str
    pos: Position
    declared: bool = False
    context_map: tuple[tuple[str, str], ...] = ()
    description: str | None = None
    #: the JSON Schema of the event's payload (``events: {e: {payload: ...}}``), as plain
    #: data; None when none is declared.
    payload_schema: Mapping[str, Any] | None = field(default=None, compare=False)
    #: where ``payload:`` is written (None without one).
    payload_pos: Position | None = None

    @property
    def timeout(self) -> float | None:
        """Seconds for a ``timeout(N)`` event, else None."""
        match = TIMEOUT_EVENT.match(self.name)
        return float(match.group("seconds")) if match else None


@dataclass(frozen=True)
class ContextField:
    """One field of the machine's typed data (``context: {name: {type, default}}``)."""

    name: str
    #: the field's JSON Schema as written (``default`` and ``description`` included), as
    #: plain data.
    schema: Mapping[str, Any] = field(compare=False)
    pos: Position
    #: the default as plain data; meaningful only when ``has_default``.
    default: Any = field(default=None, compare=False)
    has_default: bool = False
    description: str | None = None
    #: ``expr:``: the initial value computed, when the machine starts without a given
    #: context, from the fields before it (docs/language.md, "Data"); None: ``default``.
    expr: str | None = None
    expr_pos: Position | None = None


@dataclass(frozen=True)
class JobType:
    """A job type the machine claims (``jobs: {name: {data: <schema>}}``)."""

    name: str
    pos: Position
    #: the JSON Schema of the job's data, as plain data; None when none is declared.
    data_schema: Mapping[str, Any] | None = field(default=None, compare=False)
    description: str | None = None


@dataclass(frozen=True)
class Transition:
    """A transition as written. ``source`` may be ``"*"``.

    ``event`` is None for an eventless transition (statecharts only: taken as soon as its
    source is active); ``target`` is the first of ``targets`` (several only in a chart, to
    enter states of different parallel regions at once).
    """

    source: str
    target: str
    event: str | None
    pos: Position
    index: int  # file order; the first matching transition wins
    source_pos: Position
    target_pos: Position
    event_pos: Position
    #: execution-contract style: made from ``allowed_transitions`` (event ``to_<target>``).
    synthesized: bool = False
    description: str | None = None
    #: every target, ``target`` first; empty means ``(target,)``.
    targets: tuple[str, ...] = ()
    targets_pos: tuple[Position, ...] = ()
    #: ``type: internal``: a transition from a compound state to its descendants that does
    #: not exit and re-enter the compound.
    internal: bool = False
    # ---- conditions (docs/language.md, Guards): all that are written must hold -----------
    #: ``when:``: a condition in the expression language, as written (checked, SMC090-092).
    when: str | None = None
    when_pos: Position | None = None
    #: ``guard:``: a named condition, a method the user writes that must return true.
    guard: str | None = None
    guard_pos: Position | None = None
    #: ``unless:``: a named condition that must return false.
    unless: str | None = None
    unless_pos: Position | None = None
    #: the actions run when the transition is taken (between the exits and the entries):
    #: the pure actions of its ``actions:`` (``Action.pure``: ``assign``, ``if``, ``send``,
    #: ``log`` with an expression); the others are design style: they run in the ``from``
    #: state, ``State.actions``.
    actions: tuple[Action, ...] = field(default=(), compare=False)
    #: written without targets (``to: []``, or no ``to:`` with actions): taking it runs its
    #: actions and exits and enters nothing. ``target`` is then the source (it stays there).
    targetless: bool = False

    @property
    def wildcard(self) -> bool:
        return self.source == WILDCARD

    @property
    def guarded(self) -> bool:
        """Whether the transition has a condition (``when:``, ``guard:`` or ``unless:``): it
        may not be taken when its event comes, and a later one on the event may be."""
        return self.when is not None or self.guard is not None or self.unless is not None

    @property
    def condition(self) -> tuple[str | None, str | None, str | None]:
        """``(when, guard, unless)`` as written: equal for two transitions with the same
        conditions."""
        return (self.when, self.guard, self.unless)

    @property
    def eventless(self) -> bool:
        return self.event is None

    @property
    def all_targets(self) -> tuple[tuple[str, Position], ...]:
        """Every target with where it is written."""
        if not self.targets:
            return ((self.target, self.target_pos),)
        return tuple(zip(self.targets, self.targets_pos, strict=True))


@dataclass(frozen=True)
class Edge:
    """One entry of the expanded table: a concrete ``(source, event) -> target``."""

    source: str
    event: str
    target: str
    origin: Transition


@dataclass(frozen=True)
class Group:
    name: str  # as written, e.g. "MAIN LOOP"
    id: str  # identifier-like, e.g. "MAINLOOP"
    states: tuple[str, ...]
    pos: Position


@dataclass(frozen=True)
class Machine:
    name: str  # metadata.machine_name, else the file stem
    path: str  # the file, as given to the compiler
    style: Style
    initial_state: str
    initial_pos: Position
    states: tuple[State, ...]
    events: tuple[Event, ...]
    transitions: tuple[Transition, ...]
    groups: tuple[Group, ...] = ()
    title: str | None = None  # the top-level `name:`
    description: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    template: bool | None = None
    #: action types the file declares as its own (``action_types:``, ``actions_root``).
    user_action_types: tuple[str, ...] = ()
    #: every place a state is named outside ``states:`` and transitions (``final_states``,
    #: ``groups``, ``actions`` keys, the initial state): (name, where, what names it).
    state_refs: tuple[tuple[str, Position, str], ...] = ()
    #: where ``metadata.machine_name`` is written; None when the name is the file stem.
    name_pos: Position | None = None
    #: the typed machine data (``context:``), in the order written.
    context: tuple[ContextField, ...] = ()
    #: the job types the machine declares (``jobs:``), in the order written.
    jobs: tuple[JobType, ...] = ()
    #: the whole validated document, for hashing and for reference.
    source_data: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: every state ``initial_state:`` names when it is a list (``initial_state`` is the
    #: first): states of different regions of a parallel state, entered together on start;
    #: empty for one.
    initial_states: tuple[str, ...] = ()
    initial_states_pos: tuple[Position, ...] = ()

    # ---- derived views ---------------------------------------------------------------

    @property
    def initial_targets(self) -> tuple[tuple[str, Position], ...]:
        """The states the machine starts in, with where each is written."""
        if self.initial_states:
            return tuple(zip(self.initial_states, self.initial_states_pos, strict=True))
        return ((self.initial_state, self.initial_pos),)

    @property
    def has_data(self) -> bool:
        """Whether the machine declares typed data: ``context:``, an event ``payload:`` or
        ``jobs:`` (its generated class then carries the schemas)."""
        return bool(self.context or self.jobs) or any(
            event.payload_schema is not None for event in self.events
        )

    @cached_property
    def has_guards(self) -> bool:
        """Whether a transition has a condition (``when:``, ``guard:``, ``unless:``)."""
        return any(t.guarded for t in self.transitions)

    @cached_property
    def assignments(self) -> tuple[Action, ...]:
        """Every ``assign`` action, in the states' lists (entry, exit) and on transitions,
        in document order."""
        found = [
            action
            for state in self.states
            for action in nested_actions(state.written_actions)
            if action.type == ASSIGN
        ]
        found += [
            action
            for t in self.transitions
            for action in nested_actions(t.actions)
            if action.type == ASSIGN
        ]
        return tuple(sorted(found, key=lambda action: action.pos))

    @cached_property
    def pure_actions(self) -> tuple[tuple[Action, Transition | None], ...]:
        """Every pure action (``Action.pure``, at any depth inside ``if`` blocks) with the
        transition it is written on (None: a state's), in document order."""
        found: list[tuple[Action, Transition | None]] = [
            (action, None)
            for state in self.states
            for action in nested_actions(state.written_actions)
            if action.pure
        ]
        found += [
            (action, transition)
            for transition in self.transitions
            for action in nested_actions(transition.actions)
            if action.pure
        ]
        return tuple(sorted(found, key=lambda item: item[0].pos))

    @cached_property
    def state_names(self) -> tuple[str, ...]:
        return tuple(state.name for state in self.states)

    @cached_property
    def _states_by_name(self) -> dict[str, State]:
        return {state.name: state for state in self.states}

    def state(self, name: str) -> State:
        return self._states_by_name[name]

    def has_state(self, name: str) -> bool:
        return name in self._states_by_name

    @cached_property
    def event_names(self) -> tuple[str, ...]:
        return tuple(event.name for event in self.events)

    @cached_property
    def final_states(self) -> tuple[str, ...]:
        """Declared final, or, at the top level, a state with no way to another state: no
        explicit outgoing transition and every wildcard transition leads back to the state
        itself. (Inside a compound only a declared final state is final: its parent or a
        parallel region may well move on without it.)"""
        explicit_sources = {t.source for t in self.transitions if not t.wildcard}
        wildcard_targets = {t.target for t in self.transitions if t.wildcard}
        finals = []
        for state in self.states:
            if state.declared_final or (
                state.parent is None
                and state.kind == "atomic"
                and state.name not in explicit_sources
                and wildcard_targets <= {state.name}
            ):
                finals.append(state.name)
        return tuple(finals)

    @cached_property
    def expanded(self) -> tuple[Edge, ...]:
        """Every concrete edge in priority (file) order, shadowed ones included.

        ``from: "*"`` stands for every non-final atomic state, in declaration order. Edges
        naming a state the machine does not have are left out (the checker reports them).
        In a chart this is the transitions on events each on its own source, eventless ones
        left out: the flat view, with no hierarchy resolved.
        """
        finals = set(self.final_states)
        edges: list[Edge] = []
        for transition in self.transitions:
            if transition.event is None or not self.has_state(transition.target):
                continue
            if transition.wildcard:
                sources = [s.name for s in self.wildcard_sources if s.name not in finals]
            elif self.has_state(transition.source):
                sources = [transition.source]
            else:
                sources = []
            edges.extend(
                Edge(source, transition.event, transition.target, transition) for source in sources
            )
        return tuple(edges)

    @cached_property
    def table(self) -> tuple[Edge, ...]:
        """The effective edges: for each ``(source, event)`` the first one in file order.

        Conditions are not read here: a machine with a guarded transition is a statechart
        (``chart_features``), compiled by the chart core, which tries them in order."""
        seen: set[tuple[str, str]] = set()
        effective = []
        for edge in self.expanded:
            key = (edge.source, edge.event)
            if key not in seen:
                seen.add(key)
                effective.append(edge)
        return tuple(effective)

    @cached_property
    def lookup(self) -> dict[tuple[str, str], str]:
        """``(source, event) -> target`` for the effective edges."""
        return {(e.source, e.event): e.target for e in self.table}

    def events_from(self, state: str) -> list[str]:
        """Events accepted in ``state``, in table order."""
        return [e.event for e in self.table if e.source == state]

    @cached_property
    def timeout_events(self) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.timeout is not None)

    @cached_property
    def group_of(self) -> dict[str, str]:
        """State name -> the id of its (first) group."""
        owner: dict[str, str] = {}
        for group in self.groups:
            for state in group.states:
                owner.setdefault(state, group.id)
        return owner

    # ---- statecharts -----------------------------------------------------------------

    @cached_property
    def wildcard_sources(self) -> tuple[State, ...]:
        """The states ``from: "*"`` may start from: the atomic ones (final ones are left
        out by the callers, which know which are final)."""
        return tuple(state for state in self.states if state.is_atomic)

    @cached_property
    def chart_features(self) -> tuple[tuple[str, Position], ...]:
        """What makes this machine a statechart rather than a flat table, each with where
        it is first written (in document order): empty for a flat machine."""
        found: dict[str, Position] = {}
        if self.initial_states:
            found["several initial states"] = self.initial_pos
        for state in self.states:
            if state.kind in ("compound", "parallel", "history"):
                found.setdefault(f"{state.kind} states", state.pos)
            if state.initials:
                found.setdefault("several initial states", state.initials_pos[0])
            if state.on_exit:
                found.setdefault("on_exit", state.on_exit[0].pos)
            if state.initial_actions or state.default_actions:
                first = (*state.initial_actions, *state.default_actions)[0]
                found.setdefault("initial or default actions", first.pos)
            for action in nested_actions(state.written_actions):
                if action.type == "raise":
                    found.setdefault("raise", action.pos)
                self._pure_feature(action, found)
        for transition in self.transitions:
            if transition.event is None:
                found.setdefault("eventless transitions", transition.pos)
            if transition.internal:
                found.setdefault("internal transitions", transition.pos)
            if len(transition.targets) > 1:
                found.setdefault("several targets", transition.pos)
            if transition.targetless:
                found.setdefault("targetless transitions", transition.pos)
            if transition.guarded:
                # A flat machine's table keeps one transition per (state, event): a guarded
                # one needs the chart core, which tries them in order.
                found.setdefault("guards", transition.pos)
            for action in nested_actions(transition.actions):
                if action.type == "raise":
                    found.setdefault("raise", action.pos)
                self._pure_feature(action, found)
        if self.assignments:
            found.setdefault("assignments", self.assignments[0].pos)
        for context_field in self.context:
            if context_field.expr is not None:
                found.setdefault("computed data", context_field.expr_pos or context_field.pos)
                break
        return tuple(sorted(found.items(), key=lambda item: item[1]))

    @staticmethod
    def _pure_feature(action: Action, found: dict[str, Position]) -> None:
        """The pure actions the generated chart class runs itself (``assign`` is counted by
        ``assignments``)."""
        if action.type == IF:
            found.setdefault("if blocks", action.pos)
        elif action.type == SEND:
            found.setdefault("sends", action.pos)
        elif action.type == LOG and action.pure:
            found.setdefault("log expressions", action.pos)
        elif action.type == RAISE and action.pure:
            found.setdefault("raised ids", action.pos)

    @property
    def is_chart(self) -> bool:
        """Whether the machine uses nesting, parallel or history states, on-exit actions,
        eventless, internal, multi-target or guarded transitions, ``raise``, or the actions
        the class runs (``assign``, ``if``, ``send``, ``log`` with an expression)."""
        return bool(self.chart_features)

    @cached_property
    def top_states(self) -> tuple[str, ...]:
        """The states at the top level (the root's children), in document order."""
        return tuple(state.name for state in self.states if state.parent is None)

    def ancestors(self, name: str) -> tuple[str, ...]:
        """The states enclosing ``name``, its parent first, up to the top level."""
        found: list[str] = []
        parent = self.state(name).parent
        while parent is not None and parent not in found:
            found.append(parent)
            parent = self.state(parent).parent if self.has_state(parent) else None
        return tuple(found)

    def descendants(self, name: str) -> tuple[str, ...]:
        """Every state inside ``name``, at any depth, in document order."""
        found: list[str] = []
        stack = list(reversed(self.state(name).children))
        while stack:
            child = stack.pop()
            if child in found or not self.has_state(child):
                continue
            found.append(child)
            stack.extend(reversed(self.state(child).children))
        return tuple(found)

    def is_descendant(self, name: str, ancestor: str) -> bool:
        """Whether ``name`` is strictly inside ``ancestor``."""
        return ancestor in self.ancestors(name)

    def leaves(self, name: str | None = None) -> tuple[str, ...]:
        """The atomic and final states inside ``name`` (or the whole machine), in document
        order; ``name`` itself when it is one."""
        names = self.state_names if name is None else (name, *self.descendants(name))
        return tuple(n for n in names if self.state(n).is_atomic)
