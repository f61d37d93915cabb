"""Cost of one transition: the smc-generated class against a hand-written dict class,
``transitions``, ``python-statemachine`` and (for statecharts) ``sismic``, side by side.

The machine is statemachine-engine's ``simple_worker`` (the compatibility corpus:
``../shared/corpus/statemachine-engine/examples/simple_worker/config/worker.yaml``), compiled
with ``smc build`` into a temporary directory and imported from there. The other
implementations are built from the generated class's ``TRANSITIONS``, so all of them are the
same machine. The timed cycle is ``new_job, job_done, continue_work, no_jobs`` from
``waiting``; before timing, every implementation is checked to walk the cycle through the
expected states and to reject an illegal event.

Method (as the shared research "python-fsm-libraries" §1): ns per transition is the median
of 5 timed runs (``time.perf_counter_ns``) after one warm-up run of N/10, ``gc.collect()``
before each run, bound methods hoisted out of the loop. The runs are interleaved (round-robin
over the implementations), so passing load on the machine does not favour one of them.
N is 200,000 transitions, fewer for the slow libraries (the table says which).

Then two statecharts, each written by this script as YAML into the temporary directory and
compiled by an ``smc build`` subprocess too: a nested chart (three levels of compound states,
no parallel state) whose cycle moves between leaves of different compound states, so every
event exits and enters compound states; and a parallel chart (two regions) whose cycle moves
each region alone, both at once on one event, and the whole parallel state back to its initial
leaves. Each chart is described once (``Chart.spec``, in smc's YAML shape); the hand-written
dict is the flat machine over the chart's situations (``chart_hand_written``); python-statemachine
(a ``StateChart`` of ``State.Compound`` / ``State.Parallel`` states) and sismic (its own YAML
format, loaded with ``sismic.io.import_from_yaml`` and run with ``Interpreter.queue(event)``
then ``execute()``) are built from that description. Every implementation is checked to go
through the chart's expected configurations (all active states, written out by hand below) and
to refuse an event no active state accepts, before timing. A chart's figure is ns per event
(one ``fire()``: everything the event does, both regions' transitions included), measured as
above; each chart is its own interleaved measurement, after the flat one.

Last, guarded transitions: the nested chart three times in one interleaved measurement, as
above, with a ``when:`` (over a context field, always true) on every transition of its
cycle, and with a named guard (``guard: ready``, written in a subclass, returning True) on
each; the figure is each one's ns per event against the unguarded chart's (target: at most
2x).

    python benchmarks/bench_codegen.py            # needs the bench extra: pip install -e .[bench]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any, ClassVar

import yaml

ROOT = Path(__file__).resolve().parents[1]
CORPUS_WORKER = (
    ROOT.parent
    / "shared"
    / "corpus"
    / "statemachine-engine"
    / "examples"
    / "simple_worker"
    / "config"
    / "worker.yaml"
)
CYCLE = ("new_job", "job_done", "continue_work", "no_jobs")
EXPECTED = ("processing", "completed", "waiting", "waiting")
START = "waiting"
N = 200_000

Loop = Callable[[int], None]


def compile_worker(out_dir: Path) -> type[Any]:
    """``smc build`` the corpus worker (a real subprocess) and import the generated class."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "smc",
            "build",
            str(CORPUS_WORKER),
            "-o",
            str(out_dir / "bench_gen"),
        ],
        check=True,
        cwd=out_dir,
        capture_output=True,
    )
    sys.path.insert(0, str(out_dir))
    module = importlib.import_module("bench_gen")
    machine: type[Any] = module.SimpleWorker
    return machine


# ---- the implementations: each returns (loop, read_state, fire_one) ------------------------


