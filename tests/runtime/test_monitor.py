"""The socket monitor: real Unix sockets, real reader threads and processes, no mocks."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smc.runtime.monitor import (
    MonitorError,
    MonitorPublisher,
    follow,
    format_human,
    is_monitor_socket_name,
    monitor_socket_path,
)

SMC = [sys.executable, "-m", "smc"]


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # A short directory: AF_UNIX paths are limited to 107 bytes and pytest's tmp_path is long.
    directory = Path("/tmp") / f"smc-monitor-test-{os.getpid()}-{time.monotonic_ns()}"
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def store_monitor_dir(database: Path, socket_dir: Path) -> Path:
    """The monitor directory ``smc monitor --db database`` uses with ``SMC_SOCKET_DIR``."""
    from smc.runtime.monitor import monitor_dir
    from smc.runtime.store import open_store

    saved = os.environ.get("SMC_SOCKET_DIR")
    os.environ["SMC_SOCKET_DIR"] = str(socket_dir)
    try:
        with open_store(database) as store:
            return monitor_dir(store)
    finally:
        if saved is None:
            del os.environ["SMC_SOCKET_DIR"]
        else:
            os.environ["SMC_SOCKET_DIR"] = saved


def wait_for(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class LineReader:
    """A raw socket client that reads every line on a thread."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.records: list[dict[str, Any]] = []
        self.eof = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buffer = b""
        while True:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                self.eof.set()
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            self.records.extend(json.loads(line) for line in lines)

    def close(self) -> None:
        self.sock.close()


def test_several_readers_receive_every_record_in_order(socket_dir: Path) -> None:
    with MonitorPublisher.open(socket_dir, "worker") as publisher:
        readers = [LineReader(publisher.path) for _ in range(3)]
        wait_for(lambda: publisher.reader_count == 3, what="3 readers")
        for number in range(5000):
            publisher.publish({"kind": "transition", "machine": "worker", "n": number})
        for reader in readers:
            wait_for(lambda r=reader: len(r.records) == 5000, what="all records")
            assert [record["n"] for record in reader.records] == list(range(5000))
            assert {record["v"] for record in reader.records} == {1}
            assert all(isinstance(record["ts"], float) for record in reader.records)
        assert publisher.overflowed_readers == 0
        for reader in readers:
            reader.close()


