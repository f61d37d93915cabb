"""Statecharts run by the worker runtime (``docs/runtime.md``, "Statecharts"): on-exit and
on-entry actions in SCXML order, ``raise`` and eventless transitions resolved within one
event, timers scoped to the states that own them, actions' events, top-level finals.

One test runs a real ``smc run`` process (the YAML file compiled through the machine cache,
the monitor read from its socket); the others run the engine in this process on a SQLite file
in ``tmp_path`` with a listener on the machine, which sees each ``fire`` once.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from smc.runtime.actions.registry import ActionLoadError, ActionRegistry
from smc.runtime.clock import ManualClock
from smc.runtime.engine import Engine
from smc.runtime.monitor import monitor_dir, monitor_socket_path
from smc.runtime.steps import MachineSteps, chart_step, machine_steps
from smc.runtime.timers import StateTimers
from tests.support.harness import Runner, compile_machine


def run_chart(
    machine_cls: type[Any], tmp_path: Path, timeout: float = 10.0
) -> tuple[Engine, list[tuple[str, str, str]]]:
    """Run ``machine_cls`` until it reaches a final state (exit 0); the engine and every
    ``fire`` as (state view, event, state view)."""
    engine = Engine(machine_cls, database=str(tmp_path / "smc.db"), monitor=False)
    fired: list[tuple[str, str, str]] = []
    engine.machine.add_listener(lambda s, e, t: fired.append((str(s), str(e), str(t))))

    async def main() -> int:
        return await asyncio.wait_for(engine.run(), timeout)

    assert asyncio.run(main()) == 0
    return engine, fired


def logged(name: str, message: str) -> dict[str, str]:
    return {"type": "add_to_list", "list_key": "order", "value": f"{message} {name}"}


# --- a real `smc run` --------------------------------------------------------------------------

NESTED = """
initial_state: outer
metadata: {machine_name: nested_chart}
states:
  - name: outer
    on_entry: [{type: log, message: "entry outer"}]
    on_exit: [{type: log, message: "exit outer"}]
    states:
      - name: left
        on_entry: [{type: log, message: "entry left"}]
        on_exit: [{type: log, message: "exit left"}]
        states:
          - name: leaf1
            on_entry: [{type: log, message: "entry leaf1"}]
            on_exit: [{type: log, message: "exit leaf1"}]
      - name: right
        on_entry: [{type: log, message: "entry right"}]
        on_exit: [{type: log, message: "exit right"}]
        states:
          - name: leaf2
            on_entry:
              - {type: log, message: "entry leaf2"}
              - {type: set_context, key: seen, value: yes, success: finish}
            on_exit: [{type: log, message: "exit leaf2"}]
  - {name: done, final: true, on_entry: [{type: log, message: "entry done"}]}
transitions:
  - {from: leaf1, to: leaf2, event: go}
  - {from: outer, to: done, event: finish}
