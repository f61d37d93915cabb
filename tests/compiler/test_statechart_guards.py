"""Guards and actions with data in the statechart core (issue 14): the interpreter evaluates
conds where SCXML's Appendix D does, through a callback; the table builder turns a guarded
entry into a decision program; running the program agrees with the interpreter on random
charts whose guards change value as actions run.

The data model here is a toy, enough to show order: a cond is a name (its boolean value)
or ``(op, name, number)``; ``{type: assign, location: x, add: n}`` adds to a number."""

from __future__ import annotations

import operator
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from smc.compiler.statechart import (
    ActionRef,
    Chart,
    ChartDefinitionError,
    Interpreter,
    MissingGuard,
    Program,
    ScxmlExportError,
    TooManyOutcomes,
    UnsettledMacrostep,
    build_table,
    chart_from_dict,
    run_program,
    to_scxml,
)
from smc.compiler.statechart.tables import DispatchTable, relevant_histories
from tests.support.statecharts import (
    CONDS,
    EVENTS,
    chart_documents,
    charts,
    event_sequences,
    guard_value,
)

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    ">=": operator.ge,
    "==": operator.eq,
}


class Data:
    """The toy data model, and a log of what touched it, in order: ("test", cond, value)
    and ("act", kind, owner, position)."""

    def __init__(self, chart: Chart, **values: Any) -> None:
        self.chart = chart
        self.values = values
        self.log: list[tuple[Any, ...]] = []

    def guard(self, cond: Any) -> bool:
        if isinstance(cond, str):
            value = bool(self.values[cond])
        else:
            op, name, number = cond
            value = OPERATORS[op](self.values[name], number)
        self.log.append(("test", cond, value))
        return value

    def execute(self, ref: Any, action: Any = None) -> None:
        action = self.chart.action(ref) if action is None else action
        self.log.append(("act", *ref))
        if isinstance(action, dict) and action.get("type") == "assign":
            self.values[action["location"]] += action["add"]


def assign(name: str, add: int = 1) -> dict[str, Any]:
    return {"type": "assign", "location": name, "add": add}


def raise_(event_name: str) -> dict[str, str]:
    return {"type": "raise", "event": event_name}


def configuration(table: DispatchTable, situation: int) -> set[str]:
    return set(table.configurations[situation])


def final_test(program: Program) -> tuple[Any, Program, Program]:
    """The cond and the two branches of the test that ends ``program``."""
    match program[-1]:
        case ("test", cond, then, otherwise):
            return cond, then, otherwise
    raise AssertionError(f"no test ends {program!r}")


# --- the interpreter ------------------------------------------------------------------


def test_the_first_transition_whose_guard_holds_is_taken_and_later_guards_never_run() -> None:
    chart = chart_from_dict(
        {
            "states": ["a", "x", "y", "z"],
            "transitions": [
                {"from": "a", "to": "x", "event": "e", "cond": "p"},
                {"from": "a", "to": "y", "event": "e", "cond": "q"},
                {"from": "a", "to": "z", "event": "e", "cond": "r"},
            ],
        }
    )
    data = Data(chart, p=False, q=True, r=True)
    interpreter = Interpreter(chart, guard=data.guard)
    interpreter.start()
    step = interpreter.send("e")
    assert step.configuration == {"y"}
    assert step.guards == (("p", False), ("q", True))  # r is never evaluated
    assert data.log == [("test", "p", False), ("test", "q", True)]


