"""Structural statechart features (docs/language.md, Statecharts): ``raise`` on a transition
runs when the transition is taken; targetless transitions (``to: []``, or no ``to:`` with
actions); several initial states (``initial: [a, b]`` naming descendants, or regions'
states); actions and a history target on a compound's initial transition, and actions on a
history state's default transition. Each in the model, the checker (positioned diagnostics)
and the generated class, and as ``smc import`` maps the SCXML for it.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from smc.compiler.check import CheckResult, check_texts
from smc.compiler.loader.scxml import load_scxml_text
from smc.compiler.model import Machine
from smc.compiler.statechart import chart_from_dict
from smc.compiler.statechart.semantics import Interpreter
from tests.support.statecharts import compiled as compile_machine

Found = set[tuple[int, int, str]]
NS = "http://www.w3.org/2005/07/scxml"


def check(text: str) -> CheckResult:
    return check_texts([("m.yaml", text)])


def found(result: CheckResult) -> Found:
    return {(d.line, d.col, d.code) for d in result.errors}


def checked(text: str) -> Machine:
    result = check(text)
    assert not result.errors, [str(d) for d in result.errors]
    (machine,) = result.machines
    return machine


def compiled(text: str, directory: Path) -> ModuleType:
    return compile_machine(checked(text), directory, "m.yaml")


def chart_class(module: ModuleType) -> Any:
    cls = module.M  # the class of m.yaml

    class Logged(cls):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.logs: list[tuple[str, object]] = []
            super().__init__(*args, **kwargs)

        def on_log(self, label: str, value: object) -> None:
            self.logs.append((label, value))

    return Logged


def imported(text: str) -> dict[str, Any]:
    doc, problems = load_scxml_text("m.scxml", text.encode())
    assert doc is not None and isinstance(doc.data, dict), [str(p) for p in problems]
    return doc.data


# ---- raise on a transition ------------------------------------------------------------

RAISE_ON_TRANSITION = """\
initial_state: a
states:
  - name: a
    on_entry: [{type: log, label: enter, expr: "'a'"}]
  - name: b
    on_entry: [{type: log, label: enter, expr: "'b'"}]
  - c
transitions:
  - from: a
    to: b
    event: go
    actions:
      - {type: raise, event: next}
      - {type: log, label: transition, expr: "'go'"}
  - {from: b, to: c, event: next}
  - {from: a, to: c, event: next}
"""


def test_a_raise_on_a_transition_is_the_transitions_action() -> None:
    machine = checked(RAISE_ON_TRANSITION)
    (go,) = [t for t in machine.transitions if t.event == "go"]
    assert [a.type for a in go.actions] == ["raise", "log"]
    assert machine.state("a").actions[1:] == ()  # not the source's entry (design style)


def test_a_raise_on_a_transition_runs_when_it_is_taken(tmp_path: Path) -> None:
    m = chart_class(compiled(RAISE_ON_TRANSITION, tmp_path))()
    assert m.configuration == frozenset({"a"})  # nothing raised on entering a
    m.fire("go")
    # the raised event is handled after the step that raised it: b was entered, then left
    assert m.configuration == frozenset({"c"})
    assert m.logs == [("enter", "a"), ("transition", "go"), ("enter", "b")]


# ---- targetless transitions ---------------------------------------------------------------

TARGETLESS = """\
initial_state: p
context:
  n: {type: integer, default: 0}
states:
  - name: p
    on_entry: [{type: log, label: enter, expr: "'p'"}]
    on_exit: [{type: log, label: exit, expr: "'p'"}]
    states:
      - name: a
        on_entry: [{type: log, label: enter, expr: "'a'"}]
        on_exit: [{type: log, label: exit, expr: "'a'"}]
      - b
  - done
transitions:
  - from: a
    event: tick
    actions: [{type: assign, location: n, expr: "n + 1"}]
  - {from: a, to: [], event: stop}
  - {from: p, to: done, event: stop}
  - {from: p, to: b, event: tick}
  - {from: b, to: done, event: stop}