"""


def _read_until(reader: socket.socket, kind: str) -> list[dict[str, Any]]:
    buffer = b""
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        chunk = reader.recv(65536)
        if not chunk:
            break
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        records += [json.loads(line) for line in lines if line]
        if any(record["kind"] == kind for record in records):
            return records
    pytest.fail(f"no {kind} record in {records}")


def test_smc_run_runs_a_chart_in_scxml_order_to_its_final_state(runner: Runner) -> None:
    """Exit actions innermost first, entry actions outermost first, the common ancestor
    neither left nor entered; the monitor carries the configuration; a top-level final state
    ends the process with 0."""
    (runner.cwd / "chart.yaml").write_text(NESTED)
    proc = runner.start("run", "chart.yaml")
    runner.wait_running(proc, "nested_chart")
    with runner.store() as store:
        path = monitor_socket_path(monitor_dir(store), "nested_chart")
    reader = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    reader.connect(str(path))
    reader.settimeout(10)
    try:
        runner.run("send", "nested_chart", "go")
        records = _read_until(reader, "machine_stopped")
    finally:
        reader.close()
    assert proc.wait(10) == 0, proc.output()
    output = proc.output()
    assert "SMC076" not in output
    steps = [line.split("] ", 1)[1] for line in output.splitlines() if "[nested_chart]" in line]
    entries_and_exits = [line for line in steps if line.startswith(("entry ", "exit "))]
    assert entries_and_exits == [
        "entry outer",
        "entry left",
        "entry leaf1",
        # go: leaf1 -> leaf2, inside outer
        "exit leaf1",
        "exit left",
        "entry right",
        "entry leaf2",
        # finish (returned by leaf2's action), from outer
        "exit leaf2",
        "exit right",
        "exit outer",
        "entry done",
    ]
    transitions = [r for r in records if r["kind"] == "transition"]
    assert [(r["from"], r["event"], r["to"], r["configuration"]) for r in transitions] == [
        ("leaf1", "go", "leaf2", ["leaf2", "outer", "right"]),
        ("leaf2", "finish", "done", ["done"]),
    ]
    with runner.store() as store:
        row = store.get_machine("nested_chart")
    assert row is not None and row.status == "stopped" and row.state == "done"


# --- the engine in this process ----------------------------------------------------------------


def test_a_raised_event_is_taken_within_the_same_fire(tmp_path: Path) -> None:
    machine = compile_machine(
        """
initial_state: start
states:
  - name: start
    on_entry: [{type: set_context, key: started, value: yes, success: go}]
  - name: a
    on_entry:
      - {type: add_to_list, list_key: order, value: "entry a"}
      - {type: raise, event: next}
      - {type: add_to_list, list_key: order, value: "entry a, after the raise"}
    on_exit: [{type: add_to_list, list_key: order, value: "exit a"}]
  - name: b
    final: true
    on_entry: [{type: add_to_list, list_key: order, value: "entry b"}]
transitions:
  - {from: start, to: a, event: go}
  - {from: a, to: b, event: next}
""",
        tmp_path,
    )
    engine, fired = run_chart(machine, tmp_path)
    assert fired == [("start", "go", "b")]
    # The raise is queued: a's remaining entry actions run before the raised event moves on.
    assert engine.context["order"] == ["entry a", "entry a, after the raise", "exit a", "entry b"]


def test_an_eventless_transition_is_taken_within_the_same_fire(tmp_path: Path) -> None:
    machine = compile_machine(
        """
initial_state: start
states:
  - name: start
    on_entry: [{type: set_context, key: started, value: yes, success: go}]
  - name: passing
    on_entry: [{type: add_to_list, list_key: order, value: "entry passing"}]
    on_exit: [{type: add_to_list, list_key: order, value: "exit passing"}]
  - name: end
    final: true
    on_entry: [{type: add_to_list, list_key: order, value: "entry end"}]
transitions:
  - {from: start, to: passing, event: go}
  - {from: passing, to: end}
""",
        tmp_path,
    )
    engine, fired = run_chart(machine, tmp_path)
    assert fired == [("start", "go", "end")]
    assert engine.context["order"] == ["entry passing", "exit passing", "entry end"]
    assert engine.context["current_state"] == "end"


def test_an_actions_event_fires_in_the_configuration_reached_and_ends_the_list(
    tmp_path: Path,
) -> None:
    """As in a flat machine: an event nothing accepts goes by, the first accepted one fires
    and ends the step's list — here before the entry actions of a child, which never run."""
    machine = compile_machine(
        """
initial_state: working
states:
  - name: working
    states:
      - name: step1
        on_entry:
          - {type: set_context, key: a, value: 1, success: not_accepted_here}
          - {type: set_context, key: b, value: 2, success: advance}
          - {type: set_context, key: never, value: 3}
        on_exit: [{type: add_to_list, list_key: order, value: "exit step1"}]
      - name: phase2
        on_entry:
          - {type: add_to_list, list_key: order, value: "entry phase2"}
          - {type: set_context, key: c, value: 3, success: leave}
        states:
          - name: step2
            on_entry: [{type: add_to_list, list_key: order, value: "entry step2"}]
  - {name: done, final: true}
transitions:
  - {from: step1, to: step2, event: advance}
  - {from: working, to: done, event: leave}
""",
        tmp_path,
    )
    engine, fired = run_chart(machine, tmp_path)
    # leave is accepted from step2 through its ancestor working
    assert fired == [("step1", "advance", "step2"), ("step2", "leave", "done")]
    context = engine.context
    assert (context["a"], context["b"], context["c"]) == (1, 2, 3)
    assert "never" not in context
    assert context["order"] == ["exit step1", "entry phase2"]