def test_the_interpreter_knows_whether_the_event_came_from_the_internal_queue() -> None:
    """``event_internal`` (SCXML's ``_event.type``): True while a raised or done event is
    handled, False for the external event and at the start; ``build_table`` keeps it in a
    resume point only with ``origins``."""
    chart = chart_from_dict(
        {
            "states": [
                {"name": "a", "on_entry": [{"type": "raise", "event": "e"}]},
                {"name": "b", "states": ["b1", {"name": "b2", "final": True}]},
                "c",
            ],
            "transitions": [
                {"from": "a", "to": "b", "event": "e", "cond": "p"},
                {"from": "b1", "to": "b2", "event": "e", "cond": "p"},
                {"from": "b", "to": "c", "event": "done.state.b", "cond": "p"},
            ],
        }
    )
    seen: list[tuple[str | None, bool]] = []

    def guard(cond: object) -> bool:
        seen.append((interpreter.event, interpreter.event_internal))
        return True

    interpreter = Interpreter(chart, guard=guard)
    interpreter.start()
    assert seen == [("e", True)]
    interpreter.send("e")
    assert seen == [("e", True), ("e", False), ("done.state.b", True)]
    assert interpreter.configuration == {"c"}
    assert interpreter.checkpoint().internal is True  # done.state.b was the last handled


def test_a_guard_is_evaluated_only_when_the_event_matches() -> None:
    chart = chart_from_dict(
        {
            "states": ["a", "x"],
            "transitions": [
                {"from": "a", "to": "x", "event": "f", "cond": "p"},
                {"from": "a", "to": "x", "event": "e"},
            ],
        }
    )
    interpreter = Interpreter(chart)  # no guard needed: p is never reached
    interpreter.start()
    assert interpreter.send("e").configuration == {"x"}


def test_an_ancestor_guard_is_evaluated_once_per_region_that_selects_nothing() -> None:
    # Appendix D loops over active atomic states, and each walks up to its ancestors
    chart = chart_from_dict(
        {
            "states": [
                {"name": "p", "parallel": True, "states": ["a", "b"]},
                "out",
            ],
            "transitions": [{"from": "p", "to": "out", "event": "e", "cond": "go"}],
        }
    )
    data = Data(chart, go=False)
    interpreter = Interpreter(chart, guard=data.guard)
    interpreter.start()
    step = interpreter.send("e")
    assert not step.accepted
    assert step.guards == (("go", False), ("go", False))


def test_a_cond_without_a_guard_function_is_an_error() -> None:
    chart = chart_from_dict(
        {"states": ["a", "b"], "transitions": [{"from": "a", "to": "b", "event": "e", "cond": "p"}]}
    )
    interpreter = Interpreter(chart)
    interpreter.start()
    with pytest.raises(MissingGuard, match=r"transition 0 from 'a' has the cond 'p'"):
        interpreter.send("e")


def test_actions_run_in_order_and_a_later_guard_sees_what_they_assigned() -> None:
    chart = chart_from_dict(
        {
            "states": ["idle", {"name": "check", "on_entry": [assign("i", 10)]}, "high", "low"],
            "transitions": [
                {"from": "idle", "to": "check", "event": "go", "actions": [assign("i")]},
                {"from": "check", "to": "high", "cond": (">=", "i", 12)},
                {"from": "check", "to": "low"},
            ],
        }
    )
    for start, expected in ((0, {"low"}), (1, {"high"})):
        data = Data(chart, i=start)
        interpreter = Interpreter(chart, guard=data.guard, execute=data.execute)
        interpreter.start()
        assert interpreter.send("go").configuration == expected
        assert data.log == [
            ("act", "transition", 0, 0),
            ("act", "entry", "check", 0),
            ("test", (">=", "i", 12), start == 1),
        ]


# --- decision programs --------------------------------------------------------------


RETRY = {
    "states": ["failed", "pending", "dead"],
    "transitions": [
        {"from": "failed", "to": "pending", "event": "retry", "cond": ("<", "attempts", 3)},
        {"from": "failed", "to": "dead", "event": "retry"},  # the else: document order
    ],
}


