"""statemachine-engine's nested form (issue 13): the corpus's
``tools/test_face_processor.yaml`` is read with its evident meaning (docs/language.md,
Statecharts).

The form: ``states:`` as a mapping of name -> spec, ``type: composite`` with its own
``states:`` mapping and ``initial_state:`` (a compound state and its initial child), ``on:
{event: target}`` (transitions from that state) and a top-level ``final_states:``. It is the
same model as smc's own statechart syntax, checked here against the same chart written by
hand three ways; it draws and resolves into a dispatch table like any chart; and a mistake
in it gets a positioned diagnostic of the chart family (SMC070-075), while the xstate keys
smc spells differently stay SMC005.

(``tests/compiler/test_corpus.py`` holds what ``smc build`` says of the file.)
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from smc.compiler.charts import machine_chart
from smc.compiler.check import CheckResult, check_paths
from smc.compiler.diagrams import machine_diagrams
from smc.compiler.diagrams.chart import chart_picture
from smc.compiler.diagrams.model import machine_ids
from smc.compiler.model import Machine
from smc.compiler.statechart import build_table
from tests.support.cli import run_smc
from tests.support.corpus import require_corpus

FACE = Path("statemachine-engine") / "tools" / "test_face_processor.yaml"
#: The machine's name is its file's stem: the hand-written spellings take the same one so
#: that everything named after the machine (chart, diagrams) can be compared whole.
STEM = "test_face_processor"


def smc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_smc(*args, cwd=cwd)


def checked(path: Path) -> Machine:
    result = check_paths([str(path)])
    assert result.diagnostics == [], result.diagnostics
    (machine,) = result.machines
    return machine


def face() -> Machine:
    return checked(require_corpus() / FACE)


def written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"{STEM}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


Shape = tuple[
    tuple[tuple[str, str, str | None, tuple[str, ...], str | None, bool], ...],
    tuple[tuple[str, str | None, tuple[str, ...], bool], ...],
    str,
    tuple[str, ...],
    str | None,
]


def shape(machine: Machine) -> Shape:
    """What a machine means, without where it was written: its states (name, kind, parent,
    children, initial child, declared final) in document order, its transitions (source,
    event, targets, internal) in priority order, initial state, final states and title."""
    return (
        tuple(
            (s.name, s.kind, s.parent, s.children, s.initial, s.declared_final)
            for s in machine.states
        ),
        tuple(
            (t.source, t.event, t.targets or (t.target,), t.internal)
            for t in sorted(machine.transitions, key=lambda t: t.index)
        ),
        machine.initial_state,
        machine.final_states,
        machine.title,
    )


# ---- the corpus file, checked -----------------------------------------------------------


def test_smc_check_accepts_the_corpus_file() -> None:
    corpus = require_corpus()
    text = smc("check", str(FACE), cwd=corpus)
    assert text.returncode == 0, text.stderr
    listed = smc("check", "--format", "json", str(FACE), cwd=corpus)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []


def test_the_corpus_file_is_three_compound_phases_and_a_final_state() -> None:
    machine = face()
    assert machine.is_chart
    assert machine.initial_state == "INPAINTING_PHASE"
    assert machine.top_states == (
        "INPAINTING_PHASE",
        "POST_PROCESSING",
        "COMPLETION_PHASE",
        "FINISHED",
    )
    phases = {
        "INPAINTING_PHASE": "running_inpainting",
        "POST_PROCESSING": "resizing_images",
        "COMPLETION_PHASE": "finalizing",
    }
    for phase, child in phases.items():
        compound = machine.state(phase)
        assert (compound.kind, compound.children, compound.initial) == (
            "compound",
            (child,),
            child,
        )
        leaf = machine.state(child)
        assert (leaf.kind, leaf.parent) == ("atomic", phase)
    # `initial_state:` inside a composite is positioned where written (for SMC071).
    initial_pos = machine.state("POST_PROCESSING").initial_pos
    assert initial_pos is not None and (initial_pos.line, initial_pos.col) == (18, 20)
    assert [(t.source, t.event, t.targets, t.pos.line) for t in machine.transitions] == [
        ("running_inpainting", "inpainting_complete", ("POST_PROCESSING",), 14),
        ("resizing_images", "resize_complete", ("COMPLETION_PHASE",), 22),
        ("finalizing", "job_complete", ("FINISHED",), 30),
    ]
    finished = machine.state("FINISHED")
    # `on: {}`: no transitions; `final_states:` makes it final.
    assert (finished.kind, finished.declared_final, finished.parent) == ("final", True, None)
    assert machine.final_states == ("FINISHED",)


# ---- the same chart in smc's statechart syntax ------------------------------------------

#: The items form, transitions in `on:`.
ITEMS_WITH_ON = """\
name: face_processor
initial_state: INPAINTING_PHASE
states:
  - name: INPAINTING_PHASE
    initial: running_inpainting
    states:
      - name: running_inpainting
        on: {inpainting_complete: POST_PROCESSING}
  - name: POST_PROCESSING
    initial: resizing_images
    states:
      - name: resizing_images
        on: {resize_complete: COMPLETION_PHASE}
  - name: COMPLETION_PHASE
    initial: finalizing
    states:
      - name: finalizing
        on: {job_complete: FINISHED}
  - {name: FINISHED, final: true}
