"""What a generated machine class says of itself, read the same way by the random walks
(:class:`~smc.testing.machine_test.MachineTest`) and the path replays
(:mod:`smc.testing.paths`): each event's method, and the transition table as a dict (for a
statechart, its dispatch table of situations).

Runs in users' test suites: it must never import ``smc.compiler``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from smc.machine import ChartMachine, GeneratedMachine, event_enum

_NON_WORD = re.compile(r"\W+")


def _fallback_method_name(event: str) -> str:
    # Only for classes generated before EVENT_METHODS existed; the compiler's own naming
    # (smc.compiler.names) cannot be imported here.
    ident = _NON_WORD.sub("_", event).strip("_").lower() or "event"
    return ident if ident.isidentifier() else f"n_{ident}"


def event_methods(machine: type[GeneratedMachine]) -> dict[str, str]:
    """Event name -> the name of the generated method that fires it."""
    declared: Mapping[Any, str] | None = getattr(machine, "EVENT_METHODS", None)
    if declared is not None:
        return {str(event): name for event, name in declared.items()}
    return {str(event): _fallback_method_name(str(event)) for event in event_enum(machine)}


def transition_model(machine: type[GeneratedMachine]) -> dict[tuple[str, str], str]:
    """``(state, event) -> target`` from the class's ``TRANSITIONS`` (the first entry wins)."""
    model: dict[tuple[str, str], str] = {}
    for source, event, target in machine.TRANSITIONS:
        model.setdefault((str(source), str(event)), str(target))
    return model


def situation_model(chart: type[ChartMachine]) -> dict[tuple[int, str], int]:
    """``(situation, event) -> next situation`` from a statechart class's ``DISPATCH``.

    A situation (an index of ``CONFIGURATIONS``) is what the chart remembers between two
    events: its active states and the history that can still matter, so two situations may
    show the same configuration. Within a situation the events keep ``DISPATCH``'s order,
    the order ``allowed_events()`` answers in."""
    return {
        (situation, str(event)): entry[0]
        for situation, row in enumerate(chart.DISPATCH)
        for event, entry in row.items()
    }
