"""Pure actions in the generated chart class (issue 14, docs/language.md "Actions in the
class", docs/generated-code.md "Actions in the class"): ``if``/``elif``/``else`` blocks,
``log`` of an expression (the ``on_log`` hook), ``send`` to the machine itself
(``take_sent()`` -> ``smc.machine.Sent``). The modules are generated from YAML, written to a
temporary directory and imported; the tests drive them and look at what they did.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from smc import Sent
from smc.compiler import codegen
from smc.compiler.charts import machine_table
from smc.compiler.check import not_yet_compiled_data
from smc.compiler.pylayout import format_python
from tests.support.statecharts import checked
from tests.support.statecharts import compiled as compile_machine

PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: The retry chart with its decisions made by ``if`` blocks on entry: a block that only
#: assigns and sends (the core leaves it whole), and one that raises (the core opens it).
RETRY = """\
initial_state: idle
metadata: {machine_name: retry}
context:
  attempts: {type: integer, default: 0}
  max_attempts: {type: integer, default: 3}
  grade: {type: string, default: ""}
events:
  start: null
  failed:
    payload: {type: object, properties: {error: {type: string}}, required: [error]}
  retry:
    payload: {type: object, properties: {attempt: {type: integer}}, required: [attempt]}
  give_up: null
states:
  - name: idle
  - name: running
  - name: failed
    on_entry:
      - {type: log, label: "Attempts", expr: "attempts"}
      - type: if
        when: "attempts < max_attempts"
        then:
          - {type: send, event: retry, delay: "1.5s", payload: {attempt: "attempts + 1"}}
        else:
          - {type: raise, event: give_up}
      - type: if
        when: "attempts == 1"
        then: [{type: assign, location: grade, expr: "'first'"}]
        elif:
          - when: "attempts < max_attempts"
            then: [{type: assign, location: grade, expr: "'again'"}]
        else:
          - {type: assign, location: grade, expr: "'last'"}
          - {type: log, label: "Outcome", expr: "'fail'"}
  - {name: dead, final: true}
transitions:
  - {from: idle, to: running, event: start}
  - from: running
    to: failed
    event: failed
    actions:
      - {type: assign, location: attempts, expr: "attempts + 1"}
      - {type: log, label: "Error", expr: "payload.error"}
  - {from: failed, to: running, event: retry}
  - {from: failed, to: dead, event: give_up}
"""

#: SCXML order: exits (innermost first), the transition's actions, entries (outermost
#: first); on starting, the initial configuration's entries; a send without delay.
ORDER = """\
initial_state: a
metadata: {machine_name: order}
context:
  n: {type: integer, default: 0}
events:
  go: null
  ping: null
states:
  - name: a
    on_entry:
      - {type: log, label: "enter", expr: "'a'"}
      - {type: send, event: ping}
    on_exit: [{type: log, label: "exit", expr: "'a'"}]
  - name: p
    states:
      - name: b
        on_entry:
          - {type: log, label: "enter", expr: "'b'"}
          - type: if
            when: "n > 0"
            then: [{type: log, label: "n", expr: "n"}]
    on_entry: [{type: log, label: "enter", expr: "'p'"}]
transitions:
  - from: a
    to: b
    event: go
    actions:
      - {type: assign, location: n, expr: "n + 5"}
      - {type: log, label: "transition", expr: "n"}
      - {type: send, event: ping, delay: 2}
  - {from: b, to: b, event: ping}
