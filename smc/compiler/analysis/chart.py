"""Checks of a statechart's tree and of what its transitions can do in it.

The tree: a compound or parallel state has children and is not declared final (SMC070), a
compound's ``initial`` is one of them (SMC071), a history pseudo-state sits in a compound and
is only a target (SMC072), a parallel state has two regions or more (SMC075). The
transitions: their targets can be active together (SMC073), eventless ones cannot loop for
ever (SMC074); every state can be entered (SMC020) and a non-final leaf can be left (SMC021),
as :mod:`~smc.compiler.analysis.structure` checks for a flat machine, over configurations
instead of single states.

Names used twice anywhere in the tree are SMC011 (reported while the model is built); unknown
names in transitions and history defaults are SMC010 (``structure``).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations

from smc.compiler.analysis.context import Context, closest, diagnostic, did_you_mean
from smc.compiler.diagnostics import Diagnostic
from smc.compiler.model import BRANCH_ACTIONS, LOG, Machine, Position, State, Transition


def check_tree(machine: Machine, _: Context) -> Iterator[Diagnostic]:
    """SMC070, SMC071, SMC072, SMC075, SMC078: each state's place in the tree."""
    for state in machine.states:
        parent = machine.state(state.parent) if state.parent is not None else None
        if (
            parent is not None
            and parent.kind == "parallel"
            and state.is_atomic
            and state.name in machine.final_states
        ):
            yield diagnostic(
                state.pos,
                "SMC078",
                f"final state {state.name!r} is a region of parallel state {parent.name!r}: "
                "a region completes by reaching a final state of its own",
                f"put {state.name!r} inside a compound region, or make it a plain state",
            )
        real = [c for c in state.children if machine.state(c).kind != "history"]
        if state.kind in ("compound", "parallel") and not real:
            # (a history pseudo-state alone is no child to be in: it met a compiler error)
            yield diagnostic(
                state.pos,
                "SMC070",
                f"state {state.name!r} is {state.kind} but has no child states"
                + (" besides its history" if state.children else ""),
                "list its children under `states:`, or make it a plain state",
            )
        elif state.declared_final and state.kind in ("compound", "parallel"):
            yield _final_with_children(machine, state)
        elif state.kind == "parallel" and len(state.children) == 1:
            yield diagnostic(
                state.pos,
                "SMC075",
                f"parallel state {state.name!r} has one region, {state.children[0]!r}: "
                "it is a compound state",
                "add another region, or drop `parallel: true`",
            )
        if state.initial_pos is not None:
            yield from _initial(machine, state)
        yield from _content(state)
        if state.kind == "history":
            yield from _history(machine, state)
    for name, pos in machine.initial_targets:
        if machine.has_state(name) and machine.state(name).kind == "history":
            yield diagnostic(
                pos,
                "SMC071",
                f"the machine starts in {name!r}, a history state: there is nothing it could "
                "restore yet",
                f"start in {machine.state(name).parent!r} (whose `initial` may name {name!r})",
            )
    history_sources = {s.name for s in machine.states if s.kind == "history"}
    for t in machine.transitions:
        if t.source in history_sources:
            yield diagnostic(
                t.source_pos,
                "SMC072",
                f"history pseudo-state {t.source!r} has a transition of its own",
                "a history state is only a target; give it a default with `to:` instead",
            )


def _initial(machine: Machine, state: State) -> Iterator[Diagnostic]:
    assert state.initial is not None and state.initial_pos is not None
    if state.kind == "parallel":
        yield diagnostic(
            state.initial_pos,
            "SMC071",
            f"parallel state {state.name!r} has an `initial`, but it enters all its regions",
            "remove `initial`",
        )
    elif state.kind != "compound":
        yield diagnostic(
            state.initial_pos,
            "SMC071",
            f"state {state.name!r} has an `initial` but no children to start in",
            "list its children under `states:`, or remove `initial`",
        )
    elif state.children:  # none: SMC070 says so
        for name, pos in state.initial_targets:
            if machine.has_state(name) and state.name in machine.ancestors(name):
                history = machine.state(name)
                if history.kind == "history" and history.parent != state.name:
                    yield diagnostic(
                        pos or state.initial_pos,
                        "SMC071",
                        f"initial state {name!r} of {state.name!r} is the history state of "
                        f"{history.parent!r}",
                        f"an `initial` may name {state.name!r}'s own history state; name "
                        f"{history.parent!r} or a state inside it",
                    )
                continue
            where = "is not a state" if not machine.has_state(name) else "is not inside it"
            yield diagnostic(
                pos or state.initial_pos,
                "SMC071",
                f"initial state {name!r} of {state.name!r} {where}",
                did_you_mean(name, state.children) or "children: " + ", ".join(state.children),
            )