def test_a_reader_that_finds_the_socket_file_can_connect_at_once(
    socket_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file appears only once the socket listens: a follower that connected as soon as
    it saw the file was once refused (the file is made by ``bind``, before ``listen``), which
    a loaded CI machine showed. The window is held open here: ``listen`` waits 0.5 s."""
    listen = socket.socket.listen

    def slow_listen(self: socket.socket, *args: Any) -> None:
        time.sleep(0.5)
        listen(self, *args)

    monkeypatch.setattr(socket.socket, "listen", slow_listen)
    path = monitor_socket_path(socket_dir, "late")
    outcome: list[object] = []

    def follow() -> None:
        while not path.exists():
            time.sleep(0.001)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as reader:
            try:
                reader.connect(str(path))
            except OSError as error:
                outcome.append(error)
            else:
                outcome.append("connected")

    follower = threading.Thread(target=follow)
    follower.start()
    with MonitorPublisher.open(socket_dir, "late"):
        follower.join(10)
    assert outcome == ["connected"]
    assert sorted(entry.name for entry in socket_dir.iterdir()) == []  # nothing left behind


def test_publish_keeps_given_version_and_timestamp(socket_dir: Path) -> None:
    with MonitorPublisher.open(socket_dir, "m") as publisher:
        reader = LineReader(publisher.path)
        wait_for(lambda: publisher.reader_count == 1)
        publisher.publish({"kind": "error", "ts": 12.5, "obj": Path("/x"), "v": 1})
        wait_for(lambda: len(reader.records) == 1)
        # Non-JSON values are written as strings, never an exception.
        assert reader.records[0] == {"v": 1, "kind": "error", "ts": 12.5, "obj": "/x"}
        reader.close()


def test_reader_that_never_reads_does_not_block_and_is_disconnected(socket_dir: Path) -> None:
    with MonitorPublisher.open(socket_dir, "busy", max_buffer_bytes=64 * 1024) as publisher:
        stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stuck.connect(str(publisher.path))
        live = LineReader(publisher.path)
        wait_for(lambda: publisher.reader_count == 2)
        payload = "x" * 100
        started = time.monotonic()
        for number in range(100_000):
            publisher.publish({"kind": "transition", "n": number, "pad": payload})
            if number % 1000 == 0:
                time.sleep(0)  # let the live reader's thread run, like an engine awaiting I/O
        elapsed = time.monotonic() - started
        # Generous sanity bound: 100k records would take forever if publish blocked on the
        # stuck reader (its kernel buffer fills after a few thousand lines).
        assert elapsed < 60
        assert publisher.overflowed_readers >= 1
        # The stuck reader was disconnected: after what the kernel buffered, it reads EOF.
        stuck.settimeout(10)
        received = b""
        while chunk := stuck.recv(1 << 16):
            received += chunk
        lines = received.split(b"\n")
        assert len(lines) - 1 < 100_000  # it lagged and was cut off, by design
        assert [json.loads(line)["n"] for line in lines[:-1]] == list(range(len(lines) - 1))
        stuck.close()
        # The machine goes on publishing to remaining readers.
        publisher.publish({"kind": "transition", "n": "after"})
        wait_for(lambda: publisher.reader_count <= 1)
        live.close()


def test_dead_reader_is_dropped(socket_dir: Path) -> None:
    with MonitorPublisher.open(socket_dir, "m") as publisher:
        reader = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        reader.connect(str(publisher.path))
        wait_for(lambda: publisher.reader_count == 1)
        reader.close()
        wait_for(lambda: publisher.reader_count == 0, what="dead reader dropped")
        publisher.publish({"kind": "transition"})  # no error with nobody listening


def test_reader_in_another_process_killed_midstream(socket_dir: Path) -> None:
    with MonitorPublisher.open(socket_dir, "m") as publisher:
        script = (
            "import socket,sys,time;s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);"
            "print('ready',flush=True);time.sleep(60)"
        )
        child = subprocess.Popen(
            [sys.executable, "-c", script, str(publisher.path)], stdout=subprocess.PIPE
        )
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"
        wait_for(lambda: publisher.reader_count == 1)
        child.kill()
        child.wait()
        for number in range(1000):
            publisher.publish({"kind": "transition", "n": number})
        wait_for(lambda: publisher.reader_count == 0, what="killed reader dropped")


def test_reader_connecting_later_receives_later_records(socket_dir: Path) -> None:
    with MonitorPublisher.open(socket_dir, "m") as publisher:
        publisher.publish({"kind": "transition", "n": "early"})
        reader = LineReader(publisher.path)
        wait_for(lambda: publisher.reader_count == 1)
        publisher.publish({"kind": "transition", "n": "late"})
        wait_for(lambda: len(reader.records) == 1)
        time.sleep(0.1)
        assert [record["n"] for record in reader.records] == ["late"]
        reader.close()


def test_close_removes_socket_and_disconnects_readers(socket_dir: Path) -> None:
    publisher = MonitorPublisher.open(socket_dir, "m")
    path = publisher.path
    assert path == socket_dir / "monitor-m.sock"
    assert path.is_socket()
    reader = LineReader(path)
    wait_for(lambda: publisher.reader_count == 1)
    publisher.publish({"kind": "machine_stopped"})
    publisher.close()
    assert not path.exists()
    assert reader.eof.wait(10)
    assert [record["kind"] for record in reader.records] == ["machine_stopped"]
    publisher.publish({"kind": "late"})  # after close: ignored, no error
    publisher.close()  # idempotent


def test_stale_socket_replaced_live_one_refused(socket_dir: Path) -> None:
    socket_dir.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(socket_dir / "monitor-m.sock"))
    stale.close()  # the file stays, as after a SIGKILL
    with MonitorPublisher.open(socket_dir, "m") as publisher:
        with pytest.raises(MonitorError, match="in use"):
            MonitorPublisher.open(socket_dir, "m")
        assert publisher.path.is_socket()


def test_two_starts_of_one_name_over_a_stale_socket_leave_one_running(
    socket_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two machines of one name start together (a parent's retry starting its child again as
    # the first child starts), and a SIGKILLed namesake left its socket file: the second to
    # probe the stale file removed the first one's fresh socket in its place, and both ran.
    socket_dir.mkdir(mode=0o700)
    path = socket_dir / "monitor-m.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    probed, other_done = threading.Event(), threading.Event()
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self == path and threading.current_thread().name == "late" and not probed.is_set():
            # found the file stale; the other start runs now, if it can, before this removal
            probed.set()
            other_done.wait(1.0)
        real_unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    opened: list[MonitorPublisher] = []
    refused: list[MonitorError] = []

    def start() -> None:
        try:
            opened.append(MonitorPublisher.open(socket_dir, "m"))
        except MonitorError as error:
            refused.append(error)

    late = threading.Thread(target=start, name="late")
    late.start()
    try:
        assert probed.wait(10)
        start()
        other_done.set()
        late.join(10)
        assert len(opened) == 1 and len(refused) == 1, (opened, refused)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(str(path))  # the one running has the name
    finally:
        other_done.set()
        late.join(10)
        for publisher in opened:
            publisher.close()


def test_long_and_unsafe_names_are_hashed(socket_dir: Path) -> None:
    assert monitor_socket_path("/d", "simple_worker") == Path("/d/monitor-simple_worker.sock")
    hashed = monitor_socket_path("/d", "a/b@c")
    assert hashed.name.startswith("monitor-h-") and is_monitor_socket_name(hashed.name)
    assert monitor_socket_path("/d", "h-x").name.startswith("monitor-h-")
    long_name = "w" * 80
    with MonitorPublisher.open(socket_dir, long_name) as publisher:
        assert len(os.fsencode(publisher.path)) < 108
        records: list[dict[str, Any]] = []

        def read() -> None:
            for record in follow(socket_dir, long_name, timeout=5):
                records.append(record)
                return

        thread = threading.Thread(target=read)
        thread.start()
        wait_for(lambda: publisher.reader_count == 1)
        publisher.publish({"kind": "transition", "machine": long_name})
        thread.join()
        assert records[0]["machine"] == long_name
    assert not is_monitor_socket_name("jobs@12-0.sock")


def test_follow_merges_machines_and_picks_up_later_ones(socket_dir: Path) -> None:
    first = MonitorPublisher.open(socket_dir, "first")
    records: list[dict[str, Any]] = []
    done = threading.Event()

    def read() -> None:
        for record in follow(socket_dir, rescan_interval=0.05):
            records.append(record)
            if len(records) == 4:
                break
        done.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    wait_for(lambda: first.reader_count == 1)
    first.publish({"kind": "transition", "machine": "first", "n": 1})
    second = MonitorPublisher.open(socket_dir, "second")  # starts after the reader
    wait_for(lambda: second.reader_count == 1, what="reader discovers the new machine")
    second.publish({"kind": "transition", "machine": "second", "n": 1})
    first.publish({"kind": "transition", "machine": "first", "n": 2})
    second.publish({"kind": "transition", "machine": "second", "n": 2})
    assert done.wait(10)
    by_machine = {
        name: [r["n"] for r in records if r["machine"] == name] for name in ("first", "second")
    }
    assert by_machine == {"first": [1, 2], "second": [1, 2]}
    first.close()
    second.close()


def test_follow_one_machine_and_timeout(socket_dir: Path) -> None:
    with (
        MonitorPublisher.open(socket_dir, "a") as a,
        MonitorPublisher.open(socket_dir, "b") as b,
    ):
        records: list[dict[str, Any]] = []
        thread = threading.Thread(
            target=lambda: records.extend(follow(socket_dir, "b", timeout=1.0))
        )
        started = time.monotonic()
        thread.start()
        wait_for(lambda: b.reader_count == 1)
        a.publish({"kind": "transition", "machine": "a"})
        b.publish({"kind": "transition", "machine": "b"})
        thread.join(10)
        assert not thread.is_alive()
        assert time.monotonic() - started >= 1.0
        assert [record["machine"] for record in records] == ["b"]
        assert a.reader_count == 0


def test_follow_reconnects_to_a_restarted_machine(socket_dir: Path) -> None:
    records: list[dict[str, Any]] = []
    publisher = MonitorPublisher.open(socket_dir, "m")

    def read() -> None:
        for record in follow(socket_dir, "m", rescan_interval=0.05, timeout=10):
            records.append(record)
            if len(records) == 2:
                return

    thread = threading.Thread(target=read)
    thread.start()
    wait_for(lambda: publisher.reader_count == 1)
    publisher.publish({"kind": "machine_stopped", "machine": "m"})
    publisher.close()
    publisher = MonitorPublisher.open(socket_dir, "m")
    wait_for(lambda: publisher.reader_count == 1, what="reader reconnects")
    publisher.publish({"kind": "machine_started", "machine": "m"})
    thread.join()
    publisher.close()
    assert [record["kind"] for record in records] == ["machine_stopped", "machine_started"]


def test_publish_from_asyncio_loop_and_threads(socket_dir: Path) -> None:
    import asyncio

    with MonitorPublisher.open(socket_dir, "m") as publisher:
        reader = LineReader(publisher.path)
        wait_for(lambda: publisher.reader_count == 1)

        async def machine() -> None:
            for number in range(500):
                publisher.publish({"kind": "transition", "source": "loop", "n": number})
                await asyncio.sleep(0)

        def other_thread() -> None:
            for number in range(500):
                publisher.publish({"kind": "transition", "source": "thread", "n": number})

        thread = threading.Thread(target=other_thread)
        thread.start()
        asyncio.run(machine())
        thread.join()
        wait_for(lambda: len(reader.records) == 1000)
        for source in ("loop", "thread"):
            numbers = [r["n"] for r in reader.records if r["source"] == source]
            assert numbers == list(range(500))
        reader.close()


def test_format_human() -> None:
    ts = time.mktime((2026, 1, 2, 12, 0, 1, 0, 0, -1)) + 0.123
    transition = {
        "v": 1,
        "kind": "transition",
        "machine": "simple_worker",
        "from": "waiting",
        "event": "new_job",
        "to": "processing",
        "job_id": "42",
        "ts": ts,
    }
    assert format_human(transition) == (
        "12:00:01.123 simple_worker  waiting --new_job--> processing  job=42"
    )
    error = {"kind": "error", "machine": "m", "message": "boom\nline", "ts": ts}
    assert format_human(error) == "12:00:01.123 m  error message=boom\\nline"


def test_cli_monitor_against_a_publisher(socket_dir: Path, tmp_path: Path) -> None:
    """``smc monitor`` as a real process; the publisher lives in the store's socket dir."""
    database = tmp_path / "smc.db"
    env = {**os.environ, "SMC_SOCKET_DIR": str(socket_dir)}
    directory = store_monitor_dir(database, socket_dir)
    monitor = subprocess.Popen(
        [*SMC, "monitor", "--db", str(database), "--count", "2", "--timeout", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        with MonitorPublisher.open(directory, "w") as publisher:
            wait_for(lambda: publisher.reader_count == 1, timeout=20, what="smc monitor")
            publisher.publish(
                {"kind": "transition", "machine": "w", "from": "a", "event": "e", "to": "b"}
            )
            publisher.publish({"kind": "job_claimed", "machine": "w", "job_id": "7"})
            out, err = monitor.communicate(timeout=20)
    finally:
        monitor.kill()
    assert monitor.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(" w  a --e--> b")
    assert lines[1].endswith(" w  job_claimed  job=7")


def test_cli_monitor_count_not_reached(tmp_path: Path, socket_dir: Path) -> None:
    options = ["--format", "json", "--count", "1", "--timeout", "0.5"]
    result = subprocess.run(
        [*SMC, "monitor", "--db", str(tmp_path / "x.db"), *options],
        capture_output=True,
        text=True,
        env={**os.environ, "SMC_SOCKET_DIR": str(socket_dir)},
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"smc monitor: note: no database at {tmp_path / 'x.db'} yet (smc monitor makes none); "
        "waiting for a machine to start with it",
        "smc monitor: 0 of 1 records before the timeout",
    ]
    assert not (tmp_path / "x.db").exists()


def test_cli_monitor_ctrl_c_is_quiet(tmp_path: Path, socket_dir: Path) -> None:
    import signal

    database = tmp_path / "x.db"
    directory = store_monitor_dir(database, socket_dir)  # makes the database
    monitor = subprocess.Popen(
        [*SMC, "monitor", "--db", str(database)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "SMC_SOCKET_DIR": str(socket_dir)},
        text=True,
    )
    with MonitorPublisher.open(directory, "w") as publisher:
        # Once it is connected it is inside its read loop: Ctrl-C now is a user's Ctrl-C.
        wait_for(lambda: publisher.reader_count == 1, timeout=20, what="smc monitor")
        monitor.send_signal(signal.SIGINT)
        out, err = monitor.communicate(timeout=20)
    assert monitor.returncode == 0
    # Only the note that no machine has run with the new database: no interruption message.
    assert out == "" and err.splitlines() == [
        f"smc monitor: note: no machine has run with {database} yet; waiting for one to start"
    ]