def test_an_unguarded_transition_after_a_guarded_one_is_its_else_branch() -> None:
    chart = chart_from_dict(RETRY)
    table = build_table(chart)
    assert table.configurations == (("failed",), ("pending",), ("dead",))
    assert table.dispatch[0] == {} and table.moves[0] == {}
    assert table.programs[0] == {
        "retry": (
            (
                "test",
                ("<", "attempts", 3),
                (("goto", 1, (("exit", "failed"), ("transition", 0), ("entry", "pending")), 0),),
                (("goto", 2, (("exit", "failed"), ("transition", 1), ("entry", "dead")), 0),),
            ),
        )
    }
    for attempts, expected in ((2, {"pending"}), (3, {"dead"})):
        data = Data(chart, attempts=attempts)
        outcome = table.fire(0, "retry", data.guard, data.execute)
        assert outcome is not None and configuration(table, outcome[0]) == expected


def test_a_guarded_entry_has_no_plain_step() -> None:
    table = build_table(chart_from_dict(RETRY))
    with pytest.raises(ValueError, match="program"):
        table.step(0, "retry")
    assert table.step(1, "retry") is None


def test_an_event_whose_guards_all_fail_is_rejected() -> None:
    chart = chart_from_dict(
        {
            "states": ["a", "b"],
            "transitions": [
                {"from": "a", "to": "b", "event": "e", "cond": "p"},
                {"from": "a", "to": "b", "event": "f", "cond": "q"},
            ],
        }
    )
    table = build_table(chart)
    program = table.programs[0]["e"]
    taken = (("goto", 1, (("exit", "a"), ("transition", 0), ("entry", "b")), 0),)
    assert program == (("test", "p", taken, (("reject",),)),)
    # equal sub-programs are one object, so generated code can name them once
    assert final_test(program)[2] is final_test(table.programs[0]["f"])[2]
    data = Data(chart, p=False)
    assert run_program(program, data.guard, data.execute) is None
    interpreter = Interpreter(chart, guard=data.guard)
    interpreter.start()
    assert not interpreter.send("e").accepted


def test_an_action_before_a_test_comes_before_it_in_the_program() -> None:
    chart = chart_from_dict(
        {
            "states": ["idle", "check", "high", "low"],
            "transitions": [
                {"from": "idle", "to": "check", "event": "go", "actions": [assign("i")]},
                {"from": "check", "to": "high", "cond": ("==", "i", 1)},
                {"from": "check", "to": "low"},
            ],
        }
    )
    table = build_table(chart)
    act, test = table.programs[0]["go"]
    assert act == ("act", ("transition", 0, 0))
    assert test[:2] == ("test", ("==", "i", 1))
    for start, expected in ((0, {"high"}), (1, {"low"})):
        data = Data(chart, i=start)
        outcome = table.fire(0, "go", data.guard, data.execute)
        assert outcome is not None and configuration(table, outcome[0]) == expected
        assert data.log == [("act", "transition", 0, 0), ("test", ("==", "i", 1), start == 0)]


def test_guards_of_parallel_regions_make_one_path_per_combination() -> None:
    chart = chart_from_dict(
        {
            "states": [
                {
                    "name": "p",
                    "parallel": True,
                    "states": [
                        {"name": "r1", "states": ["a1", "a2"]},
                        {"name": "r2", "states": ["b1", "b2"]},
                    ],
                }
            ],
            "transitions": [
                {"from": "a1", "to": "a2", "event": "e", "cond": "x"},
                {"from": "b1", "to": "b2", "event": "e", "cond": "y"},
            ],
        }
    )
    table = build_table(chart)
    program = table.programs[0]["e"]
    first, then, otherwise = final_test(program)
    assert len(program) == 1 and first == "x"
    assert final_test(then)[0] == final_test(otherwise)[0] == "y"
    for x in (True, False):
        for y in (True, False):
            data = Data(chart, x=x, y=y)
            outcome = run_program(program, data.guard, data.execute)
            interpreter = Interpreter(chart, guard=Data(chart, x=x, y=y).guard)
            interpreter.start()
            step = interpreter.send("e")
            assert (outcome is not None) == step.accepted == (x or y)
            if outcome is not None:
                assert frozenset(table.configurations[outcome[0]]) == step.configuration
                assert outcome[1] == step.moves


