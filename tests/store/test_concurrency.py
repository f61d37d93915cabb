"""Real worker processes against a real database: no job lost, none done twice.

The oracle (queue-design.md §6): each worker appends the job id to an external effect log
*before* completing. Afterwards every job is completed exactly once and the log holds each id
exactly once; jobs of a foreign type stay untouched. Run as a script, this file is the worker.

A lease runs out without waiting for it: the rows are aged
(``tests.support.backends.age_rows``), since the worker processes stamp them with their own,
real, clocks.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support.backends import age_rows

REPO_ROOT = Path(__file__).resolve().parents[2]


def worker_main(argv: list[str]) -> int:
    """``worker URL NAME EFFECT_LOG GO_FILE``: claim and complete until the queue is empty."""
    from smc.runtime.store import open_store

    url, name, effect_log, go_file = argv
    store = open_store(url)
    print("ready", flush=True)
    while not os.path.exists(go_file):  # start together, so the claims really contend
        time.sleep(0.005)
    fd = os.open(effect_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    completed = 0
    while (job := store.claim_job(name, job_types=["work"], lease_seconds=60)) is not None:
        os.write(fd, f"{job.id}\n".encode())  # the external side effect, before completing
        if not store.complete_job(job.id, claim_token=job.claim_token, result={"by": name}):
            print(f"fenced out of {job.id}", file=sys.stderr, flush=True)
            return 1
        completed += 1
    os.close(fd)
    print(f"done {completed}", flush=True)
    return 0


def holder_main(argv: list[str]) -> int:
    """``holder URL``: claim one job with a 1 s lease, say so, then hang until killed."""
    from smc.runtime.store import open_store

    (url,) = argv
    store = open_store(url)
    job = store.claim_job("doomed", lease_seconds=1.0)
    print(f"claimed {job.id if job else ''}", flush=True)
    time.sleep(600)
    return 0


def paused_main(argv: list[str]) -> int:
    """``paused URL``: claim with a 1 s lease, then (after being stopped and resumed, when told
    on stdin) try to heartbeat and complete with the now stale token."""
    from smc.runtime.store import open_store

    (url,) = argv
    store = open_store(url)
    job = store.claim_job("paused", lease_seconds=1.0)
    assert job is not None and job.claim_token is not None
    print(f"claimed {job.id}", flush=True)
    sys.stdin.readline()
    alive = store.heartbeat(job.id, job.claim_token, 30)
    completed = store.complete_job(job.id, claim_token=job.claim_token, result="stale")
    print(f"heartbeat {alive} complete {completed}", flush=True)
    return 0


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


@pytest.mark.slow
def test_four_processes_claim_each_job_exactly_once(store_url: str, tmp_path: Path) -> None:
    from smc.runtime.store import open_store

    jobs, workers = 2000, 4
    store = open_store(store_url)
    for index in range(jobs):
        store.add_job("work", data={"n": index}, job_id=f"job-{index:05d}", priority=index % 10)
    for index in range(100):
        store.add_job("other", job_id=f"other-{index}")
    effect_log = tmp_path / "effects.log"
    go_file = tmp_path / "go"
    processes = [
        _spawn("worker", store_url, f"w{index}", str(effect_log), str(go_file))
        for index in range(workers)
    ]
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    go_file.touch()
    per_worker = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        per_worker.append(int(out.split()[-1]))

    effects = Counter(effect_log.read_text().split())
    expected = {f"job-{index:05d}" for index in range(jobs)}
    assert set(effects) == expected
    assert max(effects.values()) == 1  # no job's effect happened twice
    assert sum(per_worker) == jobs
    counts = store.queue_counts()
    assert counts["completed"] == jobs
    assert counts["pending"] == 100  # the foreign-type jobs, untouched
    completed = store.list_jobs(status="completed", limit=jobs + 1)
    assert len(completed) == jobs
    assert {job.attempts for job in completed} == {1}
    assert all(job.result is not None and job.result["by"] == job.claimed_by for job in completed)
    assert all(job.attempts == 0 for job in store.list_jobs(status="pending", limit=200))
    store.close()


def test_killed_holder_job_is_reclaimed_after_its_lease(store_url: str, tmp_path: Path) -> None:
    from smc.runtime.store import Backoff, open_store

    store = open_store(store_url, backoff=Backoff(base=0.01, cap=0.05), reap_interval=0.0)
    store.add_job("work", job_id="in-flight", priority=1)
    store.add_job("work", job_id="queued", priority=5)
    holder = _spawn("holder", store_url)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "claimed in-flight"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    assert holder.returncode == -signal.SIGKILL

    stuck = store.get_job("in-flight")
    assert stuck is not None and stuck.status == "processing" and stuck.claimed_by == "doomed"

    effect_log = tmp_path / "effects.log"
    go_file = tmp_path / "go"
    go_file.touch()
    # The surviving worker finds the queued job at once, then the reaped one after the lease.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        worker = _spawn("worker", store_url, "survivor", str(effect_log), str(go_file))
        _out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        job = store.get_job("in-flight")
        assert job is not None
        if job.status == "completed":
            break
        # Past the 1 s lease, then past the survivor's first backoff (2 s ± 10 %).
        age_rows(store, 2.5)
    effects = Counter(effect_log.read_text().split())
    assert effects == Counter({"in-flight": 1, "queued": 1})
    recovered = store.get_job("in-flight")
    assert recovered is not None
    assert recovered.status == "completed" and recovered.attempts == 2
    assert recovered.claimed_by == "survivor"
    assert store.queue_counts()["completed"] == 2
    store.close()


def test_a_paused_holder_is_fenced_out_after_its_lease(store_url: str) -> None:
    from smc.runtime.store import Backoff, open_store

    store = open_store(store_url, backoff=Backoff(base=0.01, cap=0.05), reap_interval=0.0)
    store.add_job("work", job_id="long")
    paused = _spawn("paused", store_url)
    assert paused.stdout is not None and paused.stdin is not None
    assert paused.stdout.readline().strip() == "claimed long"
    os.kill(paused.pid, signal.SIGSTOP)  # a GC pause, a blocked loop, a suspended laptop …
    try:
        job = None
        deadline = time.monotonic() + 15
        while job is None and time.monotonic() < deadline:
            age_rows(store, 0.1)  # 0.1 s passes (the holder's lease is 1 s)
            job = store.claim_job("successor")
        assert job is not None and job.id == "long" and job.attempts == 2
        assert store.complete_job("long", claim_token=job.claim_token, result="fresh")
    finally:
        os.kill(paused.pid, signal.SIGCONT)
    out, err = paused.communicate("go\n", timeout=60)
    assert paused.returncode == 0, err
    assert out.strip() == "heartbeat False complete False"
    final = store.get_job("long")
    assert final is not None and (final.status, final.result) == ("completed", "fresh")
    store.close()


def _forked_child(results: Any) -> None:
    # The inherited store object is used as is, as a forking runtime would.
    job = _INHERITED_STORE[0].claim_job("child")
    assert job is not None
    results.put(_INHERITED_STORE[0].complete_job(job.id, claim_token=job.claim_token))


_INHERITED_STORE: list[Any] = []


def test_a_store_survives_fork_in_parent_and_child(store_url: str) -> None:
    from smc.runtime.store import open_store

    store = open_store(store_url)
    _INHERITED_STORE[:] = [store]
    store.add_job("work", job_id="for-child")
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_forked_child, args=(results,))
    child.start()
    assert results.get(timeout=60) is True
    child.join(timeout=60)
    assert child.exitcode == 0
    # The child opened its own connection; the parent's still works.
    done = store.get_job("for-child")
    assert done is not None and done.status == "completed" and done.claimed_by == "child"
    store.add_job("work", job_id="after-fork")
    assert store.queue_counts()["pending"] == 1
    store.close()
    _INHERITED_STORE.clear()


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    sys.exit({"worker": worker_main, "holder": holder_main, "paused": paused_main}[command](rest))
