"""The dispatch tables of statecharts (smc.compiler.statechart.tables): a flat chart is a
plain transition table, raise actions are resolved away, the size is limited, and on random
charts every table entry is what the interpreter does."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from smc.compiler.statechart import (
    Chart,
    Interpreter,
    Macrostep,
    TooManySituations,
    UnsettledMacrostep,
    build_table,
    chart_from_dict,
    raised_event,
)
from smc.compiler.statechart.tables import TableActions, relevant_histories
from tests.support.statecharts import EVENTS, charts, event_sequences


def raise_(event: str) -> dict[str, str]:
    return {"type": "raise", "event": event}


def test_a_flat_chart_is_a_plain_transition_table() -> None:
    chart = chart_from_dict(
        {
            "states": [
                {"name": "idle", "on_entry": ["i"]},
                {"name": "busy", "on_entry": ["b"]},
                {"name": "end", "final": True},
            ],
            "transitions": [
                {"from": "idle", "to": "busy", "event": "go", "actions": ["t"]},
                {"from": "busy", "to": "idle", "event": "done"},
                {"from": "busy", "to": "end", "event": "stop"},
            ],
        }
    )
    table = build_table(chart)
    assert table.configurations == (("idle",), ("busy",), ("end",))
    assert table.initial_actions == (("entry", "idle", 0),)
    assert table.final == (False, False, True)
    assert table.events == ("go", "done", "stop")
    assert [dict(row) for row in table.dispatch] == [
        {"go": (1, (("transition", 0, 0), ("entry", "busy", 0)))},
        {"done": (0, (("entry", "idle", 0),)), "stop": (2, ())},
        {},
    ]


def test_tables_resolve_raise_actions_away() -> None:
    chart = chart_from_dict(
        {
            "states": ["a", "b", "c"],
            "transitions": [
                {"from": "a", "to": "b", "event": "e", "actions": [raise_("r"), "x"]},
                {"from": "b", "to": "c", "event": "r"},
            ],
        }
    )
    assert build_table(chart).dispatch[0] == {"e": (1, (("transition", 0, 1),))}


def test_the_table_size_is_limited() -> None:
    regions = [{"name": f"r{i}", "states": [f"x{i}", f"y{i}"]} for i in range(4)]
    chart = chart_from_dict(
        {
            "states": [{"name": "p", "parallel": True, "states": regions}],
            "transitions": [{"from": f"x{i}", "to": f"y{i}", "event": f"e{i}"} for i in range(4)],
        },
        name="grid",
    )
    assert build_table(chart).size == 16
    with pytest.raises(TooManySituations, match=r"chart 'grid' \(13 states.* more than 10 "):
        build_table(chart, max_situations=10)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(charts(), event_sequences)
def test_tables_agree_with_the_interpreter(chart: Chart, events: list[str]) -> None:
    try:
        table = build_table(chart, events=EVENTS)
    except UnsettledMacrostep:
        return
    relevant = relevant_histories(chart)
    interpreter = Interpreter(chart)
    start = interpreter.start()
    situation = table.initial
    assert table.initial_actions == plain(chart, start)
    for event in events:
        step = interpreter.send(event)
        entry = table.step(situation, event)
        assert (entry is not None) == step.accepted
        if entry is not None:
            situation, actions = entry
            assert actions == plain(chart, step)
        assert frozenset(table.configurations[situation]) == step.configuration
        if not step.finished:  # a finished machine's memory is moot, and not kept
            remembered = {h: v for h, v in step.history.items() if h in relevant}
            assert dict(table.histories[situation]) == remembered
        assert table.final[situation] == step.finished


def plain(chart: Chart, step: Macrostep) -> TableActions:
    return tuple(
        (ref.kind, ref.owner, ref.position)
        for ref in step.actions
        if raised_event(chart.action(ref)) is None
    )