"""

#: Bare names, a `transitions:` list, and no `initial:` (the first child is the default).
ITEMS_WITH_TRANSITIONS = """\
name: face_processor
initial_state: INPAINTING_PHASE
states:
  - {name: INPAINTING_PHASE, states: [running_inpainting]}
  - {name: POST_PROCESSING, states: [resizing_images]}
  - {name: COMPLETION_PHASE, states: [finalizing]}
  - FINISHED
transitions:
  - {from: running_inpainting, to: POST_PROCESSING, event: inpainting_complete}
  - {from: resizing_images, to: COMPLETION_PHASE, event: resize_complete}
  - {from: finalizing, to: FINISHED, event: job_complete}
final_states: [FINISHED]
"""

#: The mapping form with smc's own keys (`initial:`, `final: true`, quoted "on").
MAPPING_SMC_KEYS = """\
name: face_processor
initial_state: INPAINTING_PHASE
states:
  INPAINTING_PHASE:
    initial: running_inpainting
    states:
      running_inpainting: {"on": {inpainting_complete: POST_PROCESSING}}
  POST_PROCESSING:
    initial: resizing_images
    states:
      resizing_images: {"on": {resize_complete: COMPLETION_PHASE}}
  COMPLETION_PHASE:
    initial: finalizing
    states:
      finalizing: {"on": {job_complete: FINISHED}}
  FINISHED: {final: true}
