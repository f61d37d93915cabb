"""Statecharts, the language front end (issue 13): the schema accepts nested state items, the
model holds the tree, and the checker reports each chart mistake at its line and column.

`smc build`, `smc run` and `smc paths` take a statechart (tests/compiler/test_codegen_chart.py,
tests/runtime/test_statecharts.py, tests/compiler/test_paths.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from smc.compiler import chartsyntax, schema
from smc.compiler.check import CheckResult, check_texts
from smc.compiler.diagnostics import CODES
from smc.compiler.loader import load_text
from smc.compiler.machinecache import compile_machine_file
from smc.compiler.model import Machine
from smc.machine import is_chart
from smc.runtime.loading import import_file, machine_class_in
from tests.support.corpus import require_corpus

Found = set[tuple[int, int, str]]

#: The example of issue 13, verbatim.
ISSUE_EXAMPLE = """\
initial_state: active
states:
  - name: active
    initial: idle                 # a compound state; default: its first child
    on_entry: [{type: log, message: "in"}]     # actions, as in `actions:` today
    on_exit:  [{type: log, message: "out"}]
    states:
      - idle
      - name: busy
        states: [fetching, parsing]
      - {name: active_hist, history: shallow}  # or deep; a pseudo-state
  - name: running
    parallel: true                # each child is a region
    states:
      - {name: left, initial: a, states: [a, b]}
      - {name: right, initial: c, states: [c, d]}
  - {name: done, final: true}
transitions:
  - {from: active, to: done, event: stop}      # from a compound: while any descendant is active
  - {from: idle, to: busy, event: go}
  - {from: parsing, to: idle}                  # no event: an eventless transition
  - {from: running, to: running, event: tick, type: internal}
  - {from: a, to: b, event: flip}
