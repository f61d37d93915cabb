"""python-statemachine 3.2 as the other side of the differential tests (no tests here): the
tests run a chart exported as SCXML (``smc.compiler.statechart.to_scxml``, what ``smc export``
writes) in python-statemachine and compare it with smc, step by step.

Where python-statemachine departs from the W3C algorithm (docs/language.md, Statecharts,
"Where python-statemachine 3.2 differs"), the charts and steps are left out of the comparison:
constructs by ``shared_constructs``, steps by ``WatchingInterpreter`` (smc's interpreter noting
them; ``our_steps`` stops before the first) and ``psm_orders_like_the_document`` (whether the
actions of one step can be compared as a sequence). The W3C behaviour in each case is tested by
hand in tests/compiler/test_statechart_semantics.py.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Iterator
from typing import Any

from statemachine.io import load

from smc.compiler.statechart import (
    Chart,
    Interpreter,
    Transition,
    chart_from_dict,
    raised_event,
)
from smc.compiler.statechart.semantics import ROOT

#: Configuration (state names), action labels in the order they ran, and whether the machine
#: has stopped, after one step.
Step = tuple[frozenset[str], list[str], bool]


def shared_constructs(document: dict[str, Any]) -> dict[str, Any]:
    """The document without the constructs where python-statemachine 3.2 departs from the
    W3C algorithm (our interpreter follows the W3C):

    - it runs no on_exit of a top-level final state when the machine stops (W3C's
      exitInterpreter does): those actions are dropped;
    - it refuses type="internal" when a target is not the source or its descendant, and an
      internal self-transition of an atomic state runs its on_entry without its on_exit
      (W3C: both act as external transitions): those become external;
    - it runs the actions of a transition to a history state twice: those are dropped.
    """
    document = copy.deepcopy(document)
    chart = chart_from_dict(document)
    for item in _items(document["states"]):
        if item.get("final") and chart.state(item["name"]).parent is None:
            item.pop("on_exit", None)
    for transition in document["transitions"]:
        targets = transition.get("to") or []
        targets = [targets] if isinstance(targets, str) else targets
        if any(chart.state(t).kind == "history" for t in targets):
            transition.pop("actions", None)
        if transition.get("type") != "internal":
            continue
        source = chart.state(transition["from"])
        inside = all(t == source.name or chart.is_descendant(t, source.name) for t in targets)
        if source.kind == "atomic" or not inside:
            transition["type"] = "external"
    return document


def _items(items: list[Any]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from _items(item.get("states", []))


def psm_orders_like_the_document(chart: Chart) -> bool:
    """Whether python-statemachine's ``document_order`` agrees with the real one between the
    regions of every parallel state (the only states active together). It numbers a state
    its parent's number plus one plus its index among its siblings, which is not a pre-order
    walk: after a region with children, the next region's states sort too early. It orders
    exits and entries by that number, so where it disagrees, the actions of one step are
    compared as a multiset instead of a sequence."""
    number: dict[str, int] = {}
    for state in chart.states:
        if state.kind == "history":
            continue
        siblings = chart.child_states(state.parent) if state.parent else chart.top_level
        base = number[state.parent] + 1 if state.parent else 1
        number[state.name] = base + siblings.index(state.name)

    def subtree(name: str) -> list[str]:
        return [n for n in number if n == name or chart.is_descendant(n, name)]

    for state in chart.states:
        if state.kind == "parallel":
            regions = chart.child_states(state.name)
            for i, earlier in enumerate(regions):
                for later in regions[i + 1 :]:
                    if max(number[a] for a in subtree(earlier)) >= number[later]:
                        return False
    return True


class WatchingInterpreter(Interpreter):
    """Our interpreter, noting the steps where python-statemachine departs from the W3C
    algorithm in ways a chart cannot simply leave out:

    - it stops the machine when every region of a top-level parallel state is final (W3C:
      only a top-level final state stops it; the parallel state raises its done event and
      the machine runs on): ``top_level_parallel_done``;
    - when a transition to a history state has a domain below some of the states between
      the history's parent and the states it restores, Appendix D enters those states,
      still active, again (their on_entry runs, no on_exit); python-statemachine exits and
      enters them: ``reentered_active``;

    and where the outcome of a step depends on the order in which the regions of a parallel
    state are visited:

    - it selects transitions going through the active atomic states in the order they were
      entered (its source: "TODO: sorted by document order"), not in document order, so
      with two enabled transitions it may keep another one when they conflict, or run them
      in another order: ``several_enabled``;
    - it orders exits and entries by its own numbering (``psm_orders_like_the_document``),
      so two events raised (or done events queued) in one microstep may queue in another
      order: ``several_queued``.
    """

    several_enabled = False
    several_queued = False
    reentered_active = False

    def _compute_entry_set(self, transitions: list[Transition], to_enter: dict[int, None]) -> None:
        super()._compute_entry_set(transitions, to_enter)
        self.reentered_active |= any(state in self._active for state in to_enter)

    def top_level_parallel_done(self) -> bool:
        return any(
            self._kind[state] == "parallel"
            and self._parent[state] == ROOT
            and self._is_in_final_state(state)
            for state in self._active
        )

    def psm_departs(self, in_order: bool) -> bool:
        """Whether python-statemachine may have run the steps so far differently (so this
        step and every later one are left out); ``in_order``: ``psm_orders_like_the_document``
        of the chart."""
        if self.several_enabled or (self.several_queued and not in_order):
            return True
        return self.top_level_parallel_done() or self.reentered_active

    def _remove_conflicting_transitions(self, enabled: list[Transition]) -> list[Transition]:
        self.several_enabled |= len(enabled) > 1
        return super()._remove_conflicting_transitions(enabled)

    def _microstep(self, enabled: list[Transition]) -> None:
        queued = len(self._queue)
        super()._microstep(enabled)
        self.several_queued |= len(self._queue) > queued + 1

    def _enter_states(self, enabled: list[Transition], *, initial: bool = False) -> None:
        queued = len(self._queue)
        super()._enter_states(enabled, initial=initial)
        self.several_queued |= len(self._queue) > queued + 1


def psm_steps(scxml: str, events: list[str]) -> list[Step]:
    """python-statemachine running the SCXML document ``scxml``: configuration, logged action
    labels (each ``<log>`` prints its label) and termination after the start and each event."""
    machine_class = load(scxml, format="scxml")
    results = []
    for event in [None, *events]:
        log = io.StringIO()
        with contextlib.redirect_stdout(log):  # <log> prints its label
            if event is None:
                machine = machine_class()
            else:
                machine.send(event)
        results.append(
            (frozenset(machine.configuration_values), log.getvalue().split(), machine.is_terminated)
        )
    return results


def our_steps(chart: Chart, events: list[str], in_order: bool) -> list[Step]:
    """Configuration, action labels and termination after the start and each event, up to
    the first step whose outcome python-statemachine may order differently (excluded)."""
    interpreter = WatchingInterpreter(chart)
    steps = []
    for event in [None, *events]:
        step = interpreter.start() if event is None else interpreter.send(event)
        if interpreter.psm_departs(in_order):
            break
        labels = [
            f"{ref.kind}|{ref.owner}|{ref.position}"
            for ref in step.actions
            if raised_event(chart.action(ref)) is None
        ]
        steps.append((step.configuration, labels, step.finished))
    return steps
