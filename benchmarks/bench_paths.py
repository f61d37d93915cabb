"""Cost of shortest-path generation (``smc paths`` / ``smc build --emit-tests``).

Machines: the project's examples, every corpus machine that compiles, and generated machines
of 200, 1,000 and 5,000 states (five events per state: a chain, jumps, a way back, a
self-loop and a wildcard reset, plus five unreachable states). Each machine is checked once
(not timed); then ``plan_paths`` (BFS plus one path per state and per transition) and
``render_tests`` (the pytest module text, black included) are timed. Figures are the median
of 5 runs after one warm-up, with the coverage found (covered / reachable transitions).

    python benchmarks/bench_paths.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from smc.compiler.check import check_paths, collect_files
from smc.compiler.model import Machine
from smc.compiler.paths import plan_paths
from smc.compiler.testgen import render_tests

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
RUNS = 5


def big_machine_yaml(states: int, unreachable: int = 5) -> str:
    names = [f"s{i:05d}" for i in range(states)]
    islands = [f"island{i}" for i in range(unreachable)]
    lines = [f"initial_state: {names[0]}", "states:"]
    lines += [f"  - {name}" for name in names + islands]
    lines.append("transitions:")
    for i, name in enumerate(names):
        lines.append(f"  - {{from: {name}, to: {names[(i + 1) % states]}, event: next}}")
        lines.append(f"  - {{from: {name}, to: {names[(i * 7 + 3) % states]}, event: jump}}")
        lines.append(f"  - {{from: {name}, to: {names[i // 2]}, event: back}}")
        lines.append(f"  - {{from: {name}, to: {name}, event: stay}}")
    for i, name in enumerate(islands):
        lines.append(f"  - {{from: {name}, to: {islands[(i + 1) % unreachable]}, event: drift}}")
    lines.append(f'  - {{from: "*", to: {names[0]}, event: reset}}')
    return "\n".join(lines) + "\n"


def median_ms(work: Callable[[], object]) -> float:
    work()
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def compiling(paths: list[str]) -> list[Machine]:
    machines = []
    for path in paths:
        result = check_paths([path], compiling=True)
        if not result.errors:
            machines.extend(result.machines)
    return machines


def row(label: str, machines: list[Machine]) -> str:
    states = sum(len(m.states) for m in machines)
    edges = sum(len(m.table) for m in machines)
    covered = reachable = 0
    for machine in machines:
        plan = plan_paths(machine)
        covered += len(plan.covered_transitions)
        reachable += len(machine.table) - len(plan.unreachable_transitions)
    plan_ms = median_ms(lambda: [plan_paths(m) for m in machines])
    render_ms = median_ms(lambda: [render_tests([m], "generated") for m in machines])
    return (
        f"{label:<22} {len(machines):>8} {states:>7} {edges:>7} "
        f"{covered:>6}/{reachable:<6} {plan_ms:>9.2f} {render_ms:>10.1f}"
    )


def main() -> int:
    # No options: --help says what it measures rather than running it.
    argparse.ArgumentParser(description=__doc__).parse_args()
    print(f"python {sys.version.split()[0]}; median of {RUNS} runs after one warm-up")
    print(
        f"{'machines':<22} {'machines':>8} {'states':>7} {'edges':>7} "
        f"{'covered/reachable':>17} {'paths ms':>9} {'pytest ms':>10}"
    )
    print(row("examples/", compiling([str(ROOT / "examples")])))
    print(row("corpus (compiling)", compiling(collect_files([str(CORPUS)]))))
    with tempfile.TemporaryDirectory() as tmp:
        for size in (200, 1000, 5000):
            file = Path(tmp) / f"big{size}.yaml"
            file.write_text(big_machine_yaml(size))
            print(row(f"generated {size} states", compiling([str(file)])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
