"""What the durable history costs a worker's store calls, without the engine (docs/history.md,
"Cost"): a loop of what one no-op worker does per job — claim it, stage three transitions,
complete it — with history on and off alternating, on SQLite (a fresh file per run, a
background checkpoint as a worker's heartbeat runs it) and on PostgreSQL (a fresh schema per
run, dropped after).

    PYTHONPATH=$PWD python3 benchmarks/bench_history_store.py [--pairs 3] [--jobs 3000]
        [--pg postgresql://postgres@127.0.0.1:5432/test | --no-pg]

Prints, per backend, microseconds per job (wall, and this process's CPU) for history on and
off, the median of the pairs. ``bench_runtime.py --history-only`` measures the whole worker
(SQLite only); this loop says how much of that is the store.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from smc.runtime.store import Store, history_entry, open_store
from smc.runtime.store.sqlite import INLINE_CHECKPOINT_EVERY

WORKER = "bench_worker_0"


def per_job(store: Store, jobs: int, history: bool) -> tuple[float, float]:
    """(wall, CPU) microseconds per job of ``jobs`` claim + three transitions + complete."""
    for number in range(jobs):
        store.add_job("task", {"n": number}, job_id=f"job-{number}")
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    for _ in range(jobs):
        job = store.claim_job(WORKER, ["task"])
        if job is None:
            raise RuntimeError("the queue ran dry")
        store.trace_id = job.trace_id
        if history:  # what the engine's monitor feed stages (monitor_feed.py)
            for state, following in (("waiting", "working"), ("working", "done"), ("done", "")):
                store.stage_history(
                    history_entry(
                        "transition",
                        WORKER,
                        ts=time.time(),
                        from_state=state,
                        event="next",
                        to_state=following or "waiting",
                        job_id=job.id,
                        attempt=job.attempts,
                        trace_id=job.trace_id,
                    )
                )
        if not store.complete_job(job.id, job.claim_token):
            raise RuntimeError(f"{job.id} was not completed")
    wall = time.perf_counter() - wall_before
    cpu = time.process_time() - cpu_before
    return wall / jobs * 1e6, cpu / jobs * 1e6


def sqlite_run(jobs: int, history: bool) -> tuple[float, float]:
    directory = Path(tempfile.mkdtemp(prefix="smc-bench-history-"))
    try:
        store = open_store(
            directory / "smc.db", checkpoint_every=INLINE_CHECKPOINT_EVERY, history=history
        )
        store.checkpoint()
        stop = threading.Event()

        def checkpoints() -> None:  # as the worker's heartbeat thread does (heartbeat.py)
            while not stop.wait(0.25):
                store.checkpoint()

        thread = threading.Thread(target=checkpoints, daemon=True)
        thread.start()
        try:
            return per_job(store, jobs, history)
        finally:
            stop.set()
            thread.join()
            store.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def postgres_run(url: str, jobs: int, history: bool) -> tuple[float, float]:
    import psycopg
    from psycopg import sql

    schema = f"smc_bench_history_{uuid.uuid4().hex[:10]}"
    try:
        with open_store(f"{url}?schema={schema}", history=history) as store:
            return per_job(store, jobs, history)
    finally:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )


def compare(label: str, pairs: int, run: Callable[[bool], tuple[float, float]]) -> None:
    on: list[tuple[float, float]] = []
    off: list[tuple[float, float]] = []
    for pair in range(pairs):
        print(f"  {label}: pair {pair + 1}/{pairs}", file=sys.stderr)
        on.append(run(True))
        off.append(run(False))
    for name, kind in (("wall", 0), ("CPU", 1)):
        median_on = statistics.median(sample[kind] for sample in on)
        median_off = statistics.median(sample[kind] for sample in off)
        each = ", ".join(f"{a[kind]:.0f}/{b[kind]:.0f}" for a, b in zip(on, off, strict=True))
        print(
            f"{label:10} {name:4} µs/job, history on / off: {median_on:.0f} / {median_off:.0f} "
            f"(+{(median_on / median_off - 1) * 100:.0f} %; pairs {each})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = parser.parse_args()
    print(f"load average {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    compare("SQLite", args.pairs, lambda history: sqlite_run(args.jobs, history))
    if not args.no_pg:
        compare("PostgreSQL", args.pairs, lambda history: postgres_run(args.pg, args.jobs, history))
    print(f"load average {' '.join(f'{value:.2f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
