"""The expression language of ``when:`` and ``expr:`` (smc/compiler/expressions.py).

What is accepted and what it compiles to, every refused construct with its message and
column, names and types checked against the scope, and the fuzz: whatever the text,
checking never raises, and the code written for an accepted expression holds only the
allowlisted constructs over the generated module's own names.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import black
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smc.compiler import expressions
from smc.compiler.expressions import (
    IO_PROCESSOR_TYPES,
    MAX_DEPTH,
    MAX_LENGTH,
    Expression,
    Names,
    Problem,
    Scope,
    ValueType,
    parse_expression,
    parse_guard,
    schema_type,
    to_python,
)
from smc.machine import SCXML_PROCESSOR

SCOPE = Scope.from_schemas(
    context={
        "attempts": {"type": "integer", "default": 0},
        "max_attempts": {"type": "integer", "default": 3},
        "last_error": {"type": ["string", "null"], "default": None},
        "ok": {"type": "boolean"},
        "ratio": {"type": "number"},
        "label": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "config": {
            "type": "object",
            "properties": {"retries": {"type": "integer"}, "mode": {"type": "string"}},
            "required": ["retries"],
        },
        "blob": {},
    },
    states=["idle", "busy", "failed", "dead"],
    payload={
        "type": "object",
        "properties": {
            "error": {"type": "string"},
            "items": {"type": "array", "items": {"type": "integer"}},
            "code": {"type": "integer"},
        },
        "required": ["error", "items"],
    },
    job={"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    event="failed",
)
NAMES = Names(
    context={name: name for name in SCOPE.context},
    states={state: state.upper() for state in SCOPE.states},
)
#: What an expression reading the event (``event``, ``event.name``, ``event.type``) compiles
#: with: the compiler always works out the event where one is read (an event given to
#: ``fire`` here), and compiles it to constants.
EVENT_NAMES = dataclasses.replace(NAMES, event="go", event_known=True, event_internal=False)


def accepted(text: str, scope: Scope = SCOPE, *, guard: bool = False) -> Expression:
    result = parse_guard(text, scope=scope) if guard else parse_expression(text, scope=scope)
    assert isinstance(result, Expression), result
    return result


def refused(text: str, scope: Scope = SCOPE, **options: Any) -> list[Problem]:
    guard = options.pop("guard", False)
    if guard:
        result = parse_guard(text, scope=scope)
    else:
        result = parse_expression(text, scope=scope, **options)
    assert isinstance(result, list) and result, result
    return result


# ---- accepted -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "python", "kinds"),
    [
        # the issue's examples
        ("attempts < max_attempts", "ctx.attempts < ctx.max_attempts", {"boolean"}),
        ("attempts + 1", "ctx.attempts + 1", {"integer"}),
        ("payload.error", 'payload["error"]', {"string"}),
        (
            "len(payload.items) > 0 and In('busy')",
            'len(payload["items"]) > 0 and self.in_state(State.BUSY)',
            {"boolean"},
        ),
        (
            "'late' if attempts > 2 else 'early'",
            '"late" if ctx.attempts > 2 else "early"',
            {"string"},
        ),
        # the rest of the language
        ("job.path", 'job["path"]', {"string"}),
        ("payload['error']", 'payload["error"]', {"string"}),
        ("payload.code", 'payload.get("code")', {"integer", "null"}),
        ("payload.code is None", 'payload.get("code") is None', {"boolean"}),
        ("last_error is not None", "ctx.last_error is not None", {"boolean"}),
        ("config.retries * 2", 'ctx.config["retries"] * 2', {"integer"}),
        ("config.mode", 'ctx.config.get("mode")', {"string", "null"}),
        ("tags[0]", "ctx.tags[0]", {"string"}),
        ("tags[-1]", "ctx.tags[-1]", {"string"}),
        ("label[0]", "ctx.label[0]", {"string"}),
        ("'x' in tags", '"x" in ctx.tags', {"boolean"}),
        ("label not in ('a', 'b')", 'ctx.label not in ["a", "b"]', {"boolean"}),
        ("attempts in [1, 2]", "ctx.attempts in [1, 2]", {"boolean"}),
        ("0 <= ratio < 1.5", "0 <= ctx.ratio < 1.5", {"boolean"}),
        ("not ok or attempts == 0", "not ctx.ok or ctx.attempts == 0", {"boolean"}),
        ("(attempts + 1) * 2", "(ctx.attempts + 1) * 2", {"integer"}),
        ("attempts - (1 - 2)", "ctx.attempts - (1 - 2)", {"integer"}),
        ("attempts / 2", "ctx.attempts / 2", {"number"}),
        ("attempts // 2 % 3", "ctx.attempts // 2 % 3", {"integer"}),
        ("-attempts", "-ctx.attempts", {"integer"}),
        ("- - attempts", "--ctx.attempts", {"integer"}),
        ("label + '!'", 'ctx.label + "!"', {"string"}),
        ("1e20", "1e20", {"number"}),
        ("0x10", "16", {"integer"}),
        ('"it\'s"', '"it\'s"', {"string"}),
        ("None", "None", {"null"}),
        ("True", "True", {"boolean"}),
        ("(1,)", "[1]", {"array"}),
        ("[]", "[]", {"array"}),
        ("blob", "ctx.blob", set()),
        ("len(blob) + len(label)", "len(ctx.blob) + len(ctx.label)", {"integer"}),
        # `*` and `%` of a value the checker cannot type take it with a unary plus, which
        # refuses a string or a list where it runs (else repeated or %-formatted: as much
        # memory as the data asks for); `+` joins what it is given
        ("blob * 2", "+ctx.blob * 2", set()),
        ("attempts % blob", "ctx.attempts % +ctx.blob", set()),
        ("blob * -blob", "+ctx.blob * +-ctx.blob", set()),
        ("(blob + blob) * attempts", "+(ctx.blob + ctx.blob) * ctx.attempts", set()),
        ("blob + blob", "ctx.blob + ctx.blob", set()),
        ("  attempts", "ctx.attempts", {"integer"}),
        ("(attempts <\n max_attempts)", "ctx.attempts < ctx.max_attempts", {"boolean"}),
        ("(1 if ok else 2) if ok else 3", "(1 if ctx.ok else 2) if ctx.ok else 3", {"integer"}),
        ("1 if ok else 2 if ok else 3", "1 if ctx.ok else 2 if ctx.ok else 3", {"integer"}),
        ("(ok and ok) and ok", "(ctx.ok and ctx.ok) and ctx.ok", {"boolean"}),
        ("(attempts < 1) == ok", "(ctx.attempts < 1) == ctx.ok", {"boolean"}),
    ],
)
def test_accepted_expressions_and_their_python(text: str, python: str, kinds: set[str]) -> None:
    expression = accepted(text)
    assert to_python(expression, NAMES) == python
    assert expression.type.kinds == kinds
    assert expression.text == text


def test_guards_accept_conditions() -> None:
    for text in ["attempts < max_attempts", "ok", "not label", "In('busy') or In('idle')"]:
        accepted(text, guard=True)


def test_checked_expressions_are_values() -> None:
    """Equal text and scope give equal, hashable results (a model may hold them)."""
    first, second = accepted("config.retries + len(tags)"), accepted("config.retries + len(tags)")
    assert first == second and hash(first) == hash(second)
    assert isinstance(hash(SCOPE), int) and isinstance(hash(NAMES), int)
    assert refused("_a + _b") == refused("_a + _b")


def test_what_an_expression_reads() -> None:
    expression = accepted("attempts < max_attempts and payload.error != job.path or In('busy')")
    assert expression.context_fields == {"attempts", "max_attempts"}
    assert expression.uses_payload and expression.uses_job
    assert expression.states == {"busy"}
    plain = accepted("1 + 2")
    assert not (plain.context_fields or plain.uses_payload or plain.uses_job or plain.states)


def test_context_fields_and_states_are_written_with_the_generated_names() -> None:
    scope = Scope.from_schemas(context={"maxAttempts": {"type": "integer"}}, states=["in progress"])
    names = Names(context={"maxAttempts": "max_attempts"}, states={"in progress": "IN_PROGRESS"})
    expression = accepted("maxAttempts > 1 and In('in progress')", scope)
    assert (
        to_python(expression, names) == "ctx.max_attempts > 1 and self.in_state(State.IN_PROGRESS)"
    )


def test_the_emitter_refuses_names_that_are_not_plain_identifiers() -> None:
    expression = accepted("attempts")
    for bad in ["__class__", "a.b", "import", "x y", "_private", ""]:
        with pytest.raises(ValueError):
            to_python(expression, Names(context={"attempts": bad}))
    with pytest.raises(KeyError):
        to_python(expression, Names())


def test_payload_and_job_are_the_roots_not_context_fields() -> None:
    scope = Scope.from_schemas(context={"payload": {"type": "integer"}}, payload=None)
    [problem] = refused("payload + 1", scope)
    assert problem.kind == "name"
    assert "no payload" in problem.message


def test_compiled_expressions_run_as_python(tmp_path: Path) -> None:
    """The emitted text is ordinary code: imported as a module, it computes what the
    expression says over a context object, a payload, job data and the machine."""
    cases = {
        "attempts < max_attempts": True,
        "attempts + 1": 3,
        "payload.error": "disk full",
        "len(payload.items) > 0 and In('busy')": True,
        "In('idle')": False,
        "'late' if attempts > 1 else 'early'": "late",
        "payload.code is None and job.path == '/tmp/x'": True,
        "config.retries * 2 - -1": 7,
        "tags[-1] + '!'": "b!",
        "attempts // 3 + attempts % 3 + attempts / 4": 2.5,
        "not ok or 'a' in tags": True,
        "(1, 2)": [1, 2],  # a JSON array, as the same value in the data
        "tags == ('a', 'b')": True,
    }
    lines = ["import enum", "class State(enum.Enum):"]
    lines += [f"    {member} = {state!r}" for state, member in sorted(NAMES.states.items())]
    for number, text in enumerate(cases):
        body = to_python(accepted(text), NAMES)
        lines += [f"def f{number}(self, ctx, payload, job):", f"    return {body}"]
    module = load_module(tmp_path, "\n".join(lines) + "\n")

    class Machine:
        def in_state(self, state: Any) -> bool:
            return bool(state is module.State.BUSY)

    ctx = SimpleNamespace(
        attempts=2, max_attempts=3, ok=True, tags=["a", "b"], config={"retries": 3}, blob=None
    )
    payload = {"error": "disk full", "items": [1]}
    for number, (text, expected) in enumerate(cases.items()):
        assert getattr(module, f"f{number}")(Machine(), ctx, payload, {"path": "/tmp/x"}) == (
            expected
        ), text


def load_module(folder: Path, source: str) -> ModuleType:
    path = folder / "compiled_expressions.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("compiled_expressions", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- refused constructs -------------------------------------------------------------------

CALLS = expressions.CALLS_MESSAGE
UNDERSCORE = expressions.UNDERSCORE_MESSAGE


@pytest.mark.parametrize(
    ("text", "kind", "message", "start"),
    [
        ("__import__('os').system('id')", "construct", CALLS, 0),
        ("print(1)", "construct", CALLS, 0),
        ("payload.error.upper()", "construct", CALLS, 0),
        ("attempts + getattr(ctx, 'x')", "construct", CALLS, 11),
        ("len(tags, 1)", "construct", "len() takes exactly one argument", 0),
        ("len(x=tags)", "construct", "len() takes exactly one argument", 0),
        ("In(label)", "construct", "In() takes a state's name as a string literal: In('busy')", 3),
        ("len", "construct", "`len` can only be called: `len(...)`", 0),
        ("payload.__class__", "construct", UNDERSCORE, 8),
        ("attempts.__class__.__mro__", "construct", UNDERSCORE, 19),
        ("_x", "construct", UNDERSCORE, 0),
        ("ok and __builtins__", "construct", UNDERSCORE, 7),
        ("lambda: 1", "construct", "lambda is not allowed", 0),
        ("[t for t in tags]", "construct", "comprehensions are not allowed", 0),
        ("any(t for t in tags)", "construct", CALLS, 0),
        ("{t: 1 for t in tags}", "construct", "comprehensions are not allowed", 0),
        ("(n := 1)", "construct", "assignment expressions (`:=`) are not allowed", 1),
        ("f'{attempts}'", "construct", "f-strings are not allowed", 0),
        ("ok or f'{ok!r}'", "construct", "f-strings are not allowed", 6),
        ("[*tags]", "construct", "starred expressions (`*x`) are not allowed", 1),
        ("{'a': 1}", "construct", "dict literals are not allowed", 0),
        ("{1}", "construct", "set literals are not allowed", 0),
        ("tags[0:1]", "construct", "slices are not allowed", 5),
        ("tags[attempts]", "construct", "an index must be a string or integer literal", 5),
        ("attempts ** 2", "construct", "the `**` operator is not allowed", 0),
        ("attempts << 2", "construct", "the `<<` operator is not allowed", 0),
        ("ok | ok", "construct", "the `|` operator is not allowed", 0),
        ("~attempts", "construct", "the `~` operator is not allowed", 0),
        ("attempts is 1", "construct", "`is` and `is not` are only allowed with None", 0),
        ("(yield)", "construct", "`yield` is not allowed", 1),
        ("await ok", "construct", "`await` is not allowed", 0),
        ("b'x'", "construct", "bytes literals are not allowed", 0),
        ("1j", "construct", "complex numbers are not allowed", 0),
        ("...", "construct", "the constant `...` is not allowed", 0),
        ("1e999", "construct", "the number is too large", 0),
        ("import os", "construct", "`import` statements are not allowed: write one expression", 0),
        ("from os import system", "construct", "`import` statements are not allowed", 0),
        ("attempts = 1", "construct", "assignment is not allowed", 0),
        ("attempts += 1", "construct", "assignment is not allowed", 0),
        ("def f(): pass", "construct", "`def` statements are not allowed", 0),
        ("class A: pass", "construct", "`class` statements are not allowed", 0),
        ("while True: pass", "construct", "`while` statements are not allowed", 0),
        ("ok; ok", "construct", "only one expression is allowed", 4),
        ("attempts <", "syntax", "not a valid expression", 10),
        ("attempts < < 1", "syntax", "not a valid expression", 11),
        ("", "syntax", "the expression is empty", 0),
        ("   ", "syntax", "the expression is empty", 0),
        ("# only a comment", "syntax", "not a valid expression", 16),
        ("ok\x00", "syntax", "the expression holds a null character", 2),
        ("'\ud800'", "syntax", "not a valid expression: it holds a character that is not", 1),
    ],
)
def test_refused_constructs(text: str, kind: str, message: str, start: int) -> None:
    problem = refused(text)[0]
    assert problem.kind == kind
    assert problem.message.startswith(message), problem.message
    assert problem.start == start, problem
    assert problem.start <= problem.end <= len(text)


def test_columns_count_characters_and_lines() -> None:
    """Offsets count characters of the text as written: past non-ASCII text (which ``ast``
    counts in bytes), leading blanks and line breaks."""
    [problem] = refused("'éé' == atempts")
    assert (problem.start, problem.end) == (8, 15)
    [problem] = refused("   atempts")
    assert problem.start == 3
    [problem] = refused("(ok and\n  atempts)")
    assert problem.start == 10
    [problem] = refused("(ok and\r\n  atempts)")
    assert problem.start == 11
    [problem] = refused("'éé' + = 1")
    assert problem.kind == "syntax" and problem.start == 7


def test_every_problem_is_reported_in_text_order() -> None:
    problems = refused("_a + f(1) + atempts + payload.eror")
    assert [problem.start for problem in problems] == [0, 5, 12, 30]
    assert [problem.kind for problem in problems] == ["construct", "construct", "name", "name"]


def test_a_one_megabyte_expression_is_refused_before_parsing() -> None:
    text = "'" + "a" * 1_000_000 + "'"
    began = time.perf_counter()
    [problem] = refused(text)
    assert time.perf_counter() - began < 0.5
    assert problem.kind == "syntax"
    assert problem.message == f"the expression is longer than {MAX_LENGTH} characters"
    assert (problem.start, problem.end) == (MAX_LENGTH, len(text))


@pytest.mark.parametrize(
    "text",
    [
        "(" * 10_000 + "1" + ")" * 10_000,  # over the length cap
        "(" * 300 + "1" + ")" * 300,  # over Python's parenthesis limit
        "[" * 300 + "]" * 300,
        "-" * 900 + "1",  # deep without brackets
        "not " * 240 + "ok",
        "1" + " + 1" * 240,  # deep on the left
        "tags" + "[0]" * 200,
        "payload" + ".error" * 150,
    ],
)
def test_deep_nesting_is_a_problem_not_a_crash(text: str) -> None:
    [problem] = refused(text)
    assert problem.kind == "syntax"
    assert 0 <= problem.start <= problem.end <= len(text)


def test_nesting_up_to_the_cap_is_accepted() -> None:
    accepted("-" * (MAX_DEPTH - 1) + "1")
    [problem] = refused("-" * MAX_DEPTH + "1")
    assert problem.message == f"the expression is nested more than {MAX_DEPTH} deep"


# ---- names and types ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "hint", "start"),
    [
        ("atempts < 3", "unknown name 'atempts'", "did you mean 'attempts'?", 0),
        (
            "attempts < max_atempts",
            "unknown name 'max_atempts'",
            "did you mean 'max_attempts'?",
            11,
        ),
        ("error", "unknown name 'error'", "did you mean 'payload.error'?", 0),
        ("path", "unknown name 'path'", "did you mean 'job.path'?", 0),
        (
            "payload.eror",
            "the payload of event 'failed' has no field 'eror'",
            "did you mean 'error'?",
            8,
        ),
        (
            "payload['eror']",
            "the payload of event 'failed' has no field 'eror'",
            "did you mean 'error'?",
            8,
        ),
        ("job.pth", "`job` has no field 'pth'", "did you mean 'path'?", 4),
        ("config.retry", "`config` has no field 'retry'", "did you mean 'retries'?", 7),
        ("In('bsy')", "unknown state 'bsy'", "did you mean 'busy'?", 3),
        ("zzz", "unknown name 'zzz'", "", 0),
        ("blob.x", "`blob` declares no fields, so 'x' cannot be checked", "list its fields", 5),
    ],
)
def test_unknown_names_with_did_you_mean(text: str, message: str, hint: str, start: int) -> None:
    [problem] = refused(text)
    assert problem.kind == "name"
    assert problem.message == message
    assert problem.hint.startswith(hint)
    assert problem.start == start


def test_no_payload_schema_means_no_payload() -> None:
    scope = Scope.from_schemas(context={"ok": {"type": "boolean"}}, event="go")
    [problem] = refused("payload.error", scope)
    assert problem.kind == "name"
    assert problem.message == "there is no payload here: event 'go' declares none"
    [problem] = refused("payload", Scope.from_schemas())
    assert problem.message == "there is no payload here: no event carries one"
    [problem] = refused("job.path", scope)
    assert problem.message == "there is no job data here"
    [problem] = refused("x", Scope.from_schemas())
    assert problem.hint == "the machine declares no `context:` fields"


@pytest.mark.parametrize(
    ("text", "message", "start"),
    [
        (
            'attempts < "x"',
            '`attempts` (an integer) and `"x"` (a string) cannot be compared with `<`',
            0,
        ),
        ("attempts == 'x'", "`attempts` is an integer and `'x'` a string: `==` is never true", 0),
        ("label != 1", "`label` is a string and `1` an integer: `!=` is always true", 0),
        ("attempts + 'x'", "`+` cannot take an integer and a string", 0),
        ("label * 3", "`*` cannot take a string and an integer", 0),
        # beside a value the checker cannot type, a string or a list would be repeated or
        # %-formatted by a count from the data
        ("label * blob", "`*` cannot take a string: arithmetic takes numbers", 0),
        ("'%99999999d' % blob", "`%` cannot take a string: arithmetic takes numbers", 0),
        ("tags * blob", "`*` cannot take a list: arithmetic takes numbers", 0),
        ("ok + 1", "`+` cannot take a boolean and an integer", 0),
        ("-label", "`-` needs a number, and `label` is a string", 0),
        (
            "len(attempts)",
            "len() needs a string, a list or an object, and `attempts` is an integer",
            0,
        ),
        ("attempts[0]", "`attempts` is an integer, so it has no items to read", 0),
        ("attempts.x", "`attempts` is an integer, so it has no field 'x' to read", 9),
        ("tags['x']", "`tags` is a list, so it has no field 'x' to read", 5),
        (
            "1 in attempts",
            "`in` needs a list, a string or an object on its right, and `attempts` is an integer",
            0,
        ),
        ("1 in label", "`1` is an integer: `in` a string needs a string", 0),
        (
            "1 in tags",
            "`1` is an integer and the items of `tags` are a string: `in` is never true",
            0,
        ),
        ("attempts is None", "`attempts` is an integer, never None: `is None` is constant", 0),
        (
            "payload.code > 0",
            "`payload.code` (an integer or null) and `0` (an integer) cannot be compared with `>`",
            0,
        ),
        ("last_error + '!'", "`+` cannot take a string or null and a string", 0),
        (
            "len(config.mode)",
            "len() needs a string, a list or an object, and `config.mode` is a string or null",
            0,
        ),
    ],
)
def test_type_mismatches(text: str, message: str, start: int) -> None:
    [problem] = refused(text)
    assert problem.kind == "type"
    assert problem.message == message
    assert problem.start == start and start < problem.end <= len(text)


def test_a_value_that_may_be_null_says_so() -> None:
    [problem] = refused("payload.code + 1")
    assert "may be null" in problem.hint


def test_a_guard_must_be_true_or_false() -> None:
    [problem] = refused("payload.error", guard=True)
    assert problem.kind == "type"
    assert problem.message == "a `when:` condition must be true or false; this is a string"
    assert (problem.start, problem.end) == (0, 13)
    [problem] = refused("ok or attempts", guard=True)
    assert problem.message.endswith("this is an integer or a boolean")
    [problem] = refused("last_error", guard=True)
    assert problem.message.endswith("this is a string or null")
    accepted("blob", guard=True)  # its schema says nothing: the generated code's types decide


def test_an_assignment_must_fit_its_location() -> None:
    integer = schema_type({"type": "integer"})
    assert isinstance(parse_expression("attempts + 1", scope=SCOPE, expect=integer), Expression)
    [problem] = refused("attempts / 2", expect=integer)
    assert problem.message == "the value is a number, and its location takes an integer"
    assert problem.hint == "use `//` for whole-number division"
    nullable = schema_type({"type": ["string", "null"]})
    for text in ["payload.error", "None", "config.mode"]:
        assert isinstance(parse_expression(text, scope=SCOPE, expect=nullable), Expression)
    number = schema_type({"type": "number"})
    assert isinstance(parse_expression("attempts", scope=SCOPE, expect=number), Expression)


def test_schema_types() -> None:
    assert schema_type({"type": "integer", "default": 0}).kinds == {"integer"}
    assert schema_type({"type": ["string", "null"]}).kinds == {"string", "null"}
    assert schema_type({"enum": ["a", 1, None]}).kinds == {"string", "integer", "null"}
    assert schema_type({"const": True}).kinds == {"boolean"}
    assert schema_type({"anyOf": [{"type": "string"}, {"type": "integer"}]}).kinds == {
        "string",
        "integer",
    }
    assert not schema_type({"anyOf": [{"type": "string"}, {}]}).known
    assert not schema_type({}).known and not schema_type(True).known
    nested = schema_type(
        {"properties": {"a": {"type": "object", "properties": {"b": {"type": "integer"}}}}}
    )
    assert nested.kinds == {"object"} and nested.fields is not None
    assert not nested.fields["a"].required
    inner = nested.fields["a"].type.fields
    assert inner is not None and inner["b"].type.kinds == {"integer"}
    assert schema_type({"type": "array", "items": {"type": "string"}}).items == ValueType(
        frozenset({"string"})
    )


# ---- the fuzz -----------------------------------------------------------------------------

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: What the code written for an accepted expression may consist of.
OUTPUT_NODES = (
    ast.Expression, ast.Constant, ast.Name, ast.Attribute, ast.Subscript, ast.Call,
    ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.IfExp, ast.List, ast.Tuple, ast.Load,
    ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, ast.Add, ast.Sub, ast.Mult, ast.Div,
    ast.FloorDiv, ast.Mod, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In,
    ast.NotIn, ast.Is, ast.IsNot, ast.Dict, ast.Starred,
)  # fmt: skip
# ``machine.name`` is written as the module's MACHINE_NAME, ``machine.processor_type`` as
# ProcessorType(<the SCXML processor's URI>), ``machine.session_id`` as self.session_id.
OUTPUT_NAMES = frozenset(
    {"ctx", "payload", "job", "self", "State", "len", "MACHINE_NAME", "ProcessorType"}
)


def assert_only_allowlisted(python: str) -> None:
    """``python`` parses as one expression of allowlisted nodes over the generated names:
    nothing outside the allowlist was compiled."""
    tree = ast.parse(python, mode="eval")
    for node in ast.walk(tree):
        assert isinstance(node, OUTPUT_NODES), (python, ast.dump(node))
        if isinstance(node, ast.Constant):
            assert type(node.value) in (int, float, str, bool, type(None)), python
        if isinstance(node, ast.Name):
            assert node.id in OUTPUT_NAMES, python
        if isinstance(node, ast.Attribute):
            assert isinstance(
                node.value, ast.Name | ast.Attribute | ast.Subscript | ast.Call
            ), python
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            if owner == "ctx":
                assert node.attr in NAMES.context.values(), python
            elif owner == "State":
                assert node.attr in NAMES.states.values(), python
            elif owner == "self":
                assert node.attr in ("in_state", "session_id"), python
            else:
                assert node.attr == "get", python
        if isinstance(node, ast.Call):
            assert not node.keywords and len(node.args) == 1, python
            func = node.func
            if isinstance(func, ast.Name):
                assert func.id in ("len", "ProcessorType"), python
                if func.id == "ProcessorType":
                    argument = node.args[0]
                    assert isinstance(argument, ast.Constant), python
                    assert argument.value == SCXML_PROCESSOR, python
            else:
                assert isinstance(func, ast.Attribute) and func.attr in ("get", "in_state")
                if func.attr == "get":
                    assert isinstance(node.args[0], ast.Constant), python
                    assert isinstance(node.args[0].value, str), python
                else:
                    assert isinstance(node.args[0], ast.Attribute), python
        if isinstance(node, ast.Subscript):
            index = node.slice
            if isinstance(index, ast.UnaryOp):
                assert isinstance(index.op, ast.USub), python
                index = index.operand
            assert isinstance(index, ast.Constant), python
            assert isinstance(index.value, str | int), python


class _Normalise(ast.NodeTransformer):
    """The written code read back in the expression's own terms, so its tree can be compared
    with the tree of the text: ``ctx.x`` is ``x``, ``payload["k"]`` and ``payload.get("k")``
    are ``payload.k``, ``self.in_state(State.BUSY)`` is ``In('busy')``."""

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.value, ast.Name) and node.value.id == "ctx":
            return ast.Name(node.attr, ast.Load())
        if isinstance(node.value, ast.Name) and node.value.id == "self":  # self.session_id
            return _machine_field(node.attr)
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return _machine_field("name") if node.id == "MACHINE_NAME" else node

    def visit_Tuple(self, node: ast.Tuple) -> ast.AST:
        # a tuple literal is written as a list: both are a JSON array
        self.generic_visit(node)
        return ast.List(node.elts, node.ctx)

    def visit_Dict(self, node: ast.Dict) -> ast.AST:
        # machine.io_processors: a display keyed by the processor's names, made anew each read
        keys = [key.value for key in node.keys if isinstance(key, ast.Constant)]
        if keys and keys == list(IO_PROCESSOR_TYPES):
            return _machine_field("io_processors")
        self.generic_visit(node)
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            return ast.Attribute(node.value, node.slice.value, ast.Load())
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "get":
            key = node.args[0]
            assert isinstance(key, ast.Constant) and isinstance(key.value, str)
            return ast.Attribute(func.value, key.value, ast.Load())
        if isinstance(func, ast.Name) and func.id == "ProcessorType":
            return _machine_field("processor_type")
        if isinstance(func, ast.Attribute) and func.attr == "in_state":
            member = node.args[0]
            assert isinstance(member, ast.Attribute)
            return ast.Call(ast.Name("In", ast.Load()), [ast.Constant(member.attr.lower())], [])
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        return ast.Constant(node.value)  # without ``kind`` (u'' strings)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        # a list display on the left of `+` is written as one display with the right's
        # items in it (`['x'] + picks` as `["x", *ctx.picks]`), so both read so
        self.generic_visit(node)
        if isinstance(node.op, ast.Add) and isinstance(node.left, ast.List):
            right = node.right
            rest = right.elts if isinstance(right, ast.List) else [ast.Starred(right, ast.Load())]
            return ast.List([*node.left.elts, *rest], ast.Load())
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        # a unary plus keeps a number as it is: the code puts one before an operand of `*`
        # or `%` of unknown type (`attempts * ((())[0])`), so it is left out on both sides
        self.generic_visit(node)
        return node.operand if isinstance(node.op, ast.UAdd) else node


def _machine_field(field: str) -> ast.Attribute:
    return ast.Attribute(ast.Name("machine", ast.Load()), field, ast.Load())


def shape(tree: ast.AST) -> str:
    return ast.dump(_Normalise().visit(tree))


def assert_sound(text: str, result: Expression | list[Problem]) -> None:
    """Whatever the text: problems inside it, or an expression whose code holds only the
    allowlist, reads as the text does, is the same every time, and is in black's style."""
    if isinstance(result, list):
        assert result
        for problem in result:
            assert problem.kind in ("syntax", "construct", "name", "type")
            assert problem.message
            assert 0 <= problem.start <= problem.end <= len(text), (text, problem)
        return
    # The event is resolved when the class is built: ``event.name`` becomes the event's name,
    # ``event`` a dict display of constants and the payload.
    reads_event = result.uses_event or result.uses_event_type
    names = EVENT_NAMES if reads_event else NAMES
    python = to_python(result, names)
    assert_only_allowlisted(python)
    assert to_python(result, names) == python
    assert "\n" not in python
    if not reads_event:
        # The same tree as the text: every precedence and every literal kept.
        tree = ast.parse(python, mode="eval")
        assert shape(tree) == shape(ast.parse(text.strip(), mode="eval"))
    source = f"value = {python}\n"
    assert black.format_str(source, mode=black.Mode(line_length=10_000)) == source


