"""Typed machine data in the language: ``context:``, event ``payload:``, ``jobs:`` into the
model, and JSON Schema types into Python annotations (docs/language.md, Data).

The diagnostics (SMC080-SMC083) have their cases in test_diagnostics.py.
"""

from __future__ import annotations

import ast

import pytest

from smc.compiler.data import annotation, context_schema
from tests.support.statecharts import checked

DATA_MACHINE = """\
initial_state: idle
context:
  attempts: {type: integer, default: 0, description: tries so far}
  max_attempts: {type: integer, minimum: 1, default: 3}
  last_error: {type: [string, "null"], default: null}
  owner: {type: string}
events:
  go: null
  failed:
    description: the work failed
    payload:
      type: object
      properties: {error: {type: string}, code: {type: integer}}
      required: [error]
jobs:
  task: {data: {type: object, properties: {path: {type: string}}, required: [path]}}
  other: {description: no schema}
transitions:
  - {from: idle, to: busy, event: go}
  - {from: busy, to: idle, event: failed}
"""


def test_context_fields_in_order_with_their_defaults() -> None:
    machine = checked(DATA_MACHINE)
    fields = [(f.name, f.has_default, f.default, f.pos.line) for f in machine.context]
    assert fields == [
        ("attempts", True, 0, 3),
        ("max_attempts", True, 3, 4),
        ("last_error", True, None, 5),
        ("owner", False, None, 6),
    ]
    assert machine.context[0].description == "tries so far"
    assert machine.context[1].schema == {"type": "integer", "minimum": 1, "default": 3}
    assert machine.has_data


def test_event_payloads_and_job_types() -> None:
    machine = checked(DATA_MACHINE)
    events = {event.name: event for event in machine.events}
    assert events["go"].payload_schema is None
    failed = events["failed"]
    assert failed.payload_schema is not None
    assert failed.payload_schema["required"] == ["error"]
    assert failed.payload_pos is not None and failed.payload_pos.line == 11
    assert failed.description == "the work failed"
    jobs = [(job.name, job.data_schema) for job in machine.jobs]
    assert jobs[0][0] == "task" and jobs[0][1] is not None and jobs[0][1]["required"] == ["path"]
    assert jobs[1] == ("other", None)


def test_context_schema_requires_the_fields_without_a_default() -> None:
    schema = context_schema(checked(DATA_MACHINE))
    assert schema["required"] == ["owner"]
    assert schema["additionalProperties"] is False
    assert list(schema["properties"]) == ["attempts", "max_attempts", "last_error", "owner"]


def test_a_machine_without_declarations_has_no_data() -> None:
    machine = checked("initial_state: a\ntransitions:\n  - {from: a, to: b, event: go}\n")
    assert not machine.has_data
    assert machine.context == () and machine.jobs == ()


def test_yaml_values_are_reduced_to_json() -> None:
    """A date default is held as its text, as the generated module and the checker see it."""
    machine = checked(
        "initial_state: a\ntransitions:\n  - {from: a, to: b, event: go}\n"
        "context:\n  since: {type: string, default: 2024-01-02}\n"
    )
    assert machine.context[0].default == "2024-01-02"


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "integer"}, "int"),
        ({"type": "number"}, "float"),
        ({"type": "string"}, "str"),
        ({"type": "boolean"}, "bool"),
        ({"type": "null"}, "None"),
        ({"type": "object"}, "dict[str, Any]"),
        ({"type": "array"}, "list[Any]"),
        ({"type": "array", "items": {"type": "string"}}, "list[str]"),
        (
            {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
            "list[list[int]]",
        ),
        ({"type": ["string", "null"]}, "str | None"),
        ({"type": ["integer", "integer"]}, "int"),
        ({"type": ["integer", "frob"]}, "Any"),
        ({"enum": ["a", "b'c", 3, True, None]}, 'Literal["a", "b\'c", 3, True] | None'),
        ({"enum": [1.5]}, "Any"),
        ({"const": "x"}, 'Literal["x"]'),
        ({"enum": [None]}, "None"),
        ({}, "Any"),
        ({"anyOf": [{"type": "string"}]}, "Any"),
    ],
)
def test_annotation(schema: dict[str, object], expected: str) -> None:
    assert annotation(schema) == expected


def test_annotation_never_writes_schema_text_as_code() -> None:
    """Type names outside the JSON vocabulary, and string enums crafted as code, come out as
    ``Any`` or as string literals."""
    assert annotation({"type": "os.system('x')"}) == "Any"
    text = '"]; import os; x = ["'
    tree = ast.parse(annotation({"enum": [text]}), mode="eval").body
    assert isinstance(tree, ast.Subscript) and isinstance(tree.slice, ast.Constant)
    assert tree.slice.value == text
