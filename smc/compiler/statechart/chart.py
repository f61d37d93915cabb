"""A statechart as plain, checked, immutable data: the input of the SCXML interpreter
(``semantics``), of the table builder (``tables``) and of the SCXML exporter (``scxml``).

A ``Chart`` is a tree of ``State``s under an implicit root (SCXML's ``<scxml>`` element, which
is never a state of its own) plus a list of ``Transition``s. A flat machine is the special
case where every state is atomic and top-level. Construction checks what the algorithm relies
on (unique names, a consistent tree, targets that exist, targets that form a possible
configuration), so an interpreter never meets a malformed chart; the user-facing checker
with positioned diagnostics lives elsewhere and runs first.

``chart_from_dict`` builds a chart from nested dicts in the shape of the YAML language of
issue 13 (``states:`` items, ``initial:``, ``parallel:``, ``final:``, ``history:``,
``on_entry``/``on_exit``, ``on:`` mappings, ``transitions:`` with ``from``/``to``/``event``/
``type``/``cond``/``actions``); tests and the reference tools use it.

Data (issue 14) stays opaque here. A transition's ``cond`` is whatever the caller uses to name
a guard (an expression's text, a guard's name, an id): the core never evaluates it, it asks
the interpreter's ``guard`` callback, or leaves it in a table's decision program. Actions
are opaque too, but for two shapes the semantics depend on: ``{type: raise, event: x}``
(queues an internal event) and an ``if`` block that can raise or says ``open: True`` (see
``conditional_branches``, ``is_opened``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, NamedTuple

StateKind = Literal["atomic", "compound", "parallel", "final", "history"]
HistoryType = Literal["shallow", "deep"]
TransitionType = Literal["external", "internal"]
#: ``initial``: a compound state's initial transition's actions (owner: the compound);
#: ``default``: a history state's default transition's actions (owner: the history state).
#: ``take``: not an action of the chart but the point where a raised event that carries
#: run-time data is taken from the internal queue (``raise_carries``; owner: the event,
#: position 1 when it carries data, 0 when not): the caller hands that data over there.
ActionKind = Literal["exit", "transition", "entry", "initial", "default", "take"]

#: An action is whatever the machine file says (a mapping such as ``{type: log, ...}``); the
#: semantics only look inside ``{type: raise, event: x}``, which queues an internal event, and
#: inside an ``if`` block that contains one (``conditional_branches``).
Action = object

#: A guard as the caller names it (hashable: tables use it as data and share programs).
Cond = object

#: One branch of an ``if`` block: its cond (None for the final ``else``) and its actions.
Branch = tuple[Cond | None, tuple[Action, ...]]


class StatechartError(Exception):
    """Base of every error this package raises."""


class ChartDefinitionError(StatechartError, ValueError):
    """The chart breaks a rule the algorithm relies on (the message says which)."""


class ActionRef(NamedTuple):
    """Which action ran: the ``position``-th on_exit/on_entry action of the state named
    ``owner`` (``initial``: of its initial transition; ``default``: of the history state's
    default transition), or the ``position``-th action of the transition whose document
    order is ``owner``. Plain data, so dispatch tables can hold it. (``position``, not ``index``:
    a tuple already has an ``index`` method.)

    An action inside an ``if`` block that the semantics open (one that can raise, see
    ``conditional_branches``) has a tuple ``position``: the block's position, then for each
    level the branch number and the position in that branch's actions; ``(2, 1, 0)`` is the
    first action of the second branch of the block that is action 2."""

    kind: ActionKind
    owner: str | int
    position: int | tuple[int, ...]


@dataclass(frozen=True)
class State:
    """One node of the tree. ``initial`` is set for compound states only; ``history_type``
    and ``default`` (the targets of the history's default transition) for history
    pseudo-states only. ``parent`` is None for a top-level state (a child of the root)."""

    name: str
    kind: StateKind
    parent: str | None = None
    children: tuple[str, ...] = ()
    initial: str | None = None
    on_entry: tuple[Action, ...] = ()
    on_exit: tuple[Action, ...] = ()
    history_type: HistoryType | None = None
    default: tuple[str, ...] = ()
    #: a compound state's initial states when there are several (``initial`` is the first):
    #: descendants in different regions of a parallel descendant; empty: ``(initial,)``.
    initials: tuple[str, ...] = ()
    #: a compound state's initial transition's actions: run when it is entered by default,
    #: after its on_entry, before the initial states' entries (SCXML's <initial> content).
    initial_actions: tuple[Action, ...] = ()
    #: a history state's default transition's actions: run when the default is taken
    #: (nothing remembered), after the parent's on_entry.
    default_actions: tuple[Action, ...] = ()

    @property
    def initial_targets(self) -> tuple[str, ...]:
        """What entering the state by default enters (a compound state's)."""
        if self.initials:
            return self.initials
        return () if self.initial is None else (self.initial,)


@dataclass(frozen=True)
class Transition:
    """``targets`` is usually one state; several must lie in distinct parallel regions;
    none makes a targetless transition (its actions run, nothing is exited or entered).
    ``event`` None is an eventless transition. ``order`` is its document order. ``cond``
    is its guard (None: unguarded), opaque to the core: the transition is enabled only if
    the interpreter's ``guard`` callback says the cond holds (SCXML's ``cond``)."""

    source: str
    targets: tuple[str, ...]
    event: str | None = None
    type: TransitionType = "external"
    actions: tuple[Action, ...] = ()
    order: int = 0
    cond: Cond | None = None


def raised_event(action: Action) -> str | None:
    """The event a ``{type: raise, event: x}`` action queues; None for any other action."""
    if isinstance(action, Mapping) and action.get("type") == "raise":
        event = action.get("event")
        if not isinstance(event, str) or not event:
            raise ChartDefinitionError(f"a raise action needs an event name: {action!r}")
        return event
    return None


def raise_carries(action: Action) -> bool:
    """Whether a raise action's event carries data drawn when the raise runs (a send id:
    ``{type: raise, event: x, id_location: f}``). The core only tracks which queued events
    do: each is taken from the queue at a ``take`` (``ActionRef``), in queue order, so the
    caller, which keeps the data in a first-in first-out queue of its own, gives each
    event the data its own raise drew."""
    return (
        isinstance(action, Mapping)
        and action.get("type") == "raise"
        and action.get("id_location") is not None
    )


def conditional_branches(action: Action) -> tuple[Branch, ...] | None:
    """The branches of an ``if`` block, None for any other action.

    The shape the core reads: ``{type: if, branches: [{cond: c1, actions: [...]}, ...,
    {actions: [...]}]}``: the first branch whose cond holds runs (SCXML's ``<if>``/
    ``<elseif>``); a last branch without ``cond`` is the ``<else>``. Only a block that can
    raise (``can_raise``) or says ``open: True`` is opened by the semantics (``is_opened``):
    which event it raises decides the rest of the macrostep, so its conds are evaluated like
    a transition's. Any other block is one opaque action, run whole by the caller (its conds
    only change data)."""
    if not (isinstance(action, Mapping) and action.get("type") == "if"):
        return None
    branches: list[Branch] = []
    items = _items(action.get("branches"))
    if not items:
        raise ChartDefinitionError(f"an if action needs branches: {action!r}")
    for number, item in enumerate(items):
        spec = _mapping(item)
        cond = spec.get("cond")
        if cond is None and (number == 0 or number < len(items) - 1):
            raise ChartDefinitionError(
                f"only the last branch of an if action can go without a cond: {action!r}"
            )
        _check_cond(cond, "an if action's branch")
        branches.append((cond, tuple(_items(spec.get("actions")))))
    return tuple(branches)


def can_raise(action: Action) -> bool:
    """Whether running ``action`` can raise an event: a raise, or an ``if`` block with one
    in some branch (at any depth)."""
    if raised_event(action) is not None:
        return True
    branches = conditional_branches(action)
    return branches is not None and any(can_raise(a) for _, acts in branches for a in acts)


def is_opened(action: Action) -> bool:
    """Whether the semantics open ``action``, an ``if`` block: it can raise (``can_raise``),
    or it says ``open: True`` (its caller needs its conds evaluated where the macrostep is,
    as a transition's are: one that reads SCXML's ``In()``, say). Any other ``if`` block is
    one opaque action."""
    if not (isinstance(action, Mapping) and action.get("type") == "if"):
        return False
    return action.get("open") is True or can_raise(action)


def _carries(action: Action) -> bool:
    if raise_carries(action):
        return True
    branches = conditional_branches(action)
    return branches is not None and any(_carries(a) for _, acts in branches for a in acts)


def _state_actions(state: State) -> tuple[Action, ...]:
    return (*state.on_entry, *state.on_exit, *state.initial_actions, *state.default_actions)


def _check_action(action: Action) -> None:
    raised_event(action)
    for _, actions in conditional_branches(action) or ():
        for inner in actions:
            _check_action(inner)


def _check_cond(cond: Cond | None, where: str) -> None:
    try:
        hash(cond)
    except TypeError:
        raise ChartDefinitionError(f"{where}: a cond must be hashable, got {cond!r}") from None


@dataclass(frozen=True)
class Chart:
    """A checked statechart. ``states`` are in document order (a pre-order walk of the
    tree), ``initial`` are the root's initial targets (default: the first top-level
    state), ``transitions`` are in document order (``transitions[i].order == i``)."""

    states: tuple[State, ...]
    transitions: tuple[Transition, ...]
    initial: tuple[str, ...] = ()
    name: str = "chart"
    by_name: Mapping[str, State] = field(init=False, repr=False, compare=False)
    #: whether some raise carries data (``raise_carries``): only then does a macrostep
    #: record a ``take`` where each raised event is taken from the internal queue.
    carries: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        actions = [a for s in self.states for a in _state_actions(s)]
        actions += [a for t in self.transitions for a in t.actions]
        object.__setattr__(self, "carries", any(_carries(a) for a in actions))
        by_name: dict[str, State] = {}
        for state in self.states:
            if state.name in by_name:
                raise ChartDefinitionError(f"state {state.name!r} is defined twice")
            by_name[state.name] = state
        object.__setattr__(self, "by_name", by_name)
        if not self.initial:
            top = self.top_level
            if not top:
                raise ChartDefinitionError(f"chart {self.name!r} has no state")
            object.__setattr__(self, "initial", (top[0],))
        _check_tree(self)
        _check_transitions(self)

    @property
    def top_level(self) -> tuple[str, ...]:
        """The root's children that are states (not history), in document order."""
        return tuple(s.name for s in self.states if s.parent is None and s.kind != "history")

    def state(self, name: str) -> State:
        try:
            return self.by_name[name]
        except KeyError:
            raise ChartDefinitionError(f"no state named {name!r}") from None

    def ancestors(self, name: str) -> Iterator[str]:
        """Proper ancestors, innermost first (the root is not a state, so not listed)."""
        parent = self.state(name).parent
        while parent is not None:
            yield parent
            parent = self.by_name[parent].parent

    def is_descendant(self, name: str, of: str) -> bool:
        return of in self.ancestors(name)

    def child_states(self, name: str) -> tuple[str, ...]:
        """Children that are states (SCXML's getChildStates: history is not a state)."""
        return tuple(c for c in self.state(name).children if self.by_name[c].kind != "history")

    def events(self) -> tuple[str, ...]:
        """Every event a transition names, in order of first mention."""
        return tuple(dict.fromkeys(t.event for t in self.transitions if t.event is not None))

    def external_events(self) -> tuple[str, ...]:
        """The events a caller may send: those transitions name, minus ``done.state.*``
        (raised by the chart itself when a compound or parallel state completes)."""
        return tuple(e for e in self.events() if not e.startswith("done.state."))

    def action(self, ref: ActionRef | tuple[str, str | int, int | tuple[int, ...]]) -> Action:
        """The action value an ``ActionRef`` (or its plain-tuple form) points at (a
        ``take`` points at no action: ``KeyError``)."""
        kind, owner, position = ref
        if kind == "take":
            raise KeyError(f"{ref!r} is where an event is taken from the queue, no action")
        if kind == "transition":
            assert isinstance(owner, int)
            actions = self.transitions[owner].actions
        else:
            assert isinstance(owner, str)
            state = self.state(owner)
            actions = {
                "exit": state.on_exit,
                "initial": state.initial_actions,
                "default": state.default_actions,
            }.get(kind, state.on_entry)
        if isinstance(position, int):
            return actions[position]
        action = actions[position[0]]
        for level in range(1, len(position), 2):  # (branch, position) pairs
            branches = conditional_branches(action)
            assert branches is not None, f"{ref!r} goes into an action that is no if block"
            action = branches[position[level]][1][position[level + 1]]
        return action

    def describe(self) -> str:
        """The chart's size in one phrase, for error messages."""
        kinds = [s.kind for s in self.states]
        return (
            f"chart {self.name!r} ({len(self.states)} states: {kinds.count('compound')} "
            f"compound, {kinds.count('parallel')} parallel, {kinds.count('history')} history; "
            f"{len(self.transitions)} transitions, {len(self.external_events())} events)"
        )


def _check_tree(chart: Chart) -> None:
    by_name = chart.by_name
    seen: list[str] = []

    def walk(name: str, parent: str | None) -> None:
        state = by_name.get(name)
        if state is None:
            raise ChartDefinitionError(f"child {name!r} of {parent!r} is not a state")
        if state.parent != parent:
            raise ChartDefinitionError(f"state {name!r} is listed under {parent!r}")
        seen.append(name)
        for child in state.children:
            walk(child, name)

    for state in chart.states:
        if state.parent is None:
            walk(state.name, None)
    if seen != [s.name for s in chart.states]:
        raise ChartDefinitionError("states must be listed in document order (pre-order)")

    for state in chart.states:
        kids = chart.child_states(state.name) if state.children else ()
        if state.kind in ("compound", "parallel") and not kids:
            raise ChartDefinitionError(f"{state.kind} state {state.name!r} has no child state")
        if state.kind not in ("compound", "parallel") and state.children:
            raise ChartDefinitionError(f"{state.kind} state {state.name!r} cannot have children")
        if state.kind == "compound":
            if state.initial is None or (state.initials and state.initials[0] != state.initial):
                raise ChartDefinitionError(f"{state.name!r} needs an initial (the first)")
            for initial in state.initial_targets:
                if initial not in by_name:
                    raise ChartDefinitionError(f"initial {initial!r} of {state.name!r} is no state")
                if not chart.is_descendant(initial, state.name):
                    raise ChartDefinitionError(f"initial {initial!r} is not inside {state.name!r}")
                if by_name[initial].kind == "history" and by_name[initial].parent != state.name:
                    raise ChartDefinitionError(
                        f"initial {initial!r} of {state.name!r} is another state's history"
                    )
            _check_configuration(chart, state.initial_targets, f"initial of {state.name!r}")
        elif state.initial is not None or state.initials:
            raise ChartDefinitionError(f"only a compound state has an initial: {state.name!r}")
        parent_kind = by_name[state.parent].kind if state.parent is not None else "root"
        if state.kind == "history":
            if parent_kind not in ("compound", "parallel"):
                raise ChartDefinitionError(f"history {state.name!r} is not in a compound state")
            if state.history_type not in ("shallow", "deep") or not state.default:
                raise ChartDefinitionError(f"history {state.name!r} needs a type and a default")
            assert state.parent is not None
            for target in state.default:
                if not chart.is_descendant(target, state.parent):
                    raise ChartDefinitionError(
                        f"default {target!r} of history {state.name!r} is outside its parent"
                    )
            _check_configuration(chart, state.default, f"history {state.name!r}")
        elif state.history_type is not None or state.default:
            raise ChartDefinitionError(f"only a history state has a type: {state.name!r}")
        if state.kind == "final" and parent_kind == "parallel":
            # SCXML gives a final region no meaning; a region completes by its own final child
            raise ChartDefinitionError(f"final {state.name!r} cannot be a parallel region")
        if state.initial_actions and state.kind != "compound":
            raise ChartDefinitionError(f"only a compound state has initial actions: {state.name!r}")
        if state.default_actions and state.kind != "history":
            raise ChartDefinitionError(f"only a history state has default actions: {state.name!r}")
        for action in (*state.on_entry, *state.on_exit, *state.initial_actions):
            _check_action(action)
        for action in state.default_actions:
            _check_action(action)
    for name in chart.initial:
        if by_name.get(name) is None or by_name[name].kind == "history":
            raise ChartDefinitionError(f"initial state {name!r} is not a state of the chart")
    _check_configuration(chart, chart.initial, "the chart's initial")


def _check_configuration(chart: Chart, targets: Sequence[str], what: str) -> None:
    """Several targets must sit in distinct regions of a parallel state: otherwise entering
    them all would activate two siblings of a compound state, which no configuration has."""
    for i, first in enumerate(targets):
        for second in targets[i + 1 :]:
            lca = _lowest_common_ancestor(chart, first, second)
            if first == second or lca in (first, second):
                raise ChartDefinitionError(f"{what}: {first!r} and {second!r} overlap")
            if lca is None or chart.state(lca).kind != "parallel":
                raise ChartDefinitionError(
                    f"{what}: {first!r} and {second!r} cannot be active together"
                )


def _lowest_common_ancestor(chart: Chart, first: str, second: str) -> str | None:
    line = [first, *chart.ancestors(first)]
    for candidate in [second, *chart.ancestors(second)]:
        if candidate in line:
            return candidate
    return None


def _check_transitions(chart: Chart) -> None:
    for order, transition in enumerate(chart.transitions):
        where = f"transition {order} from {transition.source!r}"
        if transition.order != order:
            raise ChartDefinitionError(f"{where} has order {transition.order}, expected {order}")
        source = chart.by_name.get(transition.source)
        if source is None:
            raise ChartDefinitionError(f"{where}: no such state")
        if source.kind in ("history", "final"):
            raise ChartDefinitionError(f"{where}: a {source.kind} state has no transitions")
        for target in transition.targets:
            if target not in chart.by_name:
                raise ChartDefinitionError(f"{where}: no target state {target!r}")
        _check_configuration(chart, transition.targets, where)
        if transition.type not in ("external", "internal"):
            raise ChartDefinitionError(f"{where}: unknown type {transition.type!r}")
        if transition.event == "":
            raise ChartDefinitionError(f"{where}: empty event name")
        _check_cond(transition.cond, where)
        for action in transition.actions:
            _check_action(action)


# --- a builder from the YAML shape, for tests and tools ---------------------------------


def chart_from_dict(document: Mapping[str, object], name: str = "chart") -> Chart:
    """Build a chart from nested dicts in the shape of the issue-13 YAML language.

    State items are a name (an atomic state) or a mapping with ``name`` and any of
    ``states``, ``initial`` (a name or a list), ``initial_actions``, ``parallel: true``,
    ``final: true``, ``history: shallow|deep`` (with ``to`` for the default, else the
    parent's initial, and ``default_actions``), ``on_entry``, ``on_exit`` and
    ``on: {event: target | {to, type, cond, actions}}``. Transitions have ``from``, ``to`` (a
    name or a list; absent: targetless), ``event`` (absent: eventless), ``type``, ``cond``
    (absent: unguarded) and ``actions``.
    ``on:`` transitions come before the ``transitions:`` list, in document order."""
    states: list[State] = []
    pending: list[dict[str, object]] = []

    def add(item: object, parent: str | None) -> str:
        spec: Mapping[str, object] = {"name": item} if isinstance(item, str) else _mapping(item)
        state_name = _text(spec.get("name"), "state name")
        position = len(states)
        states.append(State(state_name, "atomic"))  # placeholder keeps pre-order positions
        children = tuple(add(child, state_name) for child in _items(spec.get("states")))
        history = spec.get("history")
        kind: StateKind
        if history is not None:
            kind = "history"
        elif spec.get("final"):
            kind = "final"
        elif spec.get("parallel"):
            kind = "parallel"
        else:
            kind = "compound" if children else "atomic"
        initial: str | None = None
        initials: tuple[str, ...] = ()
        if kind == "compound":
            first = next((c for c in children if spec_kind(c) != "history"), None)
            written = spec.get("initial", first)
            if isinstance(written, list | tuple) and len(written) > 1:
                initials = tuple(_names(written))
                written = initials[0]
            elif isinstance(written, list | tuple):
                written = _names(written)[0] if written else None
            initial = _text(written, "initial")
        states[position] = State(
            name=state_name,
            kind=kind,
            parent=parent,
            children=children,
            initial=initial,
            on_entry=tuple(_items(spec.get("on_entry"))),
            on_exit=tuple(_items(spec.get("on_exit"))),
            history_type=history if history in ("shallow", "deep") else None,
            default=tuple(_names(spec.get("to"))),
            initials=initials,
            initial_actions=tuple(_items(spec.get("initial_actions"))),
            default_actions=tuple(_items(spec.get("default_actions"))),
        )
        for event, target in _mapping(spec.get("on", {})).items():
            spec_t = {"to": target} if isinstance(target, str | list) else dict(_mapping(target))
            pending.append({**spec_t, "from": state_name, "event": event})
        return state_name

    def spec_kind(child: str) -> StateKind:
        return next(s.kind for s in states if s.name == child)

    for item in _items(document.get("states")):
        add(item, None)
    # A history without ``to`` restores its parent's initial configuration by default.
    for i, state in enumerate(states):
        if state.kind == "history" and not state.default and state.parent is not None:
            parent = next(s for s in states if s.name == state.parent)
            default = (parent.initial,) if parent.initial else _kids(states, parent)
            states[i] = replace(state, default=default)
    pending.extend(dict(_mapping(t)) for t in _items(document.get("transitions")))
    transitions = tuple(
        Transition(
            source=_text(spec.get("from"), "transition source"),
            targets=tuple(_names(spec.get("to"))),
            event=None if spec.get("event") is None else _text(spec.get("event"), "event"),
            type="internal" if spec.get("type") == "internal" else "external",
            actions=tuple(_items(spec.get("actions"))),
            order=order,
            cond=spec.get("cond"),
        )
        for order, spec in enumerate(pending)
    )
    initial = tuple(_names(document.get("initial_state")))
    return Chart(tuple(states), transitions, initial, name)


def _kids(states: Iterable[State], parent: State) -> tuple[str, ...]:
    kinds = {s.name: s.kind for s in states}
    return tuple(c for c in parent.children if kinds[c] != "history")


def _mapping(value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise ChartDefinitionError(f"expected a mapping, got {value!r}")
    return value


def _items(value: object) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ChartDefinitionError(f"expected a list, got {value!r}")
    return list(value)


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ChartDefinitionError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _names(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [_text(v, "state name") for v in _items(value)]
