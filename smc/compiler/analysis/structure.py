"""Checks of a machine's states and transitions: every state named exists (SMC010), no
transition written twice (SMC012) or after an unconditional one on the same event from the
same state (SMC013), no transition hidden by a ``from: "*"`` one (SMC014) or leaving a
declared final state (SMC015), groups (SMC017), and every state reachable and able to leave
(SMC020, SMC021).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from smc.compiler.analysis.context import Context, closest, diagnostic, did_you_mean
from smc.compiler.diagnostics import Diagnostic
from smc.compiler.model import WILDCARD, Machine, Position, Transition


def _unknown_state(machine: Machine, name: str, pos: Position, what: str) -> Diagnostic:
    hint = did_you_mean(name, machine.state_names)
    if not hint:
        hint = (
            "declare it under `states:`"
            if any(s.declared for s in machine.states)
            else "no transition names it; add one, or list the states under `states:`"
        )
    return diagnostic(
        pos, "SMC010", f"{what} {name!r} is not a state of machine {machine.name!r}", hint
    )


def check_state_names(machine: Machine, _: Context) -> Iterator[Diagnostic]:
    for name, pos in machine.initial_targets:
        if not machine.has_state(name):
            yield _unknown_state(machine, name, pos, "initial state")
    for t in machine.transitions:
        if t.source != WILDCARD and not machine.has_state(t.source):
            what = "allowed transition source" if t.synthesized else "`from` state"
            yield _unknown_state(machine, t.source, t.source_pos, what)
        for target, target_pos in t.all_targets:
            if not machine.has_state(target):
                what = "allowed transition" if t.synthesized else "`to` state"
                yield _unknown_state(machine, target, target_pos, what)
    for name, pos, where in machine.state_refs:
        if not machine.has_state(name):
            yield _unknown_state(machine, name, pos, f"state in `{where}`")
    for state in machine.states:
        for target, target_pos in zip(
            state.history_default, state.history_default_pos, strict=True
        ):
            if not machine.has_state(target):
                yield _unknown_state(machine, target, target_pos, "history default")


def _arrow(t: Transition) -> str:
    """``a --go--> b``; ``a --> b`` for an eventless transition."""
    return f"{t.source} --{t.event}--> {t.target}" if t.event else f"{t.source} --> {t.target}"


def _on(event: str | None) -> str:
    return f"on {event!r}" if event is not None else "with no event"


def _targets(t: Transition) -> tuple[str, ...]:
    return t.targets or (t.target,)


def _conditions(t: Transition) -> str:
    """``when: x, guard: g`` for a message; empty for an unconditional transition."""
    keys = ("when", "guard", "unless")
    written = [(k, v) for k, v in zip(keys, t.condition, strict=True) if v is not None]
    return ", ".join(f"{key}: {value}" for key, value in written)


def check_transitions(machine: Machine, _: Context) -> Iterator[Diagnostic]:
    """SMC012-SMC015. Transitions on one event from one state are tried in document order
    and the first whose conditions hold is taken, so several are an if/else chain; only a
    transition after one without conditions can never be taken (SMC013), and one written
    twice with the same conditions is SMC012."""
    earlier_on: dict[tuple[str, str | None], list[Transition]] = {}
    #: event -> the first unconditional `from: "*"` on it
    first_wildcard: dict[str | None, Transition] = {}
    finals = set(machine.final_states)
    for t in machine.transitions:
        key = (t.source, t.event)
        earlier = earlier_on.setdefault(key, [])
        twin = next(
            (e for e in earlier if _targets(e) == _targets(t) and e.condition == t.condition),
            None,
        )
        unconditional = next((e for e in earlier if not e.guarded), None)
        if twin is not None:
            yield diagnostic(
                t.pos,
                "SMC012",
                f"transition {_arrow(t)} is written twice"
                + (f" with the same conditions ({_conditions(t)})" if t.guarded else ""),
                f"the first is at line {twin.pos.line}; remove this one",
            )
            continue
        if unconditional is not None:
            yield diagnostic(
                t.event_pos,
                "SMC013",
                f"state {t.source!r} already goes to {unconditional.target!r} "
                f"{_on(t.event)} with no condition (line {unconditional.pos.line}); this "
                f"transition to {t.target!r} can never fire",
                "transitions on one event are tried in document order: put the ones with "
                "`when:`/`guard:`/`unless:` first and the unconditional one (the else) last, "
                "or use a different event",
            )
            continue
        earlier.append(t)
        if t.wildcard:
            if not t.guarded:
                first_wildcard.setdefault(t.event, t)
            continue
        shadow = first_wildcard.get(t.event)
        if shadow is not None and t.source not in finals:
            yield diagnostic(
                t.pos,
                "SMC014",
                f"transition {_arrow(t)} never fires: the "
                f'`from: "*"` transition at line {shadow.pos.line} comes first and '
                "matches every state",
                'move this transition above the `from: "*"` one to override it',
            )
        if t.source in finals and machine.has_state(t.source):
            state = machine.state(t.source)
            if state.declared_final:
                yield diagnostic(
                    t.source_pos,
                    "SMC015",
                    f"state {t.source!r} is declared final but has a transition {_on(t.event)}",
                    "remove the transition or the final mark",
                )


def check_groups(machine: Machine, _: Context) -> Iterator[Diagnostic]:
    owner: dict[str, str] = {}
    for group in machine.groups:
        for state in group.states:
            if state in owner and owner[state] != group.name:
                yield diagnostic(
                    group.pos,
                    "SMC017",
                    f"state {state!r} is in group {owner[state]!r} and in {group.name!r}",
                    "a state belongs to one group",
                )
            owner.setdefault(state, group.name)


def check_reachability(machine: Machine, _: Context) -> Iterator[Diagnostic]:
    """SMC020, SMC021 for a flat machine (``analysis.chart`` checks a statechart's)."""
    if machine.is_chart or not machine.has_state(machine.initial_state):
        return
    adjacency: dict[str, list[str]] = {}
    for edge in machine.table:
        adjacency.setdefault(edge.source, []).append(edge.target)
    # Transitions naming an unknown state (SMC010, already reported) still exist: one with an
    # unknown target leaves its source (to the state the hint suggests, when there is one), and
    # the target of one with an unknown source is not reported as unreachable because of it,
    # nor the state the hint suggests for its source as one that cannot leave.
    leaves_anyway: set[str] = set()
    seen = {machine.initial_state}
    finals = set(machine.final_states)
    for t in machine.transitions:
        source_known = t.wildcard or machine.has_state(t.source)
        if not source_known:
            if machine.has_state(t.target):
                seen.add(t.target)
            meant = closest(t.source, machine.state_names)
            if meant is not None:
                leaves_anyway.add(meant)
            continue
        if machine.has_state(t.target):
            continue
        sources = [s for s in machine.state_names if s not in finals] if t.wildcard else [t.source]
        guess = closest(t.target, machine.state_names)
        for source in sources:
            leaves_anyway.add(source)
            if guess is not None:
                adjacency.setdefault(source, []).append(guess)
    queue = deque(seen)
    while queue:
        for target in adjacency.get(queue.popleft(), ()):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    for state in machine.states:
        if state.name not in seen:
            yield diagnostic(
                state.pos,
                "SMC020",
                f"state {state.name!r} cannot be reached from the initial state "
                f"{machine.initial_state!r}",
                "add a transition into it, or remove it",
            )
        elif state.name not in finals and state.name not in leaves_anyway:
            targets = adjacency.get(state.name, [])
            if targets and all(target == state.name for target in targets):
                yield diagnostic(
                    state.pos,
                    "SMC021",
                    f"state {state.name!r} is not final, but every transition out of it "
                    "leads back to itself: the machine can never leave it",
                    "add a transition to another state, or declare it final",
                )
