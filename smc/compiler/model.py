"""The intermediate model: one immutable ``Machine`` per YAML file, whatever its input style.

Everything after the loader (analysis, code generation, diagrams, path generation) reads
this and only this. Wildcard transitions are kept as written (``Machine.transitions``) and
also expanded (``Machine.table``), so each consumer picks the view it needs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

WILDCARD = "*"
TIMEOUT_EVENT = re.compile(r"^timeout\((?P<seconds>\d+(?:\.\d+)?)\)$")

#: engine: statemachine-engine (actions keyed by state); design: actions on transitions with
#: ``params:``; contract: ``states`` map with ``allowed_transitions`` and no events.
Style = Literal["engine", "design", "contract"]


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

    def as_data(self) -> dict[str, Any]:
        """The action as plain data, as the generated ``STATE_ACTIONS`` holds it."""
        data: dict[str, Any] = {"type": self.type}
        if self.description is not None:
            data["description"] = self.description
        data.update(self.params)
        return data


@dataclass(frozen=True)
class State:
    name: str
    pos: Position
    description: str | None = None
    #: True when written in ``final_states`` or with ``final: true``.
    declared_final: bool = False
    #: False when the state was only inferred from transitions (no ``states:`` entry).
    declared: bool = True
    actions: tuple[Action, ...] = ()


@dataclass(frozen=True)
class Event:
    name: str
    pos: Position
    declared: bool = False
    context_map: tuple[tuple[str, str], ...] = ()
    description: str | None = None

    @property
    def timeout(self) -> float | None:
        """Seconds for a ``timeout(N)`` event, else None."""
        match = TIMEOUT_EVENT.match(self.name)
        return float(match.group("seconds")) if match else None


@dataclass(frozen=True)
class Transition:
    """A transition as written. ``source`` may be ``"*"``."""

    source: str
    target: str
    event: str
    pos: Position
    index: int  # file order; the first matching transition wins
    source_pos: Position
    target_pos: Position
    event_pos: Position
    #: execution-contract style: made from ``allowed_transitions`` (event ``to_<target>``).
    synthesized: bool = False
    description: str | None = None

    @property
    def wildcard(self) -> bool:
        return self.source == WILDCARD


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
    #: the whole validated document, for hashing and for reference.
    source_data: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    # ---- derived views ---------------------------------------------------------------

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
        """Declared final, or with no way to another state: no explicit outgoing transition
        and every wildcard transition leads back to the state itself."""
        explicit_sources = {t.source for t in self.transitions if not t.wildcard}
        wildcard_targets = {t.target for t in self.transitions if t.wildcard}
        finals = []
        for state in self.states:
            if state.declared_final or (
                state.name not in explicit_sources and wildcard_targets <= {state.name}
            ):
                finals.append(state.name)
        return tuple(finals)

    @cached_property
    def expanded(self) -> tuple[Edge, ...]:
        """Every concrete edge in priority (file) order, shadowed ones included.

        ``from: "*"`` stands for every non-final state, in declaration order. Edges naming a
        state the machine does not have are left out (the checker reports them).
        """
        finals = set(self.final_states)
        edges: list[Edge] = []
        for transition in self.transitions:
            if not self.has_state(transition.target):
                continue
            if transition.wildcard:
                sources = [s.name for s in self.states if s.name not in finals]
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
        """The effective edges: for each ``(source, event)`` the first one in file order."""
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
