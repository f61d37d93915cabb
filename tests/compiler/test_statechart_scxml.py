"""The SCXML export of a statechart, and the differential test: the interpreter of
smc.compiler.statechart against python-statemachine 3.2 running the exported SCXML, on
random charts and event sequences; the configuration (and the actions run) after every step
must agree, except where python-statemachine departs from the W3C algorithm: constructs
left out of the charts (``shared_constructs``) and steps left out of the comparison
(``WatchingInterpreter``, ``psm_orders_like_the_document``). The W3C behaviour in each case
is tested by hand in test_statechart_semantics.py."""

from __future__ import annotations

import contextlib
import copy
import io
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, reject, settings
from statemachine.io import load

from smc.compiler.statechart import (
    Chart,
    Interpreter,
    ScxmlExportError,
    Transition,
    UnsettledMacrostep,
    chart_from_dict,
    raised_event,
    to_scxml,
)
from smc.compiler.statechart.semantics import ROOT
from tests.support.statecharts import chart_documents, event_sequences

NS = "{http://www.w3.org/2005/07/scxml}"

CHART = {
    "states": [
        {
            "name": "p",
            "on_entry": ["hello", {"type": "raise", "event": "ready"}],
            "states": ["a", "b", {"name": "h", "history": "shallow", "to": "b"}],
        },
        {"name": "q", "parallel": True, "states": ["r1", "r2"]},
        {"name": "f", "final": True},
    ],
    "transitions": [
        {"from": "a", "to": "b", "event": "go", "actions": ["moving"]},
        {"from": "p", "to": "b", "event": "in", "type": "internal"},
        {"from": "b", "to": ["r1", "r2"]},
        {"from": "q", "to": "h", "event": "back"},
        {"from": "q", "event": "stay"},
        {"from": "q", "to": "f", "event": "done.state.q"},
    ],
}

# --- SCXML export ---------------------------------------------------------------------


EXPECTED = """\
<?xml version="1.0" encoding="UTF-8"?>
<scxml xmlns="http://www.w3.org/2005/07/scxml" version="1.0" name="chart" initial="p">
  <state id="p" initial="a">
    <onentry>
      <log label="entry|p|0" />
      <raise event="ready" />
    </onentry>
    <transition event="in" target="b" type="internal" />
    <state id="a">
      <transition event="go" target="b">
        <log label="transition|0|0" />
      </transition>
    </state>
    <state id="b">
      <transition target="r1 r2" />
    </state>
    <history id="h" type="shallow">
      <transition target="b" />
    </history>
  </state>
  <parallel id="q">
    <transition event="back" target="h" />
    <transition event="stay" />
    <transition event="done.state.q" target="f" />
    <state id="r1" />
    <state id="r2" />
  </parallel>
  <final id="f" />
</scxml>
"""


def test_the_scxml_export_is_standard_scxml_in_document_order() -> None:
    assert to_scxml(chart_from_dict(CHART)) == EXPECTED
    assert ET.fromstring(EXPECTED).tag == NS + "scxml"


def test_python_statemachine_runs_the_export() -> None:
    machine = load(EXPECTED, format="scxml")
    with contextlib.redirect_stdout(io.StringIO()):
        instance = machine()
        instance.send("go")
    assert set(instance.configuration_values) == {"q", "r1", "r2"}


def test_the_scxml_export_escapes_labels_and_refuses_ambiguous_names() -> None:
    hostile = 'x"/><script>alert(1)</script><log label="'
    chart = chart_from_dict({"states": [{"name": "a", "on_entry": [hostile]}]})
    text = to_scxml(chart, label=lambda ref, action: str(action))
    log = ET.fromstring(text).find(f".//{NS}log")
    assert log is not None and log.get("label") == hostile and "<script>" not in text
    for document in (
        {"states": ["a b"]},
        {"states": ["a"], "transitions": [{"from": "a", "event": "x y"}]},
        {"states": ["a"], "transitions": [{"from": "a", "event": "*"}]},
    ):
        with pytest.raises(ScxmlExportError):
            to_scxml(chart_from_dict(document))


# --- differential: python-statemachine 3.2 on the exported SCXML ----------------------


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


def psm_steps(chart: Chart, events: list[str]) -> list[tuple[frozenset[str], list[str], bool]]:
    """Configuration, logged action labels and termination after the start and each event."""
    machine_class = load(to_scxml(chart), format="scxml")
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


Step = tuple[frozenset[str], list[str], bool]


def our_steps(chart: Chart, events: list[str], in_order: bool) -> list[Step]:
    """Configuration, action labels and termination after the start and each event, up to
    the first step whose outcome python-statemachine may order differently (excluded)."""
    interpreter = WatchingInterpreter(chart)
    steps = []
    for event in [None, *events]:
        step = interpreter.start() if event is None else interpreter.send(event)
        if interpreter.several_enabled or (interpreter.several_queued and not in_order):
            break
        if interpreter.top_level_parallel_done() or interpreter.reentered_active:
            break
        labels = [
            f"{ref.kind}|{ref.owner}|{ref.position}"
            for ref in step.actions
            if raised_event(chart.action(ref)) is None
        ]
        steps.append((step.configuration, labels, step.finished))
    return steps


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chart_documents().map(shared_constructs), event_sequences)
def test_python_statemachine_agrees_on_random_charts(
    document: dict[str, Any], events: list[str]
) -> None:
    chart = chart_from_dict(document)
    in_order = psm_orders_like_the_document(chart)
    try:
        ours = our_steps(chart, events, in_order)
    except UnsettledMacrostep:
        # python-statemachine would loop for ever (the W3C algorithm has no bound; ours is
        # an error): not a chart to compare, and not counted as one of the examples
        reject()
    if not ours:
        reject()  # the start itself depends on the order of the regions
    note(to_scxml(chart))
    theirs = psm_steps(chart, events[: len(ours) - 1])
    for number, (mine, their) in enumerate(zip(ours, theirs, strict=True)):
        assert mine[0] == their[0], f"configuration after step {number}"
        assert mine[2] == their[2], f"termination after step {number}"
        if in_order:
            assert mine[1] == their[1], f"actions of step {number}"
        else:
            assert Counter(mine[1]) == Counter(their[1]), f"actions of step {number}"