def generated_fire(cls: type[Any], as_enum: bool) -> tuple[Loop, Callable[[], str], Any]:
    machine = cls(state=START)
    events = [cls.Event(e) if as_enum else e for e in CYCLE]
    a, b, c, d = events

    def loop(n: int) -> None:
        fire = machine.fire
        for _ in range(n // 4):
            fire(a)
            fire(b)
            fire(c)
            fire(d)

    return loop, lambda: str(machine.state), machine.fire


def generated_methods(cls: type[Any]) -> tuple[Loop, Callable[[], str], Any]:
    machine = cls(state=START)

    def loop(n: int) -> None:
        a, b, c, d = (getattr(machine, event) for event in CYCLE)
        for _ in range(n // 4):
            a()
            b()
            c()
            d()

    return loop, lambda: str(machine.state), lambda e: getattr(machine, e)()


class HandWritten:
    """The baseline: ``dict[(state, event)] -> state``, ``trigger(event)``, ``__slots__``."""

    __slots__ = ("state",)
    table: ClassVar[dict[tuple[str, str], str]] = {}

    def __init__(self, state: str) -> None:
        self.state = state

    def trigger(self, event: str) -> str:
        try:
            self.state = target = self.table[(self.state, event)]
        except KeyError:
            raise ValueError(f"{event!r} not allowed in {self.state!r}") from None
        return target


def hand_written(cls: type[Any]) -> tuple[Loop, Callable[[], str], Any]:
    HandWritten.table = {(str(s), str(e)): str(t) for s, e, t in cls.TRANSITIONS}
    machine = HandWritten(START)

    def loop(n: int) -> None:
        trigger = machine.trigger
        for _ in range(n // 4):
            trigger("new_job")
            trigger("job_done")
            trigger("continue_work")
            trigger("no_jobs")

    return loop, lambda: machine.state, machine.trigger


def with_transitions(cls: type[Any]) -> tuple[Loop, Callable[[], str], Any]:
    from transitions import Machine

    class Model:
        state: str

    model = Model()
    Machine(
        model=model,
        states=[str(s) for s in cls.State],
        transitions=[
            {"trigger": str(e), "source": str(s), "dest": str(t)} for s, e, t in cls.TRANSITIONS
        ],
        initial=START,
    )

    def loop(n: int) -> None:
        a, b, c, d = (getattr(model, event) for event in CYCLE)
        for _ in range(n // 4):
            a()
            b()
            c()
            d()

    return loop, lambda: model.state, lambda e: getattr(model, e)()


def with_python_statemachine(cls: type[Any]) -> tuple[Loop, Callable[[], str], Any]:
    from statemachine import State, StateMachine

    # psm insists the initial state is the real one (its graph check), so it starts there
    # and is sent "initialized" to reach the cycle's start.
    initial = str(cls.INITIAL_STATE)
    states = {str(s): State(value=str(s), initial=str(s) == initial) for s in cls.State}
    attributes: dict[str, Any] = dict(states)
    for event in cls.Event:
        edges = [(s, t) for s, e, t in cls.TRANSITIONS if e == event]
        transition_list = states[str(edges[0][0])].to(states[str(edges[0][1])])
        for source, target in edges[1:]:
            transition_list = transition_list | states[str(source)].to(states[str(target)])
        attributes[str(event)] = transition_list
    machine_class = type(StateMachine)("PsmWorker", (StateMachine,), attributes)
    machine = machine_class()
    machine.send("initialized")

    def loop(n: int) -> None:
        a, b, c, d = (getattr(machine, event) for event in CYCLE)
        for _ in range(n // 4):
            a()
            b()
            c()
            d()

    return loop, lambda: str(machine.current_state_value), lambda e: getattr(machine, e)()


# ---- statecharts ---------------------------------------------------------------------------

Config = frozenset[str]
# Every implementation of a chart: (timed loop, every active state's name, fire one event).
ChartImpl = tuple[Loop, Callable[[], Config], Callable[[str], object]]
SISMIC_ROOT = "root"  # sismic wants one root state; no chart below names a state so


@dataclass(frozen=True)
class Chart:
    """A statechart, described once in smc's YAML shape (state items with ``name``,
    ``states`` and ``parallel`` only, each compound entering its first child, and
    ``from``/``to``/``event`` transitions), from which every implementation is built."""

    title: str
    name: str  # the YAML file's stem: the generated module and class are named after it
    spec: dict[str, Any]
    cycle: tuple[str, str, str, str]
    start: Config  # every active state after starting
    expected: tuple[Config, Config, Config, Config]  # ... after each event of the cycle
    illegal: str  # an event no state active at the start accepts
    target: float  # the most fire() may cost, in hand-written dict lookups

    def walk(self) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
        """(name, item or None for a leaf, parent name) for every state, in document order."""
        pending: list[tuple[Any, str | None]] = [(item, None) for item in self.spec["states"]]
        while pending:
            item, parent = pending.pop(0)
            if isinstance(item, str):
                yield item, None, parent
            else:
                yield item["name"], item, parent
                pending[:0] = [(child, item["name"]) for child in item["states"]]

    def leaves(self) -> list[str]:
        return [name for name, item, _ in self.walk() if item is None]

    def closure(self, leaves: list[str]) -> Config:
        """The configuration holding these leaves: them and all their ancestors."""
        parents = {name: parent for name, _, parent in self.walk()}
        active: set[str] = set()
        for leaf in leaves:
            state: str | None = leaf
            while state is not None:
                active.add(state)
                state = parents[state]
        return frozenset(active)


def _toggles(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    """A ``toggle`` between each pair of sibling leaves, both ways."""
    return [
        {"from": one, "to": other, "event": "toggle"}
        for a, b in pairs
        for one, other in ((a, b), (b, a))
    ]


NESTED = Chart(
    title="nested chart (3 levels, no parallel)",
    name="bench_nested",
    spec={
        "initial_state": "top_a",
        "states": [
            {
                "name": "top_a",
                "states": [
                    {"name": "mid_a", "states": ["leaf_a1", "leaf_a2"]},
                    {"name": "mid_b", "states": ["leaf_b1", "leaf_b2"]},
                ],
            },
            {
                "name": "top_b",
                "states": [
                    {"name": "mid_c", "states": ["leaf_c1", "leaf_c2"]},
                    {"name": "mid_d", "states": ["leaf_d1", "leaf_d2"]},
                ],
            },
        ],
        "transitions": [
            # the cycle: every event leaves a compound state for another one
            {"from": "leaf_a1", "to": "leaf_b2", "event": "across"},  # mid_a -> mid_b
            {"from": "mid_b", "to": "mid_d", "event": "over"},  # top_a -> top_b, from a compound
            {"from": "leaf_d1", "to": "leaf_c2", "event": "back"},  # mid_d -> mid_c
            {"from": "top_b", "to": "top_a", "event": "home"},  # to top_a's initial leaf
            # not in the cycle: every leaf can be entered and left (smc and python-statemachine
            # refuse a chart with a state that cannot be), and each situation accepts several
            # events, as a real chart's do
            *_toggles(
                ("leaf_a1", "leaf_a2"),
                ("leaf_b1", "leaf_b2"),
                ("leaf_c1", "leaf_c2"),
                ("leaf_d1", "leaf_d2"),
            ),
        ],
    },
    cycle=("across", "over", "back", "home"),
    start=frozenset({"top_a", "mid_a", "leaf_a1"}),
    expected=(
        frozenset({"top_a", "mid_b", "leaf_b2"}),
        frozenset({"top_b", "mid_d", "leaf_d1"}),
        frozenset({"top_b", "mid_c", "leaf_c2"}),
        frozenset({"top_a", "mid_a", "leaf_a1"}),
    ),
    illegal="back",
    target=1.5,
)

PARALLEL = Chart(
    title="parallel chart (2 regions)",
    name="bench_parallel",
    spec={
        "initial_state": "running",
        "states": [
            {
                "name": "running",
                "parallel": True,
                "states": [
                    {"name": "left", "states": ["l1", "l2", "l3"]},
                    {"name": "right", "states": ["r1", "r2", "r3"]},
                ],
            },
        ],
        "transitions": [
            {"from": "l1", "to": "l2", "event": "left_go"},  # the left region alone
            {"from": "l2", "to": "l3", "event": "both"},  # one event, a transition in each region
            {"from": "r1", "to": "r2", "event": "both"},
            {"from": "r2", "to": "r3", "event": "right_go"},  # the right region alone
            # out of the parallel state and in again: both regions to their initial leaves
            {"from": "running", "to": "running", "event": "reset"},
        ],
    },
    cycle=("left_go", "both", "right_go", "reset"),
    start=frozenset({"running", "left", "l1", "right", "r1"}),
    expected=(
        frozenset({"running", "left", "l2", "right", "r1"}),
        frozenset({"running", "left", "l3", "right", "r2"}),
        frozenset({"running", "left", "l3", "right", "r3"}),
        frozenset({"running", "left", "l1", "right", "r1"}),
    ),
    illegal="right_go",
    target=3.0,
)

CHARTS = (NESTED, PARALLEL)


def compile_chart(out_dir: Path, chart: Chart) -> type[Any]:
    """Write the chart's YAML, ``smc build`` it (a real subprocess), import the class."""
    source = out_dir / f"{chart.name}.yaml"
    source.write_text(yaml.safe_dump(chart.spec, sort_keys=False), encoding="utf-8")
    package = f"{chart.name}_gen"
    subprocess.run(
        [sys.executable, "-m", "smc", "build", str(source), "-o", str(out_dir / package)],
        check=True,
        cwd=out_dir,
        capture_output=True,
    )
    if str(out_dir) not in sys.path:
        sys.path.insert(0, str(out_dir))
    module = importlib.import_module(package)
    (class_name,) = module.__all__
    machine: type[Any] = getattr(module, class_name)
    return machine


def chart_fire(cls: type[Any], chart: Chart, as_enum: bool) -> ChartImpl:
    machine = cls()
    a, b, c, d = (cls.Event(e) if as_enum else e for e in chart.cycle)

    def loop(n: int) -> None:
        fire = machine.fire
        for _ in range(n // 4):
            fire(a)
            fire(b)
            fire(c)
            fire(d)

    return loop, lambda: frozenset(map(str, machine.configuration)), machine.fire


def chart_methods(cls: type[Any], chart: Chart) -> ChartImpl:
    machine = cls()
    methods = [cls.EVENT_METHODS[cls.Event(e)] for e in chart.cycle]

    def loop(n: int) -> None:
        a, b, c, d = (getattr(machine, method) for method in methods)
        for _ in range(n // 4):
            a()
            b()
            c()
            d()

    return (
        loop,
        lambda: frozenset(map(str, machine.configuration)),
        lambda e: getattr(machine, cls.EVENT_METHODS[cls.Event(e)])(),
    )


def chart_hand_written(cls: type[Any], chart: Chart) -> ChartImpl:
    """The flat machine one would write by hand for the chart: the same ``HandWritten``
    class, its ``state`` a situation's key, its table ``(key, event) -> next key``.

    A key names a situation by its active leaves in document order, joined by ``+``: in the
    nested chart the leaf alone (``leaf_b2``: the state view), in the parallel chart one
    leaf per region (``l2+r1``), the product state a hand-written flat machine would keep.
    Keys are strings (their hash is cached), as the flat machine's states are. The table is
    read from the generated class's ``CONFIGURATIONS`` and ``DISPATCH``; the configurations
    checked before timing come from the chart's own structure, not from smc.
    """
    leaves = chart.leaves()
    keys = ["+".join(leaf for leaf in leaves if leaf in c) for c in cls.CONFIGURATIONS]
    assert len(set(keys)) == len(keys), keys  # a key per situation, or two would be merged
    table = {
        (keys[situation], str(event)): keys[target]
        for situation, row in enumerate(cls.DISPATCH)
        for event, (target, _view, _step) in row.items()
    }
    # A subclass only to hold this chart's table: HandWritten.table stays the flat machine's.
    machine_class = type(
        f"HandWritten_{chart.name}", (HandWritten,), {"__slots__": (), "table": table}
    )
    machine = machine_class(keys[0])
    a, b, c, d = chart.cycle

    def loop(n: int) -> None:
        trigger = machine.trigger
        for _ in range(n // 4):
            trigger(a)
            trigger(b)
            trigger(c)
            trigger(d)

    return loop, lambda: chart.closure(machine.state.split("+")), machine.trigger


def psm_chart_class(chart: Chart) -> type[Any]:
    """The chart as a python-statemachine ``StateChart``: each compound or parallel state is
    what a ``class name(State.Compound)`` (or ``State.Parallel``) body would make, built by
    calling its metaclass; each event is the ``|`` of its transitions."""
    from statemachine import State, StateChart

    states: dict[str, Any] = {}
    initial = chart.spec["initial_state"]

    def build(item: Any) -> tuple[str, Any]:
        if isinstance(item, str):
            states[item] = State(initial=item == initial)
            return item, states[item]
        children = dict(build(child) for child in item["states"])
        base: Any = State.Parallel if item.get("parallel") else State.Compound
        # psm enters a compound's first child by default, as smc does
        states[item["name"]] = type(base)(
            item["name"], (base,), children, initial=item["name"] == initial
        )
        return item["name"], states[item["name"]]

    # StateChart ignores an event nothing accepts unless told not to; smc refuses it
    attributes: dict[str, Any] = {"allow_event_without_transition": False}
    attributes.update(build(item) for item in chart.spec["states"])
    for transition in chart.spec["transitions"]:
        edge = states[transition["from"]].to(states[transition["to"]])
        event = transition["event"]
        assert not hasattr(StateChart, event), event  # it would shadow StateChart's own
        attributes[event] = attributes[event] | edge if event in attributes else edge
    metaclass: Any = type(StateChart)
    machine_class: type[Any] = metaclass(f"Psm_{chart.name}", (StateChart,), attributes)
    return machine_class


def chart_python_statemachine(chart: Chart) -> ChartImpl:
    machine = psm_chart_class(chart)()

    def loop(n: int) -> None:
        a, b, c, d = (getattr(machine, event) for event in chart.cycle)
        for _ in range(n // 4):
            a()
            b()
            c()
            d()

    return (
        loop,
        lambda: frozenset(machine.configuration_values),
        lambda e: getattr(machine, e)(),
    )


def sismic_yaml(chart: Chart) -> str:
    """The chart in sismic's YAML format: transitions written in their source state, a
    compound's ``initial`` its first child, a parallel state's regions ``parallel states``,
    everything under one root state."""
    outgoing: dict[str, list[dict[str, str]]] = {}
    for transition in chart.spec["transitions"]:
        outgoing.setdefault(transition["from"], []).append(
            {"target": transition["to"], "event": transition["event"]}
        )

    def state(item: Any) -> dict[str, Any]:
        name = item if isinstance(item, str) else item["name"]
        written: dict[str, Any] = {"name": name}
        if not isinstance(item, str):
            children = [state(child) for child in item["states"]]
            if item.get("parallel"):
                written["parallel states"] = children
            else:
                written["initial"] = children[0]["name"]
                written["states"] = children
        if name in outgoing:
            written["transitions"] = outgoing[name]
        return written

    root = {
        "name": SISMIC_ROOT,
        "initial": chart.spec["initial_state"],
        "states": [state(item) for item in chart.spec["states"]],
    }
    text: str = yaml.safe_dump(
        {"statechart": {"name": chart.name, "root state": root}}, sort_keys=False
    )
    return text


def chart_sismic(chart: Chart, out_dir: Path) -> ChartImpl:
    from sismic.interpreter import Interpreter  # type: ignore[import-untyped]
    from sismic.io import import_from_yaml  # type: ignore[import-untyped]

    source = out_dir / f"{chart.name}.sismic.yaml"
    source.write_text(sismic_yaml(chart), encoding="utf-8")
    interpreter = Interpreter(import_from_yaml(filepath=source))
    interpreter.execute()  # enters the initial configuration

    def loop(n: int) -> None:
        a, b, c, d = chart.cycle
        queue, execute = interpreter.queue, interpreter.execute
        for _ in range(n // 4):
            queue(a)
            execute()
            queue(b)
            execute()
            queue(c)
            execute()
            queue(d)
            execute()

    def fire_one(event: str) -> None:
        # sismic consumes an event nothing accepts, in a macrostep that takes no transition
        if not any(step.transitions for step in interpreter.queue(event).execute()):
            raise ValueError(f"{event!r} not accepted")

    return (
        loop,
        lambda: frozenset(interpreter.configuration) - {SISMIC_ROOT},
        fire_one,
    )


# ---- measuring ------------------------------------------------------------------------------


def verify(name: str, read_state: Callable[[], str], fire_one: Any) -> None:
    """Walk the cycle checking every state, then check an illegal event is refused."""
    assert read_state() == START, (name, read_state())
    for event, expected in zip(CYCLE, EXPECTED, strict=True):
        fire_one(event)
        assert read_state() == expected, (name, event, read_state())
    try:
        fire_one("job_done")  # not allowed in waiting
    except Exception:
        pass
    else:
        raise AssertionError(f"{name} accepted an illegal event")
    assert read_state() == START, (name, read_state())


def timed(loop: Loop, n: int) -> float:
    gc.collect()
    started = time.perf_counter_ns()
    loop(n)
    return (time.perf_counter_ns() - started) / n


def measure_interleaved(loops: list[tuple[Loop, int]], rounds: int = 5) -> list[list[float]]:
    """Each implementation warmed up, then timed once per round, round-robin: a burst of load
    from elsewhere on the machine hits every implementation alike, not just one."""
    for loop, n in loops:
        loop(n // 10)  # warm-up
    runs: list[list[float]] = [[] for _ in loops]
    for _ in range(rounds):
        for index, (loop, n) in enumerate(loops):
            runs[index].append(timed(loop, n))
    return runs


def verify_chart(name: str, chart: Chart, impl: ChartImpl) -> None:
    """Walk the chart's cycle checking every configuration, then check the illegal event is
    refused and changes nothing."""
    _loop, read_config, fire_one = impl
    assert read_config() == chart.start, (name, read_config())
    for event, expected in zip(chart.cycle, chart.expected, strict=True):
        fire_one(event)
        assert read_config() == expected, (name, event, read_config())
    try:
        fire_one(chart.illegal)
    except Exception:
        pass
    else:
        raise AssertionError(f"{name} accepted an illegal event")
    assert read_config() == chart.start, (name, read_config())


Result = tuple[str, int, list[float]]


def print_table(results: list[Result], baseline: float, unit: str, against: str = "x dict") -> None:
    print(
        f"| {'implementation':<40} | {'N':>7} | {unit:>13} " f"| {'min-max':>15} | {against:>7} |"
    )
    print(f"|{'-' * 42}|{'-' * 8}:|{'-' * 14}:|{'-' * 16}:|{'-' * 8}:|")
    for name, n, runs in results:
        median = statistics.median(runs)
        spread = f"{min(runs):,.0f}-{max(runs):,.0f}"
        print(
            f"| {name:<40} | {n:>7,} | {median:>13,.0f} | {spread:>15} "
            f"| {median / baseline:>7.2f} |"
        )


def flat_section(out_dir: Path) -> None:
    cls = compile_worker(out_dir)
    rows: list[tuple[str, int, Callable[[], tuple[Loop, Callable[[], str], Any]]]] = [
        ("smc generated: fire(Event.X)", N, lambda: generated_fire(cls, as_enum=True)),
        ('smc generated: fire("x")', N, lambda: generated_fire(cls, as_enum=False)),
        ("smc generated: m.x() per-event method", N, lambda: generated_methods(cls)),
        ("hand-written dict, trigger(event)", N, lambda: hand_written(cls)),
        (
            f"transitions {version('transitions')} Machine",
            N // 10,
            lambda: with_transitions(cls),
        ),
        (
            f"python-statemachine {version('python-statemachine')}",
            N // 100,
            lambda: with_python_statemachine(cls),
        ),
    ]
    loops: list[tuple[Loop, int]] = []
    for name, n, make in rows:
        loop, read_state, fire_one = make()
        verify(name, read_state, fire_one)
        loops.append((loop, n))
    measured = measure_interleaved(loops)
    results = [(name, n, runs) for (name, n, _), runs in zip(rows, measured, strict=True)]

    baseline = statistics.median(results[3][2])
    print(
        f"ns per transition, cycle {', '.join(CYCLE)}; median of 5 runs after a warm-up; "
        f"Python {sys.version.split()[0]}"
    )
    print()
    print_table(results, baseline, "ns/transition")
    fire = statistics.median(results[0][2])
    trans = statistics.median(results[4][2])
    print()
    print(f"generated fire() / hand-written dict: {fire / baseline:.2f}x (target: at most 2x)")
    print(f"transitions / generated fire(): {trans / fire:.0f}x (target: at least 40x)")


def chart_section(out_dir: Path, chart: Chart) -> None:
    cls = compile_chart(out_dir, chart)
    rows: list[tuple[str, int, Callable[[], ChartImpl]]] = [
        ("smc generated: fire(Event.X)", N, lambda: chart_fire(cls, chart, as_enum=True)),
        ('smc generated: fire("x")', N, lambda: chart_fire(cls, chart, as_enum=False)),
        ("smc generated: m.x() per-event method", N, lambda: chart_methods(cls, chart)),
        ("hand-written dict, trigger(event)", N, lambda: chart_hand_written(cls, chart)),
        (
            f"python-statemachine {version('python-statemachine')} StateChart",
            N // 100,
            lambda: chart_python_statemachine(chart),
        ),
        (
            f"sismic {version('sismic')} Interpreter",
            N // 100,
            lambda: chart_sismic(chart, out_dir),
        ),
    ]
    loops: list[tuple[Loop, int]] = []
    for name, n, make in rows:
        impl = make()
        verify_chart(name, chart, impl)
        loops.append((impl[0], n))
    measured = measure_interleaved(loops)
    results = [(name, n, runs) for (name, n, _), runs in zip(rows, measured, strict=True)]

    baseline = statistics.median(results[3][2])
    print(
        f"{chart.title}: ns per event, cycle {', '.join(chart.cycle)}; "
        "median of 5 runs after a warm-up"
    )
    print()
    print_table(results, baseline, "ns/event")
    fire = statistics.median(results[0][2])
    psm = statistics.median(results[4][2])
    sismic = statistics.median(results[5][2])
    kind = chart.title.split()[0]
    print()
    print(
        f"{kind} chart fire() / hand-written dict: {fire / baseline:.2f}x "
        f"(target: at most {chart.target:g}x)"
    )
    print(f"python-statemachine / smc fire(): {psm / fire:.0f}x (target: at least 100x)")
    print(f"sismic / smc fire(): {sismic / fire:.0f}x (target: at least 100x)")


# ---- guarded transitions ---------------------------------------------------------------------

#: What each guarded variant of the nested chart adds to every transition of its cycle (and
#: the machine keys it needs): a ``when:`` expression over a context field that always holds,
#: and a named guard (``guard: ready``) a subclass writes, returning True.
GUARDS: tuple[tuple[str, str, dict[str, Any], dict[str, Any]], ...] = (
    ("when", '`when: "n >= 0"`', {"when": "n >= 0"}, {"context": {"n": {"type": "integer"}}}),
    ("named", "`guard: ready`", {"guard": "ready"}, {}),
)


def guarded(chart: Chart, suffix: str, on_cycle: dict[str, Any], top: dict[str, Any]) -> Chart:
    """``chart`` with ``on_cycle`` added to each transition its cycle takes (the other
    transitions unchanged) and ``top`` added to the machine: the same shape, guarded."""
    spec = dict(chart.spec)
    spec.update(top)
    if "context" in top:  # a default, so the class is created without one
        spec["context"] = {
            name: {**schema, "default": 0} for name, schema in top["context"].items()
        }
    spec["transitions"] = [
        {**t, **on_cycle} if t["event"] in chart.cycle else dict(t)
        for t in chart.spec["transitions"]
    ]
    return replace(chart, name=f"{chart.name}_{suffix}", spec=spec)


def guard_section(out_dir: Path) -> None:
    """The nested chart three times, in one interleaved measurement: as above, with a
    ``when:`` on every transition of its cycle, and with a named guard on each."""
    chart = NESTED
    plain = compile_chart(out_dir, chart)
    rows: list[tuple[str, int, Callable[[], ChartImpl]]] = [
        ("no guard: fire(Event.X)", N, lambda: chart_fire(plain, chart, as_enum=True)),
        ("no guard: m.x() per-event method", N, lambda: chart_methods(plain, chart)),
    ]
    for suffix, label, on_cycle, top in GUARDS:
        variant = guarded(chart, suffix, on_cycle, top)
        cls = compile_chart(out_dir, variant)
        if suffix == "named":  # the named guard is abstract: a subclass writes it
            cls = type(f"{cls.__name__}Ready", (cls,), {"ready": lambda self: True})
        rows.append((f"{label}: fire(Event.X)", N, lambda c=cls, v=variant: chart_fire(c, v, True)))
        rows.append(
            (f"{label}: m.x() per-event method", N, lambda c=cls, v=variant: chart_methods(c, v))
        )
    loops: list[tuple[Loop, int]] = []
    for name, n, make in rows:
        impl = make()
        verify_chart(name, chart, impl)
        loops.append((impl[0], n))
    measured = measure_interleaved(loops)
    results = [(name, n, runs) for (name, n, _), runs in zip(rows, measured, strict=True)]
    baseline = statistics.median(results[0][2])
    print(
        f"guarded transitions, {chart.title}: ns per event, cycle {', '.join(chart.cycle)}, "
        "each of its transitions guarded (the guard holds); median of 5 runs after a warm-up; "
        "x plain: against the unguarded fire()"
    )
    print()
    print_table(results, baseline, "ns/event", "x plain")
    print()
    plain_method = statistics.median(results[1][2])
    for index, (_suffix, label, _on, _top) in enumerate(GUARDS):
        fire = statistics.median(results[2 + 2 * index][2])
        method = statistics.median(results[3 + 2 * index][2])
        print(
            f"{label} fire() / unguarded fire(): {fire / baseline:.2f}x, per-event method "
            f"{method / plain_method:.2f}x (target: at most 2x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--guards", action="store_true", help="only the guarded section (quicker, for tuning)"
    )
    if parser.parse_args().guards:
        with tempfile.TemporaryDirectory(prefix="smc-bench-codegen-") as tmp:
            guard_section(Path(tmp))
        return
    with tempfile.TemporaryDirectory(prefix="smc-bench-codegen-") as tmp:
        flat_section(Path(tmp))
        for chart in CHARTS:
            print()
            chart_section(Path(tmp), chart)
        print()
        guard_section(Path(tmp))


if __name__ == "__main__":
    main()
