"""The fuzz issue 14 asks for: any text in `when:` and `expr:` of a machine file, through the
checker in-process (many examples) and through real `smc check` and `smc build` processes:
never a traceback, exit 0, 1 or 2 only, every diagnostic inside the file (an expression's
inside its own YAML scalar), and nothing in the text ever runs (it would create a marker
file: the escapes below try).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smc.compiler.check import CheckResult, check_texts, refuse_not_yet_compiled
from smc.compiler.diagnostics import CODES
from tests.compiler.test_guards import Styled, StyledDumper
from tests.support.cli import run_smc

#: A file the escapes try to create; it must never exist. One directory for the whole run
#: (Hypothesis runs examples without pytest's per-test fixtures).
MARKER = Path(tempfile.mkdtemp(prefix="smc-guard-fuzz-")) / "ran"

ESCAPES = [
    f"__import__('os').system('touch {MARKER}')",
    f"open('{MARKER}', 'w')",
    f"exec(\"open('{MARKER}', 'w')\")",
    f"eval(\"open('{MARKER}', 'w')\")",
    f"(lambda: open('{MARKER}', 'w'))()",
    f"payload.__class__.__init__.__globals__['os'].system('touch {MARKER}')",
    f"job['__builtins__']['open']('{MARKER}', 'w')",
    f"f\"{{open('{MARKER}', 'w')}}\"",
    f"import os; os.system('touch {MARKER}')",
    f"(x := open('{MARKER}', 'w'))",
    f"In('busy') or open('{MARKER}', 'w')",
    f"len(open('{MARKER}', 'w').name)",
    "breakpoint()",
    f"event.__class__.__init__.__globals__['os'].system('touch {MARKER}')",
    f"event.name or open('{MARKER}', 'w')",
]

TOKENS = [
    # names the scope knows, and names it must never reach
    "attempts", "max_attempts", "label", "tags", "last_error", "payload", "job", "error",
    "path", "len", "In", "event", "name", "data", "__class__", "__import__", "__builtins__",
    "__globals__", "os", "system", "eval", "exec", "open", "getattr", "ctx", "self", "State",
    # keywords
    "lambda", "import", "not", "and", "or", "if", "else", "in", "is", "None", "True",
    "False", "for", "yield", "await", "def",
    # punctuation and operators, and what YAML quotes
    ".", "(", ")", "[", "]", ",", ":", ":=", "+", "-", "*", "/", "//", "%", "**", "<",
    "<=", "==", "!=", ">", ">=", "~", "|", "&", "=", ";", "\\", "#", "{", "}", "- ", "? ",
    "!!python/object", "*alias", "&anchor", "---", "...",
    # literals and pieces of them
    "'", '"', "''", "f'", "b'", "'busy'", "'idle'", "'x'", '"error"', "0", "1", "42",
    "-1", "1.5", "1e999", "0x10", "1j", "...",
]  # fmt: skip
#: Conditions that pass, and values both `assign`s take (a string: `label`, `last_error`).
CONDITIONS = [
    "attempts < max_attempts",
    "len(tags) > 0 and In('busy')",
    "job.path == ''",
    "last_error is None",
    "event.name == 'go' or event.name is None",
]
VALUES = [
    "'unknown'",
    "label + '!'",
    "job.path if attempts > 1 else label",
    "label if event.name == 'go' else 'x'",
]

token_soup = st.lists(st.sampled_from(TOKENS), max_size=14).flatmap(
    lambda parts: st.lists(
        st.sampled_from(["", " ", "\n", "\t", "  "]), min_size=len(parts), max_size=len(parts)
    ).map(lambda gaps: "".join(gap + part for gap, part in zip(gaps, parts, strict=True)))
)
texts = st.one_of(st.text(), token_soup, st.sampled_from(ESCAPES))
conditions = st.one_of(texts, st.sampled_from(CONDITIONS))
values = st.one_of(texts, st.sampled_from(VALUES))
STYLES = st.sampled_from([None, "'", '"', "|", ">"])


def styled(text: str, style: str | None) -> Styled:
    value = Styled(text)
    value.style = style
    return value


def machine(when: Styled, expr: Styled) -> dict[str, Any]:
    """A machine with data, `when:` in both transition forms and in an `if` block, and
    `expr:` on a transition (in an `assign`, a `log` and a `send` payload) and in a state's
    actions."""
    return {
        "initial_state": "idle",
        "context": {
            "attempts": {"type": "integer", "default": 0},
            "max_attempts": {"type": "integer", "default": 3},
            "label": {"type": "string", "default": ""},
            "tags": {"type": "array", "items": {"type": "string"}, "default": []},
            "last_error": {"type": ["string", "null"], "default": None},
        },
        "events": {
            "failed": {
                "payload": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}},
                    "required": ["error"],
                }
            },
            "go": None,
        },
        "jobs": {
            "task": {
                "data": {
                    "type": "object",
                    "properties": {"path": {"type": "string"}},
                    "required": ["path"],
                }
            }
        },
        "states": [
            {"name": "idle", "on": {"go": [{"to": "busy", "when": when}, {"to": "idle"}]}},
            "busy",
            "failed",
            "done",
        ],
        "transitions": [
            {
                "from": "busy",
                "to": "failed",
                "event": "failed",
                "when": when,
                "actions": [
                    {"type": "assign", "location": "last_error", "expr": expr},
                    # the pure actions' expressions: an if's condition, a log's value and
                    # a send's payload field
                    {
                        "type": "if",
                        "when": when,
                        "then": [{"type": "log", "label": "value", "expr": expr}],
                        "elif": [{"when": when, "then": []}],
                        "else": [{"type": "send", "event": "failed", "payload": {"error": expr}}],
                    },
                ],
            },
            {"from": "busy", "to": "done", "event": "go"},
            {"from": "failed", "to": "done", "event": "go"},
        ],
        "actions": {"done": [{"type": "assign", "location": "label", "expr": expr}]},
    }


def render(when: str, expr: str, styles: tuple[Any, Any], width: int) -> str:
    data = machine(styled(when, styles[0]), styled(expr, styles[1]))
    return yaml.dump(data, Dumper=StyledDumper, allow_unicode=True, sort_keys=False, width=width)


def expression_spans(text: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where each `when:`/`expr:` scalar (and the send's `error:` payload field) starts and
    ends (1-based line and column), as PyYAML's own parser marks them (libyaml's, as the
    checker's loader uses)."""
    spans = []
    loader = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
    stack = [yaml.compose(text, Loader=loader)]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(value, yaml.ScalarNode) and key.value in ("when", "expr", "error"):
                    start, end = value.start_mark, value.end_mark
                    spans.append(
                        ((start.line + 1, start.column + 1), (end.line + 1, end.column + 1))
                    )
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return spans


