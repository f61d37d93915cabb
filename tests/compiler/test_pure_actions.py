"""The pure actions in the language and the checker (issue 14): ``if`` blocks, ``log`` of an
expression, ``send`` to the machine itself; their model and their checks (SMC090-093 inside
them, SMC095-097), each problem placed at its character. What the generated class does with
them is tests/compiler/test_codegen_pure_actions.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smc.compiler.check import CheckResult, check_texts
from smc.compiler.model import Machine, nested_actions, parse_delay
from tests.support.cli import run_smc

Found = set[tuple[int, int, str]]

HEAD = """\
initial_state: a
context:
  n: {type: integer, default: 0}
  label: {type: string, default: ""}
events:
  go: null
  tick:
    payload: {type: object, properties: {count: {type: integer}}, required: [count]}
  bare: null
transitions:
  - {from: a, to: b, event: go}
  - {from: b, to: a, event: tick}
  - {from: b, to: a, event: bare}
"""


def check(text: str) -> CheckResult:
    return check_texts([("m.yaml", text)])


def found(result: CheckResult) -> Found:
    return {(d.line, d.col, d.code) for d in result.errors}


def model(text: str) -> Machine:
    result = check(text)
    assert not result.errors, [str(d) for d in result.errors]
    (machine,) = result.machines
    return machine


def on_b(*lines: str) -> str:
    """HEAD with ``lines`` as state b's actions (each line indented under ``b:``)."""
    return HEAD + "actions:\n  b:\n" + "".join(f"    {line}\n" for line in lines)


def test_an_if_block_is_read_into_branches() -> None:
    machine = model(
        on_b(
            "- type: if",
            '  when: "n > 1"',
            "  then: [{type: assign, location: n, expr: '0'}]",
            "  elif:",
            '    - {when: "n == 1", then: [{type: log, label: one, expr: n}]}',
            "    - when: n == 0",
            "      then:",
            "        - {type: if, when: label == '', then: [], else: [{type: raise, event: go}]}",
            "  else: [{type: send, event: tick, payload: {count: n}}]",
        )
    )
    (block,) = machine.state("b").actions
    assert [b.when for b in block.branches] == ["n > 1", "n == 1", "n == 0", None]
    assert [(b.when_pos.line, b.when_pos.col) if b.when_pos else None for b in block.branches] == [
        (17, 13),
        (20, 18),
        (21, 17),
        None,
    ]
    inner = [a.type for a in nested_actions((block,))]
    assert inner == ["if", "assign", "log", "if", "raise", "send"]
    assert {"if blocks", "sends", "log expressions", "assignments", "raise"} <= {
        feature for feature, _ in machine.chart_features
    }


