"""schemas/machine.schema.json: a valid, versioned, documented JSON Schema that accepts the
three input styles, and whose errors read well and point at the right key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from smc.compiler import schema
from smc.compiler.loader import load_text
from tests.support import PROJECT_ROOT

SCHEMA_FILE = PROJECT_ROOT / "schemas" / "machine.schema.json"


def properties(node: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, subschema) declared under a `properties` keyword, anywhere."""
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{where}/{name}", sub
        for key, value in node.items():
            yield from properties(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from properties(value, f"{where}/{index}")


def test_schema_is_valid_draft_2020_12_and_versioned() -> None:
    document = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"].endswith("/machine/v1.json")
    assert schema.machine_schema() == document


def test_every_property_has_a_description_for_editors() -> None:
    document = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    found = list(properties(document))
    assert len(found) > 30
    missing = [where for where, sub in found if "description" not in sub]
    assert missing == []


def test_the_three_styles_are_accepted(corpus: Path) -> None:
    for relative in (
        "statemachine-engine/examples/patient_records/config/concurrent-controller.yaml",
        "seed-docs/quickstart/config/workflow.yaml",
        "seed-docs/execution/config/task_execution.yaml",
    ):
        data = yaml.safe_load((corpus / relative).read_text(encoding="utf-8"))
        jsonschema.validate(data, schema.machine_schema())


def messages(text: str) -> list[tuple[int, int, str, str]]:
    doc, problems = load_text("m.yaml", text)
    assert doc is not None and problems == []
    return [(d.line, d.col, d.message, d.hint) for d in schema.validate(doc)]


def test_unknown_keys_each_get_their_own_diagnostic_with_a_suggestion() -> None:
    text = (
        "initial_state: a\ntransitions:\n  - {from: a, to: b, event: go}\n"
        "evnts: [go]\nfinal_state: [b]\nzzz: 1\n"
    )
    assert messages(text) == [
        (4, 1, "unknown key 'evnts' in the document", "did you mean 'events'?"),
        (5, 1, "unknown key 'final_state' in the document", "did you mean 'final_states'?"),
        (
            6,
            1,
            "unknown key 'zzz' in the document",
            "allowed keys: action_types, actions, actions_root, context, description, events, "
            "final_states, groups, initial_state, jobs, metadata, name, states, template, "
            "transitions",
        ),
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("  - {from: a, to: 1, event: go}", "transitions[0].to must be a string, not the number 1"),
        (
            "  - {from: a, to: no, event: go}",
            "transitions[0].to must be a string, not the boolean false",
        ),
        ("  - {from: a, to: '', event: go}", "transitions[0].to must not be empty"),
        # A list of targets is a statechart's (tests/compiler/test_statechart_language.py).
        (
            "  - {from: a, to: {b: c}, event: go}",
            "transitions[0].to must be a string, not a mapping",
        ),
        ("  - {from: a, to: , event: go}", "transitions[0].to must be a string, not nothing"),
    ],
)
def test_wrong_values_point_at_the_value(line: str, expected: str) -> None:
    ((line_no, col, message, _hint),) = messages(f"initial_state: a\ntransitions:\n{line}\n")
    assert (line_no, col, message) == (3, 19, expected)


def test_wrong_value_inside_an_action() -> None:
    text = (
        "initial_state: a\ntransitions:\n  - {from: a, to: b, event: go}\nactions:\n  a:\n"
        "    - type: bash\n      command: x\n      error_mappings:\n        1: failed\n"
        "        2: [oops]\n"
    )
    assert messages(text) == [
        (10, 12, "actions.a[0].error_mappings[2] must be a string, not a list", "")
    ]


def test_missing_initial_state_and_transitions() -> None:
    assert sorted(messages("name: x\n")) == [
        (1, 1, "the document is missing the required key 'initial_state'", ""),
        (
            1,
            1,
            "the machine has neither `transitions` nor `states`",
            "add `transitions:` (a list of {from, to, event})",
        ),
    ]
