"""The web monitor under load: latency from a transition to the browsers, and what serving
them costs the workers.

    python benchmarks/bench_ui.py [--machines 50] [--rate 2000] [--clients 5] [--jobs 5000]
        [--rounds 3] [--seconds 10] [--clients-nice 19] [--feed auto|history|sockets]
        [--ui-nice N] [--postgres URL] [--browser] [--keep]

Everything is real: ``--machines`` ``smc run`` processes of a two-state ``ticker`` template
whose ``timeout(N)`` transitions together make ``--rate`` transitions a second (N is
``--machines / --rate``, shortened once, to a whole millisecond, by the time each transition
takes beyond its timer when a first 3 s window falls short by more than 1 %), one
``smc run`` no-op job worker (``bench_runtime.py``'s, ``set_context``), one SQLite file (or,
with ``--postgres URL``, a fresh schema on that server, dropped afterwards), ``smc ui --feed
FEED`` when a condition wants it, and ``--clients`` server-sent-event clients standing in
for browsers: ``httpx2`` streams in threads of a process of their own (this script, run with
``--as-clients``), each parsing every batch as the page does. ``--feed``: where the server's
live feed comes from (``auto``, the default: the store's history; ``sockets``: the machines'
monitor sockets).

1. **What serving costs the workers**: ``--jobs`` jobs are released at once to the idle
   worker, under three conditions: without the UI, with ``smc ui`` running and no client,
   and with ``smc ui`` and its clients connected. Each condition gets ``--rounds`` batches,
   the conditions taking turns in a different order each round (the load drifts as the
   tickers run: a fixed order would charge the drift to one condition). Per batch: jobs/s =
   jobs / (last completion - first claim), from the job rows, and the worker's CPU time per
   job (user + system, ``/proc``); each figure is the median of the batches, every batch's
   jobs/s shown too (51 busy processes on 2 cores: one batch's jobs/s moves by 20-30 % from
   the next with nothing changed). During these batches the clients run at niceness
   ``--clients-nice`` (19 by default: browsers run on their users' machines, not on the one
   that runs the workers, so they should take none of its CPU; ``0`` puts them in
   competition with the workers, as browsers on the same host would be). Before each
   batch, 2 s with no job running measure the machines themselves under that condition:
   their transitions a second (history rows) and their CPU per transition.
2. **Latency**: with ``smc ui`` running, the clients connect at normal priority and, for
   ``--seconds`` seconds, record for every transition they receive its arrival time minus
   the record's ``ts`` (stamped by the machine when it made the transition; with the history
   feed that includes the wait for the machine's next write to commit the row, and for the
   server's next read): p50/p99/max over all clients. Also the transitions per second each
   client received, the CPU the ``smc ui`` process and the clients used, and the load average
   before and after. ``--browser`` also opens the page in Chromium for this window and
   reports the latency to the page's script (``window.smcProbe``) and its resyncs.

The machines and the clients share the host's clock, so the latency is wall-clock exact. On 2
cores shared with 50 machine processes, the clients' own parsing is part of the latency (as a
browser's is part of what a user sees).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from figures import median_interval  # noqa: E402

from smc.runtime.store import JOBS_CHANNEL, open_store  # noqa: E402

TICKER = """\
name: Ticker
description: Two states, each left after {period} s; started many times (template).
template: true
initial_state: tick
metadata:
  machine_name: ticker
states: [tick, tock]
transitions:
  - {{from: tick, to: tock, event: timeout({period})}}
  - {{from: tock, to: tick, event: timeout({period})}}
"""

WORKER = """\
name: Bench worker
initial_state: waiting
metadata:
  machine_name: bench_worker
states: [waiting, processing, finishing]
transitions:
  - {from: waiting, to: processing, event: new_job}
  - {from: waiting, to: waiting, event: no_jobs}
  - {from: processing, to: finishing, event: job_done}
  - {from: processing, to: waiting, event: error}
  - {from: finishing, to: waiting, event: job_completed}
  # A completion that fails (the job no longer this worker's) goes back to work instead of
  # waiting for ever (SMC027); the batch then waits for the job's lease, and says so.
  - {from: finishing, to: waiting, event: error}