def _content(state: State) -> Iterator[Diagnostic]:
    """``initial_actions`` only on a compound state (SMC071), ``default_actions`` only on a
    history state (SMC072), and in both only the actions the generated class runs (SMC097)."""
    if state.initial_actions and state.kind != "compound":
        yield diagnostic(
            state.initial_actions[0].pos,
            "SMC071",
            f"state {state.name!r} has `initial_actions`, but it is not a compound state",
            "initial actions run when a compound state is entered by default; move them to "
            "`on_entry`",
        )
    if state.default_actions and state.kind != "history":
        yield diagnostic(
            state.default_actions[0].pos,
            "SMC072",
            f"state {state.name!r} has `default_actions`, but it is not a history state",
            "default actions run when a history state has nothing to restore; move them to "
            "`on_entry`",
        )
    for action in (*state.initial_actions, *state.default_actions):
        if action.type not in BRANCH_ACTIONS or (action.type == LOG and not action.pure):
            yield diagnostic(
                action.pos,
                "SMC097",
                f"initial and default actions cannot hold a {action.type!r} action: they run "
                "inside the generated class",
                "use assign, raise, log (with `expr`), send and if; run other actions on entry "
                "to a state",
            )


def _final_with_children(machine: Machine, state: State) -> Diagnostic:
    """A final state is a leaf (SCXML's ``<final>`` has no child states): a compound marked
    final, by ``final: true``, ``type: final`` or ``final_states:``, would otherwise keep its
    children and quietly lose the mark. Reported where the mark is written in
    ``final_states:``, else at the state."""
    at = next(
        (
            pos
            for name, pos, where in machine.state_refs
            if name == state.name and where == "final_states"
        ),
        state.pos,
    )
    return diagnostic(
        at,
        "SMC070",
        f"state {state.name!r} is declared final but has child states: it is {state.kind}",
        "mark the child it ends in as final instead (`final_states:` may name nested "
        "states), or drop the final mark",
    )


def _history(machine: Machine, state: State) -> Iterator[Diagnostic]:
    parent = machine.state(state.parent) if state.parent is not None else None
    if parent is None or parent.kind not in ("compound", "parallel"):
        yield diagnostic(
            state.pos,
            "SMC072",
            f"history pseudo-state {state.name!r} is not inside a compound state",
            "move it into the `states:` of the compound whose history it keeps",
        )
        return
    if state.children:
        yield diagnostic(
            state.pos,
            "SMC072",
            f"history pseudo-state {state.name!r} has child states",
            "a history state restores its parent's children: it has none of its own",
        )
    outside = False
    for target, pos in zip(state.history_default, state.history_default_pos, strict=True):
        if machine.has_state(target) and not machine.is_descendant(target, parent.name):
            outside = True
            yield diagnostic(
                pos,
                "SMC072",
                f"the default {target!r} of history pseudo-state {state.name!r} is not "
                f"inside {parent.name!r}",
                f"name a state inside {parent.name!r}, or leave `to:` out (its initial state)",
            )
    loop = None if outside else _default_loop(machine, state)
    if loop is not None:
        where = (
            state.history_default_pos[0]
            if state.history_default
            else (parent.initial_pos or state.pos)
        )
        written = (
            "`to:`" if state.history_default else f"default (the initial state of {parent.name!r})"
        )
        yield diagnostic(
            where,
            "SMC072",
            f"history pseudo-state {state.name!r} has no default to enter: its {written} "
            f"leads back to it ({' -> '.join(loop)})",
            "give the history a `to:` that names a real state (not a history state), or "
            f"make the `initial:` of {parent.name!r} one",
        )


def _history_defaults(machine: Machine, state: State) -> tuple[str, ...]:
    """What entering history pseudo-state ``state`` with nothing remembered enters: its
    ``to:``, else its parent's initial state(s) (``charts.machine_chart``)."""
    if state.history_default:
        return state.history_default
    parent = machine.state(state.parent) if state.parent is not None else None
    if parent is None or parent.initial is None:
        return ()
    return parent.initials or (parent.initial,)


