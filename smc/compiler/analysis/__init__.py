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
from functools import cached_property
from importlib import metadata
from typing import Any

from smc.catalog import (
    BUILTIN_ACTIONS,
    COMMON_KEYS,
    DEFAULT_SENT_EVENT,
    EVENT_PARAMS,
    REMOVED_ACTIONS,
    EmitKind,
    claim_event,
    emitted_events,
    failure_events,
)
from smc.compiler import names
from smc.compiler.diagnostics import Diagnostic
from smc.compiler.model import TIMEOUT_EVENT, WILDCARD, Action, Machine, Position, Transition

_FILTER = re.compile(r"\{[A-Za-z_][\w.]*\|[^{}]*\}")
_TIMER_LIKE = re.compile(r"^\s*timeout\b", re.IGNORECASE)
#: The entry-point group the runtime's action registry looks user actions up in.
ENTRY_POINT_GROUP = "smc.actions"


@dataclass(frozen=True)
class Context:
    machines: dict[str, Machine]  # by machine name (the first, when names collide)
    extra_action_types: frozenset[str]
    #: machine name -> the events other machines send it with ``send_event``.
    sent_to: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: True when the checker knows every place user actions come from: action directories
    #: were given, or the caller is ``smc run``, whose directories are all there is.
    user_actions_known: bool = False

    @cached_property
    def entry_point_types(self) -> frozenset[str]:
        """Action types of the ``smc.actions`` entry-point group, which the runtime finds too.
        Looked up once, and only when an action type is neither built in nor declared (reading
        the installed distributions takes tens of milliseconds)."""
        return frozenset(entry.name for entry in metadata.entry_points(group=ENTRY_POINT_GROUP))


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


