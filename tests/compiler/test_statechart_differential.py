"""Issue 13's differential test, end to end: the class ``smc build`` generates from a machine
file against python-statemachine 3.2 running the SCXML that ``smc export`` writes for the same
file. Random charts (``tests.support.statecharts``: depth up to 4, parallel regions, shallow
and deep history, eventless and internal transitions, raised events, finals) and event
sequences; after the start and after every event both must show the same configuration and
the same finality, and the on-entry/on-exit actions of the step (the generated ``STEPS`` moves
against the ``<log>`` labels python-statemachine prints) in the same order, or as the same
multiset where python-statemachine orders parallel regions its own way.

Where python-statemachine departs from the W3C algorithm (the differences listed in
docs/language.md, Statecharts), the charts leave the construct out (``shared_constructs``)
and the comparison stops before the first step it would run differently (smc's interpreter
watching the same chart: ``WatchingInterpreter``); both in tests/support/python_statemachine.py.

The random test exports in process through ``smc.cli.main`` (the code ``smc export`` runs: a
process per chart would take most of the time); ``test_fixed_charts_through_real_processes``
runs the real ``smc export`` and ``smc build`` processes on two fixed charts.

The other differential tests: the interpreter against python-statemachine
(test_statechart_scxml.py), the generated class against the interpreter
(test_codegen_chart.py).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import itertools
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, note, reject, settings
from hypothesis import strategies as st

from smc import IllegalTransition
from smc.cli import main as smc_main
from smc.compiler.charts import machine_chart
from smc.compiler.check import check_paths
from smc.compiler.codegen import module_names
from smc.compiler.model import Machine
from smc.compiler.statechart import Chart, raised_event
from tests.support import PROJECT_ROOT
from tests.support.examples import imported_build
from tests.support.machines import PLAYER
from tests.support.python_statemachine import (
    Step,
    WatchingInterpreter,
    psm_orders_like_the_document,
    psm_steps,
    shared_constructs,
)
from tests.support.statecharts import (
    EVENTS,
    chart_documents,
    compiled,
    machine_class,
    smc_document,
)

#: Random charts per run, and the least number of steps they must compare between them (a
#: run compares about 4,500: a run far below means the charts or the cuts went wrong).
EXAMPLES = 400
LEAST_STEPS = 2000
#: Longer than ``event_sequences``: a chart costs far more to build than an event to send.
LONG_SEQUENCES = st.lists(st.sampled_from(EVENTS), min_size=8, max_size=24)


def generated_steps(
    cls: Any, chart: Chart, events: list[str], in_order: bool
) -> tuple[list[Step], list[frozenset[str]]]:
    """The generated class ``cls`` started and sent ``events``: configuration, the labels of
    the actions its ``STEPS`` move through, and finality, after the start and each event, up
    to the first step python-statemachine may run differently (excluded); and beside them the
    configurations of smc's interpreter, which decides where to stop (for failure messages)."""
    watcher = WatchingInterpreter(chart)
    machine: Any = None
    ours: list[Step] = []
    reference: list[frozenset[str]] = []
    for sent in [None, *events]:
        if sent is None:
            step = watcher.start()
            machine = cls()
            moves = cls.STEPS[cls.INITIAL_STEP]
        else:
            step = watcher.send(sent)
            moves = machine.step_of(sent)
            if moves is None:
                with pytest.raises(IllegalTransition):
                    machine.fire(sent)
                moves = ()
            else:
                machine.fire(sent)
        if watcher.psm_departs(in_order):
            break
        configuration = frozenset(str(state) for state in machine.configuration)
        ours.append((configuration, action_labels(chart, moves), machine.is_final))
        reference.append(step.configuration)
    return ours, reference


def action_labels(chart: Chart, moves: tuple[tuple[str, str], ...]) -> list[str]:
    """The ``<log>`` labels the export writes for the actions of these ``STEPS`` moves (raise
    actions are resolved into the dispatch table and logged by neither side)."""
    labels = []
    for kind, name in moves:
        if kind == "on":
            continue  # a transition's move: machine files have no transition actions
        state = chart.state(str(name))
        actions = state.on_entry if kind == "entry" else state.on_exit
        labels += [f"{kind}|{name}|{i}" for i, a in enumerate(actions) if raised_event(a) is None]
    return labels


def compare(
    ours: list[Step], theirs: list[Step], reference: list[frozenset[str]], in_order: bool
) -> None:
    for number, (mine, their) in enumerate(zip(ours, theirs, strict=True)):
        where = f"step {number} (smc's interpreter: {sorted(reference[number])})"
        assert mine[0] == their[0], f"configuration after {where}"
        assert mine[2] == their[2], f"termination after {where}"
        if in_order:
            assert mine[1] == their[1], f"actions of {where}"
        else:
            assert Counter(mine[1]) == Counter(their[1]), f"actions of {where}"


def checked_file(path: Path) -> Machine | None:
    result = check_paths([str(path)])
    return None if result.errors else result.machines[0]


def without_final_exits(document: dict[str, Any], machine: Machine) -> bool:
    """Drop the on_exit of the machine's top-level final states from ``document`` (whether
    there were any): python-statemachine does not run them when it stops (difference 1).
    ``shared_constructs`` drops those of states written final; a top-level state with no way
    out is final too, which only the checked machine knows."""
    finals = set(machine.final_states)
    dropped = False
    for item in document["states"]:
        if item["name"] in finals and "on_exit" in item:
            del item["on_exit"]
            dropped = True
    return dropped