def test_more_outcomes_than_the_limit_are_refused() -> None:
    regions = [{"name": f"r{i}", "states": [f"x{i}", f"y{i}"]} for i in range(7)]
    document = {
        "states": [{"name": "p", "parallel": True, "states": regions}],
        "transitions": [
            {"from": f"x{i}", "to": f"y{i}", "event": "e", "cond": f"g{i}"} for i in range(7)
        ],
    }
    chart = chart_from_dict(document, name="wide")
    with pytest.raises(TooManyOutcomes, match=r"chart 'wide'.*event 'e'.* more than 64") as error:
        build_table(chart)
    assert error.value.conds == tuple(f"g{i}" for i in range(7))
    assert error.value.where.startswith("event 'e' in ")
    table = build_table(chart, max_outcomes=128)
    data = Data(chart, **{f"g{i}": i % 2 == 0 for i in range(7)})
    outcome = table.fire(0, "e", data.guard, data.execute)
    assert outcome is not None
    assert {f"y{i}" for i in range(0, 7, 2)} <= configuration(table, outcome[0])


def test_a_guarded_start_is_a_program() -> None:
    chart = chart_from_dict(
        {
            "states": ["choose", "left", "right"],
            "transitions": [
                {"from": "choose", "to": "left", "cond": "l"},
                {"from": "choose", "to": "right"},
            ],
        }
    )
    table = build_table(chart)
    assert table.initial_program is not None
    assert table.initial_actions == () and table.initial_moves == ()
    for left, expected in ((True, {"left"}), (False, {"right"})):
        data = Data(chart, l=left)
        situation, moves = table.start(data.guard, data.execute)
        assert configuration(table, situation) == expected
        interpreter = Interpreter(chart, guard=Data(chart, l=left).guard)
        assert moves == interpreter.start().moves


# --- if blocks --------------------------------------------------------------------------


def test_an_if_block_that_raises_is_opened_like_scxml_test_147() -> None:
    # W3C test147: the first true clause, and only it, runs; bar is raised, Var1 becomes 1
    branches = [
        {"cond": "no", "actions": [raise_("foo"), assign("Var1")]},
        {"cond": "yes", "actions": [raise_("bar"), assign("Var1")]},
        {"actions": [raise_("baz"), assign("Var1")]},
    ]
    chart = chart_from_dict(
        {
            "states": [
                {"name": "s0", "on_entry": [{"type": "if", "branches": branches}, raise_("bat")]},
                {"name": "pass", "final": True},
                {"name": "fail", "final": True},
            ],
            "transitions": [
                {"from": "s0", "to": "pass", "event": "bar", "cond": ("==", "Var1", 1)},
                *({"from": "s0", "to": "fail", "event": e} for e in ("foo", "bar", "baz", "bat")),
            ],
        }
    )
    data = Data(chart, no=False, yes=True, Var1=0)
    step = Interpreter(chart, guard=data.guard, execute=data.execute).start()
    assert step.configuration == {"pass"} and step.finished
    assert step.actions[:2] == (
        ActionRef("entry", "s0", (0, 1, 0)),
        ActionRef("entry", "s0", (0, 1, 1)),
    )
    assert chart.action(step.actions[1]) == assign("Var1")
    table = build_table(chart)
    data = Data(chart, no=False, yes=True, Var1=0)
    situation, moves = table.start(data.guard, data.execute)
    assert configuration(table, situation) == {"pass"} and table.final[situation]
    assert moves == step.moves
    assert [entry for entry in data.log if entry[0] == "act"] == [("act", "entry", "s0", (0, 1, 1))]


