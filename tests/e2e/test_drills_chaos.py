"""The chaos drill (issue 10): 4 workers and a receiver machine, real ``smc run`` processes,
killed (SIGKILL), stopped (SIGTERM), paused past their lease (SIGSTOP … SIGCONT) at random and
restarted as a supervisor would; on PostgreSQL their connections are also cut
(``pg_terminate_backend``). Counted outside the runtime: each job's bash appends its id to
``effects.log``, and each job sends the receiver an event whose handling appends the id to
``events.log``.

``SMC_CHAOS_JOBS`` sets the number of jobs (default 200, about a minute per backend on a
loaded 2-core machine); docs/drills.md has the figures of a 2,000-job run.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from smc.runtime.store import is_postgres_url, open_store
from tests.support.backends import PG_URL
from tests.support.harness import Proc, Runner, wait_until

JOBS = int(os.environ.get("SMC_CHAOS_JOBS", "200"))
WORKERS = 4
LEASE = 2.0

#: Not the shared tests.support.machines.queue_worker on purpose: each job also sends an event
#: (``reporting``) before its complete_job, so the chaos checks events as well as jobs are
#: delivered exactly once.
WORKER = """\
initial_state: waiting
metadata: {machine_name: chaos_worker}
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: processing, to: reporting, event: job_done}
  - {from: reporting, to: finishing, event: event_sent}
  - {from: finishing, to: waiting, event: job_completed}
actions:
  waiting:
    - {type: check_database_queue, job_type: task, wait: 1}
  processing:
    - {type: bash, command: "echo {id} >> effects.log", success: job_done}
  reporting:
    - {type: send_event, target_machine: receiver, event_type: done, payload: {n: "{id}"}}
  finishing:
    - {type: complete_job, success: job_completed}
"""

RECEIVER = """\
initial_state: idle
metadata: {machine_name: receiver}
transitions:
  - {from: idle, to: recording, event: done}
  - {from: recording, to: idle, event: recorded}
actions:
  recording:
    - {type: bash, command: "echo {payload.n} >> events.log", success: recorded}
"""


def _lines(path: Path) -> Counter[str]:
    return Counter(path.read_text().split()) if path.exists() else Counter()


def _tcp_ports(pid: int) -> set[int]:
    """The local TCP ports of ``pid``'s sockets (its PostgreSQL connections)."""
    inodes = set()
    with_fd = Path(f"/proc/{pid}/fd")
    try:
        for fd in with_fd.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return set()
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _cut_connections(pid: int) -> int:
    """``pg_terminate_backend`` on every connection of process ``pid``; how many."""
    ports = _tcp_ports(pid)
    if not ports:
        return 0
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE client_port = ANY(%s) AND client_addr IS NOT NULL",
            (list(ports),),
        ).fetchall()
    return len(rows)


