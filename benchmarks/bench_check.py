"""How `smc check` scales: machines of 100 to 5,000 states, 5 transitions per state.

Run: python benchmarks/bench_check.py [--repeat N]

Each machine is written to a temporary directory and checked in-process (load, schema,
model, analysis: the best of N runs); the 2,000-state one is also checked as a subprocess,
the way a user runs it (interpreter start-up and imports included). The table shows seconds
and seconds per 1,000 states: a flat last column means linear growth.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from smc.compiler.check import check_paths

SIZES = (100, 1_000, 2_000, 5_000)
TRANSITIONS_PER_STATE = 5
SUBPROCESS_SIZE = 2_000
TARGET_SECONDS = 2.0


def machine_yaml(states: int) -> str:
    """A connected machine: a ring (so every state is reachable), four more edges per state,
    group comments, a wildcard, a timer and an action per state."""
    lines = ["name: bench", "initial_state: s0", "metadata:", "  machine_name: bench", "states:"]
    for index in range(states):
        if index % 100 == 0:
            lines.append(f"  # === BLOCK {index // 100} ===")
        lines.append(f"  - s{index}")
    lines.append("transitions:")
    for index in range(states):
        lines.append(f"  - {{from: s{index}, to: s{(index + 1) % states}, event: next}}")
        for k in range(1, TRANSITIONS_PER_STATE - 1):
            target = (index * 7 + k * 13) % states
            lines.append(f"  - {{from: s{index}, to: s{target}, event: e{k}}}")
        lines.append(f"  - {{from: s{index}, to: s{index}, event: timeout(1.5)}}")
    lines.append('  - {from: "*", to: s0, event: reset}')
    lines.append("actions:")
    for index in range(states):
        lines += [
            f"  s{index}:",
            "    - type: log",
            f"      message: 'in s{index} for {{job_id}}'",
            "    - type: bash",
            f"      command: 'echo {index}'",
            "      success: next",
        ]
    return "\n".join(lines) + "\n"


def time_in_process(path: Path, repeat: int) -> tuple[float, int]:
    best = float("inf")
    transitions = 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = check_paths([str(path)])
        best = min(best, time.perf_counter() - start)
        if result.errors:
            raise SystemExit(f"{path}: unexpected errors: {result.errors[:3]}")
        transitions = len(result.machines[0].transitions)
    return best, transitions


def time_subprocess(path: Path, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "smc", "check", str(path)], check=True, capture_output=True
        )
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (best is kept)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for states in SIZES:
            path = Path(tmp) / f"bench_{states}.yaml"
            path.write_text(machine_yaml(states), encoding="utf-8")
            seconds, transitions = time_in_process(path, args.repeat)
            rows.append(("in-process", states, transitions, seconds))
            if states == SUBPROCESS_SIZE:
                rows.append(("subprocess", states, transitions, time_subprocess(path, args.repeat)))
    print(f"{'how':<11} {'states':>7} {'transitions':>12} {'seconds':>9} {'s / 1k states':>14}")
    for how, states, transitions, seconds in rows:
        print(
            f"{how:<11} {states:>7,} {transitions:>12,} {seconds:>9.3f} "
            f"{seconds / states * 1000:>14.3f}"
        )
    sub = next(s for how, n, _, s in rows if how == "subprocess")
    verdict = "meets" if sub < TARGET_SECONDS else "MISSES"
    print(
        f"\n`smc check` on {SUBPROCESS_SIZE:,} states {verdict} the {TARGET_SECONDS:.0f} s target "
        f"({sub:.2f} s as a subprocess)"
    )
    return 0 if sub < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