def assert_sane(result: CheckResult, text: str, *, parsed: bool = True) -> None:
    """Known codes, every position inside the file, every expression problem inside an
    expression's scalar; and nothing ran."""
    lines = text.splitlines()
    spans = expression_spans(text) if parsed else []
    for d in result.diagnostics:
        assert d.code in CODES and d.message, d
        assert 1 <= d.line <= max(len(lines), 1), d
        assert 1 <= d.col <= (len(lines[d.line - 1]) + 1 if lines else 1), d
        if d.code in ("SMC090", "SMC091", "SMC092"):
            assert any(start <= (d.line, d.col) <= end for start, end in spans), (d, spans)
    assert not MARKER.exists()


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(conditions, values, st.tuples(STYLES, STYLES), st.integers(20, 120))
def test_any_expression_text_in_a_machine_file(
    when: str, expr: str, styles: tuple[Any, Any], width: int
) -> None:
    text = render(when, expr, styles, width)
    result = check_texts([("m.yaml", text)])
    assert_sane(result, text)
    refuse_not_yet_compiled(result)  # as smc build does: the machine always has guards
    assert_sane(result, text)
    assert result.errors


@FUZZ
@given(st.one_of(texts, st.sampled_from([*CONDITIONS, *VALUES])), st.integers(0, 3))
def test_any_text_written_raw_into_a_machine_file(raw: str, where: int) -> None:
    """The text pasted as it is, unquoted: often not YAML any more (SMC001), or a value
    that is not a string (SMC004); whatever it does, the checker answers sanely."""
    template = [
        "initial_state: a\ncontext: {n: {type: integer, default: 0}}\ntransitions:\n"
        "  - {from: a, to: b, event: go, when: RAW}\n",
        "initial_state: a\ncontext: {n: {type: integer, default: 0}}\ntransitions:\n"
        "  - from: a\n    to: b\n    event: go\n    when: RAW\n",
        "initial_state: a\ncontext: {n: {type: integer, default: 0}}\ntransitions:\n"
        "  - {from: a, to: b, event: go}\nactions:\n  b:\n"
        "    - {type: assign, location: n, expr: RAW}\n",
        "initial_state: a\ncontext: {n: {type: integer, default: 0}}\ntransitions:\n"
        "  - {from: a, to: b, event: go}\nactions:\n  b:\n"
        "    - type: assign\n      location: n\n      expr: RAW\n",
    ][where]
    text = template.replace("RAW", raw)
    result = check_texts([("m.yaml", text)])
    try:
        expression_spans(text)
    except yaml.YAMLError:  # not YAML: no expression was checked (SMC001)
        assert_sane(result, text, parsed=False)
    else:
        assert_sane(result, text)


