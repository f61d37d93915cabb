"""The generated statechart class (``templates/chart.py.jinja``): it walks a chart through
the same configurations as the reference interpreter, runs typed hooks in SCXML order, and
is typed so that a misspelt hook or state is a type error.

The differential test draws random charts (``tests.support.statecharts``: nesting to depth
4, parallel regions, history, eventless and internal transitions, raise actions, finals),
writes each as an smc YAML file, compiles it with ``smc.compiler`` and imports the module:
after every event the instance's configuration, state view, finality and hook calls agree
with ``Interpreter`` run on the chart that the checked model makes (``machine_chart``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from smc import IllegalTransition
from smc.compiler import codegen
from smc.compiler.charts import machine_chart
from smc.compiler.check import check_texts
from smc.compiler.model import Machine
from smc.compiler.statechart import Interpreter
from smc.machine import is_chart
from tests.support.statecharts import (
    EVENTS,
    chart_documents,
    compiled,
    machine_class,
    smc_document,
)

MACHINES = Path(__file__).resolve().parents[1] / "support" / "machines"

#: The issue's example chart with a way into every state (tests/support/machines).
ISSUE_CHART = (MACHINES / "issue_chart.yaml").read_text(encoding="utf-8")


def checked(text: str, path: str = "chart.yaml") -> Machine:
    result = check_texts([(path, text)])
    assert not result.errors, [str(d) for d in result.errors]
    (machine,) = result.machines
    return machine


# ---- the issue's chart -------------------------------------------------------------------


def test_the_issue_chart_walks_its_configurations(tmp_path: Path) -> None:
    cls = machine_class(compiled(checked(ISSUE_CHART), tmp_path))
    assert is_chart(cls)
    m = cls()
    names = lambda: sorted(str(s) for s in m.configuration)  # noqa: E731
    assert names() == ["active", "idle"] and m.state == "idle"
    assert m.go() == "fetching" and names() == ["active", "busy", "fetching"]
    # fetched -> parsing, then the eventless parsing -> idle, in the same fire()
    assert m.fire("fetched") == "idle" and names() == ["active", "idle"]
    assert m.fire(cls.Event.RUN) == "running"
    assert names() == ["a", "c", "left", "right", "running"]
    assert m.in_state(cls.State.LEFT) and not m.in_state("active")
    m.flip()
    assert names() == ["b", "c", "left", "right", "running"]
    # internal, but its target is its source, not a descendant: as in SCXML, running is
    # left and entered again (its regions restart)
    assert m.tick() == "running" and names() == ["a", "c", "left", "right", "running"]
    m.flip()
    assert m.back() == "idle"  # shallow history of active: idle was its last child
    assert not m.is_final
    with pytest.raises(IllegalTransition):
        m.flip()
    assert names() == ["active", "idle"]  # a refused event changes nothing
    assert m.stop() == "done" and m.is_final and m.allowed_events() == ()
    assert frozenset({cls.State.DONE}) == cls.FINAL_STATES
    assert str(cls.INITIAL_STATE) == "idle"


def test_hooks_run_in_scxml_order_and_only_when_overridden(tmp_path: Path) -> None:
    cls = machine_class(compiled(checked(ISSUE_CHART), tmp_path))
    calls: list[str] = []

    class Traced(cls):  # type: ignore[misc, valid-type]
        def on_enter_active(self) -> None:
            calls.append("enter active")

        def on_exit_active(self) -> None:
            calls.append("exit active")

        def on_enter_idle(self) -> None:
            calls.append("enter idle")

        def on_exit_idle(self) -> None:
            calls.append("exit idle")

        def on_run(self) -> None:
            calls.append("run")

        def on_enter_running(self) -> None:
            calls.append("enter running " + ",".join(sorted(self.configuration)))

        def on_enter_a(self) -> None:
            calls.append("enter a")

    m = Traced()
    assert calls == ["enter active", "enter idle"]  # starting enters the initial states
    calls.clear()
    m.run()
    # exits innermost first, the transition, entries outermost first; hooks see the
    # configuration the whole step reached
    assert calls == [
        "exit idle",
        "exit active",
        "run",
        "enter running a,c,left,right,running",
        "enter a",
    ]
    assert cls()._hooks is None  # the generated class itself calls nothing
    Traced(state="running")  # a chosen start runs no hooks
    assert len(calls) == 5


def test_listeners_see_state_views(tmp_path: Path) -> None:
    cls = machine_class(compiled(checked(ISSUE_CHART), tmp_path))
    m = cls()
    seen: list[tuple[str, str, str]] = []
    listener = lambda s, e, t: seen.append((str(s), str(e), str(t)))  # noqa: E731
    m.add_listener(listener)
    m.run()
    m.remove_listener(listener)
    m.back()
    assert seen == [("idle", "run", "running")]


def test_the_generated_module_is_deterministic_and_black_formatted(tmp_path: Path) -> None:
    machine = checked(ISSUE_CHART)
    first = codegen.generate_machine(machine, "chart.yaml")
    assert first == codegen.generate_machine(checked(ISSUE_CHART), "chart.yaml")
    assert codegen.format_python(first) == first


TYPED_USE = """\
from typing_extensions import override

