"""Placeholders checked against the schemas a machine declares (docs/language.md, "Placeholders:
what `{…}` can name"): a path the payload schemas, the job data schemas or the runtime's own
``current_job``/``event_data`` keys show can never exist is SMC085 at the segment that cannot
exist, with the closest field; an unknown top-level name close to a context field is a
warning (SMC086), since ``--initial-context`` may give any key. Open schemas and machines
without data are not reported.

Real files through ``smc check --format json`` in a subprocess; positions asserted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run_smc

HEAD = """\
initial_state: waiting
context:
  max_attempts: {type: integer, default: 3}
events:
  go:
    payload:
      type: object
      properties:
        file: {type: string}
        meta: {type: object, properties: {size: {type: integer}}, additionalProperties: false}
      additionalProperties: false
  new_job: {payload: {type: object, additionalProperties: false}}
  no_jobs: {payload: {type: object, additionalProperties: false}}
jobs:
  task: {data: {type: object, properties: {path: {type: string}}, additionalProperties: false}}
transitions:
  - {from: waiting, to: working, event: new_job}
  - {from: waiting, to: done, event: no_jobs}
  - {from: working, to: waiting, event: go}
actions:
  waiting:
    - {type: check_database_queue, job_type: task}
  working:
"""


def check(tmp_path: Path, text: str, name: str = "m.yaml") -> list[dict[str, Any]]:
    (tmp_path / name).write_text(text, encoding="utf-8")
    result = run_smc("check", "--format", "json", name, cwd=tmp_path)
    assert result.returncode in (0, 1), result.stderr
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return [d for d in found if d["code"] in ("SMC085", "SMC086")]


def at(text: str, needle: str) -> tuple[int, int]:
    """The 1-based line and column of ``needle``'s first character in ``text``."""
    index = text.index(needle)
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


def where(found: list[dict[str, Any]]) -> set[tuple[int, int, str]]:
    return {(d["line"], d["col"], d["code"]) for d in found}


def test_misspelt_payload_and_job_fields_are_errors_at_the_segment(tmp_path: Path) -> None:
    text = HEAD + (
        '    - {type: log, message: "file {payload.fiel} of {current_job.data.pth}"}\n'
        "    - type: log\n"
        "      message: >-\n"
        "        size {payload.meta.sise}\n"
        "        {event_data.payload.file.x} {event_data.typ} {current_job.dta}\n"
    )
    found = check(tmp_path, text)
    fiel, pth = at(text, "fiel}"), at(text, "pth}")
    sise, typ, dta = at(text, "sise}"), at(text, "typ}"), at(text, "dta}")
    x = at(text, "x} ")
    assert where(found) == {(*place, "SMC085") for place in (fiel, pth, sise, x, typ, dta)}
    hints = {(d["line"], d["col"]): d["hint"] for d in found}
    assert hints[fiel] == "did you mean 'file'?"
    assert hints[pth] == "did you mean 'path'?"
    assert hints[sise] == "did you mean 'size'?"
    assert hints[typ] == "did you mean 'type'?"
    assert hints[dta] == "did you mean 'data'?"
    assert "no fields" in hints[x]  # a string has none
    assert all(d["severity"] == "error" for d in found)
    result = run_smc("check", "m.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert f"m.yaml:{fiel[0]}:{fiel[1]}: error[SMC085]: placeholder {{payload.fiel}}" in (
        result.stderr
    )


def test_fields_the_schemas_list_resolve(tmp_path: Path) -> None:
    text = HEAD + (
        "    - type: log\n"
        "      message: '{payload.file} {payload.meta.size} {event_data.payload.meta}'\n"
        "    - type: log\n"
        "      message: '{current_job.data.path} {path} {current_job.id} {event_data.source}'\n"
        "    - {type: log, message: '{max_attempts} {machine_name} {payload} {job_id}'}\n"
    )
    assert check(tmp_path, text) == []


def test_a_misspelt_context_field_is_a_warning(tmp_path: Path) -> None:
    text = HEAD + "    - {type: log, message: 'tries {max_atempts} {unrelated_key}'}\n"
    found = check(tmp_path, text)
    assert where(found) == {(*at(text, "max_atempts"), "SMC086")}
    assert found[0]["hint"] == "did you mean the context field 'max_attempts'?"


@pytest.mark.parametrize(
    ("change", "old", "new"),
    [
        # an event without a payload schema has a payload of any shape
        ("open event", "  new_job: {payload: {type: object, additionalProperties: false}}", ""),
        # an object without `additionalProperties: false` may hold any field
        ("open object", "      additionalProperties: false\n", ""),
        # a schema the walk does not follow
        (
            "anyOf",
            "  new_job: {payload: {type: object, additionalProperties: false}}",
            "  new_job: {payload: {type: object, anyOf: [{required: [a]}]}}",
        ),
        # a claim that may take any job type
        ("any job type", ", job_type: task}", "}"),
        ("claim by id", "{type: check_database_queue, job_type: task}", "{type: claim_job}"),
        # a user action may claim jobs
        ("user action", "  working:\n", "  working:\n    - {type: mine}\n"),
    ],
)
def test_open_schemas_are_not_reported(tmp_path: Path, change: str, old: str, new: str) -> None:
    assert old in HEAD, change
    head = HEAD.replace(old, new, 1)
    text = head + "    - {type: log, message: '{payload.fiel} {current_job.data.pth}'}\n"
    found = check(tmp_path, text)
    codes = {d["message"].split()[1] for d in found}
    if change in ("any job type", "claim by id", "user action"):
        assert codes == {"{payload.fiel}"}  # the job's data is open, the payload is not
    else:
        assert codes == {"{current_job.data.pth}"}


def test_a_machine_without_data_is_not_checked(tmp_path: Path) -> None:
    text = (
        "initial_state: a\ntransitions:\n  - {from: a, to: b, event: go}\nactions:\n"
        "  a:\n    - {type: log, message: '{current_job.dta} {event_data.typ} {payload.x}'}\n"
    )
    assert check(tmp_path, text) == []


def test_nested_parameters_and_bash_commands_are_placed(tmp_path: Path) -> None:
    text = HEAD + (
        "    - type: send_event\n"
        "      target_machine: other\n"
        "      payload: {a: '{payload.file}', b: ['{payload.nope}']}\n"
        "    - {type: bash, command: \"echo '{current_job.data.pth}'\"}\n"
    )
    found = check(tmp_path, text)
    assert where(found) == {(*at(text, "nope}"), "SMC085"), (*at(text, "pth}"), "SMC085")}
