"""A checked ``model.Machine`` as a ``statechart.Chart``: the wiring between the model and the
semantic core (which imports nothing of the compiler).

What the model leaves implicit is made explicit here, as the machine means it:

- a top-level state with no way out is final (``Machine.final_states``);
- ``from: "*"`` becomes one transition from every non-final atomic state, at the wildcard's
  place in file order (each source's own transitions keep their order);
- of several targets nested in one another only the innermost count (``_deepest``);
- a history state without ``to:`` defaults to its parent's initial child (every region of
  a parallel parent);
- a state's on-entry actions are its ``on_entry``, then ``actions: {state: [...]}``
  (``State.on_entry``); actions are the plain data the generated code holds.
"""

from __future__ import annotations

from smc.compiler.model import Machine
from smc.compiler.model import State as ModelState
from smc.compiler.model import Transition as ModelTransition
from smc.compiler.statechart import Chart, State, Transition


def _deepest(machine: Machine, targets: tuple[str, ...]) -> tuple[str, ...]:
    """The targets without those that enclose another one: ``to: [r1, x]`` with x inside r1
    means x (r1 is entered as its ancestor). SCXML would also enter r1's initial child."""
    return tuple(
        t for t in targets if not any(t in machine.ancestors(other) for other in targets)
    )


def chart_transition_origins(machine: Machine) -> tuple[ModelTransition, ...]:
    """The written transition behind each of ``machine_chart(machine).transitions`` (a
    ``from: "*"`` stands behind several), by document order."""
    finals = set(machine.final_states)
    wildcard_sources = [s for s in machine.wildcard_sources if s.name not in finals]
    origins: list[ModelTransition] = []
    for written in sorted(machine.transitions, key=lambda t: t.index):
        origins.extend([written] * (len(wildcard_sources) if written.wildcard else 1))
    return tuple(origins)


def machine_chart(machine: Machine) -> Chart:
    """The chart of a machine that checked without errors (flat or not)."""
    finals = set(machine.final_states)
    states: list[State] = []

    def add(state: ModelState) -> None:
        kind = "final" if state.name in finals and state.kind == "atomic" else state.kind
        default = state.history_default
        if state.kind == "history" and not default and state.parent is not None:
            # no ``to:``: the parent's initial child, or every region of a parallel parent
            # (docs/language.md, Statecharts)
            parent = machine.state(state.parent)
            if parent.initial is not None:
                default = (parent.initial,)
            else:
                default = tuple(c for c in parent.children if machine.state(c).kind != "history")
        states.append(
            State(
                name=state.name,
                kind=kind,
                parent=state.parent,
                children=state.children,
                initial=state.initial,
                on_entry=tuple(action.as_data() for action in state.on_entry),
                on_exit=tuple(action.as_data() for action in state.on_exit),
                history_type=state.history,
                default=default,
            )
        )
        for child in state.children:
            add(machine.state(child))

    for name in machine.top_states:
        add(machine.state(name))

    wildcard_sources = [s.name for s in machine.wildcard_sources if s.name not in finals]
    transitions: list[Transition] = []
    for written in sorted(machine.transitions, key=lambda t: t.index):
        sources = wildcard_sources if written.wildcard else [written.source]
        for source in sources:
            transitions.append(
                Transition(
                    source=source,
                    targets=_deepest(machine, written.targets or (written.target,)),
                    event=written.event,
                    type="internal" if written.internal else "external",
                    order=len(transitions),
                )
            )
    return Chart(
        states=tuple(states),
        transitions=tuple(transitions),
        initial=(machine.initial_state,),
        name=machine.name,
    )


__all__ = ["chart_transition_origins", "machine_chart"]
