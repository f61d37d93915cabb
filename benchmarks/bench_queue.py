"""Job queue and event store figures: claim+complete throughput and event wake-up latency.

    python benchmarks/bench_queue.py [--pg postgresql://postgres@127.0.0.1:5432/test]
                                     [--jobs 10000] [--pg-jobs 4000] [--events 500]

Throughput: N jobs pre-loaded; 1 or 4 worker processes start together, each claiming and
completing until the queue is empty; jobs/s = N / wall time. Every run also checks the oracle
(each job completed once, attempts = 1). Latency: a consumer process waits on its waker
(1 s fallback poll), claims and acks each event; latency = claim time - send time (one host,
one clock). Prints a table; takes well under a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smc.runtime.store import machine_channel, open_store


def _claim_worker(url: str, name: str, ready: Any, go: EventType, done: Any) -> None:
    store = open_store(url)
    ready.put(name)
    go.wait()
    completed = 0
    while (job := store.claim_job(name, lease_seconds=60)) is not None:
        store.complete_job(job.id, claim_token=job.claim_token)
        completed += 1
    store.close()
    done.put(completed)


def throughput(url: str, jobs: int, workers: int) -> float:
    context = multiprocessing.get_context("spawn")
    store = open_store(url)
    for index in range(jobs):
        store.add_job("work", data={"n": index}, priority=random.randint(0, 9))
    ready, done, go = context.Queue(), context.Queue(), context.Event()
    processes = [
        context.Process(target=_claim_worker, args=(url, f"w{index}", ready, go, done))
        for index in range(workers)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=60)
    started = time.perf_counter()
    go.set()
    total = sum(done.get(timeout=300) for _ in processes)
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join()
    completed = store.list_jobs(status="completed", limit=jobs + 1)
    ok = total == jobs == len(completed) and all(job.attempts == 1 for job in completed)
    store.close()
    if not ok:
        raise SystemExit(f"oracle failed on {url}: {total} claimed, {len(completed)} completed")
    return jobs / elapsed


def _event_consumer(url: str, count: int, ready: Any, results: Any) -> None:
    store = open_store(url)
    latencies: list[float] = []
    with store.open_waker([machine_channel("bench")]) as waker:
        ready.put(True)
        while len(latencies) < count:
            for event in store.claim_events("bench"):
                latencies.append(time.time() - event.payload["sent"])
                assert event.claim_token is not None
                store.ack_event(event.id, event.claim_token)
            if len(latencies) < count:
                waker.wait(1.0)
    store.close()
    results.put(latencies)


def event_latency(url: str, count: int) -> list[float]:
    context = multiprocessing.get_context("spawn")
    ready, results = context.Queue(), context.Queue()
    consumer = context.Process(target=_event_consumer, args=(url, count, ready, results))
    consumer.start()
    ready.get(timeout=60)
    store = open_store(url)
    for index in range(count):
        time.sleep(random.uniform(0.001, 0.004))
        store.send_event("bench", "tick", {"n": index, "sent": time.time()})
    latencies: list[float] = results.get(timeout=120)
    consumer.join()
    store.close()
    return latencies


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs per SQLite run")
    parser.add_argument("--pg-jobs", type=int, default=4_000, help="jobs per PostgreSQL run")
    parser.add_argument("--events", type=int, default=500)
    args = parser.parse_args()

    import psycopg

    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="smc-bench-") as directory:
        for workers in (1, 4):
            path = os.path.join(directory, f"tp-{workers}.db")
            rate = throughput(path, args.jobs, workers)
            rows.append((f"claim+complete, SQLite, {workers} proc", f"{rate:,.0f} jobs/s", ""))
        latencies = event_latency(os.path.join(directory, "events.db"), args.events)
        rows.append(
            (
                "send_event -> woken consumer claims, SQLite",
                f"median {statistics.median(latencies) * 1000:.2f} ms",
                f"p99 {_percentile(latencies, 0.99) * 1000:.2f} ms",
            )
        )
    schemas = []
    try:
        for workers in (1, 4):
            schema = f"smc_bench_{uuid.uuid4().hex[:8]}"
            schemas.append(schema)
            rate = throughput(f"{args.pg}?schema={schema}", args.pg_jobs, workers)
            rows.append((f"claim+complete, PostgreSQL, {workers} proc", f"{rate:,.0f} jobs/s", ""))
        schema = f"smc_bench_{uuid.uuid4().hex[:8]}"
        schemas.append(schema)
        latencies = event_latency(f"{args.pg}?schema={schema}", args.events)
        rows.append(
            (
                "send_event -> woken consumer claims, PostgreSQL",
                f"median {statistics.median(latencies) * 1000:.2f} ms",
                f"p99 {_percentile(latencies, 0.99) * 1000:.2f} ms",
            )
        )
    finally:
        with psycopg.connect(args.pg, autocommit=True) as connection:
            for schema in schemas:
                connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    width = max(len(row[0]) for row in rows)
    print(f"smc queue benchmark ({os.cpu_count()} CPUs, Python {sys.version.split()[0]})")
    for name, first, second in rows:
        print(f"  {name.ljust(width)}  {first:>18}  {second}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