@pytest.mark.slow  # about 20 s: 400 charts checked, exported, compiled and run twice
def test_generated_class_agrees_with_python_statemachine_on_random_charts(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    tally: Counter[str] = Counter()
    files = itertools.count()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(chart_documents().map(shared_constructs), LONG_SEQUENCES)
    def agree(document: dict[str, Any], events: list[str]) -> None:
        text_document = smc_document(document)
        if text_document is None:
            tally["rejected: no transition"] += 1
            reject()
        source = tmp_path / f"chart_{next(files)}.yaml"
        source.write_text(yaml.safe_dump(text_document, sort_keys=False), encoding="utf-8")
        machine = checked_file(source)
        if machine is not None and without_final_exits(text_document, machine):
            source.write_text(yaml.safe_dump(text_document, sort_keys=False), encoding="utf-8")
            machine = checked_file(source)
        if machine is None or not machine.is_chart:
            # refused (a macrostep that never settles, SMC074) or a flat machine
            tally["rejected: " + ("refused" if machine is None else "flat")] += 1
            reject()
        note(source.read_text(encoding="utf-8"))
        exported = source.with_suffix(".scxml")
        errors = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(errors):
            code = smc_main(["export", "--format", "scxml", str(source), "-o", str(exported)])
        assert code == 0, errors.getvalue()
        scxml = exported.read_text(encoding="utf-8")
        chart = machine_chart(machine)
        in_order = psm_orders_like_the_document(chart)
        cls = machine_class(compiled(machine, tmp_path))
        ours, reference = generated_steps(cls, chart, events, in_order)
        if not ours:
            tally["rejected: start departs"] += 1
            reject()  # the start itself depends on the order of the regions
        theirs = psm_steps(scxml, events[: len(ours) - 1])
        compare(ours, theirs, reference, in_order)
        tally["charts"] += 1
        tally["steps"] += len(ours)
        tally["cut early"] += len(ours) < len(events) + 1
        tally["steps with actions in order"] += len(ours) if in_order else 0
        tally["actions run"] += sum(len(step[1]) for step in ours)

    agree()
    # the counts, in the JUnit report (--junitxml) and on the terminal with -s
    for name, count in sorted(tally.items()):
        record_property(name, count)
    print(f"\ndifferential, generated class against python-statemachine: {dict(tally)}")
    assert tally["steps"] >= LEAST_STEPS, tally


#: A chart with what PLAYER lacks: a raise that an eventless transition and a done event
#: answer, a final child ending its compound, deep history restoring a nested parallel state,
#: a state with no way out (final, as in a flat machine).
PIPELINE = """\
name: pipeline
initial_state: idle
states:
  - idle
  - name: job
    initial: setup
    on_entry: [{type: log, message: "job in"}]
    on_exit: [{type: log, message: "job out"}]
    states:
      - name: setup
        on_entry: [{type: raise, event: configured}]
      - name: work
        parallel: true
        on_exit: [{type: log, message: "work out"}]
        states:
          - name: fetch
            initial: waiting
            states: [waiting, {name: fetched, final: true}]
          - name: crunch
            initial: cold
            states:
              - cold
              - name: hot
                on_entry: [{type: log, message: "hot"}]
                on_exit: [{type: log, message: "cool"}]
      - {name: checking, on_entry: [{type: log, message: "check"}]}
      - {name: finished, final: true}
      - {name: job_hist, history: deep}
  - suspended
  - archived
transitions:
  - {from: idle, to: job, event: start}
  - {from: setup, to: work, event: configured}
  - {from: waiting, to: fetched, event: data}
  - {from: cold, to: hot, event: heat}
  - {from: hot, to: cold, event: heat}
  - {from: work, to: checking, event: done.state.fetch}
  - {from: checking, to: finished}
  - {from: job, to: suspended, event: suspend}
  - {from: suspended, to: job_hist, event: resume}
  - {from: job, to: idle, event: done.state.job}
  - {from: idle, to: archived, event: archive}
"""

FIXED = [
    (
        PLAYER.read_text(encoding="utf-8"),
        "power play ff mute resync pause wait play mute rewind jump ff power power play pause wait"
        " power smash",
    ),
    (
        PIPELINE,
        "start heat suspend resume heat data start suspend resume heat suspend resume data archive",
    ),
]


@pytest.mark.parametrize(("text", "sent"), FIXED, ids=["player", "pipeline"])
def test_fixed_charts_through_real_processes(tmp_path: Path, text: str, sent: str) -> None:
    events = sent.split()
    source = tmp_path / "chart.yaml"
    source.write_text(text, encoding="utf-8")
    exported = tmp_path / "chart.scxml"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "smc",
            "export",
            "--format",
            "scxml",
            str(source),
            "-o",
            str(exported),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    machine = checked_file(source)
    assert machine is not None
    chart = machine_chart(machine)
    in_order = psm_orders_like_the_document(chart)
    package = f"differential_{machine.name}"
    with imported_build([source], tmp_path / "built", package):
        module = importlib.import_module(f"{package}.{module_names(machine).module}")
        ours, reference = generated_steps(machine_class(module), chart, events, in_order)
    theirs = psm_steps(exported.read_text(encoding="utf-8"), events[: len(ours) - 1])
    compare(ours, theirs, reference, in_order)
    # every step compared, the actions run along the way among them
    assert len(ours) == len(events) + 1
    assert sum(len(step[1]) for step in ours) >= 10
    assert ours[-1][2]  # and to the end: a top-level final state
