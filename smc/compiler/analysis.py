"""Semantic checks over the models of all the files checked together.

Each check is one function ``(machine, context) -> diagnostics``; ``analyse`` runs them all.
Codes and their one-line summaries live in ``diagnostics.CODES`` (and docs/diagnostics.md).
Every check is linear in the size of the machine (the benchmark in benchmarks/bench_check.py
holds it to that): per-state lookups go through dictionaries built once per machine.
"""

from __future__ import annotations

import difflib
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smc.catalog import BUILTIN_ACTIONS, COMMON_KEYS, EVENT_PARAMS, REMOVED_ACTIONS, emitted_events
from smc.compiler import names
from smc.compiler.diagnostics import Diagnostic
from smc.compiler.model import TIMEOUT_EVENT, WILDCARD, Action, Machine, Position, Transition

_FILTER = re.compile(r"\{[A-Za-z_][\w.]*\|[^{}]*\}")
_TIMER_LIKE = re.compile(r"^\s*timeout\b", re.IGNORECASE)
#: The event ``send_event`` sends when ``event_type`` is left out (as in the peer).
DEFAULT_SENT_EVENT = "generic_event"


@dataclass(frozen=True)
class Context:
    machines: dict[str, Machine]  # by machine name (the first, when names collide)
    extra_action_types: frozenset[str]
    #: machine name -> the events other machines send it with ``send_event``.
    sent_to: Mapping[str, frozenset[str]] = field(default_factory=dict)