def check_text(text: str) -> None:
    for result in (parse_expression(text, scope=SCOPE), parse_guard(text, scope=SCOPE)):
        assert_sound(text, result)


@FUZZ
@given(st.text())
def test_fuzz_any_text(text: str) -> None:
    check_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "machine.name",
        "machine.session_id",
        "machine.processor_type",
        "machine.io_processors",
        "machine.name == 'm' and machine.session_id != '' or machine.processor_type == 'scxml'",
    ],
)
def test_texts_reading_the_machine_compile_soundly(text: str) -> None:
    # The machine's fields are written as the module's and the instance's names (Hypothesis
    # found `machine.session_id`, which the allowlist above did not know).
    check_text(text)


@pytest.mark.parametrize(
    "text", ["event", "event.name", "event.type", "event.name == 'go' and event.type != 'x'"]
)
def test_texts_reading_the_event_compile_soundly(text: str) -> None:
    # Found by the fuzz (Hypothesis draws words from the code it tests): ``event`` alone.
    check_text(text)


TOKENS = [
    # names the scope knows, and names it must never reach
    "attempts", "max_attempts", "ok", "label", "tags", "config", "last_error", "ratio", "blob",
    "payload", "job", "error", "items", "code", "path", "retries", "mode", "len", "In",
    "__class__", "__import__", "__builtins__", "__globals__", "__subclasses__", "_x", "os",
    "system", "eval", "exec", "compile", "open", "getattr", "ctx", "self", "State", "get",
    # keywords
    "lambda", "import", "from", "not", "and", "or", "if", "else", "in", "is", "None", "True",
    "False", "for", "yield", "await", "def", "return", "del", "async",
    # punctuation and operators
    ".", "(", ")", "[", "]", ",", ":", ":=", "+", "-", "*", "/", "//", "%", "**", "<", "<=",
    "==", "!=", ">", ">=", "~", "|", "&", "^", "<<", "@", "=", ";", "\\", "#", "{", "}",
    # literals and pieces of them
    "'", '"', "f'", "b'", "'busy'", "'idle'", "'x'", '"error"', "'\\x00'", "f'{ok}'",
    "0", "1", "42", "-1", "1.5", "1e999", "0x10", "1j", "...", "'''",
]  # fmt: skip
tokens_text = st.lists(st.sampled_from(TOKENS), max_size=14).flatmap(
    lambda parts: st.lists(
        st.sampled_from(["", " ", "\n", "\t"]), min_size=len(parts), max_size=len(parts)
    ).map(lambda gaps: "".join(gap + part for gap, part in zip(gaps, parts, strict=True)))
)


