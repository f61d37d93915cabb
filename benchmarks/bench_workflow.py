"""Workflows: planning a large DAG, and no-op tasks end to end through real workers.

1. Planning: a random DAG of ``--plan-tasks`` tasks (default 10,000; each needs up to 3
   earlier tasks) ordered and cut into waves by ``smc.workflow.plan`` — beside the same DAG
   in ``graphlib`` alone (``TopologicalSorter.static_order()``, the floor). Also the whole
   check of that workflow as a file (YAML load with positions, JSON Schema, needs, plan),
   what ``smc check`` and ``smc workflow run`` pay before anything runs. Target: planning
   under 1 s.
2. End to end: ``--tasks`` no-op tasks (default 1,000; independent, so as parallel as the
   workers allow) run by ``--workers`` real ``smc run`` worker processes (default 4; each
   claims a job and completes it, nothing else) on a SQLite file, driven by a real
   ``smc workflow run`` process, timed from its start to its exit. Target: at least 300
   tasks/s. The scheduler's own CPU time (user + system, from the kernel's accounting of the
   process) divided by the tasks is its overhead per task.

Figures are printed, not asserted.

    python benchmarks/bench_workflow.py [--plan-tasks 10000] [--tasks 1000] [--workers 4]
        [--chain]    # --chain: the tasks in one line (each needs the one before), no parallelism
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from graphlib import TopologicalSorter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from smc.workflow.plan import plan_graph  # noqa: E402

WORKER = """
name: No-op worker
initial_state: waiting
metadata: {machine_name: noop}
states: [waiting, completing, stopped]
events: [new_job, no_jobs, job_completed, error, stop]
transitions:
  - {from: waiting, to: completing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: completing, to: waiting, event: job_completed}
  - {from: completing, to: waiting, event: error}
  - {from: "*", to: stopped, event: stop}
actions:
  waiting:
    - {type: check_database_queue}
  completing:
    - {type: complete_job, success: job_completed}
"""


def random_dag(tasks: int, seed: int = 7) -> dict[str, list[str]]:
    rng = random.Random(seed)
    needs: dict[str, list[str]] = {}
    for index in range(tasks):
        count = rng.randint(0, min(3, index))
        needs[f"t{index}"] = [f"t{n}" for n in sorted(rng.sample(range(index), count))]
    return needs


def best_of(repeat: int, work: object) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def bench_planning(tasks: int, repeat: int) -> None:
    needs = random_dag(tasks)
    floor = best_of(repeat, lambda: list(TopologicalSorter(needs).static_order()))
    planned = best_of(repeat, lambda: plan_graph(needs))
    waves = len(plan_graph(needs).waves)
    print(f"planning a random DAG of {tasks:,} tasks ({waves} waves), best of {repeat}:")
    print(f"  graphlib static_order (the floor): {floor * 1000:8.1f} ms")
    print(f"  smc.workflow.plan (waves, ties):   {planned * 1000:8.1f} ms")

    from smc.compiler.check import check_texts

    lines = ["workflow: big", "tasks:"]
    for name, required in needs.items():
        lines.append(f"  {name}: {{job_type: x, needs: [{', '.join(required)}]}}")
    text = "\n".join(lines) + "\n"
    checked = best_of(max(1, repeat // 2), lambda: check_texts([("big.yaml", text)]))
    result = check_texts([("big.yaml", text)])
    assert not result.errors and len(result.workflows) == 1
    print(f"  the whole check of it as a file:   {checked * 1000:8.1f} ms")


def bench_end_to_end(tasks: int, workers: int, chain: bool) -> tuple[float, float]:
    """Run ``tasks`` tasks; print and return (seconds, scheduler CPU seconds)."""
    with tempfile.TemporaryDirectory(prefix="smc-bench-wf-") as tmp:
        work = Path(tmp)
        env = dict(
            os.environ,
            PYTHONPATH=str(REPO),
            SMC_DB=str(work / "smc.db"),
            SMC_CACHE_DIR=str(work / "cache"),
        )
        (work / "noop.yaml").write_text(WORKER)
        lines = ["workflow: noop", "tasks:"]
        for index in range(tasks):
            needs = f", needs: [t{index - 1}]" if chain and index else ""
            lines.append(f"  t{index}: {{job_type: noop{needs}}}")
        (work / "wf.yaml").write_text("\n".join(lines) + "\n")
        smc = [sys.executable, "-m", "smc"]
        procs = [
            subprocess.Popen(
                [*smc, "run", "noop.yaml", "--machine-name", f"noop{n}", "--log-level", "warning"],
                cwd=work,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for n in range(workers)
        ]
        try:
            time.sleep(3.0)  # the workers compile (cached) and register
            start = time.perf_counter()
            scheduler = subprocess.Popen(
                [*smc, "workflow", "run", "wf.yaml", "--run-id", "bench"],
                cwd=work,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            _, status, usage = os.wait4(scheduler.pid, 0)
            elapsed = time.perf_counter() - start
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"the run failed: {scheduler.stderr.read().decode()}")  # type: ignore[union-attr]
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(10)
        cpu = usage.ru_utime + usage.ru_stime
        shape = "in one chain" if chain else "independent"
        print(
            f"{tasks:,} no-op tasks ({shape}) through {workers} smc run workers on SQLite, "
            "end to end (scheduler process start to exit):"
        )
        print(f"  {elapsed:.2f} s, {tasks / elapsed:,.0f} tasks/s")
        print(
            f"  scheduler CPU {cpu:.2f} s (user {usage.ru_utime:.2f}, system "
            f"{usage.ru_stime:.2f}): {cpu / tasks * 1000:.2f} ms per task"
        )
        return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plan-tasks", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--chain", action="store_true")
    args = parser.parse_args()
    bench_planning(args.plan_tasks, args.repeat)
    _, cpu = bench_end_to_end(args.tasks, args.workers, args.chain)
    # The scheduler's fixed cost (interpreter, imports, the check, opening the store) from a
    # run of one task; what is left is its cost per task.
    _, fixed = bench_end_to_end(1, args.workers, args.chain)
    print(
        f"scheduler overhead per task, its fixed cost ({fixed:.2f} s CPU) taken out: "
        f"{(cpu - fixed) / max(args.tasks - 1, 1) * 1000:.2f} ms CPU"
    )


if __name__ == "__main__":
    main()
