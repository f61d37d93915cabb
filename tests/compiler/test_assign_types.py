"""An ``assign`` fits its context field as the generated class is typed (docs/language.md,
"Guards and assignments"): the field's kind, a list's item type, and the values of an
``enum``/``const`` (typed ``Literal[...]``). A value the checker let through once made a
module that ``mypy --strict`` refused (``'medium'`` into ``enum: [fast, slow]``, ``['x']``
into a list of integers) and a tuple literal was written as a tuple, which never equals the
list the same data decodes to.

Accepted machines are built and checked by the real mypy (and pyright strict, where it is
installed); the tuple is run. A field tested against None is narrowed after the test, as
both narrow it, and a list display on the left of `+` is written joined with the right.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from smc.compiler.check import check_texts
from smc.compiler.codegen import generate_machine
from tests.compiler.test_literal_types import build_and_type_check, load
from tests.support.cli import run_smc

HEAD = """\
initial_state: a
metadata: {machine_name: typed_assign}
context:
  mode: {enum: [fast, slow, -1], default: fast}
  level: {const: 3, default: 3}
  nums: {type: array, items: {type: integer}, default: []}
  picks: {type: array, items: {enum: [x, y]}, default: []}
  pair: {type: array, default: []}
  flag: {type: boolean, default: false}
  label: {type: string, default: ""}
  count: {type: integer, default: 0}
  maybe: {type: [integer, "null"], default: null}
  ints: {type: array, items: {type: [integer, "null"]}, default: [null]}
  names: {type: array, items: {enum: [go, back]}, default: []}
events:
  go:
    payload:
      type: object
      properties: {speed: {enum: [fast, slow]}, word: {type: string}, code: {type: integer}}
      required: [speed, word]
  back: null
transitions:
  - from: a
    to: b
    event: go
    actions:
"""

TAIL = """\
  - {from: b, to: a, event: back, when: "pair == (1, 2)"}