def _default_loop(machine: Machine, state: State) -> list[str] | None:
    """The history states from ``state`` back to itself when its default leads through
    history defaults to it (entering it would never end: the compiler looped for good or ran
    out of stack), else None."""
    path = [state.name]
    current = state
    while True:
        nexts = [
            t
            for t in _history_defaults(machine, current)
            if machine.has_state(t) and machine.state(t).kind == "history"
        ]
        if not nexts:
            return None
        name = nexts[0]
        if name in path:
            return [*path, name] if name == state.name else None
        path.append(name)
        current = machine.state(name)


def check_targets(machine: Machine, _: Context) -> Iterator[Diagnostic]:
    """SMC073: the targets of one transition (or history default) must be able to be active
    together: any two are nested, or in different regions of a parallel state."""
    groups: list[tuple[tuple[str, Position], ...]] = [t.all_targets for t in machine.transitions]
    groups += [
        tuple(  # those outside the compound are SMC071
            (name, pos)
            for name, pos in zip(s.initials, s.initials_pos, strict=True)
            if machine.has_state(name) and s.name in machine.ancestors(name)
        )
        for s in machine.states
    ]
    groups.append(machine.initial_targets)
    groups += [
        tuple(zip(s.history_default, s.history_default_pos, strict=True))
        for s in machine.states
        if len(s.history_default) > 1
    ]
    for targets in groups:
        known = [(name, pos) for name, pos in targets if machine.has_state(name)]
        for (first, _first_pos), (second, pos) in combinations(known, 2):
            common = _common_ancestor(machine, first, second)
            if common in (first, second):
                continue
            if common is None or machine.state(common).kind != "parallel":
                where = (
                    f"in different children of {common!r}, which is not parallel"
                    if common is not None
                    else "in different top-level states"
                )
                yield diagnostic(
                    pos,
                    "SMC073",
                    f"targets {first!r} and {second!r} cannot be active at once: they "
                    f"are {where}",
                    "target states in different regions of a parallel state, or one",
                )
                break  # one report per transition


def _common_ancestor(machine: Machine, first: str, second: str) -> str | None:
    """The innermost state enclosing both (either one itself), None for the top level."""
    chain = (first, *machine.ancestors(first))
    others = {second, *machine.ancestors(second)}
    return next((name for name in chain if name in others), None)


class _Chart:
    """Default entries and who is entered, worked out once per machine."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.memo: dict[str, frozenset[str]] = {}

    def default_entry(self, name: str, seen: frozenset[str] = frozenset()) -> frozenset[str]:
        """The states entered when ``name`` is entered by default: itself, and its initial
        child's entry (compound), every region's (parallel), its default's (history)."""
        if name in self.memo:
            return self.memo[name]
        if name in seen or not self.machine.has_state(name):
            return frozenset()
        seen = seen | {name}
        state = self.machine.state(name)
        found = {name}
        if state.kind == "compound" and state.children:
            # A wrong `initial` (SMC071) is taken as the default, the first child, so its
            # mistake is not reported again as unreachable states.
            targets = tuple(
                name
                for name, _ in state.initial_targets
                if self.machine.has_state(name) and name in self.machine.descendants(state.name)
            )
            if targets:
                found |= self.entered_together(targets, state.name, seen)
            else:
                found |= self.default_entry(state.children[0], seen)
        elif state.kind == "parallel":
            for child in state.children:
                found |= self.default_entry(child, seen)
        elif state.kind == "history":
            defaults = state.history_default
            if not defaults and state.parent is not None:
                parent = self.machine.state(state.parent)
                defaults = (parent.initial,) if parent.initial is not None else ()
            for target in defaults:
                found |= self.default_entry(target, seen)
        self.memo[name] = frozenset(found)
        return self.memo[name]

    def entered_by(self, target: str) -> set[str]:
        """Every state active after a transition to ``target``: its default entry, its
        ancestors, and the default entry of the other regions of any parallel ancestor."""
        machine = self.machine
        found = set(self.default_entry(target))
        path = {target}
        for ancestor in machine.ancestors(target):
            found.add(ancestor)
            state = machine.state(ancestor)
            if state.kind == "parallel":
                for region in state.children:
                    if region not in path:
                        found |= self.default_entry(region)
            path.add(ancestor)
        return found

    def entered_together(
        self, targets: tuple[str, ...], within: str | None, seen: frozenset[str] = frozenset()
    ) -> frozenset[str]:
        """The states entered below ``within`` (None: the top) when ``targets`` are entered
        at once (several initial states): each one's default entry, the states between them
        and ``within``, and the default entry of the regions of a parallel one of those that
        hold no target."""
        machine = self.machine
        found: set[str] = set()
        path: set[str] = set(targets)
        for target in targets:
            found |= self.default_entry(target, seen)
            for ancestor in machine.ancestors(target):
                if ancestor == within:
                    break
                path.add(ancestor)
        for name in path - set(targets):
            found.add(name)
            state = machine.state(name)
            if state.kind == "parallel":
                for region in state.children:
                    if region not in path:
                        found |= self.default_entry(region, seen)
        return frozenset(found)

    def leaves_entered(self, targets: tuple[str, ...]) -> set[str]:
        return {
            name
            for target in targets
            for name in self.default_entry(target)
            if self.machine.state(name).is_atomic
        }


