"""Raised events that carry an id (``raise`` with ``id_location``, read as
``event.send_id``) and the type of the event I/O processor (``machine.processor_type``,
``smc.ProcessorType``): SCXML's ``_event.sendid`` of the error a failed send raises (W3C
test332) and ``_event.origintype`` equal to the URI and to ``'scxml'`` (test198, test352).
Generated classes are built and run; no part of the compiler is replaced."""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from smc import ProcessorType
from smc.compiler.check import check_texts, not_yet_compiled_data
from smc.compiler.statechart import Chart, Interpreter, State, Transition
from tests.compiler.test_codegen_typing import PYRIGHT, run_pyright
from tests.support.statecharts import checked, compiled

URI = "http://www.w3.org/TR/scxml/#SCXMLEventProcessor"

CARRIED = """\
initial_state: s0
metadata: {machine_name: carried}
context:
  first: {type: [string, "null"], default: null}
  second: {type: [string, "null"], default: null}
  seen: {type: array, items: {type: [string, "null"]}, default: []}
  loops: {type: integer, default: 0}
  divisor: {type: integer, default: 1}
events: {go: null, failed: null, again: null, other: null, done.state.s1: null}
states:
  - name: s0
    on_entry:
      - {type: raise, event: failed, id_location: first}
      - {type: raise, event: other}
      - {type: raise, event: failed, id_location: second}
  - name: s1
    states:
      - name: inner
        on_entry:
          - {type: raise, event: again, id_location: first}
          - {type: assign, location: loops, expr: "loops + 1"}
      - name: later
        on_entry:
          - {type: raise, event: again, id_location: second}
      - name: done
        final: true
transitions:
  - from: s0
    event: failed
    to: []
    actions: [{type: assign, location: seen, expr: "seen + [event.send_id]"}]
  - from: s0
    event: other
    to: []
    actions: [{type: assign, location: seen, expr: "seen + [event.send_id]"}]
  - {from: s0, to: s1, event: go}
  # eventless: both raises run before the queue is handled
  - {from: inner, to: later}
  - from: later
    event: again
    to: []
    actions:
      - {type: assign, location: seen, expr: "seen + [event.send_id]"}
      - {type: assign, location: divisor, expr: "1 // divisor"}
  - {from: later, to: done, event: go}
  - from: s1
    event: done.state.s1
    to: []
    actions: [{type: assign, location: seen, expr: "seen + [event.send_id]"}]
"""


@pytest.fixture
def carried(tmp_path: Path) -> ModuleType:
    return compiled(checked(CARRIED), tmp_path, "carried.yaml")


def test_each_raised_event_carries_the_id_its_raise_drew(carried: ModuleType) -> None:
    m = carried.Carried()
    first, second = m.context.first, m.context.second
    assert isinstance(first, str) and isinstance(second, str) and first != second
    # queued in order, handled in order: each sees its own; the raise without one sees none
    assert m.context.seen == [first, None, second]
    m.fire("failed")  # the same event from outside carries no id
    m.fire("other")
    assert m.context.seen == [first, None, second, None, None]


def test_ids_queued_in_a_later_step_follow_their_events(carried: ModuleType) -> None:
    m = carried.Carried()
    m.context.seen = []
    m.go()  # inner and later each raise `again` before either is handled
    first, second = m.context.first, m.context.second
    assert m.context.seen == [first, second] and first != second
    m.go()  # later -> done: done.state.s1 is queued by the core and carries none
    assert m.context.seen == [first, second, None]


def test_a_step_that_failed_leaves_no_id_to_the_next(carried: ModuleType) -> None:
    """An action that raises in the middle of a step leaves the ids still queued; the next
    step starts without them, so each event still gets its own."""
    m = carried.Carried()
    m.context.seen, m.context.divisor = [], 0
    with pytest.raises(ZeroDivisionError):
        m.go()  # the first `again` fails: two ids are left queued
    m.context.seen, m.context.divisor, m.context.loops = [], 1, 0
    machine = carried.Carried.restore(["s1", "later"], m.context)
    machine.fire("again")  # from outside: none
    assert machine.context.seen == [None]


def test_machines_without_such_a_raise_read_none_at_no_cost(tmp_path: Path) -> None:
    text = CARRIED.replace(", id_location: first", "").replace(", id_location: second", "")
    module = compiled(checked(text), tmp_path, "plain.yaml")
    m = module.Carried()
    assert m.context.seen == [None, None, None]
    source = Path(str(module.__file__)).read_text(encoding="utf-8")
    assert "_raised_ids" not in source and "_event_send_id" not in source
    assert "uuid" not in source and "deque" not in source


def test_the_core_records_where_each_carried_event_is_taken() -> None:
    """The interpreter records a ``take`` (owner: the event; 1 when it carries data) where
    a chart with a carrying raise takes an event from the internal queue, and nothing of
    the kind in a chart without one."""
    raising = (
        {"type": "raise", "event": "e", "id_location": "f"},
        {"type": "raise", "event": "e"},
    )
    chart = Chart(
        states=(State("a", "atomic", on_entry=raising), State("b", "atomic")),
        transitions=(Transition("a", ("b",), "e", order=0),),
    )
    step = Interpreter(chart).start()
    assert [(r.kind, r.owner, r.position) for r in step.actions] == [
        ("entry", "a", 0),
        ("entry", "a", 1),
        ("take", "e", 1),
        ("take", "e", 0),
    ]
    plain = Chart(
        states=(State("a", "atomic", on_entry=({"type": "raise", "event": "e"},)),),
        transitions=(Transition("a", (), "e", order=0),),
    )
    assert [r.kind for r in Interpreter(plain).start().actions] == ["entry"]