"""


@pytest.mark.parametrize(
    "text",
    [ITEMS_WITH_ON, ITEMS_WITH_TRANSITIONS, MAPPING_SMC_KEYS],
    ids=["items-with-on", "items-with-transitions", "mapping-with-smc-keys"],
)
def test_the_smc_syntax_of_the_same_chart_is_the_same_model(tmp_path: Path, text: str) -> None:
    nested, by_hand = face(), checked(written(tmp_path, text))
    assert shape(by_hand) == shape(nested)
    # and the same chart for the semantic core (kinds, parents, initials, transitions)
    assert machine_chart(by_hand) == machine_chart(nested)


# ---- drawn, and resolved into a dispatch table ------------------------------------------


def test_it_draws_as_the_smc_syntax_does(tmp_path: Path) -> None:
    nested, by_hand = face(), checked(written(tmp_path, ITEMS_WITH_ON))
    for detail in ("names", "full"):
        assert machine_diagrams(nested, detail=detail) == machine_diagrams(by_hand, detail=detail)
    ids = machine_ids(nested)
    picture = chart_picture(nested, ids, "names")
    node = dict(ids.states)
    drawn_in = {name: picture.nodes[node[name]].parent for name in node}
    assert drawn_in == {
        "INPAINTING_PHASE": None,
        "running_inpainting": node["INPAINTING_PHASE"],
        "POST_PROCESSING": None,
        "resizing_images": node["POST_PROCESSING"],
        "COMPLETION_PHASE": None,
        "finalizing": node["COMPLETION_PHASE"],
        "FINISHED": None,
    }
    assert picture.initials == {
        node["INPAINTING_PHASE"]: node["running_inpainting"],
        node["POST_PROCESSING"]: node["resizing_images"],
        node["COMPLETION_PHASE"]: node["finalizing"],
    }
    assert {(e.source, e.target, tuple(e.labels)) for e in picture.edges.values()} == {
        (node["running_inpainting"], node["POST_PROCESSING"], ("inpainting_complete",)),
        (node["resizing_images"], node["COMPLETION_PHASE"], ("resize_complete",)),
        (node["finalizing"], node["FINISHED"], ("job_complete",)),
    }
    assert picture.ends == [node["FINISHED"]]


def test_smc_diagram_writes_it(tmp_path: Path) -> None:
    drawn = smc("diagram", "-o", str(tmp_path), str(require_corpus() / FACE), cwd=tmp_path)
    assert drawn.returncode == 0, drawn.stderr
    expected = machine_diagrams(face(), detail="names")
    assert expected.keys() >= {f"{STEM}.mmd", f"{STEM}.dot"}
    for name, text in expected.items():
        assert (tmp_path / name).read_text(encoding="utf-8") == text, name


def test_the_dispatch_table_walks_the_phases_to_the_final_state() -> None:
    table = build_table(machine_chart(face()))
    walk = [table.configurations[table.initial]]
    situation = table.initial
    for event in ("inpainting_complete", "resize_complete", "job_complete"):
        # only the event of the phase's own child is accepted on the way
        assert set(table.dispatch[situation]) == {event}
        step = table.step(situation, event)
        assert step is not None
        situation = step[0]
        walk.append(table.configurations[situation])
    assert walk == [
        ("INPAINTING_PHASE", "running_inpainting"),
        ("POST_PROCESSING", "resizing_images"),
        ("COMPLETION_PHASE", "finalizing"),
        ("FINISHED",),
    ]
    assert table.final[situation]
    assert table.dispatch[situation] == {}
    assert table.size == 4


# ---- mistakes in the nested form --------------------------------------------------------

Found = set[tuple[int, int, str]]


def found(result: CheckResult) -> Found:
    return {(d.line, d.col, d.code) for d in result.diagnostics}


def check_text(tmp_path: Path, text: str) -> CheckResult:
    return check_paths([str(written(tmp_path, text))])


HEAD = "initial_state: A\nstates:\n"
#: A composite A whose child x leads to the final state B.
A_THEN_B = (
    "  A:\n    type: composite\n    initial_state: x\n    states:\n"
    "      x:\n        on:\n          go: B\n"
)
B_FINAL = "  B:\n    on: {}\nfinal_states: [B]\n"

MISTAKES: list[tuple[str, str, Found, str]] = [
    (
        "composite-without-states",
        HEAD + "  A:\n    type: composite\n    on:\n      go: B\n" + B_FINAL,
        {(3, 3, "SMC070")},
        "state 'A' is compound but has no child states",
    ),
    (
        "composite-with-empty-states",
        HEAD + "  A:\n    type: composite\n    states: {}\n    on:\n      go: B\n" + B_FINAL,
        {(3, 3, "SMC070")},
        "state 'A' is compound but has no child states",
    ),
    (
        # SMC070 alone: the `initial_state:` cannot name a child of a state that has none.
        "composite-without-states-but-an-initial-state",
        HEAD + "  A:\n    type: composite\n    initial_state: x\n    on:\n      go: B\n" + B_FINAL,
        {(3, 3, "SMC070")},
        "state 'A' is compound but has no child states",
    ),
    (
        "initial-state-naming-nothing",
        HEAD + A_THEN_B.replace("initial_state: x", "initial_state: xx") + B_FINAL,
        {(5, 20, "SMC071")},
        "initial state 'xx' of 'A' is not a state",
    ),
    (
        "initial-state-naming-a-state-outside",
        HEAD + A_THEN_B.replace("initial_state: x", "initial_state: B") + B_FINAL,
        {(5, 20, "SMC071")},
        "initial state 'B' of 'A' is not inside it",
    ),
    (
        "initial-state-on-a-plain-state",
        HEAD + "  A:\n    initial_state: B\n    on:\n      go: B\n" + B_FINAL,
        {(4, 20, "SMC071")},
        "state 'A' has an `initial` but no children to start in",
    ),
    (
        "a-composite-in-final-states",
        HEAD + A_THEN_B + "  B:\n    type: composite\n    states:\n      y: {}\n"
        "final_states: [y, B]\n",
        {(14, 19, "SMC070")},
        "state 'B' is declared final but has child states: it is compound",
    ),
    (
        "type-final-with-states",
        HEAD + A_THEN_B + "  B:\n    type: final\n    states:\n      y: {}\n",
        {(10, 3, "SMC070")},
        "state 'B' is declared final but has child states",
    ),
    (
        "a-parallel-with-one-region",
        HEAD + A_THEN_B + "  B:\n    type: parallel\n    states:\n"
        "      r:\n        states:\n          y: {}\n",
        {(10, 3, "SMC075")},
        "parallel state 'B' has one region",
    ),
    (
        "on-target-unknown",
        HEAD + A_THEN_B.replace("go: B", "go: BB") + B_FINAL,
        {(9, 15, "SMC010")},
        "'BB' is not a state",
    ),
    (
        "on-in-a-final-state",
        HEAD + A_THEN_B + "  B:\n    on:\n      again: A\nfinal_states: [B]\n",
        {(10, 3, "SMC015")},
        "state 'B' is declared final but has a transition on 'again'",
    ),
    (
        # The nested form nests mappings: a list of children there is a schema error.
        "nested-states-as-a-list",
        HEAD + "  A:\n    type: composite\n    states: [x]\n" + B_FINAL,
        {(5, 13, "SMC004")},
        "must be a mapping",
    ),
    (
        "a-child-named-twice",
        HEAD
        + A_THEN_B.replace("go: B", "go: C")
        + "  C:\n    type: composite\n    states:\n      x: {}\n"
        + "      z:\n        on:\n          done: B\n"
        + B_FINAL,
        {(13, 7, "SMC011")},
        "state 'x' is declared twice",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected", "says"),
    [case[1:] for case in MISTAKES],
    ids=[case[0] for case in MISTAKES],
)
def test_a_mistake_in_the_nested_form_is_reported_where_written(
    tmp_path: Path, text: str, expected: Found, says: str
) -> None:
    result = check_text(tmp_path, text)
    assert found(result) == expected
    assert any(says in d.message for d in result.diagnostics), result.diagnostics


#: The xstate keys smc spells differently stay refused inside the nested form, at the key.
@pytest.mark.parametrize("key", ["entry", "exit", "always", "after", "invoke"])
def test_xstate_keys_inside_the_nested_form_stay_smc005(tmp_path: Path, key: str) -> None:
    text = HEAD + A_THEN_B + f"        {key}: []\n" + B_FINAL
    result = check_text(tmp_path, text)
    assert found(result) == {(10, 9, "SMC005")}
    assert f"`{key}:` is xstate's spelling" in result.diagnostics[0].message


def test_a_final_compound_is_refused_in_smc_syntax_too(tmp_path: Path) -> None:
    text = (
        "initial_state: a\nstates:\n  - name: a\n    on: {go: b}\n"
        "  - name: b\n    final: true\n    states: [c]\n"
    )
    assert found(check_text(tmp_path, text)) == {(5, 5, "SMC070")}
