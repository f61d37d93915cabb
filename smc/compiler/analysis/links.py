"""Checks of the links between machines checked together: a ``send_event`` names a machine
among them and an event it has a transition on (SMC040, SMC041), with a payload the target's
schema of that event accepts (SMC084).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from smc.catalog import DEFAULT_SENT_EVENT
from smc.compiler.analysis.context import Context, diagnostic, did_you_mean
from smc.compiler.diagnostics import Diagnostic
from smc.compiler.model import Action, Event, Machine
from smc.runtime.context import PLACEHOLDER


def check_send_event(machine: Machine, context: Context) -> Iterator[Diagnostic]:
    for state in machine.states:
        for action in (*state.actions, *state.on_exit):
            if action.type != "send_event":
                continue
            target = action.params.get("target_machine")
            if not isinstance(target, str) or "{" in target:
                continue  # a computed target is checked at run time
            pos = action.param_pos.get("target_machine", action.pos)
            other = context.machines.get(target)
            if other is None:
                yield diagnostic(
                    pos,
                    "SMC040",
                    f"send_event targets machine {target!r}, which is not among the "
                    "checked files",
                    # not the sender itself: its own name is never what a typo of a peer's
                    # was meant to be (a worker checked alone got "did you mean" itself)
                    did_you_mean(
                        target, [name for name in context.machines if name != machine.name]
                    )
                    or "check it together with the target machine's file, or fix the name",
                )
                continue
            event = str(action.params.get("event_type", DEFAULT_SENT_EVENT))
            if "{" in event:
                continue  # a computed event is checked at run time
            declared = next((e for e in other.events if e.name == event), None)
            if declared is not None and declared.payload_schema is not None:
                yield from _check_payload(action, target, declared)
            if event not in {t.event for t in other.transitions}:
                yield diagnostic(
                    action.param_pos.get("event_type", pos),
                    "SMC041",
                    f"send_event sends {event!r} to {target!r}, which has no transition "
                    f"on {event!r}: the event would be dropped",
                    did_you_mean(event, other.event_names)
                    or f"add a transition on {event!r} to {target!r}",
                )


#: Errors about a mapping's keys, which a payload written in the file shows whatever its
#: placeholders hold.
_KEY_VALIDATORS = frozenset(
    {"required", "additionalProperties", "propertyNames", "dependentRequired", "minProperties"}
)


def _computed(value: Any) -> bool:
    """Whether ``value`` holds a placeholder anywhere (known only at run time)."""
    if isinstance(value, str):
        return PLACEHOLDER.search(value) is not None
    if isinstance(value, dict):
        return any(_computed(item) for item in value.values())
    if isinstance(value, list):
        return any(_computed(item) for item in value)
    return False


def _check_payload(action: Action, target: str, event: Event) -> Iterator[Diagnostic]:
    """The ``payload`` a ``send_event`` writes against the target event's schema: what its
    placeholders will hold is left to the receiving worker, which checks the whole payload."""
    import jsonschema
    from referencing import Registry
    from referencing.exceptions import Unresolvable

    from smc.compiler.plan import plain_data

    assert event.payload_schema is not None
    written = action.params.get("payload")
    payload = {} if written is None else plain_data(written)
    if isinstance(payload, str) and PLACEHOLDER.fullmatch(payload):
        return  # the whole payload is computed
    validator = jsonschema.Draft202012Validator(event.payload_schema, registry=Registry())
    try:
        errors = [
            error
            for error in validator.iter_errors(payload)
            if error.validator in _KEY_VALIDATORS or not _computed(error.instance)
        ]
    except Unresolvable:  # a reference SMC080 reports in the target's file
        return
    error = jsonschema.exceptions.best_match(errors)
    if error is None:
        return
    where = "payload" + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
    )
    message = " ".join(error.message.split())
    yield diagnostic(
        action.param_pos.get("payload", action.pos),
        "SMC084",
        f"send_event's payload for {event.name!r} does not match the schema {target!r} "
        f"declares for it: {where}: {message[:200]}",
        "the receiving worker would dead-letter the event: fix the payload or the schema",
    )