def test_an_if_block_that_cannot_raise_is_one_opaque_action() -> None:
    block = {"type": "if", "branches": [{"cond": "p", "actions": [assign("i")]}]}
    chart = chart_from_dict({"states": [{"name": "a", "on_entry": [block]}]})
    table = build_table(chart)
    assert table.initial_program is None
    assert table.initial_actions == (("entry", "a", 0),)
    ran: list[Any] = []
    Interpreter(chart, execute=lambda ref, action: ran.append(action)).start()
    assert ran == [block]


# --- build-time resolution --------------------------------------------------------------


def test_in_and_the_event_name_are_resolved_where_they_are_evaluated() -> None:
    # b1 leaves when a2 is active: not at the start, but after e in the same macrostep
    chart = chart_from_dict(
        {
            "states": [
                {
                    "name": "p",
                    "parallel": True,
                    "states": [
                        {"name": "r1", "states": ["a1", "a2"]},
                        {"name": "r2", "states": ["b1", "b2", "b3"]},
                    ],
                }
            ],
            "transitions": [
                {"from": "a1", "to": "a2", "event": "e", "actions": [raise_("r")]},
                {"from": "b1", "to": "b2", "cond": ("in", "a2")},
                {"from": "b2", "to": "b3", "event": "r", "cond": ("event", "r")},
            ],
        }
    )

    def specialize(
        cond: Any, active: frozenset[str], current: str | None, internal: bool
    ) -> object:
        return guard_value(cond, {}, active, current)

    table = build_table(chart, specialize=specialize)
    assert not table.guarded
    assert table.configurations[0] == ("p", "r1", "a1", "r2", "b1")
    target, _ = table.dispatch[0]["e"]
    assert table.configurations[target] == ("p", "r1", "a2", "r2", "b3")
    interpreter: Interpreter

    def guard(cond: Any) -> bool:
        return guard_value(cond, {}, interpreter.configuration, interpreter.event)

    interpreter = Interpreter(chart, guard=guard)
    interpreter.start()
    assert interpreter.send("e").configuration == {"p", "r1", "a2", "r2", "b3"}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chart_documents())
def test_conds_decided_true_at_build_time_leave_the_table_unchanged(document: Any) -> None:
    plain = build_table_or_none(chart_from_dict(document))
    if plain is None:
        return
    assert plain.programs == ({},) * plain.size and plain.points == ()
    assert plain.initial_program is None and not plain.guarded
    for transition in document["transitions"]:
        transition["cond"] = "yes"
    always = build_table(
        chart_from_dict(document), events=EVENTS, specialize=lambda c, a, e, i: True
    )
    assert always == plain


def build_table_or_none(chart: Chart) -> DispatchTable | None:
    try:
        return build_table(chart, events=EVENTS)
    except UnsettledMacrostep:
        return None


# --- loops --------------------------------------------------------------------------


COUNTER = {
    "states": [{"name": "count", "on_entry": [assign("i")]}, "done"],
    "transitions": [
        {"from": "count", "to": "count", "cond": ("<", "i", 3)},
        {"from": "count", "to": "done", "cond": (">=", "i", 3)},
    ],
}


def test_a_guarded_eventless_loop_resumes_its_point_until_data_ends_it() -> None:
    chart = chart_from_dict(COUNTER)
    table = build_table(chart)
    loop = (("exit", "count"), ("transition", 0), ("entry", "count"))
    (point,) = table.points
    assert point == (
        (
            "test",
            ("<", "i", 3),
            (("act", ("entry", "count", 0)), ("resume", 0, loop, 1)),
            (
                (
                    "test",
                    (">=", "i", 3),
                    (("goto", 0, (("exit", "count"), ("transition", 1), ("entry", "done")), 1),),
                    (("goto", 1, (), 0),),
                ),
            ),
        ),
    )
    for start in (0, 2, 5):
        data = Data(chart, i=start)
        reference = Data(chart, i=start)
        situation, moves = table.start(data.guard, data.execute)
        step = Interpreter(chart, guard=reference.guard, execute=reference.execute).start()
        assert frozenset(table.configurations[situation]) == step.configuration
        assert moves == step.moves and data.log == reference.log