def check_chart_reachability(machine: Machine, _: Context) -> Iterator[Diagnostic]:
    """SMC020 and SMC021 for a statechart (``structure`` checks a flat machine's)."""
    if not machine.is_chart or not machine.has_state(machine.initial_state):
        return
    chart = _Chart(machine)
    finals = set(machine.final_states)
    by_source: dict[str, list[Transition]] = {}
    wildcards: list[Transition] = []
    entered: set[str] = set()
    queue: list[str] = []

    def enter(names: set[str]) -> None:
        for name in names - entered:
            entered.add(name)
            queue.append(name)

    def targets_of(t: Transition) -> set[str]:
        found: set[str] = set()
        for target, _pos in t.all_targets:
            if not machine.has_state(target):  # SMC010: follow the likely meaning
                guess = closest(target, machine.state_names)
                target = guess if guess is not None else ""
            if target:
                found |= chart.entered_by(target)
        return found

    for t in machine.transitions:
        if t.wildcard:
            wildcards.append(t)
        elif machine.has_state(t.source):
            by_source.setdefault(t.source, []).append(t)
        else:  # an unknown source (SMC010) still leads to its targets
            enter(targets_of(t))
    starts = tuple(name for name, _ in machine.initial_targets if machine.has_state(name))
    enter(set(chart.entered_together(starts, None)))
    wildcards_taken = False
    while queue:
        name = queue.pop()
        for t in by_source.get(name, ()):
            enter(targets_of(t))
        state = machine.state(name)
        if not wildcards_taken and state.is_atomic and name not in finals:
            wildcards_taken = True
            for t in wildcards:
                enter(targets_of(t))
    for state in machine.states:
        if state.kind == "history" or state.name in entered:
            continue
        if state.parent is None or state.parent in entered:
            yield diagnostic(
                state.pos,
                "SMC020",
                f"state {state.name!r} cannot be reached from the initial state "
                f"{machine.initial_state!r}",
                "add a transition into it, or remove it",
            )
    yield from _stuck_leaves(machine, by_source, wildcards, finals)


def _stuck_leaves(
    machine: Machine,
    by_source: dict[str, list[Transition]],
    wildcards: list[Transition],
    finals: set[str],
) -> Iterator[Diagnostic]:
    """SMC021: a non-final leaf every transition of which (its own, its ancestors', the
    wildcards) leads back to itself."""
    for state in machine.states:
        if not state.is_atomic or state.name in finals:
            continue
        transitions = [
            t for n in (state.name, *machine.ancestors(state.name)) for t in by_source.get(n, ())
        ] + wildcards
        targets = {target for t in transitions for target, _pos in t.all_targets}
        if targets == {state.name}:
            yield diagnostic(
                state.pos,
                "SMC021",
                f"state {state.name!r} is not final, but every transition out of it "
                "leads back to itself: the machine can never leave it",
                "add a transition to another state, or declare it final",
            )


