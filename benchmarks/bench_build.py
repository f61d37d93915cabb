"""How long ``smc build`` takes on a large project: 100 machines of 50 states each.

Three runs, each a real subprocess (``python -m smc build``), as a user or CI would run it:

- cold: an empty output directory (every module rendered and formatted);
- no-op: the same build again (the manifest says everything is current: nothing rendered,
  nothing written);
- one changed: one machine file edited (one module re-rendered).

Targets (docs/build.md): cold under 3 s, no-op under 0.3 s. Each figure is the median of
``--repeat`` runs (default 5). Figures are printed, not asserted.

``--long-names`` gives every state a 45-character name and every action a 120-character
shell command, the shapes that push generated lines past 100 columns. The script also counts
the modules smc had to hand to black (the rest are written in black's style as rendered;
see docs/build.md).

    python benchmarks/bench_build.py [--machines 100] [--states 50] [--repeat 5] [--long-names]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def machine_document(index: int, states: int, long_names: bool = False) -> dict[str, object]:
    """An engine-style machine: a main chain, a retry edge every few states, a self-loop,
    a timeout and a wildcard ``stop`` to a final state: the shapes real workers have."""
    stem = "waiting_for_the_database_in_stage" if long_names else "state"
    names = [f"{stem}_{index}_{i}" for i in range(states - 1)] + ["stopped"]
    transitions: list[dict[str, str]] = []
    events = ["advance", "retry", "idle", "timeout(30)", "stop"]
    for i in range(states - 2):
        transitions.append({"from": names[i], "to": names[i + 1], "event": "advance"})
        if i % 5 == 4:
            transitions.append({"from": names[i], "to": names[i - 4], "event": "retry"})
        if i % 7 == 0:
            transitions.append({"from": names[i], "to": names[i], "event": "idle"})
        if i % 11 == 3:
            transitions.append({"from": names[i], "to": names[0], "event": "timeout(30)"})
    transitions.append({"from": names[states - 2], "to": names[0], "event": "advance"})
    transitions.append({"from": "*", "to": "stopped", "event": "stop"})
    actions: dict[str, list[dict[str, str]]] = {
        name: [{"type": "log", "message": f"entered {name}"}] for name in names[: states // 2]
    }
    if long_names:
        command = "cd /srv/app && ./bin/process --verbose --retries 3 --input data/in --state"
        for name in names[: states // 2]:
            actions[name].append({"type": "bash", "command": f"{command} {name} --quiet"})
    return {
        "name": f"Benchmark machine {index}",
        "initial_state": names[0],
        "metadata": {"machine_name": f"bench_machine_{index}"},
        "states": names,
        "events": events,
        "transitions": transitions,
        "actions": actions,
    }


def write_project(root: Path, machines: int, states: int, long_names: bool = False) -> None:
    machine_dir = root / "machines"
    machine_dir.mkdir(parents=True)
    for index in range(machines):
        path = machine_dir / f"machine_{index:03d}.yaml"
        document = machine_document(index, states, long_names)
        path.write_text(yaml.safe_dump(document, sort_keys=False, width=200))
    (root / "pyproject.toml").write_text('[tool.smc-compiler]\noutput = "generated"\n')


def count_handed_to_black(root: Path) -> int:
    """How many of the project's modules are not in black's style as rendered (in-process,
    outside the timed runs)."""
    from smc.compiler import codegen
    from smc.compiler.check import check_paths

    result = check_paths([str(root / "machines")])
    if result.errors:
        raise SystemExit(f"the generated project does not check: {result.errors[0]}")
    return sum(
        not codegen.in_black_style(codegen.render_machine(machine, "machines/machine.yaml"))
        for machine in result.machines
    )


def run_build(root: Path, *extra: str) -> float:
    command = [sys.executable, "-m", "smc", "build", "machines", *extra]
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=root, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"smc build failed:\n{completed.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=100)
    parser.add_argument("--states", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--long-names", action="store_true")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="smc-bench-build-") as tmp:
        root = Path(tmp)
        write_project(root, options.machines, options.states, options.long_names)
        handed_to_black = count_handed_to_black(root)
        cold, noop, one_changed, check = [], [], [], []
        for _ in range(options.repeat):
            shutil.rmtree(root / "generated", ignore_errors=True)
            cold.append(run_build(root))
            noop.append(run_build(root))
            check.append(run_build(root, "--check"))
            edited = root / "machines" / "machine_000.yaml"
            text = edited.read_text()
            edited.write_text(text.replace("entered", "now in", 1))
            one_changed.append(run_build(root))
            edited.write_text(text)
            run_build(root)  # back to the original for the next round
        outputs = sum(1 for path in (root / "generated").rglob("*") if path.is_file())

    rows = [
        ("cold build (empty output dir)", cold, 3.0),
        ("no-op rebuild", noop, 0.3),
        ("one machine changed", one_changed, None),
        ("--check (renders everything)", check, None),
    ]
    shape = "long names" if options.long_names else "short names"
    print(
        f"smc build: {options.machines} machines x {options.states} states ({shape}), "
        f"{outputs} output files, {handed_to_black} module(s) handed to black; "
        f"median of {options.repeat} subprocess runs; Python {sys.version.split()[0]}"
    )
    print()
    print(f"| {'run':<32} | {'median s':>9} | {'min s':>7} | {'max s':>7} | {'target':>8} |")
    print(f"|{'-' * 34}|{'-' * 10}:|{'-' * 8}:|{'-' * 8}:|{'-' * 9}:|")
    for label, times, target in rows:
        median = statistics.median(times)
        goal = "-" if target is None else f"< {target:g} s"
        print(
            f"| {label:<32} | {median:>9.3f} | {min(times):>7.3f} | {max(times):>7.3f} "
            f"| {goal:>8} |"
        )


if __name__ == "__main__":
    main()
