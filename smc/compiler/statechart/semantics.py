"""The reference interpreter of a ``Chart``: the W3C SCXML algorithm (the recommendation's
Appendix D, https://www.w3.org/TR/scxml/#AlgorithmforSCXMLInterpretation), without
invocations or delayed events. Data stays outside: the caller's ``guard`` callback evaluates a
transition's ``cond`` where Appendix D calls conditionMatch, and its ``execute`` callback runs
each action (an assignment, a log) at the point the algorithm runs it, so a guard evaluated
later in the same macrostep sees what an earlier action assigned.

Each function below keeps the name and the shape of its Appendix D procedure, so the two can
be read side by side. States are numbered in document order (a pre-order walk, the root
``<scxml>`` element being 0), so "document order" is ascending numbers, "exit order" is
descending numbers and "is a descendant" is an interval test.

Deliberate choices where Appendix D leaves room:

- event names match exactly (SCXML's token-prefix matching, where ``a`` also matches
  ``a.b``, would change what today's flat machines mean); ``matches`` is the one place;
- when a top-level final state is entered the machine stops, as in SCXML, and the on_exit
  actions of that final state run (``exitInterpreter``); the reported configuration stays
  the one that was reached (SCXML empties it), so a caller can still see where it ended;
- a macrostep longer than ``max_microsteps`` is an eventless or raise cycle that never
  settles: ``UnsettledMacrostep`` is raised instead of looping for ever;
- guards are evaluated lazily, as Appendix D's loops read: for each active atomic state in
  document order, its transitions and then its ancestors' in document order, until the
  first whose event matches and whose cond holds; the conds after it are not evaluated, and
  an ancestor's cond is evaluated again for each active atomic state below it that selects
  nothing of its own (so a parallel state's cond can run once per region);
- a raise whose event carries data drawn when it runs (``chart.raise_carries``: a send id)
  is recorded among the actions like any raise, and in a chart with one (``Chart.carries``)
  each event taken
  from the internal queue is recorded among the actions as ``ActionRef("take", event, 1)``
  (it carries data) or ``ActionRef("take", event, 0)``: the caller keeps the data in a
  first-in first-out queue of its own and hands each over where its event is taken, so
  each event gets the data of the raise that queued it. A chart without such a raise
  records no take;
- an ``if`` block that can raise or says ``open: True`` (``chart.is_opened``) is opened: its
  conds go to ``guard`` in order until one holds, and that branch's actions run one by one;
  any other ``if`` block is one opaque action for ``execute``;
- as in Appendix D, a transition to a history state whose domain lies below some of the
  states between the history's parent and the states it restores enters those states
  again although they stay active: their on_entry actions run, without on_exit;
- a transition's domain is computed once per microstep, before ``exitStates`` records
  history. Appendix D computes it again in ``computeEntrySet``, after; the two differ only
  for a transition from inside a parallel state with a single region to that state's own
  history, where the history just recorded makes the second domain smaller, and the
  parallel state, exited, would not be entered again (an impossible configuration).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

from .chart import (
    Action,
    ActionRef,
    Branch,
    Chart,
    Cond,
    StatechartError,
    Transition,
    conditional_branches,
    is_opened,
    raise_carries,
    raised_event,
)

#: Far more microsteps than any settling macrostep of a reasonable chart takes.
DEFAULT_MAX_MICROSTEPS = 1000

ROOT = 0


class UnsettledMacrostep(StatechartError):
    """A macrostep took more than the allowed microsteps: eventless transitions or raised
    events that trigger each other for ever. ``event`` is the external event (None: the
    start), ``transitions`` the document orders of the transitions still being taken."""

    def __init__(self, message: str, event: str | None, transitions: tuple[int, ...]) -> None:
        super().__init__(message)
        self.event = event
        self.transitions = transitions


class MissingGuard(StatechartError):
    """A cond had to be evaluated and the interpreter was given no ``guard`` callback."""


#: One thing a macrostep did, in order: ``("exit", state)``, ``("transition", order)`` or
#: ``("entry", state)``.
Move = tuple[str, str | int]


class Situation(NamedTuple):
    """A stable point between two external events: what the machine remembers. Hashable,
    so the table builder can use it as a key."""

    configuration: frozenset[str]
    history: tuple[tuple[str, tuple[str, ...]], ...]
    finished: bool


class Checkpoint(NamedTuple):
    """A point inside a macrostep, between two microsteps, where the eventless transitions
    are about to be selected: what the rest of the macrostep depends on (apart from data).
    ``event`` is the event being handled (SCXML's ``_event.name``), ``queue`` the internal
    events still to handle. The table builder resumes guarded eventless loops from here."""

    configuration: frozenset[str]
    history: tuple[tuple[str, tuple[str, ...]], ...]
    queue: tuple[str, ...]
    event: str | None
    #: whether ``event`` came from the internal queue (raised or a done event)
    internal: bool = False
    #: for each event of ``queue``, whether it carries data (``raise_carries``); empty
    #: when the chart has no such raise
    carried: tuple[bool, ...] = ()


@dataclass(frozen=True)
class Macrostep:
    """What one external event (or the start) did. ``accepted`` is False when no
    transition was enabled by the event (nothing else happened then). ``actions`` are in
    execution order, raise actions included; ``transitions`` are the document orders of
    the transitions taken; ``internal_events`` the raised and done events handled.
    ``moves`` is the whole step in execution order: ``("exit", state)``, ``("transition",
    order)`` and ``("entry", state)`` for every state exited or entered and every
    transition taken, whether or not it has actions (what hooks and timers follow).
    ``guards`` are the conds evaluated, in order, with what the guard answered."""

    event: str | None
    accepted: bool
    configuration: frozenset[str]
    history: Mapping[str, tuple[str, ...]]
    actions: tuple[ActionRef, ...]
    transitions: tuple[int, ...]
    internal_events: tuple[str, ...]
    finished: bool
    moves: tuple[Move, ...] = ()
    guards: tuple[tuple[Cond, bool], ...] = ()


def matches(transition_event: str | None, event: str) -> bool:
    """Whether a transition's event accepts ``event`` (SCXML's nameMatch, exact here)."""
    return transition_event == event


#: Evaluates a cond (a transition's or an ``if`` branch's): whether it holds now.
Guard = Callable[[Cond], bool]
#: Runs one action (any but a raise and an opened ``if`` block) when the algorithm does.
Execute = Callable[[ActionRef, Action], None]


class Interpreter:
    """Runs a chart: ``start()`` once, then ``send(event)`` per external event.

    ``guard`` evaluates conds (a chart with conds and no ``guard`` raises ``MissingGuard``
    when one is reached); it may read ``configuration`` and ``event``, which are those of
    the moment it is called (SCXML's ``In()`` and ``_event.name``). ``execute`` is called for
    every action the macrostep runs, in order, but raises (the interpreter queues their
    event) and opened ``if`` blocks (their chosen branch's actions are called instead)."""

    def __init__(
        self,
        chart: Chart,
        *,
        max_microsteps: int = DEFAULT_MAX_MICROSTEPS,
        guard: Guard | None = None,
        execute: Execute | None = None,
    ) -> None:
        self.chart = chart
        self.max_microsteps = max_microsteps
        self._guard = guard
        self._execute_hook = execute
        names = ["", *(s.name for s in chart.states)]
        index = {name: i for i, name in enumerate(names) if i}
        self._names = names
        self._index = index
        count = len(names)
        self._parent = [-1] + [ROOT if s.parent is None else index[s.parent] for s in chart.states]
        self._kind = ["compound", *(s.kind for s in chart.states)]
        self._end = list(range(count))  # last descendant in document order
        for i in range(count - 1, 0, -1):
            parent = self._parent[i]
            self._end[parent] = max(self._end[parent], self._end[i])
        self._children: list[list[int]] = [[] for _ in names]
        self._history: list[list[int]] = [[] for _ in names]
        for i in range(1, count):
            target = self._history if self._kind[i] == "history" else self._children
            target[self._parent[i]].append(i)
        self._initial: list[tuple[int, ...]] = [tuple(index[n] for n in chart.initial)]
        self._default: list[tuple[int, ...]] = [()]
        for s in chart.states:
            self._initial.append(tuple(index[n] for n in s.initial_targets))
            self._default.append(tuple(index[n] for n in s.default))
        self._transitions_of: list[list[Transition]] = [[] for _ in names]
        for t in chart.transitions:
            self._transitions_of[index[t.source]].append(t)
        self._targets = [tuple(index[n] for n in t.targets) for t in chart.transitions]
        self._active: set[int] = set()
        self._memory: dict[int, tuple[int, ...]] = {}
        self._running = False
        self._queue: deque[str] = deque()
        # beside each queued event, whether it carries data (``raise_carries``); kept only
        # when the chart has such a raise (``Chart.carries``), so other charts' checkpoints
        # are what they always were
        self._carried: deque[bool] = deque()
        self._actions: list[ActionRef] = []
        self._moves: list[Move] = []
        self._taken: list[int] = []
        self._handled: list[str] = []
        self._guards: list[tuple[Cond, bool]] = []
        self._event: str | None = None  # the event being handled: SCXML's _event.name
        self._internal = False  # whether it came from the internal queue (_event.type)
        self._microsteps = 0  # in this macrostep, after the external event's own one
        self._domains: dict[int, int] = {}  # transition order -> domain, this microstep
        # entering: compounds entered by default, history content to run (parent -> history)
        self._default_entry: set[int] = set()
        self._history_content: dict[int, int] = {}

    # --- the public face ------------------------------------------------------------

    def start(self) -> Macrostep:
        """Enter the initial configuration and run the first macrostep."""
        self._reset_trace()
        self._active = set()
        self._memory = {}
        self._queue.clear()
        self._carried.clear()
        self._event = None
        self._internal = False
        self._running = True
        self._enter_states([], initial=True)
        self._macrostep(None)
        return self._result(None, True)

    def send(self, event: str) -> Macrostep:
        """Process one external event and everything it triggers."""
        self._reset_trace()
        if not self._running:
            return self._result(event, False)
        self._event = event
        self._internal = False
        enabled = self._select_transitions(event)
        if enabled:
            self._microstep(enabled)
            self._macrostep(event)
        return self._result(event, bool(enabled))

    @property
    def configuration(self) -> frozenset[str]:
        return frozenset(self._names[i] for i in self._active)

    @property
    def history(self) -> dict[str, tuple[str, ...]]:
        return {
            self._names[h]: tuple(self._names[s] for s in value)
            for h, value in sorted(self._memory.items())
        }

    @property
    def finished(self) -> bool:
        return not self._running

    @property
    def event(self) -> str | None:
        """The event being handled (external or internal), None before the first."""
        return self._event

    @property
    def event_internal(self) -> bool:
        """Whether the event being handled came from the internal queue (a raise or a done
        event) rather than from outside: SCXML's ``_event.type``."""
        return self._internal

    def situation(self) -> Situation:
        return Situation(self.configuration, tuple(self.history.items()), not self._running)

    def restore(self, situation: Situation) -> None:
        """Continue from a situation an earlier run reached (the table builder's rewind)."""
        self._active = {self._index[n] for n in situation.configuration}
        self._memory = {
            self._index[h]: tuple(self._index[s] for s in value) for h, value in situation.history
        }
        self._running = not situation.finished
        self._queue.clear()
        self._carried.clear()

    def checkpoint(self) -> Checkpoint:
        """Where the macrostep is now (meaningful where ``_round`` is called)."""
        return Checkpoint(
            self.configuration,
            tuple(self.history.items()),
            tuple(self._queue),
            self._event,
            self._internal,
            tuple(self._carried),
        )

    def resume(self, checkpoint: Checkpoint) -> Macrostep:
        """Continue a macrostep from ``checkpoint``, as if it had just been reached (the
        microstep count starts again at 0): the table builder's rewind into a loop."""
        self._reset_trace()
        self.restore(Situation(checkpoint.configuration, checkpoint.history, False))
        self._queue.extend(checkpoint.queue)
        self._carried.extend(checkpoint.carried)
        self._event = checkpoint.event
        self._internal = checkpoint.internal
        self._macrostep(checkpoint.event)
        return self._result(checkpoint.event, True)

    def _reset_trace(self) -> None:
        self._actions = []
        self._moves = []
        self._taken = []
        self._handled = []
        self._guards = []

    def _result(self, event: str | None, accepted: bool) -> Macrostep:
        return Macrostep(
            event=event,
            accepted=accepted,
            configuration=self.configuration,
            history=self.history,
            actions=tuple(self._actions),
            transitions=tuple(self._taken),
            internal_events=tuple(self._handled),
            finished=not self._running,
            moves=tuple(self._moves),
            guards=tuple(self._guards),
        )

    # --- mainEventLoop, the part after an external event ------------------------------

    def _macrostep(self, event: str | None) -> None:
        self._microsteps = 0
        while self._running:
            self._round()
            enabled = self._select_eventless_transitions()
            if not enabled:
                if not self._queue:
                    break
                internal = self._queue.popleft()
                if self.chart.carries:
                    # where the caller hands over the data of the event taken (or none)
                    carried = self._carried.popleft()
                    self._actions.append(ActionRef("take", internal, int(carried)))
                self._handled.append(internal)
                self._event = internal
                self._internal = True
                enabled = self._select_transitions(internal)
            if enabled:
                self._microsteps += 1
                if self._microsteps > self.max_microsteps:
                    raise UnsettledMacrostep(
                        self._unsettled(event, enabled), event, tuple(t.order for t in enabled)
                    )
                self._microstep(enabled)
        if not self._running:
            self._exit_interpreter()

    def _round(self) -> None:
        """Called where each round of the macrostep starts (before the eventless
        transitions are selected): nothing here; the table builder watches loops from it."""

    def _unsettled(self, event: str | None, enabled: list[Transition]) -> str:
        where = "the start" if event is None else f"event {event!r}"
        cycle = ", ".join(f"{t.source}->{'/'.join(t.targets) or '(none)'}" for t in enabled)
        return (
            f"{self.chart.describe()}: the macrostep after {where} does not settle within "
            f"{self.max_microsteps} microsteps (eventless transitions or raised events loop; "
            f"still taking {cycle}; configuration {sorted(self.configuration)})"
        )

    def _exit_interpreter(self) -> None:
        # SCXML exits every state here; the configuration is kept (see the module docstring)
        for state in sorted(self._active, reverse=True):
            self._run_actions("exit", state)

    # --- transition selection --------------------------------------------------------

    def _select_eventless_transitions(self) -> list[Transition]:
        return self._select(None)

    def _select_transitions(self, event: str) -> list[Transition]:
        return self._select(event)

    def _select(self, event: str | None) -> list[Transition]:
        """selectTransitions and selectEventlessTransitions: for each active atomic state in
        document order, the first enabled transition of the state or its nearest ancestor."""
        enabled: dict[int, Transition] = {}
        for atomic in sorted(self._active):
            if self._children[atomic]:
                continue
            state = atomic
            while state != ROOT:
                chosen = next(
                    (t for t in self._transitions_of[state] if self._enabled(t, event)), None
                )
                if chosen is not None:
                    enabled.setdefault(chosen.order, chosen)
                    break
                state = self._parent[state]
        return self._remove_conflicting_transitions(list(enabled.values()))

    def _enabled(self, transition: Transition, event: str | None) -> bool:
        """Whether ``transition`` is enabled by ``event`` (None: eventless): its event
        matches, then (only then) its cond holds, SCXML's conditionMatch."""
        if event is None:
            if transition.event is not None:
                return False
        elif transition.event is None or not matches(transition.event, event):
            return False
        return transition.cond is None or self._holds(
            transition.cond, lambda: f"transition {transition.order} from {transition.source!r}"
        )

    def _holds(self, cond: Cond, where: Callable[[], str]) -> bool:
        if self._guard is None:
            raise MissingGuard(
                f"{self.chart.describe()}: {where()} has the cond {cond!r}, and the "
                "interpreter was given no guard to evaluate it"
            )
        outcome = bool(self._guard(cond))
        self._guards.append((cond, outcome))
        return outcome

    def _remove_conflicting_transitions(self, enabled: list[Transition]) -> list[Transition]:
        """Between two transitions whose exit sets meet, a descendant source wins; else the
        earlier one (document order of the states that selected them) preempts."""
        self._domains = {}
        filtered: list[Transition] = []
        exit_sets = {t.order: self._compute_exit_set([t]) for t in enabled}
        for t1 in enabled:
            preempted = False
            to_remove: list[Transition] = []
            for t2 in filtered:
                if exit_sets[t1.order] & exit_sets[t2.order]:
                    if self._is_descendant(self._index[t1.source], self._index[t2.source]):
                        to_remove.append(t2)
                    else:
                        preempted = True
                        break
            if not preempted:
                filtered = [t for t in filtered if t not in to_remove]
                filtered.append(t1)
        return filtered

    # --- microstep -----------------------------------------------------------------

    def _microstep(self, enabled: list[Transition]) -> None:
        # The domains are fixed before exitStates records history, which Appendix D reads
        # again in computeEntrySet (see the module docstring).
        self._domains = {t.order: self._transition_domain(t) for t in enabled if t.targets}
        self._exit_states(enabled)
        for t in enabled:
            self._taken.append(t.order)
            self._moves.append(("transition", t.order))
            for i, action in enumerate(t.actions):
                self._execute(ActionRef("transition", t.order, i), action)
        self._enter_states(enabled)

    def _exit_states(self, enabled: list[Transition]) -> None:
        to_exit = sorted(self._compute_exit_set(enabled), reverse=True)
        for state in to_exit:
            for h in self._history[state]:
                if self.chart.by_name[self._names[h]].history_type == "deep":
                    kept = (
                        s
                        for s in self._active
                        if not self._children[s] and self._is_descendant(s, state)
                    )
                else:
                    kept = (s for s in self._active if self._parent[s] == state)
                self._memory[h] = tuple(sorted(kept))
        for state in to_exit:
            self._run_actions("exit", state)
            self._active.discard(state)

    def _compute_exit_set(self, transitions: Iterable[Transition]) -> set[int]:
        to_exit: set[int] = set()
        for t in transitions:
            if t.targets:
                domain = self._domains.get(t.order)
                if domain is None:  # selecting, not taking: no microstep has fixed it
                    domain = self._transition_domain(t)
                to_exit.update(s for s in self._active if self._is_descendant(s, domain))
        return to_exit

    def _enter_states(self, enabled: list[Transition], *, initial: bool = False) -> None:
        to_enter: dict[int, None] = {}  # an ordered set, as in Appendix D
        # Appendix D's statesForDefaultEntry and defaultHistoryContent (parent -> history)
        self._default_entry = set()
        self._history_content = {}
        if initial:
            # the <scxml> element's initial transition: its domain is the root itself
            for s in self._initial[ROOT]:
                self._add_descendant_states_to_enter(s, to_enter)
            for s in self._initial[ROOT]:
                self._add_ancestor_states_to_enter(s, ROOT, to_enter)
        self._compute_entry_set(enabled, to_enter)
        for state in sorted(to_enter):
            self._active.add(state)
            self._run_actions("entry", state)
            if state in self._default_entry:
                self._run_content("initial", state)
            if state in self._history_content:
                self._run_content("default", self._history_content[state])
            if self._kind[state] == "final":
                parent = self._parent[state]
                if parent == ROOT:
                    self._running = False
                else:
                    self._enqueue("done.state." + self._names[parent])
                    grandparent = self._parent[parent]
                    if self._kind[grandparent] == "parallel" and all(
                        self._is_in_final_state(c) for c in self._children[grandparent]
                    ):
                        self._enqueue("done.state." + self._names[grandparent])

    def _compute_entry_set(self, transitions: list[Transition], to_enter: dict[int, None]) -> None:
        for t in transitions:
            for s in self._targets[t.order]:
                self._add_descendant_states_to_enter(s, to_enter)
            ancestor = self._domains[t.order] if t.targets else self._transition_domain(t)
            for s in self._effective_target_states(t):
                self._add_ancestor_states_to_enter(s, ancestor, to_enter)

    def _add_descendant_states_to_enter(self, state: int, to_enter: dict[int, None]) -> None:
        if self._kind[state] == "history":
            remembered = self._memory.get(state)
            targets = remembered if remembered else self._default[state]
            if not remembered:
                self._history_content[self._parent[state]] = state
            for s in targets:
                self._add_descendant_states_to_enter(s, to_enter)
            for s in targets:
                self._add_ancestor_states_to_enter(s, self._parent[state], to_enter)
            return
        to_enter[state] = None
        if self._kind[state] == "compound":
            self._default_entry.add(state)
            for s in self._initial[state]:
                self._add_descendant_states_to_enter(s, to_enter)
            for s in self._initial[state]:
                self._add_ancestor_states_to_enter(s, state, to_enter)
        elif self._kind[state] == "parallel":
            self._enter_missing_regions(state, to_enter)

    def _add_ancestor_states_to_enter(
        self, state: int, ancestor: int, to_enter: dict[int, None]
    ) -> None:
        for anc in self._proper_ancestors(state, ancestor):
            to_enter[anc] = None
            if self._kind[anc] == "parallel":
                self._enter_missing_regions(anc, to_enter)

    def _enter_missing_regions(self, parallel: int, to_enter: dict[int, None]) -> None:
        for child in self._children[parallel]:
            if not any(self._is_descendant(s, child) for s in to_enter):
                self._add_descendant_states_to_enter(child, to_enter)

    def _is_in_final_state(self, state: int) -> bool:
        if self._kind[state] == "compound":
            return any(
                self._kind[c] == "final" and c in self._active for c in self._children[state]
            )
        if self._kind[state] == "parallel":
            return all(self._is_in_final_state(c) for c in self._children[state])
        return False

    def _transition_domain(self, t: Transition) -> int:
        targets = self._effective_target_states(t)
        source = self._index[t.source]
        if (
            t.type == "internal"
            and self._kind[source] == "compound"
            and all(self._is_descendant(s, source) for s in targets)
        ):
            return source
        return self._find_lcca([source, *targets])

    def _find_lcca(self, states: list[int]) -> int:
        head, *tail = states
        for anc in self._proper_ancestors(head, -1):
            if self._kind[anc] == "compound" and all(self._is_descendant(s, anc) for s in tail):
                return anc
        return ROOT  # unreachable: the root is a compound ancestor of every state

    def _effective_target_states(self, t: Transition) -> list[int]:
        targets: dict[int, None] = {}
        pending = list(self._targets[t.order])
        while pending:
            s = pending.pop(0)
            if self._kind[s] == "history":
                remembered = self._memory.get(s)
                pending[:0] = remembered if remembered else self._default[s]
            else:
                targets[s] = None
        return list(targets)

    # --- small helpers -----------------------------------------------------------------

    def _proper_ancestors(self, state: int, up_to: int) -> list[int]:
        """Ancestors of ``state``, innermost first, stopping before ``up_to`` (-1: up to
        and including the root)."""
        found = []
        parent = self._parent[state]
        while parent != -1 and parent != up_to:
            found.append(parent)
            parent = self._parent[parent]
        return found

    def _is_descendant(self, state: int, of: int) -> bool:
        return of < state <= self._end[of]

    def _run_actions(self, kind: str, state: int) -> None:
        spec = self.chart.by_name[self._names[state]]
        self._moves.append(("exit" if kind == "exit" else "entry", spec.name))
        for i, action in enumerate(spec.on_exit if kind == "exit" else spec.on_entry):
            self._execute(ActionRef("exit" if kind == "exit" else "entry", spec.name, i), action)

    def _run_content(self, kind: Literal["initial", "default"], state: int) -> None:
        """A compound's initial transition's actions, or a history's default's."""
        spec = self.chart.by_name[self._names[state]]
        actions = spec.initial_actions if kind == "initial" else spec.default_actions
        for i, action in enumerate(actions):
            self._execute(ActionRef(kind, spec.name, i), action)

    def _execute(self, ref: ActionRef, action: Action) -> None:
        event = raised_event(action)
        if event is not None:
            self._actions.append(ref)
            self._enqueue(event, raise_carries(action))
            return
        if is_opened(action):
            self._execute_branch(ref, conditional_branches(action) or ())
            return
        self._actions.append(ref)
        if self._execute_hook is not None:
            self._execute_hook(ref, action)

    def _enqueue(self, event: str, carries: bool = False) -> None:
        self._queue.append(event)
        if self.chart.carries:
            self._carried.append(carries)

    def _execute_branch(self, ref: ActionRef, branches: tuple[Branch, ...]) -> None:
        """Run the first branch whose cond holds (an opened ``if`` block's)."""
        path = (ref.position,) if isinstance(ref.position, int) else ref.position
        for number, (cond, actions) in enumerate(branches):
            if cond is None or self._holds(cond, lambda: f"the if action {ref!r}"):
                for position, inner in enumerate(actions):
                    self._execute(ref._replace(position=(*path, number, position)), inner)
                return
