"""``{a.b.c}`` interpolation over the machine context (values in ``bash`` commands:
test_bash_values.py)."""

from __future__ import annotations

from smc.runtime.context import interpolate, interpolate_string, lookup

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
