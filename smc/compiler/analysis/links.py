"""Checks of the links between machines checked together: a ``send_event`` names a machine
among them and an event it has a transition on (SMC040, SMC041).
"""

from __future__ import annotations

from collections.abc import Iterator

from smc.catalog import DEFAULT_SENT_EVENT
from smc.compiler.analysis.context import Context, diagnostic, did_you_mean
from smc.compiler.diagnostics import Diagnostic
from smc.compiler.model import Machine


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
                    did_you_mean(target, context.machines)
                    or "check it together with the target machine's file, or fix the name",
                )
                continue
            event = str(action.params.get("event_type", DEFAULT_SENT_EVENT))
            if "{" in event:
                continue  # a computed event is checked at run time
            if event not in {t.event for t in other.transitions}:
                yield diagnostic(
                    action.param_pos.get("event_type", pos),
                    "SMC041",
                    f"send_event sends {event!r} to {target!r}, which has no transition "
                    f"on {event!r}: the event would be dropped",
                    did_you_mean(event, other.event_names)
                    or f"add a transition on {event!r} to {target!r}",
                )
