"""``{a.b.c}`` interpolation over the machine context, and shell quoting through a real
``/bin/sh`` with hostile values."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smc.runtime.context import interpolate, interpolate_string, lookup
from smc.runtime.shell import render_command

CONTEXT = {
    "id": "job-1",
    "count": 3,
    "flag": False,
    "nothing": None,
    "current_job": {"data": {"report": {"title": "T"}, "tags": ["a", "b"]}},
    "items": [{"name": "first"}, {"name": "second"}],
    "spawned": ["j1", "j2"],
}


def test_nested_keys_and_list_indices() -> None:
    assert interpolate_string("{current_job.data.report.title}", CONTEXT) == "T"
    assert interpolate_string("{items.1.name}", CONTEXT) == "second"
    assert interpolate_string("x-{current_job.data.tags.0}-y", CONTEXT) == "x-a-y"
    assert lookup(CONTEXT, "items.5.name") is lookup(CONTEXT, "missing")


def test_missing_keys_are_left_as_written() -> None:
    assert interpolate_string("{missing}", CONTEXT) == "{missing}"
    assert (
        interpolate_string("a {current_job.nope} b {id}", CONTEXT) == "a {current_job.nope} b job-1"
    )
    # filters and non-paths are not placeholders at all
    assert interpolate_string("{spawned|length}", CONTEXT) == "{spawned|length}"
    assert interpolate_string("{} { id }", CONTEXT) == "{} { id }"


def test_a_single_placeholder_keeps_the_type() -> None:
    assert interpolate_string("{count}", CONTEXT) == 3
    assert interpolate_string("{spawned}", CONTEXT) == ["j1", "j2"]
    assert interpolate_string("{flag}", CONTEXT) is False
    assert interpolate_string("{nothing}", CONTEXT) is None
    assert interpolate_string("n={count}", CONTEXT) == "n=3"
    assert interpolate_string("[{nothing}]", CONTEXT) == "[]"
    assert interpolate_string("{spawned} ", CONTEXT) == '["j1", "j2"] '


def test_interpolation_is_recursive_and_leaves_the_input_alone() -> None:
    params = {"payload": {"job": "{id}", "list": ["{count}", "x{id}"]}, "n": 5}
    assert interpolate(params, CONTEXT) == {
        "payload": {"job": "job-1", "list": [3, "xjob-1"]},
        "n": 5,
    }
    assert params["payload"] == {"job": "{id}", "list": ["{count}", "x{id}"]}


HOSTILE = [
    "x; touch pwned",
    "$(touch pwned)",
    "`touch pwned`",
    'it\'s "quoted"',
    "line one\nline two; touch pwned",
    "back\\slash \\$(touch pwned) \\",
    "' ; touch pwned ; '",
    '" ; touch pwned ; "',
    "${IFS}touch${IFS}pwned",
    "-n",
    "",
    "*",
]

TEMPLATES = [
    "printf '%s' {value}",
    "printf '%s' '{value}'",
    "printf '%s' \"{value}\"",
    "printf '%s' \"$(printf '%s' {value})\"",
    "printf '%s' \"`printf '%s' {value}`x\"",
    "printf '%s' pre-{value}-post",
]


def _run(command: str, cwd: Path) -> str:
    result = subprocess.run(
        ["/bin/sh", "-c", command], cwd=cwd, capture_output=True, timeout=10, check=False
    )
    assert result.returncode == 0, (command, result.stderr)
    return result.stdout.decode()


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_arrive_intact_and_run_nothing(
    template: str, value: str, tmp_path: Path
) -> None:
    command = render_command(template, {"value": value})
    assert _run(command, tmp_path) == _expected(template, value)
    assert list(tmp_path.iterdir()) == [], f"{command!r} created files"


def _expected(template: str, value: str) -> str:
    if "`" in template:
        return value.rstrip("\n") + "x"  # command substitution drops trailing newlines
    if "$(" in template:
        return value.rstrip("\n")
    if "pre-" in template:
        return f"pre-{value}-post"
    return value


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")))
def test_any_text_survives_every_quoting_context(value: str, tmp_path: Path) -> None:
    for template in TEMPLATES:
        command = render_command(template, {"value": value})
        assert _run(command, tmp_path) == _expected(template, value), command
    assert list(tmp_path.iterdir()) == []


def test_the_command_itself_keeps_its_shell_syntax() -> None:
    command = render_command("mkdir -p data && echo {a} > data/{b}.txt", {"a": "x y", "b": "id1"})
    assert command == "mkdir -p data && echo 'x y' > data/id1.txt"
    assert render_command("echo {missing}", {}) == "echo {missing}"