def test_pure_actions_on_a_transition_are_its_own() -> None:
    """A transition's pure actions run when it is taken; a runtime ``log`` keeps the design
    style (it runs in the ``from`` state)."""
    machine = model(
        HEAD.replace(
            "  - {from: a, to: b, event: go}\n",
            "  - from: a\n    to: b\n    event: go\n    actions:\n"
            "      - {type: log, message: leaving}\n"
            "      - {type: log, label: n, expr: n}\n"
            "      - {type: if, when: n > 0, then: [{type: send, event: bare, delay: 1}]}\n",
        )
    )
    go = next(t for t in machine.transitions if t.event == "go")
    assert [a.type for a in go.actions] == ["log", "if"]
    assert [a.params.get("message") for a in machine.state("a").actions] == ["leaving"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # an if condition: the same checks as `when:`, at the character
        ("- {type: if, when: 'n > nn', then: []}", (16, 29, "SMC091")),
        ("- {type: if, when: 'n + 1', then: []}", (16, 25, "SMC092")),
        ("- {type: if, when: 'n >', then: []}", (16, 28, "SMC090")),
        ("- {type: if, when: 'payload.count > 0', then: []}", (16, 25, "SMC091")),
        # inside a branch, at any depth
        (
            "- {type: if, when: 'n > 0', then: [{type: if, when: 'lable == \"\"', then: []}]}",
            (16, 58, "SMC091"),
        ),
        (
            "- {type: if, when: 'n > 0', then: [], else: [{type: assign, location: nn, expr: '1'}]}",  # noqa: E501
            (16, 75, "SMC093"),
        ),
        # a log's expression
        ("- {type: log, label: x, expr: 'n + label'}", (16, 36, "SMC092")),
        # a send
        ("- {type: send, event: tock}", (16, 27, "SMC095")),
        ("- {type: send, event: tick, delay: -1s, payload: {count: n}}", (16, 40, "SMC096")),
        ("- {type: send, event: tick, payload: {count: label}}", (16, 50, "SMC092")),
        ("- {type: send, event: tick, payload: {count: n, extra: n}}", (16, 53, "SMC096")),
        ("- {type: send, event: tick}", (16, 14, "SMC096")),  # count is required
        ("- {type: send, event: tick, payload: {}}", (16, 33, "SMC096")),
        ("- {type: send, event: bare, payload: {count: n}}", (16, 33, "SMC096")),
        # a send's id_location: a context field that holds a string
        ("- {type: send, event: bare, id_location: nn}", (16, 46, "SMC093")),
        ("- {type: send, event: bare, id_location: n}", (16, 46, "SMC092")),
        ("- {type: send, event_expr: label, id_location: payload}", (16, 52, "SMC093")),
        # what an if block may hold
        ("- {type: if, when: 'n > 0', then: [{type: sleep, duration: 1}]}", (16, 47, "SMC097")),
        ("- {type: if, when: 'n > 0', then: [{type: log, message: hi}]}", (16, 47, "SMC097")),
        ("- {type: log, label: x, expr: n, level: info}", (16, 38, "SMC097")),
        # the built-in's parameters, at the top level and inside a block
        ("- {type: if, then: []}", (16, 14, "SMC031")),
        ("- {type: if, when: 'n > 0', then: [{type: send, delay: 1}]}", (16, 47, "SMC031")),
    ],
)
def test_each_problem_at_its_place(line: str, expected: tuple[int, int, str]) -> None:
    result = check(on_b(line))
    assert found(result) == {expected}, [str(d) for d in result.errors]


def test_an_unknown_parameter_is_a_warning() -> None:
    result = check(on_b("- {type: send, event: bare, dealy: 1}"))
    assert {(d.line, d.col, d.code) for d in result.diagnostics} == {(16, 33, "SMC032")}


def test_hints_offer_the_closest_name() -> None:
    (event,) = check(on_b("- {type: send, event: tock}")).errors
    assert "'tock'" in event.message and event.hint == "did you mean 'tick'?"
    missing, field = check(on_b("- {type: send, event: tick, payload: {cuont: n}}")).errors
    assert (missing.code, missing.col, "'count'" in missing.message) == ("SMC096", 33, True)
    assert (field.code, field.col, field.hint) == ("SMC096", 43, "did you mean 'count'?")


def test_a_sent_event_counts_as_used() -> None:
    """A declared event that only a ``send`` names is used (no SMC023)."""
    text = on_b("- {type: send, event: later, delay: 5}").replace(
        "  bare: null\n", "  bare: null\n  later: null\n"
    )
    assert "SMC023" not in {d.code for d in check(text).diagnostics}


@pytest.mark.parametrize(
    ("written", "seconds"),
    [(0, 0.0), (2, 2.0), (1.5, 1.5), ("1.5s", 1.5), ("500ms", 0.5), ("2", 2.0), (".5s", 0.5)],
)
def test_delays(written: object, seconds: float) -> None:
    assert parse_delay(written) == seconds


@pytest.mark.parametrize("written", ["soon", "-1s", "1 min", "1e3", True, None, float("inf")])
def test_not_delays(written: object) -> None:
    assert parse_delay(written) is None


