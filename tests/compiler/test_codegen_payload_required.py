"""An event fired without a field its payload schema requires, where a guard or an action of
the generated class reads it (docs/generated-code.md, "Required payload fields"): the class
raises ``smc.MissingPayload`` (a ``TypeError``) naming the event and the field before anything
changes, not a bare ``KeyError`` from inside the guard, or half way through the step. The
modules are generated from YAML, written to a temporary directory and imported."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from smc import IllegalTransition, MissingPayload
from smc.compiler import codegen
from tests.support.statecharts import checked
from tests.support.statecharts import compiled as compile_machine

PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: `back` goes to `a` when its payload's `x` is above 3, else to `c`: the guard reads `x`,
#: which the schema requires (`note` it does not). `fail` assigns from its payload.
BACK = """\
initial_state: a
metadata: {machine_name: back}
context:
  attempts: {type: integer, default: 0}
  last_error: {type: string, default: ""}
events:
  go: null
  back:
    payload:
      type: object
      properties: {x: {type: integer}, note: {type: string}}
      required: [x]
  fail:
    payload: {type: object, properties: {error: {type: string}}, required: [error]}
  poke:
    payload: {type: object, properties: {y: {type: integer}}, required: [y]}
states:
  - name: a
  - name: b
  - name: c
  - name: failed
transitions:
  - {from: a, to: b, event: go}
  - {from: b, to: a, event: back, when: "event.data.x > 3"}
  - {from: b, to: c, event: back}
  - from: b
    to: failed
    event: fail
    actions:
      - {type: assign, location: attempts, expr: "attempts + 1"}
      - {type: assign, location: last_error, expr: "payload.error"}
  - {from: b, to: c, event: poke, when: "attempts == 0"}
"""


@pytest.fixture
def back(tmp_path: Path) -> ModuleType:
    return compile_machine(checked(BACK), tmp_path, "m.yaml")


@pytest.mark.parametrize(
    "how",
    ["fire()", "fire(None)", "fire({})", "fire(other field)", "method()", "method(other field)"],
)
def test_a_guard_s_required_field_missing_is_missing_payload(back: ModuleType, how: str) -> None:
    m = back.Back()
    m.go()
    calls = {
        "fire()": lambda: m.fire("back"),
        "fire(None)": lambda: m.fire(back.Event.BACK, None),
        "fire({})": lambda: m.fire("back", {}),
        "fire(other field)": lambda: m.fire("back", {"note": "n"}),
        "method()": lambda: m.back(),
        "method(other field)": lambda: m.back(note="n"),
    }
    with pytest.raises(MissingPayload) as raised:
        calls[how]()
    error = raised.value
    assert isinstance(error, TypeError) and not isinstance(error, KeyError)
    assert (error.machine, error.event, error.field) == ("back", "back", "x")
    assert "'back'" in str(error) and "'x'" in str(error)
    copy = pickle.loads(pickle.dumps(error))  # it crosses processes as it is
    assert (type(copy), copy.event, copy.field, str(copy)) == (
        MissingPayload,
        "back",
        "x",
        str(error),
    )
    # Nothing changed: the machine goes on with the payload given.
    assert m.state == "b" and m.configuration == {back.State.B} and m.payload is None
    assert m.fire("back", {"x": 5}) == "a" and m.payload == {"x": 5}
    m.go()
    assert m.back(x=1) == "c"


def test_an_action_s_required_field_missing_is_refused_before_the_step(back: ModuleType) -> None:
    """The assigns of ``fail`` ran one by one: the first changed the context, the second
    raised ``KeyError``. The check comes first, so neither runs."""
    m = back.Back()
    m.go()
    with pytest.raises(MissingPayload) as raised:
        m.fire("fail", {"other": 1})
    assert (raised.value.event, raised.value.field) == ("fail", "error")
    assert m.state == "b" and m.context.attempts == 0 and m.context.last_error == ""
    assert m.fire("fail", {"error": "disk full"}) == "failed"
    assert m.context.attempts == 1 and m.context.last_error == "disk full"


def test_a_condition_that_reads_no_payload_decides_as_before(back: ModuleType) -> None:
    """``poke`` requires ``y`` but its guard reads only the context: decided in place, it
    takes the payload as given, as a transition without a guard does (the runtime checks
    inbound events against the schema; typed code cannot leave ``y`` out)."""
    m = back.Back()
    m.go()
    assert m.fire("poke") == "c" and m.payload is None


def test_an_event_the_state_does_not_take_is_still_illegal(back: ModuleType) -> None:
    """In ``a`` no transition takes ``back``: that is what it says, payload or not."""
    m = back.Back()
    with pytest.raises(IllegalTransition):
        m.fire("back")
    with pytest.raises(IllegalTransition):
        m.back()


USER = """\
from back_mod import Back

m = Back()
m.go()
m.back(x=5)
m.back()  # type: ignore[call-arg]
m.back(note="n")  # type: ignore[call-arg]
"""


def test_the_method_s_signature_requires_the_field(tmp_path: Path) -> None:
    """mypy --strict refuses ``m.back()`` and ``m.back(note=...)``: the two ignores are
    needed (``warn_unused_ignores``, part of ``--strict``, fails the run on one that is not),
    and ``m.back(x=5)`` passes."""
    (tmp_path / "back_mod.py").write_text(
        codegen.generate_machine(checked(BACK), "m.yaml"), encoding="utf-8"
    )
    (tmp_path / "user.py").write_text(USER, encoding="utf-8")
    env = {**os.environ, "MYPYPATH": str(PROJECT_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-version",
         "3.12", "back_mod.py", "user.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