@FUZZ
@given(tokens_text)
def test_fuzz_python_tokens(text: str) -> None:
    check_text(text)


def _grammar() -> st.SearchStrategy[str]:
    """Expressions built from the language's constructs and from constructs outside it, so
    many are accepted and the emitter's parentheses are tried in every combination."""
    leaves = st.sampled_from(
        [
            "attempts", "ratio", "ok", "label", "tags", "last_error", "blob", "config.retries",
            "config.mode", "payload.error", "payload.items", "payload.code", "job.path",
            "payload['error']", "tags[0]", "tags[-1]", "In('busy')", "0", "1", "2.5", "1e16",
            "'a'", '"b"', "u'c'", "None", "True", "False", "[1, 2]", "('a',)", "()",
            "__x", "x.__class__", "f(1)", "lambda: 0", "b''", "{}",
        ]
    )  # fmt: skip

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.sampled_from(
            ["+", "-", "*", "/", "//", "%", "and", "or", "==", "!=", "<", "<=", ">", ">=",
             "in", "not in", "is", "is not", "**", "|"]
        )  # fmt: skip
        return st.one_of(
            st.tuples(inner, binary, inner).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
            st.tuples(st.sampled_from(["not ", "-", "+", "~"]), inner).map("".join),
            inner.map(lambda t: f"({t})"),
            inner.map(lambda t: f"len({t})"),
            st.tuples(inner, inner, inner).map(lambda t: f"{t[0]} if {t[1]} else {t[2]}"),
            st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
            inner.map(lambda t: f"({t})[0]"),
            inner.map(lambda t: f"({t}).error"),
        )

    return st.recursive(leaves, extend, max_leaves=12)