"""


def test_a_targetless_transition_is_in_the_model() -> None:
    machine = checked(TARGETLESS)
    tick, stop = machine.transitions[:2]
    assert tick.targetless and stop.targetless
    assert (tick.target, stop.target) == ("a", "a")  # it stays in its source
    assert not machine.transitions[2].targetless
    assert "targetless transitions" in dict(machine.chart_features)


def test_a_targetless_transition_runs_its_actions_and_exits_nothing(tmp_path: Path) -> None:
    m = chart_class(compiled(TARGETLESS, tmp_path))()
    m.logs.clear()
    m.fire("tick")
    m.fire("tick")
    assert m.context.n == 2 and m.configuration == frozenset({"p", "a"})
    assert m.logs == []  # no exit, no entry
    m.fire("stop")  # taken by a's `to: []`, so p's transition on stop is not
    assert m.configuration == frozenset({"p", "a"})


def test_a_flat_transition_without_to_or_actions_is_refused() -> None:
    result = check(
        "initial_state: a\ntransitions:\n  - {from: a, event: go}\n  - {from: a, to: b}\n"
    )
    assert found(result) == {(3, 5, "SMC076")}


def test_the_import_writes_targetless_transitions() -> None:
    data = imported(
        f"""<scxml xmlns="{NS}" initial="a"><datamodel><data id="n" expr="0"/></datamodel>
  <state id="a">
    <transition event="t"><assign location="n" expr="n + 1"/></transition>
    <transition event="u" type="internal"/>
    <transition event="v" target="a"/>
  </state>
</scxml>"""
    )
    t, u, v = data["transitions"]
    assert "to" not in t and t["actions"][0]["type"] == "assign"
    assert u == {"from": "a", "to": [], "event": "u"}  # a type on a targetless one is moot
    assert v["to"] == "a"


# ---- several initial states -------------------------------------------------------------

SEVERAL_INITIAL = """\
initial_state: [x2, y2]
states:
  - name: top
    parallel: true
    states:
      - {name: x, states: [x1, x2]}
      - {name: y, states: [y1, y2]}
  - name: c
    initial: [q2, r2]
    states:
      - q0
      - name: p
        parallel: true
        states:
          - {name: q, states: [q1, q2]}
          - {name: r, states: [r1, r2]}
      - {name: deep, initial: d2, states: [d1, d2]}
transitions:
  - {from: x2, to: x1, event: go}
  - {from: x1, to: c, event: go}
  - {from: q2, to: q1, event: go}
  - {from: q1, to: deep, event: go}
  - {from: q0, to: top, event: back}
  - {from: d2, to: d1, event: back}
  - {from: d1, to: q0, event: back}
  - {from: y1, to: y2, event: back}
  - {from: r1, to: r2, event: back}
