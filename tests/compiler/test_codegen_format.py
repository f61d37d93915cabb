"""Generated modules are exactly what black makes of them, whether or not black ran.

``smc build`` runs black only on a module with a line too long to keep (``codegen.
in_black_style``): the templates are in black's style and data literals are laid out the way
black lays them out. These tests hold that to account against the real black, in-process:
for the examples, the corpus, a benchmark-sized machine, and random machines with hostile,
long and wide (East Asian) names, action data and groups, the module smc writes equals
black's output of the rendered module, and black leaves it unchanged, at the default line
length (88) and at others a project may configure.
"""

from __future__ import annotations

import functools
import glob
import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from ruff.__main__ import find_ruff_bin

from smc.compiler import codegen, names
from smc.compiler.check import check_files, check_paths
from smc.compiler.model import Machine
from tests.support.corpus import CORPUS, PROJECT_ROOT, require_corpus
from tests.support.names import AWKWARD_NAMES

_counter = itertools.count()


#: Line lengths projects configure (88 is black's and ruff's default, 100 this project's).
WIDTHS = (88, 100, 120)


def assert_black_clean(machine: Machine, source_path: str, width: int = 88) -> bool:
    """The module equals black's output (at ``width``) and is a fixed point of black;
    returns whether the build would have skipped black for it."""
    rendered = codegen.render_machine(machine, source_path, width)
    written = codegen.finish_module(rendered, width)
    assert written == codegen.format_python(rendered, width)
    assert codegen.format_python(written, width) == written
    return codegen.in_black_style(rendered, width)


#: The ruff binary ``python -m ruff`` runs, called directly: the same formatter without a
#: Python start-up (~0.3 s) for each of the property test's examples.
RUFF = find_ruff_bin()