@pytest.mark.parametrize(
    "line",
    [
        "- {type: if, when: n > 0, then: 3}",
        "- {type: if, when: n > 0, then: [3]}",
        "- {type: if, when: n > 0, then: [], elif: [3]}",
        "- {type: if, when: n > 0, then: [], elif: [{then: []}]}",
        "- {type: if, when: 3, then: []}",
        "- {type: if, when: n > 0, then: [{type: if}]}",
        "- {type: send, event: tick, payload: [count]}",
        "- {type: send, event: tick, payload: {count: 3}}",
        "- {type: send}",
        "- {type: log, expr: 3}",
        "- {type: if, params: {when: n > 0, then: [{type: log, label: x, expr: nn}]}}",
    ],
)
def test_smc_check_never_tracebacks(tmp_path: Path, line: str) -> None:
    (tmp_path / "m.yaml").write_text(on_b(line), encoding="utf-8")
    result = run_smc("check", "--format", "json", "m.yaml", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(result.stdout)


def test_params_form_is_placed_too() -> None:
    result = check(
        on_b("- {type: if, params: {when: n > 0, then: [{type: log, label: x, expr: nn}]}}")
    )
    assert found(result) == {(16, 75, "SMC091")}


def test_build_compiles_and_check_is_clean(tmp_path: Path) -> None:
    text = on_b(
        "- type: if",
        "  when: n > 0",
        "  then: [{type: send, event: tick, delay: 500ms, payload: {count: n + 1}}]",
        "  else: [{type: log, label: zero, expr: n}]",
    )
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    checked = run_smc("check", "--format", "json", "m.yaml", cwd=tmp_path)
    assert (checked.returncode, json.loads(checked.stdout)) == (0, [])
    built = run_smc("build", "m.yaml", "-o", "out", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    source = (tmp_path / "out" / "m.py").read_text(encoding="utf-8")
    assert 'Sent(Event.TICK, 0.5, {"count": ctx.n + 1})' in source
    refused = run_smc("export", "m.yaml", cwd=tmp_path)
    assert refused.returncode == 1 and "SMC094" in refused.stdout + refused.stderr
    # paths do not follow an if block's data: no paths, a warning
    paths = run_smc("paths", "m.yaml", cwd=tmp_path)
    assert paths.returncode == 0 and "warning[SMC079]" in paths.stderr


@pytest.mark.parametrize(
    "line,expected",
    [
        # event_expr is a string expression: checked at its character
        ("- {type: send, event_expr: 'n'}", (16, 33, "SMC092")),
        ("- {type: send, event_expr: 'labl'}", (16, 33, "SMC091")),
        ("- {type: send, event_expr: 'event'}", (16, 33, "SMC092")),  # an object
        ("- {type: send, event_expr: 'event(1)'}", (16, 33, "SMC090")),
        # delay_expr: seconds or a duration string
        ("- {type: send, event: bare, delay_expr: 'n > 1'}", (16, 46, "SMC092")),
        # one of each pair; no payload when the event is computed
        ("- {type: send, event: bare, event_expr: label}", (16, 45, "SMC096")),
        ("- {type: send, event: bare, delay: 1, delay_expr: n}", (16, 55, "SMC096")),
        ("- {type: send, event_expr: label, payload: {count: n}}", (16, 39, "SMC096")),
        # neither event nor event_expr
        ("- {type: send, delay_expr: n}", (16, 14, "SMC031")),
    ],
)
def test_computed_sends_are_checked_at_their_place(
    line: str, expected: tuple[int, int, str]
) -> None:
    result = check(on_b(line))
    assert found(result) == {expected}, [str(d) for d in result.errors]


def test_computed_sends_are_accepted() -> None:
    result = check(
        on_b(
            "- {type: send, event_expr: \"'go' if n > 0 else label\", delay_expr: \"'1s'\"}",
        )
    )
    assert not result.errors, [str(d) for d in result.errors]


COMPUTED = """\
initial_state: a
context:
  a: {type: integer, default: 2}
  b: {type: integer, expr: "a * 10 + c"}
  c: {type: integer, expr: "a"}
  d: {type: integer, default: 1, expr: "1"}
  e: {type: integer, expr: "'x'"}
  f: {type: string, expr: "machine.name + machine.session_id"}
transitions:
  - {from: a, to: b, event: go}
"""


def test_computed_context_fields_are_checked_at_their_character() -> None:
    """``expr:`` reads only the fields before it (they are computed in document order),
    must fit the field's type, and does not go with ``default:``."""
    result = check(COMPUTED)
    assert found(result) == {(4, 38, "SMC091"), (6, 40, "SMC081"), (7, 29, "SMC092")}, [
        str(d) for d in result.errors
    ]
    (later,) = [d for d in result.errors if d.code == "SMC091"]
    assert later.hint == "'c' comes after this field: fields are computed in document order"
    machine = model(COMPUTED.replace(" + c", "").replace(", default: 1", "").replace("'x'", "2"))
    assert dict(machine.chart_features).keys() >= {"computed data"}