def test_the_export_refuses_what_it_would_drop() -> None:
    """``smc export`` writes no id drawing yet: SMC094 at the raise, not a silent drop."""
    found = [d for d in not_yet_compiled_data(checked(CARRIED)) if "id_location" in d.message]
    assert [(d.code, d.line) for d in found] == [("SMC094", 13)]  # the first such raise
    assert not_yet_compiled_data(checked(CARRIED), building=True) == []


@pytest.mark.parametrize(
    "action, code",
    [
        ("{type: raise, event: e, id_location: nope}", "SMC093"),
        ("{type: raise, event: e, id_location: count}", "SMC092"),
    ],
)
def test_a_raise_id_location_is_a_string_field(action: str, code: str) -> None:
    text = (
        "initial_state: a\ncontext:\n  count: {type: integer, default: 0}\n"
        f"states:\n  - name: a\n    on_entry:\n      - {action}\n  - name: b\n"
        "transitions:\n  - {from: a, to: b, event: e}\n"
    )
    result = check_texts([("m.yaml", text)])
    assert [(d.code, d.line) for d in result.errors] == [(code, 7)]


PROCESSOR = """\
initial_state: a
metadata: {machine_name: processor}
context:
  kind: {default: null}
  typed: {type: string, expr: "machine.processor_type"}
  short: {type: boolean, default: false}
  folded: {type: boolean, default: false}
events: {go: null}
states:
  - name: a
  - name: b
    on_entry:
      - {type: assign, location: kind, expr: "machine.processor_type"}
      - {type: assign, location: short, expr: "kind == 'scxml' and kind == typed"}
      - type: assign
        location: folded
        expr: "event.name == 'go' and machine.processor_type == 'scxml'"
transitions:
  - {from: a, to: b, event: go, when: "machine.processor_type != 'other'"}
"""


def test_the_processor_type_is_its_uri_and_equals_its_short_form(tmp_path: Path) -> None:
    module = compiled(checked(PROCESSOR), tmp_path, "processor.yaml")
    m = module.Processor()
    m.go()
    kind = m.context.kind
    assert isinstance(kind, ProcessorType) and str(kind) == URI
    # both ways round: str's reflected == gives way to the subclass's
    assert kind == URI and kind == "scxml" and "scxml" == kind and URI == kind  # noqa: SIM300
    assert (kind != "scxml") is False and kind != "http://example.com/other"
    assert m.context.short is True and m.context.folded is True
    source = Path(str(module.__file__)).read_text(encoding="utf-8")
    assert "from smc import IllegalTransition, ProcessorType, Sent" in source
    # where the event is known, the comparison is decided when the module is built
    assert "ctx.folded = True" in source
    # the context: copied and pickled as itself; as JSON, the URI (a plain string)
    data = m.context.to_dict()
    assert isinstance(data["kind"], ProcessorType)
    assert isinstance(pickle.loads(pickle.dumps(m.context)).kind, ProcessorType)
    assert isinstance(copy.deepcopy(m.context).kind, ProcessorType)
    loaded = json.loads(json.dumps(data))
    assert loaded["kind"] == URI and type(loaded["kind"]) is str
    again = module.Context.from_dict(loaded)
    assert again.kind == URI and again.kind != "scxml"  # a plain string from here on


def test_processor_type_hashes_as_its_uri() -> None:
    kind = ProcessorType(URI)
    assert hash(kind) == hash(URI) and {URI: 1}[kind] == 1
    assert {"scxml": 1}.get(kind) is None  # the caveat: keyed by the short form, not found
    assert kind in ["scxml"] and "scxml" in [kind] and kind in {URI}
    assert repr(kind) == f"ProcessorType({URI!r})"
    assert ProcessorType("other") != "scxml" and ProcessorType("other") == "other"
    assert (kind == 1) is False and (kind != 1) is True


def test_a_module_without_the_processor_type_imports_nothing_more(tmp_path: Path) -> None:
    # a string read in its place (a literal against 'scxml' would be SMC092: never equal)
    text = PROCESSOR.replace("machine.processor_type", "machine.name")
    source = Path(str(compiled(checked(text), tmp_path, "p.yaml").__file__)).read_text()
    assert "ProcessorType" not in source


def test_the_generated_modules_pass_mypy_strict(carried: ModuleType, tmp_path: Path) -> None:
    module = compiled(checked(PROCESSOR), tmp_path, "processor.yaml")
    for path in (Path(str(carried.__file__)), Path(str(module.__file__))):
        done = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout
    # pyright strict too (the carried module turns off reportPrivateUsage for its own
    # action functions: docs/generated-code.md)
    if PYRIGHT.is_file():
        for path in (Path(str(carried.__file__)), Path(str(module.__file__))):
            assert run_pyright(path.parent, path.name) == (0, set())