def ruff_format(text: str, width: int) -> str:
    result = subprocess.run(
        [RUFF, "format", "--isolated", f"--line-length={width}", "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def compiling_machines(files: list[str]) -> list[Machine]:
    result = check_files(files)
    machines = []
    for machine in result.machines:
        if any(d.is_error and d.path == machine.path for d in result.diagnostics):
            continue
        machines.append(machine)
    return machines


@pytest.mark.parametrize("width", WIDTHS)
def test_examples_and_corpus_are_written_without_running_black(width: int) -> None:
    """Every machine of examples/ and of the corpus that compiles is in black's style as
    rendered at each line length: black is not run for any of them, and would change
    nothing."""
    require_corpus()
    files = sorted(
        glob.glob(str(PROJECT_ROOT / "examples/**/*.yaml"), recursive=True)
        + glob.glob(str(CORPUS / "**/*.yaml"), recursive=True)
    )
    machines = compiling_machines(files)
    assert len(machines) >= 15
    for machine in machines:
        # as `smc build` names it: relative to the project root
        source = os.path.relpath(machine.path, PROJECT_ROOT)
        assert assert_black_clean(machine, source, width), source


def test_benchmark_machine_is_written_without_running_black(tmp_path: Path) -> None:

    sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
    try:
        from bench_build import machine_document
    finally:
        sys.path.pop(0)
    path = tmp_path / "machine.yaml"
    path.write_text(yaml.safe_dump(machine_document(7, 50), sort_keys=False))
    (machine,) = check_paths([str(path)]).machines
    assert assert_black_clean(machine, "machines/machine_007.yaml")


def long_names_machine(tmp_path: Path, state: str, event: str) -> Machine:
    document = {
        "name": "long",
        "initial_state": "idle",
        "states": ["idle", state],
        "events": ["go", event],
        "transitions": [
            {"from": "idle", "to": state, "event": "go"},
            {"from": state, "to": "idle", "event": event},
        ],
    }
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    (machine,) = check_paths([str(path)]).machines
    return machine


def test_long_enum_members_are_wrapped_as_black_wraps_them(tmp_path: Path) -> None:
    # `MEMBER = "value"` is too long for a line, the value alone is not: black puts it in
    # parentheses on a line of its own, and so do the templates
    state = "waiting_for_the_upstream_database_to_come_back_after_a_restart"
    machine = long_names_machine(tmp_path, state, "back")
    rendered = codegen.render_machine(machine, "long.yaml")
    assert f'        {state.upper()} = (\n            "{state}"\n        )\n' in rendered
    assert assert_black_clean(machine, "long.yaml")


def test_a_line_only_black_can_lay_out_sends_the_module_through_black(tmp_path: Path) -> None:
    # the per-event method's `raise IllegalTransition(MACHINE_NAME, source, Event.X)` does not
    # fit with this event: the templates do not split it, black does
    event = "the_upstream_database_came_back_after_a_restart_and_is_ready_again"
    machine = long_names_machine(tmp_path, "waiting", event)
    rendered = codegen.render_machine(machine, "long.yaml")
    assert not codegen.in_black_style(rendered)
    assert not assert_black_clean(machine, "long.yaml")
    written = codegen.finish_module(rendered)
    assert "raise IllegalTransition(\n" in written
    assert "raise IllegalTransition(\n" not in rendered


# ---- random machines ----------------------------------------------------------------------

#: Names long enough that a line holding one or two of them no longer fits, and names of
#: wide characters (two columns each for black).
LONG_OR_WIDE = st.from_regex(r"[a-z][a-z_]{30,95}", fullmatch=True) | st.text(
    alphabet="日本語状態待機処理完了", min_size=3, max_size=45
)

name_lists = st.lists(
    st.sampled_from(AWKWARD_NAMES)
    | st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
    | LONG_OR_WIDE,
    min_size=1,
    max_size=5,
    unique_by=(
        names.member,
        functools.partial(names.method, chart=False),
        functools.partial(names.method, chart=True),
    ),
)

plain_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\n\t\"'\\"),
    max_size=130,
)
data_values = st.recursive(
    st.none() | st.booleans() | st.integers() | plain_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(plain_text, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def machine_documents(draw: st.DrawFn) -> dict[str, Any]:
    states = draw(name_lists)
    events = draw(name_lists)
    assume("*" not in states)
    transitions = draw(
        st.lists(
            st.tuples(
                st.sampled_from([*states, "*"]), st.sampled_from(states), st.sampled_from(events)
            ),
            min_size=1,
            max_size=10,
            unique_by=lambda t: (t[0], t[2]),
        )
    )
    actions: dict[str, list[dict[str, Any]]] = {}
    for state in draw(st.lists(st.sampled_from(states), max_size=3, unique=True)):
        actions[state] = [
            {"type": "log", "message": draw(plain_text)},
            *(
                [{"type": "log", "message": "with params", "params": draw(data_values)}]
                if draw(st.booleans())
                else []
            ),
        ]
    event_entries: dict[str, Any] = {
        name: (
            {"context_map": draw(st.dictionaries(plain_text, plain_text, min_size=1, max_size=3))}
            if draw(st.booleans())
            else {}
        )
        for name in events
    }
    document: dict[str, Any] = {
        "name": draw(st.sampled_from(AWKWARD_NAMES) | LONG_OR_WIDE),
        "initial_state": draw(st.sampled_from(states)),
        "metadata": {"machine_name": draw(st.sampled_from(["m", "random_machine"]) | LONG_OR_WIDE)},
        "states": states,
        "events": event_entries,
        "transitions": [{"from": s, "to": t, "event": e} for s, t, e in transitions],
        "actions": actions,
    }
    if draw(st.booleans()):
        document["groups"] = {draw(plain_text.filter(str.strip)): states}
    return document


@pytest.mark.slow
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(document=machine_documents(), width=st.sampled_from((60, 79, *WIDTHS)))
def test_random_machines_are_written_as_black_would_write_them(
    tmp_path_factory: pytest.TempPathFactory, document: dict[str, Any], width: int
) -> None:
    directory = tmp_path_factory.mktemp("format", numbered=True)
    path = directory / f"machine_{next(_counter)}.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    result = check_paths([str(path)])
    assume(not result.errors)
    (machine,) = result.machines
    try:
        codegen.module_names(machine)
    except codegen.CodegenError:
        assume(False)
    skipped_black = assert_black_clean(machine, path.name, width)
    event("black skipped" if skipped_black else "black ran")
    if skipped_black:
        # users may format with ruff instead: its formatter leaves the module as it is too
        written = codegen.generate_machine(machine, path.name, width)
        assert ruff_format(written, width) == written
    package_init = codegen.generate_init([machine], path.name, width)
    assert codegen.format_python(package_init, width) == package_init


@pytest.mark.parametrize("count", [0, 1, 3, 40])
def test_package_init_is_written_as_black_would_write_it(tmp_path: Path, count: int) -> None:
    machines = []
    for index in range(count):
        path = tmp_path / f"machine_{index}.yaml"
        path.write_text(
            yaml.safe_dump(
                {
                    "name": f"machine number {index}",
                    "initial_state": "a",
                    "states": ["a", "b"],
                    "events": ["go"],
                    "transitions": [{"from": "a", "to": "b", "event": "go"}],
                }
            )
        )
        machines.extend(check_paths([str(path)]).machines)
    text = codegen.generate_init(machines, "machines")
    assert codegen.format_python(text) == text
    assert codegen.in_black_style(text)
    # 40 classes do not fit on one line: exploded one per line, as black does
    assert ("__all__ = [\n" in text) == (count == 40)
