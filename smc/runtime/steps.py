"""One view of flat machines and statecharts for the engine: what each event does, as steps.

A :class:`Step` is what starting the machine or firing one event does: the states it left
(their timers stop), the states it entered (their timers start) and the actions to run, in
order. The engine runs both kinds of generated class through this view alone:

- **flat**: the initial step enters ``INITIAL_STATE``; firing ``e`` from ``s`` to ``t`` exits
  ``s`` and enters ``t`` and runs ``t``'s actions (``STATE_ACTIONS[t]``); a self-transition
  exits and re-enters its state;
- **statechart**: a step is one of the class's ``STEPS`` (the whole macrostep, with eventless,
  raised and ``done.state`` transitions already resolved at compile time), or several in a
  row where guards decided (the class's ``fire_steps`` says which it took). Its actions
  are, move by move: ``("exit", s)`` runs ``s``'s on-exit actions, ``("entry", s)`` its
  on-entry ones; ``("on", e)`` runs nothing (transitions carry no actions). ``raise`` items
  are not actions: the action registry leaves them out of what it prepares.

A state exited and entered again within one step (a self-transition, a transition out of and
back into a compound) is in both ``exited`` and ``entered``: its timers restart. A state
entered and exited within the step (an eventless transition passing through it) is in
neither: it was never active between two events.

Never imports the compiler: it reads the generated class's data only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from smc.machine import ChartMachine, GeneratedMachine, is_chart

#: What the engine runs (its prepared actions); any value to this module.
A = TypeVar("A")


@dataclass(frozen=True, slots=True)
class Step(Generic[A]):
    """What starting the machine or firing one event does."""

    #: States left, in the order they were first left (their timers stop).
    exited: tuple[str, ...]
    #: States entered and still active at the end, in the order they were last entered
    #: (their timers start).
    entered: tuple[str, ...]
    #: The actions to run, in order.
    actions: tuple[A, ...]


class MachineSteps(ABC, Generic[A]):
    """The steps of one machine class; :func:`machine_steps` picks the flat or chart view.

    ``entry_actions`` / ``exit_actions``: state name -> its actions, in order (the engine's
    prepared on-entry and on-exit actions)."""

    @abstractmethod
    def initial(self, machine: GeneratedMachine) -> Step[A]:
        """The step of starting: entering ``machine``'s initial state(s)."""

    @abstractmethod
    def fire(self, machine: GeneratedMachine, event: str, payload: Any = None) -> Step[A]:
        """Fire ``event`` on ``machine`` and return what it did
        (:class:`smc.IllegalTransition` when it is not accepted, nothing changed).
        ``payload``: given to a class with payload schemas (its ``fire(event, payload)``;
        ``machine.payload``), None for any other."""

    @abstractmethod
    def position(self, machine: GeneratedMachine) -> object:
        """Where ``machine`` is: equal before and after a step that changed nothing visible
        (a self-transition)."""

    @abstractmethod
    def configuration(self, machine: GeneratedMachine) -> list[str] | None:
        """Every active state, sorted (None for a flat machine: its state says it all)."""


class FlatSteps(MachineSteps[A]):
    def __init__(self, entry_actions: Mapping[str, tuple[A, ...]]) -> None:
        self._entry = entry_actions
        # (source, target) -> its step: a flat machine has few, and a worker fires the same
        # ones over and over.
        self._cache: dict[tuple[str, str], Step[A]] = {}

    def initial(self, machine: GeneratedMachine) -> Step[A]:
        state = str(machine.state)
        return Step((), (state,), self._entry.get(state, ()))

    def fire(self, machine: GeneratedMachine, event: str, payload: Any = None) -> Step[A]:
        source = machine.state
        target = _fire(machine, event, payload)
        key = (source, target)
        step = self._cache.get(key)
        if step is None:
            name = str(target)
            step = self._cache[key] = Step((str(source),), (name,), self._entry.get(name, ()))
        return step

    def position(self, machine: GeneratedMachine) -> object:
        return machine.state

    def configuration(self, machine: GeneratedMachine) -> list[str] | None:
        return None


