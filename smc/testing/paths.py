"""Deterministic event paths: replay one (:func:`run_path`), list the shortest path to every
state and through every transition (:func:`path_cases`, what ``smc paths`` and
``smc build --emit-tests`` generate tests from), and what a set of paths covers
(:func:`transitions_taken`).

Runs in users' test suites: it must never import ``smc.compiler``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from smc.machine import GeneratedMachine, state_enum
from smc.testing.model import event_methods


def run_path(
    machine: type[GeneratedMachine],
    steps: Iterable[tuple[str, str]],
    *,
    instance: Any = None,
) -> Any:
    """Fire each ``(event, expected state)`` step through the event's method and check the
    state after it; for execution-contract machines replay the path with ``transition`` too.
    Returns the instance (a new one of ``machine`` unless given)."""
    steps = list(steps)
    methods = event_methods(machine)
    subject = machine() if instance is None else instance
    for number, (event, expected) in enumerate(steps, start=1):
        before = str(subject.state)
        returned = getattr(subject, methods[event])()
        assert str(subject.state) == expected == str(returned), (
            f"step {number}: {event!r} in {before!r} went to {str(subject.state)!r}, "
            f"expected {expected!r}"
        )
    if instance is None and callable(getattr(machine, "transition", None)):
        # execution-contract classes only: transition() is not in GeneratedMachine
        replay: Any = machine()
        for number, (_event, expected) in enumerate(steps, start=1):
            before = str(replay.state)
            replay.transition(expected)
            assert str(replay.state) == expected, (
                f"step {number}: transition({expected!r}) in {before!r} went to "
                f"{str(replay.state)!r}"
            )
    return subject


def transitions_taken(
    machine: type[GeneratedMachine], paths: Iterable[Iterable[tuple[str, str]]]
) -> set[tuple[str, str]]:
    """``(source, event)`` of every step of ``paths`` (``(event, state after)`` steps from
    the initial state): what a set of path tests covers of ``machine.TRANSITIONS``."""
    taken: set[tuple[str, str]] = set()
    for steps in paths:
        state = str(machine.INITIAL_STATE)
        for event, target in steps:
            taken.add((state, event))
            state = target
    return taken


def path_cases(
    machine: type[GeneratedMachine], routes: Mapping[str, tuple[str, str]]
) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """``(id, steps)`` for the shortest path to every state and through every transition.

    ``routes`` is the breadth-first tree smc computed (``smc.compiler.paths``): reachable
    state -> (the state before it, the event from there), the initial state left out. The
    steps are ``(event, state after it)``; the ids read like ``"reaches finishing:
    initialized -> new_job -> job_done"``. Transitions from states not in the tree are left
    out: they are unreachable.
    """
    initial = str(machine.INITIAL_STATE)
    steps_to: dict[str, tuple[tuple[str, str], ...]] = {initial: ()}

    def steps_for(state: str) -> tuple[tuple[str, str], ...]:
        chain: list[tuple[str, str]] = []
        current = state
        while current not in steps_to:
            previous, event = routes[current]
            chain.append((event, current))
            current = previous
            if len(chain) > len(routes):
                raise ValueError(f"the routes loop back to {state!r}")
        steps_to[state] = steps_to[current] + tuple(reversed(chain))
        return steps_to[state]

    def described(steps: tuple[tuple[str, str], ...]) -> str:
        return " -> ".join(event for event, _ in steps) if steps else "(initial state)"

    cases: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for state in (str(s) for s in state_enum(machine)):
        if state == initial or state in routes:
            steps = steps_for(state)
            cases.append((f"reaches {state}: {described(steps)}", steps))
    for source, event, target in ((str(s), str(e), str(t)) for s, e, t in machine.TRANSITIONS):
        if source == initial or source in routes:
            steps = (*steps_for(source), (event, target))
            cases.append((f"takes {event} from {source} to {target}: {described(steps)}", steps))
    return cases