class Fleet:
    """The machines of the drill, restarted like a supervisor would."""

    def __init__(self, runner: Runner, url: str) -> None:
        self.runner = runner
        self.url = url
        self.procs: dict[str, Proc] = {}
        self.disruptions: Counter[str] = Counter()

    def start(self, name: str) -> None:
        config = "receiver.yaml" if name == "receiver" else "worker.yaml"
        proc = self.runner.start(
            "run", config, "--db", self.url, "--machine-name", name, "--lease-seconds", str(LEASE)
        )
        self.procs[name] = proc

    def alive(self, name: str) -> bool:
        return self.procs[name].popen.poll() is None

    def wait_registered(self, name: str) -> None:
        proc = self.procs[name]

        def running() -> bool:
            if proc.popen.poll() is not None:
                pytest.fail(f"{name} exited:\n{proc.output()[-3000:]}")
            with open_store(self.url) as store:
                row = store.get_machine(name)
            return row is not None and row.status == "running" and row.pid == proc.pid

        wait_until(running, 60, lambda: proc.output()[-3000:])

    def disrupt(self, rng: random.Random) -> None:
        name = rng.choice([f"w{index}" for index in range(WORKERS)] + ["receiver"])
        # A process that is still starting (the interpreter, before smc's first line) would die
        # of a signal like any program: disrupt only running machines, as a supervisor sees them.
        self.wait_registered(name)
        proc = self.procs[name]
        kinds = ["kill", "term", "pause"] + (["cut"] * 2 if is_postgres_url(self.url) else [])
        kind = rng.choice(kinds)
        if kind == "kill":
            proc.popen.kill()
            proc.popen.wait(30)
            self.start(name)
        elif kind == "term":
            proc.signal(signal.SIGTERM)
            code = proc.wait(60)
            assert code == 0, f"{name} exited {code} on SIGTERM:\n{proc.output()[-3000:]}"
            self.start(name)
        elif kind == "pause":
            os.kill(proc.pid, signal.SIGSTOP)
            time.sleep(LEASE + 1.0)  # past its lease: its job or event goes to someone else
            os.kill(proc.pid, signal.SIGCONT)
        elif _cut_connections(proc.pid) == 0:
            return  # still starting: nothing cut
        self.disruptions[kind] += 1
        self.disruptions[f"{kind}:{'receiver' if name == 'receiver' else 'worker'}"] += 1


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_chaos_drill_loses_no_job_and_no_event(runner: Runner, store_url: str) -> None:
    (runner.cwd / "worker.yaml").write_text(WORKER, encoding="utf-8")
    (runner.cwd / "receiver.yaml").write_text(RECEIVER, encoding="utf-8")
    url = store_url
    ids = [f"job-{number:05d}" for number in range(JOBS)]
    with open_store(url) as store:
        for job_id in ids[: JOBS // 2]:
            store.add_job("task", job_id=job_id)
    fleet = Fleet(runner, url)
    names = [f"w{index}" for index in range(WORKERS)] + ["receiver"]
    for name in names:
        fleet.start(name)
    for name in names:
        fleet.wait_registered(name)
    with open_store(url) as store:
        for job_id in ids[JOBS // 2 :]:
            store.add_job("task", job_id=job_id)
    rng = random.Random(10)
    started = time.monotonic()
    limit = 120 + JOBS * 0.6

    def counts() -> tuple[dict[str, int], int]:
        with open_store(url) as store:
            jobs = store.queue_counts()
            open_events = sum(
                1
                for event in store.list_events(target="receiver", limit=10 * JOBS)
                if event.status != "done"
            )
        return jobs, open_events

    while True:
        jobs, open_events = counts()
        if jobs["completed"] == JOBS and open_events == 0:
            break
        if time.monotonic() - started > limit:
            pytest.fail(
                f"not done after {limit:.0f}s: {jobs}, {open_events} open events, "
                f"{dict(fleet.disruptions)}\n{fleet.procs['w0'].output()[-3000:]}"
            )
        if jobs["completed"] < JOBS:  # chaos while there is work
            for name in names:
                if not fleet.alive(name):
                    pytest.fail(f"{name} died:\n{fleet.procs[name].output()[-3000:]}")
            fleet.disrupt(rng)
            time.sleep(rng.uniform(0.2, 1.0))
        else:
            time.sleep(0.5)
    elapsed = time.monotonic() - started

    # Every worker is still working: alive, registered running, back in its waiting state
    # (not stuck after a lost lease), and a last batch of jobs is done.
    with open_store(url) as store:
        for job_id in ("last-1", "last-2", "last-3", "last-4"):
            store.add_job("task", job_id=job_id)
    wait_until(lambda: counts()[0]["completed"] == JOBS + 4 and counts()[1] == 0, 120, "last")

    def settled() -> bool:
        with open_store(url) as store:
            rows = {name: store.get_machine(name) for name in names}
        return all(
            row is not None
            and row.status == "running"
            and row.state == ("idle" if name == "receiver" else "waiting")
            for name, row in rows.items()
        )

    wait_until(settled, 30, lambda: str([fleet.procs[n].output()[-2000:] for n in names]))
    for name in names:
        assert fleet.alive(name), fleet.procs[name].output()[-3000:]

    everything = [*ids, "last-1", "last-2", "last-3", "last-4"]
    with open_store(url) as store:
        jobs_rows = store.list_jobs(limit=10 * JOBS)
        events = store.list_events(target="receiver", limit=10 * JOBS)
    assert sorted(job.id for job in jobs_rows) == sorted(everything)
    assert {job.status for job in jobs_rows} == {"completed"}  # 0 jobs lost
    assert {event.status for event in events} == {"done"}
    executed = _lines(runner.cwd / "effects.log")
    handled = _lines(runner.cwd / "events.log")
    sent = Counter(str(event.payload["n"]) for event in events)
    # 0 lost: every job ran and sent its event, every event sent was handled.
    assert set(executed) == set(everything) and set(sent) == set(everything)
    assert all(handled[job_id] >= sent[job_id] for job_id in sent)
    # Duplicates only where at-least-once allows them (docs/queue.md): a job runs again only
    # when a worker holding it was disrupted, an event is handled again only when the
    # receiver was; each disruption repeats at most the one job or event in hand.
    job_repeats = sum(executed.values()) - len(executed)
    event_repeats = sum(handled.values()) - sum(sent.values())
    worker_hits = sum(v for k, v in fleet.disruptions.items() if k.endswith(":worker"))
    receiver_hits = sum(v for k, v in fleet.disruptions.items() if k.endswith(":receiver"))
    assert job_repeats <= worker_hits, (job_repeats, dict(fleet.disruptions))
    assert event_repeats <= receiver_hits, (event_repeats, dict(fleet.disruptions))
    assert sum(sent.values()) - len(sent) <= job_repeats  # extra events come from re-runs
    print(
        f"\nchaos drill ({'postgresql' if is_postgres_url(url) else 'sqlite'}): "
        f"{JOBS} jobs + 4 in {elapsed:.0f}s; "
        f"disruptions {dict(sorted(fleet.disruptions.items()))}; "
        f"jobs lost 0, events lost 0; jobs run twice {job_repeats}, "
        f"events handled twice {event_repeats}, events sent twice "
        f"{sum(sent.values()) - len(sent)}"
    )
    for name in names:
        fleet.procs[name].signal(signal.SIGTERM)
    for name in names:
        assert fleet.procs[name].wait(60) == 0, fleet.procs[name].output()[-3000:]