actions:
  waiting:
    - type: check_database_queue
      job_type: task
  processing:
    - type: set_context
      key: last_job
      value: "{id}"
      success: job_done
  finishing:
    - type: complete_job
      success: job_completed
"""


def smc(*args: str) -> list[str]:
    return [sys.executable, "-m", "smc", *args]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Client:
    """One stream reader: latencies of the transitions it receives while ``measuring``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self.transitions = 0
        self.measuring = threading.Event()
        self.stop = threading.Event()
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with httpx2.stream("GET", self.url, timeout=None) as response:
            self.connected.set()
            for line in response.iter_lines():
                if self.stop.is_set():
                    return
                if not line.startswith("data: "):
                    continue
                received = time.time()
                for record in json.loads(line[6:]):
                    if record.get("kind") != "transition" or not self.measuring.is_set():
                        continue
                    self.transitions += 1
                    self.latencies.append(received - float(record["ts"]))


PROBE = """() => {
  window.smcLatencies = []; window.smcResyncs = 0;
  window.smcProbe = (r) => {
    if (r.kind === "ui_resync") window.smcResyncs += 1;
    else if (r.kind === "transition") window.smcLatencies.push(Date.now() / 1000 - r.ts);
  };
}"""


class BrowserPage:
    """The page in Chromium, with the script's measuring hook set."""

    def __init__(self, base: str) -> None:
        from playwright.sync_api import sync_playwright

        chromium = shutil.which("chromium")
        if chromium is None:
            raise RuntimeError("--browser needs Debian's chromium")
        self._playwright = sync_playwright().start()
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        self._browser = self._playwright.chromium.launch(executable_path=chromium, args=args)
        self.page = self._browser.new_page(viewport={"width": 1440, "height": 1000})
        self.page.goto(base + "/")
        self.page.wait_for_selector("#connection[data-state=live]")
        self.page.evaluate(PROBE)

    def finish(self) -> dict[str, float]:
        latencies = sorted(self.page.evaluate("window.smcLatencies"))
        resyncs = self.page.evaluate("window.smcResyncs")
        self._browser.close()
        self._playwright.stop()
        if not latencies:
            raise RuntimeError("the page received no transition")
        return {
            "count": len(latencies),
            "p50": 1000 * percentile(latencies, 0.5),
            "p99": 1000 * percentile(latencies, 0.99),
            "resyncs": resyncs,
        }


def open_page(base: str) -> BrowserPage:
    return BrowserPage(base)


def job_throughput(
    database: str, jobs: int, tag: str, worker_pid: int, watched: Sequence[int] = ()
) -> tuple[float, float, float]:
    """Release ``jobs`` jobs at once to the (idle) worker: (jobs/s from the job rows, the
    worker's CPU microseconds per job, the CPU the ``watched`` processes used meanwhile, in
    % of one core). CPU per job hardly moves when other processes load the machine; jobs/s
    does."""
    cpu_before = cpu_seconds(worker_pid)
    with open_store(database) as store:
        release_at = time.time() + 1.0 + jobs / 5000
        for number in range(jobs):
            store.add_job("task", {"n": number}, job_id=f"{tag}-{number}", run_after=release_at)
        time.sleep(max(release_at - time.time(), 0.0) + 0.01)
        watched_before = sum(cpu_seconds(pid) for pid in watched)
        released = time.monotonic()
        store.notify(JOBS_CHANNEL)
        ids = {f"{tag}-{number}" for number in range(jobs)}

        def finished() -> bool:
            # Two index seeks: counting every job by status, 20 times a second, would cost
            # more with every batch (the table keeps them all) and drift the later batches.
            return not store.list_jobs("pending", limit=1) and not store.list_jobs(
                "processing", limit=1
            )

        try:
            wait_until(finished, 60 + jobs / 20, f"{jobs} jobs")
        except RuntimeError:
            stuck = store.list_jobs("pending", limit=3) + store.list_jobs("processing", limit=3)
            machines = [(m.name, m.state, m.status) for m in store.list_machines()]
            print(f"jobs not finished: {stuck}\nmachines: {machines}", file=sys.stderr)
            raise
        watched_share = (sum(cpu_seconds(pid) for pid in watched) - watched_before) / (
            time.monotonic() - released
        )
        done = [job for job in store.list_jobs("completed", limit=10 * jobs) if job.id in ids]
    if len(done) != jobs:
        raise RuntimeError(f"{len(done)} of {jobs} jobs completed")
    cpu_used = cpu_seconds(worker_pid) - cpu_before
    first = min(job.started_at or float("inf") for job in done)
    last = max(job.finished_at or 0.0 for job in done)
    return jobs / (last - first), cpu_used / jobs * 1e6, 100 * watched_share