"""


def machine(*assignments: tuple[str, str]) -> str:
    lines = "".join(
        f'      - {{type: assign, location: {location}, expr: "{expr}"}}\n'
        for location, expr in assignments
    )
    return HEAD + lines + TAIL


@pytest.mark.parametrize(
    ("location", "expr", "message"),
    [
        (
            "mode",
            "'medium'",
            "the value is 'medium', and its location takes one of 'fast', 'slow', -1",
        ),
        (
            "mode",
            "label",
            "the value is a string, and its location takes one of 'fast', 'slow', -1",
        ),
        ("mode", "payload.word", "the value is a string, and its location takes one of"),
        ("mode", "1", "the value is 1, and its location takes one of 'fast', 'slow', -1"),
        ("level", "4", "the value is 4, and its location takes 3"),
        (
            "nums",
            "['x', 'y']",
            "the value is a list of 'x', 'y', and its location takes a list of integers",
        ),
        ("nums", "[1, 'x']", "its location takes a list of integers"),
        (
            "picks",
            "['x', 'z']",
            "the value is a list of 'x', 'z', and its location takes a list of 'x', 'y'",
        ),
        ("picks", "[label]", "the value is a list of strings"),
        ("nums", "[None]", "the value is a list of None, and its location takes a list of"),
        # a None test narrows only where mypy does: after it, a field read is not null
        # (`maybe is None`: null), an optional payload field is read by `.get()` again
        ("count", "maybe if maybe is None else 0", "the value is an integer or null, and"),
        ("flag", "maybe is not None or maybe > 3", "`maybe` (null) and `3` (an integer)"),
        ("count", "maybe if not maybe else 0", "the value is one of 0, None, and"),
        ("count", "payload.code if payload.code is not None else 0", "an integer or null"),
        # `event.name` here is 'go': not one of `picks`'s
        ("picks", "picks + [event.name]", "the value is a list of 'go', 'x', 'y', and"),
        # a list inside a conditional on the left of `+` mypy types as a `list[str]`
        ("picks", "(['x'] if flag else picks) + picks", "the value is a list of strings"),
    ],
)
def test_a_value_that_does_not_fit_is_smc092(location: str, expr: str, message: str) -> None:
    result = check_texts([("m.yaml", machine((location, expr)))])
    (error,) = result.errors
    assert error.code == "SMC092" and error.line == 27
    assert message in error.message, error.message
    if location in ("mode", "level", "picks"):  # the hint says what an enum field takes
        assert "Literal" in error.hint and "enum" in error.hint, error.hint


@pytest.mark.parametrize(
    ("location", "expr"),
    [
        ("mode", "'slow'"),
        ("mode", "-1"),
        ("mode", "'slow' if flag else 'fast'"),
        ("mode", "payload.speed"),
        ("level", "3"),
        ("nums", "[]"),
        ("nums", "[1, 2] + nums"),
        ("nums", "(1, 2)"),
        ("picks", "[]"),
        ("picks", "['x', 'y']"),
        ("picks", "['x'] if flag else picks"),
        ("pair", "(1, 2)"),
        ("pair", "['a', 1]"),
    ],
)
def test_a_value_that_fits_is_accepted(location: str, expr: str) -> None:
    result = check_texts([("m.yaml", machine((location, expr)))])
    assert not result.errors, [str(d) for d in result.errors]


def test_the_accepted_assignments_build_a_module_mypy_strict_takes(tmp_path: Path) -> None:
    """Every accepted assignment above in one machine, built and checked by mypy --strict;
    and the tuple literal stored and compared is the list the data holds."""
    source = tmp_path / "typed_assign.yaml"
    source.write_text(
        machine(
            ("mode", "'slow'"),
            ("mode", "-1"),
            ("mode", "'slow' if flag else 'fast'"),
            ("mode", "payload.speed"),
            ("level", "3"),
            ("nums", "[]"),
            ("nums", "[1, 2] + nums"),
            ("nums", "(1, 2)"),
            ("picks", "['x', 'y']"),
            ("pair", "(1, 2)"),
        )
    )
    out = tmp_path / "out"
    built = run_smc("build", str(source), "-o", str(out), "--no-diagrams", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    typed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            str(out / "typed_assign.py"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert typed.returncode == 0, typed.stdout

    spec = importlib.util.spec_from_file_location("typed_assign", out / "typed_assign.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["typed_assign"] = module
    try:
        spec.loader.exec_module(module)
        m = module.TypedAssign()
        m.go(speed="fast", word="w")
        assert m.context.pair == [1, 2] and m.context.nums == [1, 2]
        assert m.context.mode == "fast" and m.context.picks == ["x", "y"]
        m.back()  # `pair == (1, 2)`: true of the list
        assert m.state.value == "a"
    finally:
        del sys.modules["typed_assign"]


#: Assignments mypy --strict and pyright strict take once the class is built, in the order
#: they run: a field tested against None is narrowed after the test (as both narrow it),
#: `event.name` on a transition is its event's name (a literal, so it fits a list of `enum`
#: values), and a list display on the left of `+` is joined with the right into one display
#: (`["x", *ctx.picks]`: `["x"] + ctx.picks` is a `list[str]` to mypy).
NARROWED_AND_JOINED = [
    ("maybe", "3 if maybe is None else maybe + 1"),
    ("count", "maybe if maybe is not None else 0"),
    ("flag", "maybe is None or maybe > 5"),
    ("flag", "not (maybe is None or maybe < 0) and maybe > 2"),
    ("count", "count + (ints[0] if ints[0] is not None else 10)"),
    # tested by its truth: true, not null
    ("count", "maybe + count if maybe else 0"),
    ("names", "names + [event.name]"),
    ("names", "[event.name] + names + ['back']"),
    ("picks", "['x'] + picks"),
    ("picks", "['y'] + picks + ['x'] + picks"),
    ("nums", "[1] + nums + [2]"),
]


@pytest.mark.parametrize(("location", "expr"), NARROWED_AND_JOINED)
def test_a_narrowed_or_joined_value_that_fits_is_accepted(location: str, expr: str) -> None:
    result = check_texts([("m.yaml", machine((location, expr)))])
    assert not result.errors, [str(d) for d in result.errors]


def test_narrowed_and_joined_values_build_a_module_mypy_and_pyright_take(tmp_path: Path) -> None:
    """The assignments above in one machine: built, type-checked by mypy --strict and
    pyright strict, and run (a joined display keeps the order `+` gives)."""
    text = machine(*NARROWED_AND_JOINED).replace("typed_assign", "narrowed_assign")
    text = text.replace('"pair == (1, 2)"', '"maybe is not None and maybe > 2"')
    out = build_and_type_check(tmp_path, "narrowed_assign", text)
    code = (out / "narrowed_assign.py").read_text()
    assert 'ctx.picks = ["x", *ctx.picks]' in code
    assert 'ctx.names = ctx.names + ["go"]' in code
    try:
        m = load(out, "narrowed_assign").NarrowedAssign()
        m.go(speed="fast", word="w")
        assert (m.context.maybe, m.context.count, m.context.flag) == (3, 16, True)
        assert m.context.names == ["go", "go", "back"]
        assert m.context.picks == ["y", "x", "x", "x"]
        assert m.context.nums == [1, 2]
        m.back()  # `maybe is not None and maybe > 2`: a guard narrows too
        assert m.state.value == "a"
    finally:
        del sys.modules["narrowed_assign"]


#: A list of strings, added to in a state the machine starts in (`a`) and in one it does not
#: (`b`). The class writes the actions of a state once for each event that enters it, with
#: `event.name` and `event.type` constants, and once more for the start, where both are None.
START = """\
initial_state: a
metadata: {machine_name: started_in}
context:
  seen: {type: array, items: {type: string}, default: []}
  last: {type: [string, "null"], default: null}