def test_a_compound_states_timer_runs_while_its_children_change(tmp_path: Path) -> None:
    """outer's timer is started once: the moves between its children (every 0.1 s) neither
    stop nor restart it (restarted, it would never expire). c2's 0.3 s timer is cancelled each
    time c2 is left after 0.1 s (left running, it would end the machine in ``bad``)."""
    machine = compile_machine(
        """
initial_state: outer
states:
  - name: outer
    states:
      - name: c1
        on_entry: [{type: add_to_list, list_key: order, value: c1}]
      - name: c2
        on_entry: [{type: add_to_list, list_key: order, value: c2}]
  - {name: done, final: true}
  - {name: bad, final: true}
transitions:
  - {from: c1, to: c2, event: timeout(0.1)}
  - {from: c2, to: c1, event: timeout(0.1)}
  - {from: c2, to: bad, event: timeout(0.3)}
  - {from: outer, to: done, event: timeout(0.8)}
""",
        tmp_path,
    )
    started = time.monotonic()
    engine, fired = run_chart(machine, tmp_path)
    elapsed = time.monotonic() - started
    assert engine.context["current_state"] == "done"
    *moves, last = fired
    assert last[1:] == ("timeout(0.8)", "done")
    assert len(moves) >= 3, fired  # it moved between the children meanwhile
    assert {event for _source, event, _target in moves} == {"timeout(0.1)"}
    assert engine.context["order"][:4] == ["c1", "c2", "c1", "c2"]
    assert 0.75 < elapsed < 5, elapsed


# --- the parts -------------------------------------------------------------------------------


