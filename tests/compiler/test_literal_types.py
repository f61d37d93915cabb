"""A comparison with an ``enum``/``const`` value (typed ``Literal[...]`` in the generated
class) fits that type as mypy --strict and pyright strict see it (docs/language.md,
"Expressions", Types): ``mode == 'medium'`` where ``mode`` is ``fast`` or ``slow`` passed
``smc check`` and the module failed both (a non-overlapping comparison); ``mode ==
event.name``, which the class compiles with the event's name as a constant, did too for an
event whose name is not one of the values.

Accepted machines are built, checked by the real mypy and pyright, and run.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from smc.compiler.check import check_texts
from tests.support.cli import run_smc

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PYRIGHT = PROJECT_ROOT / "tests" / "js" / "node_modules" / ".bin" / "pyright"

HEAD = """\
initial_state: a
metadata: {machine_name: enum_compare}
context:
  mode: {enum: [go, slow], default: go}
  kinds: {type: array, items: {enum: [external, internal]}, default: [external]}
  picks: {type: array, items: {enum: [x, y]}, default: []}
  hits: {type: integer, default: 0}
  s: {type: string, default: ""}
events:
  go:
    payload: {type: object, properties: {speed: {enum: [fast, slow]}}, required: [speed]}
  back: null
"""


def guarded(when: str) -> str:
    return HEAD + f'transitions:\n  - {{from: a, to: b, event: go, when: "{when}"}}\n'


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("mode == 'medium'", "`mode` (one of 'go', 'slow') and `'medium'` ('medium') share no"),
        ("mode != 'medium'", "share no value: `!=` is always true"),
        ("payload.speed == 'go'", "share no value: `==` is never true"),
        ("'z' in picks", "the items of `picks` (one of 'x', 'y') share no value: `in` is never"),
        ("'z' not in picks", "share no value: `not in` is always true"),
        # a conditional of literals: pyright types it by their values (`Literal['medium',
        # 'x']`), mypy too when they are one (`Literal[0]`): both refused the module
        ("mode == ('medium' if hits > 1 else 'x')", "(one of 'medium', 'x') share no value"),
        ("1 == (0 if hits else 0)", "`1` (1) and `0 if hits else 0` (0) share no value"),
        ("1 == (0 if hits else 2)", "(one of 0, 2) share no value: `==` is never true"),
        ("1 != (0 or 0)", "share no value: `!=` is always true"),
        ("(mode if hits else 'x') == 'z'", "share no value"),
        # a field tested false is its false value to both (`Literal[0]`)
        ("1 == (0 if hits else hits)", "`1` (1) and `0 if hits else hits` (0) share no value"),
        # two literals too: the class writes them as they are
        ("0 == 1", "`0` (0) and `1` (1) share no value: `==` is never true"),
        ("'a' != 'b'", "share no value: `!=` is always true"),
        ("True == 1", "`==` is never true"),
    ],
)
def test_values_that_can_never_be_equal_are_smc092(when: str, message: str) -> None:
    result = check_texts([("m.yaml", guarded(when))])
    (error,) = result.errors
    assert error.code == "SMC092", str(error)
    assert message in error.message, error.message


MAY_BE_EQUAL = [
    "mode == 'slow'",
    "mode != payload.speed",
    "'x' in picks",
    "mode == s",
    "s in picks",
    # a conditional that may be some other value of the kind
    "mode == ('medium' if hits > 1 else s)",
    "1 == (0 if hits > 2 else hits)",
    "1 == (0 if hits else 1)",
    # mypy and pyright have no literal type of a fraction
    "1 == 1.5",
    "hits == 2.5",
    "0 == 0",
]


@pytest.mark.parametrize("when", MAY_BE_EQUAL)
def test_values_that_may_be_equal_are_accepted(when: str) -> None:
    result = check_texts([("m.yaml", guarded(when))])
    assert not result.errors, [str(d) for d in result.errors]


def build_and_type_check(tmp_path: Path, name: str, text: str) -> Path:
    """Build ``text`` as ``<name>.yaml``; the module passes mypy --strict and pyright strict
    (when installed: npm ci --prefix tests/js). Returns the output folder."""
    source = tmp_path / f"{name}.yaml"
    source.write_text(text)
    out = tmp_path / "out"
    built = run_smc("build", str(source), "-o", str(out), "--no-diagrams", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    typed = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", f"{name}.py"],
        capture_output=True, text=True, cwd=out,
    )  # fmt: skip
    assert typed.returncode == 0, typed.stdout
    if PYRIGHT.is_file():
        config = {
            "pythonVersion": "3.11",
            "typeCheckingMode": "strict",
            "extraPaths": [str(PROJECT_ROOT)],
            "include": [f"{name}.py"],
        }
        (out / "pyrightconfig.json").write_text(json.dumps(config))
        checked = subprocess.run(
            [str(PYRIGHT), "--outputjson", "--project", str(out / "pyrightconfig.json")],
            capture_output=True, text=True, cwd=out, timeout=300,
        )  # fmt: skip
        report = json.loads(checked.stdout)
        assert not report["generalDiagnostics"], report["generalDiagnostics"]
    return out


def load(out: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, out / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_values_that_may_be_equal_build_a_module_mypy_and_pyright_take(tmp_path: Path) -> None:
    """Each comparison ``smc check`` takes is one mypy --strict and pyright strict take in the
    module (``1 == (0 if hits else 0)`` and ``0 == 1`` were taken, and both refused them)."""
    rows = "".join(f'  - {{from: a, to: b, event: go, when: "{when}"}}\n' for when in MAY_BE_EQUAL)
    text = HEAD.replace("enum_compare", "may_be_equal") + "transitions:\n" + rows
    assert not check_texts([("m.yaml", text)]).errors
    build_and_type_check(tmp_path, "may_be_equal", text)


MACHINE = HEAD + """\
states:
  a: {}
  b:
    on_entry:
      - {type: log, label: m, expr: "mode == event.name"}
      - type: if
        when: "event.type in kinds and event.name != mode"
        then: [{type: assign, location: hits, expr: "hits + 1"}]
      - {type: assign, location: s, expr: "'y' if event.name == mode else 'n'"}