states:
  - name: a
    on_entry:
      - {type: assign, location: seen, expr: "%(a)s"}
  - name: b
    on_entry:
      - {type: assign, location: seen, expr: "seen + [event.type] + [event.name]"}
      - {type: assign, location: last, expr: "event.name"}
transitions:
  - {from: a, to: b, event: go}
  - {from: b, to: a, event: back}
"""


@pytest.mark.parametrize("item", ["event.type", "event.name"])
def test_the_event_in_a_list_where_the_machine_starts_is_smc092_with_a_hint(item: str) -> None:
    """In `a`, where the machine starts, the class writes `ctx.seen + [None]` for the start,
    which mypy refuses (smc check took it: an item that only may be null was taken for its
    other kinds everywhere); in `b` it is a string in every variant, and taken."""
    result = check_texts([("m.yaml", START % {"a": f"seen + [{item}]"})])
    (error,) = result.errors
    assert (error.code, error.line) == ("SMC092", 9), str(error)
    assert "list of strings or nulls" in error.message
    assert "starts in this state" in error.hint and "is not None" in error.hint


@pytest.mark.parametrize(
    ("location", "expr"),
    [
        ("nums", "nums + [maybe]"),  # a field that may be null
        ("nums", "nums + [payload.code]"),  # a payload field that is not required
        ("nums", "[maybe] + nums"),
        ("nums", "nums + [maybe and 1]"),  # `and` gives `maybe` where it is null
    ],
)
def test_an_item_that_may_be_null_does_not_fit_a_list_of_another_kind(
    location: str, expr: str
) -> None:
    """mypy refuses `ctx.nums + [ctx.maybe]` (`int | None` is no `int`), and the list would
    hold a null its schema refuses: smc check took every item that only may be null."""
    result = check_texts([("m.yaml", machine((location, expr)))])
    (error,) = result.errors
    assert (error.code, error.line) == ("SMC092", 27), str(error)
    assert "a list of integers or nulls" in error.message, error.message


def test_a_chart_starts_in_its_initial_states_their_ancestors_and_default_regions() -> None:
    """`[event.type]` in the on-entry actions of every state entered at the start (the
    initial state, its regions, a compound region's initial child) is SMC092; in a state
    entered only by an event it is taken."""
    entry = '[{type: assign, location: seen, expr: "seen + [event.type]"}]'
    chart = f"""\
initial_state: p
metadata: {{machine_name: chart_start}}
context:
  seen: {{type: array, items: {{type: string}}, default: []}}
states:
  - name: p
    parallel: true
    on_entry: {entry}  # start
    states:
      - name: left
        initial: l1
        states:
          - name: l1
            on_entry: {entry}  # start
          - name: l2
            on_entry: {entry}
      - name: right
        on_entry: {entry}  # start
  - name: q
    on_entry: {entry}
transitions:
  - {{from: l1, to: l2, event: next}}
  - {{from: p, to: q, event: leave}}
"""
    result = check_texts([("chart.yaml", chart)])
    assert {e.code for e in result.errors} == {"SMC092"}, [str(e) for e in result.errors]
    starts = {n for n, line in enumerate(chart.splitlines(), 1) if line.endswith("# start")}
    assert sorted(e.line for e in result.errors) == sorted(starts)


def test_the_start_tested_first_builds_a_module_mypy_and_pyright_take(tmp_path: Path) -> None:
    """The hint's way in `a` (tested against None first), a nullable field made a string by
    `or`, and the event in `b`: built, type-checked by mypy --strict and pyright strict, and
    run: the start adds nothing, each entry of `a` by `back` adds its type."""
    expr = "seen + [event.type, last or 'none'] if event.type is not None else seen"
    out = build_and_type_check(tmp_path, "started_in", START % {"a": expr})
    code = (out / "started_in.py").read_text()
    assert "[None]" not in code
    try:
        m = load(out, "started_in").StartedIn()
        assert m.context.seen == []
        m.go()
        assert m.context.seen == ["external", "go"] and m.context.last == "go"
        m.back()
        assert m.context.seen == ["external", "go", "external", "go"]
    finally:
        del sys.modules["started_in"]


def test_an_eventless_transition_taken_at_the_start_is_checked_as_the_start() -> None:
    """`a` starts the machine and leaves at once for `b` by an eventless transition: its
    actions and `b`'s on-entry actions run with no event (the class wrote `[None]` for both,
    and smc check took them). So may the one to `d`, guarded on `event`: its condition is
    false at the start, but the class compiles it there as a constant, with the entry of `d`
    as it runs then (smc check took it). `c`, entered only by an event, is as any state."""
    entry = '[{type: assign, location: seen, expr: "seen + [event.%s]"}]'
    chart = f"""\