class _Handle:
    def __init__(self, due: float, callback: Callable[[], None]) -> None:
        self.due, self.callback, self.cancelled = due, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class _Scheduler:
    """``call_later`` on a :class:`ManualClock` (``run_due`` runs what is due)."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.handles: list[_Handle] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> _Handle:
        handle = _Handle(self.clock.monotonic() + delay, callback)
        self.handles.append(handle)
        return handle

    def run_due(self) -> None:
        due = [h for h in self.handles if not h.cancelled and h.due <= self.clock.monotonic()]
        for handle in sorted(due, key=lambda h: h.due):
            self.handles.remove(handle)
            handle.callback()


def test_timers_belong_to_the_states_that_own_them() -> None:
    clock = ManualClock()
    scheduler = _Scheduler(clock)
    timers = StateTimers(
        {"outer": ((1.0, "outer_timeout"),), "c1": ((0.5, "c1_timeout"),)},
        scheduler,
        lambda: None,
    )
    timers.step((), ("outer", "c1"))
    clock.advance(0.5)
    scheduler.run_due()
    assert timers.expired == ["c1_timeout"]
    timers.step(("c1",), ("c2",))  # a move inside outer: c1's expired timer goes with it
    assert timers.expired == []
    clock.advance(0.5)
    scheduler.run_due()
    assert timers.expired == ["outer_timeout"]  # started at 0, not restarted by the move
    assert timers.take() == "outer_timeout" and timers.take() is None
    timers.step(("c2", "outer"), ("outer", "c1"))  # outer left and entered again: restarted
    clock.advance(0.9)
    scheduler.run_due()
    assert timers.expired == ["c1_timeout"]
    clock.advance(0.1)
    scheduler.run_due()
    assert timers.expired == ["c1_timeout", "outer_timeout"]
    timers.leave("outer")
    assert timers.expired == ["c1_timeout"]


def test_a_step_leaves_out_the_states_it_only_passed_through() -> None:
    entry = {"outer": ("in outer",), "a": ("in a",), "b": ("in b",)}
    exits = {"a": ("out a",), "b": ("out b",)}
    passing = chart_step(
        (("entry", "outer"), ("entry", "a"), ("exit", "a"), ("on", "a"), ("entry", "b")),
        entry,
        exits,
    )
    assert passing.exited == () and passing.entered == ("outer", "b")
    assert passing.actions == ("in outer", "in a", "out a", "in b")
    again = chart_step((("exit", "b"), ("on", "e"), ("entry", "b")), entry, exits)
    assert (again.exited, again.entered, again.actions) == (("b",), ("b",), ("out b", "in b"))


#: The issue's example chart with a way into every state (tests/support/machines).
ISSUE_CHART = (
    Path(__file__).resolve().parents[1] / "support" / "machines" / "issue_chart.yaml"
).read_text(encoding="utf-8")


def test_the_states_steps_enter_and_leave_are_the_configuration(tmp_path: Path) -> None:
    """What the timers follow (each step's ``exited`` and ``entered``) adds up to the
    configuration after every event, through history, parallel regions, internal and
    eventless transitions (random walks over the issue-13 chart)."""
    machine = compile_machine(ISSUE_CHART, tmp_path)
    steps: MachineSteps[str] = machine_steps(machine, {}, {})
    walks = random.Random(13)
    for _walk in range(50):
        chart = machine()
        active = set(steps.initial(chart).entered)
        assert active == set(chart.configuration)
        for _event in range(30):
            step = steps.fire(chart, walks.choice(chart.allowed_events()))
            active = (active - set(step.exited)) | set(step.entered)
            if chart.is_final:  # a top-level final's own exit is in its step: the walk ends
                break
            assert active == set(chart.configuration)


def test_chart_actions_are_prepared_on_entry_and_exit_without_raise(tmp_path: Path) -> None:
    machine = compile_machine(
        """
initial_state: a
states:
  - name: a
    on_entry: [{type: log, message: hi}, {type: raise, event: next}]
    on_exit: [{type: log, message: bye}]
  - b
transitions:
  - {from: a, to: b, event: next}
  - {from: b, to: a, event: back}
""",
        tmp_path,
    )
    prepared = ActionRegistry(entry_points=False).prepare_actions(machine)
    assert [p.type for p in prepared.entry["a"]] == ["log"]
    assert [p.config["message"] for p in prepared.exit["a"]] == ["bye"]
    assert prepared.exit["a"][0].source.endswith("machine.yaml:6:22")  # its type
    steps = machine_steps(machine, prepared.entry, prepared.exit)
    initial = steps.initial(machine())
    # a is entered, raises next, and is left again within the step of starting
    assert [p.type for p in initial.actions] == ["log", "log"]
    assert (initial.exited, initial.entered) == ((), ("b",))


def test_an_unknown_on_exit_action_type_is_refused_with_its_place(tmp_path: Path) -> None:
    machine = compile_machine(
        """
initial_state: a
states:
  - name: a
    on_exit: [{type: log, message: bye}]
  - {name: b, final: true}
transitions:
  - {from: a, to: b, event: next}
""",
        tmp_path,
    )

    broken = type("Broken", (machine,), {"EXIT_ACTIONS": {"a": ({"type": "no_such_action"},)}})
    with pytest.raises(ActionLoadError, match=r"'no_such_action' in state 'a' \(on_exit\)"):
        ActionRegistry(entry_points=False).prepare_actions(broken)
