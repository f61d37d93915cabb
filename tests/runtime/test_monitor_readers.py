"""Monitor readers never exhaust a worker (issue 10 item 5): readers beyond a bound are refused
with a ``reader_refused`` record, an ``accept`` that fails for want of descriptors backs off
instead of spinning, and jobs complete whoever is watching. Real ``smc run`` processes with a
low open-file limit, real Unix sockets."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smc.runtime.monitor import (
    MonitorPublisher,
    follow_lines,
    monitor_dir,
    monitor_socket_path,
    reader_limit,
)
from tests.support.harness import REPO, Runner, wait_until
from tests.support.machines import queue_worker

WORKER = queue_worker("watched")

LOW_FILE_LIMIT = 256
READERS = 1100


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@contextlib.contextmanager
def _file_limit(soft: int) -> Iterator[None]:
    """This test process may hold ``soft`` descriptors (the readers are ours)."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, old[1]), old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, old)


def _connect_readers(path: Path, count: int, stall: float) -> list[socket.socket]:
    """Up to ``count`` connected reader sockets, retrying while the listen backlog is full;
    fewer when the machine stops taking connections for ``stall`` seconds."""
    readers: list[socket.socket] = []
    deadline = time.monotonic() + stall
    while len(readers) < count:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        code = sock.connect_ex(str(path))
        if code == 0:
            readers.append(sock)
            deadline = time.monotonic() + stall
            continue
        sock.close()
        if code not in (errno.EAGAIN, errno.EWOULDBLOCK):
            raise OSError(code, os.strerror(code))
        if time.monotonic() > deadline:
            break
        time.sleep(0.001)  # the backlog is full: the machine has not accepted yet
    return readers


def _read_all(sock: socket.socket) -> tuple[bytes, bool]:
    """What the socket has for us now, and whether it reached end-of-file."""
    data = b""
    while True:
        try:
            chunk = sock.recv(1 << 16)
        except BlockingIOError:
            return data, False
        except OSError:
            return data, True
        if not chunk:
            return data, True
        data += chunk


@pytest.mark.slow
def test_a_flood_of_readers_is_refused_politely_and_jobs_still_complete(
    runner: Runner,
) -> None:
    (runner.cwd / "w.yaml").write_text(WORKER)
    log = (runner.cwd / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "smc", "run", "w.yaml"],
        cwd=runner.cwd,
        env=runner.env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: resource.setrlimit(
            resource.RLIMIT_NOFILE, (LOW_FILE_LIMIT, LOW_FILE_LIMIT)
        ),
    )

    def output() -> str:
        return (runner.cwd / "worker.log").read_text(errors="replace")

    readers: list[socket.socket] = []
    try:
        with runner.store() as store:
            path = monitor_socket_path(monitor_dir(store), "watched")
        wait_until(lambda: path.exists() or worker.poll() is not None, 30, output)
        assert worker.poll() is None, output()
        with _file_limit(4096):
            readers = _connect_readers(path, READERS, stall=3.0)
            jobs = [runner.run("jobs", "add", "--type", "t").stdout.strip() for _ in range(5)]
            wait_until(
                lambda: all(runner.job_statuses().get(job) == "completed" for job in jobs),
                30,
                lambda: f"{runner.job_statuses()}\n{output()}",
            )
            assert sorted((runner.cwd / "done.log").read_text().split()) == sorted(jobs)
            time.sleep(0.5)
            refused = live = 0
            for sock in readers:
                data, ended = _read_all(sock)
                kinds = [json.loads(line)["kind"] for line in data.splitlines() if line]
                if ended:
                    assert kinds == ["reader_refused"], kinds
                    refused += 1
                else:
                    assert "reader_refused" not in kinds
                    live += 1
            # With the readers still connected, the idle machine does not spin.
            before = _cpu_seconds(worker.pid)
            time.sleep(2.0)
            burnt = _cpu_seconds(worker.pid) - before
            assert burnt < 0.3, f"{burnt:.2f} s of CPU in 2 s of idling with readers connected"
            assert worker.poll() is None, output()
            assert len(readers) == READERS, f"only {len(readers)} readers could connect"
            assert live == 64, f"{live} readers kept, {refused} refused"
            assert refused == READERS - 64
    finally:
        for sock in readers:
            sock.close()
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(5)
        log.close()
    assert worker.returncode == 0, output()
    assert "Traceback" not in output()


_HOG = """
import os, sys, time
from smc.runtime.monitor import MonitorPublisher

publisher = MonitorPublisher.open(sys.argv[1], "hog", max_readers=10)
held = []
try:  # take every descriptor left, as a machine's own work might
    while True:
        held.append(os.open("/dev/null", os.O_RDONLY))
except OSError:
    pass
print("starved", flush=True)
sys.stdin.readline()  # until the test says so
for fd in held:
    os.close(fd)
while True:
    publisher.publish({"kind": "tick", "machine": "hog"})
    time.sleep(0.05)
"""


def test_accept_backs_off_instead_of_spinning_when_descriptors_run_out(
    tmp_path: Path,
) -> None:
    directory = Path("/tmp") / f"smc-readers-test-{os.getpid()}-{time.monotonic_ns()}"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    hog = subprocess.Popen(
        [sys.executable, "-c", _HOG, str(directory)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)),
    )
    reader = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        assert hog.stdout is not None and hog.stdin is not None
        assert hog.stdout.readline() == b"starved\n"
        # Connecting succeeds (the kernel queues it); the publisher's accept gets EMFILE.
        reader.connect(str(monitor_socket_path(directory, "hog")))
        time.sleep(0.5)
        before = _cpu_seconds(hog.pid)
        time.sleep(2.0)
        burnt = _cpu_seconds(hog.pid) - before
        assert burnt < 0.3, f"{burnt:.2f} s of CPU in 2 s while accept fails with EMFILE"
        hog.stdin.write(b"go\n")
        hog.stdin.flush()
        # Descriptors are back: the waiting reader is accepted within the backoff (<= 1 s).
        reader.settimeout(10)
        assert b'"kind":"tick"' in reader.recv(4096)
    finally:
        reader.close()
        hog.kill()
        hog.wait(5)
        for name in os.listdir(directory) if directory.exists() else []:
            (directory / name).unlink()
        with contextlib.suppress(OSError):
            directory.rmdir()


def test_the_reader_limit_is_configurable_and_a_refused_follower_is_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory = Path("/tmp") / f"smc-readers-test-{os.getpid()}-{time.monotonic_ns()}"
    monkeypatch.setenv("SMC_MONITOR_MAX_READERS", "2")
    assert reader_limit() == 2
    assert reader_limit(5) == 5  # an explicit limit wins over the environment
    monkeypatch.delenv("SMC_MONITOR_MAX_READERS")
    assert reader_limit() == 64
    with _file_limit(40):
        assert reader_limit(1000) == 10  # never more than a quarter of the open-file limit
    with MonitorPublisher.open(directory, "m", max_readers=2) as publisher:
        kept = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(2)]
        for sock in kept:
            sock.connect(str(publisher.path))
        wait_until(lambda: publisher.reader_count == 2, 10, "two readers")
        records = follow_lines(directory, "m", timeout=5)
        line, record = next(records)
        records.close()
        assert record["kind"] == "reader_refused" and "2" in record["reason"]
        assert json.loads(line) == record
        assert publisher.reader_count == 2 and publisher.refused_readers == 1
        for sock in kept:
            sock.close()
    with contextlib.suppress(OSError):
        directory.rmdir()