initial_state: a
metadata: {{machine_name: eventless_start}}
context:
  seen: {{type: array, items: {{type: string}}, default: []}}
states:
  - name: a
  - name: b
    on_entry: {entry % "name"}  # start
  - name: c
    on_entry: {entry % "type"}
  - name: d
    on_entry: {entry % "type"}  # start
transitions:
  - {{from: a, to: b, actions: {entry % "type"}}}  # start
  - {{from: b, to: d, when: "event.name == 'go'"}}
  - {{from: b, to: c, event: go}}
  - {{from: c, to: a, event: back}}
"""
    result = check_texts([("chart.yaml", chart)])
    assert {e.code for e in result.errors} == {"SMC092"}, [str(e) for e in result.errors]
    starts = {n for n, line in enumerate(chart.splitlines(), 1) if line.endswith("# start")}
    assert sorted(e.line for e in result.errors) == sorted(starts)
    (on_transition,) = [e for e in result.errors if e.line == max(starts)]
    assert "may take this transition as it starts" in on_transition.hint


#: What else the machine runs as it starts, where smc check took `[event.type]` and the class
#: wrote `ctx.seen + [None]` for the start, which mypy --strict refuses. `%(start)s` is
#: written where the machine runs it as it starts (each such line is marked `# start`),
#: `%(any)s` where it runs only for an event.
STARTS_TOO = {
    # an eventless transition whose `when:` reads the event: false at the start, but the
    # class compiles it there as a constant and keeps the transition's actions and entries
    "eventless_when": """\
