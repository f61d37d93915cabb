"""Cost of one transition: the smc-generated class against a hand-written dict class,
``transitions`` and ``python-statemachine``, side by side in one run.

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

    python benchmarks/bench_codegen.py            # needs the bench extra: pip install -e .[bench]
"""

from __future__ import annotations

import gc
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any, ClassVar

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


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="smc-bench-codegen-") as tmp:
        cls = compile_worker(Path(tmp))
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
    print(
        f"| {'implementation':<40} | {'N':>7} | {'ns/transition':>13} "
        f"| {'min-max':>15} | {'x dict':>7} |"
    )
    print(f"|{'-' * 42}|{'-' * 8}:|{'-' * 14}:|{'-' * 16}:|{'-' * 8}:|")
    for name, n, runs in results:
        median = statistics.median(runs)
        spread = f"{min(runs):,.0f}-{max(runs):,.0f}"
        print(
            f"| {name:<40} | {n:>7,} | {median:>13,.0f} | {spread:>15} "
            f"| {median / baseline:>7.2f} |"
        )
    fire = statistics.median(results[0][2])
    trans = statistics.median(results[4][2])
    print()
    print(f"generated fire() / hand-written dict: {fire / baseline:.2f}x (target: at most 2x)")
    print(f"transitions / generated fire(): {trans / fire:.0f}x (target: at least 40x)")


if __name__ == "__main__":
    main()