"""


def compiled(text: str, directory: Path) -> ModuleType:
    return compile_machine(checked(text), directory, "m.yaml")


def logged(cls: Any) -> Any:
    """A subclass of ``cls`` that records its ``on_log`` calls in ``self.logs``."""

    class Logged(cls):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.logs: list[tuple[str, object]] = []
            super().__init__(*args, **kwargs)

        def on_log(self, label: str, value: object) -> None:
            self.logs.append((label, value))

    return Logged


@pytest.fixture
def retry(tmp_path: Path) -> ModuleType:
    return compiled(RETRY, tmp_path)


def test_if_branches_follow_the_context_and_a_raise_inside_changes_the_step(
    retry: ModuleType,
) -> None:
    m = logged(retry.Retry)(context=retry.Context(max_attempts=3))
    m.start()
    grades = []
    for attempt in (1, 2):
        m.failed(error=f"e{attempt}")
        assert m.state == "failed" and m.context.attempts == attempt
        grades.append(m.context.grade)
        (sent,) = m.take_sent()
        assert sent == Sent("retry", 1.5, {"attempt": attempt + 1})
        m.fire(sent.event, sent.payload)  # the caller delivers it
        assert m.state == "running"
    m.failed(error="e3")
    # attempts == max_attempts: the first block raised give_up, so the step went on to dead
    assert m.state == "dead" and m.is_final
    grades.append(m.context.grade)
    assert grades == ["first", "again", "last"]
    assert m.take_sent() == ()
    assert m.logs == [
        ("Error", "e1"),
        ("Attempts", 1),
        ("Error", "e2"),
        ("Attempts", 2),
        ("Error", "e3"),
        ("Attempts", 3),
        ("Outcome", "fail"),
    ]


def test_the_raising_block_is_opened_by_the_core(retry: ModuleType) -> None:
    """The block that raises is tests in the decision programs; the other is one action."""
    _, table = machine_table(checked(RETRY))
    conds = {
        item[1]
        for row in table.programs
        for program in row.values()
        for item in _items(program, table.points)
        if item[0] == "test"
    }
    assert len(conds) == 1  # the raising block's one condition; the other block is opaque
    source = Path(retry.__file__).read_text(encoding="utf-8")
    assert "if ctx.attempts == 1:" in source and "elif ctx.attempts < ctx.max_attempts:" in source


def _items(program: Any, points: Any) -> list[Any]:
    found: list[Any] = []
    work = [program]
    while work:
        for item in work.pop():
            found.append(item)
            if item[0] == "test":
                work += [item[2], item[3]]
    return found


def test_log_and_send_run_in_scxml_order(tmp_path: Path) -> None:
    module = compiled(ORDER, tmp_path)
    m = logged(module.Order)()
    assert m.logs == [("enter", "a")]
    assert m.take_sent() == (Sent("ping", 0.0, None),)  # starting sent it
    assert m.take_sent() == ()  # taken: cleared
    m.go()
    assert m.logs[1:] == [
        ("exit", "a"),
        ("transition", 5),  # after the assign before it, in the same step
        ("enter", "p"),
        ("enter", "b"),
        ("n", 5),
    ]
    assert m.take_sent() == (Sent("ping", 2.0, None),)
    assert m.state == "b" and m.configuration == {"p", "b"}


def test_sends_keep_their_order_and_accumulate_until_taken(retry: ModuleType) -> None:
    m = retry.Retry(context=retry.Context(max_attempts=5))
    m.start()
    m.failed(error="x")
    m.retry(attempt=2)
    m.failed(error="y")
    assert m.take_sent() == (
        Sent("retry", 1.5, {"attempt": 2}),
        Sent("retry", 1.5, {"attempt": 3}),
    )
    assert m.take_sent() == ()


def test_the_default_on_log_writes_to_the_machine_logger(
    retry: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="smc.machine.retry"):
        m = retry.Retry()
        m.start()
        m.failed(error="disk full")
    messages = [(r.name, r.getMessage()) for r in caplog.records]
    assert messages == [
        ("smc.machine.retry", "Error: 'disk full'"),
        ("smc.machine.retry", "Attempts: 1"),
    ]


def test_an_if_reading_in_is_evaluated_where_the_step_is(tmp_path: Path) -> None:
    """``In()`` in an ``if`` is about the configuration in the middle of the step: the core
    opens such a block and resolves it there (the class only knows where it started)."""
    text = (
        "initial_state: a\nmetadata: {machine_name: where}\n"
        "context: {seen: {type: string, default: ''}}\n"
        "states:\n  - name: a\n  - name: b\n    on_entry:\n      - type: if\n"
        "        when: \"In('b')\"\n        then: [{type: assign, location: seen, expr: \"'b'\"}]\n"
        "        else: [{type: assign, location: seen, expr: \"'not b'\"}]\n"
        "transitions:\n  - {from: a, to: b, event: go}\n  - {from: b, to: a, event: back}\n"
    )
    module = compiled(text, tmp_path)
    m = module.Where()
    m.go()
    assert m.context.seen == "b"


def test_a_class_without_sends_has_an_empty_take_sent(tmp_path: Path) -> None:
    text = (
        "initial_state: a\nstates:\n  - {name: w, states: [a, b]}\n"
        "transitions:\n  - {from: a, to: b, event: go}\n"
    )
    module = compiled(text, tmp_path)
    (cls,) = [v for v in vars(module).values() if isinstance(v, type) and hasattr(v, "DISPATCH")]
    m = cls()
    m.go()
    assert m.take_sent() == ()
    source = Path(module.__file__).read_text(encoding="utf-8")
    assert "self._sent" not in source and "on_log" not in source and "import logging" not in source


def test_pure_actions_make_a_chart_and_log_message_stays_flat() -> None:
    flat = checked(
        "initial_state: a\ntransitions:\n  - {from: a, to: b, event: go}\n"
        "actions:\n  b:\n    - {type: log, message: 'in {state}'}\n"
    )
    assert not flat.is_chart
    chart = checked(
        "initial_state: a\ncontext: {n: {type: integer, default: 0}}\n"
        "transitions:\n  - {from: a, to: b, event: go}\n"
        "actions:\n  b:\n    - {type: log, label: n, expr: n}\n"
        "    - {type: send, event: go, delay: 0.5}\n"
        "    - {type: if, when: n > 0, then: []}\n"
    )
    features = dict(chart.chart_features)
    assert {"log expressions", "sends", "if blocks"} <= set(features)
    # smc export does not write them yet: it refuses the machine (SMC094)
    assert {d.code for d in not_yet_compiled_data(chart)} == {"SMC094"}
    assert len(not_yet_compiled_data(chart)) == 3


@pytest.mark.parametrize("text", [RETRY, ORDER])
@pytest.mark.parametrize("width", [60, 88, 100])
def test_modules_with_pure_actions_are_in_black_style(text: str, width: int) -> None:
    source = codegen.generate_machine(checked(text), "m.yaml", width)
    assert format_python(source, width) == source


USER = """\
from typing import override

