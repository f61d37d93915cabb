"""The statechart semantic core (smc.compiler.statechart): every rule of issue 13's
"Semantics are the W3C SCXML algorithm" by hand, and the chart checks. The dispatch tables
are tested in test_statechart_tables.py; the SCXML export and the differential test against
python-statemachine in test_statechart_scxml.py.

Longer than ~500 lines on purpose: one test per rule, each with its chart written out in
full, so a rule and its example read together."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from smc.compiler.statechart import (
    Chart,
    ChartDefinitionError,
    Interpreter,
    Macrostep,
    UnsettledMacrostep,
    build_table,
    chart_from_dict,
)


def run(document: dict[str, Any], *events: str) -> tuple[Chart, list[Macrostep]]:
    chart = chart_from_dict(document)
    interpreter = Interpreter(chart)
    steps = [interpreter.start()]
    steps.extend(interpreter.send(event) for event in events)
    return chart, steps


def done(chart: Chart, step: Macrostep) -> list[Any]:
    """The actions a step ran, as the values the chart gave them."""
    return [chart.action(ref) for ref in step.actions]


def raise_(event: str) -> dict[str, str]:
    return {"type": "raise", "event": event}


# --- transition selection -------------------------------------------------------------


def test_inner_state_transitions_win_over_their_ancestors() -> None:
    _, steps = run(
        {
            "states": [{"name": "p", "states": ["a"]}, "inner", "outer"],
            "transitions": [
                {"from": "p", "to": "outer", "event": "e"},
                {"from": "a", "to": "inner", "event": "e"},
            ],
        },
        "e",
    )
    assert steps[-1].configuration == {"inner"}
    assert steps[-1].transitions == (1,)


def test_document_order_among_a_states_transitions() -> None:
    _, steps = run(
        {
            "states": ["a", "first", "second"],
            "transitions": [
                {"from": "a", "to": "first", "event": "e"},
                {"from": "a", "to": "second", "event": "e"},
            ],
        },
        "e",
    )
    assert steps[-1].configuration == {"first"}


def test_a_transition_from_a_compound_state_runs_while_any_descendant_is_active() -> None:
    document = {
        "states": [{"name": "p", "states": ["a", {"name": "q", "states": ["b", "c"]}]}, "x"],
        "transitions": [
            {"from": "p", "to": "x", "event": "stop"},
            {"from": "a", "to": "q", "event": "down"},
            {"from": "b", "to": "c", "event": "next"},
        ],
    }
    for path in ((), ("down",), ("down", "next")):
        _, steps = run(document, *path, "stop")
        assert steps[-1].accepted and steps[-1].configuration == {"x"}, path


PARALLEL = {
    "states": [
        {
            "name": "p",
            "parallel": True,
            "states": [
                {"name": "r1", "states": ["a1", "a2"]},
                {"name": "r2", "states": ["b1", "b2"]},
            ],
        },
        "out",
    ],
}


def test_parallel_regions_take_their_transitions_in_one_microstep() -> None:
    chart, steps = run(
        {
            **PARALLEL,
            "transitions": [
                {"from": "b1", "to": "b2", "event": "e", "actions": ["t-b"]},
                {"from": "a1", "to": "a2", "event": "e", "actions": ["t-a"]},
            ],
        },
        "e",
    )
    assert steps[-1].configuration == {"p", "r1", "r2", "a2", "b2"}
    # the regions' atomic states select in document order: a1's transition runs first
    assert steps[-1].transitions == (1, 0)
    assert done(chart, steps[-1]) == ["t-a", "t-b"]


def test_parallel_conflict_the_earlier_region_preempts_a_later_one() -> None:
    _, steps = run(
        {
            **PARALLEL,
            "transitions": [
                {"from": "a1", "to": "out", "event": "e"},
                {"from": "b1", "to": "b2", "event": "e"},
            ],
        },
        "e",
    )
    assert steps[-1].transitions == (0,)
    assert steps[-1].configuration == {"out"}


def test_parallel_conflict_a_descendant_source_beats_an_earlier_ancestor() -> None:
    # a1 selects p's transition (a1 itself has none); b1 selects its own: both exit b1, and
    # b1 descends from p, so b1's transition wins although it comes later
    _, steps = run(
        {
            **PARALLEL,
            "transitions": [
                {"from": "p", "to": "out", "event": "e"},
                {"from": "b1", "to": "b2", "event": "e"},
            ],
        },
        "e",
    )
    assert steps[-1].transitions == (1,)
    assert steps[-1].configuration == {"p", "r1", "r2", "a1", "b2"}


def test_a_transition_may_target_one_state_in_each_of_several_regions() -> None:
    _, steps = run(
        {**PARALLEL, "transitions": [{"from": "out", "to": ["b2", "a2"], "event": "e"}]}
        | {"initial_state": "out"},
        "e",
    )
    assert steps[-1].configuration == {"p", "r1", "r2", "a2", "b2"}


def test_regions_select_in_document_order_whatever_the_order_they_were_entered_in() -> None:
    _, steps = run(
        {
            **PARALLEL,
            "states": [*PARALLEL["states"], "x", "y"],
            "transitions": [
                {"from": "a1", "to": "a2", "event": "f"},
                {"from": "a2", "to": "x", "event": "e"},
                {"from": "b1", "to": "y", "event": "e"},
            ],
        },
        "f",  # a2 is now the most recently entered state
        "e",
    )
    assert steps[-1].configuration == {"x"}


# --- exit and entry -------------------------------------------------------------------


def entry_exit(name: str, *children: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"name": name, "on_entry": [f"in {name}"], "on_exit": [f"out {name}"]}
    if children:
        item["states"] = list(children)
    return item


def test_exit_innermost_first_then_transition_then_entry_outermost_first() -> None:
    chart, steps = run(
        {
            "states": [
                entry_exit("a", entry_exit("a1", entry_exit("a11"))),
                entry_exit("b", entry_exit("b1", entry_exit("b11"))),
            ],
            "transitions": [{"from": "a11", "to": "b", "event": "e", "actions": ["move"]}],
        },
        "e",
    )
    assert done(chart, steps[0]) == ["in a", "in a1", "in a11"]
    assert done(chart, steps[1]) == [
        *("out a11", "out a1", "out a", "move"),
        *("in b", "in b1", "in b11"),
    ]
    assert steps[1].configuration == {"b", "b1", "b11"}


def test_entries_across_regions_follow_document_order() -> None:
    chart, steps = run(
        {
            "states": [
                {
                    "name": "p",
                    "parallel": True,
                    "states": [
                        entry_exit("q", entry_exit("q1")),
                        entry_exit("r", entry_exit("r1")),
                    ],
                }
            ]
        }
    )
    assert done(chart, steps[0]) == ["in q", "in q1", "in r", "in r1"]


def test_the_transition_domain_bounds_the_exit_and_entry_sets() -> None:
    chart, steps = run(
        {
            "states": [entry_exit("p", entry_exit("a", entry_exit("a1")), entry_exit("b"))],
            "transitions": [{"from": "a1", "to": "b", "event": "e"}],
        },
        "e",
    )
    assert done(chart, steps[1]) == ["out a1", "out a", "in b"]  # p is the domain: stays


def test_an_internal_transition_does_not_exit_its_compound_source() -> None:
    document = {
        "states": [entry_exit("p", entry_exit("a"), entry_exit("b"))],
        "transitions": [{"from": "p", "to": "b", "event": "e", "type": "internal"}],
    }
    chart, steps = run(document, "e")
    assert done(chart, steps[1]) == ["out a", "in b"]
    document["transitions"][0]["type"] = "external"
    chart, steps = run(document, "e")
    assert done(chart, steps[1]) == ["out a", "out p", "in p", "in b"]


def test_an_internal_transition_acts_as_external_when_it_cannot_be_internal() -> None:
    # SCXML: internal only means something for a compound source and descendant targets; an
    # atomic self-transition exits and re-enters (python-statemachine differs: see
    # test_statechart_scxml.py)
    chart, steps = run(
        {
            "states": [entry_exit("a")],
            "transitions": [{"from": "a", "to": "a", "event": "e", "type": "internal"}],
        },
        "e",
    )
    assert done(chart, steps[1]) == ["out a", "in a"]
    chart, steps = run(
        {
            "states": [entry_exit("p", entry_exit("a")), entry_exit("x")],
            "transitions": [{"from": "p", "to": "x", "event": "e", "type": "internal"}],
        },
        "e",
    )
    assert done(chart, steps[1]) == ["out a", "out p", "in x"]


def test_a_targetless_transition_runs_its_actions_and_exits_nothing() -> None:
    chart, steps = run(
        {"states": [entry_exit("a")], "transitions": [{"from": "a", "event": "e", "actions": [1]}]},
        "e",
    )
    assert steps[1].accepted and done(chart, steps[1]) == [1]
    assert steps[1].configuration == {"a"}


# --- run to completion ----------------------------------------------------------------


def test_eventless_transitions_run_until_none_is_enabled() -> None:
    _, steps = run(
        {
            "states": ["a", "b", "c", "d"],
            "transitions": [
                {"from": "a", "to": "b", "event": "e"},
                {"from": "b", "to": "c"},
                {"from": "c", "to": "d"},
            ],
        },
        "e",
    )
    assert steps[-1].configuration == {"d"}
    assert steps[-1].transitions == (0, 1, 2)


def test_a_raised_event_is_handled_before_the_next_external_one() -> None:
    _, steps = run(
        {
            "states": [{"name": "b", "on_entry": [raise_("r")]}, "a", "c", "d", "x"],
            "initial_state": "a",
            "transitions": [
                {"from": "a", "to": "b", "event": "e"},
                {"from": "b", "to": "c"},  # eventless first: the queue waits
                {"from": "c", "to": "d", "event": "r"},
                {"from": "b", "to": "x", "event": "r"},
            ],
        },
        "e",
    )
    assert steps[-1].configuration == {"d"}
    assert steps[-1].internal_events == ("r",)
    assert steps[-1].transitions == (0, 1, 2)


def test_raised_events_queue_in_order() -> None:
    _, steps = run(
        {
            "states": ["a", "b", "c", "d"],
            "transitions": [
                {"from": "a", "to": "b", "event": "e", "actions": [raise_("r1"), raise_("r2")]},
                {"from": "b", "to": "c", "event": "r1"},
                {"from": "c", "to": "d", "event": "r2"},
                {"from": "b", "to": "a", "event": "r2"},
            ],
        },
        "e",
    )
    assert steps[-1].configuration == {"d"}
    assert steps[-1].internal_events == ("r1", "r2")


def test_an_event_nothing_accepts_leaves_the_configuration_alone() -> None:
    _, steps = run(
        {"states": [entry_exit("a"), "b"], "transitions": [{"from": "a", "to": "b", "event": "e"}]},
        "nope",
    )
    assert not steps[1].accepted
    assert steps[1].configuration == {"a"} and steps[1].actions == ()


def test_a_macrostep_that_never_settles_is_an_error() -> None:
    chart = chart_from_dict(
        {"states": ["a", "b"], "transitions": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}]}
    )
    with pytest.raises(UnsettledMacrostep, match="does not settle"):
        Interpreter(chart, max_microsteps=50).start()
    raising = chart_from_dict(
        {"states": ["a"], "transitions": [{"from": "a", "event": "r", "actions": [raise_("r")]}]}
    )
    interpreter = Interpreter(raising)
    interpreter.start()
    with pytest.raises(UnsettledMacrostep, match="event 'r'"):
        interpreter.send("r")
    with pytest.raises(UnsettledMacrostep):
        build_table(raising)


# --- done events and finals -----------------------------------------------------------


def test_done_state_is_raised_when_a_compound_reaches_its_final_child() -> None:
    _, steps = run(
        {
            "states": [{"name": "p", "states": ["a", {"name": "f", "final": True}]}, "next"],
            "transitions": [
                {"from": "a", "to": "f", "event": "e"},
                {"from": "p", "to": "next", "event": "done.state.p"},
            ],
        },
        "e",
    )
    assert steps[-1].internal_events == ("done.state.p",)
    assert steps[-1].configuration == {"next"}


def test_done_state_of_a_parallel_waits_for_every_region() -> None:
    document = {
        "states": [
            {
                "name": "p",
                "parallel": True,
                "states": [
                    {"name": "r1", "states": ["a", {"name": "fa", "final": True}]},
                    {"name": "r2", "states": ["b", {"name": "fb", "final": True}]},
                ],
            },
            "next",
        ],
        "transitions": [
            {"from": "a", "to": "fa", "event": "ea"},
            {"from": "b", "to": "fb", "event": "eb"},
            {"from": "p", "to": "next", "event": "done.state.p"},
        ],
    }
    _, steps = run(document, "ea", "eb")
    assert steps[1].internal_events == ("done.state.r1",)
    assert steps[1].configuration == {"p", "r1", "r2", "fa", "b"}
    assert steps[2].internal_events == ("done.state.r2", "done.state.p")
    assert steps[2].configuration == {"next"}


def test_a_completed_top_level_parallel_state_does_not_end_the_machine() -> None:
    # only a top-level final state stops it (python-statemachine stops here too)
    _, steps = run(
        {
            "states": [
                {
                    "name": "p",
                    "parallel": True,
                    "states": [
                        {"name": "r1", "states": ["a", {"name": "fa", "final": True}]},
                        {"name": "r2", "states": [{"name": "fb", "final": True}]},
                    ],
                },
                "x",
            ],
            "transitions": [
                {"from": "a", "event": "e", "to": "fa"},
                {"from": "p", "event": "f", "to": "x"},
            ],
        },
        "e",
        "f",
    )
    assert steps[1].internal_events == ("done.state.r1", "done.state.p")
    assert not steps[1].finished
    assert steps[2].configuration == {"x"}


def test_a_top_level_final_state_ends_the_machine() -> None:
    chart, steps = run(
        {
            "states": ["a", {"name": "end", "final": True, "on_entry": ["in"], "on_exit": ["out"]}],
            "transitions": [{"from": "a", "to": "end", "event": "e"}],
        },
        "e",
        "e",
    )
    assert steps[1].finished and steps[1].configuration == {"end"}
    assert done(chart, steps[1]) == ["in", "out"]  # SCXML's exitInterpreter runs its on_exit
    assert not steps[2].accepted and steps[2].actions == ()


# --- history --------------------------------------------------------------------------

HISTORY: dict[str, Any] = {
    "states": [
        {
            "name": "p",
            "states": [
                "a",
                {"name": "q", "states": ["q1", "q2"]},
                {"name": "h", "history": "shallow", "to": "q"},
            ],
        },
        "out",
    ],
    "transitions": [
        {"from": "a", "to": "q", "event": "go"},
        {"from": "q1", "to": "q2", "event": "next"},
        {"from": "p", "to": "out", "event": "leave"},
        {"from": "out", "to": "h", "event": "back"},
    ],
}


def test_history_goes_to_its_default_before_its_state_was_ever_exited() -> None:
    _, steps = run(HISTORY | {"initial_state": "out"}, "back")
    assert steps[-1].configuration == {"p", "q", "q1"}


@pytest.mark.parametrize(("kind", "restored"), [("shallow", "q1"), ("deep", "q2")])
def test_history_restores_shallow_or_deep(kind: str, restored: str) -> None:
    document = copy.deepcopy(HISTORY)
    document["states"][0]["states"][2]["history"] = kind
    document["transitions"][3]["actions"] = ["restore"]
    chart, steps = run(document, "go", "next", "leave", "back")
    assert done(chart, steps[-1]) == ["restore"]  # once (python-statemachine: twice)
    assert steps[-2].history == {"h": ("q",) if kind == "shallow" else ("q2",)}
    assert steps[-1].configuration == {"p", "q", restored}


def test_deep_history_restores_every_region_of_a_parallel_state() -> None:
    _, steps = run(
        {
            "states": [
                {
                    "name": "top",
                    "states": [PARALLEL["states"][0], {"name": "h", "history": "deep"}],
                },
                "away",
            ],
            "transitions": [
                {"from": "a1", "to": "a2", "event": "e"},
                {"from": "top", "to": "away", "event": "leave"},
                {"from": "away", "to": "h", "event": "back"},
            ],
        },
        "e",
        "leave",
        "back",
    )
    assert steps[2].history == {"h": ("a2", "b1")}
    assert steps[3].configuration == {"top", "p", "r1", "r2", "a2", "b1"}


def test_a_transition_to_the_history_of_a_parallel_state_it_leaves_enters_it_again() -> None:
    # Appendix D would compute the domain again after recording the history, find a
    # smaller one and not enter p again; the domain is fixed before (see semantics.py)
    chart, steps = run(
        {
            "states": [
                {
                    "name": "p",
                    "parallel": True,
                    "on_entry": ["in p"],
                    "states": [
                        {"name": "r", "states": [{"name": "q", "states": ["a", "b"]}]},
                        {"name": "h", "history": "deep"},
                    ],
                }
            ],
            "transitions": [
                {"from": "a", "to": "b", "event": "f"},
                {"from": "q", "to": "h", "event": "e"},
            ],
        },
        "f",
        "e",
    )
    assert steps[-1].configuration == {"p", "r", "q", "b"}
    assert done(chart, steps[-1]) == ["in p"]


def test_a_history_target_below_its_parent_enters_active_states_again() -> None:
    # Appendix D as written: q stays active (the domain is q) yet is entered again
    chart, steps = run(
        {
            "states": [
                {
                    "name": "p",
                    "states": [
                        {
                            "name": "q",
                            "on_entry": ["in q"],
                            "on_exit": ["out q"],
                            "states": ["a", "b"],
                        },
                        {"name": "h", "history": "deep"},
                    ],
                },
                "x",
            ],
            "transitions": [
                {"from": "p", "to": "x", "event": "leave"},
                {"from": "x", "to": "h", "event": "back"},
                {"from": "a", "to": "h", "event": "e"},
            ],
        },
        "leave",
        "back",
        "e",
    )
    assert steps[-1].configuration == {"p", "q", "a"}
    assert done(chart, steps[-1]) == ["in q"]


def test_history_default_without_to_is_the_parents_initial() -> None:
    document = copy.deepcopy(HISTORY)
    del document["states"][0]["states"][2]["to"]
    _, steps = run(document | {"initial_state": "out"}, "back")
    assert steps[-1].configuration == {"p", "a"}


# --- chart checks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"states": ["a", "a"]}, "defined twice"),
        ({"states": [{"name": "p", "states": ["a", "b"]}], "initial_state": "z"}, "'z' is not"),
        ({"states": [{"name": "p", "initial": "z", "states": ["a"]}]}, "initial 'z'"),
        ({"states": ["a", {"name": "h", "history": "deep"}]}, "not in a compound"),
        (
            {
                "states": [{"name": "p", "states": ["a", "b"]}],
                "transitions": [{"from": "a", "to": ["a", "b"]}],
            },
            "cannot be active together",
        ),
        ({"states": ["a"], "transitions": [{"from": "a", "to": "nowhere"}]}, "no target"),
        (
            {"states": ["a", {"name": "f", "final": True}], "transitions": [{"from": "f"}]},
            "a final state has no transitions",
        ),
        ({"states": ["a"], "transitions": [{"from": "a", "actions": [{"type": "raise"}]}]}, None),
    ],
)
def test_malformed_charts_are_refused(document: dict[str, Any], message: str | None) -> None:
    with pytest.raises(ChartDefinitionError, match=message):
        chart_from_dict(document)