NUMBER_LEAVES = [
    "attempts", "max_attempts", "ratio", "config.retries", "len(tags)", "len(payload.items)",
    "payload.items[0]", "0", "1", "2.5", "1e16",
]  # fmt: skip
CONDITION_LEAVES = [
    "ok", "In('busy')", "not ok", "last_error is None", "payload.code is not None",
    "'a' in tags", "label not in ('x', 'y')", "True",
]  # fmt: skip


def _typed_grammar() -> st.SearchStrategy[str]:
    """Well-typed expressions only (numbers, conditions), each operand written with or
    without parentheses, so that nearly all are accepted: the emitter's precedence and
    parentheses are tried in every combination."""

    def maybe_parens(text: str) -> st.SearchStrategy[str]:
        return st.sampled_from([text, f"({text})"])

    def test(text: str) -> str:
        """A conditional's test: a bare conditional there is not Python."""
        return f"({text})" if " if " in text else text

    def numbers(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        operator = st.sampled_from(["+", "-", "*", "/", "//", "%"])
        return st.one_of(
            st.tuples(inner, operator, inner).map(" ".join),
            st.tuples(st.sampled_from(["-", "+", "- "]), inner).map("".join),
            # Python reads a bare conditional as taking everything around it: parenthesised
            st.tuples(inner, conditions, inner).map(
                lambda t: f"({t[0]} if {test(t[1])} else {t[2]})"
            ),
        ).flatmap(maybe_parens)

    def combined(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(" ".join),
            inner.map(lambda t: f"not {t}"),
            st.tuples(inner, inner, inner).map(lambda t: f"{t[0]} if {test(t[1])} else {t[2]}"),
            # a bare comparison would chain with this one
            st.tuples(inner, st.sampled_from(["==", "!="]), inner).map(
                lambda t: f"({t[0]}) {t[1]} ({t[2]})"
            ),
        ).flatmap(maybe_parens)

    number: st.SearchStrategy[str] = st.deferred(
        lambda: st.recursive(st.sampled_from(NUMBER_LEAVES), numbers, max_leaves=6)
    )
    comparison = st.sampled_from(["<", "<=", "==", "!=", ">", ">="])
    condition_leaves = st.one_of(
        st.sampled_from(CONDITION_LEAVES),
        st.tuples(number, comparison, number).map(" ".join),
        st.tuples(number, comparison, number, comparison, number).map(" ".join),
    )
    conditions: st.SearchStrategy[str] = st.deferred(
        lambda: st.recursive(condition_leaves, combined, max_leaves=6)
    )
    return st.one_of(number, conditions)


@FUZZ
@given(_grammar())
def test_fuzz_grammar(text: str) -> None:
    check_text(text)


@FUZZ
@given(_typed_grammar())
def test_fuzz_well_typed(text: str) -> None:
    """Well-typed text is accepted (unless too deep), and its code reads as the text does.
    Two comparisons here are no well-typed ones to pyright strict (and mypy's strict
    equality), so SMC092: values typed by their literals that share none (``1 == (0 if ok
    else 2)``), and a None test of a field an earlier one narrowed (``last_error is None or
    last_error is None``: not null there)."""
    result = parse_expression(text, scope=SCOPE)
    assert (
        isinstance(result, Expression)
        or result[0].message.startswith(
            ("the expression is nested more than", "the expression is longer than")
        )
        or all(
            "share no value" in problem.message or "never None" in problem.message
            for problem in result
        )
    ), (text, result)
    check_text(text)


@settings(max_examples=100, deadline=None)
@given(_grammar())
def test_fuzz_grammar_reaches_code(text: str) -> None:
    """The grammar's expressions that pass are compiled and sound (so the fuzz above tests
    the emitter, not only the refusals)."""
    result = parse_expression(text, scope=SCOPE)
    if isinstance(result, Expression):
        assert_sound(text, result)


def test_the_grammar_fuzz_accepts_some_and_refuses_some() -> None:
    """A check on the fuzz itself: its generator reaches both outcomes often."""
    outcomes = {"accepted": 0, "refused": 0}

    # derandomize: the same examples every run, so the count cannot flake.
    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(_grammar())
    def count(text: str) -> None:
        result = parse_expression(text, scope=SCOPE)
        outcomes["accepted" if isinstance(result, Expression) else "refused"] += 1

    count()
    assert outcomes["accepted"] >= 30 and outcomes["refused"] >= 30, outcomes


# ---- nothing executes ---------------------------------------------------------------------


ESCAPES = [
    "__import__('os').system('touch {marker}')",
    "open('{marker}', 'w')",
    "exec(\"open('{marker}', 'w')\")",
    "eval(\"open('{marker}', 'w')\")",
    "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen']",
    "().__class__.__bases__[0].__subclasses__()",
    "(lambda: open('{marker}', 'w'))()",
    "payload.__class__.__init__.__globals__['os'].system('touch {marker}')",
    "job['__builtins__']['open']('{marker}', 'w')",
    "f\"{{open('{marker}', 'w')}}\"",
    "__builtins__.open('{marker}', 'w')",
    "getattr(payload, 'get')('x')",
    "import os; os.system('touch {marker}')",
    "(x := open('{marker}', 'w'))",
    "breakpoint()",
    "In('busy') or open('{marker}', 'w')",
    "len(open('{marker}', 'w').name)",
]


@pytest.mark.parametrize("escape", ESCAPES)
def test_classic_escapes_are_refused_and_never_run(escape: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = escape.format(marker=marker)
    for result in (parse_expression(text, scope=SCOPE), parse_guard(text, scope=SCOPE)):
        assert isinstance(result, list) and result, text
        assert all(problem.kind in ("syntax", "construct") for problem in result), result
    assert not marker.exists()


def module_tree() -> ast.Module:
    path = Path(expressions.__file__)
    return ast.parse(path.read_text(encoding="utf-8"))


def test_the_module_never_evaluates_executes_or_compiles() -> None:
    """The checker only parses: no name or attribute that runs or loads code appears in it."""
    forbidden = {
        "eval", "exec", "compile", "__import__", "import_module", "getattr", "setattr",
        "globals", "locals", "vars", "open", "system", "popen", "run", "literal_eval",
    }  # fmt: skip
    for node in ast.walk(module_tree()):
        if isinstance(node, ast.Name):
            assert node.id not in forbidden, (node.id, node.lineno)
        if isinstance(node, ast.Attribute):
            assert node.attr not in forbidden, (node.attr, node.lineno)


def test_the_module_only_parses_with_ast() -> None:
    """Of ``ast`` it uses the parser (``ast.parse``, in eval and exec mode only) and the
    node classes; it imports nothing that could run code."""
    tree = module_tree()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        if isinstance(node, ast.ImportFrom):
            modules.add(node.module or "")
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if isinstance(node.func.value, ast.Name) and node.func.value.id == "ast":
            assert node.func.attr in ("parse", "iter_child_nodes"), node.func.attr
            if node.func.attr == "parse":
                [mode] = [k.value for k in node.keywords if k.arg == "mode"]
                assert isinstance(mode, ast.Constant) and mode.value in ("eval", "exec")
    assert modules <= {
        "__future__", "ast", "difflib", "keyword", "math", "re", "warnings",
        "collections.abc", "dataclasses", "types", "typing", "smc.compiler.pylayout",
        # the runtime base, for ProcessorType's equality where a comparison is folded
        "smc.machine",
    }, modules  # fmt: skip


# ---- the current event ----------------------------------------------------------------


def test_event_name_is_a_string_on_an_event_and_may_be_null_elsewhere() -> None:
    on_event = accepted("event.name == 'failed'", guard=True)
    assert on_event.uses_event and on_event.type == expressions.BOOLEAN
    # on an event, its name: the one value the class writes there
    assert accepted("event.name").type == expressions.literal("failed")
    assert accepted("event.name + 's'").type == expressions.STRING
    anywhere = Scope.from_schemas(context={"n": {"type": "integer"}})
    assert accepted("event.name", anywhere).type.kinds == {"string", "null"}
    # a value that may be null only goes into ==, !=, is None
    [problem] = refused("event.name + 'x'", anywhere)
    assert problem.kind == "type"


def test_event_data_is_the_payload() -> None:
    found = accepted("len(event.data.items) + 1")
    assert found.uses_payload and not found.uses_event
    assert to_python(found, NAMES) == 'len(payload["items"]) + 1'


@pytest.mark.parametrize(
    "text,kind,message,start,end",
    [
        ("attempts + event", "type", "`+` cannot take an integer and an object", 0, 16),
        ("event < 1", "type", "`event` (an object)", 0, 9),
        (
            "event.nme == 'x'",
            "name",
            "`event` has no field 'nme' (it has: name, data, type, send_id)",
            6,
            9,
        ),
        ("event._name", "construct", "names starting with '_' are not allowed", 6, 11),
    ],
)
def test_event_refusals_are_placed(
    text: str, kind: str, message: str, start: int, end: int
) -> None:
    [problem] = refused(text)
    assert (problem.kind, problem.start, problem.end) == (kind, start, end)
    assert problem.message.startswith(message)


def test_event_name_needs_the_event_known_to_be_written() -> None:
    found = accepted("event.name == 'failed'", guard=True)
    with pytest.raises(KeyError):
        to_python(found, NAMES)
    known = Names(context=NAMES.context, states=NAMES.states, event="failed", event_known=True)
    assert to_python(found, known) == "True"
    other = Names(context=NAMES.context, states=NAMES.states, event="retry", event_known=True)
    assert to_python(found, other) == "False"
    mixed = accepted("attempts < 3 and event.name in ['failed', 'x']", guard=True)
    assert to_python(mixed, known) == "ctx.attempts < 3 and True"
    start = Names(context=NAMES.context, states=NAMES.states, event=None, event_known=True)
    assert to_python(accepted("event.name"), start) == "None"
    anywhere = Scope.from_schemas(context={"n": {"type": "integer"}})
    either = accepted("'a' if event.name is None else event.name", anywhere)
    assert to_python(either, start) == '"a"'


def test_machine_io_processors() -> None:
    """``machine.io_processors`` (SCXML's ``_ioprocessors``): an object made of the session
    id, its fields typed, so a processor's location reads as a string."""
    found = accepted("machine.io_processors")
    assert found.type.kinds == {"object"} and found.uses_session
    assert to_python(found, NAMES) == (
        '{"http://www.w3.org/TR/scxml/#SCXMLEventProcessor": {"location": "#_scxml_" + '
        'self.session_id}, "scxml": {"location": "#_scxml_" + self.session_id}}'
    )
    location = accepted("machine.io_processors['scxml']['location']")
    assert location.type == expressions.STRING
    initial = Names(context=NAMES.context, states=NAMES.states, session="session_id")
    assert '"#_scxml_" + session_id' in to_python(location, initial)
    [problem] = refused("machine.io_processors['http']")
    assert problem.kind == "name"
    [problem] = refused("machine.io_processors + 1")
    assert problem.kind == "type"


def test_machine_name_and_session_id() -> None:
    found = accepted("machine.name + machine.session_id")
    assert found.type == expressions.STRING and found.uses_session
    assert to_python(found, NAMES) == "MACHINE_NAME + self.session_id"
    initial = Names(context=NAMES.context, states=NAMES.states, session="session_id")
    assert to_python(found, initial) == "MACHINE_NAME + session_id"
    [problem] = refused("machine.nme")
    assert (problem.kind, problem.start, problem.end) == ("name", 8, 11)
    assert problem.hint == "did you mean 'name'?"
    [problem] = refused("machine")
    assert (problem.kind, problem.start, problem.end) == ("construct", 0, 7)