from retry_mod import Retry
from smc import Sent
from smc.machine import ChartMachine


class Quiet(Retry):
    @override
    def on_log(self, label: str, value: object) -> None:
        pass


def drive(m: ChartMachine) -> tuple[Sent, ...]:
    return m.take_sent()


q = Quiet()
q.start()
q.failed(error="x")
sent: tuple[Sent, ...] = drive(q)
delay: float = sent[0].delay
"""


def test_mypy_strict_accepts_the_module_and_a_subclass(tmp_path: Path) -> None:
    (tmp_path / "retry_mod.py").write_text(
        codegen.generate_machine(checked(RETRY), "m.yaml"), encoding="utf-8"
    )
    (tmp_path / "user.py").write_text(USER, encoding="utf-8")
    env = {**os.environ, "MYPYPATH": str(PROJECT_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-version",
         "3.12", "retry_mod.py", "user.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


EVENTS = """\
initial_state: a
metadata: {machine_name: seen}
context:
  last: {type: [string, "null"], default: "unset"}
  trail: {type: string, default: ""}
  n: {type: integer, default: 0}
events:
  go: null
  back: null
  ping: {payload: {type: object, properties: {k: {type: integer}}, required: [k]}}
  inner: null
states:
  - name: a
    on_entry:
      - {type: assign, location: last, expr: "event.name"}
      - type: if
        when: "event.name == 'back'"
        then: [{type: assign, location: trail, expr: "trail + 'B'"}]
  - name: b
    on_entry:
      - type: if
        when: "event.name == 'go'"
        then: [{type: assign, location: trail, expr: "trail + 'go'"}]
      - {type: raise, event: inner}
  - name: c
    on_entry:
      - type: if
        when: "event.name == 'inner'"
        then: [{type: assign, location: trail, expr: "trail + '/inner'"}]
        else: [{type: assign, location: trail, expr: "trail + '/other'"}]
transitions:
  - {from: a, to: b, event: go}
  - {from: b, to: c, event: inner}
  - {from: c, to: a, event: back, when: "event.name == 'back'"}
  - {from: a, to: a, event: ping, actions: [{type: assign, location: n, expr: "event.data.k"}]}