def _diag(pos: Position, code: str, message: str, hint: str = "") -> Diagnostic:
    return Diagnostic(pos.path, pos.line, pos.col, code, message, hint)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    options = sorted({str(candidate) for candidate in candidates})
    close = difflib.get_close_matches(str(name), options, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def _unknown_state(machine: Machine, name: str, pos: Position, what: str) -> Diagnostic:
    hint = did_you_mean(name, machine.state_names)
    if not hint:
        hint = (
            "declare it under `states:`"
            if any(s.declared for s in machine.states)
            else "no transition names it; add one, or list the states under `states:`"
        )
    return _diag(pos, "SMC010", f"{what} {name!r} is not a state of machine {machine.name!r}", hint)


def _handled_by_state(machine: Machine) -> dict[str, set[str]]:
    """State -> the events some effective transition accepts in it (one pass over the table)."""
    handled: dict[str, set[str]] = {state: set() for state in machine.state_names}
    for edge in machine.table:
        handled.setdefault(edge.source, set()).add(edge.event)
    return handled


# ---- states and transitions -------------------------------------------------------------


def check_state_names(machine: Machine, _: Context) -> Iterator[Diagnostic]:
    if not machine.has_state(machine.initial_state):
        yield _unknown_state(machine, machine.initial_state, machine.initial_pos, "initial state")
    for t in machine.transitions:
        if t.source != WILDCARD and not machine.has_state(t.source):
            what = "allowed transition source" if t.synthesized else "`from` state"
            yield _unknown_state(machine, t.source, t.source_pos, what)
        if not machine.has_state(t.target):
            what = "allowed transition" if t.synthesized else "`to` state"
            yield _unknown_state(machine, t.target, t.target_pos, what)
    for name, pos, where in machine.state_refs:
        if not machine.has_state(name):
            yield _unknown_state(machine, name, pos, f"state in `{where}`")


def check_transitions(machine: Machine, _: Context) -> Iterator[Diagnostic]:
    first: dict[tuple[str, str], Transition] = {}
    first_wildcard: dict[str, Transition] = {}  # event -> the first `from: "*"` on it
    finals = set(machine.final_states)
    for t in machine.transitions:
        key = (t.source, t.event)
        earlier = first.get(key)
        if earlier is not None:
            if earlier.target == t.target:
                yield _diag(
                    t.pos,
                    "SMC012",
                    f"transition {t.source} --{t.event}--> {t.target} is written twice",
                    f"the first is at line {earlier.pos.line}; remove this one",
                )
            else:
                yield _diag(
                    t.event_pos,
                    "SMC013",
                    f"state {t.source!r} already goes to {earlier.target!r} on "
                    f"{t.event!r} (line {earlier.pos.line}); this transition to "
                    f"{t.target!r} can never fire",
                    "use a different event, or remove one of the two",
                )
            continue
        first[key] = t
        if t.wildcard:
            first_wildcard.setdefault(t.event, t)
            continue
        shadow = first_wildcard.get(t.event)
        if shadow is not None and t.source not in finals:
            yield _diag(
                t.pos,
                "SMC014",
                f"transition {t.source} --{t.event}--> {t.target} never fires: the "
                f'`from: "*"` transition at line {shadow.pos.line} comes first and '
                "matches every state",
                'move this transition above the `from: "*"` one to override it',
            )
        if t.source in finals and machine.has_state(t.source):
            state = machine.state(t.source)
            if state.declared_final:
                yield _diag(
                    t.source_pos,
                    "SMC015",
                    f"state {t.source!r} is declared final but has a transition on {t.event!r}",
                    "remove the transition or the final mark",
                )


def check_groups(machine: Machine, _: Context) -> Iterator[Diagnostic]:
    owner: dict[str, str] = {}
    for group in machine.groups:
        for state in group.states:
            if state in owner and owner[state] != group.name:
                yield _diag(
                    group.pos,
                    "SMC017",
                    f"state {state!r} is in group {owner[state]!r} and in {group.name!r}",
                    "a state belongs to one group",
                )
            owner.setdefault(state, group.name)


def check_reachability(machine: Machine, _: Context) -> Iterator[Diagnostic]:
    if not machine.has_state(machine.initial_state):
        return
    adjacency: dict[str, list[str]] = {}
    for edge in machine.table:
        adjacency.setdefault(edge.source, []).append(edge.target)
    seen = {machine.initial_state}
    queue = deque([machine.initial_state])
    while queue:
        for target in adjacency.get(queue.popleft(), ()):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    finals = set(machine.final_states)
    for state in machine.states:
        if state.name not in seen:
            yield _diag(
                state.pos,
                "SMC020",
                f"state {state.name!r} cannot be reached from the initial state "
                f"{machine.initial_state!r}",
                "add a transition into it, or remove it",
            )
        elif state.name not in finals:
            targets = adjacency.get(state.name, [])
            if targets and all(target == state.name for target in targets):
                yield _diag(
                    state.pos,
                    "SMC021",
                    f"state {state.name!r} is not final, but every transition out of it "
                    "leads back to itself: the machine can never leave it",
                    "add a transition to another state, or declare it final",
                )


# ---- events -----------------------------------------------------------------------------


def check_emitted_events(machine: Machine, _: Context) -> Iterator[Diagnostic]:
    """SMC022. An action's event with no transition in its state is normal when the author
    wrote it on an action followed by others: the runtime goes on with the next action (the
    peer's ``pop_from_list success: has_job`` idiom). It is reported when nothing shows that
    intent: the action returns the event by itself (``no_jobs``, ``wake_up``), or the event
    is written on the state's last action, so it is lost and the machine just waits."""
    finals = set(machine.final_states)
    handled_by_state = _handled_by_state(machine)
    for state in machine.states:
        if state.name in finals:
            continue  # the machine stops after a final state's actions
        handled = handled_by_state.get(state.name, set())
        last = len(state.actions) - 1
        for index, action in enumerate(state.actions):
            for event, kind in emitted_events(action.type, action.params):
                if kind == "default" or event in handled:
                    continue
                if kind == "explicit" and index < last:
                    continue  # the "go on with the next action" idiom
                if kind == "fixed":
                    message = (
                        f"{action.type!r} in state {state.name!r} returns {event!r} by itself, "
                        f"but no transition leaves {state.name!r} on {event!r}"
                    )
                    hint = (
                        f"add a transition from {state.name!r} on {event!r}; until then the "
                        "event goes to the next action, or, after the last one, is lost"
                    )
                else:
                    message = (
                        f"{action.type!r} is the last action of state {state.name!r} and may "
                        f"return {event!r}, but no transition leaves {state.name!r} on it"
                    )
                    hint = (
                        f"add a transition from {state.name!r} on {event!r}; as written the "
                        "event is lost and the machine waits for an outside event or a timer"
                    )
                yield _diag(
                    _event_param_pos(action, event),
                    "SMC022",
                    message,
                    hint + _suggest(event, handled),
                )


def check_declared_events(machine: Machine, context: Context) -> Iterator[Diagnostic]:
    emitted = {
        event
        for state in machine.states
        for action in state.actions
        for event, _kind in emitted_events(action.type, action.params)
    }
    transition_events = {t.event for t in machine.transitions}
    used = transition_events | emitted | context.sent_to.get(machine.name, frozenset())
    declared = {e.name for e in machine.events if e.declared}
    undeclared_used = sorted(transition_events - declared)
    for event in machine.events:
        if event.declared and event.name not in used:
            yield _diag(
                event.pos,
                "SMC023",
                f"event {event.name!r} is declared but no transition or action uses it",
                did_you_mean(event.name, undeclared_used)
                or "remove it, or add the transition it was meant for",
            )
        if event.timeout is None and _TIMER_LIKE.match(event.name) and "(" in event.name:
            yield _diag(
                event.pos,
                "SMC024",
                f"event {event.name!r} looks like a timer but is not `timeout(N)`, so "
                "it never fires by itself",
                "write it as timeout(5) or timeout(0.5): seconds, no spaces or units",
            )
    if not declared:
        return  # events are optional; only a machine that lists them is held to its list
    reported: set[str] = set()
    for t in machine.transitions:
        if t.synthesized or t.event in declared or t.event in reported:
            continue
        if TIMEOUT_EVENT.match(t.event):
            continue  # timers need no declaration
        reported.add(t.event)
        yield _diag(
            t.event_pos,
            "SMC025",
            f"event {t.event!r} is not listed under `events:`",
            did_you_mean(t.event, declared) or "add it to `events:`",
        )


def _suggest(event: str, handled: set[str]) -> str:
    hint = did_you_mean(event, handled)
    return f"; {hint}" if hint else ""


def _event_param_pos(action: Action, event: str) -> Position:
    for param in (*EVENT_PARAMS, "error_mappings"):
        value = action.params.get(param)
        if value == event or (isinstance(value, dict) and event in value.values()):
            return action.param_pos.get(param, action.pos)
    return action.pos


# ---- actions ----------------------------------------------------------------------------


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def check_actions(machine: Machine, context: Context) -> Iterator[Diagnostic]:
    known_user = set(machine.user_action_types) | context.extra_action_types
    for state in machine.states:
        for action in state.actions:
            spec = BUILTIN_ACTIONS.get(action.type)
            if spec is None and action.type not in known_user:
                hint = (
                    REMOVED_ACTIONS.get(action.type)
                    or did_you_mean(action.type, [*BUILTIN_ACTIONS, *known_user])
                    or "declare user action types under `action_types:` or pass --actions-dir"
                )
                yield _diag(
                    action.pos,
                    "SMC030",
                    f"unknown action type {action.type!r} in state {state.name!r}",
                    hint,
                )
            if spec is not None:
                for required in spec.required:
                    if required not in action.params:
                        given = [str(param) for param in action.params]
                        close = difflib.get_close_matches(required, given, n=1)
                        hint = (
                            f"{close[0]!r} looks like a misspelling of it"
                            if close
                            else f"add `{required}: ...`"
                        )
                        yield _diag(
                            action.pos,
                            "SMC031",
                            f"{action.type!r} needs the parameter {required!r}",
                            hint,
                        )
                allowed = spec.parameters | COMMON_KEYS
                for param in action.params:
                    if param not in allowed:
                        hint = did_you_mean(param, spec.parameters) or (
                            "parameters it reads: " + ", ".join(sorted(spec.parameters))
                        )
                        yield _diag(
                            action.param_key_pos.get(param, action.pos),
                            "SMC032",
                            f"{action.type!r} has no parameter {param!r}; it is ignored",
                            hint,
                        )
            for param, value in action.params.items():
                for text in _strings(value):
                    match = _FILTER.search(text)
                    if match:
                        yield _diag(
                            action.param_pos.get(param, action.pos),
                            "SMC033",
                            f"placeholder {match.group(0)!r} uses a filter; filters are "
                            "not supported and the text is left as written",
                            "compute the value in an action (set_context) and refer to "
                            "it with a plain {name}",
                        )


def check_send_event(machine: Machine, context: Context) -> Iterator[Diagnostic]:
    for state in machine.states:
        for action in state.actions:
            if action.type != "send_event":
                continue
            target = action.params.get("target_machine")
            if not isinstance(target, str) or "{" in target:
                continue  # a computed target is checked at run time
            pos = action.param_pos.get("target_machine", action.pos)
            other = context.machines.get(target)
            if other is None:
                yield _diag(
                    pos,
                    "SMC040",
                    f"send_event targets machine {target!r}, which is not among the "
                    "checked files",
                    did_you_mean(target, context.machines)
                    or "check it together with the target machine's file, or fix the name",
                )
                continue
            event = str(action.params.get("event_type", DEFAULT_SENT_EVENT))
            if "{" in event:
                continue  # a computed event is checked at run time
            if event not in {t.event for t in other.transitions}:
                yield _diag(
                    action.param_pos.get("event_type", pos),
                    "SMC041",
                    f"send_event sends {event!r} to {target!r}, which has no transition "
                    f"on {event!r}: the event would be dropped",
                    did_you_mean(event, other.event_names)
                    or f"add a transition on {event!r} to {target!r}",
                )


# ---- names ------------------------------------------------------------------------------


def check_identifiers(machine: Machine, _: Context) -> Iterator[Diagnostic]:
    kinds: list[tuple[str, Callable[[str], str | None], Sequence[tuple[str, Position]]]] = [
        ("state", names.member, [(s.name, s.pos) for s in machine.states]),
        ("event", names.member, [(e.name, e.pos) for e in machine.events]),
        ("event method", names.method, [(e.name, e.pos) for e in machine.events]),
    ]
    for kind, convert, items in kinds:
        taken: dict[str, str] = {}
        for name, pos in items:
            ident = convert(name)
            if ident is None:
                if kind != "event method":  # one diagnostic per bad event name
                    yield _diag(
                        pos,
                        "SMC050",
                        f"{kind} name {name!r} cannot become a Python identifier",
                        "use letters, digits and '_' in the name",
                    )
                continue
            if ident in taken and taken[ident] != name:
                yield _diag(
                    pos,
                    "SMC051",
                    f"{kind} {name!r} and {taken[ident]!r} both become {ident!r} in " "Python",
                    "rename one of them",
                )
            taken.setdefault(ident, name)
    for convert in (names.pascal, names.module):
        if convert(machine.name) is None:
            yield _diag(
                machine.initial_pos,
                "SMC050",
                f"machine name {machine.name!r} cannot become a Python identifier",
                "set metadata.machine_name to letters, digits and '_'",
            )
            break


CHECKS: tuple[Callable[[Machine, Context], Iterable[Diagnostic]], ...] = (
    check_state_names,
    check_transitions,
    check_groups,
    check_reachability,
    check_emitted_events,
    check_declared_events,
    check_actions,
    check_send_event,
    check_identifiers,
)


def check_machine_names(machines: Sequence[Machine]) -> Iterator[Diagnostic]:
    by_name: dict[str, Machine] = {}
    by_module: dict[str, Machine] = {}
    for machine in machines:
        pos = machine.name_pos or Position(machine.path, 1, 1)
        first = by_name.get(machine.name)
        if first is not None:
            yield _diag(
                pos,
                "SMC042",
                f"machine name {machine.name!r} is also used by {first.path}",
                "give one of them another metadata.machine_name",
            )
            continue
        by_name[machine.name] = machine
        module = names.module(machine.name)
        if module is not None:
            other = by_module.get(module)
            if other is not None:
                yield _diag(
                    pos,
                    "SMC051",
                    f"machines {machine.name!r} and {other.name!r} both become module "
                    f"{module!r}",
                    "rename one of them",
                )
            by_module.setdefault(module, machine)


def analyse(
    machines: Sequence[Machine], extra_action_types: Iterable[str] = ()
) -> list[Diagnostic]:
    sent_to: dict[str, set[str]] = {}
    for machine in machines:
        for state in machine.states:
            for action in state.actions:
                target = action.params.get("target_machine")
                if action.type == "send_event" and isinstance(target, str):
                    event = action.params.get("event_type", DEFAULT_SENT_EVENT)
                    sent_to.setdefault(target, set()).add(str(event))
    context = Context(
        machines={m.name: m for m in reversed(machines)},
        extra_action_types=frozenset(extra_action_types),
        sent_to={name: frozenset(events) for name, events in sent_to.items()},
    )
    diagnostics = list(check_machine_names(machines))
    for machine in machines:
        for check in CHECKS:
            diagnostics.extend(check(machine, context))
    return diagnostics