def _closest(name: str, candidates: Sequence[str]) -> str | None:
    close = difflib.get_close_matches(str(name), sorted(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def _handled_by_state(machine: Machine) -> dict[str, set[str]]:
    """State -> the events some transition accepts in it. Taken from the transitions as
    written, so one whose target is unknown (SMC010, already reported) still counts: the
    transition exists, it is its target that is wrong."""
    handled: dict[str, set[str]] = {state: set() for state in machine.state_names}
    wildcard_events: set[str] = set()
    for t in machine.transitions:
        if t.wildcard:
            wildcard_events.add(t.event)
        elif t.source in handled:
            handled[t.source].add(t.event)
    if wildcard_events:
        finals = set(machine.final_states)
        for state in machine.state_names:
            if state not in finals:
                handled[state] |= wildcard_events
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
    # Transitions naming an unknown state (SMC010, already reported) still exist: one with an
    # unknown target leaves its source (to the state the hint suggests, when there is one), and
    # the target of one with an unknown source is not reported as unreachable because of it.
    leaves_anyway: set[str] = set()
    seen = {machine.initial_state}
    finals = set(machine.final_states)
    for t in machine.transitions:
        source_known = t.wildcard or machine.has_state(t.source)
        if not source_known:
            if machine.has_state(t.target):
                seen.add(t.target)
            continue
        if machine.has_state(t.target):
            continue
        sources = [s for s in machine.state_names if s not in finals] if t.wildcard else [t.source]
        guess = _closest(t.target, machine.state_names)
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
            yield _diag(
                state.pos,
                "SMC020",
                f"state {state.name!r} cannot be reached from the initial state "
                f"{machine.initial_state!r}",
                "add a transition into it, or remove it",
            )
        elif state.name not in finals and state.name not in leaves_anyway:
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


@dataclass(frozen=True)
class _ActionEvents:
    """What one action may return, worked out once per action."""

    emitted: list[tuple[str, EmitKind]]  # as ``catalog.emitted_events`` gives them
    claimed: str | None  # the event meaning "a job was claimed"
    failures: list[str]  # failure events a condition met at run time can cause (SMC027)
    #: every event it may return; None for a user action, which may return any event.
    possible: frozenset[str] | None

    @classmethod
    def of(cls, action: Action) -> _ActionEvents:
        spec = BUILTIN_ACTIONS.get(action.type)
        emitted = emitted_events(action.type, action.params)
        all_failures = failure_events(action.type, action.params)
        possible = None
        if spec is not None:
            possible = frozenset(event for event, _kind in emitted) | frozenset(all_failures)
        return cls(
            emitted=emitted,
            claimed=claim_event(action.type, action.params),
            # The others fail only by raising on a bad parameter: that is SMC022's business.
            failures=all_failures if spec is not None and spec.fails_at_run_time else [],
            possible=possible,
        )

    def may_move_on(self, handled: set[str]) -> bool:
        """Whether the action may return an event its state has a transition on."""
        return self.possible is None or not self.possible.isdisjoint(handled)


def _has_way_out(
    returned: set[str], explicit: set[str], handled: set[str], sent: frozenset[str]
) -> bool:
    """Whether a machine idle in a state, its actions done, can still be moved on: by a timer,
    by an event another checked machine sends it, or by a transition written for this state
    (not ``from: "*"``) on an event none of the state's actions returns, which says the state
    waits for that event from outside. A ``from: "*"`` transition on an event nobody sends
    (``stop``) is an operator's way to end the worker, not a way back to work. ``returned``:
    the events the state's actions return."""
    return any(
        TIMEOUT_EVENT.match(event) or event in sent or (event in explicit and event not in returned)
        for event in handled
    )


def check_emitted_events(machine: Machine, context: Context) -> Iterator[Diagnostic]:
    """SMC022, SMC026, SMC027: an event an action returns with no transition in its state.

    Such an event goes on to the state's next action; after the last one the machine idles.
    SMC026 (error): a built-in claimed a job and no later action can move the machine on, so
    the job stays claimed by an idle worker. SMC027 (warning): a built-in failed, no later
    action can move the machine on, and nothing can from outside (see ``_has_way_out``), so
    the worker idles for ever. SMC022 (warning) covers the rest that nothing shows the author
    meant: an event the action returns by itself (``no_jobs``, ``wake_up``) or one written on
    the state's last action. An event written on an action followed by others is the "go on
    with the next action" idiom (the peer's ``pop_from_list success: has_job``) and is not
    reported."""
    finals = set(machine.final_states)
    handled_by_state = _handled_by_state(machine)
    explicit_by_state: dict[str, set[str]] = {}
    transition_lines: dict[str, int] = {}
    for t in machine.transitions:
        if not t.wildcard:
            explicit_by_state.setdefault(t.source, set()).add(t.event)
        transition_lines.setdefault(t.event, t.event_pos.line)
    sent = context.sent_to.get(machine.name, frozenset())
    declared = {e.name for e in machine.events if e.declared}
    # An event missing from `events:` is reported once, as SMC025, where first written (the
    # transitions come first); nothing more is said about it here.
    misspelt = {event for event, _pos, _close in _misspelt_events(machine, declared)}
    for state in machine.states:
        if state.name in finals or not state.actions:
            continue  # the machine stops after a final state's actions
        handled = handled_by_state.get(state.name, set())
        actions = state.actions
        events = [_ActionEvents.of(action) for action in actions]
        # moves_on_after[i]: some action after the i-th may fire a transition.
        moves_on_after = [False] * len(actions)
        for index in range(len(actions) - 2, -1, -1):
            moves_on_after[index] = moves_on_after[index + 1] or events[index + 1].may_move_on(
                handled
            )
        returned = {event for known in events for event, _kind in known.emitted}
        # Did-you-mean candidates: transitions on events no action of the state returns (one
        # an action returns is no misspelling).
        orphans = handled - returned
        way_out: bool | None = None  # computed when first needed

        last = len(actions) - 1
        for index, (action, known) in enumerate(zip(actions, events, strict=True)):
            candidates = list(known.emitted)
            seen = {event for event, _kind in candidates}
            candidates += [(event, "default") for event in known.failures if event not in seen]
            for event, kind in candidates:
                if event in handled or event in misspelt:
                    continue
                if event == known.claimed and not moves_on_after[index]:
                    yield _diag(
                        _event_param_pos(action, event),
                        "SMC026",
                        f"{action.type!r} in state {state.name!r} claims a job and returns "
                        f"{event!r}, but no transition leaves {state.name!r} on {event!r}: "
                        "the claimed job would stay claimed by a worker that waits for ever",
                        f"add a transition from {state.name!r} on {event!r} to the state that "
                        "processes the job"
                        + _suggest_fix(event, kind, orphans, misspelt, transition_lines),
                    )
                    continue
                if event in known.failures and not moves_on_after[index]:
                    if way_out is None:
                        way_out = _has_way_out(
                            returned, explicit_by_state.get(state.name, set()), handled, sent
                        )
                    if not way_out:
                        yield _diag(
                            _event_param_pos(action, event),
                            "SMC027",
                            f"{action.type!r} in state {state.name!r} returns {event!r} when "
                            f"it fails, but no transition leaves {state.name!r} on {event!r}, "
                            "and no timer or outside event can: the worker would wait for ever",
                            f"add a transition from {state.name!r} on {event!r} (to a state "
                            "that fails or retries the job)"
                            + _suggest_fix(event, kind, orphans, misspelt, transition_lines),
                        )
                        continue
                if kind == "default":
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
                    hint + _suggest_fix(event, kind, orphans, misspelt, transition_lines),
                )


def _suggest_fix(
    event: str, kind: str, orphans: set[str], misspelt: set[str], lines: Mapping[str, int]
) -> str:
    """The did-you-mean for an unhandled event, among ``orphans``: the state's transition
    events that none of its actions returns (one an action returns is no misspelling). When
    the author cannot have misspelt the action's event (a built-in's own: ``new_job``,
    ``error``) or the close match is itself a reported misspelling (SMC025), the fix is on
    the transition, and the hint says so."""
    close = _closest(event, list(orphans))
    if close is None:
        return ""
    if (kind != "explicit" or close in misspelt) and close in lines:
        return (
            f"; the transition on {close!r} at line {lines[close]} looks like a misspelling "
            f"of {event!r}"
        )
    return f"; did you mean {close!r}?"


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
    misspelt = _misspelt_events(machine, declared)
    # A declared event that a reported misspelling was meant to be is not reported unused as
    # well: it is the same mistake, and fixing the misspelling uses it.
    meant = {suggestion for _event, _pos, suggestion in misspelt if suggestion}
    undeclared_used = sorted(transition_events - declared)
    for event in machine.events:
        if event.declared and event.name not in used and event.name not in meant:
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
    for name, pos, suggestion in misspelt:
        yield _diag(
            pos,
            "SMC025",
            f"event {name!r} is not listed under `events:`",
            f"did you mean {suggestion!r}?" if suggestion else "add it to `events:`",
        )


def _misspelt_events(
    machine: Machine, declared: set[str]
) -> list[tuple[str, Position, str | None]]:
    """SMC025: events written in a machine that lists its events but missing from the list,
    each once, where first written (on a transition, or as an action's event parameter),
    with the declared event it looks like. Events are optional: a machine that lists none
    is not held to a list; ``timeout(N)`` needs no declaration; a built-in's default and
    fixed events are not written by the author and are not held to it either."""
    if not declared:
        return []
    found: dict[str, tuple[str, Position, str | None]] = {}

    def note(event: str, pos: Position) -> None:
        if event in declared or event in found or TIMEOUT_EVENT.match(event):
            return
        found[event] = (event, pos, _closest(event, sorted(declared)))

    for t in machine.transitions:
        if not t.synthesized:
            note(t.event, t.event_pos)
    for state in machine.states:
        for action in state.actions:
            for event, kind in emitted_events(action.type, action.params):
                if kind == "explicit":
                    note(event, _event_param_pos(action, event))
    return list(found.values())


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


def _declares_user_actions(machine: Machine) -> bool:
    data = machine.source_data
    return data.get("action_types") is not None or data.get("actions_root") is not None


def check_actions(machine: Machine, context: Context) -> Iterator[Diagnostic]:
    known_user = set(machine.user_action_types) | context.extra_action_types
    sources_known = context.user_actions_known or _declares_user_actions(machine)
    for state in machine.states:
        for action in state.actions:
            spec = BUILTIN_ACTIONS.get(action.type)
            if (
                spec is None
                and action.type not in known_user
                and action.type not in context.entry_point_types
            ):
                yield _unknown_action(action, state.name, known_user, sources_known)
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


def _unknown_action(
    action: Action, state: str, known_user: set[str], sources_known: bool
) -> Diagnostic:
    """SMC030 (error): ``smc run`` would refuse the type. SMC034 (warning): the type is not a
    misspelling and the checker was told of no place user actions come from, so it cannot
    tell; ``smc run`` refuses it unless a user action provides it."""
    removed = REMOVED_ACTIONS.get(action.type)
    close = None if removed else _closest(action.type, [*BUILTIN_ACTIONS, *known_user])
    message = f"unknown action type {action.type!r} in state {state!r}"
    if close is not None:
        return _diag(action.pos, "SMC030", message, f"did you mean {close!r}?")
    if sources_known:
        return _diag(
            action.pos,
            "SMC030",
            message,
            removed
            or "no built-in, declared type (`action_types:`), --actions-dir file or smc.actions "
            "entry point provides it",
        )
    return _diag(
        action.pos,
        "SMC034",
        f"action type {action.type!r} in state {state!r} is not built in; smc run refuses "
        "it unless a user action provides it",
        removed
        or "pass the directory of its user action with --actions-dir, or declare it under "
        "`action_types:`",
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
    machines: Sequence[Machine],
    extra_action_types: Iterable[str] = (),
    *,
    user_actions_known: bool = False,
) -> list[Diagnostic]:
    """Every check over ``machines``. ``extra_action_types`` are the user action types of the
    action directories; ``user_actions_known`` says those directories are all there is (some
    were given, or the caller is ``smc run``), so an unknown action type is an error."""
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
        user_actions_known=user_actions_known,
    )
    diagnostics = list(check_machine_names(machines))
    for machine in machines:
        for check in CHECKS:
            diagnostics.extend(check(machine, context))
    return diagnostics