"""


def test_several_initial_states_are_in_the_model() -> None:
    machine = checked(SEVERAL_INITIAL)
    assert machine.initial_state == "x2" and machine.initial_states == ("x2", "y2")
    assert [(p.line, p.col) for _, p in machine.initial_targets] == [(1, 17), (1, 21)]
    c = machine.state("c")
    assert c.initial == "q2" and c.initials == ("q2", "r2")
    assert [(p.line, p.col) for _, p in c.initial_targets if p] == [(9, 15), (9, 19)]
    assert "several initial states" in dict(machine.chart_features)


def test_several_initial_states_are_entered_together(tmp_path: Path) -> None:
    m = chart_class(compiled(SEVERAL_INITIAL, tmp_path))()
    assert m.configuration == frozenset({"top", "x", "x2", "y", "y2"})
    m.fire("go")
    m.fire("go")  # into c: its initial states, not its first child q0
    assert m.configuration == frozenset({"c", "p", "q", "q2", "r", "r2"})
    m.fire("go")
    m.fire("go")  # deep's initial is a child, as before
    assert m.configuration == frozenset({"c", "deep", "d2"})


def test_initial_states_that_cannot_be_active_together_are_refused() -> None:
    text = SEVERAL_INITIAL.replace("initial: [q2, r2]", "initial: [q2, q1]").replace(
        "initial_state: [x2, y2]", "initial_state: [x2, c]"
    )
    assert found(check(text)) == {(1, 21, "SMC073"), (9, 19, "SMC073")}


def test_an_initial_outside_the_compound_is_refused_at_its_name() -> None:
    text = SEVERAL_INITIAL.replace("initial: [q2, r2]", "initial: [q2, y2]")
    assert found(check(text)) == {(9, 19, "SMC071")}


def test_the_import_writes_several_initial_states() -> None:
    data = imported(f"""<scxml xmlns="{NS}" initial="a1 b1">
  <parallel id="p">
    <state id="a"><state id="a0"/><state id="a1"/></state>
    <state id="b"><state id="b0"/><state id="b1"/></state>
  </parallel>
  <state id="s" initial="u1 v1">
    <parallel id="q">
      <state id="u"><state id="u0"/><state id="u1"/></state>
      <state id="v"><state id="v0"/><state id="v1"/></state>
    </parallel>
  </state>
  <state id="t">
    <initial><transition target="w"/></initial>
    <state id="w0"/><state id="w"/>
  </state>
</scxml>""")
    assert data["initial_state"] == ["a1", "b1"]
    _, s, t = data["states"]
    assert s["initial"] == ["u1", "v1"] and t["initial"] == "w"


INITIAL_HISTORY = """\
initial_state: c
states:
  - name: c
    initial: h
    states:
      - {name: h, history: shallow, to: b}
      - a
      - b
  - out
transitions:
  - {from: b, to: a, event: flip}
  - {from: c, to: out, event: leave}
  - {from: out, to: c, event: back}
"""


def test_an_initial_history_state_restores_and_defaults(tmp_path: Path) -> None:
    machine = checked(INITIAL_HISTORY)
    assert machine.state("c").initial == "h"
    m = chart_class(compiled(INITIAL_HISTORY, tmp_path))()
    assert m.configuration == frozenset({"c", "b"})  # nothing to restore: h's default
    m.fire("flip")
    m.fire("leave")
    m.fire("back")  # entered by default: the history restores a
    assert m.configuration == frozenset({"c", "a"})


# ---- initial and default actions ----------------------------------------------------------

CONTENT = """\
initial_state: c
context:
  n: {type: integer, default: 0}
states:
  - name: c
    initial: h
    on_entry: [{type: log, label: enter, expr: "'c'"}]
    initial_actions:
      - {type: log, label: initial, expr: "n"}
      - {type: assign, location: n, expr: "n + 1"}
    states:
      - name: h
        history: shallow
        to: b
        default_actions: [{type: log, label: default, expr: "n"}]
      - name: a
        on_entry: [{type: log, label: enter, expr: "'a'"}]
      - name: b
        on_entry: [{type: log, label: enter, expr: "'b'"}]
  - out
transitions:
  - {from: b, to: a, event: flip}
  - {from: c, to: out, event: leave}
  - {from: out, to: c, event: back}
  - {from: out, to: a, event: into}