def machines_window(database: str, seconds: float, pids: Sequence[int]) -> tuple[float, float]:
    """The machines' own throughput while no job runs: history rows a second over ``seconds``
    (the tickers' transitions: the idle job worker writes none) and the CPU microseconds the
    ``pids`` (the tickers) spent per row."""
    with open_store(database) as store:
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        first, started = store.last_history_id(), time.monotonic()
        time.sleep(seconds)
        last, elapsed = store.last_history_id(), time.monotonic() - started
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
    rows = max(last - first, 1)
    return rows / elapsed, cpu / rows * 1e6


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@contextlib.contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        stop_processes(started)


def stop_processes(started: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def serve_clients(url: str, count: int) -> None:
    """The clients' process (``--as-clients URL``): ``count`` stream readers; prints
    ``connected`` once all are, measures from the first line read on stdin to the end of its
    input (none when the input ends first), then prints one JSON line: every latency, the
    transitions each received, the seconds measured and this process's CPU seconds in that
    time."""
    clients = [Client(url) for _ in range(count)]
    for client in clients:
        if not client.connected.wait(10):
            raise RuntimeError("a client could not connect")
    print("connected", flush=True)
    sys.stdin.readline()
    cpu_before = time.process_time()
    started = time.monotonic()
    for client in clients:
        client.measuring.set()
    sys.stdin.readline()
    for client in clients:
        client.measuring.clear()
        client.stop.set()
    elapsed = time.monotonic() - started
    figures = {
        "latencies": [value for client in clients for value in client.latencies],
        "transitions": [client.transitions for client in clients],
        "seconds": elapsed,
        "cpu": time.process_time() - cpu_before,
    }
    print(json.dumps(figures), flush=True)


class Clients:
    """The stream clients in a process of their own (``serve_clients``), standing in for
    browsers; ``nice`` their scheduling priority (19: they only get the CPU the rest leaves,
    as browsers on other machines take none from these)."""

    def __init__(self, url: str, count: int, nice: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--as-clients", url, "--clients", str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._stdin, self._stdout = self.process.stdin, self.process.stdout
        if self._stdout.readline().strip() != "connected":
            self.process.kill()
            raise RuntimeError("the clients did not connect")

    def measure(self) -> None:
        self._stdin.write("go\n")
        self._stdin.flush()

    def finish(self) -> dict[str, Any]:
        """Stop measuring and disconnect: the figures ``serve_clients`` printed."""
        self._stdin.close()  # the end of its input: it stops measuring, if it had started
        line = self._stdout.readline()
        self.process.wait(30)
        figures: dict[str, Any] = json.loads(line)
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--machines", type=int, default=50)
    parser.add_argument("--rate", type=float, default=2000.0, help="transitions/s in total")
    parser.add_argument("--clients", type=int, default=5)
    # 5,000 jobs, about 10 s a batch here: a longer batch averages over more of the tickers'
    # swings (batches of 1,500, 3 s, moved by 30-60 % from one to the next with nothing
    # changed; docs/monitor.md, "Scale").
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="job batches per condition")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--clients-nice",
        type=int,
        default=19,
        metavar="N",
        help="the clients' niceness while the job batches run (19, the default: browsers "
        "elsewhere; 0: browsers on this machine, competing with the machines for its CPU)",
    )
    parser.add_argument(
        "--ui-nice",
        type=int,
        default=None,
        metavar="N",
        help="smc ui --nice N (default: smc ui's own default, 10; 0: the priority of the "
        "machines)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    parser.add_argument(
        "--feed",
        choices=("auto", "history", "sockets"),
        default="auto",
        help="smc ui --feed: the store's history (auto, the default) or the monitor sockets",
    )
    parser.add_argument(
        "--postgres",
        default=None,
        metavar="URL",
        help="run on this PostgreSQL server (a fresh schema, dropped afterwards), not SQLite",
    )
    parser.add_argument(
        "--browser",
        action="store_true",
        help="also open the page in Chromium (Playwright, Debian's chromium) during the "
        "latency window: its latency to the page's script, and whether it had to resync",
    )
    parser.add_argument("--as-clients", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.as_clients is not None:
        serve_clients(args.as_clients, args.clients)
        return

    directory = Path(tempfile.mkdtemp(prefix="smc-bench-ui-"))
    period = round(args.machines / args.rate, 4)
    (directory / "worker.yaml").write_text(WORKER)
    schema = None
    if args.postgres is not None:
        schema = f"smc_bench_ui_{uuid.uuid4().hex[:10]}"
        database = f"{args.postgres}{'&' if '?' in args.postgres else '?'}schema={schema}"
    else:
        database = str(directory / "smc.db")
    env = dict(os.environ, SMC_CACHE_DIR=str(directory / "cache"))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    open_store(database).close()
    log = (directory / "processes.log").open("wb")
    load_before = os.getloadavg()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    conditions = (
        "without the UI",
        "smc ui running, no client",
        f"smc ui and {args.clients} clients",
    )
    batches: dict[str, list[tuple[float, float, float]]] = {
        condition: [] for condition in conditions
    }
    windows: dict[str, list[tuple[float, float]]] = {condition: [] for condition in conditions}

    def start(*command: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            smc(*command), cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def start_ui(running: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        nice = () if args.ui_nice is None else ("--nice", str(args.ui_nice))
        ui = start("ui", "--db", database, "--port", str(port), "--feed", args.feed, *nice)
        running.append(ui)

        def serving() -> bool:
            try:
                return httpx2.get(f"{base}/api/state", timeout=2).status_code == 200
            except httpx2.TransportError:
                return False

        wait_until(serving, 120, "smc ui")  # a loaded host (PostgreSQL, 50 machines) is slow
        time.sleep(1.0)
        return ui

    def stop_ui(running: list[subprocess.Popen[bytes]], ui: subprocess.Popen[bytes]) -> None:
        ui.send_signal(signal.SIGTERM)
        ui.wait(30)
        running.remove(ui)

    def start_tickers(period: float) -> list[subprocess.Popen[bytes]]:
        """The ``--machines`` tickers, each timer ``period`` s, running once this returns."""
        (directory / "ticker.yaml").write_text(TICKER.format(period=period))
        command = ("run", "ticker.yaml", "--db", database, "--machine-name")
        # Compile once, then start the rest (they find the module in the shared cache).
        tickers = [start(*command, "ticker-0")]
        with open_store(database) as store:

            def running_tickers() -> int:
                return sum(
                    m.status == "running" and m.name.startswith("ticker-")
                    for m in store.list_machines()
                )

            wait_until(lambda: running_tickers() == 1, 60, "the first ticker")
            tickers += [start(*command, f"ticker-{index}") for index in range(1, args.machines)]
            wait_until(lambda: running_tickers() == args.machines, 120, "every ticker")
        time.sleep(2.0)  # let the start-up settle
        return tickers

    try:
        with processes() as running:
            running.append(start("run", "worker.yaml", "--db", database))
            tickers = start_tickers(period)
            running.extend(tickers)
            # A timer runs from the state's entry, and each transition takes its own time
            # besides (more with 51 processes on 2 cores), so the tickers fall short of the
            # rate their period names (1,900-1,960 a second for 2,000 on the machines so
            # far). Measured once; if short, they start again with the period shortened by
            # that time, to a whole millisecond below (the event loop's waits are in whole
            # milliseconds: 24.5 ms ran as 25).
            achieved, _ = machines_window(database, 3.0, [ticker.pid for ticker in tickers])
            calibration = f"{achieved:.0f} transitions/s at period {period} s"
            if achieved < 0.99 * args.rate:
                slack = args.machines / achieved - period
                period = max(math.floor((args.machines / args.rate - slack) * 1000), 1) / 1000
                stop_processes(tickers)
                del running[1:]
                tickers = start_tickers(period)
                running.extend(tickers)
            with open_store(database) as store:
                wait_until(
                    lambda: any(
                        m.name == "bench_worker" and m.status == "running"
                        for m in store.list_machines()
                    ),
                    60,
                    "the job worker",
                )
            worker_pid = running[0].pid

            # 1. The job batches, the three conditions in a different order each round (the
            # load drifts as the tickers run: a fixed order would charge the drift to one).
            ui: subprocess.Popen[bytes] | None = None
            for round_number in range(args.rounds):
                shift = round_number % len(conditions)
                for condition in conditions[shift:] + conditions[:shift]:
                    wanted = condition != conditions[0]
                    if wanted and ui is None:
                        ui = start_ui(running)
                    elif not wanted and ui is not None:
                        stop_ui(running, ui)
                        ui = None
                    clients = None
                    if condition == conditions[2]:
                        clients = Clients(f"{base}/api/stream", args.clients, args.clients_nice)
                        time.sleep(1.0)
                    ticker_pids = [ticker.pid for ticker in tickers]
                    windows[condition].append(machines_window(database, 2.0, ticker_pids))
                    tag = f"r{round_number}c{conditions.index(condition)}-"
                    watched = [
                        process.pid for process in (ui, clients and clients.process) if process
                    ]
                    batches[condition].append(
                        job_throughput(database, args.jobs, tag, worker_pid, watched)
                    )
                    if clients is not None:
                        clients.finish()

            # 2. The latency window: the tickers' transitions only, the clients at the
            # priority of everything else, and the page in Chromium if asked.
            if ui is None:
                ui = start_ui(running)
            clients = Clients(f"{base}/api/stream", args.clients, 0)
            time.sleep(1.0)
            page = open_page(base) if args.browser else None
            ui_cpu_before = cpu_seconds(ui.pid)
            started = time.monotonic()
            clients.measure()
            time.sleep(args.seconds)
            figures = clients.finish()
            page_figures = page.finish() if page is not None else None
            elapsed = time.monotonic() - started
            ui_cpu = cpu_seconds(ui.pid) - ui_cpu_before
            load_after = os.getloadavg()
    except BaseException:
        # Keep what tells why (the processes' log, the database) for a run that failed.
        args.keep = True
        print(f"the run failed: its directory is kept, {directory}", file=sys.stderr)
        raise
    finally:
        log.close()
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
        if schema is not None and args.postgres is not None:
            import psycopg

            with psycopg.connect(args.postgres, autocommit=True) as connection:
                connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    latencies: list[float] = figures["latencies"]
    if not latencies:
        raise RuntimeError("the clients received no transition")
    rates = [count / figures["seconds"] for count in figures["transitions"]]
    backend = "SQLite" if args.postgres is None else "PostgreSQL"
    print(
        f"machines {args.machines} tickers (period {period} s; first {calibration}) + 1 job "
        f"worker, {backend}, "
        f"smc ui --feed {args.feed}" + ("" if args.ui_nice is None else f" --nice {args.ui_nice}")
    )
    print(
        "load average (1, 5, 15 min): before "
        + " ".join(f"{value:.2f}" for value in load_before)
        + ", after "
        + " ".join(f"{value:.2f}" for value in load_after)
    )
    print(
        f"latency window ({elapsed:.1f} s, the tickers only, {args.clients} clients in a "
        f"process of their own): transitions/s received per client min {min(rates):.0f} "
        f"mean {statistics.mean(rates):.0f}"
    )
    print(
        "latency transition -> client: "
        f"p50 {1000 * percentile(latencies, 0.5):.1f} ms, "
        f"p99 {1000 * percentile(latencies, 0.99):.1f} ms, "
        f"max {1000 * max(latencies):.1f} ms over {len(latencies)} receipts"
    )
    print(
        f"CPU: smc ui {100 * ui_cpu / elapsed:.1f} % of one core, the {args.clients} clients "
        f"{100 * figures['cpu'] / figures['seconds']:.1f} %"
    )

    def change(value: float, base: float) -> str:
        return f"{100 * (value - base) / base:+.1f} %"

    if page_figures is not None:
        print(
            f"Chromium page: {page_figures['count'] / elapsed:.0f} transitions/s, latency to "
            f"its script p50 {page_figures['p50']:.1f} ms, p99 {page_figures['p99']:.1f} ms; "
            f"resyncs {page_figures['resyncs']:.0f}"
        )
    print(
        f"job worker ({args.jobs} no-op jobs at once, median of {args.rounds} batches, the "
        f"conditions taking turns; clients at nice {args.clients_nice}):"
    )
    print(
        f"  {'':<30} {'jobs/s':>16}  {'CPU us/job':>17}  {'UI+clients CPU':>14}"
        "  each batch's jobs/s"
    )
    medians = {
        condition: (
            statistics.median(rate for rate, _, _ in figures_of),
            statistics.median(cpu for _, cpu, _ in figures_of),
            statistics.median(share for _, _, share in figures_of),
        )
        for condition, figures_of in batches.items()
    }
    base_rate, base_cpu, _ = medians[conditions[0]]
    for condition in conditions:
        rate, cpu, share = medians[condition]
        shown = f"  {condition:<30} {rate:6.0f}"
        shown += f" ({change(rate, base_rate)})" if condition != conditions[0] else " " * 11
        shown += f"  {cpu:6.0f}"
        shown += f" ({change(cpu, base_cpu)})" if condition != conditions[0] else " " * 11
        shown += f"  {share:12.1f} %"
        shown += "  " + ", ".join(f"{rate:.0f}" for rate, _, _ in batches[condition])
        print(shown)
    # Each round ran the three conditions one after another: a condition's jobs/s over the
    # same round's without the UI compares batches minutes apart no more (the tickers' load
    # drifts), so its median is the steadier figure.
    for condition in conditions[1:]:
        paired = [
            100 * (rate / base[0] - 1)
            for (rate, _, _), base in zip(batches[condition], batches[conditions[0]], strict=True)
        ]
        low, high, coverage = median_interval(paired)
        print(
            f"  {condition}: per round against the same round without the UI: median "
            f"{statistics.median(paired):+.1f} % ({100 * coverage:.0f} % interval "
            f"{low:+.1f} .. {high:+.1f} %; " + ", ".join(f"{v:+.0f}" for v in paired) + ")"
        )
    print(
        f"the {args.machines} machines, 2 s with no job running before each batch (median):"
        "  transitions/s   their CPU us/transition"
    )
    base_machines = statistics.median(rate for rate, _ in windows[conditions[0]])
    for condition in conditions:
        rate = statistics.median(rate for rate, _ in windows[condition])
        cpu = statistics.median(cpu for _, cpu in windows[condition])
        shown = f"  {condition:<30} {rate:6.0f}"
        shown += f" ({change(rate, base_machines)})" if condition != conditions[0] else " " * 11
        print(f"{shown}  {cpu:6.0f}")
    if args.keep:
        print(f"kept {directory}")


if __name__ == "__main__":
    main()