"""


def test_event_name_is_the_event_each_action_runs_for(tmp_path: Path) -> None:
    """``event.name`` in a state's actions is the event whose transition enters the state:
    the external one, a raised one within the same step, none at the start."""
    module = compiled(EVENTS, tmp_path)
    m = module.Seen()
    assert m.context.last is None  # entered at the start: no event yet
    m.go()  # b entered on go, raises inner: c entered on inner
    assert m.state == "c" and m.context.trail == "go/inner"
    m.back()
    assert m.context.last == "back" and m.context.trail == "go/innerB"
    m.ping(k=7)
    assert m.context.last == "ping" and m.context.n == 7
    source = Path(module.__file__).read_text(encoding="utf-8")
    # written as constants, one action per event it runs for
    assert 'ctx.last = "back"' in source and "ctx.last = None" in source


def test_mypy_strict_accepts_a_module_reading_the_event(tmp_path: Path) -> None:
    module = compiled(EVENTS, tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(module.__file__)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout


def test_computed_sends_check_the_name_and_the_delay_when_they_run(tmp_path: Path) -> None:
    """``event_expr``/``delay_expr`` are computed as the action runs; a name the machine
    does not have or a value that is no duration is not sent."""
    text = (
        "initial_state: a\nmetadata: {machine_name: computed}\n"
        "context:\n  name: {type: string, default: go}\n  wait: {type: string, default: 1s}\n"
        "events: {go: null, tick: null}\n"
        "states:\n  - name: a\n    on_entry:\n"
        '      - {type: send, event_expr: "name", delay_expr: "wait"}\n'
        "      - {type: send, event_expr: \"'nope'\"}\n"
        "      - {type: send, event: tick, delay_expr: \"'soon'\"}\n"
        '      - {type: send, event: tick, delay_expr: "0.25"}\n'
        "      - {type: assign, location: name, expr: \"'tick'\"}\n"
        "      - {type: assign, location: wait, expr: \"'500ms'\"}\n"
        "  - name: b\n"
        "transitions:\n  - {from: a, to: b, event: go}\n  - {from: b, to: a, event: tick}\n"
    )
    module = compiled(text, tmp_path)
    m = module.Computed()
    assert m.take_sent() == (Sent("go", 1.0, None), Sent("tick", 0.25, None))
    m.go()
    m.tick()  # a entered again: the context changed
    assert m.take_sent() == (Sent("tick", 0.5, None), Sent("tick", 0.25, None))


def test_computed_context_and_session_ids(tmp_path: Path) -> None:
    """A field's ``expr:`` is its initial value when the machine starts without a context,
    computed in document order; ``machine.session_id`` is the instance's own id and
    ``machine.name`` the machine's name."""
    text = (
        "initial_state: a\nmetadata: {machine_name: early}\n"
        "context:\n  n: {type: integer, default: 2}\n"
        "  tags: {type: array, items: {type: string}, default: [x]}\n"
        '  m: {type: integer, expr: "n * 10 + len(tags)"}\n'
        "  who: {type: string, expr: \"machine.name + ':' + machine.session_id\"}\n"
        "  seen: {type: string, default: ''}\n"
        "states:\n  - name: a\n  - name: b\n    on_entry:\n"
        '      - {type: assign, location: seen, expr: "machine.session_id"}\n'
        "transitions:\n  - {from: a, to: b, event: go}\n"
    )
    module = compiled(text, tmp_path)
    one, two = module.Early(), module.Early()
    assert one.context.m == 21 and one.context.tags == ["x"]
    assert one.context.who == f"early:{one.session_id}"
    assert one.session_id and one.session_id != two.session_id
    one.context.tags.append("y")
    assert two.context.tags == ["x"]  # each start makes its own values
    one.go()
    assert one.context.seen == one.session_id
    given = module.Context(n=1, m=5, who="w")
    assert module.Early(context=given).context.m == 5  # a given context is taken as is
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(module.__file__)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout


