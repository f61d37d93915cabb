"""How long the diagrams take in a build: 100 generated machines of 50 states each.

Builds the models through the real checker (from generated YAML files), then times
``machine_diagrams`` for every machine plus ``system_diagrams`` for all of them: the text
outputs ``smc build`` writes (Mermaid, Markdown, DOT), without SVG/PNG rendering.
Target: under 1 s. Run: ``python benchmarks/bench_diagrams.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from smc.compiler.check import check_paths
from smc.compiler.diagrams import machine_diagrams, system_diagrams

MACHINES = 100
STATES = 50
GROUPS = 5
ROUNDS = 5


def machine_yaml(index: int) -> str:
    """A machine with groups, a chain of events, self-loops, timeouts, a wildcard and
    actions (some sending to the next machine)."""
    lines = [
        f"name: Machine {index}",
        f"metadata: {{machine_name: machine_{index:03d}}}",
        "initial_state: s00",
        "states:",
    ]
    per_group = STATES // GROUPS
    for state in range(STATES):
        if state % per_group == 0:
            lines.append(f"  # === PHASE {state // per_group} ===")
        lines.append(f"  - s{state:02d}")
    lines.append("transitions:")
    for state in range(STATES - 1):
        lines.append(f"  - {{from: s{state:02d}, to: s{state + 1:02d}, event: next_{state}}}")
        if state % 3 == 0:
            lines.append(f"  - {{from: s{state:02d}, to: s{state:02d}, event: again}}")
        if state % 4 == 0:
            lines.append(f"  - {{from: s{state:02d}, to: s00, event: timeout({state + 1})}}")
    lines.append(f'  - {{from: "*", to: s{STATES - 1:02d}, event: stop}}')
    lines.append("actions:")
    for state in range(0, STATES - 1, 2):
        lines.append(f"  s{state:02d}:")
        lines.append(f"    - {{type: bash, command: 'step {state}', success: next_{state}}}")
        if state % 10 == 0:
            target = f"machine_{(index + 1) % MACHINES:03d}"
            lines.append(f"    - {{type: send_event, target_machine: {target}, event_type: stop}}")
    return "\n".join(lines) + "\n"


def main() -> int:
    # No options: --help says what it measures rather than running it.
    argparse.ArgumentParser(description=__doc__).parse_args()
    with tempfile.TemporaryDirectory(prefix="smc-bench-diagrams-") as tmp:
        for index in range(MACHINES):
            Path(tmp, f"machine_{index:03d}.yaml").write_text(machine_yaml(index), "utf-8")
        result = check_paths([tmp])
    if result.errors:
        print(result.errors[:3], file=sys.stderr)
        return 1
    machines = result.machines
    assert len(machines) == MACHINES and all(len(m.states) == STATES for m in machines)
    assert all(len(m.groups) == GROUPS for m in machines)

    timings = []
    files = size = 0
    for _ in range(ROUNDS):
        start = time.perf_counter()
        outputs: dict[str, str] = {}
        for machine in machines:
            outputs.update(machine_diagrams(machine))
        outputs.update(system_diagrams(machines))
        timings.append(time.perf_counter() - start)
        files, size = len(outputs), sum(len(text) for text in outputs.values())
    # The first round starts with empty caches (escaped names are memoised), as a build does.
    cold, best, median = timings[0], min(timings), statistics.median(timings)
    print(
        f"diagrams for {MACHINES} machines x {STATES} states ({GROUPS} groups each), "
        f"no SVG: {files} files, {size / 1e6:.1f} MB of text"
    )
    print(
        f"  first (cold) {cold:.3f} s; median {median:.3f} s, best {best:.3f} s over "
        f"{ROUNDS} rounds (target < 1 s)"
    )
    return 0 if cold < 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