def test_a_loop_longer_than_the_bound_raises_at_run_time_as_in_the_interpreter() -> None:
    chart = chart_from_dict(COUNTER)
    table = build_table(chart, max_microsteps=2)
    for start, settles in ((1, True), (0, False)):  # i = 2 needs 2 microsteps, i = 1 three
        data, reference = Data(chart, i=start), Data(chart, i=start)
        interpreter = Interpreter(
            chart, guard=reference.guard, execute=reference.execute, max_microsteps=2
        )
        if settles:
            situation, _ = table.start(data.guard, data.execute)
            assert frozenset(table.configurations[situation]) == interpreter.start().configuration
        else:
            with pytest.raises(UnsettledMacrostep):
                interpreter.start()
            with pytest.raises(UnsettledMacrostep):
                table.start(data.guard, data.execute)


def test_a_loop_no_data_can_end_is_unsettled_on_its_path_only() -> None:
    document: dict[str, Any] = {
        "states": ["a", "b", "c"],
        "transitions": [
            {"from": "a", "to": "b", "cond": "g"},
            {"from": "b", "to": "c"},
            {"from": "c", "to": "b"},
        ],
    }
    table = build_table(chart_from_dict(document))
    stay = (("goto", 0, (("entry", "a"),), 0),)
    assert table.initial_program == (("test", "g", (("unsettled",),), stay),)
    with pytest.raises(UnsettledMacrostep):
        table.start(lambda cond: True, lambda action: None)
    del document["transitions"][0]["cond"]  # now nothing can stop it: a build error
    with pytest.raises(UnsettledMacrostep, match="does not settle"):
        build_table(chart_from_dict(document))


# --- the chart and SCXML ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("transition", "message"),
    [
        ({"cond": ["a", "list"]}, "a cond must be hashable"),
        ({"actions": [{"type": "if", "branches": []}]}, "needs branches"),
        ({"actions": [{"type": "if", "branches": [{"actions": []}]}]}, "only the last branch"),
        (
            {"actions": [{"type": "if", "branches": [{"cond": "p", "actions": [raise_("")]}]}]},
            "a raise action needs an event name",
        ),
    ],
)
def test_malformed_guards_are_refused(transition: dict[str, Any], message: str) -> None:
    document = {"states": ["a", "b"], "transitions": [{"from": "a", "to": "b", **transition}]}
    with pytest.raises(ChartDefinitionError, match=message):
        chart_from_dict(document)


def test_scxml_writes_string_conds_and_opened_if_blocks() -> None:
    branches = [
        {"cond": "Var1 == 0", "actions": [raise_("foo")]},
        {"cond": "Var1 == 1", "actions": ["note"]},
        {"actions": [raise_("bar")]},
    ]
    chart = chart_from_dict(
        {
            "states": [{"name": "a", "on_entry": [{"type": "if", "branches": branches}]}, "b"],
            "transitions": [{"from": "a", "to": "b", "event": "foo", "cond": "Var1 < 2"}],
        }
    )
    root = ET.fromstring(to_scxml(chart).split("\n", 1)[1])
    ns = {"s": "http://www.w3.org/2005/07/scxml"}
    transition = root.find("s:state/s:transition", ns)
    assert transition is not None and transition.get("cond") == "Var1 < 2"
    block = root.find("s:state/s:onentry/s:if", ns)
    assert block is not None and block.get("cond") == "Var1 == 0"
    assert [(child.tag.split("}")[1], dict(child.attrib)) for child in block] == [
        ("raise", {"event": "foo"}),
        ("elseif", {"cond": "Var1 == 1"}),
        ("log", {"label": "entry|a|0.1.0"}),
        ("else", {}),
        ("raise", {"event": "bar"}),
    ]


