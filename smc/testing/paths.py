"""Deterministic event paths: replay one (:func:`run_path`), list the shortest path to every
state and through every transition (:func:`path_cases`, what ``smc paths`` and
``smc build --emit-tests`` generate tests from), and what a set of paths covers
(:func:`transitions_taken`, :func:`states_reached`).

A path is ``(event, state)`` steps from the start. For a flat machine the state is where the
step leads. For a statechart (a class with ``DISPATCH``) it is a state that must be active
after the step (``in_state``): the state view (``m.state``), or, after the last step of a
path to a state, that state; the whole configuration is checked against the class's own
dispatch table as well.

Runs in users' test suites: it must never import ``smc.compiler``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from smc.machine import ChartMachine, GeneratedMachine, is_chart, state_enum
from smc.testing.model import event_methods

#: One step of a path: the event, and the state expected after it.
Step = tuple[str, str]
#: ``(test id, steps)``: one generated path test.
PathCase = tuple[str, tuple[Step, ...]]


def run_path(
    machine: type[GeneratedMachine],
    steps: Iterable[tuple[str, str]],
    *,
    instance: Any = None,
) -> Any:
    """Fire each ``(event, expected state)`` step through the event's method and check the
    state after it; for execution-contract machines replay the path with ``transition`` too.
    For a statechart, the expected state must be active after the step, and the state view,
    the configuration and ``is_final`` must be those ``DISPATCH`` leads to.
    Returns the instance (a new one of ``machine`` unless given)."""
    steps = list(steps)
    methods = event_methods(machine)
    subject = machine() if instance is None else instance
    if is_chart(machine):
        _run_chart_path(machine, steps, subject, methods)
        return subject
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


def _run_chart_path(
    chart: type[ChartMachine],
    steps: Sequence[tuple[str, str]],
    subject: Any,
    methods: Mapping[str, str],
) -> None:
    # The model is the class's own table, followed from where the instance starts.
    situation: int = subject.situation
    for number, (event, expected) in enumerate(steps, start=1):
        before = str(subject.state)
        entry = chart.DISPATCH[situation].get(event)
        returned = getattr(subject, methods[event])()  # not accepted: IllegalTransition
        if entry is None:
            raise AssertionError(
                f"step {number}: {event!r} in {before!r} was accepted (went to "
                f"{str(returned)!r}), but DISPATCH does not accept it in situation {situation}"
            )
        situation = entry[0]
        view = str(chart.STATE_VIEWS[situation])
        configuration = sorted(str(s) for s in subject.configuration)
        assert subject.in_state(expected), (
            f"step {number}: {event!r} in {before!r}: {expected!r} is not active; the "
            f"configuration is {configuration}"
        )
        assert str(subject.state) == view == str(returned), (
            f"step {number}: {event!r} in {before!r} went to {str(subject.state)!r} "
            f"(returned {str(returned)!r}), DISPATCH leads to {view!r}"
        )
        expected_configuration = sorted(str(s) for s in chart.CONFIGURATIONS[situation])
        assert configuration == expected_configuration, (
            f"step {number}: {event!r} in {before!r}: the configuration is {configuration}, "
            f"DISPATCH leads to {expected_configuration}"
        )
        final = situation in chart.FINAL_SITUATIONS
        assert (
            bool(subject.is_final) == final
        ), f"step {number}: {event!r} in {before!r}: is_final should be {final}"


def transitions_taken(
    machine: type[GeneratedMachine], paths: Iterable[Iterable[tuple[str, str]]]
) -> set[tuple[str, str]]:
    """``(source, event)`` of every step of ``paths`` (``(event, state after)`` steps from
    the initial state): what a set of path tests covers of ``machine.TRANSITIONS``. For a
    statechart the source is the state view (``TRANSITIONS`` is an overview between state
    views), followed through ``DISPATCH``; a path stops at an event it does not accept."""
    taken: set[tuple[str, str]] = set()
    if is_chart(machine):
        for steps in paths:
            situation = 0
            for event, _state in steps:
                entry = machine.DISPATCH[situation].get(event)
                if entry is None:
                    break
                taken.add((str(machine.STATE_VIEWS[situation]), event))
                situation = entry[0]
        return taken
    for steps in paths:
        state = str(machine.INITIAL_STATE)
        for event, target in steps:
            taken.add((state, event))
            state = target
    return taken


def states_reached(
    machine: type[GeneratedMachine], paths: Iterable[Iterable[tuple[str, str]]]
) -> set[str]:
    """Every state active at the start or after some step of ``paths``. For a statechart:
    every state of the configurations ``DISPATCH`` leads through (compound and parallel
    states included; a path stops at an event it does not accept)."""
    if is_chart(machine):
        reached = {str(s) for s in machine.CONFIGURATIONS[0]}
        for steps in paths:
            situation = 0
            for event, _state in steps:
                entry = machine.DISPATCH[situation].get(event)
                if entry is None:
                    break
                situation = entry[0]
                reached.update(str(s) for s in machine.CONFIGURATIONS[situation])
        return reached
    reached = {str(machine.INITIAL_STATE)}
    for steps in paths:
        reached.update(state for _event, state in steps)
    return reached


def _described(steps: tuple[Step, ...]) -> str:
    return " -> ".join(event for event, _ in steps) if steps else "(initial state)"


def path_cases(
    machine: type[GeneratedMachine],
    routes: Mapping[Any, tuple[Any, str]],
    *,
    reaches: Mapping[str, int] | None = None,
    takes: Sequence[tuple[str, int, str | None, int]] | None = None,
) -> list[PathCase]:
    """``(id, steps)`` for the shortest path to every state and through every transition.

    ``routes`` is the breadth-first tree smc computed (``smc.compiler.paths``): reachable
    state -> (the state before it, the event from there), the initial state left out. The
    steps are ``(event, state after it)``; the ids read like ``"reaches finishing:
    initialized -> new_job -> job_done"``. Transitions from states not in the tree are left
    out: they are unreachable.

    For a statechart the tree is over situations (indexes of ``CONFIGURATIONS``; 0, after
    starting, left out), and two more tables say what to cover: ``reaches``, state -> the
    situation a path to it ends in; ``takes``, one ``(transition, situation, event, next
    situation)`` per written transition: the step that takes it (``event`` None: starting
    takes it). Ids read ``"reaches busy: go"`` and ``"takes go from idle to busy: go"``.
    """
    if is_chart(machine):
        if reaches is None or takes is None:
            raise TypeError("path_cases for a statechart needs reaches= and takes=")
        return _chart_cases(machine, routes, reaches, takes)
    initial = str(machine.INITIAL_STATE)
    steps_to: dict[str, tuple[Step, ...]] = {initial: ()}

    def steps_for(state: str) -> tuple[Step, ...]:
        chain: list[Step] = []
        current = state
        while current not in steps_to:
            previous, event = routes[current]
            chain.append((event, current))
            current = previous
            if len(chain) > len(routes):
                raise ValueError(f"the routes loop back to {state!r}")
        steps_to[state] = steps_to[current] + tuple(reversed(chain))
        return steps_to[state]

    cases: list[PathCase] = []
    for state in (str(s) for s in state_enum(machine)):
        if state == initial or state in routes:
            steps = steps_for(state)
            cases.append((f"reaches {state}: {_described(steps)}", steps))
    for source, event, target in ((str(s), str(e), str(t)) for s, e, t in machine.TRANSITIONS):
        if source == initial or source in routes:
            steps = (*steps_for(source), (event, target))
            cases.append((f"takes {event} from {source} to {target}: {_described(steps)}", steps))
    return cases


def _chart_cases(
    chart: type[ChartMachine],
    routes: Mapping[int, tuple[int, str]],
    reaches: Mapping[str, int],
    takes: Sequence[tuple[str, int, str | None, int]],
) -> list[PathCase]:
    steps_to: dict[int, tuple[Step, ...]] = {0: ()}

    def view(situation: int) -> str:
        return str(chart.STATE_VIEWS[situation])

    def steps_for(situation: int) -> tuple[Step, ...]:
        chain: list[Step] = []
        current = situation
        while current not in steps_to:
            previous, event = routes[current]
            chain.append((event, view(current)))
            current = previous
            if len(chain) > len(routes):
                raise ValueError(f"the routes loop back to situation {situation}")
        steps_to[situation] = steps_to[current] + tuple(reversed(chain))
        return steps_to[situation]

    cases: list[PathCase] = []
    for state, situation in reaches.items():
        steps = steps_for(situation)
        if steps:  # the last step checks the state reached, not only the state view
            steps = (*steps[:-1], (steps[-1][0], state))
        cases.append((f"reaches {state}: {_described(steps)}", steps))
    for transition, situation, event, following in takes:
        steps = steps_for(situation)
        if event is not None:
            steps = (*steps, (event, view(following)))
        cases.append((f"takes {transition}: {_described(steps)}", steps))
    return cases