initial_state: a
metadata: {machine_name: eventless_when}
context:
  seen: {type: array, items: {type: string}, default: []}
states:
  - name: a
  - name: b
    on_entry: [{type: assign, location: seen, expr: "%(start)s"}]  # start
  - name: c
transitions:
  - from: a
    to: b
    when: "event.name == 'back'"
    actions: [{type: assign, location: seen, expr: "%(start)s"}]  # start
  - {from: a, to: c, event: go}
  - {from: c, to: a, event: back}
  - {from: b, to: c, event: go}
""",
    # the initial state `l1` is written below the parallel `p`: `p`'s other region `right`
    # is entered too, with its initial child `r1`; `r2` only by an event
    "other_region": """\
initial_state: l1
metadata: {machine_name: other_region}
context:
  seen: {type: array, items: {type: string}, default: []}
states:
  - name: p
    parallel: true
    states:
      - name: left
        initial: l1
        states:
          - name: l1
          - name: l2
      - name: right
        initial: r1
        on_entry: [{type: assign, location: seen, expr: "%(start)s"}]  # start
        states:
          - name: r1
            on_entry: [{type: assign, location: seen, expr: "%(start)s"}]  # start
          - name: r2
            on_entry: [{type: assign, location: seen, expr: "%(any)s"}]
  - name: q
transitions:
  - {from: l1, to: l2, event: go}
  - {from: r1, to: r2, event: go}
  - {from: p, to: q, event: back}
  - {from: q, to: p, event: back}
""",
    # a branch whose condition reads the event: false at the start, compiled there all the
    # same (its condition as a constant)
    "event_branch": """\
initial_state: a
metadata: {machine_name: event_branch}
context:
  seen: {type: array, items: {type: string}, default: []}
states:
  - name: a
    on_entry:
      - type: if
        when: "event.name == 'back'"
        then: [{type: assign, location: seen, expr: "%(start)s"}]  # start
        elif:
          - when: "event.type is not None"
            then: [{type: assign, location: seen, expr: "%(start)s"}]  # start
        else: [{type: assign, location: seen, expr: "seen + ['start']"}]
  - name: b
transitions:
  - {from: a, to: b, event: go}
  - {from: b, to: a, event: back}
""",
    # `initial_actions` run where a compound state is entered by default: `r`'s at the
    # start, by the eventless transition (smc check did not follow that one), not `p`'s,
    # whose child `y` is written as the initial state (smc check refused that one)
    "initial_content": """\
initial_state: y
metadata: {machine_name: initial_content}
context:
  seen: {type: array, items: {type: string}, default: []}
states:
  - name: p
    initial: x
    initial_actions: [{type: assign, location: seen, expr: "%(any)s"}]
    states:
      - name: x
      - name: y
  - name: r
    initial: s
    initial_actions: [{type: assign, location: seen, expr: "%(start)s"}]  # start
    states:
      - name: s
transitions:
  - {from: y, to: r}
  - {from: r, to: p, event: go}
  - {from: p, to: r, event: back}