def check_eventless_cycles(machine: Machine, _: Context) -> Iterator[Diagnostic]:
    """SMC074: eventless transitions are taken as long as one is enabled; a cycle of them
    (each leaf's first eventless transition, its own before its ancestors'), none with a
    condition, is taken for ever."""
    eventless = [t for t in machine.transitions if t.event is None]
    if not eventless:
        return
    chart = _Chart(machine)
    finals = set(machine.final_states)
    first_from: dict[str, Transition] = {}
    for t in eventless:
        if not t.wildcard:
            first_from.setdefault(t.source, t)
    wildcard = next((t for t in eventless if t.wildcard), None)
    taken: dict[str, Transition] = {}
    for leaf in machine.leaves():
        own = [first_from.get(leaf), wildcard if leaf not in finals else None]
        choice = min((t for t in own if t is not None), key=lambda t: t.index, default=None)
        for ancestor in machine.ancestors(leaf):
            if choice is not None:
                break
            choice = first_from.get(ancestor)
        # A guarded first choice may not be taken, or may stop being taken as the data
        # changes: only a loop of unconditional transitions certainly never settles.
        if choice is not None and not choice.guarded:
            taken[leaf] = choice
    successors = {
        leaf: chart.leaves_entered(tuple(n for n, _ in t.all_targets if machine.has_state(n)))
        for leaf, t in taken.items()
    }
    reported: set[int] = set()
    for cycle in _cycles(successors):
        first = min((taken[leaf] for leaf in cycle), key=lambda t: t.index)
        if first.index in reported:
            continue
        reported.add(first.index)
        path = " -> ".join([*cycle, cycle[0]])
        yield diagnostic(
            first.pos,
            "SMC074",
            f"eventless transitions loop for ever: {path}, each with no event and no "
            "condition, so the machine never settles",
            "give one of them an event",
        )


def _cycles(successors: dict[str, set[str]]) -> Iterator[list[str]]:
    """One cycle through each strongly connected group of the graph that has one (a depth
    first search; a cycle is the stack from the state found again)."""
    done: set[str] = set()
    for start in sorted(successors):
        if start in done:
            continue
        stack: list[tuple[str, list[str]]] = [(start, sorted(successors.get(start, ())))]
        on_stack = {start: 0}
        while stack:
            node, pending = stack[-1]
            if not pending:
                stack.pop()
                del on_stack[node]
                done.add(node)
                continue
            nxt = pending.pop()
            if nxt in on_stack:
                yield [name for name, _ in stack[on_stack[nxt] :]]
            elif nxt not in done and nxt in successors:
                on_stack[nxt] = len(stack)
                stack.append((nxt, sorted(successors[nxt])))


def check_chart_table(machine: Machine) -> Iterator[Diagnostic]:
    """SMC074, SMC077: what only running the chart shows, for a chart that checked without
    errors: a macrostep that never settles (eventless transitions or raised events that
    keep enabling each other in a way SMC074's look at the written transitions missed, such
    as a transition into a sibling region of a parallel state, which enters the whole
    parallel state again), or more situations than a table may hold. Code generation builds
    the same table; this makes its failures diagnostics, not tracebacks."""
    # Imported here: a flat machine never needs the statechart core.
    from smc.compiler.charts import machine_table, written_transitions
    from smc.compiler.statechart import (
        ChartDefinitionError,
        TooManyOutcomes,
        TooManySituations,
        UnsettledMacrostep,
    )

    try:
        # the table code generation takes (machine_table keeps it for the same machine)
        machine_table(machine)
    except ChartDefinitionError as error:
        # A rule of the semantic core that no check above states: a gap in the checker,
        # still reported as a diagnostic, never a traceback at build.
        yield diagnostic(
            machine.initial_pos,
            "SMC078",
            f"the statechart cannot be compiled: {error}",
            "see docs/language.md, Statecharts",
        )
    except UnsettledMacrostep as error:
        origins = written_transitions(machine)
        looping = sorted({origins[order] for order in error.transitions}, key=lambda t: t.index)
        where = "after the start" if error.event is None else f"after event {error.event!r}"
        path = ", ".join(f"{t.source} -> {', '.join(t.targets or (t.target,))}" for t in looping)
        yield diagnostic(
            looping[0].pos if looping else machine.initial_pos,
            "SMC074",
            f"the machine never settles {where}: it keeps taking {path} (eventless "
            "transitions or raised events enable each other for ever)",
            "give one of them an event, or move its target out of the loop",
        )
    except (TooManySituations, TooManyOutcomes) as error:
        # too many situations, or one event whose guards branch into too many outcomes
        yield diagnostic(
            machine.initial_pos,
            "SMC077",
            f"{error}",
            "split the machine, or use fewer parallel regions, deep history states or "
            "guards on one event",
        )