def test_send_ids_and_io_processors(tmp_path: Path) -> None:
    """``id_location`` (SCXML's idlocation): each time a ``send`` runs it draws a new id,
    stores it in the field and gives it to what it sent (``Sent.send_id``), computed sends
    too; ``machine.io_processors`` (SCXML's ``_ioprocessors``) is an object made of the
    session id, equal from one read to the next. A machine without them draws no ids."""
    text = (
        "initial_state: a\nmetadata: {machine_name: ids}\n"
        "context:\n  last: {type: [string, 'null'], default: null}\n"
        "  other: {default: null}\n"
        '  io: {expr: "machine.io_processors"}\n'
        "  same: {type: boolean, default: false}\n"
        "states:\n  - name: a\n    on_entry:\n"
        "      - {type: send, event: go, id_location: last}\n"
        "      - {type: send, event_expr: \"'go'\", delay: 1, id_location: other}\n"
        '      - {type: assign, location: same, expr: "io == machine.io_processors"}\n'
        "  - name: b\n"
        "transitions:\n  - {from: a, to: b, event: go}\n  - {from: b, to: a, event: go}\n"
    )
    module = compiled(text, tmp_path)
    m = module.Ids()
    first, second = m.take_sent()
    assert (first.event, first.delay, second.event, second.delay) == ("go", 0.0, "go", 1.0)
    assert first.send_id == m.context.last and second.send_id == m.context.other
    assert first.send_id and first.send_id != second.send_id
    location = "#_scxml_" + m.session_id
    assert m.context.io == {
        "http://www.w3.org/TR/scxml/#SCXMLEventProcessor": {"location": location},
        "scxml": {"location": location},
    }
    assert m.context.same is True
    m.go()
    m.go()  # a entered again: new ids
    again, _ = m.take_sent()
    assert again.send_id == m.context.last != first.send_id
    source = Path(str(module.__file__)).read_text(encoding="utf-8")
    assert "uuid.uuid4().hex" in source
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(module.__file__)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout
    (tmp_path / "plain").mkdir()
    plain_text = text.replace(", id_location: last", "").replace(", id_location: other", "")
    plain = compiled(plain_text, tmp_path / "plain")
    assert all(s.send_id is None for s in plain.Ids().take_sent())


EVENT_TYPES = """\
initial_state: a
metadata: {machine_name: kinds}
context:
  seen: {type: array, items: {type: string}, default: []}
  last: {default: null}
  same: {type: boolean, default: false}
states:
  - name: a
    on_entry:
      - {type: raise, event: ping}
  - name: b
    on_entry:
      - {type: assign, location: seen, expr: "seen + [event.type]"}
      - {type: assign, location: last, expr: "event"}
  - name: c
    states:
      - name: c1
      - {name: c2, final: true}
  - name: d
    final: true
transitions:
  - {from: a, to: b, event: ping}
  - {from: b, to: b, event: ping, when: "event.type == 'external'"}
  - {from: b, to: c, event: go}
  - {from: c1, to: c2, event: fin}
  - from: c
    to: d
    event: done.state.c
    actions:
      - {type: assign, location: seen, expr: "seen + [event.type]"}
      - {type: assign, location: same, expr: "last == event"}
"""


def test_event_type_and_event_as_a_value(tmp_path: Path) -> None:
    """``event.type`` is how the event being handled came: ``internal`` for a raised one,
    ``external`` for one given to ``fire``, ``platform`` for a done (or error) event the
    machine queued itself; ``event`` as a value is an object of its name, type and data.
    All decided where the class is built: constants in the generated code."""
    module = compiled(EVENT_TYPES, tmp_path)
    m = module.Kinds()
    assert m.context.seen == ["internal"]  # a entered at the start raises ping
    assert m.context.last == {"name": "ping", "type": "internal", "data": None}
    m.ping()  # from outside: the guard holds, b entered again
    assert m.context.seen == ["internal", "external"]
    assert m.context.last == {"name": "ping", "type": "external", "data": None}
    m.go()
    m.fin()
    assert m.context.seen == ["internal", "external", "platform"]
    assert m.context.same is False  # last holds ping's, this is done.state.c
    source = Path(str(module.__file__)).read_text(encoding="utf-8")
    assert '{"name": "ping", "type": "external", "data": None}' in source
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(module.__file__)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout


def test_event_name_alone_compiles_each_action_once_per_event(tmp_path: Path) -> None:
    """Only a machine that reads ``event.type`` (or ``event`` as a value) tells raised from
    external events: one reading ``event.name`` alone is compiled once per event, as before."""
    by_name = EVENT_TYPES.replace("event.type", "event.name").replace('"last == event"', '"True"')
    by_name = by_name.replace('expr: "event"', 'expr: "event.name"')
    name_module = compiled(by_name, tmp_path)
    (tmp_path / "typed").mkdir()
    typed_module = compiled(EVENT_TYPES, tmp_path / "typed")
    name_actions = len(name_module._ACTIONS)
    typed_actions = len(typed_module._ACTIONS)
    # b's entry runs for ping raised and ping from outside: one action each when typed
    assert typed_actions > name_actions
