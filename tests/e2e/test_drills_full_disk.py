"""Failure drill: the database fills up under a running ``smc run`` worker.

A full disk is simulated with the store's ``?max_pages=N`` URL option (``PRAGMA
max_page_count`` on the worker's connections): every write that would grow the file fails with
``SQLITE_FULL``, writes that fit in existing pages still work — as on a real full disk, without
root or a tiny mount. Each job's work grows the database (a ~1.5 KB event row for a collector
machine), then appends the job's id to an external effect log. The drill proves:

- the fault gives a clear one-line ERROR naming the file, and no crash loop: the worker keeps
  running, idles (next to no CPU), marks nothing completed or failed for good;
- once the limit is gone (a worker started on the database without it), every job completes,
  each completed job has its report and its effect, and only the job in flight at the fault may
  have run twice (at-least-once).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

from tests.support.harness import Runner, wait_until

JOBS = 60
#: Pages the worker may add to the file: room for about a dozen jobs' reports.
HEADROOM_PAGES = 6

#: Not the shared tests.support.machines.queue_worker on purpose: each job first sends a
#: ~1.5 KB report event (``reporting``), which is what grows the file until it is full.
WORKER = """\
name: Full-disk drill worker
initial_state: waiting
metadata:
  machine_name: drill_full
states: [waiting, reporting, working]
events: [new_job, no_jobs, event_sent, job_done, error]
transitions:
  - {{from: waiting, to: reporting, event: new_job}}
  - {{from: waiting, to: waiting, event: no_jobs}}
  - {{from: reporting, to: working, event: event_sent}}
  - {{from: reporting, to: waiting, event: error}}
  - {{from: working, to: waiting, event: job_done}}
  - {{from: working, to: waiting, event: error}}
actions:
  waiting:
    - {{type: check_database_queue, job_type: task, wait: 1, poll_interval: 0.2}}
  reporting:
    - type: send_event
      target_machine: drill_collector
      event_type: job_report
      payload: {{job: "{{id}}", blob: "{blob}"}}
  working:
    - {{type: bash, command: "echo {{id}} >> effects.log"}}
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _full_disk_errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if "database or disk is full" in line]


def test_database_fills_up_mid_run_then_every_job_completes(runner: Runner) -> None:
    config = runner.cwd / "worker.yaml"
    config.write_text(WORKER.format(blob="x" * 1500), encoding="utf-8")
    with runner.store() as store:
        ids = [store.add_job("task", {"n": n}, job_id=f"job-{n:02d}").id for n in range(JOBS)]
    with contextlib.closing(sqlite3.connect(runner.db)) as connection:
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
    capped = f"sqlite://{runner.db}?max_pages={pages + HEADROOM_PAGES}"
    worker = runner.start("run", str(config), "--db", capped, "--lease-seconds", "2")

    # The fault: one clear line, naming the file and the cause.
    wait_until(lambda: _full_disk_errors(worker.output()), 20, lambda: worker.output())
    first = _full_disk_errors(worker.output())[0]
    assert re.search(
        rf" ERROR +\[drill_full\] cannot [a-z_ ]+: cannot [a-z ]+ {re.escape(str(runner.db))}: "
        r"database or disk is full \(will retry\)$",
        first,
    ), first

    # No crash loop: it keeps running, idle, and nothing moves while the disk is full.
    counts_at_fault = runner.job_statuses()
    cpu_before = _cpu_seconds(worker.pid)
    time.sleep(2.0)
    assert worker.popen.poll() is None, worker.output()
    assert _cpu_seconds(worker.pid) - cpu_before < 0.5  # polls every 0.2 s, does not spin
    statuses = runner.job_statuses()
    assert statuses == counts_at_fault  # no job burns its attempts on the fault
    tally = Counter(statuses.values())
    assert 0 < tally["completed"] < JOBS, tally  # it filled up mid-run
    assert tally["failed"] == 0 and tally["processing"] <= 1, tally
    assert len(_full_disk_errors(worker.output())) <= 2  # loop + heartbeat, once each

    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0, worker.output()
    assert "Traceback" not in worker.output()

    # The limit is gone: a worker on the same database without it completes every job.
    second = runner.start("run", str(config), "--lease-seconds", "2")
    wait_until(
        lambda: set(runner.job_statuses().values()) == {"completed"},
        20,
        lambda: f"{Counter(runner.job_statuses().values())}\n{second.output()}",
    )
    assert "Traceback" not in second.output()
    ran = Counter((runner.cwd / "effects.log").read_text().split())
    with runner.store() as store:
        reports = Counter(
            e.payload["job"] for e in store.list_events(target="drill_collector", limit=1000)
        )
        jobs = {job.id: job for job in store.list_jobs(limit=JOBS + 1)}
    assert set(ran) == set(ids) and set(reports) == set(ids)  # every job did its work
    assert max(ran.values()) <= 2 and sum(ran.values()) <= JOBS + 1, ran
    assert max(reports.values()) <= 2 and sum(reports.values()) <= JOBS + 1, reports
    assert sum(1 for job in jobs.values() if job.attempts > 1) <= 1