def smc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_smc(*args, cwd=cwd)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions, values, st.tuples(STYLES, STYLES))
def test_smc_check_and_build_processes_on_fuzzed_files(
    when: str, expr: str, styles: tuple[Any, Any]
) -> None:
    text = render(when, expr, styles, 80)
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        (work / "m.yaml").write_text(text, encoding="utf-8")
        checked = smc("check", "--format", "json", "m.yaml", cwd=work)
        assert checked.returncode in (0, 1), checked.stderr
        assert "Traceback" not in checked.stderr
        lines = text.splitlines()
        for item in json.loads(checked.stdout):
            assert item["code"] in CODES
            assert 1 <= item["line"] <= len(lines)
            assert 1 <= item["col"] <= len(lines[item["line"] - 1]) + 1
        built = smc("build", "m.yaml", "-o", "out", cwd=work)
        assert "Traceback" not in built.stderr
        if built.returncode == 1:
            # an error in the text: nothing built
            assert not any((work / "out").rglob("*.py")) if (work / "out").exists() else True
        else:
            assert checked.returncode == 0, built.stderr
            # a clean file builds, and its module is valid Python (compiled, not run)
            module = work / "out" / "m.py"
            compile(module.read_text(encoding="utf-8"), str(module), "exec")
    assert not MARKER.exists()


def test_the_fuzz_reaches_both_outcomes() -> None:
    """A check on the fuzz itself: accepted expressions and refused ones both occur (so the
    checker's whole path, to the not-yet-compiled refusal, is exercised)."""
    outcomes = {"clean": 0, "refused": 0}

    # derandomized: this counts what the strategies produce, so the same draw every run
    # (a random one fell under the floor now and then: a flaky test, not a finding)
    @settings(max_examples=200, deadline=None, database=None, derandomize=True)
    @given(conditions, values, st.tuples(STYLES, STYLES))
    def count(when: str, expr: str, styles: tuple[Any, Any]) -> None:
        result = check_texts([("m.yaml", render(when, expr, styles, 80))])
        outcomes["clean" if not result.errors else "refused"] += 1

    count()
    assert outcomes["clean"] >= 3 and outcomes["refused"] >= 50, outcomes


def test_an_empty_block_expression_on_the_last_line_is_placed_in_the_file() -> None:
    """Found by the fuzz above: `when: |` with nothing after it ends past the file."""
    text = (
        "initial_state: a\ncontext: {n: {type: integer, default: 0}}\ntransitions:\n"
        "  - from: a\n    to: b\n    event: go\n    when: |\n"
    )
    result = check_texts([("m.yaml", text)])
    assert [(d.line, d.col, d.code) for d in result.diagnostics] == [(7, 11, "SMC090")]