"""


def test_initial_and_default_actions_run_in_scxml_order(tmp_path: Path) -> None:
    m = chart_class(compiled(CONTENT, tmp_path))()
    # the compound's on_entry, its initial transition's actions, then the history's default
    # actions (after its parent's entry), then the default state's entry
    assert m.logs == [("enter", "c"), ("initial", 0), ("default", 1), ("enter", "b")]
    m.logs.clear()
    m.fire("flip")
    m.fire("leave")
    m.fire("back")  # by default again: the initial actions run; the history restores a
    assert m.logs == [("enter", "a"), ("enter", "c"), ("initial", 1), ("enter", "a")]
    m.logs.clear()
    m.fire("leave")
    m.fire("into")  # into a child directly: no default entry, no initial actions
    assert m.logs == [("enter", "c"), ("enter", "a")] and m.context.n == 2


def test_initial_and_default_actions_are_checked_where_they_are_written() -> None:
    text = (
        CONTENT.replace('expr: "n + 1"', 'expr: "m + 1"')
        .replace("  - out\n", "  - name: out\n    initial_actions: [{type: log, label: x}]\n")
        .replace(
            "default_actions: [{type: log", "default_actions: [{type: bash, command: x}, {type: log"
        )
    )
    assert found(check(text)) == {(10, 44, "SMC091"), (21, 30, "SMC071"), (15, 34, "SMC097")}


def test_the_import_writes_initial_and_default_actions() -> None:
    data = imported(f"""<scxml xmlns="{NS}">
  <state id="s">
    <initial><transition target="h"><raise event="e"/></transition></initial>
    <history id="h"><transition target="a"><log label="d" expr="1"/></transition></history>
    <state id="a"><transition event="e" target="a"/></state>
  </state>
</scxml>""")
    (s,) = data["states"]
    assert s["initial"] == "h" and s["initial_actions"] == [{"type": "raise", "event": "e"}]
    h = s["states"][0]
    assert h["default_actions"] == [{"type": "log", "label": "d", "expr": "1"}]


def test_default_actions_outside_a_history_state_are_refused() -> None:
    text = CONTENT.replace(
        "        on_entry: [{type: log, label: enter, expr: \"'a'\"}]\n",
        "        default_actions: [{type: log, label: x, expr: n}]\n",
    )
    assert found(check(text)) == {(17, 34, "SMC072")}


def test_the_core_runs_initial_and_default_content_in_appendix_d_order() -> None:
    chart = chart_from_dict(
        {
            "states": [
                {
                    "name": "s",
                    "initial": ["x1", "y1"],
                    "on_entry": ["s-entry"],
                    "initial_actions": ["s-initial"],
                    "states": [
                        {
                            "name": "p",
                            "parallel": True,
                            "states": [
                                {"name": "x", "states": ["x0", "x1"]},
                                {
                                    "name": "y",
                                    "states": [
                                        {"name": "hy", "history": "shallow", "to": "y1"},
                                        "y0",
                                        "y1",
                                    ],
                                },
                            ],
                        },
                        {
                            "name": "q",
                            "initial": "hq",
                            "initial_actions": ["q-initial"],
                            "states": [
                                {
                                    "name": "hq",
                                    "history": "deep",
                                    "to": "q1",
                                    "default_actions": ["hq-default"],
                                },
                                "q0",
                                {"name": "q1", "on_entry": ["q1-entry"]},
                            ],
                        },
                    ],
                }
            ],
            "transitions": [
                {"from": "x1", "to": "q", "event": "go"},
                {"from": "q", "to": "x1", "event": "back"},
            ],
        }
    )
    ran: list[object] = []
    interpreter = Interpreter(chart, execute=lambda ref, action: ran.append(action))
    interpreter.start()
    # s is entered by default: its content after its entry; the regions' own (x, y) are not
    assert ran == ["s-entry", "s-initial"]
    assert interpreter.configuration == frozenset({"s", "p", "x", "x1", "y", "y1"})
    ran.clear()
    interpreter.send("go")
    assert ran == ["q-initial", "hq-default", "q1-entry"]
    interpreter.send("back")
    ran.clear()
    interpreter.send("go")  # q remembers q1: its initial content runs, the default's does not
    assert ran == ["q-initial", "q1-entry"]


def test_an_initial_history_state_must_be_the_compounds_own() -> None:
    other = INITIAL_HISTORY.replace(
        "      - {name: h, history: shallow, to: b}\n      - a\n",
        "      - name: d\n        states: [{name: h, history: shallow, to: a}, a]\n",
    )
    assert found(check(other)) == {(4, 14, "SMC071")}
    start = INITIAL_HISTORY.replace("initial_state: c", "initial_state: h")
    assert found(check(start)) == {(1, 16, "SMC071")}