def test_scxml_asks_how_to_write_a_cond_that_is_not_text() -> None:
    chart = chart_from_dict(
        {"states": ["a", "b"], "transitions": [{"from": "a", "to": "b", "cond": ("<", "i", 3)}]}
    )
    with pytest.raises(ScxmlExportError, match="not an expression's text"):
        to_scxml(chart)

    def text(cond: Any) -> str:
        op, name, number = cond
        return f"{name} {op} {number}"

    assert 'cond="i &lt; 3"' in to_scxml(chart, cond=text)


# --- random charts: the table and its programs against the interpreter ------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chart_documents(guards=True),
    st.fixed_dictionaries({cond: st.booleans() for cond in CONDS}),
    event_sequences,
)
def test_programs_agree_with_the_interpreter(
    document: dict[str, Any], values: dict[str, bool], events: list[str]
) -> None:
    chart = chart_from_dict(document)

    def specialize(
        cond: Any, active: frozenset[str], current: str | None, internal: bool
    ) -> object:
        return cond if isinstance(cond, str) else guard_value(cond, {}, active, current)

    try:
        table = build_table(chart, events=EVENTS, specialize=specialize)
    except UnsettledMacrostep:
        event("loops whatever the data")
        return
    except TooManyOutcomes:
        event("too many outcomes")
        return
    event("guarded" if table.guarded else "no guard evaluated")
    if table.points:
        event("has resume points")
    relevant = relevant_histories(chart)

    # both sides flip a data guard's value when they run {type: flip}, and log what they do
    ours: tuple[dict[str, bool], list[Any]] = (dict(values), [])
    theirs: tuple[dict[str, bool], list[Any]] = (dict(values), [])

    def run(side: tuple[dict[str, bool], list[Any]], ref: Any) -> None:
        side[1].append(("act", *ref))
        action = chart.action(ref)
        if isinstance(action, dict) and action.get("type") == "flip":
            side[0][action["cond"]] = not side[0][action["cond"]]

    def test(side: tuple[dict[str, bool], list[Any]], cond: str) -> bool:
        side[1].append(("test", cond, side[0][cond]))
        return side[0][cond]

    interpreter: Interpreter

    def reference_guard(cond: Any) -> bool:
        if isinstance(cond, str):
            return test(theirs, cond)
        return guard_value(cond, theirs[0], interpreter.configuration, interpreter.event)

    interpreter = Interpreter(
        chart, guard=reference_guard, execute=lambda ref, action: run(theirs, ref)
    )

    def guard(cond: Any) -> bool:
        return test(ours, cond)

    def execute(action: Any) -> None:
        run(ours, action)

    try:
        step = interpreter.start()
    except UnsettledMacrostep:
        with pytest.raises(UnsettledMacrostep):
            table.start(guard, execute)
        return
    situation, moves = table.start(guard, execute)
    assert moves == step.moves
    for name in events:
        assert ours == theirs
        assert frozenset(table.configurations[situation]) == interpreter.configuration
        assert table.final[situation] == interpreter.finished
        if not interpreter.finished:
            remembered = {h: v for h, v in interpreter.history.items() if h in relevant}
            assert dict(table.histories[situation]) == remembered
        try:
            step = interpreter.send(name)
        except UnsettledMacrostep:
            with pytest.raises(UnsettledMacrostep):
                table.fire(situation, name, guard, execute)
            return
        outcome = table.fire(situation, name, guard, execute)
        assert (outcome is not None) == step.accepted
        if outcome is not None:
            situation, moves = outcome
            assert moves == step.moves
    assert ours == theirs
    assert frozenset(table.configurations[situation]) == interpreter.configuration


def test_random_charts_without_guards_draw_no_cond() -> None:
    @settings(max_examples=30, deadline=None)
    @given(charts())
    def check(chart: Chart) -> None:
        assert all(t.cond is None for t in chart.transitions)

    check()
