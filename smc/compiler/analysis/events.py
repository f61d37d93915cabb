"""Checks of events: what actions return that no transition handles (SMC022, SMC026, SMC027)
and the ``events:`` list (SMC023 to SMC025).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from smc.catalog import (
    BUILTIN_ACTIONS,
    EVENT_PARAMS,
    EmitKind,
    claim_event,
    emitted_events,
    failure_events,
)
from smc.compiler.analysis.context import Context, closest, diagnostic, did_you_mean
from smc.compiler.diagnostics import Diagnostic
from smc.compiler.model import SEND, TIMEOUT_EVENT, Action, Machine, Position, nested_actions

_TIMER_LIKE = re.compile(r"^\s*timeout\b", re.IGNORECASE)


def _handled_by_state(machine: Machine) -> dict[str, set[str]]:
    """State -> the events some transition accepts in it. Taken from the transitions as
    written, so one whose target is unknown (SMC010, already reported) still counts: the
    transition exists, it is its target that is wrong. One whose source is unknown counts for
    the state SMC010's "did you mean" names: ``from: waitng`` also said that no transition
    left ``waiting`` on its event (SMC026), sending the author to add the one they had."""
    handled: dict[str, set[str]] = {state: set() for state in machine.state_names}
    names = sorted(handled)
    wildcard_events: set[str] = set()
    for t in machine.transitions:
        if t.event is None:
            continue
        if t.wildcard:
            wildcard_events.add(t.event)
        elif t.source in handled:
            handled[t.source].add(t.event)
        elif (meant := closest(t.source, names)) is not None:
            handled[meant].add(t.event)
    if wildcard_events:
        finals = set(machine.final_states)
        for source in machine.wildcard_sources:
            if source.name not in finals:
                handled[source.name] |= wildcard_events
    if machine.is_chart:
        return _handled_in_chart(machine, handled)
    return handled


def _handled_in_chart(machine: Machine, own: dict[str, set[str]]) -> dict[str, set[str]]:
    """In a statechart an event is handled while a state is active by the transitions of
    the state, of its ancestors, and (the state's entry actions run before its children
    are entered) of its descendants."""
    handled: dict[str, set[str]] = {}
    for state in machine.states:
        events = set(own[state.name])
        for other in (*machine.ancestors(state.name), *machine.descendants(state.name)):
            events |= own.get(other, set())
        handled[state.name] = events
    return handled


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
        if t.event is None:
            continue
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
                    yield diagnostic(
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
                        yield diagnostic(
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
                yield diagnostic(
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
    close = closest(event, list(orphans))
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
        for action in (*state.actions, *state.on_exit)
        for event, _kind in emitted_events(action.type, action.params)
    }
    transition_events = {t.event for t in machine.transitions if t.event is not None}
    used = (
        transition_events
        | emitted
        | raised_events(machine)
        | context.sent_to.get(machine.name, frozenset())
    )
    declared = {e.name for e in machine.events if e.declared}
    misspelt = _misspelt_events(machine, declared)
    # A declared event that a reported misspelling was meant to be is not reported unused as
    # well: it is the same mistake, and fixing the misspelling uses it.
    meant = {suggestion for _event, _pos, suggestion in misspelt if suggestion}
    undeclared_used = sorted(transition_events - declared)
    for event in machine.events:
        if event.declared and event.name not in used and event.name not in meant:
            yield diagnostic(
                event.pos,
                "SMC023",
                f"event {event.name!r} is declared but no transition or action uses it",
                did_you_mean(event.name, undeclared_used)
                or "remove it, or add the transition it was meant for",
            )
        if event.timeout is None and _TIMER_LIKE.match(event.name) and "(" in event.name:
            yield diagnostic(
                event.pos,
                "SMC024",
                f"event {event.name!r} looks like a timer but is not `timeout(N)`, so "
                "it never fires by itself",
                "write it as timeout(5) or timeout(0.5): seconds, no spaces or units",
            )
    for name, pos, suggestion in misspelt:
        yield diagnostic(
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
        found[event] = (event, pos, closest(event, sorted(declared)))

    for t in machine.transitions:
        if not t.synthesized and t.event is not None:
            note(t.event, t.event_pos)
    for state in machine.states:
        for action in (*state.actions, *state.on_exit):
            for event, kind in emitted_events(action.type, action.params):
                if kind == "explicit":
                    note(event, _event_param_pos(action, event))
    for action in _all_actions(machine):
        raised = action.params.get("event")
        if action.type == "raise" and isinstance(raised, str):
            note(raised, action.param_pos.get("event", action.pos))
    return list(found.values())


def _all_actions(machine: Machine) -> Iterator[Action]:
    """Every action of states and transitions, inside ``if`` blocks too."""
    for state in machine.states:
        yield from nested_actions(state.written_actions)
    for transition in machine.transitions:
        yield from nested_actions(transition.actions)


def raised_events(machine: Machine) -> set[str]:
    """The events ``raise`` and ``send`` actions queue (on entry, on exit, on a transition,
    inside ``if`` blocks)."""
    return {
        str(action.params["event"])
        for action in _all_actions(machine)
        if action.type in ("raise", SEND) and isinstance(action.params.get("event"), str)
    }


def _event_param_pos(action: Action, event: str) -> Position:
    for param in (*EVENT_PARAMS, "error_mappings"):
        value = action.params.get(param)
        if value == event or (isinstance(value, dict) and event in value.values()):
            return action.param_pos.get(param, action.pos)
    return action.pos
