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