""",
}

#: The hint's way: tested against None first, as the class writes it for the start.
TESTED = "seen + [event.type] if event.type is not None else seen"


def _marked(text: str) -> list[int]:
    return [n for n, line in enumerate(text.splitlines(), 1) if line.endswith("# start")]


@pytest.mark.parametrize("name", sorted(STARTS_TOO))
def test_what_else_runs_at_the_start_is_smc092_as_mypy_refuses_its_module(
    tmp_path: Path, name: str
) -> None:
    """smc check took each `[event.type]` marked `# start` (it did not follow an eventless
    transition whose `when:` reads `event`, the other regions of a parallel parent of an
    initial state written below it, a branch whose condition reads `event`, nor the
    `initial_actions` of a state entered by an eventless transition), and the
    module, generated all the same, is refused by mypy --strict at the `[None]` the class
    writes for the start: SMC092 there, with the start rule's hint."""
    text = STARTS_TOO[name] % {"start": "seen + [event.type]", "any": "seen + [event.type]"}
    result = check_texts([("m.yaml", text)])
    assert {e.code for e in result.errors} == {"SMC092"}, [str(e) for e in result.errors]
    assert sorted(e.line for e in result.errors) == _marked(text)
    for error in result.errors:
        assert "as it starts" in error.hint or "starts in this state" in error.hint
        assert "if event.type is not None else seen" in error.hint, error.hint
    (machine,) = result.machines
    (tmp_path / f"{name}.py").write_text(generate_machine(machine, "m.yaml"))
    typed = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", f"{name}.py"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert typed.returncode == 1, typed.stdout
    assert 'List item 0 has incompatible type "None"' in typed.stdout, typed.stdout


@pytest.mark.parametrize("name", sorted(STARTS_TOO))
def test_what_else_runs_at_the_start_tested_first_builds_a_module_both_take(
    tmp_path: Path, name: str
) -> None:
    """The same machines with the hint's way where they start (and `[event.type]` where the
    machine runs it only for an event) are taken, and built into a module mypy --strict and
    pyright strict take; run, the start adds no event (`event_branch`'s `else` runs)."""
    text = STARTS_TOO[name] % {"start": TESTED, "any": "seen + [event.type]"}
    assert not check_texts([("m.yaml", text)]).errors
    out = build_and_type_check(tmp_path, name, text)
    assert "[None]" not in (out / f"{name}.py").read_text()
    try:
        m = getattr(load(out, name), name.title().replace("_", ""))()
        assert m.context.seen == (["start"] if name == "event_branch" else [])
        m.go()
        m.back()
        assert m.context.seen == RAN[name]
    finally:
        del sys.modules[name]


#: What `seen` holds after `go` and `back`: `b` entered by `back` through the eventless
#: transition, `r2` entered by `go` (`back` then leaves `p`), `a` entered by `back`, `p`
#: and `r` entered by default by `go` and `back`.
RAN = {
    "eventless_when": ["external", "external"],
    "other_region": ["external"],
    "event_branch": ["start", "external"],
    "initial_content": ["external", "external"],
}


def test_a_region_whose_initial_state_is_written_is_not_entered_by_default(
    tmp_path: Path,
) -> None:
    """`initial_state: [l1, r2]` enters `right` at `r2`, not at its initial `r1`: `r1`'s
    `[event.type]` runs only for an event, and is taken (mypy --strict and pyright strict
    take the module); `right` and `r2` are entered at the start."""
    text = STARTS_TOO["other_region"] % {"start": TESTED, "any": TESTED}
    text = text.replace("initial_state: l1", "initial_state: [l1, r2]")
    lines = text.splitlines(keepends=True)
    (r1,) = [n for n, line in enumerate(lines) if "name: r1" in line]
    lines[r1 + 1] = lines[r1 + 1].replace(TESTED, "seen + [event.type]")
    assert not check_texts([("m.yaml", "".join(lines))]).errors
    build_and_type_check(tmp_path, "other_region", "".join(lines))
    starts = "".join(lines).replace(TESTED, "seen + [event.type]")
    result = check_texts([("m.yaml", starts)])
    # `right` (line 16) and `r2` (21) are entered at the start, not `r1` (19)
    assert sorted(e.line for e in result.errors) == [16, 21], [str(e) for e in result.errors]