transitions:
  - {from: a, to: b, event: go, when: "mode == event.name"}
  - {from: b, to: a, event: back}
  - {from: a, to: b, event: back, when: "event.name != mode"}
"""


def test_event_name_against_an_enum_builds_a_module_mypy_and_pyright_take(
    tmp_path: Path,
) -> None:
    """``event.name``/``event.type`` (constants in the class) compared with an enum field
    that cannot hold them is decided where the module is built; the module type-checks and
    runs as the comparison says."""
    out = build_and_type_check(tmp_path, "enum_compare", MACHINE)
    try:
        module = load(out, "enum_compare")
        logged: list[object] = []

        class Logged(module.EnumCompare):  # type: ignore[name-defined,misc]
            def on_log(self, label: str, value: object) -> None:
                logged.append(value)

        m = Logged()
        m.go(speed="fast")  # mode == 'go'
        assert m.state.value == "b" and m.context.s == "y" and m.context.hits == 0
        m.back()
        m.back()  # event.name 'back' != mode: taken; entering b, the if holds
        assert m.state.value == "b" and m.context.s == "n" and m.context.hits == 1
        assert logged == [True, False]
    finally:
        del sys.modules["enum_compare"]


BOOLEANS = """\
initial_state: a
metadata: {machine_name: literal_types}
context:
  bb: {enum: [true, false], default: true}
  bn: {enum: [true, false, null], default: null}
  big: {enum: [10000000000000000000000, -9223372036854775808, -5], default: -5}
  small: {enum: [9223372036854775807, -9223372036854775807], default: -9223372036854775807}
  f: {type: boolean, default: false}
events:
  go: null
transitions:
  - from: a
    to: b
    event: go
    actions:
      - {type: assign, location: bb, expr: "not bb"}
      - {type: assign, location: bn, expr: "f and bb"}
      - {type: assign, location: big, expr: "10000000000000000000000"}
