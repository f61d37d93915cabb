"""Compile-time resolution of a chart into a dispatch table, the point of smc: the hierarchy,
the entry/exit order, history, eventless transitions and raised events are all worked out
here, once, so a generated machine handles an event with one dict lookup.

Starting from the initial macrostep, every reachable stable *situation* (configuration plus
the history memory that can still matter, see ``relevant_histories``) is explored under
every external event, breadth first, events in the chart's order, so the numbering is
deterministic: situation 0 is the initial one. The table
is plain data (ints, strings, tuples, dicts) ready to be written into generated code::

    next_situation, actions = table.dispatch[situation][event]   # KeyError: not accepted

``actions`` are ``(kind, owner, position)`` tuples (``ActionRef`` without its class) in SCXML
order. Raise actions are left out: their effect (the transitions they trigger) is already
resolved into the table, so nothing is left to run for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .chart import ActionRef, Chart, StatechartError, raised_event
from .semantics import DEFAULT_MAX_MICROSTEPS, Interpreter, Move, Situation

#: A chart with more reachable situations than this is refused rather than compiled into a
#: table too large to emit (several parallel regions with deep history multiply quickly).
DEFAULT_MAX_SITUATIONS = 10_000

#: The actions a table entry runs, as plain tuples: (kind, owner, position).
TableActions = tuple[tuple[str, str | int, int], ...]


class TooManySituations(StatechartError):
    """The chart reaches more situations than the limit allows."""


@dataclass(frozen=True)
class DispatchTable:
    """Situations are numbered 0..n-1 (0 is where the machine is after starting).
    ``configurations[i]`` are the active states of situation i in document order (compound
    and parallel ancestors included, no history pseudo-states); ``histories[i]`` its history
    memory (history name, remembered states) for the ``relevant_histories``; ``final[i]``
    whether a top-level final state was reached (no event is accepted then).
    ``dispatch[i]`` maps every event accepted in situation i to (next situation, actions);
    an event absent from it is not accepted. ``moves[i][event]`` is what that entry does,
    in order (``Macrostep.moves``: states exited and entered, transitions taken), and
    ``initial_moves`` what starting does: the generated code's hooks and the runtime's
    timers follow them."""

    chart_name: str
    events: tuple[str, ...]
    initial: int
    initial_actions: TableActions
    configurations: tuple[tuple[str, ...], ...]
    histories: tuple[tuple[tuple[str, tuple[str, ...]], ...], ...]
    final: tuple[bool, ...]
    dispatch: tuple[Mapping[str, tuple[int, TableActions]], ...]
    initial_moves: tuple[Move, ...] = ()
    moves: tuple[Mapping[str, tuple[Move, ...]], ...] = ()

    @property
    def size(self) -> int:
        return len(self.configurations)

    def step(self, situation: int, event: str) -> tuple[int, TableActions] | None:
        """(next situation, actions), or None when the event is not accepted."""
        return self.dispatch[situation].get(event)


def build_table(
    chart: Chart,
    *,
    events: Sequence[str] | None = None,
    max_situations: int = DEFAULT_MAX_SITUATIONS,
    max_microsteps: int = DEFAULT_MAX_MICROSTEPS,
) -> DispatchTable:
    """Explore the chart (under ``events``, default: ``chart.external_events()``).

    Raises ``TooManySituations`` past ``max_situations`` and ``UnsettledMacrostep`` when a
    macrostep does not settle within ``max_microsteps``."""
    alphabet = tuple(chart.external_events() if events is None else events)
    interpreter = Interpreter(chart, max_microsteps=max_microsteps)
    relevant = relevant_histories(chart)

    def settled() -> Situation:
        reached = interpreter.situation()
        if reached.finished:  # nothing happens any more: the memory is moot
            return reached._replace(history=())
        return reached._replace(history=tuple(h for h in reached.history if h[0] in relevant))

    start = interpreter.start()
    numbering: dict[Situation, int] = {settled(): 0}
    situations: list[Situation] = [settled()]
    dispatch: list[dict[str, tuple[int, TableActions]]] = []
    moves: list[dict[str, tuple[Move, ...]]] = []
    position = {s.name: i for i, s in enumerate(chart.states)}

    for situation in situations:  # grows while it is walked: breadth first
        row: dict[str, tuple[int, TableActions]] = {}
        row_moves: dict[str, tuple[Move, ...]] = {}
        if not situation.finished:
            for event in alphabet:
                interpreter.restore(situation)
                step = interpreter.send(event)
                if not step.accepted:
                    continue
                reached = settled()
                number = numbering.get(reached)
                if number is None:
                    if len(situations) >= max_situations:
                        raise TooManySituations(
                            f"{chart.describe()} reaches more than {max_situations} "
                            "situations (configurations and history memories); split it or "
                            "lower its parallelism or deep history"
                        )
                    number = numbering[reached] = len(situations)
                    situations.append(reached)
                row[event] = (number, _plain(chart, step.actions))
                row_moves[event] = step.moves
        dispatch.append(row)
        moves.append(row_moves)

    return DispatchTable(
        chart_name=chart.name,
        events=alphabet,
        initial=0,
        initial_actions=_plain(chart, start.actions),
        configurations=tuple(
            tuple(sorted(s.configuration, key=position.__getitem__)) for s in situations
        ),
        histories=tuple(s.history for s in situations),
        final=tuple(s.finished for s in situations),
        dispatch=tuple(dispatch),
        initial_moves=start.moves,
        moves=tuple(moves),
    )


def relevant_histories(chart: Chart) -> frozenset[str]:
    """The history states whose memory can change what happens: those a transition or a
    history default targets. What the others remember is never read, and keeping it in
    the situations would multiply them for nothing."""
    targets = {t for transition in chart.transitions for t in transition.targets}
    targets.update(t for state in chart.states for t in state.default)
    return frozenset(t for t in targets if chart.state(t).kind == "history")


def _plain(chart: Chart, actions: Iterable[ActionRef]) -> TableActions:
    return tuple(
        (ref.kind, ref.owner, ref.position)
        for ref in actions
        if raised_event(chart.action(ref)) is None
    )
