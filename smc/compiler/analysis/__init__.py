"""Semantic checks over the models of all the files checked together.

Each check is one function ``(machine, context) -> diagnostics``; ``analyse`` runs them all.
Codes and their one-line summaries live in ``diagnostics.CODES`` (and docs/diagnostics.md).
Every check is linear in the size of the machine (the benchmark in benchmarks/bench_check.py
holds it to that): per-state lookups go through dictionaries built once per machine.

The checks, by topic (:data:`CHECKS` gives their order, which is the order of the output):

- :mod:`~smc.compiler.analysis.structure`: states, transitions, groups, reachability;
- :mod:`~smc.compiler.analysis.chart`: a statechart's tree, targets, eventless cycles and
  reachability over configurations;
- :mod:`~smc.compiler.analysis.events`: events actions return unhandled, the ``events:`` list;
- :mod:`~smc.compiler.analysis.actions`: action types and a built-in's parameters;
- :mod:`~smc.compiler.analysis.links`: ``send_event`` between the machines checked together;
- :mod:`~smc.compiler.analysis.identifiers`: names that must become Python identifiers;
- :mod:`~smc.compiler.analysis.context`: what every check is given, and shared helpers.

:func:`analyse` and :data:`CHECKS` live here, so replacing ``analysis.CHECKS`` changes what
:func:`analyse` runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from smc.catalog import DEFAULT_SENT_EVENT
from smc.compiler.analysis.actions import check_actions
from smc.compiler.analysis.chart import (
    check_chart_reachability,
    check_eventless_cycles,
    check_targets,
    check_tree,
)
from smc.compiler.analysis.context import ENTRY_POINT_GROUP, Context, did_you_mean
from smc.compiler.analysis.events import check_declared_events, check_emitted_events
from smc.compiler.analysis.identifiers import check_identifiers, check_machine_names
from smc.compiler.analysis.links import check_send_event
from smc.compiler.analysis.structure import (
    check_groups,
    check_reachability,
    check_state_names,
    check_transitions,
)
from smc.compiler.diagnostics import Diagnostic
from smc.compiler.model import Machine

CHECKS: tuple[Callable[[Machine, Context], Iterable[Diagnostic]], ...] = (
    check_state_names,
    check_transitions,
    check_groups,
    check_reachability,
    check_tree,
    check_targets,
    check_chart_reachability,
    check_eventless_cycles,
    check_emitted_events,
    check_declared_events,
    check_actions,
    check_send_event,
    check_identifiers,
)


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
            for action in (*state.actions, *state.on_exit):
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


__all__ = [
    "CHECKS",
    "ENTRY_POINT_GROUP",
    "Context",
    "analyse",
    "check_actions",
    "check_chart_reachability",
    "check_declared_events",
    "check_emitted_events",
    "check_eventless_cycles",
    "check_groups",
    "check_identifiers",
    "check_machine_names",
    "check_reachability",
    "check_send_event",
    "check_state_names",
    "check_targets",
    "check_transitions",
    "check_tree",
    "did_you_mean",
]