"""


def test_booleans_and_large_integers_in_an_enum_build_a_module_mypy_takes(
    tmp_path: Path,
) -> None:
    """A boolean is one of True and False, so it fits ``enum: [true, false]`` (``not bb``
    was refused); an integer mypy cannot hold in ``Literal[...]`` (beyond 64 bits) makes
    the field ``Any`` (the module failed mypy: "Literal[...] cannot contain arbitrary
    expressions")."""
    result = check_texts([("m.yaml", BOOLEANS)])
    assert not result.errors, [str(d) for d in result.errors]
    out = build_and_type_check(tmp_path, "literal_types", BOOLEANS)
    code = (out / "literal_types.py").read_text()
    assert "    big: Any = -5\n" in code
    assert "small: Literal[9223372036854775807, -9223372036854775807] =" in code


def test_a_boolean_does_not_fit_one_of_its_values() -> None:
    text = BOOLEANS.replace('"not bb"', '"f"').replace("[true, false], default: true", "[true]")
    (error,) = check_texts([("m.yaml", text)]).errors
    assert error.code == "SMC092" and "the value is a boolean, and its location takes" in (
        error.message
    ), error.message


NONE_CONSTANTS = """\
initial_state: a
metadata: {machine_name: none_compare}
context:
  s: {type: string, default: "go"}
  hits: {type: integer, default: 0}
events:
  go: null
  back: null
states:
  a:
    on_entry:
      - {type: log, label: n, expr: "event.name == s"}
      - type: if
        when: "s != event.name"
        then: [{type: assign, location: hits, expr: "hits + 1"}]
  b: {}
transitions:
  - {from: a, to: b, event: go}
  - {from: b, to: a, event: go}
  - {from: a, to: b, event: back, when: "event.send_id != s"}
"""


def test_a_none_constant_against_a_string_is_decided_where_the_module_is_built(
    tmp_path: Path,
) -> None:
    """``event.send_id`` (None for an event from outside) and ``event.name`` (None when the
    machine starts) compared with a field that is never null were written `None == ctx.s`,
    which pyright strict refuses; the comparison is decided, and runs as it says."""
    out = build_and_type_check(tmp_path, "none_compare", NONE_CONSTANTS)
    try:
        module = load(out, "none_compare")
        logged: list[object] = []

        class Logged(module.NoneCompare):  # type: ignore[name-defined,misc]
            def on_log(self, label: str, value: object) -> None:
                logged.append(value)

        m = Logged()  # started: event.name is None, != s
        assert m.context.hits == 1 and logged == [False]
        m.go()
        m.go()  # entering a on 'go': event.name == s
        assert m.context.hits == 1 and logged == [False, True]
        m.back()  # event.send_id is None: != s
        assert m.state.value == "b"
    finally:
        del sys.modules["none_compare"]


def test_an_id_location_of_an_enum_says_its_values() -> None:
    """The message said "'tid' is a string" of a field that takes only 'p' or 'q'."""
    text = HEAD.replace("  hits:", "  tid: {enum: [p, q], default: p}\n  hits:") + (
        "transitions:\n"
        "  - {from: a, to: b, event: go, actions: [{type: send, event: back, id_location: tid}]}\n"
    )
    (error,) = check_texts([("m.yaml", text)]).errors
    assert error.code == "SMC092", str(error)
    assert "`id_location` 'tid' is one of 'p', 'q', and the id drawn is a string" in (
        error.message
    ), error.message


WHOLE_FLOATS = """\
initial_state: a
metadata: {machine_name: whole_floats}
context:
  n: {type: integer, default: 1.0}
  e: {enum: [1, 2], default: 2.0}
  l: {type: array, items: {type: [integer, "null"]}, default: [1.0, 2, null]}
  o: {type: object, properties: {k: {type: integer}}, default: {k: 3.0}}
  x: {type: number, default: 1.0}
  m: {enum: [a, b], expr: "'a'"}
events:
  go: null
transitions:
  - {from: a, to: b, event: go, when: "e == 2 and n == 1"}
"""


def test_a_whole_float_default_of_an_integer_is_written_as_an_integer(tmp_path: Path) -> None:
    """JSON Schema's ``integer`` takes ``1.0``, so ``default: 1.0`` passes the checker; it
    was written ``n: int = 1.0``, which mypy and pyright refuse."""
    out = build_and_type_check(tmp_path, "whole_floats", WHOLE_FLOATS)
    code = (out / "whole_floats.py").read_text()
    assert "    n: int = 1\n" in code and "    x: float = 1.0\n" in code
    try:
        m = load(out, "whole_floats").WholeFloats()  # with a computed field: _initial_context
        assert m.context.n == 1 and type(m.context.n) is int and type(m.context.e) is int
        assert [type(v) for v in m.context.l] == [int, int, type(None)]
        assert type(m.context.o["k"]) is int and type(m.context.x) is float
        m.go()
        assert m.state.value == "b"
    finally:
        del sys.modules["whole_floats"]


JOB_KIND = """\
initial_state: a
metadata: {machine_name: job_kind}
events:
  go: null
jobs:
  task: {data: {type: object, properties: {kind: {enum: [x, y]}}, required: [kind]}}
transitions:
  - {from: a, to: b, event: go, when: "job.kind == event.name"}
  - {from: a, to: c, event: go}
"""


def test_a_decided_comparison_of_the_job_leaves_no_unread_job(tmp_path: Path) -> None:
    """``job.kind == event.name``, decided false, left ``job = self.job`` unread, which
    pyright strict refuses (reportUnusedVariable)."""
    out = build_and_type_check(tmp_path, "job_kind", JOB_KIND)
    assert "job = self.job" not in (out / "job_kind.py").read_text()
    try:
        m = load(out, "job_kind").JobKind()
        m.job = {"kind": "x"}
        m.go()
        assert m.state.value == "c"
    finally:
        del sys.modules["job_kind"]
