"""``smc export --format scxml``: a checked machine file written as a standard SCXML document
that another tool runs as smc means it (python-statemachine 3.2 loading the real output)."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

from statemachine.io import load

from smc.compiler.charts import machine_chart
from smc.compiler.check import check_paths
from smc.compiler.statechart import Interpreter
from tests.support import PROJECT_ROOT

#: The example chart of issue 13 (docs/language.md, Statecharts), with a way into `running`.
CHART = """\
initial_state: active
states:
  - name: active
    initial: idle
    on_entry: [{type: log, message: "in"}]
    on_exit:  [{type: log, message: "out"}]
    states:
      - idle
      - name: busy
        states: [fetching, parsing]
        on: {parse: parsing}
      - {name: active_hist, history: shallow}
  - name: running
    parallel: true
    states:
      - {name: left, initial: a, states: [a, b]}
      - {name: right, initial: c, states: [c, d]}
    on: {resume: active_hist}
  - {name: done, final: true}
transitions:
  - {from: active, to: done, event: stop}
  - {from: active, to: running, event: pause}
  - {from: idle, to: busy, event: go}
  - {from: parsing, to: idle}
  - {from: running, to: running, event: tick, type: internal}
  - {from: a, to: b, event: flip}
"""
EVENTS = ["go", "pause", "flip", "tick", "resume", "parse", "pause", "resume", "stop"]


def _export(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smc", "export", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _their_configurations(scxml: str, events: list[str]) -> list[frozenset[str]]:
    machine = load(scxml, format="scxml")
    seen = []
    with contextlib.redirect_stdout(io.StringIO()):  # its <log> elements print
        instance = machine()
        seen.append(frozenset(instance.configuration_values))
        for event in events:
            instance.send(event)
            seen.append(frozenset(instance.configuration_values))
    return seen


def _our_configurations(path: Path, events: list[str]) -> list[frozenset[str]]:
    result = check_paths([str(path)])
    assert not result.errors, result.errors
    interpreter = Interpreter(machine_chart(result.machines[0]))
    seen = [frozenset(interpreter.start().configuration)]
    seen += [frozenset(interpreter.send(event).configuration) for event in events]
    return seen


def test_a_chart_exported_runs_in_python_statemachine_as_in_smc(tmp_path: Path) -> None:
    source = tmp_path / "chart.yaml"
    source.write_text(CHART, encoding="utf-8")
    run = _export(str(source), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    theirs = _their_configurations(run.stdout, EVENTS)
    ours = _our_configurations(source, EVENTS)
    assert theirs == ours
    # the walk really went through the chart: a parallel state, then history back into busy
    assert {"running", "left", "right", "b", "c"} <= ours[3]
    assert ours[5] == {"active", "busy", "fetching"}
    assert ours[-1] == {"done"}


def test_a_flat_example_exported_runs_in_python_statemachine(tmp_path: Path) -> None:
    source = PROJECT_ROOT / "examples" / "simple_worker" / "simple_worker.yaml"
    output = tmp_path / "simple_worker.scxml"
    run = _export(str(source), "--format", "scxml", "-o", str(output), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    events = ["initialized", "new_job", "job_done", "no_jobs", "stop"]
    assert _their_configurations(output.read_text(encoding="utf-8"), events) == (
        _our_configurations(source, events)
    )


def test_bad_input_is_refused_without_output(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "initial_state: a\nstates: [a]\ntransitions:\n  - {from: a, to: nowhere, event: go}\n"
    )
    run = _export(str(broken), cwd=tmp_path)
    assert run.returncode == 1 and run.stdout == ""
    assert "error[SMC" in run.stderr
    run = _export(str(tmp_path), cwd=tmp_path)
    assert run.returncode == 2 and run.stdout == ""
    unnamed = tmp_path / "spaces.yaml"
    unnamed.write_text(
        "initial_state: a\nstates: [a, b]\ntransitions:\n  - {from: a, to: b, event: 'go now'}\n"
    )
    run = _export(str(unnamed), cwd=tmp_path)
    assert run.returncode == 1 and run.stdout == "" and "spaces.yaml" in run.stderr


def test_a_machine_with_a_timer_is_refused_saying_so(tmp_path: Path) -> None:
    """The README's statechart example has a state's timer: it was refused as "not an SCXML
    event name", as if the author had misnamed an event."""
    source = PROJECT_ROOT / "examples" / "download_worker" / "download_worker.yaml"
    output = tmp_path / "download_worker.scxml"
    run = _export(str(source), "--format", "scxml", "-o", str(output), cwd=tmp_path)
    assert run.returncode == 1 and run.stdout == ""
    assert "'timeout(60)' is a state's timer" in run.stderr
    assert not output.exists()