class ChartSteps(MachineSteps[A]):
    def __init__(
        self,
        machine_cls: type[GeneratedMachine],
        entry_actions: Mapping[str, tuple[A, ...]],
        exit_actions: Mapping[str, tuple[A, ...]],
    ) -> None:
        """``machine_cls``: a statechart class (``smc.machine.is_chart``)."""
        chart_cls = cast(type[ChartMachine], machine_cls)
        self._moves = chart_cls.STEPS
        self._entry = entry_actions
        self._exit = exit_actions
        # steps taken -> their Step, built on first use (a big chart has many steps, a
        # worker takes a few of them over and over).
        self._cache: dict[tuple[int, ...], Step[A]] = {}

    def initial(self, machine: GeneratedMachine) -> Step[A]:
        return self._steps(cast(ChartMachine, machine).initial_steps)

    def fire(self, machine: GeneratedMachine, event: str, payload: Any = None) -> Step[A]:
        # A guarded event's steps are known only once its guards ran: the class says which
        # it took (IllegalTransition when none is enabled).
        return self._steps(cast(ChartMachine, machine).fire_steps(event, payload))

    def position(self, machine: GeneratedMachine) -> object:
        return cast(ChartMachine, machine).situation

    def configuration(self, machine: GeneratedMachine) -> list[str] | None:
        return sorted(str(state) for state in cast(ChartMachine, machine).configuration)

    def _steps(self, indices: tuple[int, ...]) -> Step[A]:
        """The one :class:`Step` of ``indices`` taken in a row (a guarded eventless loop
        takes several)."""
        step = self._cache.get(indices)
        if step is None:
            moves = tuple(move for index in indices for move in self._moves[index])
            step = chart_step(moves, self._entry, self._exit)
            if len(indices) == 1:  # a loop's runs are as many as the data makes them
                self._cache[indices] = step
        return step


def _fire(machine: GeneratedMachine, event: str, payload: Any) -> Any:
    # Only a class with payload schemas has fire(event, payload) (docs/generated-code.md).
    if payload is None:
        return machine.fire(event)
    return cast(Any, machine).fire(event, payload)


def chart_step(
    moves: tuple[tuple[str, str], ...],
    entry_actions: Mapping[str, tuple[A, ...]],
    exit_actions: Mapping[str, tuple[A, ...]],
) -> Step[A]:
    """The :class:`Step` of one ``STEPS`` entry (see the module docstring)."""
    actions: list[A] = []
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for index, (kind, name) in enumerate(moves):
        if kind == "exit":
            actions.extend(exit_actions.get(name, ()))
        elif kind == "entry":
            actions.extend(entry_actions.get(name, ()))
        else:
            continue  # ("on", event): names an event, not a state
        first.setdefault(name, index)
        last[name] = index
    exited = tuple(
        name for index, (kind, name) in enumerate(moves) if kind == "exit" and first[name] == index
    )
    entered = tuple(
        name for index, (kind, name) in enumerate(moves) if kind == "entry" and last[name] == index
    )
    return Step(exited, entered, tuple(actions))


def machine_steps(
    machine_cls: type[GeneratedMachine],
    entry_actions: Mapping[str, tuple[A, ...]],
    exit_actions: Mapping[str, tuple[A, ...]] | None = None,
) -> MachineSteps[A]:
    """The steps of ``machine_cls``: the chart view for a statechart class, else the flat one
    (which has no on-exit actions)."""
    if is_chart(machine_cls):
        return ChartSteps(machine_cls, entry_actions, exit_actions or {})
    return FlatSteps(entry_actions)


__all__ = ["ChartSteps", "FlatSteps", "MachineSteps", "Step", "chart_step", "machine_steps"]