from issue_chart import IssueChart, State


class Mine(IssueChart):
    @override
    def on_enter_idle(self) -> None:
        pass

    @override
    def on_enter_idel(self) -> None:  # misspelt: no such hook
        pass


m = Mine()
m.in_state(State.IDLE)
m.in_state("idel")
m.fire("go")
m.fire("og")
"""


@pytest.mark.slow
def test_mypy_strict_accepts_the_module_and_rejects_misspelt_hooks(tmp_path: Path) -> None:
    (tmp_path / "issue_chart.py").write_text(
        codegen.generate_machine(checked(ISSUE_CHART, "issue_chart.yaml"), "issue_chart.yaml"),
        encoding="utf-8",
    )
    clean = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--enable-error-code",
            "explicit-override",
            "issue_chart.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert clean.returncode == 0, clean.stdout
    (tmp_path / "use.py").write_text(TYPED_USE, encoding="utf-8")
    typo = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--enable-error-code",
            "explicit-override",
            "--show-error-codes",
            "use.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    errors = {int(line.split(":")[1]) for line in typo.stdout.splitlines() if ": error:" in line}
    # the misspelt hook (line 12), the misspelt state (18) and event (20); nothing else
    assert errors == {12, 18, 20}, typo.stdout


# ---- differential: generated code against the reference interpreter -----------------------


def expected_hooks(chart: Any, moves: tuple[tuple[str, str | int], ...]) -> list[str]:
    hooks: list[str] = []
    for kind, what in moves:
        if kind == "transition":
            event = chart.transitions[what].event
            hook = None if event is None else "on_" + event.replace(".", "_")
            if hook is not None and (not hooks or hooks[-1] != hook):
                hooks.append(hook)
        else:
            hooks.append(f"on_{'enter' if kind == 'entry' else 'exit'}_{what}")
    return hooks


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(chart_documents(), st.lists(st.sampled_from(EVENTS), max_size=12))
def test_generated_code_agrees_with_the_interpreter(
    tmp_path: Path, document: dict[str, Any], events: list[str]
) -> None:
    text_document = smc_document(document)
    assume(text_document is not None)
    result = check_texts([("chart.yaml", yaml.safe_dump(text_document, sort_keys=False))])
    assume(not result.errors)  # e.g. an eventless cycle that never settles (SMC07x)
    (machine,) = result.machines
    assume(machine.is_chart)
    chart = machine_chart(machine)
    cls = machine_class(compiled(machine, tmp_path))
    calls: list[str] = []

    def tracing(name: str) -> Any:
        return lambda self: calls.append(name)

    traced_methods = {name: tracing(name) for name in dir(cls) if name.startswith("on_")}
    traced = type("Traced", (cls,), traced_methods)

    reference = Interpreter(chart)
    start = reference.start()
    m = traced()
    assert calls == expected_hooks(chart, start.moves)
    for event in events:
        calls.clear()
        before = m.configuration
        step = reference.send(event)
        if event not in cls.Event.__members__.values() or not step.accepted:
            with pytest.raises(IllegalTransition):
                m.fire(event)
            assert m.configuration == before and calls == []
        else:
            m.fire(event)
            assert calls == expected_hooks(chart, step.moves), event
        assert {str(s) for s in m.configuration} == set(step.configuration), event
        assert m.is_final == step.finished


def test_a_snapshot_restores_the_configuration_as_plain_data(tmp_path: Path) -> None:
    import json

    cls = machine_class(compiled(checked(ISSUE_CHART), tmp_path))
    m = cls()
    m.run()
    m.flip()
    snapshot = m.snapshot()
    assert snapshot == {"configuration": ["b", "c", "left", "right", "running"]}
    again = cls.restore(**json.loads(json.dumps(snapshot)))
    assert again.configuration == m.configuration and again.state == "running"
    assert again.allowed_events() == m.allowed_events()
    assert again.back() == "idle"  # and it goes on from there
    with pytest.raises(ValueError):
        cls.restore(["a", "c"])  # not a whole configuration: its ancestors are missing
    calls: list[str] = []

    class Traced(cls):  # type: ignore[misc, valid-type]
        def on_enter_running(self) -> None:
            calls.append("enter running")

    Traced.restore(snapshot["configuration"])
    assert calls == []  # restoring is not entering