"""


def check(text: str) -> CheckResult:
    return check_texts([("m.yaml", text)])


def found(result: CheckResult) -> Found:
    return {(d.line, d.col, d.code) for d in result.diagnostics}


def model(text: str) -> Machine:
    result = check(text)
    assert result.errors == [], result.errors
    (machine,) = result.machines
    return machine


# ---- the schema -----------------------------------------------------------------------


def test_the_issue_example_is_valid() -> None:
    jsonschema.validate(yaml.safe_load(ISSUE_EXAMPLE), schema.machine_schema())
    doc, problems = load_text("m.yaml", ISSUE_EXAMPLE)
    assert doc is not None and problems == []
    assert chartsyntax.prepare(doc) == [] and schema.validate(doc) == []


def test_the_corpus_nested_file_is_valid_once_on_is_a_name() -> None:
    path = require_corpus() / "statemachine-engine/tools/test_face_processor.yaml"
    doc, problems = load_text(str(path), path.read_text(encoding="utf-8"))
    assert doc is not None and problems == []
    # YAML 1.1 reads `on:` as true; inside state items it is the key `on`, positions and all.
    assert chartsyntax.prepare(doc) == []
    options = doc.data["states"]["INPAINTING_PHASE"]["states"]["running_inpainting"]
    assert list(options) == ["on"]
    on_path = ("states", "INPAINTING_PHASE", "states", "running_inpainting", "on")
    assert doc.pos(on_path, key=True) == (13, 9)
    assert schema.validate(doc) == []


def test_an_event_key_read_as_a_boolean_is_refused_where_written() -> None:
    text = "initial_state: a\nstates:\n  - name: a\n    on: {yes: b}\n  - b\n"
    assert found(check(text)) == {(4, 10, "SMC004")}


def test_a_list_of_targets_and_a_transition_type_are_valid() -> None:
    text = (
        "initial_state: a\nstates:\n  - a\n  - {name: p, parallel: true, states: "
        "[{name: r1, states: [x]}, {name: r2, states: [y]}]}\n"
        "transitions:\n  - {from: a, to: [x, y], event: go, type: external}\n"
    )
    assert found(check(text)) == set()


def test_an_unknown_transition_type_is_a_schema_error() -> None:
    text = "initial_state: a\ntransitions:\n  - {from: a, to: b, event: go, type: local}\n"
    assert found(check(text)) == {(3, 39, "SMC004")}


def test_to_in_a_state_item_is_only_for_history() -> None:
    (problem,) = check("initial_state: a\nstates:\n  - {name: a, to: b}\n  - b\n").errors
    assert (problem.line, problem.col, problem.code) == (3, 15, "SMC004")
    assert problem.message == "`to` in states[0] needs `history`"


def test_a_misspelt_history_kind_is_offered_the_right_one() -> None:
    (problem,) = check("initial_state: a\nstates:\n  - name: a\n    history: shalow\n").errors
    assert (problem.line, problem.col, problem.code) == (4, 14, "SMC004")
    assert problem.message == (
        "states[0].history is the string 'shalow', which is not one of: shallow, deep"
    )
    assert problem.hint == "did you mean 'shallow'?"


# ---- the model ------------------------------------------------------------------------


def test_the_issue_example_model() -> None:
    m = model(ISSUE_EXAMPLE)
    assert [(s.name, s.kind, s.parent) for s in m.states] == [
        ("active", "compound", None),
        ("idle", "atomic", "active"),
        ("busy", "compound", "active"),
        ("fetching", "atomic", "busy"),
        ("parsing", "atomic", "busy"),
        ("active_hist", "history", "active"),
        ("running", "parallel", None),
        ("left", "compound", "running"),
        ("a", "atomic", "left"),
        ("b", "atomic", "left"),
        ("right", "compound", "running"),
        ("c", "atomic", "right"),
        ("d", "atomic", "right"),
        ("done", "final", None),
    ]
    active = m.state("active")
    assert active.children == ("idle", "busy", "active_hist")
    assert (active.initial, active.initial_pos is not None) == ("idle", True)
    busy = m.state("busy")
    assert (busy.initial, busy.initial_pos) == ("fetching", None)  # the first child
    assert m.state("running").initial is None
    assert m.state("active_hist").history == "shallow"
    assert [a.params["message"] for a in active.on_entry] == ["in"]
    assert [a.params["message"] for a in active.on_exit] == ["out"]
    assert m.top_states == ("active", "running", "done")
    assert m.ancestors("fetching") == ("busy", "active")
    assert m.descendants("running") == ("left", "a", "b", "right", "c", "d")
    assert m.leaves("active") == ("idle", "fetching", "parsing")
    assert m.is_descendant("c", "running") and not m.is_descendant("running", "running")
    eventless = m.transitions[2]
    assert (eventless.event, eventless.eventless, eventless.target) == (None, True, "idle")
    assert m.transitions[3].internal and not m.transitions[0].internal
    assert m.final_states == ("done",)
    assert m.is_chart
    assert [feature for feature, _pos in m.chart_features] == [
        "compound states",
        "on_exit",
        "history states",
        "parallel states",
        "eventless transitions",
        "internal transitions",
    ]
    # The flat view leaves eventless transitions out: Edge.event is always a string.
    assert all(isinstance(edge.event, str) for edge in m.expanded)


def test_a_flat_machine_is_no_chart_and_its_states_are_atomic() -> None:
    m = model(
        "initial_state: a\nstates:\n  - a\n  - {name: b, final: true}\n"
        "transitions:\n  - {from: a, to: b, event: go}\n"
    )
    assert not m.is_chart and m.chart_features == ()
    assert [(s.kind, s.parent, s.children) for s in m.states] == [
        ("atomic", None, ()),
        ("final", None, ()),
    ]
    assert [t.all_targets[0][0] for t in m.transitions] == ["b"]


def test_on_entry_in_the_item_comes_before_the_actions_mapping_and_is_no_chart() -> None:
    m = model(
        "initial_state: a\nstates:\n  - name: a\n    on_entry: [{type: log, message: one}]\n"
        "  - b\ntransitions:\n  - {from: a, to: b, event: go}\n"
        "actions:\n  a:\n    - {type: log, message: two}\n"
    )
    assert [a.params["message"] for a in m.state("a").actions] == ["one", "two"]
    assert not m.is_chart


def test_a_wildcard_starts_from_every_non_final_leaf() -> None:
    m = model(
        "initial_state: p\nstates:\n  - {name: p, states: [a, b]}\n  - {name: halt, final: true}\n"
        "transitions:\n  - {from: a, to: b, event: go}\n  - {from: '*', to: halt, event: stop}\n"
    )
    assert [e.source for e in m.expanded if e.event == "stop"] == ["a", "b"]


def test_on_transitions_take_their_place_in_file_order() -> None:
    m = model(
        "initial_state: idle\nstates:\n  - name: idle\n    on: {go: busy}\n"
        "  - name: busy\n    on:\n      back: {to: idle, type: internal, description: x}\n"
        "transitions:\n  - {from: idle, to: idle, event: stay}\n"
    )
    assert [(t.index, t.source, t.event, t.target, t.internal) for t in m.transitions] == [
        (0, "idle", "go", "busy", False),
        (1, "busy", "back", "idle", True),
        (2, "idle", "stay", "idle", False),
    ]
    on_go = m.transitions[0]
    assert (on_go.pos.line, on_go.pos.col, on_go.target_pos.col) == (4, 10, 14)


def test_the_mapping_form_nests_too() -> None:
    m = model(
        "initial_state: P\nstates:\n  P:\n    initial: b\n    states:\n      a: {on: {go: b}}\n"
        "      b:\n        on: {go: a}\n"
    )
    assert [(s.name, s.kind, s.parent) for s in m.states] == [
        ("P", "compound", None),
        ("a", "atomic", "P"),
        ("b", "atomic", "P"),
    ]
    assert m.state("P").initial == "b"


def test_a_history_default() -> None:
    m = model(
        "initial_state: p\nstates:\n  - name: p\n    states:\n      - a\n      - b\n"
        "      - {name: h, history: deep, to: b}\n  - q\n"
        "transitions:\n  - {from: a, to: b, event: go}\n  - {from: p, to: q, event: out}\n"
        "  - {from: q, to: h, event: back}\n"
    )
    h = m.state("h")
    assert (h.kind, h.history, h.history_default) == ("history", "deep", ("b",))
    assert h.history_default_pos[0].line == 7


def test_raise_is_a_built_in_the_checker_knows() -> None:
    text = (
        "initial_state: a\nstates:\n  - name: a\n    on_entry: [{type: raise, event: go}]\n"
        "  - b\ntransitions:\n  - {from: a, to: b, event: go}\n"
    )
    assert found(check(text)) == set()
    assert model(text).chart_features[0][0] == "raise"
    missing = text.replace(", event: go}]", "}]")
    assert found(check(missing)) == {(4, 23, "SMC031")}


# ---- the checker ----------------------------------------------------------------------

CHART_MISTAKES: list[tuple[str, str, Found]] = [
    (
        "compound-without-children",
        "initial_state: a\nstates:\n  - {name: a, states: []}\n",
        {(3, 5, "SMC070")},
    ),
    (
        "parallel-without-regions",
        "initial_state: a\nstates:\n  - a\n  - {name: p, parallel: true}\n"
        "transitions:\n  - {from: a, to: p, event: go}\n",
        {(4, 5, "SMC070")},
    ),
    (
        "unknown-initial",
        "initial_state: p\nstates:\n  - {name: p, initial: idel, states: [idle, busy]}\n"
        "transitions:\n  - {from: idle, to: busy, event: go}\n",
        {(3, 24, "SMC071")},
    ),
    (
        "initial-on-a-leaf",
        "initial_state: a\nstates:\n  - {name: a, initial: b}\n  - b\n"
        "transitions:\n  - {from: a, to: b, event: go}\n",
        {(3, 24, "SMC071")},
    ),
    (
        "initial-on-a-parallel-state",
        "initial_state: p\nstates:\n  - {name: p, parallel: true, initial: r1, states: "
        "[{name: r1, states: [a]}, {name: r2, states: [b]}]}\n",
        {(3, 40, "SMC071")},
    ),
    (
        "name-used-twice-in-the-tree",
        "initial_state: p\nstates:\n  - {name: p, states: [a, b]}\n"
        "  - {name: q, states: [c, a]}\ntransitions:\n  - {from: a, to: b, event: go}\n"
        "  - {from: b, to: c, event: go}\n",
        {(4, 27, "SMC011")},
    ),
    (
        "history-with-a-transition",
        "initial_state: p\nstates:\n  - {name: p, states: [a, {name: h, history: shallow}]}\n"
        "  - b\ntransitions:\n  - {from: h, to: a, event: go}\n"
        "  - {from: a, to: b, event: go}\n  - {from: b, to: h, event: back}\n",
        {(6, 12, "SMC072")},
    ),
    (
        "history-default-outside",
        "initial_state: p\nstates:\n  - {name: p, states: [a, {name: h, history: shallow, "
        "to: b}]}\n  - b\ntransitions:\n  - {from: a, to: b, event: go}\n"
        "  - {from: b, to: h, event: back}\n",
        {(3, 59, "SMC072")},
    ),
    (
        "history-default-unknown",
        "initial_state: p\nstates:\n  - {name: p, states: [a, {name: h, history: shallow, "
        "to: x}]}\n  - b\ntransitions:\n  - {from: a, to: b, event: go}\n"
        "  - {from: b, to: h, event: back}\n",
        {(3, 59, "SMC010")},
    ),
    (
        "two-top-level-targets",
        "initial_state: a\nstates: [a, b, c]\n"
        "transitions:\n  - {from: a, to: [b, c], event: go}\n",
        {(4, 23, "SMC073")},
    ),
    (
        "unknown-target-in-a-list",
        "initial_state: a\nstates: [a, b]\ntransitions:\n  - {from: a, to: [b, zz], event: go}\n",
        {(4, 23, "SMC010")},
    ),
    (
        "eventless-self-loop",
        "initial_state: a\nstates: [a, b]\ntransitions:\n  - {from: a, to: a}\n"
        "  - {from: a, to: b, event: go}\n",
        {(4, 5, "SMC074")},
    ),
    (
        "eventless-loop-through-a-parent",
        "initial_state: p\nstates:\n  - {name: p, states: [a, b]}\n  - q\n"
        "transitions:\n  - {from: a, to: b}\n  - {from: b, to: p}\n"
        "  - {from: p, to: q, event: out}\n",
        {(6, 5, "SMC074")},
    ),
    (
        "one-region",
        "initial_state: p\nstates:\n  - {name: p, parallel: true, states: [{name: r, "
        "states: [a, b]}]}\ntransitions:\n  - {from: a, to: b, event: go}\n",
        {(3, 5, "SMC075")},
    ),
    (
        "unreachable-nested-state-reported-outermost",
        "initial_state: p\nstates:\n  - {name: p, states: [a, b]}\n"
        "  - {name: q, states: [{name: r, states: [x]}]}\n"
        "transitions:\n  - {from: a, to: b, event: go}\n",
        {(4, 5, "SMC020")},  # q, not r nor x inside it
    ),
    (
        "leaf-that-only-loops",
        "initial_state: p\nstates:\n  - {name: p, states: [a, b]}\n"
        "transitions:\n  - {from: a, to: b, event: go}\n  - {from: b, to: b, event: again}\n",
        {(3, 27, "SMC021")},
    ),
    (
        "xstate-always",
        "initial_state: A\nstates:\n  A:\n    always: B\n  B: {}\n",
        {(4, 5, "SMC005")},
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [(text, expected) for _id, text, expected in CHART_MISTAKES],
    ids=[case_id for case_id, _text, _expected in CHART_MISTAKES],
)
def test_chart_mistake(text: str, expected: Found) -> None:
    assert found(check(text)) == expected


def test_an_eventless_chain_that_ends_is_no_cycle() -> None:
    text = (
        "initial_state: a\nstates:\n  - a\n  - {name: p, states: [b, c]}\n  - d\n"
        "transitions:\n  - {from: a, to: p}\n  - {from: b, to: c}\n  - {from: c, to: d}\n"
        "  - {from: d, to: a, event: again}\n"
    )
    assert found(check(text)) == set()


def test_targets_in_different_regions_and_nested_targets_are_fine() -> None:
    text = (
        "initial_state: a\nstates:\n  - a\n  - name: p\n    parallel: true\n    states:\n"
        "      - {name: r1, states: [x, x2]}\n      - {name: r2, states: [y, y2]}\n"
        "transitions:\n  - {from: a, to: [x2, y2], event: go}\n  - {from: x2, to: [r1, x], "
        "event: back}\n  - {from: p, to: a, event: out}\n  - {from: x, to: x2, event: on1}\n"
        "  - {from: y, to: y2, event: on2}\n"
    )
    assert found(check(text)) == set()


def test_the_issue_example_checks_with_its_two_real_findings() -> None:
    """Nothing leads to `parsing` (busy starts in fetching) nor to `running`."""
    assert found(check(ISSUE_EXAMPLE)) == {(10, 28, "SMC020"), (12, 5, "SMC020")}


def test_events_of_a_descendant_handle_an_action_of_its_compound() -> None:
    """A compound's on-entry action returns an event its child has a transition on: handled
    (the child is active when the event is processed), so no SMC022."""
    text = (
        "initial_state: p\nstates:\n  - name: p\n"
        "    on_entry: [{type: set_context, key: k, value: 1, success: next}]\n"
        "    states: [a, b]\ntransitions:\n  - {from: a, to: b, event: next}\n"
    )
    assert found(check(text)) == set()


# ---- random charts never crash the checker ---------------------------------------------


@st.composite
def charts(draw: st.DrawFn) -> str:
    """A random chart: a tree up to depth 4 with compound, parallel, history and final
    states, and transitions (eventless, internal, several targets) between any names, some
    of them unknown."""
    counter = iter(range(1000))

    def item(depth: int) -> Any:
        name = f"s{next(counter)}"
        kind = draw(st.sampled_from(["atomic", "atomic", "compound", "parallel", "history"]))
        if kind == "atomic" or depth >= 4:
            return draw(st.sampled_from([name, {"name": name, "final": True}]))
        if kind == "history":
            return {"name": name, "history": draw(st.sampled_from(["shallow", "deep"]))}
        children = [item(depth + 1) for _ in range(draw(st.integers(0, 3)))]
        node: dict[str, Any] = {"name": name, "states": children}
        if kind == "parallel":
            node["parallel"] = True
        return node

    states = [item(1) for _ in range(draw(st.integers(1, 3)))]
    names = [f"s{n}" for n in range(next(counter))] + ["zz"]
    transitions = []
    for _ in range(draw(st.integers(0, 8))):
        transition: dict[str, Any] = {
            "from": draw(st.sampled_from([*names, "*"])),
            "to": draw(
                st.one_of(
                    st.sampled_from(names), st.lists(st.sampled_from(names), min_size=1, max_size=3)
                )
            ),
        }
        if draw(st.booleans()):
            transition["event"] = draw(st.sampled_from(["go", "back", "timeout(1)"]))
        if draw(st.booleans()):
            transition["type"] = "internal"
        transitions.append(transition)
    document = {
        "initial_state": draw(st.sampled_from(names)),
        "states": states,
        "transitions": transitions,
    }
    return yaml.safe_dump(document, sort_keys=False)


@settings(max_examples=150, deadline=None)
@given(charts())
def test_random_charts_never_crash_the_checker(text: str) -> None:
    result = check(text)
    assert all(d.code in CODES and d.line >= 1 and d.col >= 1 for d in result.diagnostics)
    assert all(d.code != "SMC004" for d in result.diagnostics), result.diagnostics


def test_smc_run_compiles_a_chart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`smc run` compiles a YAML file through the machine cache: a chart is compiled to a
    chart class (tests/runtime/test_statecharts.py runs one)."""
    monkeypatch.setenv("SMC_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "chart.yaml"
    path.write_text(ISSUE_EXAMPLE, encoding="utf-8")
    compiled = compile_machine_file(str(path), [])
    assert compiled.checked is not None and compiled.checked.errors == []
    assert compiled.module_path is not None
    chart = machine_class_in(import_file(compiled.module_path), None, str(compiled.module_path))
    assert is_chart(chart)
    machine = chart()
    assert machine.state == "idle"
    assert machine.configuration == {"active", "idle"}  # type: ignore[attr-defined]
